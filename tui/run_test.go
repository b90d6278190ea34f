package tui

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fleetdeck/fleetdeck/provision"
)

// runEvents returns the events of a run of one task ("install") and one
// handler-free second task ("configure") on hosts: host 0 fails the
// second task, host 1 is unreachable, the rest are ok or changed. When
// finish is set the recap and the run end follow.
func runEvents(hosts []string, finish bool) []provision.RunEvent {
	var evs []provision.RunEvent
	seq := int64(0)
	at := t0
	add := func(ev provision.RunEvent) {
		seq++
		at = at.Add(time.Millisecond)
		ev.Seq, ev.Time = seq, at
		evs = append(evs, ev)
	}
	add(provision.RunEvent{Event: provision.EventPlaybookStart, Playbook: "web.yml", Check: true})
	add(provision.RunEvent{Event: provision.EventPlayStart, Play: "web servers"})
	for ti, task := range []string{"install", "configure"} {
		uuid := fmt.Sprintf("task-%d", ti)
		add(provision.RunEvent{Event: provision.EventTaskStart, Task: task, TaskUUID: uuid, Play: "web servers", Action: "ansible.builtin.command"})
		for i, h := range hosts {
			base := provision.RunEvent{Host: h, Task: task, TaskUUID: uuid, Action: "ansible.builtin.command"}
			st := base
			st.Event = provision.EventRunnerStart
			add(st)
			res := base
			rc := 2
			switch {
			case i == 1 && ti == 0:
				res.Event = provision.EventRunnerUnreach
				res.Result = &provision.EventResult{Msg: "ssh: connect to host: Connection refused"}
			case i == 1:
				continue
			case i == 0 && ti == 1:
				res.Event = provision.EventRunnerFailed
				res.Result = &provision.EventResult{Msg: "non-zero return code", Stdout: "checking config", Stderr: "nginx: [emerg] unknown directive", RC: &rc, Diff: "--- a\n+++ b\n-x\n+y"}
			default:
				res.Event = provision.EventRunnerOK
				res.Changed = i%3 == 0
			}
			add(res)
		}
	}
	if finish {
		stats := map[string]provision.HostStats{}
		for i, h := range hosts {
			switch i {
			case 0:
				stats[h] = provision.HostStats{OK: 1, Failures: 1}
			case 1:
				stats[h] = provision.HostStats{Unreachable: 1}
			default:
				stats[h] = provision.HostStats{OK: 2, Changed: map[bool]int{true: 2}[i%3 == 0]}
			}
		}
		add(provision.RunEvent{Event: provision.EventStats, Stats: stats})
		add(provision.RunEvent{Event: provision.EventRunEnd, End: &provision.RunEnd{ExitCode: 2, Outcome: "failed"}})
	}
	return evs
}

// runState applies evs to a board of hosts.
func runState(hosts []string, evs []provision.RunEvent) *provision.RunState {
	s := provision.NewRunState(hosts)
	for _, ev := range evs {
		s.Apply(ev)
	}
	return s
}

func hostNames(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("node-%05d", i)
	}
	return out
}

// seedRuns gives the fake a finished failed run, a running run and a
// queued run.
func seedRuns(p *fakeProv) {
	hosts := hostNames(6)
	done := runState(hosts, runEvents(hosts, true))
	live := runState(hosts, runEvents(hosts, false)[:12])
	p.runs = []provision.RunInfo{
		{ID: "r3", Playbook: "base.yml", Scope: provision.ScopeRole, Subject: "web", Who: "bob", Status: provision.RunQueued,
			QueueReason: "hosts locked by run r2 (alice)", Hosts: 6, Check: true, Live: true},
		{ID: "r2", Playbook: "web.yml", Scope: provision.ScopeMarked, Subject: "6 nodes", Who: "alice", Status: provision.RunRunning,
			Hosts: 6, Counts: live.StatusCounts(), Started: t0.Add(-time.Minute), Live: true},
		{ID: "r1", Playbook: "web.yml", Scope: provision.ScopeNode, Subject: "dc1/node-00000", Who: "alice", Status: provision.RunFailed,
			Hosts: 6, Counts: done.StatusCounts(), Started: t0.Add(-time.Hour), Ended: t0.Add(-time.Hour + 90*time.Second), ExitCode: 2},
	}
	var out []string
	for i := range 300 {
		out = append(out, fmt.Sprintf("TASK [install] ***** line %d", i))
	}
	out = append(out, "fatal: [node-00000]: FAILED! => nginx: [emerg] unknown directive", "\x1b[31mPLAY RECAP\x1b[0m *****")
	p.views["r1"] = &provision.RunView{Info: p.runs[2], Argv: []string{"ansible-playbook"}, State: done, Output: out, OutputTruncated: 7}
	p.views["r2"] = &provision.RunView{Info: p.runs[1], State: live, Output: []string{"PLAY [web servers]"}}
}

func TestRunsView(t *testing.T) {
	p := newFakeProv()
	seedRuns(p)
	h := newProvHarness(t, synthSnapshot(10), p, false, 200, 30)
	h.keys(":runs")
	h.press("enter")
	s := h.mustContain("runs 1 running 1 queued", "ID", "STARTED", "WHO", "PLAYBOOK", "SCOPE", "HOSTS", "STATUS", "FAILED", "UNREACH", "EXIT",
		"queued", "hosts locked by run r2 (alice)", "running", "failed", "role web", "marked 6 nodes", "runs 1/3")
	lines := strings.Split(s, "\n")
	// Newest first, as the manager lists them.
	var order []string
	for _, l := range lines {
		for _, id := range []string{"r3 ", "r2 ", "r1 "} {
			if strings.HasPrefix(strings.TrimLeft(l, "> "), id) {
				order = append(order, id)
			}
		}
	}
	if !slices.Equal(order, []string{"r3 ", "r2 ", "r1 "}) {
		t.Fatalf("order %v:\n%s", order, s)
	}
	// enter opens the run view.
	h.press("down", "down", "enter")
	if v, ok := h.m.top().(*runView); !ok || v.id != "r1" {
		t.Fatalf("top %v", h.m.top().title())
	}
	h.mustContain("Run r1 · web.yml", "FAILED", "exit 2", "PLAY RECAP", "failed 1", "unreachable 1")
	h.press("esc")
	if h.m.top().title() != "runs" {
		t.Fatal("esc from the run view must return to runs")
	}
	// A change reported by Next refreshes the list.
	p.runs[1].Status = provision.RunOK
	h.do(provChangedMsg{ver: 5})
	if h.m.provVer != 5 {
		t.Fatalf("provVer %d", h.m.provVer)
	}
	h.mustContain("ok ")
}

func TestRunViewBoardTasksFailureOutput(t *testing.T) {
	p := newFakeProv()
	seedRuns(p)
	h := newProvHarness(t, synthSnapshot(10), p, false, 160, 30)
	h.do(h.m.openRun("r1")())
	h.mustContain("HOST", "STATUS", "TASK", "node-00000", "failed", "unreachable", "[hosts]")
	rs := h.runView()
	if len(rs.hosts) != 6 {
		t.Fatalf("board rows %d", len(rs.hosts))
	}
	// Faults toggle keeps failed and unreachable hosts.
	h.press("f")
	if len(h.runView().hosts) != 2 {
		t.Fatalf("faults board rows %d", len(h.runView().hosts))
	}
	h.press("f")
	// enter on the failed host: msg, stdout, stderr, diff.
	h.press("enter")
	if h.m.top().title() != "failure" {
		t.Fatalf("top %v", h.m.top().title())
	}
	h.mustContain("Failure on node-00000", "task configure", "rc 2", "non-zero return code", "checking config",
		"nginx: [emerg] unknown directive", "+++ b")
	h.press("esc")
	// The unreachable host.
	h.press("down", "enter")
	h.mustContain("node-00001 unreachable", "Connection refused")
	h.press("esc")
	// An ok host has no failure.
	h.press("down", "enter")
	if h.m.top().title() != "run" {
		t.Fatal("enter on an ok host opened something")
	}
	// Task list.
	h.do(special("tab"))
	h.mustContain("[tasks]", "install", "configure", "RUNNING")
	h.press("down", "enter")
	h.mustContain("Failures of task configure", "node-00000")
	h.press("esc")
	// Output: search, n/N, highlight.
	h.do(special("tab"))
	h.mustContain("[output]", "7 earlier lines not shown", "PLAY RECAP")
	h.keys("/", "line 1")
	h.press("enter")
	rs = h.runView()
	if rs.search != "line 1" || len(rs.matches) != 111 {
		t.Fatalf("search %q matches %d", rs.search, len(rs.matches))
	}
	first := rs.matches[rs.match]
	h.mustContain("/line 1 111 matches")
	h.press("n")
	if rs.matches[rs.match] <= first {
		t.Fatal("n did not move to the next match")
	}
	h.press("N", "N")
	if rs.match != len(rs.matches)-1 && rs.matches[rs.match] >= first {
		t.Fatal("N did not move back")
	}
	s := h.screen()
	if !strings.Contains(s, ">TASK [install] ***** line") {
		t.Fatalf("current match not marked:\n%s", s)
	}
	// A search with no match says so on n.
	h.keys("/", "zzz")
	h.press("enter", "n")
	h.mustContain("no match for zzz")
}

func TestRunViewLiveRefresh(t *testing.T) {
	p := newFakeProv()
	seedRuns(p)
	h := newProvHarness(t, synthSnapshot(10), p, false, 160, 30)
	h.do(h.m.openRun("r2")())
	h.mustContain("RUNNING", "running")
	hosts := hostNames(6)
	p.mu.Lock()
	p.views["r2"] = &provision.RunView{Info: p.runs[1], State: runState(hosts, runEvents(hosts, true))}
	p.views["r2"].Info.Status = provision.RunFailed
	p.mu.Unlock()
	h.do(provChangedMsg{ver: 2})
	h.mustContain("PLAY RECAP", "FAILED")
	// Unchanged hosts keep their cached rows across fetches.
	rs := h.runView()
	before := rs.hosts[3]
	h.do(provChangedMsg{ver: 3})
	if rs.hosts[3] != before {
		t.Fatal("unchanged host row was rebuilt")
	}
}

func TestCancelAndRerunFlows(t *testing.T) {
	p := newFakeProv()
	seedRuns(p)
	h := newProvHarness(t, synthSnapshot(10), p, false, 160, 30)
	h.keys(":runs")
	h.press("enter")
	// Cancel the queued run: y/n first.
	h.press("c")
	h.mustContain("cancel run r3 (queued)? y/n")
	h.press("n")
	if len(p.cancelled) != 0 {
		t.Fatal("n cancelled")
	}
	h.press("c", "y")
	if !slices.Equal(p.cancelled, []string{"r3"}) {
		t.Fatalf("cancelled %v", p.cancelled)
	}
	h.mustContain("cancelling run r3")
	// A finished run cannot be cancelled.
	h.press("down", "down", "c")
	if h.m.overlay != nil {
		t.Fatal("asked to cancel a finished run")
	}
	h.mustContain("has already ended")
	// R: same settings, through the preview.
	h.press("R")
	if h.m.top().title() != "preview" {
		t.Fatalf("R: top %v", h.m.top().title())
	}
	h.mustContain("Playbook web.yml on role web")
	h.press("esc")
	if h.m.top().title() != "runs" || !slices.Equal(p.discarded, []string{"plan-1"}) {
		t.Fatalf("esc from a re-run preview: top %v discarded %v", h.m.top().title(), p.discarded)
	}
	// F from the run view: failed and unreachable only.
	h.press("enter", "F")
	if !slices.Equal(p.reruns, []string{"r1:false", "r1:true"}) {
		t.Fatalf("reruns %v", p.reruns)
	}
	h.press("enter")
	if !slices.Equal(p.launched, []string{"plan-2"}) || h.m.top().title() != "run" {
		t.Fatalf("launch of a re-run: %v top %v", p.launched, h.m.top().title())
	}
}

func TestReadOnlyUnbindsRunKeys(t *testing.T) {
	p := newFakeProv()
	seedRuns(p)
	h := newProvHarness(t, synthSnapshot(10), p, true, 160, 60)
	h.press("r")
	if h.m.top().title() != "nodes" {
		t.Fatal("r opened the form in read-only mode")
	}
	h.keys(":roles")
	h.press("enter", "r")
	if h.m.top().title() != "roles" {
		t.Fatal("r opened the form in read-only mode")
	}
	h.keys(":runs")
	h.press("enter", "c", "R", "F")
	if h.m.overlay != nil || h.m.top().title() != "runs" || len(p.reruns) != 0 {
		t.Fatal("c/R/F acted in read-only mode")
	}
	// The run view is still available to watch.
	h.press("down", "down", "enter")
	h.press("c", "R", "F")
	if h.m.overlay != nil || h.m.top().title() != "run" || len(p.reruns) != 0 {
		t.Fatal("c/R/F acted in the run view in read-only mode")
	}
	h.press("?")
	h.mustNotContain("run a playbook", "cancel the run", "re-run", "Launch form")
}

func TestRunViewHostileText(t *testing.T) {
	p := newFakeProv()
	hosts := []string{"evil\x1b]52;c;cHduZWQ=\x07host", "rtl\u202ehost", "wide-界界界界界界界界界界界界界界界界界界界界"}
	evs := []provision.RunEvent{
		{Seq: 1, Event: provision.EventTaskStart, Task: "t\x1b[2Jx", TaskUUID: "u"},
		{Seq: 2, Event: provision.EventRunnerFailed, Host: hosts[0], Task: "t\x1b[2Jx", TaskUUID: "u",
			Result: &provision.EventResult{Msg: "bad\x1b[31m\u202e", Stdout: "a\r\nb\x07"}},
	}
	p.views["x"] = &provision.RunView{
		Info:   provision.RunInfo{ID: "x\x1b[H", Playbook: "p\x9b31m.yml", Status: provision.RunFailed, Who: "m\x1b]0;t\x07"},
		State:  runState(hosts, evs),
		Output: []string{"\x1b]52;c;cHduZWQ=\x07out", "\x1b[2J"},
	}
	h := newProvHarness(t, synthSnapshot(3), p, false, 100, 30)
	h.do(h.m.openRun("x")())
	for range numPanes {
		s := h.screen() // checkScreen fails on any foreign escape
		if strings.Contains(s, "cHduZWQ") {
			t.Fatal("OSC payload on screen")
		}
		h.do(special("tab"))
	}
	h.press("enter")
	h.screen()
}

// Quitting cancels this console's runs: ask first.
func TestQuitAsksWhileRunsAreLive(t *testing.T) {
	p := newFakeProv()
	seedRuns(p)
	h := newProvHarness(t, synthSnapshot(10), p, false, 160, 30)
	h.press(":", "r", "u", "n", "s", "enter") // fetches the runs, as the header does
	if running, queued := h.m.liveRuns(); running+queued == 0 {
		t.Fatal("the seeded runs are not live")
	}
	if cmd := h.send(keyMsg("q")); cmd != nil {
		t.Fatal("q quit at once with live runs")
	}
	h.mustContain("will be cancelled. Quit? y/n")
	h.press("n")
	h.mustContain("not quitting")
	h.send(keyMsg("q"))
	if cmd := h.send(keyMsg("y")); cmd == nil {
		t.Fatal("y did not quit")
	}
}

// A long argv (a big --limit) wraps without losing a character.
func TestPreviewArgvWrapsExactly(t *testing.T) {
	p := newFakeProv()
	long := "--limit=" + strings.Repeat("ip-10-1-0-123,", 40) + "end"
	p.extraArgv = []string{long}
	h := newProvHarness(t, synthSnapshot(10), p, false, 80, 200)
	h.press("r", "ctrl+s")
	var b strings.Builder
	in := false
	for _, l := range strings.Split(h.screen(), "\n") {
		switch {
		case strings.Contains(l, "--limit="):
			in = true
			b.WriteString(strings.TrimSpace(l[strings.Index(l, "--limit="):]))
		case in && strings.HasPrefix(l, "        ") && strings.TrimSpace(l) != "":
			b.WriteString(strings.TrimSpace(l))
		default:
			in = false
		}
	}
	if b.String() != long {
		t.Fatalf("argv on screen:\n%s\nwant\n%s", b.String(), long)
	}
}

// :locks lists the host locks held now, by any console; enter opens the
// run holding the host; the view reads the locks again while shown, and a
// datacenter that could not be read is said while the others are shown.
func TestLocksView(t *testing.T) {
	p := newFakeProv()
	seedRuns(p)
	since := t0.Add(-90 * time.Second)
	p.locks = []provision.HeldLock{
		{Target: provision.RunTarget{Node: "node-00000", Datacenter: "dc1"}, Holder: provision.LockHolder{User: "alice", Host: "bastion-1", PID: 4242, RunID: "r1", Since: since}},
		{Target: provision.RunTarget{Node: "web-\x1b[2J7", Datacenter: "dc2"}, Holder: provision.LockHolder{User: "bob", Host: "laptop", Identity: "bob@corp", RunID: "r9", Since: since}},
	}
	h := newProvHarness(t, synthSnapshot(10), p, false, 160, 20)
	h.keys(":locks")
	h.press("enter")
	h.mustContain("HOST", "DC", "HOLDER", "CONSOLE", "RUN", "SINCE", "node-00000", "alice@bastion-1", "pid 4242", "r1",
		"bob@laptop", "bob@corp", "r9", "locks 1/2")
	h.mustNotContain("\x1b[2J")
	h.press("enter")
	if v, ok := h.m.top().(*runView); !ok || v.id != "r1" {
		t.Fatalf("enter on a lock opens %v, want the run r1", h.m.top().title())
	}
	h.press("esc")

	// Another console frees its host: seen at the next refresh.
	p.mu.Lock()
	p.locks = p.locks[:1]
	p.locksErr = errors.New("listing host locks in dc2: connection refused")
	p.mu.Unlock()
	h.clk.add(locksRefresh)
	h.do(tickMsg(h.clk.t))
	h.mustContain("node-00000", "locks 1/1")
	h.mustNotContain("bob@laptop")

	p.mu.Lock()
	p.locks, p.locksErr = nil, nil
	p.mu.Unlock()
	h.clk.add(locksRefresh)
	h.do(tickMsg(h.clk.t))
	h.mustContain("no host is locked")

	// Without runs there are no locks to show: say why.
	h2 := newHarness(t, synthSnapshot(3), 120, 20)
	h2.keys(":locks", "enter")
	h2.mustContain("runs are not available")
}

// Another console's run (same history, not this console's manager): the
// header does not count it, c says whose it is instead of asking, and the
// Runs list follows its end without this console being told.
func TestAnotherConsolesRun(t *testing.T) {
	p := newFakeProv()
	p.runs = []provision.RunInfo{{ID: "r9", Playbook: "web.yml", Who: "bob", Status: provision.RunRunning, Hosts: 3, Started: t0}}
	h := newProvHarness(t, synthSnapshot(10), p, false, 160, 20)
	h.keys(":runs")
	h.press("enter")
	h.mustContain("r9", "running")
	if first := h.screenLines()[0]; strings.Contains(first, "runs 1") {
		t.Errorf("the header counts another console's run: %q", first)
	}
	h.press("c")
	h.mustContain("another console's", "only that console can cancel it")
	if p.cancelled != nil {
		t.Errorf("cancelled %v", p.cancelled)
	}
	p.mu.Lock()
	p.runs[0].Status = provision.RunOK
	p.mu.Unlock()
	h.clk.add(runsRefresh)
	h.do(tickMsg(h.clk.t))
	h.mustContain("ok")
}

// A run that carried per-host variables (a roles apply) cannot be re-run:
// R and F are not offered in the footer, and pressing them
// says why instead of asking the manager.
func TestRerunOfAHostVarsRunIsNotOffered(t *testing.T) {
	p := newFakeProv()
	seedRuns(p)
	p.runs[2].HostVars = []string{"fleetdeck_maintenance", "fleetdeck_services"}
	v := *p.views["r1"]
	v.Info = p.runs[2]
	p.views["r1"] = &v
	h := newProvHarness(t, synthSnapshot(10), p, false, 200, 30)
	h.keys(":runs")
	h.press("enter", "down", "down")
	h.mustNotContain("R rerun", "F rerun failed")
	h.press("enter")
	h.mustNotContain("R rerun", "F rerun failed")
	h.press("R")
	h.mustContain("applied per-host values (desired roles) as they were then")
	h.press("F")
	if len(p.reruns) != 0 || h.m.top().title() != "run" {
		t.Fatalf("R/F on a host-vars run asked the manager: reruns %v, top %v", p.reruns, h.m.top().title())
	}
}
