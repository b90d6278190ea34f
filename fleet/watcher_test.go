package fleet_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-cleanhttp"
	"go.uber.org/goleak"

	"github.com/fleetdeck/fleetdeck/fleet"
	"github.com/fleetdeck/fleetdeck/internal/consulagent"
	"github.com/fleetdeck/fleetdeck/internal/fleetsim"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// startAgent runs a real Consul agent for one test.
func startAgent(t *testing.T, opts consulagent.Options) *consulagent.Agent {
	t.Helper()
	return consulagent.StartTest(t, opts)
}

func client(t *testing.T, a *consulagent.Agent) *api.Client {
	t.Helper()
	c, err := a.Client()
	if err != nil {
		t.Fatalf("consul client: %v", err)
	}
	return c
}

// runWatcher runs w until the test ends and checks that Run returns.
func runWatcher(t *testing.T, w *fleet.Watcher) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Run did not return after cancel")
		}
	})
}

// waitFor waits until cond holds for the current snapshot.
func waitFor(t *testing.T, feed fleet.Feed, timeout time.Duration, what string, cond func(*fleet.Snapshot) bool) *fleet.Snapshot {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	s := feed.Current()
	for !cond(s) {
		next, err := feed.Next(ctx, s.Version)
		if err != nil {
			t.Fatalf("waiting for %s: %v (last snapshot v%d: %d nodes, conn %+v)", what, err, s.Version, len(s.Nodes), s.Status())
		}
		s = next
	}
	return s
}

type svcDef struct {
	id, name string
	tags     []string
	port     int
}

func register(t *testing.T, c *api.Client, node, addr string, meta map[string]string, svcs ...svcDef) {
	t.Helper()
	reg := &api.CatalogRegistration{Node: node, Address: addr, NodeMeta: meta, SkipNodeUpdate: false}
	if _, err := c.Catalog().Register(reg, nil); err != nil {
		t.Fatalf("registering node %s: %v", node, err)
	}
	for _, s := range svcs {
		reg := &api.CatalogRegistration{Node: node, Address: addr, NodeMeta: meta,
			Service: &api.AgentService{ID: s.id, Service: s.name, Tags: s.tags, Port: s.port}}
		if _, err := c.Catalog().Register(reg, nil); err != nil {
			t.Fatalf("registering service %s on %s: %v", s.id, node, err)
		}
	}
}

func setCheck(t *testing.T, c *api.Client, node, addr, id, status, output string) {
	t.Helper()
	reg := &api.CatalogRegistration{Node: node, Address: addr, SkipNodeUpdate: true,
		Check: &api.AgentCheck{Node: node, CheckID: id, Name: id, Status: status, Output: output}}
	if _, err := c.Catalog().Register(reg, nil); err != nil {
		t.Fatalf("setting check %s on %s: %v", id, node, err)
	}
}

func hasEvent(s *fleet.Snapshot, kind fleet.EventKind, node string, pred func(fleet.Event) bool) bool {
	for _, e := range s.Events {
		if e.Kind == kind && e.Node == node && (pred == nil || pred(e)) {
			return true
		}
	}
	return false
}

// bothPaths runs a test with the bootstrap read and without it (the public
// per-service reads it falls back to).
func bothPaths(t *testing.T, test func(t *testing.T, cfg fleet.Config)) {
	t.Helper()
	t.Run("bootstrap", func(t *testing.T) { test(t, fleet.Config{}) })
	t.Run("per-service", func(t *testing.T) { test(t, fleet.Config{SkipBootstrap: true}) })
}

// readPath is how a watcher makes its first read of services and checks.
type readPath string

const (
	pathBootstrap  readPath = "bootstrap"        // one request, through the API client
	pathDirect     readPath = "bootstrap-direct" // one request, read and decoded by the watcher (Config.Direct)
	pathPerService readPath = "per-service"      // the public per-service reads
)

// allPaths runs a test once per read path; the test builds its client and
// config with clientFor.
func allPaths(t *testing.T, test func(t *testing.T, path readPath)) {
	t.Helper()
	for _, p := range []readPath{pathBootstrap, pathDirect, pathPerService} {
		t.Run(string(p), func(t *testing.T) { test(t, p) })
	}
}

// clientFor returns a client of agent a and the watcher configuration of
// read path p.
// loaded, called once the fleet is first complete, checks that on a
// bootstrap path no service was read in full one by one — that the
// bootstrap did not fall back.
func clientFor(t *testing.T, a *consulagent.Agent, p readPath) (c *api.Client, cfg fleet.Config, loaded func()) {
	t.Helper()
	tr := cleanhttp.DefaultPooledTransport()
	t.Cleanup(tr.CloseIdleConnections)
	fr := &firstReads{base: tr}
	ac := api.DefaultConfig()
	ac.Address, ac.Token, ac.TokenFile, ac.Transport = a.HTTPAddr(), a.Token(), "", tr
	ac.HttpClient = &http.Client{Transport: fr}
	c, err := api.NewClient(ac) // resolves ac, as fleet.Config.Direct wants it
	if err != nil {
		t.Fatal(err)
	}
	loaded = func() {
		t.Helper()
		if n := fr.n.Load(); p != pathPerService && n > 0 {
			t.Errorf("%s: %d services were read in full one by one: the bootstrap read fell back", p, n)
		}
	}
	switch p {
	case pathPerService:
		cfg.SkipBootstrap = true
	case pathDirect:
		cfg.Direct = ac
	}
	return c, cfg, loaded
}

// firstReads counts full reads of a service that start from nothing (no
// wait index, no filter): what the per-service path does and the bootstrap
// path must not.
type firstReads struct {
	base http.RoundTripper
	n    atomic.Int64
}

func (f *firstReads) RoundTrip(r *http.Request) (*http.Response, error) {
	q := r.URL.Query()
	if strings.HasPrefix(r.URL.Path, "/v1/catalog/service/") && (q.Get("index") == "" || q.Get("index") == "0") && q.Get("filter") == "" {
		f.n.Add(1)
	}
	return f.base.RoundTrip(r)
}

func TestWatcherFollowsJoinsLeavesHealthAndTags(t *testing.T) {
	allPaths(t, testWatcherFollowsJoinsLeavesHealthAndTags)
}

func testWatcherFollowsJoinsLeavesHealthAndTags(t *testing.T, path readPath) {
	a := startAgent(t, consulagent.Options{})
	c, cfg, loaded := clientFor(t, a, path)
	for i := range 3 {
		name := fmt.Sprintf("web-%d", i)
		register(t, c, name, fmt.Sprintf("10.0.0.%d", i+1), map[string]string{"asg": "web-asg", "zone": "z1", "instance-id": "i-" + name},
			svcDef{id: "web", name: "web", tags: []string{"v1"}, port: 80})
		setCheck(t, c, name, fmt.Sprintf("10.0.0.%d", i+1), "http", api.HealthPassing, "ok")
	}

	w := fleet.NewWatcher(c, cfg)
	runWatcher(t, w)
	s := waitFor(t, w, 30*time.Second, "initial load", func(s *fleet.Snapshot) bool {
		return s.Node("dc1", "web-2") != nil && s.Complete()
	})
	loaded()
	n := s.Node("dc1", "web-0")
	if n.Group != "web-asg" || n.Zone != "z1" || n.InstanceID != "i-web-0" || n.Address != "10.0.0.1" {
		t.Errorf("node facts: %+v", n)
	}
	if got := n.Roles(); len(got) != 1 || got[0] != "web" {
		t.Errorf("roles = %v, want [web]", got)
	}
	if len(n.Checks) != 1 || n.Checks[0].Status != fleet.HealthPassing || n.Checks[0].Output != "ok" {
		t.Errorf("checks = %+v, want one passing http check with output", n.Checks)
	}
	if len(s.Events) != 0 {
		t.Errorf("the initial load made %d events, want none: %+v", len(s.Events), s.Events)
	}

	// Health change: critical shows with its output and makes an event.
	setCheck(t, c, "web-1", "10.0.0.2", "http", api.HealthCritical, "HTTP 503")
	s = waitFor(t, w, 10*time.Second, "web-1 critical", func(s *fleet.Snapshot) bool {
		n := s.Node("dc1", "web-1")
		return n != nil && n.Health == fleet.HealthCritical
	})
	if !hasEvent(s, fleet.HealthChanged, "web-1", func(e fleet.Event) bool {
		return e.CheckID == "http" && e.From == fleet.HealthPassing && e.To == fleet.HealthCritical && e.Output == "HTTP 503"
	}) {
		t.Errorf("no health event for web-1: %+v", s.Events)
	}
	if s.Counts.Critical != 1 {
		t.Errorf("critical count = %d, want 1", s.Counts.Critical)
	}
	unchanged := s.Node("dc1", "web-0")

	// And back to passing.
	setCheck(t, c, "web-1", "10.0.0.2", "http", api.HealthPassing, "ok again")
	s = waitFor(t, w, 10*time.Second, "web-1 passing", func(s *fleet.Snapshot) bool {
		return s.Node("dc1", "web-1").Health == fleet.HealthPassing
	})
	if s.Node("dc1", "web-0") != unchanged {
		t.Errorf("an unchanged node got a new pointer; callers cache by pointer")
	}

	// Tag change and a new role.
	register(t, c, "web-0", "10.0.0.1", map[string]string{"asg": "web-asg", "zone": "z1", "instance-id": "i-web-0"},
		svcDef{id: "web", name: "web", tags: []string{"v2", "canary"}, port: 80},
		svcDef{id: "cache", name: "cache", port: 6379})
	s = waitFor(t, w, 10*time.Second, "web-0 retagged", func(s *fleet.Snapshot) bool {
		tags := s.Node("dc1", "web-0").Tags()
		return len(tags) == 2 && tags[0] == "canary" && tags[1] == "v2" && s.Node("dc1", "web-0").HasRole("cache")
	})
	if !hasEvent(s, fleet.RolesChanged, "web-0", nil) {
		t.Errorf("no roles event for web-0: %+v", s.Events)
	}

	// A role taken away from a node that stays (role reassignment: the
	// node's agent drops a service). The node list's blocking query does
	// not wake for it; the watcher asks for the held node itself, so the
	// change shows in seconds, not after the 30 s bound for a leave.
	if _, err := c.Catalog().Deregister(&api.CatalogDeregistration{Node: "web-0", ServiceID: "cache"}, nil); err != nil {
		t.Fatal(err)
	}
	dropped := time.Now()
	s = waitFor(t, w, 20*time.Second, "web-0 without cache", func(s *fleet.Snapshot) bool {
		return !s.Node("dc1", "web-0").HasRole("cache")
	})
	t.Logf("a role taken away shows after %v", time.Since(dropped).Round(10*time.Millisecond))
	if !hasEvent(s, fleet.RolesChanged, "web-0", func(e fleet.Event) bool { return !slices.Contains(e.NewRoles, "cache") }) {
		t.Errorf("no roles event for web-0 losing cache: %+v", s.Events)
	}

	// Join and leave, with the group size following.
	register(t, c, "web-3", "10.0.0.4", map[string]string{"asg": "web-asg"}, svcDef{id: "web", name: "web", port: 80})
	s = waitFor(t, w, 10*time.Second, "web-3 joined", func(s *fleet.Snapshot) bool { return s.Node("dc1", "web-3") != nil })
	if !hasEvent(s, fleet.NodeJoined, "web-3", func(e fleet.Event) bool { return e.Group == "web-asg" }) {
		t.Errorf("no join event: %+v", s.Events)
	}
	if _, err := c.Catalog().Deregister(&api.CatalogDeregistration{Node: "web-2"}, nil); err != nil {
		t.Fatal(err)
	}
	s = waitFor(t, w, 10*time.Second, "web-2 left", func(s *fleet.Snapshot) bool { return s.Node("dc1", "web-2") == nil })
	// The leave keeps the node as last seen (its logs are found by its
	// instance id after it has gone).
	if !hasEvent(s, fleet.NodeLeft, "web-2", func(e fleet.Event) bool { return e.Last != nil && e.Last.Meta["instance-id"] == "i-web-2" }) {
		t.Errorf("no leave event with the node as last seen: %+v", s.Events)
	}
	var sizes []string
	for _, e := range s.Events {
		if e.Kind == fleet.GroupSizeChanged && e.Group == "web-asg" {
			sizes = append(sizes, fmt.Sprintf("%d→%d", e.Before, e.After))
		}
	}
	if strings.Join(sizes, ",") != "3→4,4→3" {
		t.Errorf("group size events = %v, want [3→4 4→3]", sizes)
	}
	groups := s.Groups(time.Now().Add(-time.Hour))
	if len(groups) != 1 || groups[0].Nodes != 3 || groups[0].Joins != 1 || groups[0].Leaves != 1 {
		t.Errorf("groups = %+v", groups)
	}
}

func TestWatcherSurvivesConsulRestartAndIndexReset(t *testing.T) {
	a := startAgent(t, consulagent.Options{})
	c := client(t, a)
	register(t, c, "db-0", "10.0.1.1", nil, svcDef{id: "db", name: "db", port: 5432})
	// Grow the index well past what a fresh agent will have.
	for i := range 30 {
		setCheck(t, c, "db-0", "10.0.1.1", "pg", api.HealthPassing, fmt.Sprint("ok ", i))
	}

	w := fleet.NewWatcher(c, fleet.Config{BackoffMin: 100 * time.Millisecond, BackoffMax: time.Second})
	runWatcher(t, w)
	waitFor(t, w, 30*time.Second, "db-0", func(s *fleet.Snapshot) bool {
		return s.Node("dc1", "db-0") != nil && s.Complete()
	})

	if err := a.Kill(); err != nil {
		t.Fatalf("killing Consul: %v", err)
	}
	s := waitFor(t, w, 20*time.Second, "degraded", func(s *fleet.Snapshot) bool {
		return s.Status().Status == fleet.Degraded
	})
	st := s.Status()
	if st.LastError == "" || st.NextRetry.IsZero() {
		t.Errorf("degraded state lacks error or retry time: %+v", st)
	}
	if s.Node("dc1", "db-0") == nil {
		t.Errorf("the last snapshot's nodes were dropped while Consul was down")
	}

	restartCtx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := a.Restart(restartCtx); err != nil {
		t.Fatalf("restarting Consul: %v", err)
	}
	// The new agent is empty and its index starts low: the watcher must
	// reset its indexes and see the new (empty) catalog, then new nodes.
	c = client(t, a)
	register(t, c, "db-1", "10.0.1.2", nil, svcDef{id: "db", name: "db", port: 5432})
	s = waitFor(t, w, 30*time.Second, "reconnected after index reset", func(s *fleet.Snapshot) bool {
		return s.Complete() && s.Node("dc1", "db-1") != nil && s.Node("dc1", "db-0") == nil
	})
	if !hasEvent(s, fleet.NodeLeft, "db-0", nil) || !hasEvent(s, fleet.NodeJoined, "db-1", nil) {
		t.Errorf("the restart's leave and join are not in the journal: %+v", s.Events)
	}
}

func TestWatcherReportsACLDenial(t *testing.T) {
	a := startAgent(t, consulagent.Options{
		ExtraHCL: `acl { enabled = true
  default_policy = "deny"
  tokens { initial_management = "root" } }`,
		Token: "root",
	})
	cfg := api.DefaultConfig()
	cfg.Address = a.HTTPAddr()
	cfg.Token = "00000000-0000-0000-0000-000000000bad"
	c, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	w := fleet.NewWatcher(c, fleet.Config{BackoffMin: 100 * time.Millisecond, BackoffMax: time.Second, TokenSource: "--token-file /etc/fleetdeck/token"})
	runWatcher(t, w)
	s := waitFor(t, w, 20*time.Second, "ACL error", func(s *fleet.Snapshot) bool { return s.Status().Status == fleet.Degraded })
	if msg := s.Status().LastError; !strings.Contains(msg, "permission denied by Consul ACLs") || !strings.Contains(msg, "the token from --token-file /etc/fleetdeck/token") {
		t.Errorf("ACL error does not name the token in use: %q", msg)
	}

	// Anonymous reads under default deny: Consul filters everything and
	// never says so to anonymous requests. No node at all is the sign.
	cfg.Token = ""
	anon, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	wa := fleet.NewWatcher(anon, fleet.Config{Datacenters: []string{"dc1"}})
	runWatcher(t, wa)
	s = waitFor(t, wa, 20*time.Second, "anonymous and empty", func(s *fleet.Snapshot) bool { return s.Status().AnonymousEmpty })
	if st := s.Status(); !st.FilteredByACL || len(s.Nodes) != 0 {
		t.Errorf("anonymous access: %d nodes, state %+v; want none and FilteredByACL", len(s.Nodes), st)
	}

	// A token that may read only some nodes gets a partial fleet: say so.
	root := client(t, a)
	pol, _, err := root.ACL().PolicyCreate(&api.ACLPolicy{Name: "app-only",
		Rules: `node_prefix "app-" { policy = "read" }
service_prefix "" { policy = "read" }`}, nil)
	if err != nil {
		t.Fatalf("creating ACL policy: %v", err)
	}
	tok, _, err := root.ACL().TokenCreate(&api.ACLToken{Policies: []*api.ACLTokenPolicyLink{{ID: pol.ID}}}, nil)
	if err != nil {
		t.Fatalf("creating ACL token: %v", err)
	}
	register(t, root, "app-1", "10.0.0.1", nil)
	cfg.Token = tok.SecretID
	limited, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	w2 := fleet.NewWatcher(limited, fleet.Config{Datacenters: []string{"dc1"}})
	runWatcher(t, w2)
	s = waitFor(t, w2, 20*time.Second, "filtered-by-ACL flag", func(s *fleet.Snapshot) bool {
		return s.Status().FilteredByACL && s.Node("dc1", "app-1") != nil
	})
	if len(s.Nodes) != 1 {
		t.Errorf("the limited token sees %d nodes, want only app-1", len(s.Nodes))
	}

	// node:read without service:read: service checks are filtered, so a
	// node can look passing while its service is critical. Say so.
	pol2, _, err := root.ACL().PolicyCreate(&api.ACLPolicy{Name: "nodes-only", Rules: `node_prefix "" { policy = "read" }`}, nil)
	if err != nil {
		t.Fatalf("creating ACL policy: %v", err)
	}
	tok2, _, err := root.ACL().TokenCreate(&api.ACLToken{Policies: []*api.ACLTokenPolicyLink{{ID: pol2.ID}}}, nil)
	if err != nil {
		t.Fatalf("creating ACL token: %v", err)
	}
	register(t, root, "app-2", "10.0.0.2", nil, svcDef{id: "app", name: "app"})
	if _, err := root.Catalog().Register(&api.CatalogRegistration{Node: "app-2", Address: "10.0.0.2", SkipNodeUpdate: true,
		Check: &api.AgentCheck{Node: "app-2", CheckID: "app-http", Name: "app-http", Status: api.HealthCritical, ServiceID: "app"}}, nil); err != nil {
		t.Fatalf("registering a service check: %v", err)
	}
	cfg.Token = tok2.SecretID
	nodesOnly, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	w3 := fleet.NewWatcher(nodesOnly, fleet.Config{Datacenters: []string{"dc1"}, TokenSource: "CONSUL_HTTP_TOKEN"})
	runWatcher(t, w3)
	s = waitFor(t, w3, 20*time.Second, "health marked incomplete", func(s *fleet.Snapshot) bool {
		return s.Status().HealthIncomplete && s.Node("dc1", "app-2") != nil
	})
	if n := s.Node("dc1", "app-2"); n.Health != fleet.HealthPassing {
		t.Logf("app-2 health %v (the critical service check is hidden from this token)", n.Health)
	}
}

func TestWatcherMergesDatacenters(t *testing.T) {
	dc1 := startAgent(t, consulagent.Options{Datacenter: "dc1"})
	dc2 := startAgent(t, consulagent.Options{Datacenter: "dc2", JoinWAN: []string{dc1.SerfWANAddr()}})
	register(t, client(t, dc1), "app-1", "10.1.0.1", nil, svcDef{id: "app", name: "app"})
	register(t, client(t, dc2), "app-1", "10.2.0.1", nil, svcDef{id: "app", name: "app"})

	w := fleet.NewWatcher(client(t, dc1), fleet.Config{})
	runWatcher(t, w)
	// The node list comes first and each node's services after it
	// (Node.Pending): wait for both datacenters' services.
	s := waitFor(t, w, 30*time.Second, "both datacenters, loaded", func(s *fleet.Snapshot) bool {
		n1, n2 := s.Node("dc1", "app-1"), s.Node("dc2", "app-1")
		return n1 != nil && n2 != nil && n1.Pending == 0 && n2.Pending == 0
	})
	if got := strings.Join(s.Datacenters, ","); got != "dc1,dc2" {
		t.Errorf("datacenters = %s", got)
	}
	if s.Node("dc2", "app-1").Address != "10.2.0.1" {
		t.Errorf("dc2's node has the wrong address: %+v", s.Node("dc2", "app-1"))
	}
	roles := s.Roles()
	for _, r := range roles {
		if r.Name == "app" && r.Nodes != 2 {
			t.Errorf("role app spans %d nodes, want 2", r.Nodes)
		}
	}
}

// A snapshot restore moves Consul's index backwards under a running
// blocking query: the watcher must notice, start over and show the
// restored catalog instead of hanging on an index that will not come.
func TestWatcherHandlesIndexGoingBackwards(t *testing.T) {
	a := startAgent(t, consulagent.Options{})
	c := client(t, a)
	register(t, c, "old-1", "10.0.2.1", nil, svcDef{id: "app", name: "app"})
	snap, _, err := c.Snapshot().Save(nil)
	if err != nil {
		t.Fatalf("saving a Consul snapshot: %v", err)
	}
	saved, err := io.ReadAll(snap)
	snap.Close()
	if err != nil {
		t.Fatalf("reading the Consul snapshot: %v", err)
	}
	register(t, c, "new-1", "10.0.2.2", nil, svcDef{id: "app", name: "app"})
	for i := range 50 {
		setCheck(t, c, "new-1", "10.0.2.2", "load", api.HealthPassing, fmt.Sprint(i))
	}

	w := fleet.NewWatcher(c, fleet.Config{})
	runWatcher(t, w)
	waitFor(t, w, 30*time.Second, "new-1", func(s *fleet.Snapshot) bool { return s.Node("dc1", "new-1") != nil })
	// Let every watch get back into its blocking query, as on a quiet
	// fleet: Consul wakes the queries in flight when it restores. (A query
	// that arrives after the restore with the old, now future, index waits
	// for the next write or WaitTime: see docs/architecture.md.)
	time.Sleep(time.Second)

	if err := c.Snapshot().Restore(nil, bytes.NewReader(saved)); err != nil {
		t.Fatalf("restoring the Consul snapshot: %v", err)
	}
	// A live fleet keeps writing; one write after the restore also frees a
	// query that (on a loaded machine) arrived after the restore with the
	// old, now future, index — the gap docs/architecture.md describes.
	register(t, c, "bump-1", "10.0.2.3", nil, svcDef{id: "app", name: "app"})
	setCheck(t, c, "bump-1", "10.0.2.3", "load", api.HealthPassing, "ok")
	s := waitFor(t, w, 20*time.Second, "the restored catalog", func(s *fleet.Snapshot) bool {
		return s.Node("dc1", "new-1") == nil && s.Node("dc1", "old-1") != nil && s.Node("dc1", "bump-1") != nil
	})
	if !hasEvent(s, fleet.NodeLeft, "new-1", nil) {
		t.Errorf("the restore's leave is not in the journal: %+v", s.Events)
	}
	// And it keeps following changes after the reset.
	setCheck(t, c, "old-1", "10.0.2.1", "disk", api.HealthWarning, "90% full")
	waitFor(t, w, 10*time.Second, "old-1 warning", func(s *fleet.Snapshot) bool {
		return s.Node("dc1", "old-1").Health == fleet.HealthWarning
	})
}

// The whole fleet, exactly: 10,000 nodes with 5 services and 3 checks
// each, registered in bulk, must all be in the snapshot as registered.
func TestWatcherLoadsTenThousandNodesCompletely(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the 10k-node load takes a minute")
	}
	allPaths(t, testWatcherLoadsTenThousandNodesCompletely)
}

func testWatcherLoadsTenThousandNodesCompletely(t *testing.T, path readPath) {
	a := startAgent(t, consulagent.Options{})
	c, cfg, loaded := clientFor(t, a, path)
	spec := fleetsim.ScaleSpec(10000)
	want, err := spec.Fleet()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := fleetsim.Load(ctx, c, spec); err != nil {
		t.Fatalf("loading the fleet: %v", err)
	}

	w := fleet.NewWatcher(c, cfg)
	runWatcher(t, w)
	s := waitFor(t, w, 5*time.Minute, "10k nodes", func(s *fleet.Snapshot) bool {
		return len(s.Nodes) >= len(want)+1 && s.Complete()
	})
	loaded()

	if len(s.Nodes) != len(want)+1 { // + the agent's own node
		t.Fatalf("snapshot has %d nodes, want %d", len(s.Nodes), len(want)+1)
	}
	var services, checks int
	for _, wn := range want {
		n := s.Node("dc1", wn.Name)
		if n == nil {
			t.Fatalf("node %s missing", wn.Name)
		}
		if n.Address != wn.Address || n.Group != wn.Group || n.Zone != wn.Zone || !maps.Equal(n.Meta, wn.Meta) {
			t.Fatalf("node %s: got %s %s %s %v, want %s %s %s %v", wn.Name, n.Address, n.Group, n.Zone, n.Meta, wn.Address, wn.Group, wn.Zone, wn.Meta)
		}
		if len(n.Services) != len(wn.Services) {
			t.Fatalf("node %s has %d services, want %d", wn.Name, len(n.Services), len(wn.Services))
		}
		got := map[string]fleet.Service{}
		for _, sv := range n.Services {
			got[sv.ID] = sv
		}
		for _, ws := range wn.Services {
			g, ok := got[ws.ID]
			if !ok || g.Name != ws.Name || g.Port != ws.Port || !slices.Equal(g.Tags, ws.Tags) {
				t.Fatalf("node %s service %s: got %+v, want %+v", wn.Name, ws.ID, g, ws)
			}
		}
		if len(n.Checks) != len(wn.Checks) {
			t.Fatalf("node %s has %d checks, want %d", wn.Name, len(n.Checks), len(wn.Checks))
		}
		worst := fleet.HealthPassing
		for _, wc := range wn.Checks {
			h, _ := fleet.ParseHealth(wc.Status)
			worst = max(worst, h)
		}
		if n.Health != worst {
			t.Fatalf("node %s health %v, want %v", wn.Name, n.Health, worst)
		}
		services += len(n.Services)
		checks += len(n.Checks)
	}
	if services != 50000 || checks != 30000 {
		t.Errorf("totals: %d services, %d checks; want 50000 and 30000", services, checks)
	}
	if len(s.Roles()) != 51 { // 50 pool services + consul
		t.Errorf("got %d roles, want 51", len(s.Roles()))
	}
}

func TestOnceReadsACompleteFleetOrFailsClearly(t *testing.T) {
	a := startAgent(t, consulagent.Options{})
	c := client(t, a)
	register(t, c, "web-1", "10.3.0.1", map[string]string{"asg": "web-asg"}, svcDef{id: "web", name: "web", tags: []string{"v1"}})
	setCheck(t, c, "web-1", "10.3.0.1", "http", api.HealthCritical, "down")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := fleet.Once(ctx, c, fleet.Config{SkipAllChecks: true})
	if err != nil {
		t.Fatalf("Once: %v", err)
	}
	n := s.Node("dc1", "web-1")
	if n == nil || n.Group != "web-asg" || !n.HasRole("web") || n.Health != fleet.HealthCritical {
		t.Fatalf("web-1 = %+v", n)
	}

	// Nothing listens here: a clear error, not a hang.
	cfg := api.DefaultConfig()
	cfg.Address = "127.0.0.1:1"
	dead, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = fleet.Once(ctx, dead, fleet.Config{})
	if err == nil || !strings.Contains(err.Error(), "listing datacenters") {
		t.Fatalf("Once against nothing: err = %v", err)
	}
}
