package tui

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/fleetdeck/fleetdeck/fleet"
	"github.com/fleetdeck/fleetdeck/provision"
)

// fakeProv is a Provisioner for UI tests: it records requests and answers
// from fields the test sets. Next blocks until ctx ends (tests deliver
// provChangedMsg themselves).
type fakeProv struct {
	mu         sync.Mutex
	playbooks  []provision.Playbook
	pbErr      error
	previewErr error
	launchErr  error
	confirm    string
	warnings   []string
	aliases    map[string]string
	extraArgv  []string
	reqs       []provision.LaunchRequest
	// confirms is each preview's Confirm, to check Launch's typed text
	// as the run manager does; typed records what each Launch got.
	confirms  map[string]string
	typed     []string
	discarded []string
	launched  []string
	cancelled []string
	reruns    []string
	runs      []provision.RunInfo
	views     map[string]*provision.RunView
	plans     int
	locks     []provision.HeldLock
	locksErr  error
}

func newFakeProv() *fakeProv {
	return &fakeProv{
		playbooks: []provision.Playbook{
			{Name: "base.yml", Description: "baseline packages and users"},
			{Name: "web.yml", Description: "nginx and the site"},
			{Name: "restart-service.yml", Description: "restart one service"},
		},
		views:    map[string]*provision.RunView{},
		confirms: map[string]string{},
	}
}

func (f *fakeProv) Playbooks(ctx context.Context) ([]provision.Playbook, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.playbooks, f.pbErr
}

func (f *fakeProv) Preview(ctx context.Context, req provision.LaunchRequest) (*provision.Preview, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs = append(f.reqs, req)
	if f.previewErr != nil {
		return nil, f.previewErr
	}
	return f.preview(req), nil
}

func (f *fakeProv) preview(req provision.LaunchRequest) *provision.Preview {
	f.plans++
	hosts := make([]string, len(req.Targets))
	for i, t := range req.Targets {
		_, hosts[i], _ = cutKey(t)
	}
	argv := []string{"ansible-playbook", "-i", "/tmp/run/inventory.json", "--limit", "node-00001,node-00002"}
	if req.Check {
		argv = append(argv, "--check")
	}
	// As the runner: secret values never go on the command line.
	secrets := false
	var shown []string // as the manager's Preview.ExtraVars: secret values redacted
	for _, ev := range req.ExtraVars {
		if k, _, _ := strings.Cut(ev, "="); provision.IsSecretVar(k) {
			secrets = true
			shown = append(shown, k+"=<redacted>")
			continue
		}
		shown = append(shown, ev)
		argv = append(argv, "-e", ev)
	}
	if secrets {
		argv = append(argv, "--extra-vars=@/tmp/run/extra-vars.json")
	}
	argv = append(argv, f.extraArgv...)
	argv = append(argv, "/srv/playbooks/"+req.Playbook)
	confirm := f.confirm
	if confirm == "" && req.Scope.Wide() && !req.Check {
		confirm = req.Subject
	}
	f.confirms[fmt.Sprintf("plan-%d", f.plans)] = confirm
	return &provision.Preview{
		PlanID: fmt.Sprintf("plan-%d", f.plans), Request: req, Hosts: hosts, Aliases: f.aliases,
		Argv: argv, Env: []string{"ANSIBLE_HOST_PATTERN_MISMATCH=error"}, Warnings: f.warnings, Confirm: confirm,
		ExtraVars: shown,
	}
}

func cutKey(k string) (string, string, bool) {
	for i := 0; i < len(k); i++ {
		if k[i] == '/' {
			return k[:i], k[i+1:], true
		}
	}
	return "", k, false
}

func (f *fakeProv) Discard(planID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.discarded = append(f.discarded, planID)
}

func (f *fakeProv) Launch(ctx context.Context, planID, typed string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.typed = append(f.typed, typed)
	if f.launchErr != nil {
		return "", f.launchErr
	}
	// As the run manager: the typed confirmation must match, and a refusal
	// keeps the plan open.
	if c := f.confirms[planID]; c != "" && typed != c {
		return "", fmt.Errorf("launching %s: %w: type %q", planID, provision.ErrConfirmation, c)
	}
	f.launched = append(f.launched, planID)
	return "run-" + planID, nil
}

func (f *fakeProv) Cancel(ctx context.Context, runID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cancelled = append(f.cancelled, runID)
	return nil
}

func (f *fakeProv) Rerun(ctx context.Context, runID string, onlyFailed bool) (*provision.Preview, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reruns = append(f.reruns, fmt.Sprintf("%s:%v", runID, onlyFailed))
	req := provision.LaunchRequest{Playbook: "web.yml", Scope: provision.ScopeRole, Subject: "web", Targets: []string{"dc1/node-00001"}, Check: true}
	if onlyFailed {
		req.Scope, req.Subject = provision.ScopeMarked, "the 1 host of run "+runID+" that failed or did not finish"
	}
	return f.preview(req), nil
}

func (f *fakeProv) Locks(ctx context.Context) ([]provision.HeldLock, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]provision.HeldLock(nil), f.locks...), f.locksErr
}

func (f *fakeProv) Runs(ctx context.Context) ([]provision.RunInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]provision.RunInfo(nil), f.runs...), nil
}

func (f *fakeProv) Run(ctx context.Context, runID string) (*provision.RunView, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	rv, ok := f.views[runID]
	if !ok {
		return nil, errors.New("no run " + runID)
	}
	return rv, nil
}

func (f *fakeProv) Next(ctx context.Context, after uint64) (uint64, error) {
	<-ctx.Done()
	return 0, ctx.Err()
}

// newProvHarness is a harness whose model has fake run manager p.
func newProvHarness(t *testing.T, snap *fleet.Snapshot, p Provisioner, ro bool, w, h int) *harness {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	clk := &clock{t: t0}
	pub := fleet.NewPublisher(snap)
	m := New(ctx, Options{Feed: pub, NoColor: true, Now: clk.now, Provisioner: p, ReadOnly: ro})
	h0 := &harness{t: t, m: m, clk: clk, pub: pub, w: w, h: h, ctx: ctx, cancel: cancel, msgs: make(chan tea.Msg, 64)}
	h0.send(tea.WindowSizeMsg{Width: w, Height: h})
	return h0
}

// do sends msg and runs the commands it produces to completion, feeding
// their messages back, as the Bubble Tea runtime would. Commands that
// block (waiting for changes, ticks) are abandoned after a short wait;
// they end when the test's context is cancelled.
func (h *harness) do(msg tea.Msg) {
	h.t.Helper()
	h.runCmd(h.send(msg), 0)
}

// press types keys like keys() and runs the resulting commands.
func (h *harness) press(ks ...string) {
	h.t.Helper()
	for _, k := range ks {
		h.do(keyMsg(k))
	}
}

func (h *harness) runCmd(cmd tea.Cmd, depth int) {
	h.t.Helper()
	if cmd == nil || depth > 20 {
		return
	}
	ch := make(chan tea.Msg, 1)
	go func() { ch <- cmd() }()
	var msg tea.Msg
	select {
	case msg = <-ch:
	case <-time.After(50 * time.Millisecond):
		return
	}
	switch msg := msg.(type) {
	case nil:
	case tea.BatchMsg:
		for _, c := range msg {
			h.runCmd(c, depth+1)
		}
	case tea.QuitMsg:
	default:
		h.runCmd(h.send(msg), depth+1)
	}
}

// special builds key presses the keyMsg helper does not know.
func special(name string) tea.KeyPressMsg {
	switch name {
	case "tab":
		return tea.KeyPressMsg{Code: tea.KeyTab}
	case "shift+tab":
		return tea.KeyPressMsg{Code: tea.KeyTab, Mod: tea.ModShift}
	case "ctrl+s":
		return tea.KeyPressMsg{Code: 's', Mod: tea.ModCtrl}
	}
	panic(name)
}
