package tui

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/fleetdeck/fleetdeck/fleet"
	"github.com/fleetdeck/fleetdeck/logview"
	"github.com/fleetdeck/fleetdeck/provision"
)

// footerLine returns the screen's last line.
func (h *harness) footerLine() string {
	h.t.Helper()
	lines := h.screenLines()
	return lines[len(lines)-1]
}

// Each view keeps its own faults toggle, as the README promises: f in one
// view does not change another, and esc returns to a view with its own.
func TestFaultsTogglePerView(t *testing.T) {
	h := newHarness(t, synthSnapshot(300), 120, 30)
	nodes := h.table()
	h.keys("f")
	if len(nodes.rows) != 25 || !strings.Contains(h.footerLine(), "[faults]") {
		t.Fatalf("faults on: %d rows, footer %q", len(nodes.rows), h.footerLine())
	}
	// A drill-down starts with its own toggle off; esc finds the nodes
	// view's on.
	h.keys("enter")
	h.mustNotContain("[faults]")
	h.keys("esc")
	if h.table() != nodes || len(nodes.rows) != 25 {
		t.Fatal("esc did not return to the faults-only nodes view")
	}
	// A ":" view starts with its toggle off.
	h.keys(":roles", "enter")
	roles := h.table()
	if roles.faults || strings.Contains(h.footerLine(), "[faults]") {
		t.Fatal(":roles inherited the nodes view's faults toggle")
	}
	h.keys("f", "G", "enter") // roles faults on; the last role's nodes
	cached := h.table()
	if cached.faults || len(cached.rows) != 73 {
		t.Fatalf("drill-down from a faults-only roles view: faults %v, %d rows", cached.faults, len(cached.rows))
	}
	h.keys("f")
	if len(cached.rows) >= 73 || !cached.faults {
		t.Fatalf("faults in the drilled view: %d rows", len(cached.rows))
	}
	h.keys("esc")
	if h.table() != roles || !roles.faults {
		t.Fatal("the roles view lost its own toggle")
	}
	h.keys("f")
	if roles.faults || !cached.faults {
		t.Fatal("f in roles changed another view")
	}
}

// In a faults-only view the row under the cursor stays when its node
// recovers, so the cursor does not jump to another node, and l opens the
// node the cursor was on. Moving away lets the row go at the next update.
func TestFaultsCursorStaysOnItsNode(t *testing.T) {
	h, fl := newLogsHarness(t, incidentSnapshot(), 120, 30, true, nil)
	nodes := h.table()
	h.keys("f")
	before := len(nodes.rows)
	h.keys("j")
	sel := nodes.selected().node
	if sel.Health == fleet.HealthPassing {
		t.Fatalf("cursor on a passing node %s in faults-only", sel.Name)
	}
	// The node under the cursor recovers.
	next := append([]*fleet.Node(nil), h.m.snap.Nodes...)
	for i, n := range next {
		if n == sel {
			c := *n
			c.Health = fleet.HealthPassing
			c.ChangedAt = t0
			next[i] = &c
			sel = &c
		}
	}
	h.publish(fleet.NewSnapshot(2, t0, next, connected(t0), h.m.snap.Events))
	if got := nodes.selected().node; got != sel {
		t.Fatalf("the cursor moved from %s to %s when its node recovered", sel.Name, got.Name)
	}
	h.mustContain(sel.Name, "passing")
	q, _ := h.openLogs(fl)
	if q.Title != "node "+sel.Name {
		t.Fatalf("l opened %q, want node %s", q.Title, sel.Name)
	}
	h.keys("esc")
	// Moving off it: the next update drops the recovered row.
	h.keys("k")
	h.publish(fleet.NewSnapshot(3, t0, next, connected(t0), h.m.snap.Events))
	if len(nodes.rows) != before-1 {
		t.Fatalf("after moving away: %d rows, want %d", len(nodes.rows), before-1)
	}
	for _, r := range nodes.rows {
		if r.node == sel {
			t.Fatal("the recovered node stayed after the cursor left it")
		}
	}
}

// Footer hints and the help list only keys that act in the view on top.
func TestHintsListOnlyKeysThatAct(t *testing.T) {
	p := newFakeProv()
	seedRuns(p)
	h := newHarnessWith(t, incidentSnapshot(), 200, 40, true, func(o *Options) { o.Provisioner = p; o.Logs = &fakeLogs{} })

	// Events: no run key (a run targets nodes, roles or groups).
	h.keys(":events", "enter")
	if f := h.footerLine(); strings.Contains(f, "r run") || !strings.Contains(f, "l logs") {
		t.Fatalf("events footer %q", f)
	}
	h.keys("r")
	if h.m.top().title() != "events" || h.m.flash != "" {
		t.Fatalf("r in Events: top %s, flash %q", h.m.top().title(), h.m.flash)
	}
	h.keys("?")
	h.mustNotContain("run a playbook")
	h.keys("esc")

	// Failure detail: no logs key.
	h.do(h.m.openRun("r1")())
	h.press("enter")
	if h.m.top().title() != "failure" {
		t.Fatalf("top %s", h.m.top().title())
	}
	if f := h.footerLine(); strings.Contains(f, "l logs") || strings.Contains(f, "r run") {
		t.Fatalf("failure detail footer %q", f)
	}
	h.keys("l")
	if h.m.top().title() != "failure" || h.m.flash != "" {
		t.Fatalf("l in the failure detail: top %s, flash %q", h.m.top().title(), h.m.flash)
	}
	h.keys("?")
	h.mustNotContain("logs around")

	// Read-only: no run key anywhere, no cancel or re-run.
	ro := newHarnessWith(t, incidentSnapshot(), 200, 40, true, func(o *Options) { o.Provisioner = p; o.ReadOnly = true })
	if f := ro.footerLine(); strings.Contains(f, "r run") {
		t.Fatalf("read-only nodes footer %q", f)
	}
	ro.keys(":runs")
	ro.press("enter")
	for _, k := range []string{"c cancel", "R rerun", "F rerun"} {
		if f := ro.footerLine(); strings.Contains(f, k) {
			t.Fatalf("read-only runs footer %q has %q", f, k)
		}
	}
}

// allViews opens one view of every kind on h (which has a provisioner
// with seedRuns and logs fl), calling each while the view is on top, and
// returns them.
func allViews(t *testing.T, h *harness, fl *fakeLogs, each func(c component)) []component {
	t.Helper()
	var out []component
	seen := func() {
		out = append(out, h.m.top())
		if each != nil {
			each(h.m.top())
		}
	}
	for _, c := range []string{":nodes", ":roles", ":groups", ":events", ":runs", ":locks"} {
		h.keys(c)
		h.press("enter")
		seen()
	}
	h.keys(":nodes", "enter")
	h.press("enter")
	seen() // node detail
	h.press("r")
	seen() // launch form
	h.press("ctrl+s")
	seen() // preview
	h.press("esc", "esc", "esc")
	h.do(h.m.openRun("r1")())
	seen()
	h.press("enter")
	seen() // failure detail
	h.press("esc", "esc")
	_, s := h.openLogs(fl)
	h.feed(s, entries("node-00000", 5, inc, time.Second, 0), logview.Status{Phase: logview.Live})
	seen()
	h.press("enter")
	seen() // log entry
	h.keys("?")
	seen() // help
	return out
}

// Read-only removes every dangerous action, in one place: no registry of
// any view has one, and without read-only the run keys are all flagged
// dangerous.
func TestReadOnlyRegistryHasNoDangerousAction(t *testing.T) {
	for _, ro := range []bool{false, true} {
		p := newFakeProv()
		seedRuns(p)
		fl := &fakeLogs{}
		h := newHarnessWith(t, incidentSnapshot(), 160, 40, true, func(o *Options) { o.Provisioner = p; o.Logs = fl; o.ReadOnly = ro })
		views := allViews(t, h, fl, nil)
		if len(views) != 14 {
			t.Fatalf("%d views", len(views))
		}
		dangerous := map[string]bool{}
		for _, c := range views {
			for _, a := range c.keys().list {
				if a.dangerous {
					if ro {
						t.Fatalf("read-only %s registers dangerous %v", c.title(), a.keys)
					}
					dangerous[c.title()+":"+a.keys[0]] = true
				}
				if !ro && !a.dangerous && slices.ContainsFunc(a.keys, func(k string) bool { return k == "r" || k == "c" || k == "R" || k == "F" }) &&
					(c.title() == "nodes" || c.title() == "runs" || c.title() == "run") {
					t.Fatalf("%s: %v is not flagged dangerous", c.title(), a.keys)
				}
			}
		}
		if !ro {
			for _, want := range []string{"nodes:r", "roles:r", "groups:r", "node:r", "runs:c", "runs:R", "runs:F", "run:c", "run:R", "run:F"} {
				if !dangerous[want] {
					t.Errorf("%s is not a dangerous action (have %v)", want, dangerous)
				}
			}
		}
	}
}

// At 80x24 the footer keeps the way to the help in every view.
func TestFooterKeepsHelpAt80x24(t *testing.T) {
	p := newFakeProv()
	seedRuns(p)
	fl := &fakeLogs{}
	h := newHarnessWith(t, incidentSnapshot(), 80, 24, true, func(o *Options) { o.Provisioner = p; o.Logs = fl })
	allViews(t, h, fl, func(c component) {
		h.clearFlashForTest()
		f := h.footerLine()
		want := "? help"
		if c.title() == "help" {
			want = "esc/? close"
		}
		if !strings.Contains(f, want) || cellWidth(f) > 80 {
			t.Errorf("%s: footer %q lacks %q", c.title(), f, want)
		}
	})
}

// clearFlashForTest drops the footer's message (the harness's clock does
// not move), so the footer shows the view's hints.
func (h *harness) clearFlashForTest() {
	h.clk.add(flashFor)
	h.send(tickMsg(h.clk.t))
}

// ctrl+c is one action everywhere: with a run of this console live it
// asks first, from every view and every modal screen (prompts, the
// question, the form, the preview while a confirmation is typed); y
// cancels the live runs and quits.
func TestCtrlCAsksEverywhereWithLiveRuns(t *testing.T) {
	screens := []struct {
		name string
		open func(h *harness)
	}{
		{"nodes", func(h *harness) {}},
		{"filter prompt", func(h *harness) { h.keys("/", "web") }},
		{"command prompt", func(h *harness) { h.keys(":ru") }},
		{"cancel question", func(h *harness) { h.keys(":runs"); h.press("enter", "c") }},
		{"help", func(h *harness) { h.keys("?") }},
		{"launch form text field", func(h *harness) {
			h.press("r")
			for range fTags {
				h.do(special("tab"))
			}
			h.keys("we")
		}},
		{"preview typing a confirmation", func(h *harness) {
			h.keys(":roles", "enter")
			h.press("r")
			h.do(special("tab"))
			h.press("space", "ctrl+s")
			h.keys("ap")
		}},
		{"run view search prompt", func(h *harness) { h.do(h.m.openRun("r1")()); h.keys("/", "x") }},
		{"logs jump prompt", func(h *harness) {
			fl := &fakeLogs{}
			h.m.logs = fl
			h.openLogs(fl)
			h.keys("@", "10")
		}},
	}
	for _, sc := range screens {
		t.Run(sc.name, func(t *testing.T) {
			p := newFakeProv()
			seedRuns(p)
			h := newProvHarness(t, synthSnapshot(30), p, false, 160, 40)
			h.do(runsMsg{runs: p.runs})
			sc.open(h)
			top, overlay := h.m.top(), h.m.overlay
			if cmd := h.send(keyMsg("ctrl+c")); cmd != nil {
				t.Fatalf("ctrl+c quit at once with live runs (%T)", cmd())
			}
			h.mustContain("1 running run and 1 queued run of this console will be cancelled. Quit? y/n")
			if overlay == h.m.overlay {
				t.Fatal("no question replaced the overlay")
			}
			h.press("n")
			if h.m.top() != top || h.m.overlay != nil {
				t.Fatalf("n left %s", h.m.top().title())
			}
			h.send(keyMsg("ctrl+c"))
			cmd := h.send(keyMsg("y"))
			if !isQuit(cmd) {
				t.Fatal("y did not quit")
			}
			if !slices.Equal(p.cancelled, []string{"r3", "r2"}) {
				t.Fatalf("quitting cancelled %v, want the live runs r3 r2", p.cancelled)
			}
			// A second ctrl+c while the question is open quits as well.
			h.send(keyMsg("ctrl+c"))
			if !isQuit(h.send(keyMsg("ctrl+c"))) {
				t.Fatal("ctrl+c twice did not quit")
			}
		})
	}
	// Without live runs ctrl+c quits at once, from a modal screen too.
	h := newProvHarness(t, synthSnapshot(30), newFakeProv(), false, 160, 40)
	h.press("r")
	if !isQuit(h.send(keyMsg("ctrl+c"))) {
		t.Fatal("ctrl+c in the form did not quit")
	}
}

// F after a cancel: hosts never started read "not run", the run view
// offers re-running those that did not finish, and F asks the manager for
// that re-run.
func TestRerunAfterCancelOffersUnfinishedHosts(t *testing.T) {
	p := newFakeProv()
	hosts := hostNames(4)
	st := runState(hosts, runEvents(hosts, false)[:5]) // host 0 ran the first task
	st.Hosts[hosts[1]].Status = provision.HostInterrupted
	st.Hosts[hosts[2]].Status = provision.HostNotRun
	st.Hosts[hosts[3]].Status = provision.HostNotRun
	info := provision.RunInfo{ID: "r4", Playbook: "web.yml", Scope: provision.ScopeRole, Subject: "web", Who: "alice",
		Status: provision.RunCancelled, Hosts: 4, Counts: st.StatusCounts(), Started: t0.Add(-time.Minute), Ended: t0, ExitCode: -1}
	p.runs = []provision.RunInfo{info}
	p.views["r4"] = &provision.RunView{Info: info, State: st}
	h := newProvHarness(t, synthSnapshot(10), p, false, 160, 30)
	h.keys(":runs")
	h.press("enter")
	if f := h.footerLine(); !strings.Contains(f, "F rerun failed") {
		t.Fatalf("runs footer for a cancelled run: %q", f)
	}
	h.press("enter")
	h.mustContain("CANCELLED", "not run 2", "interrupted 1", "F re-runs the 3 hosts that failed or did not finish")
	h.press("f")
	if n := len(h.runView().hosts); n != 3 {
		t.Fatalf("faults board: %d hosts, want the interrupted and the 2 not run", n)
	}
	h.press("F")
	if !slices.Equal(p.reruns, []string{"r4:true"}) {
		t.Fatalf("reruns %v", p.reruns)
	}
	s := h.mustContain("Playbook web.yml on the 1 host of run r4 that failed or did not finish", "enter launch · esc discard")
	if strings.Contains(s, "marked the") || strings.Contains(s, "back to the form") {
		t.Fatalf("re-run preview:\n%s", s)
	}
}

// The preview shows the extra vars as the run gets them, secrets
// redacted; the argv only names their file.
func TestPreviewShowsExtraVarsRedacted(t *testing.T) {
	p := newFakeProv()
	h := newProvHarness(t, synthSnapshot(30), p, false, 120, 50)
	h.press("r")
	for range fExtraVars {
		h.do(special("tab"))
	}
	h.keys("version=1.2")
	h.press("enter")
	h.keys("db_password=hunter2")
	h.press("ctrl+s")
	s := h.mustContain("Extra vars (2; secret values redacted)", "version=1.2", "db_password=<redacted>")
	if strings.Contains(s, "hunter2") {
		t.Fatalf("a secret value reached the screen:\n%s", s)
	}
	if v := h.preview(); !slices.Equal(v.p.Request.ExtraVars, []string{"version=1.2", "db_password=hunter2"}) {
		t.Fatalf("request vars %v", v.p.Request.ExtraVars)
	}
}

// The texts the trials found wrong.
func TestTexts(t *testing.T) {
	t.Run("marked confirmation", func(t *testing.T) {
		p := newFakeProv()
		p.confirm = "9"
		h := newProvHarness(t, synthSnapshot(30), p, false, 140, 40)
		for range 9 {
			h.press("space")
		}
		h.press("r", "ctrl+s")
		s := h.mustContain(`Not in check mode on 9 hosts: type "9"`, "Playbook base.yml on the marked 9 nodes")
		if strings.Contains(s, "whole marked") {
			t.Fatalf("preview:\n%s", s)
		}
	})
	t.Run("one match", func(t *testing.T) {
		p := newFakeProv()
		seedRuns(p)
		h := newProvHarness(t, synthSnapshot(10), p, false, 160, 30)
		h.do(h.m.openRun("r1")())
		h.keys("/", "line 299")
		h.press("enter")
		h.mustContain("/line 299 1 match (1)")
	})
	t.Run("filter hidden by faults", func(t *testing.T) {
		h := newHarness(t, synthSnapshot(30), 120, 30)
		h.keys("f", "/", "name:node-00000", "enter")
		h.mustContain("the filter matches 1 row, all passing: faults only hides them (f shows all)")
	})
	t.Run("read-only runs view", func(t *testing.T) {
		h := newProvHarness(t, synthSnapshot(10), newFakeProv(), true, 160, 30)
		h.keys(":runs")
		h.press("enter")
		s := h.mustContain("no runs yet (this console is read-only")
		if strings.Contains(s, "press r") {
			t.Fatalf("the read-only runs view invites r:\n%s", s)
		}
	})
	t.Run("footer messages expire", func(t *testing.T) {
		h := newHarness(t, synthSnapshot(10), 120, 30)
		h.keys(":nope", "enter")
		h.mustContain("unknown command: nope")
		h.clk.add(flashFor - time.Second)
		h.send(tickMsg(h.clk.t))
		h.mustContain("unknown command: nope")
		h.clk.add(time.Second)
		h.send(tickMsg(h.clk.t))
		h.mustNotContain("unknown command")
		if h.m.flash != "" {
			t.Fatalf("the expired message is still held: %q", h.m.flash)
		}
	})
}

// At 80x24 the Runs view keeps SCOPE, a queue reason is wrapped between
// words in the run view, and a saved file's path is read whole.
func TestNarrowRunsAndMessages(t *testing.T) {
	p := newFakeProv()
	seedRuns(p)
	reason := "hosts locked by run 01JNQ8ZK3M4X7V2B9C6D5E1F0A (alice@bastion-host-1, web.yml) and 3 more runs queued before it"
	p.runs[0].QueueReason = reason
	for i := range p.runs {
		id := fmt.Sprintf("01JNQ8ZK%dM4X7V2B9C6D5E1F0%d", i, i)
		p.views[id] = p.views[p.runs[i].ID]
		p.runs[i].ID = id
	}
	p.views[p.runs[0].ID] = &provision.RunView{Info: p.runs[0]}
	h := newProvHarness(t, synthSnapshot(10), p, false, 80, 24)
	h.keys(":runs")
	h.press("enter")
	s := h.mustContain("SCOPE", "role web", "node dc1/node-00000")
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, "…") && strings.Contains(l, "the marked") && !strings.Contains(l, "marked…") && !strings.Contains(l, "marked 6") {
			t.Errorf("scope cut inside a word: %q", l)
		}
	}
	h.press("enter")
	lines := h.screenLines()
	var status []string
	for _, l := range lines[2:6] {
		status = append(status, strings.TrimSpace(l))
	}
	if joined := strings.Join(status, " "); !strings.Contains(joined, "QUEUED: "+reason) {
		t.Fatalf("queue reason not read whole at 80 columns:\n%s", strings.Join(lines, "\n"))
	}

	// A saved file's path does not fit beside the path: it takes two
	// lines, broken between words.
	path := "/home/oncall/.local/state/fleetdeck/logs/node-00007-20260304T095800Z.jsonl"
	h.m.setFlash("saved 1200 entries to "+path, false)
	h.send(tickMsg(h.clk.t))
	lines = h.screenLines()
	last2 := lines[len(lines)-2:]
	if strings.TrimSpace(last2[0]) != "saved 1200 entries to" || strings.TrimSpace(last2[1]) != path {
		t.Fatalf("saved path at 80 columns:\n%q\n%q", last2[0], last2[1])
	}
}

// The help shows the keys the view on top registered, the modal screens'
// included.
func TestHelpIsPerView(t *testing.T) {
	p := newFakeProv()
	h := newProvHarness(t, synthSnapshot(30), p, false, 160, 80)
	h.press("r")
	h.keys("?")
	s := h.mustContain("Help: launch", "ctrl+s", "preview: the hosts and the exact command", "toggle check mode, diff, become")
	if strings.Contains(s, "filter rows") || strings.Contains(s, "sort by the next column") {
		t.Fatalf("the form's help lists table keys:\n%s", s)
	}
	h.keys("esc")
	if h.m.top().title() != "launch" {
		t.Fatalf("esc from the form's help went to %s", h.m.top().title())
	}
	// In a text field ? is text; f1 opens the help.
	for range fTags {
		h.do(special("tab"))
	}
	h.keys("?")
	if h.m.top().title() != "launch" || h.form().inputs[fTags].Value() != "?" {
		t.Fatal("? in a text field is not text")
	}
	h.send(tea.KeyPressMsg{Code: tea.KeyF1})
	if h.m.top().title() != "help" {
		t.Fatal("f1 in a text field did not open the help")
	}
}

// q quits from the preview as from the views, except while a
// confirmation is typed (then it is text).
func TestPreviewQuitKey(t *testing.T) {
	p := newFakeProv()
	h := newProvHarness(t, synthSnapshot(30), p, false, 120, 40)
	h.press("r", "ctrl+s")
	if h.m.top().title() != "preview" || !isQuit(h.send(keyMsg("q"))) {
		t.Fatal("q did not quit from a preview without a confirmation")
	}
	if !slices.Equal(p.discarded, []string{"plan-1"}) {
		t.Fatalf("quitting from the preview discarded %v", p.discarded)
	}
	p.confirm = "9"
	h2 := newProvHarness(t, synthSnapshot(30), p, false, 120, 40)
	h2.press("r", "ctrl+s")
	if cmd := h2.send(keyMsg("q")); cmd != nil || h2.preview().typed.Value() != "q" {
		t.Fatal("q while typing a confirmation is not text")
	}
}
