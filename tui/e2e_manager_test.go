package tui

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/fleetdeck/fleetdeck/fleet"
	"github.com/fleetdeck/fleetdeck/internal/consulagent"
	"github.com/fleetdeck/fleetdeck/provision"
)

// e2eSleep makes this package's run sleeps findable (and distinct from
// other packages' tests).
func e2eSleep() string { return fmt.Sprintf("sleep 300.%d", os.Getpid()%100000+9) }

// realManager starts a real Consul agent with six nodes, a fleet watcher
// on it, and a run manager with the real ansible-playbook, a playbook
// directory (hello.yml, slow.yml), a history and a queue taking host locks
// in Consul.
func realManager(t *testing.T) (*provision.Manager, *fleet.Watcher) {
	t.Helper()
	consulagent.NeedProgram(t, "ansible-playbook")
	agent := consulagent.StartTest(t, consulagent.Options{})
	c, err := agent.Client()
	if err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		reg := &api.CatalogRegistration{Node: fmt.Sprintf("web-%d", i), Address: fmt.Sprintf("10.9.0.%d", i+1),
			NodeMeta: map[string]string{"asg": "web-asg"}, Service: &api.AgentService{ID: "web", Service: "web", Port: 80}}
		if _, err := c.Catalog().Register(reg, nil); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := fleet.NewWatcher(c, fleet.Config{BackoffMin: 100 * time.Millisecond, BackoffMax: time.Second})
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	for s := w.Current(); s.Node("dc1", "web-5") == nil; {
		if s, err = w.Next(wctx, s.Version); err != nil {
			t.Fatalf("waiting for the fleet: %v", err)
		}
	}

	dir := t.TempDir()
	books := filepath.Join(dir, "playbooks")
	if err := os.MkdirAll(books, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{
		"hello.yml": "- hosts: all\n  connection: local\n  gather_facts: false\n  tasks:\n    - name: hello\n      command: \"true\"\n",
		"slow.yml":  "- hosts: all\n  connection: local\n  gather_facts: false\n  tasks:\n    - name: sleep\n      command: " + e2eSleep() + "\n",
	} {
		if err := os.WriteFile(filepath.Join(books, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cat, err := provision.NewPlaybookCatalog(books)
	if err != nil {
		t.Fatal(err)
	}
	runner, err := provision.NewRunner(provision.RunnerConfig{Catalog: cat, RunsDir: filepath.Join(dir, "runs"),
		Env: []string{"ANSIBLE_PYTHON_INTERPRETER=auto_silent"}, CancelGrace: time.Second, TermGrace: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	hist, err := provision.OpenHistory(context.Background(), provision.HistoryConfig{Path: filepath.Join(dir, "history.db")})
	if err != nil {
		t.Fatal(err)
	}
	locks := provision.NewLockManager(c, provision.LockConfig{Prefix: "fdtui", LockDelay: -1, TTL: 10 * time.Second})
	queue := provision.NewRunQueue(locks, provision.QueueConfig{Cap: 2})
	m, err := provision.NewManager(provision.ManagerConfig{Feed: w, Runner: runner, History: hist, Queue: queue})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m, w
}

// waitStatus waits until run id reaches a final status and returns it.
func waitStatus(t *testing.T, m *provision.Manager, id string) provision.RunStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var v uint64
	for {
		rv, err := m.Run(ctx, id)
		if err == nil && rv.Info.Status.Final() {
			return rv.Info.Status
		}
		if v, err = m.Next(ctx, v); err != nil {
			t.Fatalf("waiting for run %s: %v", id, err)
		}
	}
}

// launchedID is the run id the footer reports.
var launchedID = regexp.MustCompile(`run (\S+) launched`)

// TestEndToEndRealManager drives the console on a virtual terminal
// against the real run manager: a real Consul, real ansible-playbook,
// host locks in Consul. Launch form → preview (the real argv, the typed
// confirmation a run on 6 hosts needs) → launch → cancel (asks y/n) →
// another launch → ctrl+c from every modal screen asks first while that
// run is live → y quits and cancels it.
func TestEndToEndRealManager(t *testing.T) {
	mgr, w := realManager(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	term, done := runProgramSize(ctx, New(ctx, Options{Feed: w, NoColor: true, Provisioner: mgr}), 160, 40)
	long := 2 * time.Minute
	const (
		enter, esc, ctrlC, ctrlS, right = "\r", "\x1b", "\x03", "\x13", "\x1b[C"
		asks                            = "1 running run and 0 queued runs of this console will be cancelled. Quit? y/n"
	)
	term.waitForWithin(t, long, "web-5", "nodes 1/7") // and the agent's own node

	// Mark the six web nodes, open the form, choose slow.yml, preview.
	term.emu.SendText("/group:web-asg" + enter)
	term.waitFor(t, "1/6 of 7")
	term.emu.SendText("M")
	term.waitFor(t, "marked 6")
	term.emu.SendText("r")
	term.waitForWithin(t, long, "Run a playbook on the marked 6 nodes", "‹ hello.yml ›")
	term.emu.SendText(right)
	term.waitFor(t, "‹ slow.yml ›")
	term.emu.SendText(ctrlS)
	term.waitForWithin(t, long, "Preview: nothing has run yet", "Hosts as ansible-playbook resolves them (6)",
		`Not in check mode on 6 hosts: type "6"`, "--limit=web-0,web-1,web-2,web-3,web-4,web-5", "slow.yml", "ansible-playbook")
	// The typed confirmation gates the launch.
	term.emu.SendText(enter)
	term.waitFor(t, `type "6" exactly to launch`)
	term.emu.SendText("6" + enter)
	s := term.waitForWithin(t, long, "launched", "Run ")
	first := launchedID.FindStringSubmatch(s)
	if first == nil {
		t.Fatalf("no run id on screen:\n%s", s)
	}
	term.waitForWithin(t, long, "RUNNING")

	// Cancel: asks y/n, then the run ends cancelled.
	term.emu.SendText("c")
	term.waitFor(t, "cancel run "+first[1]+" (running)? y/n")
	term.emu.SendText("y")
	term.waitForWithin(t, long, "CANCELLED")
	if st := waitStatus(t, mgr, first[1]); st != provision.RunCancelled {
		t.Fatalf("first run ended %s, want cancelled", st)
	}

	// A second run, left running.
	term.emu.SendText(esc)
	term.waitFor(t, "1/6 of 7")
	term.emu.SendText("r")
	term.waitForWithin(t, long, "‹ hello.yml ›")
	term.emu.SendText(right + ctrlS)
	term.waitForWithin(t, long, `type "6"`)
	term.emu.SendText("6" + enter)
	s = term.waitForWithin(t, long, "launched", "RUNNING")
	second := launchedID.FindStringSubmatch(s)
	if second == nil || second[1] == first[1] {
		t.Fatalf("no second run id on screen:\n%s", s)
	}

	// ctrl+c from every modal screen (and a view) asks first; n keeps the
	// console.
	// back is the keys that leave the screen afterwards, each with what
	// the screen shows once it has landed (an esc followed at once by a
	// key would read as alt+key).
	ask := func(what string, open func(), back ...string) {
		t.Helper()
		open()
		term.emu.SendText(ctrlC)
		term.waitFor(t, asks)
		term.emu.SendText("n")
		term.waitFor(t, "not quitting")
		for i := 0; i+1 < len(back); i += 2 {
			term.emu.SendText(back[i])
			term.waitFor(t, back[i+1])
		}
		t.Logf("ctrl+c asked in %s", what)
	}
	ask("the run view", func() {})
	ask("the search prompt", func() { term.emu.SendText("/x"); term.waitFor(t, "/x") })
	ask("the command prompt", func() { term.emu.SendText(":ru"); term.waitFor(t, ":ru") })
	ask("the help", func() { term.emu.SendText("?"); term.waitFor(t, "Help: run") }, esc, "[hosts]")
	ask("the cancel question", func() { term.emu.SendText("c"); term.waitFor(t, "cancel run "+second[1]) }, esc, "1/6 of 7")
	ask("the launch form", func() { term.emu.SendText("r"); term.waitForWithin(t, long, "‹ hello.yml ›") })
	ask("the preview while typing the confirmation", func() {
		term.emu.SendText(ctrlS)
		term.waitForWithin(t, long, `type "6"`)
		term.emu.SendText("5")
		term.waitFor(t, "esc to discard: 5")
	}, esc, "‹ hello.yml ›", esc, "1/6 of 7")
	term.waitFor(t, "1/6 of 7")
	if rv, err := mgr.Run(ctx, second[1]); err != nil || rv.Info.Status != provision.RunRunning {
		t.Fatalf("the second run after the questions: %+v, %v", rv, err)
	}

	// y: the console cancels its live run and quits.
	term.emu.SendText(ctrlC)
	term.waitFor(t, asks)
	term.emu.SendText("y")
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("program: %v", err)
		}
	case <-time.After(long):
		t.Fatal("the program did not end after y")
	}
	if st := waitStatus(t, mgr, second[1]); st != provision.RunCancelled {
		t.Fatalf("the run live at quit ended %s, want cancelled", st)
	}
	cancel()
	if pw, ok := term.emu.InputPipe().(*io.PipeWriter); ok {
		_ = pw.Close()
	}
}
