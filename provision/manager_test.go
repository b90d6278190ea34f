package provision_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/fleetdeck/fleetdeck/fleet"
	"github.com/fleetdeck/fleetdeck/internal/consulagent"
	"github.com/fleetdeck/fleetdeck/provision"
)

// mgrFixture is a Manager over a real Consul (fleet, locks) and the real
// ansible-playbook, with a private playbook directory and history.
type mgrFixture struct {
	m      *provision.Manager
	feed   *fleet.Watcher
	client *api.Client
	agent  *consulagent.Agent
	agent2 *consulagent.Agent // dc2, with mgrOptions.wan
	hist   *provision.History
	runs   string // the runs directory
	books  string // the playbook directory
}

// mgrOptions vary a fixture.
type mgrOptions struct {
	agent      consulagent.Options
	watchToken func(root *api.Client) string // the watcher's ACL token; default the agent's
	waitNode   string                        // the node the fleet must show before the fixture is ready
	wan        bool                          // also a datacenter dc2, WAN-joined, with the same nodes
	playbooks  map[string]string
	runner     func(*provision.RunnerConfig)
	locks      func(*provision.LockConfig)
	manager    func(*provision.ManagerConfig)
}

const mgrPlaybook = `# says hello on every host, fails where told to
- hosts: all
  connection: local
  gather_facts: false
  tasks:
    - name: hello
      command: "true"
    - name: maybe fail
      fail:
        msg: "told to fail"
      when: consul_node == "web-2"
`

// mgrSleepMarker makes this package's manager sleeps findable in /proc
// (and distinct from the runner tests' own).
func mgrSleepMarker() string { return fmt.Sprintf("sleep 300.%d", os.Getpid()%100000+7) }

func mgrSlowPlaybook() string {
	return `# sleeps, to be cancelled
- hosts: all
  connection: local
  gather_facts: false
  tasks:
    - name: sleep
      command: ` + mgrSleepMarker() + "\n"
}

func newMgrFixture(t *testing.T, opts ...func(*mgrOptions)) *mgrFixture {
	t.Helper()
	o := mgrOptions{waitNode: "web-3", playbooks: map[string]string{}}
	for _, f := range opts {
		f(&o)
	}
	consulagent.NeedProgram(t, "ansible-playbook")
	agent := consulagent.StartTest(t, o.agent)
	c, err := agent.Client()
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		node := fmt.Sprintf("web-%d", i)
		reg := &api.CatalogRegistration{Node: node, Address: fmt.Sprintf("10.7.0.%d", i+1),
			NodeMeta: map[string]string{"asg": "web-asg"},
			Service:  &api.AgentService{ID: "web", Service: "web", Port: 80}}
		if _, err := c.Catalog().Register(reg, nil); err != nil {
			t.Fatal(err)
		}
	}
	var agent2 *consulagent.Agent
	if o.wan {
		agent2 = consulagent.StartTest(t, consulagent.Options{Datacenter: "dc2", JoinWAN: []string{agent.SerfWANAddr()}})
		c2, err := agent2.Client()
		if err != nil {
			t.Fatal(err)
		}
		for i := range 2 {
			reg := &api.CatalogRegistration{Node: fmt.Sprintf("web-%d", i), Address: fmt.Sprintf("10.8.0.%d", i+1),
				Service: &api.AgentService{ID: "web", Service: "web", Port: 80}}
			if _, err := c2.Catalog().Register(reg, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	wc := c
	if o.watchToken != nil {
		cfg := api.DefaultConfig()
		cfg.Address, cfg.Scheme, cfg.Token, cfg.TokenFile = agent.HTTPAddr(), "http", o.watchToken(c), ""
		if wc, err = api.NewClient(cfg); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := fleet.NewWatcher(wc, fleet.Config{BackoffMin: 100 * time.Millisecond, BackoffMax: time.Second})
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	for s := w.Current(); s.Node("dc1", o.waitNode) == nil || (o.wan && s.Node("dc2", "web-1") == nil); {
		if s, err = w.Next(wctx, s.Version); err != nil {
			t.Fatalf("waiting for the fleet: %v", err)
		}
	}

	dir := t.TempDir()
	books := filepath.Join(dir, "playbooks")
	if err := os.MkdirAll(books, 0o755); err != nil {
		t.Fatal(err)
	}
	o.playbooks["hello.yml"], o.playbooks["slow.yml"] = mgrPlaybook, mgrSlowPlaybook()
	for name, body := range o.playbooks {
		if err := os.WriteFile(filepath.Join(books, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cat, err := provision.NewPlaybookCatalog(books)
	if err != nil {
		t.Fatal(err)
	}
	rcfg := provision.RunnerConfig{Catalog: cat, RunsDir: filepath.Join(dir, "runs"),
		Env: []string{"ANSIBLE_PYTHON_INTERPRETER=auto_silent"}, CancelGrace: time.Second, TermGrace: time.Second}
	if o.runner != nil {
		o.runner(&rcfg)
	}
	runner, err := provision.NewRunner(rcfg)
	if err != nil {
		t.Fatal(err)
	}
	hist, err := provision.OpenHistory(context.Background(), provision.HistoryConfig{Path: filepath.Join(dir, "history.db")})
	if err != nil {
		t.Fatal(err)
	}
	lcfg := provision.LockConfig{Prefix: "fdtest", LockDelay: -1, TTL: 10 * time.Second}
	if o.locks != nil {
		o.locks(&lcfg)
	}
	locks := provision.NewLockManager(c, lcfg)
	queue := provision.NewRunQueue(locks, provision.QueueConfig{Cap: 2})
	mcfg := provision.ManagerConfig{Feed: w, Runner: runner, History: hist, Queue: queue}
	if o.manager != nil {
		o.manager(&mcfg)
	}
	m, err := provision.NewManager(mcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return &mgrFixture{m: m, feed: w, client: c, agent: agent, agent2: agent2, hist: hist, runs: rcfg.RunsDir, books: books}
}

// waitRun waits until the run is no longer live and returns its view.
func (f *mgrFixture) waitRun(t *testing.T, id string, timeout time.Duration, done func(provision.RunInfo) bool) *provision.RunView {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var v uint64
	for {
		view, err := f.m.Run(ctx, id)
		if err == nil && done(view.Info) {
			return view
		}
		if v, err = f.m.Next(ctx, v); err != nil {
			last, _ := f.m.Run(context.Background(), id)
			t.Fatalf("waiting for run %s: %v (last: %+v)", id, err, last)
		}
	}
}

func ended(i provision.RunInfo) bool { return i.Status.Final() }

func TestManagerPreviewLaunchRecordAndRerunFailed(t *testing.T) {
	f := newMgrFixture(t)
	ctx := context.Background()
	books, err := f.m.Playbooks(ctx)
	if err != nil || len(books) != 2 {
		t.Fatalf("playbooks = %v, %v", books, err)
	}

	// A group-wide run not in check mode needs the group's name typed.
	req := provision.LaunchRequest{Playbook: "hello.yml", Scope: provision.ScopeGroup, Subject: "web-asg",
		Targets: []string{"dc1/web-0", "dc1/web-1", "dc1/web-2", "dc1/web-3"}}
	p, err := f.m.Preview(ctx, req)
	if err != nil {
		t.Fatalf("preview: %v", err)
	}
	if p.Confirm != "web-asg" {
		t.Errorf("confirm = %q, want the group name", p.Confirm)
	}
	if !slices.Equal(p.Hosts, []string{"web-0", "web-1", "web-2", "web-3"}) {
		t.Errorf("previewed hosts = %v", p.Hosts)
	}
	if !slices.Contains(p.Argv, "--limit=web-0,web-1,web-2,web-3") {
		t.Errorf("argv lacks the exact limit: %q", p.Argv)
	}

	// Launch holds the caller to it: without the name, nothing runs and
	// the preview stays open.
	if _, err := f.m.Launch(ctx, p.PlanID, ""); !errors.Is(err, provision.ErrConfirmation) || !strings.Contains(err.Error(), `type "web-asg"`) {
		t.Fatalf("launch without the confirmation: %v", err)
	}
	id, err := f.m.Launch(ctx, p.PlanID, "web-asg")
	if err != nil {
		t.Fatalf("launch: %v", err)
	}
	view := f.waitRun(t, id, 2*time.Minute, ended)
	if view.Info.Status != provision.RunFailed || view.Info.ExitCode != 2 {
		t.Fatalf("run ended %s exit %d, want failed/2: %+v", view.Info.Status, view.Info.ExitCode, view.Info)
	}
	// The replay from history shows the same board as the live run did.
	if got := view.State.Hosts["web-2"]; got == nil || got.Status != provision.HostFailed {
		t.Errorf("web-2 on the replayed board: %+v", got)
	}
	if got := view.State.Hosts["web-0"]; got == nil || got.Status != provision.HostChanged {
		t.Errorf("web-0 on the replayed board: %+v", got)
	}
	if !strings.Contains(strings.Join(view.Output, "\n"), "PLAY RECAP") {
		t.Errorf("recorded output lacks the recap:\n%s", strings.Join(view.Output, "\n"))
	}

	// Re-run on the failed hosts only.
	p2, err := f.m.Rerun(ctx, id, true)
	if err != nil {
		t.Fatalf("rerun: %v", err)
	}
	if !slices.Equal(p2.Hosts, []string{"web-2"}) {
		t.Errorf("rerun on failed previews %v, want [web-2]", p2.Hosts)
	}
	if want := "the 1 host of run " + id + " that failed"; p2.Request.Subject != want {
		t.Errorf("rerun subject %q, want %q", p2.Request.Subject, want)
	}
	f.m.Discard(p2.PlanID)

	runs, err := f.m.Runs(ctx)
	if err != nil || len(runs) != 1 || runs[0].ID != id || runs[0].Status != provision.RunFailed || runs[0].Hosts != 4 ||
		runs[0].Counts[provision.HostFailed] != 1 || runs[0].Scope != provision.ScopeGroup || runs[0].Subject != "web-asg" {
		t.Errorf("runs = %+v, %v", runs, err)
	}
}

func TestManagerCancelAndLockExclusion(t *testing.T) {
	f := newMgrFixture(t)
	ctx := context.Background()
	slow := provision.LaunchRequest{Playbook: "slow.yml", Scope: provision.ScopeNode, Subject: "dc1/web-1", Targets: []string{"dc1/web-1"}}
	p, err := f.m.Preview(ctx, slow)
	if err != nil {
		t.Fatal(err)
	}
	first, err := f.m.Launch(ctx, p.PlanID, "")
	if err != nil {
		t.Fatal(err)
	}
	f.waitRun(t, first, time.Minute, func(i provision.RunInfo) bool { return i.Status == provision.RunRunning })

	// A second run on the same node waits, saying who holds it.
	p, err = f.m.Preview(ctx, slow)
	if err != nil {
		t.Fatal(err)
	}
	second, err := f.m.Launch(ctx, p.PlanID, "")
	if err != nil {
		t.Fatal(err)
	}
	f.waitRun(t, second, 30*time.Second, func(i provision.RunInfo) bool {
		return i.Status == provision.RunQueued && strings.Contains(i.QueueReason, first)
	})

	if err := f.m.Cancel(ctx, first); err != nil {
		t.Fatal(err)
	}
	if v := f.waitRun(t, first, time.Minute, ended); v.Info.Status != provision.RunCancelled {
		t.Errorf("first ended %s, want cancelled", v.Info.Status)
	}
	// The lock is free now: the second run starts; cancel it too.
	f.waitRun(t, second, time.Minute, func(i provision.RunInfo) bool { return i.Status == provision.RunRunning })
	if err := f.m.Cancel(ctx, second); err != nil {
		t.Fatal(err)
	}
	if v := f.waitRun(t, second, time.Minute, ended); v.Info.Status != provision.RunCancelled {
		t.Errorf("second ended %s, want cancelled", v.Info.Status)
	}
	if left := rtProcs(t, -1, mgrSleepMarker()); len(left) > 0 {
		t.Errorf("processes survived the cancel: %v", left)
	}
}

// When Consul invalidates a run's lock session, another console could take
// its hosts: the run must stop and say why.
func TestManagerCancelsARunThatLostItsLocks(t *testing.T) {
	f := newMgrFixture(t)
	ctx := context.Background()
	p, err := f.m.Preview(ctx, provision.LaunchRequest{Playbook: "slow.yml", Scope: provision.ScopeNode, Subject: "dc1/web-0", Targets: []string{"dc1/web-0"}})
	if err != nil {
		t.Fatal(err)
	}
	id, err := f.m.Launch(ctx, p.PlanID, "")
	if err != nil {
		t.Fatal(err)
	}
	f.waitRun(t, id, time.Minute, func(i provision.RunInfo) bool { return i.Status == provision.RunRunning })
	sessions, _, err := f.client.Session().List(nil)
	if err != nil || len(sessions) == 0 {
		t.Fatalf("listing sessions: %v (%d)", err, len(sessions))
	}
	for _, s := range sessions {
		if _, err := f.client.Session().Destroy(s.ID, nil); err != nil {
			t.Fatal(err)
		}
	}
	v := f.waitRun(t, id, time.Minute, ended)
	if v.Info.Status != provision.RunLockLost || !strings.Contains(v.Info.QueueReason, "host locks were lost") {
		t.Errorf("run ended %s (%q), want lock-lost", v.Info.Status, v.Info.QueueReason)
	}
}

func TestManagerResolvesWideRunsAtPreviewAndConfirmsLargeRuns(t *testing.T) {
	f := newMgrFixture(t)
	ctx := context.Background()
	// The form was opened when web-asg had 3 nodes; it has 4 now, and one
	// of the form's nodes has left meanwhile.
	if _, err := f.client.Catalog().Deregister(&api.CatalogDeregistration{Node: "web-0"}, nil); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for s := f.feed.Current(); s.Node("dc1", "web-0") != nil; {
		var err error
		if s, err = f.feed.Next(wctx, s.Version); err != nil {
			t.Fatal(err)
		}
	}
	p, err := f.m.Preview(ctx, provision.LaunchRequest{Playbook: "hello.yml", Scope: provision.ScopeGroup, Subject: "web-asg", Check: true,
		Targets: []string{"dc1/web-0", "dc1/web-1", "dc1/web-2"}})
	if err != nil {
		t.Fatalf("preview of a churned group: %v", err)
	}
	if !slices.Equal(p.Hosts, []string{"web-1", "web-2", "web-3"}) || p.Confirm != "" {
		t.Errorf("hosts %v confirm %q; want the group's nodes of now and no confirmation in check mode", p.Hosts, p.Confirm)
	}
	if len(p.Warnings) == 0 || !strings.Contains(p.Warnings[0], "has 3 nodes now") {
		t.Errorf("warnings = %q", p.Warnings)
	}
	f.m.Discard(p.PlanID)

	// Marked nodes: departed ones are left out with a note; 1 host needs
	// no confirmation, 5 or more need their count typed.
	p, err = f.m.Preview(ctx, provision.LaunchRequest{Playbook: "hello.yml", Scope: provision.ScopeMarked, Subject: "2 nodes",
		Targets: []string{"dc1/web-0", "dc1/web-1"}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.Hosts, []string{"web-1"}) || p.Confirm != "" || len(p.Warnings) == 0 {
		t.Errorf("marked: hosts %v confirm %q warnings %q", p.Hosts, p.Confirm, p.Warnings)
	}
	f.m.Discard(p.PlanID)
}

// An unlisted preview (the deployment server's) takes its hosts from the
// targets without running --list-hosts — a playbook whose listing fails
// (its play targets no host) previews fine unlisted — and runs on them; a
// wide scope is always listed.
func TestManagerUnlistedPreview(t *testing.T) {
	f := newMgrFixture(t, func(o *mgrOptions) {
		o.playbooks = map[string]string{"hello.yml": mgrPlaybook, "other.yml": "- hosts: nobody\n  gather_facts: false\n  tasks:\n    - command: \"true\"\n"}
	})
	ctx := context.Background()
	req := provision.LaunchRequest{Playbook: "other.yml", Scope: provision.ScopeMarked, Subject: "2 nodes",
		Targets: []string{"dc1/web-1", "dc1/web-0"}}
	if listed, err := f.m.Preview(ctx, req); err == nil {
		f.m.Discard(listed.PlanID)
		if len(listed.Hosts) != 0 {
			t.Fatalf("listed hosts %v: the play targets no host", listed.Hosts)
		}
	}
	req.Unlisted = true
	p, err := f.m.Preview(ctx, req)
	if err != nil {
		t.Fatalf("unlisted preview ran a listing: %v", err)
	}
	f.m.Discard(p.PlanID)
	if !slices.Equal(p.Hosts, []string{"web-0", "web-1"}) {
		t.Fatalf("unlisted hosts %v, want the targets", p.Hosts)
	}
	req.Playbook = "hello.yml"
	if p, err = f.m.Preview(ctx, req); err != nil {
		t.Fatal(err)
	}
	id, err := f.m.Launch(ctx, p.PlanID, p.Confirm)
	if err != nil {
		t.Fatal(err)
	}
	if v := f.waitRun(t, id, 2*time.Minute, ended); v.Info.Status != provision.RunOK {
		t.Fatalf("run %s", v.Info.Status)
	}
	wide := provision.LaunchRequest{Playbook: "hello.yml", Scope: provision.ScopeGroup, Subject: "web-asg", Targets: []string{"dc1/web-0"}, Unlisted: true}
	if _, err := f.m.Preview(ctx, wide); !errors.Is(err, provision.ErrRunSpec) {
		t.Fatalf("unlisted group-wide preview: %v", err)
	}
}
