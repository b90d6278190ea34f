package tui

import (
	"context"
	"strconv"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/fleetdeck/fleetdeck/fleet"
	"github.com/fleetdeck/fleetdeck/provision"
)

// The run view shows one run, live or replayed: a header (playbook, mode,
// status, host tallies, elapsed, recap), then one of three panes: the host
// board, the task list, the raw output. Each board fetch is a fresh copy of
// the run's state; rows are cached per host and rebuilt only for hosts whose
// line changed, and only the visible window is rendered, so a run of
// thousands of hosts streaming thousands of events costs a pass over the
// host list per fetch and a screenful per frame.

// Run view panes.
const (
	paneHosts = iota
	paneTasks
	paneOutput
	numPanes
)

// paneName names pane i in the tabs.
func paneName(i int) string { return [numPanes]string{"hosts", "tasks", "output"}[i] }

// Host board columns.
const (
	hcHost = iota
	hcStatus
	hcOK
	hcChanged
	hcFailed
	hcUnreach
	hcSkipped
	hcTask
	hcCount
)

func hostColumns() []column {
	num := func(t string, prio int) column {
		return column{title: t, min: len(t) + 1, max: 7, right: true, prio: prio}
	}
	return []column{
		hcHost:    {title: "HOST", min: 10, max: 40, flex: true, prio: 100},
		hcStatus:  {title: "STATUS", min: 11, max: 11, prio: 99},
		hcOK:      num("OK", 60),
		hcChanged: num("CHANGED", 59),
		hcFailed:  num("FAILED", 62),
		hcUnreach: num("UNREACH", 61),
		hcSkipped: num("SKIPPED", 50),
		hcTask:    {title: "TASK", min: 10, max: 200, flex: true, prio: 90},
	}
}

// Task list columns.
const (
	tcTask = iota
	tcPlay
	tcRunning
	tcOK
	tcChanged
	tcFailed
	tcUnreach
	tcSkipped
	tcCount
)

func taskColumns() []column {
	num := func(t string, prio int) column {
		return column{title: t, min: len(t) + 1, max: 7, right: true, prio: prio}
	}
	return []column{
		tcTask:    {title: "TASK", min: 12, max: 60, flex: true, prio: 100},
		tcPlay:    {title: "PLAY", min: 6, max: 30, flex: true, prio: 40},
		tcRunning: num("RUNNING", 70),
		tcOK:      num("OK", 60),
		tcChanged: num("CHANGED", 59),
		tcFailed:  num("FAILED", 62),
		tcUnreach: num("UNREACH", 61),
		tcSkipped: num("SKIPPED", 50),
	}
}

// hostFP is what a board row shows of a host; equal means the cached row
// is still right.
type hostFP struct {
	status provision.HostStatus
	task   string
	active bool
	counts provision.HostStats
}

type hostEntry struct {
	fp  hostFP
	row *row
}

// runView is the run view component: one run, live or replayed.
type runView struct {
	base
	id  string
	rv  *provision.RunView
	err string
	// fetching/again coalesce board fetches; stale asks for one when the
	// view is back on top.
	fetching, again, stale bool
	fetchedAt              time.Time

	pane int
	// cur and off are the cursor and window offset of each pane.
	cur, off [numPanes]int
	// follow keeps the output pane at its end as lines arrive.
	follow bool
	// faults shows only the hosts that did not succeed (this view's own
	// toggle).
	faults bool

	hostCache map[string]*hostEntry
	allHosts  []*row // board order
	hosts     []*row // after the faults toggle
	hostsFor  bool   // the faults toggle hosts was filtered for
	tasks     []*row
	hostLay   layout
	taskLay   layout
	natural   []int
	counts    map[provision.HostStatus]int
	recap     *provision.HostStats

	out     []string // sanitised output lines
	search  string   // the search as typed
	lsearch string   // lowercased
	matches []int    // output line indexes matching the search
	match   int      // current match index in matches

	// head is the run's header, laid out by refresh: identity, status
	// (wrapped between words), host tally (head[tallyAt], already
	// styled), the re-run offer, recap.
	head    []textLine
	tallyAt int
}

// newRunView returns the run view of run id (empty until fetched).
func newRunView(s *shared, id string) *runView {
	rs := &runView{base: base{s: s}, id: id, follow: true, hostCache: map[string]*hostEntry{},
		hostLay: layout{width: -1}, taskLay: layout{width: -1}}
	info := func() *provision.RunInfo {
		if rs.rv == nil {
			return nil
		}
		return &rs.rv.Info
	}
	do := func(fn func()) func(tea.KeyPressMsg) tea.Cmd {
		return func(tea.KeyPressMsg) tea.Cmd { fn(); return nil }
	}
	acts := moveActions(func() int { return rs.paneHeight() }, func(d int) {
		rs.moveRun(d)
		if d == 1<<30 && rs.pane == paneOutput {
			rs.follow = true // end on the output follows it, as in less +F
		}
	})
	acts = append(acts,
		action{keys: []string{"enter"}, short: "open", desc: "failure detail of the host (hosts) or the task's failures (tasks)",
			when: func() bool { return rs.pane != paneOutput }, do: do(rs.drill)},
		action{keys: []string{"tab"}, label: "tab/shift+tab", short: "pane", desc: "switch pane: hosts, tasks, output",
			do: do(func() { rs.pane = (rs.pane + 1) % numPanes })},
		action{keys: []string{"shift+tab"}, do: do(func() { rs.pane = (rs.pane + numPanes - 1) % numPanes })},
		action{keys: []string{"/"}, short: "search", desc: "search the output (applies as typed; esc restores the previous search)",
			do: do(rs.openSearch)},
		action{keys: []string{"n"}, desc: "next search match", when: func() bool { return rs.search != "" }, do: do(func() { rs.nextMatch(true) })},
		action{keys: []string{"N"}, desc: "previous search match", when: func() bool { return rs.search != "" }, do: do(func() { rs.nextMatch(false) })},
		action{keys: []string{"f"}, short: "faults", desc: "this view: hosts board shows only failed, unreachable, interrupted and not run hosts",
			do: do(func() { rs.faults = !rs.faults })},
	)
	// x and y on a host row of the board, as on a node row elsewhere.
	host := func() *fleet.Node {
		if rs.pane != paneHosts || rs.cur[paneHosts] >= len(rs.hosts) {
			return nil
		}
		return s.hostNode(rs.hosts[rs.cur[paneHosts]].id)
	}
	acts = append(acts, s.sshAction(host), s.copyAction(host))
	acts = append(acts, s.runControlActions(info)...)
	acts = append(acts, s.viewActions(rs, "back")...)
	rs.acts = s.register(acts...)
	return rs
}

func (rs *runView) title() string { return "run" }

// openRun pushes the run view of id and fetches its board.
func (s *shared) openRun(id string) tea.Cmd {
	rs := newRunView(s, id)
	s.push(rs)
	return rs.fetch()
}

// fetch reloads the board (coalesced: at most one fetch in flight).
func (rs *runView) fetch() tea.Cmd {
	s := rs.s
	if s.prov == nil {
		return nil
	}
	if rs.fetching {
		rs.again = true
		return nil
	}
	rs.fetching = true
	rs.fetchedAt = s.now()
	p, id := s.prov, rs.id
	return s.provCall(provTimeout, func(ctx context.Context) tea.Msg {
		rv, err := p.Run(ctx, id)
		return runMsg{id: id, rv: rv, err: err}
	})
}

// update takes the view's board, and follows the run: only the run on
// top follows live; one under other views is fetched again when it is
// back on top.
func (rs *runView) update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case runMsg:
		if msg.id != rs.id {
			return nil
		}
		rs.fetching = false
		rs.set(msg.rv, msg.err)
		if rs.again {
			rs.again = false
			return rs.fetch()
		}
	case provChangedMsg:
		if rs.s.top() == component(rs) {
			return rs.fetch()
		}
		rs.stale = true
	case tickMsg:
		// Another console's run that is still going: its console tells
		// this one nothing, so read its record again now and then.
		if rs.s.top() == component(rs) && rs.rv != nil && !rs.rv.Info.Live && !rs.rv.Info.Status.Final() &&
			rs.s.now().Sub(rs.fetchedAt) >= runsRefresh {
			return rs.fetch()
		}
	}
	return nil
}

// wake catches up with the run when the view is back on top.
func (rs *runView) wake() tea.Cmd {
	if !rs.stale {
		return nil
	}
	rs.stale = false
	return rs.fetch()
}

// set installs a fetched board (or the error fetching it).
func (rs *runView) set(rv *provision.RunView, err error) {
	if err != nil {
		rs.err = sanitize(err.Error())
		return
	}
	rs.err = ""
	if rv == nil {
		return
	}
	rs.rv = rv
	rs.buildHosts()
	rs.buildTasks()
	rs.buildOutput()
}

// buildHosts brings the board rows up to date, reusing unchanged rows.
func (rs *runView) buildHosts() {
	st := rs.rv.State
	rs.counts = map[provision.HostStatus]int{}
	rs.recap = nil
	if st == nil {
		rs.allHosts, rs.hosts = nil, nil
		return
	}
	if cap(rs.allHosts) < len(st.HostOrder) {
		rs.allHosts = make([]*row, 0, len(st.HostOrder))
	}
	rs.allHosts = rs.allHosts[:0]
	changed := false
	for _, name := range st.HostOrder {
		h := st.Hosts[name]
		if h == nil {
			continue
		}
		rs.counts[h.Status]++
		fp := hostFP{status: h.Status, task: h.Task, active: h.Active, counts: h.Counts}
		e := rs.hostCache[name]
		if e == nil {
			e = &hostEntry{}
			rs.hostCache[name] = e
		}
		if e.row == nil || e.fp != fp {
			e.fp, e.row = fp, rs.s.hostRow(h)
			changed = true
		}
		rs.allHosts = append(rs.allHosts, e.row)
	}
	if len(rs.hostCache) > len(st.HostOrder) {
		for n := range rs.hostCache {
			if st.Hosts[n] == nil {
				delete(rs.hostCache, n)
			}
		}
	}
	if st.Recap != nil {
		var t provision.HostStats
		for _, s := range st.Recap {
			t.Add(s)
		}
		rs.recap = &t
	}
	rs.filterHosts(changed)
}

// filterHosts applies the faults toggle to the board and refits columns
// when rows changed.
func (rs *runView) filterHosts(changed bool) {
	rs.hostsFor = rs.faults
	if !rs.faults {
		rs.hosts = rs.allHosts
	} else {
		rs.hosts = make([]*row, 0, 64)
		for _, r := range rs.allHosts {
			if r.health != fleet.HealthPassing {
				rs.hosts = append(rs.hosts, r)
			}
		}
	}
	if changed || rs.natural == nil {
		rs.natural = naturalWidths(rs.allHosts, hcCount)
		rs.hostLay.width = -1
	}
}

// naturalWidths returns the widest cell of each column.
func naturalWidths(rows []*row, n int) []int {
	w := make([]int, n)
	for _, r := range rows {
		for i, x := range r.widths {
			if x > w[i] {
				w[i] = x
			}
		}
	}
	return w
}

// hostStyle is the colour and fault class of a host status.
func (s *shared) hostStyle(hs provision.HostStatus) (fleet.Health, string) {
	st := &s.st
	switch hs {
	case provision.HostOK:
		return fleet.HealthPassing, st.ok
	case provision.HostChanged:
		return fleet.HealthPassing, st.warn
	case provision.HostRunning:
		return fleet.HealthPassing, st.title
	case provision.HostFailed:
		return fleet.HealthCritical, st.bad
	case provision.HostUnreachable:
		return fleet.HealthCritical, st.healthStyle(fleet.HealthMaintenance) + st.changed
	case provision.HostInterrupted:
		return fleet.HealthWarning, st.warn
	case provision.HostNotRun:
		// Never started: not a failure, but not done either (F re-runs it).
		return fleet.HealthWarning, st.dim
	case provision.HostSkipped:
		return fleet.HealthPassing, st.dim
	}
	return fleet.HealthPassing, ""
}

// hostRow builds one board row.
func (s *shared) hostRow(h *provision.HostState) *row {
	c := h.Counts
	task := h.Task
	if h.Active {
		task = "▶ " + task
	}
	r := newRow(h.Name, []string{
		hcHost:    h.Name,
		hcStatus:  string(h.Status),
		hcOK:      strconv.Itoa(c.OK),
		hcChanged: strconv.Itoa(c.Changed),
		hcFailed:  strconv.Itoa(c.Failures),
		hcUnreach: strconv.Itoa(c.Unreachable),
		hcSkipped: strconv.Itoa(c.Skipped),
		hcTask:    task,
	})
	r.health, r.style = s.hostStyle(h.Status)
	return r
}

// buildTasks rebuilds the task list (tasks are few next to hosts).
func (rs *runView) buildTasks() {
	st := rs.rv.State
	rs.tasks = rs.tasks[:0]
	if st == nil {
		return
	}
	for i, t := range st.Tasks {
		c := t.Counts
		name := t.Name
		if t.Handler {
			name = "handler: " + name
		}
		r := newRow(t.UUID+"#"+strconv.Itoa(i), []string{
			tcTask:    name,
			tcPlay:    t.Play,
			tcRunning: strconv.Itoa(t.Running),
			tcOK:      strconv.Itoa(c.OK),
			tcChanged: strconv.Itoa(c.Changed),
			tcFailed:  strconv.Itoa(c.Failures),
			tcUnreach: strconv.Itoa(c.Unreachable),
			tcSkipped: strconv.Itoa(c.Skipped),
		})
		r.id = t.UUID
		switch {
		case c.Failures > 0 || c.Unreachable > 0:
			r.health, r.style = fleet.HealthCritical, rs.s.st.bad
		case t.Running > 0:
			r.style = rs.s.st.title
		case c.Changed > 0:
			r.style = rs.s.st.warn
		}
		rs.tasks = append(rs.tasks, r)
	}
	rs.taskLay.width = -1
}

// buildOutput sanitises the output lines and redoes the search.
func (rs *runView) buildOutput() {
	out := rs.rv.Output
	if cap(rs.out) < len(out) {
		rs.out = make([]string, 0, len(out))
	}
	rs.out = rs.out[:0]
	for _, l := range out {
		rs.out = append(rs.out, strings.TrimRight(sanitize(l), " "))
	}
	rs.findMatches(false)
}

// findMatches recomputes the output lines matching the search. When jump
// is set the output moves to the first match from its current position.
func (rs *runView) findMatches(jump bool) {
	rs.matches = rs.matches[:0]
	if rs.lsearch == "" {
		return
	}
	for i, l := range rs.out {
		if containsFold(l, rs.lsearch) {
			rs.matches = append(rs.matches, i)
		}
	}
	rs.match = min(rs.match, max(len(rs.matches)-1, 0))
	if jump && len(rs.matches) > 0 {
		rs.match = 0
		for i, ln := range rs.matches {
			if ln >= rs.off[paneOutput] {
				rs.match = i
				break
			}
		}
	}
}

// openSearch opens the "/" prompt on the output: the search starts empty
// (as in less and vim) and applies as typed; esc restores the previous
// one.
func (rs *runView) openSearch() {
	prev := rs.search
	rs.s.openOverlay(newPrompt(rs.s, promptSearch, "", promptHooks{
		change: rs.setSearch,
		enter:  func(text string) tea.Cmd { rs.setSearch(text); return nil },
		cancel: func() { rs.setSearch(prev) },
	}))
}

// setSearch applies a search and shows its first match from the current
// position.
func (rs *runView) setSearch(text string) {
	if text == rs.search {
		return
	}
	rs.s.clearFlash() // what it said (a wrap, no match) was about the old search
	rs.search = text
	rs.lsearch = strings.ToLower(text)
	rs.findMatches(true)
	if len(rs.matches) > 0 {
		rs.pane = paneOutput
		rs.follow = false
		rs.showMatch()
	}
}

// nextMatch moves to the next (or previous) match, saying when the search
// wraps around.
func (rs *runView) nextMatch(forward bool) {
	n := len(rs.matches)
	if n == 0 {
		rs.s.setFlash("no match for "+rs.search, true)
		return
	}
	switch {
	case forward && rs.match == n-1:
		rs.match = 0
		rs.s.setFlash("search wrapped to the top", false)
	case forward:
		rs.match++
	case rs.match == 0:
		rs.match = n - 1
		rs.s.setFlash("search wrapped to the bottom", false)
	default:
		rs.match--
	}
	rs.pane = paneOutput
	rs.showMatch()
}

// paneHeight is the number of rows the active pane shows: the body minus
// the run's header, the pane tabs and the column header.
func (rs *runView) paneHeight() int {
	return max(rs.h-len(rs.head)-2, 1)
}

// paneLen is the number of rows (or lines) of pane p.
func (rs *runView) paneLen(p int) int {
	switch p {
	case paneHosts:
		return len(rs.hosts)
	case paneTasks:
		return len(rs.tasks)
	}
	return len(rs.out)
}

// moveRun moves the cursor of the active pane (the output pane scrolls).
func (rs *runView) moveRun(delta int) {
	p, n, h := rs.pane, rs.paneLen(rs.pane), rs.paneHeight()
	if p == paneOutput {
		rs.off[p] = clamp(rs.off[p]+delta, 0, max(n-h, 0))
		rs.follow = rs.off[p] >= max(n-h, 0)
		return
	}
	rs.cur[p] = clamp(rs.cur[p]+delta, 0, max(n-1, 0))
	rs.clampRun()
}

// clampRun keeps each pane's cursor in its window.
func (rs *runView) clampRun() {
	h := rs.paneHeight()
	for p := range numPanes {
		n := rs.paneLen(p)
		if p == paneOutput {
			if rs.follow {
				rs.off[p] = max(n-h, 0)
			}
			rs.off[p] = clamp(rs.off[p], 0, max(n-h, 0))
			continue
		}
		rs.cur[p] = clamp(rs.cur[p], 0, max(n-1, 0))
		if rs.cur[p] < rs.off[p] {
			rs.off[p] = rs.cur[p]
		}
		if rs.cur[p] >= rs.off[p]+h {
			rs.off[p] = rs.cur[p] - h + 1
		}
		rs.off[p] = clamp(rs.off[p], 0, max(n-h, 0))
	}
}

func clamp(x, lo, hi int) int { return max(lo, min(x, hi)) }

// showMatch scrolls the output so the current match is visible.
func (rs *runView) showMatch() {
	if len(rs.matches) == 0 {
		return
	}
	ln := rs.matches[rs.match]
	h := rs.paneHeight()
	if ln < rs.off[paneOutput] || ln >= rs.off[paneOutput]+h {
		rs.off[paneOutput] = max(ln-h/3, 0)
	}
	rs.follow = false
	rs.clampRun()
}

// drill opens the failure detail of the host (board) or task (task list)
// under the cursor.
func (rs *runView) drill() {
	s := rs.s
	if rs.rv == nil || rs.rv.State == nil {
		return
	}
	st := rs.rv.State
	switch rs.pane {
	case paneHosts:
		if rs.cur[paneHosts] >= len(rs.hosts) {
			return
		}
		name := rs.hosts[rs.cur[paneHosts]].id
		h := st.Hosts[name]
		if h == nil || h.LastFailure == nil {
			s.setFlash("host "+name+" has no failed task", false)
			return
		}
		fs := []provision.TaskFailure{*h.LastFailure}
		s.push(newFailureView(s, "Failure on "+sanitize(name)+" · run "+sanitize(rs.id), fs, 0))
	case paneTasks:
		if rs.cur[paneTasks] >= len(rs.tasks) {
			return
		}
		uuid := rs.tasks[rs.cur[paneTasks]].id
		var fs []provision.TaskFailure
		for _, f := range st.Failures {
			if f.TaskUUID == uuid {
				fs = append(fs, f)
			}
		}
		if len(fs) == 0 {
			s.setFlash("no failure recorded for this task", false)
			return
		}
		s.push(newFailureView(s, "Failures of task "+sanitize(fs[0].Task)+" · run "+sanitize(rs.id), fs, st.FailuresDropped))
	}
}

// hostNode returns the node an inventory host name of a run stands for,
// or nil. The inventory names a host (provision's invNameHosts) after its
// node when the name is in one datacenter, "<name>.node.<dc>.consul" when
// it is in several (or every host is qualified), and "fd_…" when the
// name is not a safe host name; the board does not carry the run's alias
// map, so an alias resolves to nothing. A node that has left is found as
// last seen. A plain name now in several datacenters (a run from before
// the clash) is ambiguous: nil.
func (s *shared) hostNode(host string) *fleet.Node {
	if rest, ok := strings.CutSuffix(host, ".consul"); ok {
		if i := strings.LastIndex(rest, ".node."); i > 0 {
			if n := s.nodeOrDeparted(rest[i+len(".node."):], rest[:i]); n != nil {
				return n
			}
		}
	}
	if s.snap == nil {
		return nil
	}
	var found *fleet.Node
	for _, dc := range s.snap.Datacenters {
		if n := s.snap.Node(dc, host); n != nil {
			if found != nil {
				return nil
			}
			found = n
		}
	}
	if found != nil {
		return found
	}
	// Not in the fleet now: the last sighting of a node of that name that
	// left, if it left from one datacenter only.
	evs := s.snap.Events
	for i := len(evs) - 1; i >= 0; i-- {
		if e := &evs[i]; e.Kind == fleet.NodeLeft && e.Last != nil && e.Node == host {
			if found != nil && found.Datacenter != e.Datacenter {
				return nil
			}
			if found == nil {
				found = e.Last
			}
		}
	}
	return found
}

// newFailureView returns the failure detail of fs: msg, rc, stdout,
// stderr, diff. It has no keys of its own (no logs, no run).
func newFailureView(s *shared, heading string, fs []provision.TaskFailure, dropped int) *textView {
	return newTextView(s, "failure", func() string { return heading }, func(w int) []textLine { return s.failureLines(fs, dropped, w) })
}

// failureLines renders failed results: msg, rc, stdout, stderr, diff.
func (s *shared) failureLines(fs []provision.TaskFailure, dropped int, width int) []textLine {
	st := &s.st
	var out []textLine
	add := func(style, text string) { out = append(out, textLine{style: style, text: text}) }
	w := max(width-6, 10)
	block := func(title, text string, style string) {
		if text == "" {
			return
		}
		add(st.colHeader, "  "+title)
		for _, l := range sanitizeLines(text) {
			for _, wl := range wrap(l, w) {
				add(style, "    "+wl)
			}
		}
	}
	for i, f := range fs {
		if i > 0 {
			add("", "")
		}
		kind := "failed"
		switch {
		case f.Unreachable:
			kind = "unreachable"
		case f.Ignored:
			kind = "failed (ignored)"
		}
		add(st.bad, "Host "+sanitize(f.Host)+" "+kind)
		line := "  task " + sanitize(f.Task)
		if f.Action != "" {
			line += " (" + sanitize(f.Action) + ")"
		}
		add("", line)
		if f.Item != "" {
			add("", "  item "+sanitize(f.Item))
		}
		if !f.Time.IsZero() {
			add(st.dim, "  at "+f.Time.Local().Format(time.DateTime)+" · event "+strconv.FormatInt(f.Seq, 10))
		}
		r := f.Result
		if r.RC != nil {
			add("", "  rc "+strconv.Itoa(*r.RC))
		}
		block("msg", r.Msg, st.bad)
		block("stdout", r.Stdout, "")
		block("stderr", r.Stderr, st.warn)
		block("diff", r.Diff, "")
		if r.Truncated {
			add(st.dim, "  (texts truncated by the callback plugin)")
		}
	}
	if dropped > 0 {
		add(st.dim, "")
		add(st.dim, strconv.Itoa(dropped)+" more failures of this run were not kept (each host keeps its last)")
	}
	return out
}

// refresh lays the view out for the next frame: the faults toggle, the
// header (the status wrapped between words), the panes' columns and
// cursors, and the visible rows' lines.
func (rs *runView) refresh() {
	if rs.rv != nil && rs.hostsFor != rs.faults {
		rs.filterHosts(false)
	}
	rs.head = rs.headLines(rs.s.now())
	rs.clampRun()
	avail := max(rs.w-gutter, 1)
	for _, p := range []int{paneHosts, paneTasks} {
		cols, lay, nat := hostColumns(), &rs.hostLay, rs.natural
		if p == paneTasks {
			cols, lay, nat = taskColumns(), &rs.taskLay, naturalWidths(rs.tasks, tcCount)
		}
		if lay.width != avail || lay.widths == nil {
			if nat == nil {
				nat = make([]int, len(cols))
			}
			rs.s.layoutSeq++
			lay.id, lay.widths, lay.width = rs.s.layoutSeq, fitColumns(cols, nat, avail), avail
		}
	}
	if rs.pane != paneOutput {
		cols, rows, lay := rs.paneTable()
		for _, r := range rows[min(rs.off[rs.pane], len(rows)):min(rs.off[rs.pane]+rs.paneHeight(), len(rows))] {
			if r.lineLayout != lay.id || len(r.line) == 0 {
				r.line = renderCells(cols, r.cells, r.widths, lay.widths, avail)
				r.lineLayout = lay.id
			}
		}
	}
}

// paneTable returns the columns, rows and layout of the active table pane.
func (rs *runView) paneTable() ([]column, []*row, layout) {
	if rs.pane == paneTasks {
		return taskColumns(), rs.tasks, rs.taskLay
	}
	return hostColumns(), rs.hosts, rs.hostLay
}

// headLines lays out the run's header for width rs.w at now.
func (rs *runView) headLines(now time.Time) []textLine {
	s := rs.s
	st := &s.st
	if rs.rv == nil {
		out := []textLine{{st.colHeader, "  Run " + sanitize(rs.id)}}
		if rs.err != "" {
			return append(out, textLine{st.bad, "  " + rs.err})
		}
		return append(out, textLine{"", "  loading…"})
	}
	info := &rs.rv.Info
	var out []textLine
	// Line 1: identity and mode.
	mode := "REAL RUN"
	if info.Check {
		mode = "check mode"
	}
	if rst := rs.rv.State; rst != nil && rst.Diff {
		mode += " · diff"
	}
	out = append(out, textLine{st.title, "  Run " + sanitize(info.ID) + " · " + sanitize(info.Playbook) + " · " +
		sanitize(scopeText(info.Scope, info.Subject)) + " · " + mode + " · by " + sanitize(info.Who)})
	// Line 2: status, elapsed, exit; wrapped between words so that a queue
	// reason is read whole.
	sh, sstyle := s.runStatusStyle(info.Status)
	if sstyle == "" {
		sstyle = st.healthStyle(sh)
	}
	status := strings.ToUpper(string(info.Status))
	if info.Status == provision.RunQueued && info.QueueReason != "" {
		status += ": " + sanitize(info.QueueReason)
	}
	if !info.Started.IsZero() {
		end := info.Ended
		if end.IsZero() {
			end = now
		}
		status += " · elapsed " + compactDuration(end.Sub(info.Started))
	}
	if info.Status.Final() && info.ExitCode >= 0 {
		status += " · exit " + strconv.Itoa(info.ExitCode)
	}
	if rst := rs.rv.State; rst != nil {
		if e := rst.End; e != nil {
			if e.Signal != "" {
				status += " · signal " + sanitize(e.Signal)
			}
			if e.Error != "" {
				status += " · " + sanitize(e.Error)
			}
		}
		if rst.NoHostsMatched {
			status += " · a play matched no host"
		}
		status += " · " + strconv.Itoa(rst.Applied) + " events"
	}
	if rs.err != "" {
		status += " · " + rs.err
	}
	parts := wordWrap(status, max(rs.w-4, 10))
	if len(parts) > 3 {
		rest := strings.Join(parts[2:], " ")
		parts = append(parts[:2], truncate(rest, cellWidth(rest), max(rs.w-4, 10)))
	}
	for i, p := range parts {
		lead := "  "
		if i > 0 {
			lead = "    "
		}
		out = append(out, textLine{sstyle, lead + p})
	}
	// Line 3: host tallies, as words so they read without colour (styled
	// word by word: drawn as is).
	rs.tallyAt = len(out)
	out = append(out, textLine{"", rs.hostTally()})
	// An ended run with hosts that did not succeed offers F.
	if n := rs.unfinished(); n > 0 && info.Status.Final() && !s.ro {
		out = append(out, textLine{st.key, "  F re-runs the " + pluralWord(n, "host", "hosts") + " that failed or did not finish"})
	}
	if t := rs.recap; t != nil {
		out = append(out, textLine{st.colHeader, "  PLAY RECAP  ok=" + strconv.Itoa(t.OK) + " changed=" + strconv.Itoa(t.Changed) +
			" unreachable=" + strconv.Itoa(t.Unreachable) + " failed=" + strconv.Itoa(t.Failures) + " skipped=" + strconv.Itoa(t.Skipped) +
			" rescued=" + strconv.Itoa(t.Rescued) + " ignored=" + strconv.Itoa(t.Ignored)})
	}
	return out
}

// unfinished counts the hosts an F re-run would take: failed,
// unreachable, interrupted, never run, or left pending or running when
// the run ended.
func (rs *runView) unfinished() int {
	n := 0
	for st, c := range rs.counts {
		switch st {
		case provision.HostOK, provision.HostChanged, provision.HostSkipped:
		default:
			n += c
		}
	}
	return n
}

// view draws the run view.
func (rs *runView) view(now time.Time, line func(string)) {
	s := rs.s
	st := &s.st
	for i, l := range rs.head {
		if i == rs.tallyAt && rs.rv != nil {
			line(l.text)
			continue
		}
		line(st.render(l.style, fitLine(l.text, rs.w)))
	}
	if rs.rv == nil {
		return
	}
	avail := max(rs.w-gutter, 1)
	h := rs.paneHeight()
	tabs := rs.paneTabs()
	if rs.pane == paneOutput {
		if rs.rv.OutputTruncated > 0 {
			tabs += " · " + strconv.Itoa(rs.rv.OutputTruncated) + " earlier lines not shown"
		}
		if rs.search != "" {
			tabs += " · /" + sanitize(rs.search) + " " + pluralWord(len(rs.matches), "match", "matches")
			if len(rs.matches) > 0 {
				tabs += " (" + strconv.Itoa(rs.match+1) + ")"
			}
		}
	}
	line(st.render(st.key, fitLine(tabs, rs.w)))
	switch rs.pane {
	case paneHosts, paneTasks:
		cols, rows, lay := rs.paneTable()
		line(st.render(st.colHeader, "   "+headerLine(cols, lay.widths, avail, -1, false)))
		if len(rows) == 0 {
			msg := "no hosts yet"
			if rs.pane == paneTasks {
				msg = "no task started yet"
			} else if rs.faults {
				msg = "no failed, unreachable, interrupted or not run host (f shows all)"
			}
			line(fitLine("  "+msg, rs.w))
			return
		}
		end := min(rs.off[rs.pane]+h, len(rows))
		for i := rs.off[rs.pane]; i < end; i++ {
			line(s.renderRow(cols, lay, rows[i], i == rs.cur[rs.pane], now, avail))
		}
	case paneOutput:
		end := min(rs.off[paneOutput]+h, len(rs.out))
		cur := -1
		if len(rs.matches) > 0 {
			cur = rs.matches[rs.match]
		}
		for i := rs.off[paneOutput]; i < end; i++ {
			line(rs.outputLine(i, i == cur))
		}
	}
}

// status is the footer's part: the faults toggle.
func (rs *runView) status() string {
	if rs.faults {
		return " [faults]"
	}
	return ""
}

// paneTabs names the panes with the active one bracketed.
func (rs *runView) paneTabs() string {
	var b strings.Builder
	b.WriteString("  ")
	for i := range numPanes {
		if i > 0 {
			b.WriteByte(' ')
		}
		if i == rs.pane {
			b.WriteString("[" + paneName(i) + "]")
		} else {
			b.WriteString(" " + paneName(i) + " ")
		}
	}
	return b.String()
}

// hostTally is the line of host counts per status, each styled.
func (rs *runView) hostTally() string {
	s := rs.s
	st := &s.st
	var b strings.Builder
	w := 0
	add := func(style, text string) {
		if w+2+cellWidth(text) > rs.w {
			return
		}
		b.WriteString("  ")
		b.WriteString(st.render(style, text))
		w += 2 + cellWidth(text)
	}
	total := 0
	for _, n := range rs.counts {
		total += n
	}
	add("", "hosts "+strconv.Itoa(total))
	for _, hs := range []provision.HostStatus{provision.HostPending, provision.HostRunning, provision.HostOK, provision.HostChanged,
		provision.HostFailed, provision.HostUnreachable, provision.HostSkipped, provision.HostInterrupted, provision.HostNotRun} {
		n := rs.counts[hs]
		if n == 0 && (hs == provision.HostInterrupted || hs == provision.HostPending || hs == provision.HostNotRun) {
			continue
		}
		style := ""
		if n > 0 {
			_, style = s.hostStyle(hs)
		}
		add(style, string(hs)+" "+strconv.Itoa(n))
	}
	return b.String()
}

// outputLine draws output line i, highlighting search matches.
func (rs *runView) outputLine(i int, current bool) string {
	st := &rs.s.st
	l := fitLine(rs.out[i], max(rs.w-1, 1))
	mark := " "
	if current {
		mark = ">"
	}
	if rs.lsearch == "" || !containsFold(l, rs.lsearch) {
		return mark + l
	}
	hl := st.cursor
	if !current {
		hl = st.changed
	}
	if hl == "" {
		return mark + l
	}
	lower := strings.ToLower(l)
	if len(lower) != len(l) {
		return mark + st.render(hl, l)
	}
	var b strings.Builder
	for {
		j := strings.Index(lower, rs.lsearch)
		if j < 0 {
			b.WriteString(l)
			break
		}
		b.WriteString(l[:j])
		b.WriteString(hl + l[j:j+len(rs.lsearch)] + st.reset)
		l, lower = l[j+len(rs.lsearch):], lower[j+len(rs.lsearch):]
	}
	return mark + b.String()
}
