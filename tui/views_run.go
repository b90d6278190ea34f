package tui

import (
	"strconv"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
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

var paneNames = [numPanes]string{"hosts", "tasks", "output"}

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

// runScreen is the state of one run view.
type runScreen struct {
	id  string
	rv  *provision.RunView
	err string
	// fetching/again coalesce board fetches; stale asks for one when the
	// view is back on top.
	fetching, again, stale bool

	pane int
	// cur and off are the cursor and window offset of each pane.
	cur, off [numPanes]int
	// follow keeps the output pane at its end as lines arrive.
	follow bool

	hostCache map[string]*hostEntry
	allHosts  []*row // board order
	hosts     []*row // after the faults toggle
	tasks     []*row
	hostLay   layout
	taskLay   layout
	natural   []int
	faults    bool
	counts    map[provision.HostStatus]int
	recap     *provision.HostStats

	out     []string // sanitised output lines
	search  string   // the search as typed
	lsearch string   // lowercased
	matches []int    // output line indexes matching the search
	match   int      // current match index in matches
}

// newRunView returns a run view for run id (empty until fetched).
func newRunView(id string) *view {
	v := newView(viewRun)
	v.run = &runScreen{id: id, follow: true, hostCache: map[string]*hostEntry{}, hostLay: layout{width: -1}, taskLay: layout{width: -1}}
	return v
}

// openRun pushes the run view of id and fetches its board.
func (m *Model) openRun(id string) tea.Cmd {
	v := newRunView(id)
	m.push(v)
	return m.fetchRun(v.run)
}

// set installs a fetched board (or the error fetching it).
func (rs *runScreen) set(m *Model, rv *provision.RunView, err error) {
	if err != nil {
		rs.err = sanitize(err.Error())
		return
	}
	rs.err = ""
	if rv == nil {
		return
	}
	rs.rv = rv
	rs.buildHosts(m)
	rs.buildTasks(m)
	rs.buildOutput()
}

// buildHosts brings the board rows up to date, reusing unchanged rows.
func (rs *runScreen) buildHosts(m *Model) {
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
			e.fp, e.row = fp, m.hostRow(h)
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
	rs.filterHosts(m.faults, changed)
}

// filterHosts applies the faults toggle to the board and refits columns
// when rows changed.
func (rs *runScreen) filterHosts(faults, changed bool) {
	rs.faults = faults
	if !faults {
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
func (m *Model) hostStyle(s provision.HostStatus) (fleet.Health, string) {
	st := &m.st
	switch s {
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
	case provision.HostSkipped:
		return fleet.HealthPassing, st.dim
	}
	return fleet.HealthPassing, ""
}

// hostRow builds one board row.
func (m *Model) hostRow(h *provision.HostState) *row {
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
	r.health, r.style = m.hostStyle(h.Status)
	return r
}

// buildTasks rebuilds the task list (tasks are few next to hosts).
func (rs *runScreen) buildTasks(m *Model) {
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
			r.health, r.style = fleet.HealthCritical, m.st.bad
		case t.Running > 0:
			r.style = m.st.title
		case c.Changed > 0:
			r.style = m.st.warn
		}
		rs.tasks = append(rs.tasks, r)
	}
	rs.taskLay.width = -1
}

// buildOutput sanitises the output lines and redoes the search.
func (rs *runScreen) buildOutput() {
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
func (rs *runScreen) findMatches(jump bool) {
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

// refreshRun applies the search typed with "/" and the faults toggle, and
// fetches the board again when it went stale under another view.
func (m *Model) refreshRun(v *view) {
	rs := v.run
	if v.filterText != rs.search {
		rs.search = v.filterText
		rs.lsearch = strings.ToLower(rs.search)
		rs.findMatches(true)
		if len(rs.matches) > 0 {
			rs.pane = paneOutput
			rs.follow = false
			m.showMatch(rs)
		}
	}
	if rs.faults != m.faults && rs.rv != nil {
		rs.filterHosts(m.faults, false)
	}
}

// paneHeight is the number of rows the active pane shows.
func (m *Model) paneHeight(rs *runScreen) int {
	// Screen: 2 header lines, 3 run lines (+ recap), the pane tabs, the
	// column header, the footer.
	h := m.height - 8
	if rs.recap != nil {
		h--
	}
	return max(h, 1)
}

// paneLen is the number of rows (or lines) of the active pane.
func (rs *runScreen) paneLen() int {
	switch rs.pane {
	case paneHosts:
		return len(rs.hosts)
	case paneTasks:
		return len(rs.tasks)
	}
	return len(rs.out)
}

// moveRun moves the cursor of the active pane (the output pane scrolls).
func (m *Model) moveRun(rs *runScreen, delta int) {
	p, n, h := rs.pane, rs.paneLen(), m.paneHeight(rs)
	if p == paneOutput {
		rs.off[p] = clamp(rs.off[p]+delta, 0, max(n-h, 0))
		rs.follow = rs.off[p] >= max(n-h, 0)
		return
	}
	rs.cur[p] = clamp(rs.cur[p]+delta, 0, max(n-1, 0))
	m.clampRun(rs)
}

// clampRun keeps each pane's cursor in its window.
func (m *Model) clampRun(rs *runScreen) {
	h := m.paneHeight(rs)
	for p := range numPanes {
		n := len(rs.out)
		switch p {
		case paneHosts:
			n = len(rs.hosts)
		case paneTasks:
			n = len(rs.tasks)
		}
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
func (m *Model) showMatch(rs *runScreen) {
	if len(rs.matches) == 0 {
		return
	}
	ln := rs.matches[rs.match]
	h := m.paneHeight(rs)
	if ln < rs.off[paneOutput] || ln >= rs.off[paneOutput]+h {
		rs.off[paneOutput] = max(ln-h/3, 0)
	}
	rs.follow = false
	m.clampRun(rs)
}

// handleRun handles the run view's own keys; others fall through to the
// console's.
func (m *Model) handleRun(v *view, msg tea.KeyPressMsg) (tea.Cmd, bool) {
	rs := v.run
	k := &m.keys
	if d, ok := k.step(msg, m.paneHeight(rs)); ok {
		m.moveRun(rs, d)
		if d == 1<<30 && rs.pane == paneOutput {
			rs.follow = true // end on the output follows it, as in less +F
		}
		return nil, true
	}
	switch {
	case key.Matches(msg, k.Pane):
		rs.pane = (rs.pane + 1) % numPanes
	case msg.String() == "shift+tab":
		rs.pane = (rs.pane + numPanes - 1) % numPanes
	case key.Matches(msg, k.Filter):
		// Search starts empty (as in less and vim) and applies as typed;
		// esc restores the previous one.
		m.input = &prompt{kind: '/', prev: v.filterText}
	case key.Matches(msg, k.NextMatch), key.Matches(msg, k.PrevMatch):
		if len(rs.matches) == 0 {
			if rs.search != "" {
				m.setFlash("no match for "+rs.search, true)
			}
			return nil, true
		}
		d := 1
		if key.Matches(msg, k.PrevMatch) {
			d = len(rs.matches) - 1
		}
		rs.match = (rs.match + d) % len(rs.matches)
		rs.pane = paneOutput
		m.showMatch(rs)
	case key.Matches(msg, k.Enter):
		m.runDrill(rs)
	case key.Matches(msg, k.Cancel):
		if rs.rv != nil {
			m.askCancel(rs.id, rs.rv.Info.Status)
		}
	case key.Matches(msg, k.Rerun):
		return m.rerun(rs.id, false), true
	case key.Matches(msg, k.RerunFailed):
		return m.rerun(rs.id, true), true
	default:
		return nil, false
	}
	return nil, true
}

// runDrill opens the failure detail of the host (board) or task (task
// list) under the cursor.
func (m *Model) runDrill(rs *runScreen) {
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
			m.setFlash("host "+name+" has no failed task", false)
			return
		}
		fv := newView(viewFailure)
		fv.title = "Failure on " + sanitize(name) + " · run " + sanitize(rs.id)
		fv.lines = m.failureLines([]provision.TaskFailure{*h.LastFailure}, 0)
		m.push(fv)
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
			m.setFlash("no failure recorded for this task", false)
			return
		}
		fv := newView(viewFailure)
		fv.title = "Failures of task " + sanitize(fs[0].Task) + " · run " + sanitize(rs.id)
		fv.lines = m.failureLines(fs, st.FailuresDropped)
		m.push(fv)
	case paneOutput:
		return
	}
}

// failureLines renders failed results: msg, rc, stdout, stderr, diff.
func (m *Model) failureLines(fs []provision.TaskFailure, dropped int) []textLine {
	st := &m.st
	var out []textLine
	add := func(style, text string) { out = append(out, textLine{style: style, text: text}) }
	w := max(m.width-6, 10)
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

// renderCustom draws the form, the preview or the run view.
func (m *Model) renderCustom(v *view, now time.Time, line func(string)) {
	switch v.kind {
	case viewLaunch:
		lines := m.formLines(v.form)
		m.scrollText(v, lines, line)
	case viewPreview:
		line(m.st.render(m.st.colHeader, fitLine("  Preview: nothing has run yet", m.width)))
		status := m.previewStatus(v.prev)
		for _, l := range status {
			line(m.st.render(l.style, fitLine(l.text, m.width)))
		}
		if v.lines == nil || v.linesWidth != m.width {
			v.lines, v.linesWidth = m.previewLines(v.prev), m.width
		}
		h := max(m.bodyHeight()-len(status), 1)
		v.offset = clamp(v.offset, 0, max(len(v.lines)-h, 0))
		end := min(v.offset+h, len(v.lines))
		for _, l := range v.lines[v.offset:end] {
			line(m.st.render(l.style, fitLine(l.text, m.width)))
		}
	case viewRun:
		m.renderRun(v, now, line)
	case viewLogs:
		m.renderLogs(v, now, line)
	}
}

// scrollText draws text lines below the body's first line from v.offset.
func (m *Model) scrollText(v *view, lines []textLine, line func(string)) {
	h := m.bodyHeight() + 1
	v.offset = clamp(v.offset, 0, max(len(lines)-h, 0))
	end := min(v.offset+h, len(lines))
	for _, l := range lines[v.offset:end] {
		line(m.st.render(l.style, fitLine(l.text, m.width)))
	}
}

// renderRun draws the run view.
func (m *Model) renderRun(v *view, now time.Time, line func(string)) {
	st := &m.st
	rs := v.run
	if rs.rv == nil {
		line(st.render(st.colHeader, fitLine("  Run "+sanitize(rs.id), m.width)))
		if rs.err != "" {
			line(st.render(st.bad, fitLine("  "+rs.err, m.width)))
		} else {
			line(fitLine("  loading…", m.width))
		}
		return
	}
	info := &rs.rv.Info
	// Line 1: identity and mode.
	mode := "REAL RUN"
	if info.Check {
		mode = "check mode"
	}
	if s := rs.rv.State; s != nil && s.Diff {
		mode += " · diff"
	}
	line(st.render(st.title, fitLine("  Run "+sanitize(info.ID)+" · "+sanitize(info.Playbook)+" · "+string(info.Scope)+" "+
		sanitize(info.Subject)+" · "+mode+" · by "+sanitize(info.Who), m.width)))
	// Line 2: status, elapsed, exit.
	sh, sstyle := m.runStatusStyle(info.Status)
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
	if s := rs.rv.State; s != nil {
		if e := s.End; e != nil {
			if e.Signal != "" {
				status += " · signal " + sanitize(e.Signal)
			}
			if e.Error != "" {
				status += " · " + sanitize(e.Error)
			}
		}
		if s.NoHostsMatched {
			status += " · a play matched no host"
		}
		status += " · " + strconv.Itoa(s.Applied) + " events"
	}
	if rs.err != "" {
		status += " · " + rs.err
	}
	line(st.render(sstyle, fitLine("  "+status, m.width)))
	// Line 3: host tallies, as words so they read without colour.
	line(m.hostTally(rs))
	if t := rs.recap; t != nil {
		line(st.render(st.colHeader, fitLine("  PLAY RECAP  ok="+strconv.Itoa(t.OK)+" changed="+strconv.Itoa(t.Changed)+
			" unreachable="+strconv.Itoa(t.Unreachable)+" failed="+strconv.Itoa(t.Failures)+" skipped="+strconv.Itoa(t.Skipped)+
			" rescued="+strconv.Itoa(t.Rescued)+" ignored="+strconv.Itoa(t.Ignored), m.width)))
	}
	m.clampRun(rs)
	avail := max(m.width-gutter, 1)
	h := m.paneHeight(rs)
	tabs := m.paneTabs(rs)
	if rs.pane == paneOutput {
		if rs.rv.OutputTruncated > 0 {
			tabs += " · " + strconv.Itoa(rs.rv.OutputTruncated) + " earlier lines not shown"
		}
		if rs.search != "" {
			tabs += " · /" + sanitize(rs.search) + " " + strconv.Itoa(len(rs.matches)) + " matches"
			if len(rs.matches) > 0 {
				tabs += " (" + strconv.Itoa(rs.match+1) + ")"
			}
		}
	}
	line(st.render(st.key, fitLine(tabs, m.width)))
	switch rs.pane {
	case paneHosts, paneTasks:
		cols, rows, lay, nat := hostColumns(), rs.hosts, &rs.hostLay, rs.natural
		if rs.pane == paneTasks {
			cols, rows, lay = taskColumns(), rs.tasks, &rs.taskLay
			nat = naturalWidths(rs.tasks, tcCount)
		}
		if lay.width != avail || lay.widths == nil {
			if nat == nil {
				nat = make([]int, len(cols))
			}
			m.layoutSeq++
			lay.id, lay.widths, lay.width = m.layoutSeq, fitColumns(cols, nat, avail), avail
		}
		line(st.render(st.colHeader, "   "+headerLine(cols, lay.widths, avail, -1, false)))
		if len(rows) == 0 {
			msg := "no hosts yet"
			if rs.pane == paneTasks {
				msg = "no task started yet"
			} else if m.faults {
				msg = "no failed, unreachable or interrupted host (f shows all)"
			}
			line(fitLine("  "+msg, m.width))
			return
		}
		tv := &view{kind: viewRun, lay: *lay}
		end := min(rs.off[rs.pane]+h, len(rows))
		for i := rs.off[rs.pane]; i < end; i++ {
			line(m.renderRow(tv, cols, rows[i], i == rs.cur[rs.pane], now, avail))
		}
	case paneOutput:
		end := min(rs.off[paneOutput]+h, len(rs.out))
		cur := -1
		if len(rs.matches) > 0 {
			cur = rs.matches[rs.match]
		}
		for i := rs.off[paneOutput]; i < end; i++ {
			line(m.outputLine(rs, i, i == cur))
		}
	}
}

// paneTabs names the panes with the active one bracketed.
func (m *Model) paneTabs(rs *runScreen) string {
	var b strings.Builder
	b.WriteString("  ")
	for i, n := range paneNames {
		if i > 0 {
			b.WriteByte(' ')
		}
		if i == rs.pane {
			b.WriteString("[" + n + "]")
		} else {
			b.WriteString(" " + n + " ")
		}
	}
	return b.String()
}

// hostTally is the line of host counts per status.
func (m *Model) hostTally(rs *runScreen) string {
	st := &m.st
	var b strings.Builder
	w := 0
	add := func(style, text string) {
		if w+2+cellWidth(text) > m.width {
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
	for _, s := range []provision.HostStatus{provision.HostPending, provision.HostRunning, provision.HostOK, provision.HostChanged,
		provision.HostFailed, provision.HostUnreachable, provision.HostSkipped, provision.HostInterrupted} {
		n := rs.counts[s]
		if n == 0 && (s == provision.HostInterrupted || s == provision.HostPending) {
			continue
		}
		style := ""
		if n > 0 {
			_, style = m.hostStyle(s)
		}
		add(style, string(s)+" "+strconv.Itoa(n))
	}
	return b.String()
}

// outputLine draws output line i, highlighting search matches.
func (m *Model) outputLine(rs *runScreen, i int, current bool) string {
	st := &m.st
	l := fitLine(rs.out[i], max(m.width-1, 1))
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
