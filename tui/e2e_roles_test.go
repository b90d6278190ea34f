package tui

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/fleetdeck/fleetdeck/fleet"
	"github.com/fleetdeck/fleetdeck/internal/consul"
	"github.com/fleetdeck/fleetdeck/internal/consulagent"
	"github.com/fleetdeck/fleetdeck/internal/demoplaybooks"
	"github.com/fleetdeck/fleetdeck/provision"
	"github.com/fleetdeck/fleetdeck/roles"
)

// e2eRoles is the console's RolesService as cmd wires it: the real
// Applier on the real run manager, the real Store's reads, the catalog.
type e2eRoles struct {
	*roles.Applier
	store   *roles.Store
	catalog *roles.Catalog
}

func (r *e2eRoles) Catalog() *roles.Catalog { return r.catalog }
func (r *e2eRoles) List(ctx context.Context, dc string) ([]roles.Desired, error) {
	return r.store.List(ctx, dc)
}
func (r *e2eRoles) History(ctx context.Context, dc, node string) ([]roles.Desired, error) {
	return r.store.History(ctx, dc, node)
}

// TestEndToEndRolesConsole is issue 9's console path with real
// components: a Consul server, a real client agent app-01 joined to it, a
// playbook directory holding the shipped apply playbook, a role catalog
// and app-01's host_vars (local connection, its config dir, HTTP address
// and consul binary), the real run manager with the real ansible-playbook,
// the real Store and Applier. In the console: o on app-01, add api, a
// reason that is Jinja and shell, the preview shows current → desired and
// the argv, enter applies, the run view opens, the header tracks the node,
// the Nodes view shows it Converged once the catalog has fleetdeck-api,
// Node detail shows the record, the last apply and the history; the
// reason ran nowhere; a read-only console has none of the actions.
func TestEndToEndRolesConsole(t *testing.T) {
	consulagent.NeedProgram(t, "ansible-playbook")
	bin := consulagent.TestBinary(t)
	server := consulagent.StartTest(t, consulagent.Options{Binary: bin})
	agent := consulagent.StartTest(t, consulagent.Options{Binary: bin, NodeName: "app-01", JoinLAN: []string{server.SerfLANAddr()}})
	c, err := server.Client()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := fleet.NewWatcher(c, fleet.Config{BackoffMin: 100 * time.Millisecond, BackoffMax: time.Second})
	watched := make(chan struct{})
	go func() { defer close(watched); _ = w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-watched })
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	for s := w.Current(); s.Node("dc1", "app-01") == nil || !s.Complete(); {
		if s, err = w.Next(wctx, s.Version); err != nil {
			t.Fatalf("waiting for app-01 in the fleet: %v", err)
		}
	}

	dir := t.TempDir()
	books := filepath.Join(dir, "playbooks")
	if err := os.MkdirAll(books, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := roles.WritePlaybook(books); err != nil {
		t.Fatal(err)
	}
	if err := demoplaybooks.WriteRoles(books, 1, []demoplaybooks.Agent{{Node: "app-01", ConfigDir: agent.ConfigDir(),
		HTTPAddr: "http://" + agent.HTTPAddr(), ConsulBin: bin}}); err != nil {
		t.Fatal(err)
	}
	cat, err := roles.ReadDir(books)
	if err != nil {
		t.Fatal(err)
	}
	pbCat, err := provision.NewPlaybookCatalog(books)
	if err != nil {
		t.Fatal(err)
	}
	runner, err := provision.NewRunner(provision.RunnerConfig{Catalog: pbCat, RunsDir: filepath.Join(dir, "runs"),
		Env: []string{"ANSIBLE_PYTHON_INTERPRETER=auto_silent"}, CancelGrace: time.Second, TermGrace: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	hist, err := provision.OpenHistory(context.Background(), provision.HistoryConfig{Path: filepath.Join(dir, "history.db")})
	if err != nil {
		t.Fatal(err)
	}
	locks := provision.NewLockManager(c, provision.LockConfig{Prefix: "fdroles", LockDelay: -1, TTL: 10 * time.Second})
	mgr, err := provision.NewManager(provision.ManagerConfig{Feed: w, Runner: runner, History: hist, Queue: provision.NewRunQueue(locks, provision.QueueConfig{Cap: 2})})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(mgr.Close)
	store, err := roles.NewStore(consul.New(c, consul.Options{}), roles.StoreConfig{Catalog: cat})
	if err != nil {
		t.Fatal(err)
	}
	applier, err := roles.NewApplier(roles.ApplierConfig{Store: store, Catalog: cat, Runner: mgr, Who: "e2e@console"})
	if err != nil {
		t.Fatal(err)
	}
	svc := &e2eRoles{Applier: applier, store: store, catalog: cat}

	marker := filepath.Join(t.TempDir(), "pwned")
	reason := "e2e {{ lookup('pipe','touch " + marker + "') }} $(touch " + marker + ")"
	pctx, pcancel := context.WithCancel(ctx)
	defer pcancel()
	term, done := runProgramSize(pctx, New(pctx, Options{Feed: w, NoColor: true, Provisioner: mgr, Roles: svc}), 160, 45)
	long := 2 * time.Minute
	const enter, ctrlS, tab, esc = "\r", "\x13", "\t", "\x1b"
	term.waitForWithin(t, long, "app-01")
	term.emu.SendText("/name:app-01" + enter)
	term.waitFor(t, "1/1 of ")
	term.emu.SendText("o")
	term.waitForWithin(t, long, "Change the roles of node dc1/app-01", "> [ ] api", "dc1/app-01  unmanaged · catalog []")
	term.emu.SendText(" ")
	term.waitFor(t, "[+] api             add")
	// api, search, web, worker, maintenance, check mode: the reason is
	// six lines down.
	term.emu.SendText(strings.Repeat(tab, 6))
	term.waitFor(t, "> Reason")
	term.emu.SendText(reason)
	term.waitFor(t, "$(touch ")
	term.emu.SendText(ctrlS)
	term.waitForWithin(t, long, "Preview: nothing has been written or run yet", "dc1/app-01  generation - → 1",
		"roles: unmanaged → [api]  +api", "reason: e2e {{ lookup('pipe','touch ", "e2e@console)",
		"Hosts as ansible-playbook resolves them (1)", "--limit=app-01", "fleetdeck-apply.yml", "ansible-playbook")
	confirmed := time.Now()
	term.emu.SendText(enter)
	term.waitForWithin(t, long, "launched: 1 node tracked", "fleetdeck-apply.yml · node dc1/app-01")
	term.waitForWithin(t, long, "roles applying 1")

	// The run ends, the agent reloads, the catalog shows fleetdeck-api:
	// Converged, in the Nodes view.
	term.waitForWithin(t, long, "OK · elapsed")
	term.emu.SendText(esc)
	s := term.waitForWithin(t, long, "STATE", "converged")
	if strings.Contains(s, "roles applying") {
		t.Errorf("converged but still tracked:\n%s", s)
	}
	t.Logf("confirm → Converged on screen in %v", time.Since(confirmed).Round(10*time.Millisecond))
	node, _, err := c.Catalog().Node("app-01", nil)
	if err != nil {
		t.Fatal(err)
	}
	if sv := node.Services["fleetdeck-api"]; sv == nil || sv.Service != "api" || sv.Port != 9090 {
		t.Fatalf("app-01's services in the catalog: %v", node.Services)
	}
	term.emu.SendText(enter)
	term.waitForWithin(t, long, "Desired state", "converged: generation 1 in the catalog", "[api]  maintenance off  generation 1",
		"by e2e@console: e2e {{ lookup('pipe','touch ", "last apply   run ", "succeeded (generation 1)", "History (1, newest first")
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Fatalf("the reason ran somewhere: %s exists (%v)", marker, err)
	}
	if d, err := store.Get(ctx, "dc1", "app-01"); err != nil || d == nil || d.Reason != reason || d.Generation != 1 {
		t.Fatalf("the record in KV: %+v, %v", d, err)
	}

	// A read-only console on the same fleet shows the state and has no
	// action that changes anything.
	ro := New(ctx, Options{Feed: w, NoColor: true, Provisioner: mgr, Roles: svc, ReadOnly: true})
	ro.Update(tea.WindowSizeMsg{Width: 160, Height: 45})
	for _, k := range []string{"o", "m"} {
		if ro.top().keys().has(k) {
			t.Errorf("read-only Nodes view has %s", k)
		}
	}
	ro.push(newDetailView(ro.shared, "dc1", "app-01"))
	for _, k := range []string{"o", "m"} {
		if ro.top().keys().has(k) {
			t.Errorf("read-only Node detail has %s", k)
		}
	}
	ro.push(newHistoryView(ro.shared, "dc1", "app-01"))
	if ro.top().keys().has("enter") || ro.top().keys().has("u") {
		t.Error("read-only history can revert")
	}

	term.emu.SendText("q")
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("program: %v", err)
		}
	case <-time.After(long):
		t.Fatal("the program did not quit")
	}
	pcancel()
	if pw, ok := term.emu.InputPipe().(*io.PipeWriter); ok {
		_ = pw.Close()
	}
}
