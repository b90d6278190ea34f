package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/fleetdeck/fleetdeck/fleet"
	"github.com/fleetdeck/fleetdeck/internal/consul"
	"github.com/fleetdeck/fleetdeck/internal/consulagent"
)

// cacheHarness runs the inventory in process against a real Consul with a
// cache in a temporary directory.
type cacheHarness struct {
	t     *testing.T
	agent *consulagent.Agent
	admin *api.Client
	cache *inventoryCache
	token string
	// writes counts padIndex's KV writes.
	writes int
}

func newCacheHarness(t *testing.T) *cacheHarness {
	t.Helper()
	return newCacheHarnessWith(t, consulagent.Options{})
}

// newCacheHarnessWith starts the agent with opts.
func newCacheHarnessWith(t *testing.T, opts consulagent.Options) *cacheHarness {
	t.Helper()
	agent := consulagent.StartTest(t, opts)
	admin, err := agent.Client()
	if err != nil {
		t.Fatal(err)
	}
	waitAgentSynced(t, agent, admin)
	h := &cacheHarness{t: t, agent: agent, admin: admin,
		cache: &inventoryCache{dir: filepath.Join(t.TempDir(), "fleetdeck", "inventory"), maxAge: defaultInventoryCacheMaxAge, now: time.Now}}
	h.register(&api.CatalogRegistration{Node: "web-1", Address: "10.1.0.1", NodeMeta: map[string]string{"asg": "web"},
		Service: &api.AgentService{ID: "web", Service: "web", Tags: []string{"blue"}, Port: 80},
		Checks: api.HealthChecks{
			{Node: "web-1", CheckID: "node", Name: "node alive", Status: api.HealthPassing},
			{Node: "web-1", CheckID: "web-http", Name: "web http", Status: api.HealthPassing, ServiceID: "web"},
		}})
	h.register(&api.CatalogRegistration{Node: "web-2", Address: "10.1.0.2", NodeMeta: map[string]string{"asg": "web"},
		Service: &api.AgentService{ID: "web", Service: "web", Tags: []string{"blue"}, Port: 80},
		Check:   &api.AgentCheck{Node: "web-2", CheckID: "node", Name: "node alive", Status: api.HealthPassing}})
	h.register(&api.CatalogRegistration{Node: "db-1", Address: "10.1.0.3",
		Service: &api.AgentService{ID: "db", Service: "db", Port: 5432},
		Check:   &api.AgentCheck{Node: "db-1", CheckID: "node", Name: "node alive", Status: api.HealthPassing}})
	// A name Ansible cannot target: its warning must come with every answer.
	h.register(&api.CatalogRegistration{Node: "a,b", Address: "10.1.0.9"})
	return h
}

// waitAgentSynced waits for the agent's first anti-entropy sync, which
// rewrites its own node (adding its tagged addresses and meta) a moment
// after start: a catalog change that would make the first cached entry
// look stale for reasons of no interest here.
func waitAgentSynced(t *testing.T, agent *consulagent.Agent, admin *api.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		n, _, err := admin.Catalog().Node(agent.NodeName(), (&api.QueryOptions{}).WithContext(ctx))
		if err == nil && n != nil && n.Node != nil {
			if _, ok := n.Node.Meta["consul-network-segment"]; ok {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the agent never synced its own node: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (h *cacheHarness) register(reg *api.CatalogRegistration) {
	h.t.Helper()
	if _, err := h.admin.Catalog().Register(reg, nil); err != nil {
		h.t.Fatalf("registering %s: %v", reg.Node, err)
	}
}

// setCheck changes one check and nothing else.
func (h *cacheHarness) setCheck(node, id, serviceID, status, output string) {
	h.t.Helper()
	h.register(&api.CatalogRegistration{Node: node, SkipNodeUpdate: true,
		Check: &api.AgentCheck{Node: node, CheckID: id, Name: id, Status: status, Output: output, ServiceID: serviceID}})
}

// run answers one request; cache nil means --no-cache.
func (h *cacheHarness) run(cache *inventoryCache, list bool, host string) (src inventorySource, stdout, stderr string) {
	h.t.Helper()
	cfg := api.DefaultConfig()
	cfg.Address, cfg.Token = h.agent.HTTPAddr(), h.token
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	src, err := runInventory(ctx, options{consul: cfg}, &out, &errOut, inventoryRequest{list: list, host: host, cache: cache, verbose: true})
	if err != nil {
		h.t.Fatalf("inventory: %v\n%s", err, errOut.String())
	}
	return src, out.String(), errOut.String()
}

// verboseLines drops the --verbose notes, which say where an answer came
// from, so that answers can be compared.
func verboseLines(s string) string {
	var keep []string
	for _, l := range strings.SplitAfter(s, "\n") {
		if strings.HasPrefix(l, "fleetdeck inventory: warning: ") || !strings.HasPrefix(l, "fleetdeck inventory: ") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "")
}

// expect runs --list (or --host) with the cache, checks where the answer
// came from and that it is byte for byte what a read without the cache
// gives, and returns it.
func (h *cacheHarness) expect(step string, want inventorySource, list bool, host string) string {
	h.t.Helper()
	src, out, errOut := h.run(h.cache, list, host)
	_, fresh, freshErr := h.run(nil, list, host)
	if src != want {
		h.t.Errorf("%s: answer from %v, want %v\n%s", step, src, want, errOut)
	}
	if out != fresh {
		h.t.Errorf("%s: cached answer differs from a full read:\ncached: %s\nfresh:  %s", step, out, fresh)
	}
	if verboseLines(errOut) != verboseLines(freshErr) {
		h.t.Errorf("%s: stderr differs from a full read's:\ncached: %q\nfresh:  %q", step, errOut, freshErr)
	}
	return out
}

// groupHosts returns the hosts of group in --list output.
func groupHosts(t *testing.T, list, group string) []string {
	t.Helper()
	var inv map[string]json.RawMessage
	if err := json.Unmarshal([]byte(list), &inv); err != nil {
		t.Fatalf("--list is not JSON: %v", err)
	}
	var g struct{ Hosts []string }
	if raw, ok := inv[group]; ok {
		if err := json.Unmarshal(raw, &g); err != nil {
			t.Fatalf("group %s: %v", group, err)
		}
	}
	return g.Hosts
}

func TestInventoryCacheIsValidatedAgainstConsul(t *testing.T) {
	h := newCacheHarness(t)

	first := h.expect("first run", fromConsul, true, "")
	entry := h.cache.path(inventoryCacheKey(&api.Config{Address: h.agent.HTTPAddr(), Scheme: "http"}, inventoryCfg()))
	if entries, _ := os.ReadDir(h.cache.dir); len(entries) != 1 || filepath.Join(h.cache.dir, entries[0].Name()) != entry {
		t.Fatalf("cache dir holds %v, want just %s", entries, filepath.Base(entry))
	}
	if fi, err := os.Stat(h.cache.dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("cache dir mode: %v %v", fi.Mode(), err)
	}
	if fi, err := os.Stat(entry); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("cache file mode: %v %v", fi.Mode(), err)
	}

	if again := h.expect("second run", fromCache, true, ""); again != first {
		t.Errorf("second run differs from the first")
	}
	h.expect("--host from the cache", fromCachedNodes, false, "web-1")

	// --no-cache neither reads nor writes the entry.
	before, _ := os.ReadFile(entry)
	if src, _, _ := h.run(nil, true, ""); src != fromConsul {
		t.Errorf("--no-cache answered from %v", src)
	}
	if after, _ := os.ReadFile(entry); !bytes.Equal(before, after) {
		t.Error("--no-cache rewrote the cache entry")
	}

	// Health: read anew at every run, never from the cache.
	h.setCheck("web-1", "web-http", "web", api.HealthCritical, "connection refused")
	h.setCheck("db-1", "_node_maintenance", "", api.HealthCritical, "maintenance")
	out := h.expect("a check went critical", fromCachedNodes, true, "")
	if got := groupHosts(t, out, "health_critical"); len(got) != 1 || got[0] != "web-1" {
		t.Errorf("health_critical = %v, want [web-1]", got)
	}
	if got := groupHosts(t, out, "health_maintenance"); len(got) != 1 || got[0] != "db-1" {
		t.Errorf("health_maintenance = %v, want [db-1]", got)
	}
	h.expect("same health again", fromCache, true, "")
	h.setCheck("web-1", "web-http", "web", api.HealthCritical, "timeout")
	h.expect("a failing check's output changed", fromCachedNodes, true, "")
	h.setCheck("web-1", "web-http", "web", api.HealthPassing, "")
	h.expect("the check passes again", fromCachedNodes, true, "")

	// Catalog changes: each one is a full read, then cached again.
	h.register(&api.CatalogRegistration{Node: "web-2", Address: "10.1.0.2", NodeMeta: map[string]string{"asg": "api"}})
	out = h.expect("node meta changed", fromConsul, true, "")
	if got := groupHosts(t, out, "asg_api"); len(got) != 1 || got[0] != "web-2" {
		t.Errorf("asg_api = %v, want [web-2]", got)
	}
	h.expect("after the meta change", fromCache, true, "")

	h.register(&api.CatalogRegistration{Node: "web-1", SkipNodeUpdate: true,
		Service: &api.AgentService{ID: "web", Service: "web", Tags: []string{"green"}, Port: 80}})
	out = h.expect("service tag changed", fromConsul, true, "")
	if got := groupHosts(t, out, "svc_web__tag_green"); len(got) != 1 || got[0] != "web-1" {
		t.Errorf("svc_web__tag_green = %v, want [web-1]", got)
	}
	h.expect("after the tag change", fromCache, true, "")

	h.register(&api.CatalogRegistration{Node: "web-3", Address: "10.1.0.4"})
	out = h.expect("node joined", fromConsul, true, "")
	if !strings.Contains(out, `"web-3"`) {
		t.Error("the new node is not in the inventory")
	}
	h.expect("after the join", fromCache, true, "")
	if _, err := h.admin.Catalog().Deregister(&api.CatalogDeregistration{Node: "web-3"}, nil); err != nil {
		t.Fatal(err)
	}
	out = h.expect("node left", fromConsul, true, "")
	if strings.Contains(out, `"web-3"`) {
		t.Error("the node that left is still in the inventory")
	}
	h.expect("after the leave", fromCache, true, "")

	// Too old: a full read even though nothing changed.
	old := *h.cache
	old.now = func() time.Time { return time.Now().Add(defaultInventoryCacheMaxAge + time.Minute) }
	if src, _, errOut := h.run(&old, true, ""); src != fromConsul || !strings.Contains(errOut, "old (max 10m0s)") {
		t.Errorf("an entry past its max age answered from %v:\n%s", src, errOut)
	}
}

// inventoryCfg is the fleet config runInventory derives from a zero one.
func inventoryCfg() fleet.Config {
	return fleet.Config{SkipAllChecks: true, WaitTime: inventoryWait}
}

func TestInventoryCacheDamagedEntryIsReplaced(t *testing.T) {
	h := newCacheHarness(t)
	want := h.expect("first run", fromConsul, true, "")
	entry := h.cache.path(inventoryCacheKey(&api.Config{Address: h.agent.HTTPAddr(), Scheme: "http"}, inventoryCfg()))
	good, err := os.ReadFile(entry)
	if err != nil {
		t.Fatal(err)
	}
	hlen := int(binary.BigEndian.Uint32(good[len(cacheMagic):]))
	damages := map[string]func([]byte) []byte{
		"truncated":       func(b []byte) []byte { return b[:len(b)/2] },
		"garbage":         func([]byte) []byte { return []byte("not a cache file at all") },
		"bad header":      func(b []byte) []byte { c := bytes.Clone(b); c[len(cacheMagic)+4] = '!'; return c },
		"flipped in list": func(b []byte) []byte { c := bytes.Clone(b); c[len(c)-10] ^= 0xff; return c },
		"flipped in nodes": func(b []byte) []byte {
			c := bytes.Clone(b)
			c[len(cacheMagic)+4+hlen+10] ^= 0xff
			return c
		},
	}
	for name, damage := range damages {
		if err := os.WriteFile(entry, damage(good), 0o600); err != nil {
			t.Fatal(err)
		}
		list := name != "flipped in nodes" // --host needs the nodes
		src, out, errOut := h.run(h.cache, list, "web-1")
		if src != fromConsul || !strings.Contains(errOut, "warning: ignoring the inventory cache") {
			t.Errorf("%s: answered from %v; stderr:\n%s", name, src, errOut)
		}
		if list && out != want {
			t.Errorf("%s: answer differs from a full read", name)
		}
		if src, _, errOut := h.run(h.cache, list, "web-1"); src == fromConsul {
			t.Errorf("%s: the entry was not rewritten:\n%s", name, errOut)
		}
	}
}

func TestInventoryCachePerTokenAndCluster(t *testing.T) {
	h := newCacheHarness(t)
	h.token = "3f0c3f5e-token-one"
	h.expect("token one", fromConsul, true, "")
	h.expect("token one again", fromCache, true, "")
	h.token = "8d2b71aa-token-two"
	h.expect("token two", fromConsul, true, "")
	h.expect("token two again", fromCache, true, "")
	h.token = "3f0c3f5e-token-one"
	h.expect("token one, after token two", fromCache, true, "")
	entries, err := os.ReadDir(h.cache.dir)
	if err != nil || len(entries) != 2 {
		t.Fatalf("want one entry per token, have %v (%v)", entries, err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(h.cache.dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte("token-one")) || bytes.Contains(b, []byte("token-two")) || strings.Contains(e.Name(), "token") {
			t.Errorf("%s holds a token", e.Name())
		}
	}

	// Same address, same catalog index, other servers: not the same Consul.
	entry := h.cache.path(inventoryCacheKey(&api.Config{Address: h.agent.HTTPAddr(), Scheme: "http", Token: h.token}, inventoryCfg()))
	e, err := h.cache.load(filepath.Base(strings.TrimSuffix(entry, cacheSuffix)))
	if err != nil || e == nil {
		t.Fatalf("loading the entry: %v", err)
	}
	hdr := e.header
	hdr.Datacenters[0].Servers = "00000000-0000-0000-0000-000000000000"
	if err := h.cache.store(hdr, e.nodes, e.list); err != nil {
		t.Fatal(err)
	}
	if src, _, errOut := h.run(h.cache, true, ""); src != fromConsul || !strings.Contains(errOut, "other Consul servers") {
		t.Errorf("an entry from other servers answered from %v:\n%s", src, errOut)
	}

	// A new cluster at the same address (the dev agent starts over with an
	// empty catalog and a new server).
	if err := h.agent.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	src, out, errOut := h.run(h.cache, true, "")
	if src != fromConsul || strings.Contains(out, "web-1") {
		t.Errorf("after a restart: answered from %v:\n%s\n%s", src, out, errOut)
	}
}

// TestInventoryCacheNeverServesAnotherCatalog reproduces the fault trial:
// Consul restarted as a new cluster whose server keeps its node ID (here a
// dev agent given a fixed node_id, as a rebuilt server keeps its node-id
// file), other nodes registered and the raft index written up to the
// cached one. The index and the servers then match the entry; the answer
// must still come from the new catalog. With Connect on, the cluster id
// tells the clusters apart; with it off, the node list's sum does.
func TestInventoryCacheNeverServesAnotherCatalog(t *testing.T) {
	for _, tc := range []struct {
		name, hcl, why string
	}{
		{"connect on", "", "belongs to another Consul cluster"},
		{"connect off", "connect { enabled = false }\n", "the node list of dc1 is not the cached one although its index is the same"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newCacheHarnessWith(t, consulagent.Options{ExtraHCL: `node_id = "6f1e0b52-39a5-4a4c-9d7e-5c0ffee00001"` + "\n" + tc.hcl})
			// Room for the new cluster's own start-up writes and nodes
			// below the index the entry is cached at.
			h.padIndex(h.rawIndex() + 40)
			h.register(&api.CatalogRegistration{Node: "web-9", Address: "10.1.0.99"})
			first := h.expect("first catalog", fromConsul, true, "")
			h.expect("first catalog again", fromCache, true, "")
			entry := h.entry()
			cached := entry.header.Datacenters[0]
			if !strings.Contains(first, `"web-9"`) {
				t.Fatalf("the first catalog's inventory lacks web-9:\n%s", first)
			}
			serversBefore := cached.Servers

			var out, errOut string
			for attempt := 1; ; attempt++ {
				if err := h.agent.Restart(context.Background()); err != nil {
					t.Fatal(err)
				}
				waitAgentSynced(t, h.agent, h.admin)
				for i := range 3 {
					h.register(&api.CatalogRegistration{Node: fmt.Sprintf("other-%d", i), Address: fmt.Sprintf("10.2.0.%d", i+1),
						Service: &api.AgentService{ID: "db", Service: "db", Port: 5432}})
				}
				// KV writes move the raft index without touching the
				// catalog; the last registration lands on the cached index
				// unless a write of Consul's own comes in between.
				h.padIndex(cached.Index - 1)
				h.register(&api.CatalogRegistration{Node: "other-last", Address: "10.2.0.99"})
				probe, err := probeCatalog(context.Background(), consul.New(h.admin, consul.Options{}), inventoryCfg(), []string{"dc1"})
				if err != nil {
					t.Fatal(err)
				}
				if probe[0].Index == cached.Index {
					if probe[0].Servers != serversBefore {
						t.Fatalf("the restarted server has another node ID (%s, was %s): node_id was not kept", probe[0].Servers, serversBefore)
					}
					var src inventorySource
					src, out, errOut = h.run(h.cache, true, "")
					if src != fromConsul {
						t.Errorf("another catalog at the cached index (%d) and with the same servers was answered from %v:\n%s", cached.Index, src, errOut)
					}
					break
				}
				if attempt == 5 {
					t.Fatalf("could not bring the new catalog's index to %d in %d attempts (last %d)", cached.Index, attempt, probe[0].Index)
				}
				t.Logf("attempt %d: index %d, want %d; restarting", attempt, probe[0].Index, cached.Index)
			}
			if !strings.Contains(errOut, tc.why) {
				t.Errorf("the reason given is not %q:\n%s", tc.why, errOut)
			}
			if strings.Contains(out, `"web-9"`) || !strings.Contains(out, `"other-last"`) {
				t.Errorf("the answer is not the new catalog's:\n%s", out)
			}
		})
	}
}

// rawIndex is the raft index of a KV write made now.
func (h *cacheHarness) rawIndex() uint64 {
	h.t.Helper()
	kv := h.admin.KV()
	// A new value each time: Consul does not bump the index of a write
	// that changes nothing.
	h.writes++
	if _, err := kv.Put(&api.KVPair{Key: "fleetdeck-test/pad", Value: []byte(strconv.Itoa(h.writes))}, nil); err != nil {
		h.t.Fatalf("writing KV: %v", err)
	}
	p, _, err := kv.Get("fleetdeck-test/pad", nil)
	if err != nil || p == nil {
		h.t.Fatalf("reading KV: %v", err)
	}
	return p.ModifyIndex
}

// padIndex writes KV until the raft index is at least to.
func (h *cacheHarness) padIndex(to uint64) {
	h.t.Helper()
	for i := h.rawIndex(); i < to; i = h.rawIndex() {
		if h.writes > 10_000 {
			h.t.Fatalf("the raft index does not move: %d after %d writes", i, h.writes)
		}
	}
}

// entry loads the harness' cache entry for --list.
func (h *cacheHarness) entry() *cacheEntry {
	h.t.Helper()
	key := inventoryCacheKey(&api.Config{Address: h.agent.HTTPAddr(), Scheme: "http", Token: h.token}, inventoryCfg())
	e, err := h.cache.load(key)
	if err != nil || e == nil {
		h.t.Fatalf("loading the cache entry: %v", err)
	}
	return e
}

func TestInventoryCommandCacheFlags(t *testing.T) {
	agent := consulagent.StartTest(t, consulagent.Options{})
	admin, err := agent.Client()
	if err != nil {
		t.Fatal(err)
	}
	waitAgentSynced(t, agent, admin)
	cacheHome := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cacheHome)
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("CONSUL_HTTP_ADDR", agent.HTTPAddr())
	run := func(args ...string) (string, string) {
		t.Helper()
		cmd := newRootCmd()
		var out, errOut bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetErr(&errOut)
		cmd.SetArgs(append([]string{"inventory"}, args...))
		if err := cmd.ExecuteContext(context.Background()); err != nil {
			t.Fatalf("inventory %v: %v\n%s", args, err, errOut.String())
		}
		return out.String(), errOut.String()
	}
	dir := filepath.Join(cacheHome, "fleetdeck", "inventory")
	_, errOut := run("--list", "--no-cache", "--verbose")
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("--no-cache created %s (%v)", dir, err)
	}
	if strings.Contains(errOut, "cache") {
		t.Errorf("--no-cache talked about the cache: %s", errOut)
	}
	first, errOut := run("--list", "--verbose")
	if !strings.Contains(errOut, "no entry") || !strings.Contains(errOut, "cached for up to 10m0s") {
		t.Errorf("first run: %s", errOut)
	}
	second, errOut := run("--list", "--verbose", "--cache-max-age", "1h")
	if !strings.Contains(errOut, "served from the cache") || second != first {
		t.Errorf("second run: %s", errOut)
	}
	if out, _ := run("--list"); out != first {
		t.Error("a run without --verbose differs")
	}
}

func TestCompareProbes(t *testing.T) {
	dc := func(name string, index uint64, servers, cluster string) cacheDC {
		return cacheDC{Name: name, Index: index, Servers: servers, Cluster: cluster}
	}
	want := []cacheDC{dc("dc1", 100, "a,b,c", "c1.consul"), dc("dc2", 50, "d", "")}
	for _, tc := range []struct {
		name string
		got  []cacheDC
		why  string
	}{
		{"same", []cacheDC{dc("dc1", 100, "a,b,c", "c1.consul"), dc("dc2", 50, "d", "")}, ""},
		{"index forwards", []cacheDC{dc("dc1", 100, "a,b,c", "c1.consul"), dc("dc2", 51, "d", "")}, "the catalog of dc2 changed (index 51, was 50)"},
		{"index backwards", []cacheDC{dc("dc1", 7, "a,b,c", "c1.consul"), dc("dc2", 50, "d", "")}, "the catalog index of dc1 went back from 100 to 7 (a restored or new cluster?)"},
		{"other servers", []cacheDC{dc("dc1", 100, "a,b,x", "c1.consul"), dc("dc2", 50, "d", "")}, "datacenter dc1 has other Consul servers (another cluster?)"},
		{"other cluster", []cacheDC{dc("dc1", 100, "a,b,c", "c2.consul"), dc("dc2", 50, "d", "")}, `datacenter dc1 belongs to another Consul cluster (cluster id "c2.consul", was "c1.consul")`},
		{"connect turned off", []cacheDC{dc("dc1", 100, "a,b,c", ""), dc("dc2", 50, "d", "")}, `datacenter dc1 belongs to another Consul cluster (cluster id "", was "c1.consul")`},
		{"datacenter gone", []cacheDC{dc("dc1", 100, "a,b,c", "c1.consul")}, "the datacenters changed"},
		{"datacenter renamed", []cacheDC{dc("dc1", 100, "a,b,c", "c1.consul"), dc("dc3", 50, "d", "")}, "the datacenters changed"},
	} {
		if why := compareProbes(want, tc.got); why != tc.why {
			t.Errorf("%s: %q, want %q", tc.name, why, tc.why)
		}
	}
}

func TestCompareContent(t *testing.T) {
	want := []cacheDC{{Name: "dc1", Index: 100, Nodes: "n1", Services: "s1"}}
	for _, tc := range []struct {
		name string
		got  cacheDC
		why  string
	}{
		{"same", cacheDC{Name: "dc1", Index: 100, Nodes: "n1", Services: "s1"}, ""},
		{"index", cacheDC{Name: "dc1", Index: 101, Nodes: "n1", Services: "s1"}, "the catalog of dc1 changed (index 101, was 100)"},
		{"nodes", cacheDC{Name: "dc1", Index: 100, Nodes: "n2", Services: "s1"}, "the node list of dc1 is not the cached one although its index is the same (another catalog?)"},
		{"services", cacheDC{Name: "dc1", Index: 100, Nodes: "n1", Services: "s2"}, "the service list of dc1 is not the cached one although its index is the same (another catalog?)"},
		{"filtered", cacheDC{Name: "dc1", Index: 100, Nodes: "n1", Services: "s1", filtered: true}, "the ACL token may not read every node and service in dc1"},
		{"other datacenter", cacheDC{Name: "dc2", Index: 100, Nodes: "n1", Services: "s1"}, "the datacenters changed"},
	} {
		if why := compareContent(want, []cacheDC{tc.got}); why != tc.why {
			t.Errorf("%s: %q, want %q", tc.name, why, tc.why)
		}
	}
}

func TestFingerprint(t *testing.T) {
	a := fleet.Check{ID: "a", Name: "A", Status: fleet.HealthCritical, Output: "down"}
	b := fleet.Check{ID: "b", Name: "B", Status: fleet.HealthWarning, ServiceID: "web", ServiceName: "web"}
	base := fingerprint(fleet.FailingChecks{"dc1/n1": {a, b}, "dc1/n2": {a}})
	if got := fingerprint(fleet.FailingChecks{"dc1/n2": {a}, "dc1/n1": {a, b}}); got != base {
		t.Error("the fingerprint depends on map order")
	}
	changed := a
	changed.Output = "down again"
	maint := a
	maint.Status = fleet.HealthMaintenance
	for name, f := range map[string]fleet.FailingChecks{
		"output":        {"dc1/n1": {a, b}, "dc1/n2": {changed}},
		"status":        {"dc1/n1": {a, b}, "dc1/n2": {maint}},
		"check moved":   {"dc1/n1": {a}, "dc1/n2": {a, b}},
		"node":          {"dc1/n1": {a, b}, "dc2/n2": {a}},
		"fewer":         {"dc1/n1": {a, b}},
		"none":          {},
		"split strings": {"dc1/n1": {a, b}, "dc1/n2": {{ID: "a", Name: "Acritical", Status: fleet.HealthCritical, Output: "down"}}},
	} {
		if fingerprint(f) == base {
			t.Errorf("%s: same fingerprint", name)
		}
	}
}
