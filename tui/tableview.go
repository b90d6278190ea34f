package tui

import (
	"slices"
	"strconv"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/fleetdeck/fleetdeck/fleet"
)

// The table views (Nodes, Roles, Groups, Events, Runs, Locks) are one
// component type, tableView, parameterised by a tableKind: its columns,
// its rows, and the actions of its rows (drill down, run, logs, cancel).
// Each kind lives in its own file (views_*.go). A tableView keeps its own
// filter, sort, cursor and faults toggle, so esc returns to exactly where
// the user was.

// tableKind describes one kind of table view.
type tableKind struct {
	// name is the view's name in ":" commands and the footer.
	name string
	cols func() []column
	// rows builds the unfiltered rows for the current scope; they are
	// cached per kind in the shared context until the scope changes or
	// the kind's data is invalidated.
	rows func(s *shared) []*row
	// nameField is the field filter term that names a row ("role:" in
	// Roles); rows that hold a node filter on the node's fields.
	nameField filterField
	// tick rebuilds the rows every second while the view is on top
	// (Groups counts joins over a sliding window).
	tick bool
	// empty explains an empty table before the generic reasons ("" when
	// it has nothing to say).
	empty func(t *tableView) string
	// actions returns the kind's own actions on t (enter, r, l, c…).
	actions func(t *tableView) []action
	// onTop, if set, runs when the view is back on top (Locks reads the
	// locks again when they are old).
	onTop func(t *tableView) tea.Cmd
	// banner, if set, gives summary lines drawn above the column header
	// (the Provisioner view's leader and state).
	banner func(s *shared) []string
}

// source is the unfiltered row set of one table kind, rebuilt when the
// scope changes or when forced (new runs, new locks, the groups' tick).
type source struct {
	gen   uint64 // shared.gen it was built for
	stamp uint64 // increases at each rebuild; views compare against it
	rows  []*row
	force bool
}

// source returns the unfiltered rows of kind k for the current scope,
// rebuilding them when stale.
func (s *shared) source(k *tableKind) *source {
	src := s.sources[k.name]
	if src == nil {
		src = &source{}
		s.sources[k.name] = src
	}
	if src.gen == s.gen && !src.force && src.stamp != 0 {
		return src
	}
	src.rows = k.rows(s)
	src.gen, src.force = s.gen, false
	src.stamp++
	return src
}

// invalidate makes the rows of kind name rebuild at the next refresh.
func (s *shared) invalidate(name string) {
	if src := s.sources[name]; src != nil {
		src.force = true
	}
}

// tableView is a table component.
type tableView struct {
	base
	kind *tableKind
	cols []column

	filterText string
	filter     filterExpr

	// rows is the source filtered and sorted; total counts the source;
	// hidden counts the rows the filter matches that faults-only hides.
	rows          []*row
	total, hidden int
	// cursor indexes rows; offset is the first row shown. selID is the id
	// of the row under the cursor, used to find it again after updates.
	cursor, offset int
	selID          string
	sortCol        int // -1: natural order
	desc           bool
	// faults shows only rows that are not passing (this view's own
	// toggle).
	faults bool
	// built is the source stamp rows were computed from; dirty forces a
	// recompute (filter, sort or faults changed).
	built uint64
	dirty bool
	lay   layout
}

// newTable returns a table view of kind k showing the rows that filter
// matches.
func newTable(s *shared, k *tableKind, filter string) *tableView {
	t := &tableView{base: base{s: s}, kind: k, cols: k.cols(), sortCol: -1, dirty: true, lay: layout{width: -1}}
	t.setFilter(filter)
	acts := moveActions(func() int { return t.page() }, t.move)
	if k.actions != nil {
		acts = append(acts, k.actions(t)...)
	}
	acts = append(acts,
		action{keys: []string{"esc"}, short: "back", desc: "back (on the first view: clear the filter)",
			when: func() bool { return len(s.stack) > 1 || t.filterText != "" }, do: func(tea.KeyPressMsg) tea.Cmd { t.back(); return nil }},
		action{keys: []string{"/"}, short: "filter", desc: "filter rows (the filter language is below)",
			do: func(tea.KeyPressMsg) tea.Cmd { t.openFilter(); return nil }},
		s.commandAction(),
		action{keys: []string{"s"}, short: "sort", desc: "sort by the next column (health and counts worst/largest first; after the last, natural order)",
			do: func(tea.KeyPressMsg) tea.Cmd { t.cycleSort(); return nil }},
		action{keys: []string{"S"}, desc: "reverse the sort order", do: func(tea.KeyPressMsg) tea.Cmd { t.reverse(); return nil }},
		action{keys: []string{"f"}, short: "faults", desc: "this view: faults only (hide passing rows)",
			do: func(tea.KeyPressMsg) tea.Cmd { t.toggleFaults(); return nil }},
		s.helpAction(t, true),
		s.quitAction(true),
	)
	t.acts = s.register(acts...)
	return t
}

func (t *tableView) title() string { return t.kind.name }

// page is the number of rows shown.
func (t *tableView) page() int { return max(t.h-1-len(t.bannerLines()), 1) }

// bannerLines are the kind's banner lines, at most two and never more
// than leave a row on a small terminal.
func (t *tableView) bannerLines() []string {
	if t.kind.banner == nil {
		return nil
	}
	b := t.kind.banner(t.s)
	return b[:min(len(b), 2, max(t.h-2, 0))]
}

// setFilter replaces the view's filter.
func (t *tableView) setFilter(f string) {
	if f != t.filterText {
		// A new filter starts at its first match, as in k9s; keeping the
		// old row's index would land on an arbitrary (often the last) one.
		t.selID, t.cursor, t.offset = "", 0, 0
	}
	t.filterText = f
	t.filter = parseFilter(f)
	t.dirty = true
}

// back leaves the view; on the root view it clears the filter.
func (t *tableView) back() {
	if t.s.pop() {
		return
	}
	if t.filterText != "" {
		t.setFilter("")
	}
}

// openFilter opens the "/" prompt on this view's filter: it applies as
// typed, enter keeps it, esc restores the one in force before.
func (t *tableView) openFilter() {
	prev := t.filterText
	t.s.openOverlay(newPrompt(t.s, promptFilter, prev, promptHooks{
		change: t.setFilter,
		enter:  func(text string) tea.Cmd { t.setFilter(strings.TrimSpace(text)); return nil },
		cancel: func() { t.setFilter(prev) },
	}))
}

// cycleSort moves the sort to the next column; after the last column it
// returns to the view's natural order.
func (t *tableView) cycleSort() {
	t.sortCol++
	if t.sortCol >= len(t.cols) {
		t.sortCol, t.desc = -1, false
	} else {
		t.desc = t.cols[t.sortCol].descFirst
	}
	t.dirty = true
}

// reverse reverses the order. Reversing the natural order is meaningful
// too (oldest events first, names Z→A): it sorts by the first column.
func (t *tableView) reverse() {
	if t.sortCol < 0 {
		t.sortCol = 0
	}
	t.desc = !t.desc
	t.dirty = true
}

// toggleFaults turns this view's faults-only toggle on or off.
func (t *tableView) toggleFaults() {
	t.faults = !t.faults
	t.dirty = true
}

// refresh brings the rows up to date with the source, the filter, the
// sort and the width, keeps the cursor on its row, and renders the rows
// the next frame shows. It is cheap when nothing changed.
func (t *tableView) refresh() {
	src := t.s.source(t.kind)
	if t.built != src.stamp || t.dirty {
		// Rows changed under the view (not by the user's filter, sort or
		// toggle): the row under the cursor stays even if faults-only
		// would now hide it, so the cursor does not jump to another node.
		keep := ""
		if !t.dirty && t.faults {
			keep = t.selID
		}
		t.rows = t.filterRows(src.rows, keep)
		t.total = len(src.rows)
		sortRows(t.rows, t.cols, t.sortCol, t.desc)
		t.built, t.dirty = src.stamp, false
		t.lay.width = -1 // natural widths may have changed
		t.restoreCursor()
	}
	if avail := t.w - gutter; t.lay.width != avail {
		t.relayout(avail)
	}
	t.clampCursor()
	avail := max(t.w-gutter, 1)
	for _, r := range t.visible() {
		if r.lineLayout != t.lay.id || len(r.line) == 0 {
			r.line = renderCells(t.cols, r.cells, r.widths, t.lay.widths, avail)
			r.lineLayout = t.lay.id
		}
	}
}

// update takes the tick: a kind that counts over a sliding window
// rebuilds while shown.
func (t *tableView) update(msg tea.Msg) tea.Cmd {
	if _, ok := msg.(tickMsg); ok && t.kind.tick && t.s.top() == component(t) {
		t.s.invalidate(t.kind.name)
	}
	return nil
}

// wake runs the kind's onTop hook.
func (t *tableView) wake() tea.Cmd {
	if t.kind.onTop == nil {
		return nil
	}
	return t.kind.onTop(t)
}

// filterRows applies the view's filter and faults toggle; keep names a row
// kept whatever its health.
func (t *tableView) filterRows(src []*row, keep string) []*row {
	t.hidden = 0
	if t.filter.empty() && !t.faults {
		return append([]*row(nil), src...)
	}
	out := make([]*row, 0, len(src))
	for _, r := range src {
		if !t.filter.empty() {
			var ok bool
			if r.node != nil {
				ok = t.filter.matchNode(r)
			} else {
				ok = t.filter.matchSummary(r, t.kind.nameField)
			}
			if !ok {
				continue
			}
		}
		if t.faults && !isFault(r) && r.id != keep {
			t.hidden++
			continue
		}
		out = append(out, r)
	}
	return out
}

// isFault reports whether a row shows something that is not passing.
// Events count when they report a non-passing state or a node leaving.
func isFault(r *row) bool {
	if r.event != nil {
		e := r.event
		return (e.Kind == fleet.HealthChanged && e.To != fleet.HealthPassing) || e.Kind == fleet.NodeLeft
	}
	return r.health != fleet.HealthPassing
}

// relayout fits the columns to avail cells using the widest content of
// the filtered rows.
func (t *tableView) relayout(avail int) {
	natural := make([]int, len(t.cols))
	for _, r := range t.rows {
		for i, w := range r.widths {
			if w > natural[i] {
				natural[i] = w
			}
		}
	}
	w := fitColumns(t.cols, natural, avail)
	if !slices.Equal(w, t.lay.widths) {
		t.s.layoutSeq++
		t.lay.id = t.s.layoutSeq
		t.lay.widths = w
	}
	t.lay.width = avail
}

// restoreCursor puts the cursor back on the row it was on (by id) after
// the rows were recomputed; if that row is gone, the cursor keeps its
// position.
func (t *tableView) restoreCursor() {
	if t.selID != "" {
		if t.cursor < len(t.rows) && t.rows[t.cursor].id == t.selID {
			return
		}
		for i, r := range t.rows {
			if r.id == t.selID {
				t.cursor = i
				return
			}
		}
	}
	t.clampCursor()
}

// clampCursor keeps the cursor on a row and inside the visible window,
// and records the row it is on.
func (t *tableView) clampCursor() {
	n := len(t.rows)
	t.cursor = min(t.cursor, n-1)
	t.cursor = max(t.cursor, 0)
	h := t.page()
	if t.cursor < t.offset {
		t.offset = t.cursor
	}
	if t.cursor >= t.offset+h {
		t.offset = t.cursor - h + 1
	}
	t.offset = min(t.offset, max(n-h, 0))
	t.offset = max(t.offset, 0)
	if n > 0 {
		t.selID = t.rows[t.cursor].id
	}
}

// move moves the cursor by delta.
func (t *tableView) move(delta int) {
	t.cursor += delta
	t.clampCursor()
}

// selected returns the row under the cursor, or nil.
func (t *tableView) selected() *row {
	if t.cursor < 0 || t.cursor >= len(t.rows) {
		return nil
	}
	return t.rows[t.cursor]
}

// visible returns the rows in the window shown.
func (t *tableView) visible() []*row {
	end := min(t.offset+t.page(), len(t.rows))
	if t.offset >= end {
		return nil
	}
	return t.rows[t.offset:end]
}

// view draws the column header and the visible window of rows.
func (t *tableView) view(now time.Time, line func(string)) {
	st := &t.s.st
	avail := max(t.w-gutter, 1)
	for _, b := range t.bannerLines() {
		line(fitLine(" "+b, t.w))
	}
	line(st.render(st.colHeader, "   "+headerLine(t.cols, t.lay.widths, avail, t.sortCol, t.desc)))
	if len(t.rows) == 0 {
		line(fitLine("  "+t.emptyText(), t.w))
		return
	}
	for i, r := range t.visible() {
		line(t.s.renderRow(t.cols, t.lay, r, t.offset+i == t.cursor, now, avail))
	}
}

// renderRow draws one row: style prefix, gutter markers, cells (cached
// for the layout by refresh; rendered here without caching otherwise).
func (s *shared) renderRow(cols []column, lay layout, r *row, cursor bool, now time.Time, avail int) string {
	line := r.line
	if r.lineLayout != lay.id || len(line) == 0 {
		line = renderCells(cols, r.cells, r.widths, lay.widths, avail)
	}
	changed := s.isChanged(r.changedAt, now)
	style := s.st.healthStyle(r.health)
	if r.style != "" {
		style = r.style
	}
	g := [gutter]byte{' ', ' ', ' '}
	if cursor {
		g[0] = '>'
	}
	if r.node != nil && s.marks[r.node.Key()] {
		g[1] = '+'
	}
	if changed {
		g[2] = '*'
		style = s.st.changed + style
	}
	if cursor {
		style = s.st.cursor + style
	}
	if style == "" {
		return string(g[:]) + line
	}
	return style + string(g[:]) + line + s.st.reset
}

// status is the footer's part: filter, sort, position, faults.
func (t *tableView) status() string {
	var b strings.Builder
	if t.filterText != "" {
		b.WriteString(" /" + t.filterText)
	}
	if t.sortCol >= 0 {
		dir := "↑"
		if t.desc {
			dir = "↓"
		}
		b.WriteString(" sort:" + t.cols[t.sortCol].title + dir)
	}
	pos := 0
	if len(t.rows) > 0 {
		pos = t.cursor + 1
	}
	b.WriteString(" " + strconv.Itoa(pos) + "/" + strconv.Itoa(len(t.rows)))
	if len(t.rows) != t.total {
		b.WriteString(" of " + strconv.Itoa(t.total))
	}
	if t.faults {
		b.WriteString(" [faults]")
	}
	return b.String()
}

// emptyText explains an empty table.
func (t *tableView) emptyText() string {
	s := t.s
	if t.kind.empty != nil {
		if e := t.kind.empty(t); e != "" {
			return e
		}
	}
	switch {
	case s.snap.Version == 0:
		return "waiting for the first snapshot from Consul…"
	case t.total == 0 && s.loadingFor(t.kind.name) != "":
		return "loading " + s.loadingFor(t.kind.name) + " from Consul…"
	case t.total == 0 && len(s.snap.Nodes) == 0 && s.snap.Status().Status == fleet.Unresponsive:
		return "Consul has not answered: no nodes known yet"
	case t.total == 0:
		return "no " + t.kind.name + " in this scope"
	case t.faults && t.filterText == "" && s.healthLoading():
		return "health is still loading: faults show once it is read"
	case t.faults && t.filterText == "":
		return "no faults: everything is passing (f shows all)"
	case t.faults && t.hidden > 0:
		return "the filter matches " + plural(t.hidden, "row") + ", all passing: faults only hides them (f shows all)"
	case t.filter.problem != "":
		return "nothing matches: " + sanitize(t.filter.problem) + " (esc clears the filter)"
	}
	return "nothing matches the filter (esc clears it)"
}

// loadingFor names what a view of kind name waits for while the fleet
// loads ("" when nothing it shows is pending).
func (s *shared) loadingFor(name string) string {
	loading := s.snap.Loading()
	has := func(what string) bool { return slices.Contains(loading, what) }
	switch {
	case has("nodes"):
		return "the node list"
	case name == "roles" && has("roles"):
		return "the roles"
	}
	return ""
}

// helpExtra documents the filter language.
func (t *tableView) helpExtra() []helpSection {
	return []helpSection{{title: "Filter (/), terms ANDed, ! negates", lines: filterHelp(), keyW: 20}}
}

// filterHelp documents the filter language (see filter.go).
func filterHelp() [][2]string {
	return [][2]string{
		{"text", "any column contains text"},
		{"role:web", "runs service web"},
		{"health:critical", "passing, warning, critical, maint, failing"},
		{"group:web-asg", "autoscaling group"},
		{"dc:dc1", "datacenter"},
		{"zone:z1", "zone"},
		{"name:web", "name contains"},
		{"meta:key=value", "node meta (meta:key = has key)"},
		{"tag:canary", "service tag"},
		{"state:failed", "desired roles' state: pending, applying, converged, failed, drift, unmanaged"},
		{"drift", "state:drift: the catalog differs from the node's applied desired roles"},
		{"!term", "negate, e.g. !health:passing"},
		{`role:"a b"`, "quote values with spaces"},
	}
}
