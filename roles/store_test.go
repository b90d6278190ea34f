package roles_test

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-cleanhttp"

	"github.com/fleetdeck/fleetdeck/internal/consul"
	"github.com/fleetdeck/fleetdeck/internal/consulagent"
	"github.com/fleetdeck/fleetdeck/roles"
)

// These tests run the store against a real Consul agent (skipped without
// one unless FLEETDECK_REQUIRE_CONSUL=1), through a proxy that counts what
// the store sends, so that "one transaction per change, nothing else
// written" is measured on the wire.

const (
	prefix = "fleetdeck/desired/"
	dc     = "dc1"
)

const storeCatalog = `
[roles.web]
port = 8080
tags = ["prod", "{{ lookup('pipe', 'id') }}", "$(touch /tmp/pwned)"]
check = { http = "http://{address}:8080/health", interval = "10s" }
[roles.db]
check = { tcp = "{address}:5432" }
[roles.api]
[roles.search]
`

// counter is a reverse proxy in front of the agent that counts requests by
// method and path.
type counter struct {
	mu   sync.Mutex
	reqs map[string]int
}

func (c *counter) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.reqs
	c.reqs = map[string]int{}
	return out
}

// writes counts the requests that can change Consul: everything but GET.
func writes(reqs map[string]int) map[string]int {
	out := map[string]int{}
	for k, n := range reqs {
		if !strings.HasPrefix(k, "GET ") {
			out[k] = n
		}
	}
	return out
}

type env struct {
	store *roles.Store
	raw   *api.Client // straight to the agent, for what the store must not do
	count *counter
	cat   *roles.Catalog
}

func newEnv(t *testing.T) *env {
	t.Helper()
	a := consulagent.StartTest(t, consulagent.Options{Datacenter: dc})
	raw, err := a.Client()
	if err != nil {
		t.Fatal(err)
	}
	cnt := &counter{reqs: map[string]int{}}
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: a.HTTPAddr()})
	upstream := cleanhttp.DefaultPooledTransport()
	rp.Transport = upstream
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cnt.mu.Lock()
		cnt.reqs[r.Method+" "+r.URL.Path]++
		cnt.mu.Unlock()
		rp.ServeHTTP(w, r)
	}))
	tr := cleanhttp.DefaultPooledTransport()
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		srv.Close()
		upstream.CloseIdleConnections()
	})
	cfg := api.DefaultConfig()
	cfg.Address, cfg.Scheme, cfg.Token, cfg.TokenFile, cfg.Datacenter = srv.Listener.Addr().String(), "http", "", "", ""
	cfg.HttpClient = &http.Client{Transport: tr}
	viaProxy, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cat, err := roles.Parse([]byte(storeCatalog), "roles.toml")
	if err != nil {
		t.Fatal(err)
	}
	s, err := roles.NewStore(consul.New(viaProxy, consul.Options{}), roles.StoreConfig{Catalog: cat})
	if err != nil {
		t.Fatal(err)
	}
	return &env{store: s, raw: raw, count: cnt, cat: cat}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// kvSnapshot is every key under the prefix with its ModifyIndex, and the
// KV table's index (which moves with any write, deletions included).
type kvSnapshot struct {
	keys  map[string]uint64
	index uint64
}

func (e *env) snapshot(t *testing.T) kvSnapshot {
	t.Helper()
	pairs, meta, err := e.raw.KV().List(prefix, &api.QueryOptions{RequireConsistent: true})
	if err != nil {
		t.Fatal(err)
	}
	s := kvSnapshot{keys: map[string]uint64{}, index: meta.LastIndex}
	for _, p := range pairs {
		s.keys[p.Key] = p.ModifyIndex
	}
	return s
}

func (e *env) mustSet(t *testing.T, ch roles.Change) *roles.Desired {
	t.Helper()
	if ch.Datacenter == "" {
		ch.Datacenter = dc
	}
	if ch.Who == "" {
		ch.Who = "alice@laptop"
	}
	d, err := e.store.Set(ctxT(t), ch)
	if err != nil {
		t.Fatalf("Set %+v: %v", ch, err)
	}
	return d
}

// oneTxn checks that exactly one write went to Consul since the last
// take, and that it was a /v1/txn.
func (e *env) oneTxn(t *testing.T, what string) {
	t.Helper()
	if w := writes(e.count.take()); !maps.Equal(w, map[string]int{"PUT /v1/txn": 1}) {
		t.Errorf("%s: writes %v, want one PUT /v1/txn", what, w)
	}
}

func TestSetGetHistoryRevert(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	if d, err := e.store.Get(ctx, dc, "web-1"); err != nil || d != nil {
		t.Fatalf("unmanaged node: %+v, %v", d, err)
	}
	e.count.take()

	g1 := e.mustSet(t, roles.Change{Node: "web-1", Add: []string{"web", "api", "web"}, Reason: "incident 42: more web"})
	e.oneTxn(t, "gen 1")
	if g1.Generation != 1 || !slices.Equal(g1.Roles, []string{"api", "web"}) || g1.Node != "web-1" || g1.Datacenter != dc ||
		g1.Who != "alice@laptop" || g1.When.IsZero() || g1.Maintenance.On {
		t.Fatalf("gen 1: %+v", g1)
	}
	g2 := e.mustSet(t, roles.Change{Node: "web-1", Add: []string{"db", "api"}, Remove: []string{"web", "search"}, Reason: "move to db", Who: "bob@bastion"})
	e.oneTxn(t, "gen 2")
	if g2.Generation != 2 || !slices.Equal(g2.Roles, []string{"api", "db"}) {
		t.Fatalf("gen 2: %+v", g2)
	}
	g3 := e.mustSet(t, roles.Change{Node: "web-1", Maintenance: &roles.Maintenance{On: true}, Reason: "disk replacement"})
	e.oneTxn(t, "gen 3")
	if !g3.Maintenance.On || g3.Maintenance.Reason != "disk replacement" || !slices.Equal(g3.Roles, g2.Roles) {
		t.Fatalf("gen 3: %+v", g3)
	}

	got, err := e.store.Get(ctx, dc, "web-1")
	if err != nil || got == nil || !equalRecord(*got, *g3) {
		t.Fatalf("Get: %+v, %v; want %+v", got, err, g3)
	}
	hist, err := e.store.History(ctx, dc, "web-1")
	if err != nil || len(hist) != 3 || !equalRecord(hist[0], *g1) || !equalRecord(hist[1], *g2) || !equalRecord(hist[2], *g3) {
		t.Fatalf("History: %+v, %v", hist, err)
	}

	e.count.take()
	g4, err := e.store.Revert(ctx, dc, "web-1", 1, "undo: incident over", "carol@laptop")
	if err != nil {
		t.Fatal(err)
	}
	e.oneTxn(t, "revert")
	if g4.Generation != 4 || g4.RevertOf != 1 || !slices.Equal(g4.Roles, g1.Roles) || g4.Maintenance.On || g4.Who != "carol@laptop" || g4.Reason != "undo: incident over" {
		t.Fatalf("revert: %+v", g4)
	}
	if hist, _ := e.store.History(ctx, dc, "web-1"); len(hist) != 4 || !equalRecord(hist[3], *g4) {
		t.Fatalf("history after revert: %+v", hist)
	}

	// The keys are where the package's contract says.
	snap := e.snapshot(t)
	want := []string{prefix + "audit/web-1/00000000000000000001", prefix + "audit/web-1/00000000000000000002",
		prefix + "audit/web-1/00000000000000000003", prefix + "audit/web-1/00000000000000000004", prefix + "nodes/web-1"}
	if keys := slices.Sorted(maps.Keys(snap.keys)); !slices.Equal(keys, want) {
		t.Errorf("keys %v, want %v", keys, want)
	}

	// List: one KV read for the datacenter.
	e.mustSet(t, roles.Change{Node: "db-1", Add: []string{"db"}, Reason: "new db"})
	e.count.take()
	all, err := e.store.List(ctx, dc)
	if err != nil || len(all) != 2 || all[0].Node != "db-1" || all[1].Node != "web-1" || all[1].Generation != 4 {
		t.Fatalf("List: %+v, %v", all, err)
	}
	if reqs := e.count.take(); len(reqs) != 1 || reqs["GET /v1/kv/"+prefix+"nodes/"] != 1 {
		t.Errorf("List sent %v, want one KV read", reqs)
	}
}

func equalRecord(a, b roles.Desired) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb) && a.When.Equal(b.When)
}

// Two operators changing one node at once: exactly one wins, the other
// gets a conflict naming the winner, nothing is lost and the audit trail
// has one record per generation.
func TestConcurrentChangesOneWins(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	race := func(t *testing.T, changes [2]roles.Change) (won *roles.Desired, lost *roles.ConflictError) {
		t.Helper()
		var wg sync.WaitGroup
		var res [2]*roles.Desired
		var errs [2]error
		for i := range changes {
			wg.Go(func() { res[i], errs[i] = e.store.Set(ctx, changes[i]) })
		}
		wg.Wait()
		for i := range 2 {
			var ce *roles.ConflictError
			switch {
			case errs[i] == nil:
				if won != nil {
					t.Fatalf("both won: %+v and %+v", won, res[i])
				}
				won = res[i]
			case errors.As(errs[i], &ce):
				lost = ce
			default:
				t.Fatalf("changer %d: %v", i, errs[i])
			}
		}
		if won == nil || lost == nil {
			t.Fatalf("want one winner and one conflict: won %+v, lost %v", won, lost)
		}
		if lost.Current == nil || lost.Current.Who != won.Who || lost.Current.Generation != won.Generation ||
			!strings.Contains(lost.Error(), won.Who) || !strings.Contains(lost.Error(), won.Reason) || !strings.Contains(lost.Error(), "nothing was written") {
			t.Errorf("conflict %q does not name the winner %+v", lost, won)
		}
		return won, lost
	}
	alice := roles.Change{Node: "n1", Datacenter: dc, Add: []string{"web"}, Reason: "alice's reason", Who: "alice@a"}
	bob := roles.Change{Node: "n1", Datacenter: dc, Add: []string{"db"}, Reason: "bob's reason", Who: "bob@b"}

	// Both read before either writes: the check-and-set decides, on an
	// unmanaged node (index 0: must not exist) and on a managed one.
	var barrier sync.WaitGroup
	roles.SetBeforeWrite(e.store, func() { barrier.Done(); barrier.Wait() })
	barrier.Add(2)
	e.count.take()
	race(t, [2]roles.Change{alice, bob})
	if w := writes(e.count.take()); w["PUT /v1/txn"] != 2 || len(w) != 1 {
		t.Errorf("two racing changes sent %v, want one txn each and nothing else", w)
	}
	alice.Add, bob.Add = []string{"api"}, []string{"search"}
	barrier.Add(2)
	race(t, [2]roles.Change{alice, bob})
	roles.SetBeforeWrite(e.store, nil)

	// The same expected generation (both previewed generation 2): one
	// wins, the other is refused whether it reads before or after.
	alice.Expect, bob.Expect = 2, 2
	alice.Add, bob.Add = nil, nil
	alice.Maintenance, bob.Maintenance = &roles.Maintenance{On: true}, &roles.Maintenance{On: true, Reason: "bob's maint"}
	_, lost := race(t, [2]roles.Change{alice, bob})
	if lost.Based != 2 {
		t.Errorf("conflict based on %d, want 2", lost.Based)
	}

	// Many changers, no coordination: every success is a generation, and
	// every generation has exactly one audit record equal to what its
	// changer was told.
	var wg sync.WaitGroup
	var mu sync.Mutex
	var won []*roles.Desired
	for i := range 8 {
		wg.Go(func() {
			ch := roles.Change{Node: "n1", Datacenter: dc, Reason: "changer", Who: "u" + string(rune('0'+i))}
			if i%2 == 0 {
				ch.Maintenance = &roles.Maintenance{On: i%4 == 0, Reason: "m" + string(rune('0'+i))}
			} else {
				ch.Add = []string{[]string{"web", "db", "api", "search"}[i/2]}
				ch.Remove = []string{[]string{"db", "api", "search", "web"}[i/2]}
			}
			d, err := e.store.Set(ctx, ch)
			var ce *roles.ConflictError
			switch {
			case err == nil:
				mu.Lock()
				won = append(won, d)
				mu.Unlock()
			case errors.As(err, &ce), errors.Is(err, roles.ErrNothingToChange):
			default:
				t.Errorf("changer %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	hist, err := e.store.History(ctx, dc, "n1")
	if err != nil {
		t.Fatal(err)
	}
	for i, h := range hist {
		if h.Generation != uint64(i+1) {
			t.Fatalf("history generations %v: not 1..n", hist)
		}
	}
	cur, _ := e.store.Get(ctx, dc, "n1")
	if cur == nil || cur.Generation != uint64(len(hist)) || len(hist) != 3+len(won) {
		t.Fatalf("current %+v, %d audit records, %d uncoordinated winners", cur, len(hist), len(won))
	}
	for _, w := range won {
		if !equalRecord(hist[w.Generation-1], *w) {
			t.Errorf("generation %d: audit %+v, winner was told %+v", w.Generation, hist[w.Generation-1], w)
		}
	}
}

// Every refused input changes nothing: the prefix's keys and their
// ModifyIndex, and the KV index, are the same before and after, and no
// write reached Consul.
func TestRefusedInputsChangeNothing(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	e.mustSet(t, roles.Change{Node: "n1", Add: []string{"web"}, Reason: "start"})
	before := e.snapshot(t)
	e.count.take()

	ok := roles.Change{Node: "n1", Datacenter: dc, Add: []string{"db"}, Reason: "why", Who: "alice@a"}
	with := func(f func(*roles.Change)) roles.Change { c := ok; f(&c); return c }
	for _, tc := range []struct {
		name string
		ch   roles.Change
		want string
	}{
		{"unknown role", with(func(c *roles.Change) { c.Add = []string{"serch"} }), `unknown role "serch" (known roles: api, db, search, web)`},
		{"bad role name", with(func(c *roles.Change) { c.Add = []string{"Web"} }), "only a-z, 0-9 and '-'"},
		{"path role name", with(func(c *roles.Change) { c.Add = []string{"../../etc"} }), "only a-z"},
		{"bad removed name", with(func(c *roles.Change) { c.Remove = []string{"a b"} }), "remove: role name"},
		{"unknown removed role", with(func(c *roles.Change) { c.Remove = []string{"serch"} }), `unknown role "serch"`},
		{"empty reason", with(func(c *roles.Change) { c.Reason = "" }), "reason is required"},
		{"blank reason", with(func(c *roles.Change) { c.Reason = "  " }), "reason is required"},
		{"control reason", with(func(c *roles.Change) { c.Reason = "ok\x1b[2Jgone" }), "reason has control characters"},
		{"newline reason", with(func(c *roles.Change) { c.Reason = "a\nb" }), "reason has control characters"},
		{"long reason", with(func(c *roles.Change) { c.Reason = strings.Repeat("x", 501) }), "more than 500"},
		{"no who", with(func(c *roles.Change) { c.Who = "" }), "who is required"},
		{"no datacenter", with(func(c *roles.Change) { c.Datacenter = "" }), "datacenter is empty"},
		{"control maintenance reason", with(func(c *roles.Change) { c.Maintenance = &roles.Maintenance{On: true, Reason: "a\rb"} }), "maintenance reason has control"},
		{"add and remove", with(func(c *roles.Change) { c.Add, c.Remove = []string{"db", "api"}, []string{"api"} }), "api both added and removed"},
		{"nothing to change: held", with(func(c *roles.Change) { c.Add = []string{"web"} }), "nothing to change"},
		{"nothing to change: empty", with(func(c *roles.Change) { c.Add = nil }), "nothing to change"},
		{"nothing to change: not held", with(func(c *roles.Change) { c.Add, c.Remove = nil, []string{"db"} }), "nothing to change"},
		{"nothing to change: maint off", with(func(c *roles.Change) { c.Add, c.Maintenance = nil, &roles.Maintenance{} }), "nothing to change"},
		{"nothing to change: unmanaged", with(func(c *roles.Change) { c.Node, c.Add, c.Remove = "n2", nil, []string{"web"} }), "nothing to change"},
		{"expected another generation", with(func(c *roles.Change) { c.Expect = 7 }), "after generation 7 was read"},
		{"node with slash", with(func(c *roles.Change) { c.Node = "a/../../b" }), "DNS-compatible"},
		{"node dotdot", with(func(c *roles.Change) { c.Node = ".." }), "DNS-compatible"},
		{"node dot", with(func(c *roles.Change) { c.Node = "." }), "DNS-compatible"},
		{"empty node", with(func(c *roles.Change) { c.Node = "" }), "node name is empty"},
		{"control node", with(func(c *roles.Change) { c.Node = "n1\x00" }), "DNS-compatible"},
		{"newline node", with(func(c *roles.Change) { c.Node = "n1\nfleetdeck/desired/nodes/n1" }), "DNS-compatible"},
		{"long node", with(func(c *roles.Change) { c.Node = strings.Repeat("n", 129) }), "more than 128"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := e.store.Set(ctx, tc.ch)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Set: %+v, %v; want an error saying %q", d, err, tc.want)
			}
		})
	}
	for _, tc := range []struct {
		name         string
		node         string
		gen          uint64
		reason, want string
	}{
		{"missing generation", "n1", 9, "back", "has no generation 9"},
		{"generation 0", "n1", 0, "back", "generations count from 1"},
		{"to the current state", "n1", 1, "back", "nothing to change"},
		{"no reason", "n1", 1, "", "reason is required"},
		{"hostile node", "../n1", 1, "back", "DNS-compatible"},
	} {
		t.Run("revert "+tc.name, func(t *testing.T) {
			d, err := e.store.Revert(ctx, dc, tc.node, tc.gen, tc.reason, "alice@a")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Revert: %+v, %v; want an error saying %q", d, err, tc.want)
			}
		})
	}
	if _, err := e.store.Get(ctx, dc, "a/b"); err == nil {
		t.Error("Get of a hostile node name was not refused")
	}
	if _, err := e.store.History(ctx, dc, ".."); err == nil {
		t.Error("History of a hostile node name was not refused")
	}
	if w := writes(e.count.take()); len(w) != 0 {
		t.Errorf("refused changes wrote %v", w)
	}
	after := e.snapshot(t)
	if !maps.Equal(before.keys, after.keys) || before.index != after.index {
		t.Errorf("KV changed: before %v @%d, after %v @%d", before.keys, before.index, after.keys, after.index)
	}
}

// A role that left the catalog blocks every change but its removal.
func TestRoleDroppedFromTheCatalog(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	e.mustSet(t, roles.Change{Node: "n1", Add: []string{"web", "search"}, Reason: "start"})
	small, err := roles.Parse([]byte("[roles.web]\n[roles.db]\n"), "new.toml")
	if err != nil {
		t.Fatal(err)
	}
	s2 := e.storeWith(t, small)
	if _, err := s2.Set(ctx, roles.Change{Node: "n1", Datacenter: dc, Add: []string{"db"}, Reason: "r", Who: "w"}); err == nil ||
		!strings.Contains(err.Error(), `unknown role "search"`) || !strings.Contains(err.Error(), "remove the role") {
		t.Fatalf("adding beside an uncatalogued role: %v", err)
	}
	d, err := s2.Set(ctx, roles.Change{Node: "n1", Datacenter: dc, Remove: []string{"search"}, Reason: "r", Who: "w"})
	if err != nil || !slices.Equal(d.Roles, []string{"web"}) {
		t.Fatalf("removing the uncatalogued role: %+v, %v", d, err)
	}
}

func (e *env) storeWith(t *testing.T, cat *roles.Catalog) *roles.Store {
	t.Helper()
	s, err := roles.NewStore(consul.New(e.raw, consul.Options{}), roles.StoreConfig{Catalog: cat})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A corrupt value in KV is an error naming the key, never a panic; List
// and History still return the records that decode.
func TestCorruptRecords(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	e.mustSet(t, roles.Change{Node: "good", Add: []string{"web"}, Reason: "r"})
	e.mustSet(t, roles.Change{Node: "good", Add: []string{"db"}, Reason: "r"})
	put := func(key, value string) {
		t.Helper()
		if _, err := e.raw.KV().Put(&api.KVPair{Key: key, Value: []byte(value)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	put(prefix+"nodes/bad", "{not json")
	put(prefix+"nodes/other", `{"node":"someone-else","datacenter":"dc1","generation":1,"roles":[]}`)
	put(prefix+"nodes/evil", `{"node":"evil","datacenter":"dc1","generation":1,"roles":["../../x"]}`)
	put(prefix+"nodes/zero", `{"node":"zero","datacenter":"dc1","generation":0}`)
	put(prefix+"nodes/nested/x", `{}`)
	put(prefix+"audit/good/00000000000000000002", `[]`)

	for node, want := range map[string]string{
		"bad":   "KV key " + prefix + "nodes/bad holds no valid record",
		"other": `it is about node "someone-else"`,
		"evil":  "only a-z",
		"zero":  "generation 0",
	} {
		if d, err := e.store.Get(ctx, dc, node); err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "fix or delete it") {
			t.Errorf("Get %s: %+v, %v; want %q", node, d, err, want)
		}
		before := e.snapshot(t)
		if _, err := e.store.Set(ctx, roles.Change{Node: node, Datacenter: dc, Add: []string{"web"}, Reason: "r", Who: "w"}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Set on corrupt %s: %v", node, err)
		}
		if after := e.snapshot(t); !maps.Equal(before.keys, after.keys) {
			t.Errorf("Set on corrupt %s wrote", node)
		}
	}
	all, err := e.store.List(ctx, dc)
	if len(all) != 1 || all[0].Node != "good" || err == nil || !strings.Contains(err.Error(), prefix+"nodes/bad") || !strings.Contains(err.Error(), prefix+"nodes/nested/x") {
		t.Errorf("List: %+v, %v", all, err)
	}
	hist, err := e.store.History(ctx, dc, "good")
	if len(hist) != 1 || hist[0].Generation != 1 || err == nil || !strings.Contains(err.Error(), prefix+"audit/good/00000000000000000002") {
		t.Errorf("History: %+v, %v", hist, err)
	}
	if _, err := e.store.Revert(ctx, dc, "good", 2, "back", "w"); err == nil || !strings.Contains(err.Error(), "audit/good/00000000000000000002 holds no valid record") {
		t.Errorf("Revert to a corrupt generation: %v", err)
	}
}

// Hostile text (Jinja, shell, JSON quoting, terminal escapes are refused,
// but bidi controls and quotes are text) is stored and read back byte for
// byte, as JSON; the store never interprets it.
func TestHostileTextRoundTrips(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	reason := `{{ lookup('pipe', 'id') }} $(rm -rf /) ` + "`id`" + ` "; DROP TABLE x; -- \u202egnp.exe <script>&amp; \\ 🙂 %s %n`
	who := `eve"@host'; echo pwned`
	d := e.mustSet(t, roles.Change{Node: "web-1.x_y", Add: []string{"web"}, Maintenance: &roles.Maintenance{On: true, Reason: "{% raw %}" + reason}, Reason: reason, Who: who})
	got, err := e.store.Get(ctx, dc, "web-1.x_y")
	if err != nil || got.Reason != reason || got.Who != who || got.Maintenance.Reason != "{% raw %}"+reason || got.Node != "web-1.x_y" {
		t.Fatalf("read back %+v, %v", got, err)
	}
	p, _, err := e.raw.KV().Get(prefix+"nodes/web-1.x_y", nil)
	if err != nil || p == nil {
		t.Fatalf("raw read: %v", err)
	}
	var raw roles.Desired
	if err := json.Unmarshal(p.Value, &raw); err != nil || raw.Reason != reason || raw.Who != who || !equalRecord(raw, *d) {
		t.Errorf("raw JSON %s: %v", p.Value, err)
	}
	hist, err := e.store.History(ctx, dc, "web-1.x_y")
	if err != nil || len(hist) != 1 || hist[0].Reason != reason {
		t.Errorf("history %+v, %v", hist, err)
	}
	web, _ := e.cat.Lookup("web")
	if web.Tags[1] != "{{ lookup('pipe', 'id') }}" || web.Tags[2] != "$(touch /tmp/pwned)" {
		t.Errorf("catalog tags %q", web.Tags)
	}
}

// A desired record deleted by hand leaves its audit trail: the next change
// carries on from the trail's last generation instead of failing on its
// keys forever.
func TestGenerationsContinueAfterTheRecordIsDeleted(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	e.mustSet(t, roles.Change{Node: "n1", Add: []string{"web"}, Reason: "r"})
	e.mustSet(t, roles.Change{Node: "n1", Add: []string{"db"}, Reason: "r"})
	if _, err := e.raw.KV().Delete(prefix+"nodes/n1", nil); err != nil {
		t.Fatal(err)
	}
	d := e.mustSet(t, roles.Change{Node: "n1", Add: []string{"api"}, Reason: "again"})
	if d.Generation != 3 || !slices.Equal(d.Roles, []string{"api"}) {
		t.Errorf("after deletion: %+v", d)
	}
	if hist, err := e.store.History(ctx, dc, "n1"); err != nil || len(hist) != 3 {
		t.Errorf("history %d, %v", len(hist), err)
	}
}

// The prefix is checked and normalised.
func TestStorePrefix(t *testing.T) {
	for in, want := range map[string]string{"": roles.DefaultKVPrefix, "ops/desired": "ops/desired/", "x/": "x/"} {
		s, err := roles.NewStore(nil, roles.StoreConfig{Prefix: in})
		if err != nil || s.Prefix() != want {
			t.Errorf("prefix %q: %v, %v", in, s, err)
		}
	}
	for _, bad := range []string{"/abs/", "a//b/", "a/../b", "a\x00/"} {
		if _, err := roles.NewStore(nil, roles.StoreConfig{Prefix: bad}); err == nil {
			t.Errorf("prefix %q accepted", bad)
		}
	}
	if k := roles.AuditKey("p/", "n", 42); k != "p/audit/n/00000000000000000042" {
		t.Errorf("AuditKey %q", k)
	}
}

// Plan previews a change with Set's checks and writes nothing; committing
// it with Expect refuses if the node changed since the preview.
func TestPlanThenSetWithExpect(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	e.mustSet(t, roles.Change{Node: "n1", Add: []string{"web"}, Reason: "start"})
	before := e.snapshot(t)
	e.count.take()
	ch := roles.Change{Node: "n1", Datacenter: dc, Add: []string{"db"}, Remove: []string{"web"}, Reason: "move", Who: "alice@a"}
	cur, next, err := e.store.Plan(ctx, ch)
	if err != nil || cur == nil || cur.Generation != 1 || next.Generation != 2 || !slices.Equal(next.Roles, []string{"db"}) || !slices.Equal(cur.Roles, []string{"web"}) {
		t.Fatalf("Plan: %+v → %+v, %v", cur, next, err)
	}
	if _, _, err := e.store.Plan(ctx, roles.Change{Node: "n1", Datacenter: dc, Add: []string{"web"}, Reason: "r", Who: "w"}); !errors.Is(err, roles.ErrNothingToChange) {
		t.Errorf("Plan of nothing: %v", err)
	}
	if _, n, err := e.store.Plan(ctx, roles.Change{Node: "fresh", Datacenter: dc, Add: []string{"api"}, Reason: "r", Who: "w"}); err != nil || n.Generation != 1 {
		t.Errorf("Plan on an unmanaged node: %+v, %v", n, err)
	}
	if w := writes(e.count.take()); len(w) != 0 {
		t.Errorf("Plan wrote %v", w)
	}
	if after := e.snapshot(t); !maps.Equal(before.keys, after.keys) || before.index != after.index {
		t.Errorf("Plan changed KV")
	}
	// Someone else changes the node between preview and confirm.
	e.mustSet(t, roles.Change{Node: "n1", Add: []string{"api"}, Reason: "meanwhile", Who: "bob@b"})
	ch.Expect = cur.Generation
	var ce *roles.ConflictError
	if _, err := e.store.Set(ctx, ch); !errors.As(err, &ce) || ce.Current.Who != "bob@b" || ce.Based != 1 {
		t.Fatalf("confirming a stale preview: %v", err)
	}
	// A preview of an unmanaged node: someone else's first record wins.
	fresh := roles.Change{Node: "fresh", Datacenter: dc, Add: []string{"api"}, Reason: "r", Who: "w", ExpectUnmanaged: true}
	e.mustSet(t, roles.Change{Node: "fresh", Add: []string{"web"}, Reason: "first", Who: "carol@c"})
	if _, err := e.store.Set(ctx, fresh); !errors.As(err, &ce) || ce.Current.Who != "carol@c" || !strings.Contains(err.Error(), "no desired record") {
		t.Fatalf("confirming a stale preview of an unmanaged node: %v", err)
	}
	// A revert is planned like a change, and a revert with roles is refused.
	if _, n, err := e.store.Plan(ctx, roles.Change{Node: "n1", Datacenter: dc, RevertTo: 1, Reason: "undo", Who: "w"}); err != nil || n.RevertOf != 1 || !slices.Equal(n.Roles, []string{"web"}) || n.Generation != 3 {
		t.Errorf("Plan of a revert: %+v, %v", n, err)
	}
	if _, _, err := e.store.Plan(ctx, roles.Change{Node: "n1", Datacenter: dc, RevertTo: 1, Add: []string{"db"}, Reason: "undo", Who: "w"}); err == nil {
		t.Error("a revert with roles to add was planned")
	}
}

// A role whose check is a script never enters the catalog, so it cannot
// be assigned: the refusal at parse time is what keeps it out of KV.
func TestScriptCheckRoleCannotBeAssigned(t *testing.T) {
	e := newEnv(t)
	if _, err := roles.Parse([]byte("[roles.evil]\ncheck = { args = [\"/bin/sh\", \"-c\", \"id\"], interval = \"10s\" }\n"), "roles.toml"); err == nil ||
		!strings.Contains(err.Error(), "script checks are not allowed") {
		t.Fatalf("parse: %v", err)
	}
	before := e.snapshot(t)
	if _, err := e.store.Set(ctxT(t), roles.Change{Node: "n1", Datacenter: dc, Add: []string{"evil"}, Reason: "r", Who: "w"}); err == nil ||
		!strings.Contains(err.Error(), `unknown role "evil"`) {
		t.Fatalf("Set: %v", err)
	}
	if after := e.snapshot(t); !maps.Equal(before.keys, after.keys) || before.index != after.index {
		t.Errorf("KV changed")
	}
}
