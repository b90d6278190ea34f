package tui

import (
	"github.com/fleetdeck/fleetdeck/fleet"
	"github.com/fleetdeck/fleetdeck/logview"
)

// viewKind names the console's views.
type viewKind uint8

const (
	viewNodes viewKind = iota
	viewRoles
	viewGroups
	viewEvents
	viewRuns
	viewLocks
	viewDetail
	viewHelp
	viewLaunch
	viewPreview
	viewRun
	viewFailure
	viewLogs
	viewLogEntry
	numKinds
)

// String returns the view's name as used by ":" commands and the footer.
func (k viewKind) String() string {
	switch k {
	case viewNodes:
		return "nodes"
	case viewRoles:
		return "roles"
	case viewGroups:
		return "groups"
	case viewEvents:
		return "events"
	case viewRuns:
		return "runs"
	case viewLocks:
		return "locks"
	case viewLaunch:
		return "launch"
	case viewPreview:
		return "preview"
	case viewRun:
		return "run"
	case viewFailure:
		return "failure"
	case viewLogs:
		return "logs"
	case viewLogEntry:
		return "entry"
	case viewDetail:
		return "node"
	case viewHelp:
		return "help"
	}
	return "?"
}

// isTable reports whether the view is a table of rows (as opposed to the
// scrolling text of the detail and help views).
func (k viewKind) isTable() bool { return k <= viewLocks }

// showsFaults reports views the faults toggle narrows: the tables and the
// run view's host board.
func (k viewKind) showsFaults() bool { return k.isTable() || k == viewRun }

// isCustom reports views that draw and key themselves (the launch form,
// the preview, the run view and the Logs view).
func (k viewKind) isCustom() bool {
	return k == viewLaunch || k == viewPreview || k == viewRun || k == viewLogs
}

// view is one entry of the view stack. Each keeps its own filter, sort and
// cursor, so esc returns to exactly where the user was.
type view struct {
	kind viewKind

	filterText string
	filter     filterExpr

	// rows is the source filtered and sorted; total counts the source.
	rows  []*row
	total int
	// cursor indexes rows; offset is the first row shown. selID is the id
	// of the row under the cursor, used to find it again after updates.
	cursor, offset int
	selID          string
	sortCol        int // -1: natural order
	desc           bool
	// built is the source stamp rows were computed from; dirty forces a
	// recompute (filter, sort or faults changed).
	built  uint64
	faults bool
	dirty  bool
	lay    layout

	// Detail view: the node shown. Detail and help: the text lines.
	dc, node   string
	lines      []textLine
	linesGen   uint64
	linesWidth int
	// title is the heading of a text view that is not a node's detail
	// (the failure detail).
	title string

	// Run features: the launch form, the preview screen, the run view.
	form *launchForm
	prev *previewScreen
	run  *runScreen

	// Logs: the Logs view's state; the entry an expanded-entry view shows.
	logs  *logsScreen
	entry *logview.Entry
}

// textLine is one line of the detail or help view: sanitised text and
// the style it is drawn in.
type textLine struct {
	style string
	text  string
}

// newView returns an empty view of kind k.
func newView(k viewKind) *view {
	return &view{kind: k, sortCol: -1, dirty: true}
}

// setFilter replaces the view's filter.
func (v *view) setFilter(s string) {
	if s != v.filterText {
		// A new filter starts at its first match, as in k9s; keeping the
		// old row's index would land on an arbitrary (often the last) one.
		v.selID, v.cursor, v.offset = "", 0, 0
	}
	v.filterText = s
	v.filter = parseFilter(s)
	v.dirty = true
}

// columns returns the columns of a table view.
func (m *Model) columns(k viewKind) []column {
	switch k {
	case viewNodes:
		return nodeColumns()
	case viewRoles:
		return roleColumns()
	case viewGroups:
		return groupColumns()
	case viewEvents:
		return eventColumns()
	case viewRuns:
		return runsColumns()
	case viewLocks:
		return locksColumns()
	}
	return nil
}

// source returns the unfiltered rows of kind k for the current scope,
// rebuilding them when the scope changed.
func (m *Model) source(k viewKind) *source {
	s := &m.src[k]
	if s.gen == m.gen && !s.force && s.stamp != 0 {
		return s
	}
	switch k {
	case viewNodes:
		s.rows = m.nodeRows()
	case viewRoles:
		s.rows = m.roleRows()
	case viewGroups:
		s.rows = m.groupRows()
	case viewEvents:
		s.rows = m.eventRows()
	case viewRuns:
		s.rows = m.runsRows()
	case viewLocks:
		s.rows = m.locksRows()
	}
	s.gen, s.force = m.gen, false
	s.stamp++
	return s
}

// refresh brings v up to date with the scope, its filter and sort, and
// the terminal width. It is cheap when nothing changed.
func (m *Model) refresh(v *view) {
	switch v.kind {
	case viewDetail:
		m.refreshDetail(v)
		return
	case viewHelp:
		m.refreshHelp(v)
		return
	case viewFailure:
		m.clampCursor(v)
		return
	case viewLaunch, viewPreview:
		return
	case viewRun:
		m.refreshRun(v)
		return
	case viewLogs:
		m.refreshLogs(v)
		return
	case viewLogEntry:
		m.refreshEntry(v)
		return
	}
	cols := m.columns(v.kind)
	src := m.source(v.kind)
	if v.built != src.stamp || v.dirty || v.faults != m.faults {
		v.rows = m.filterRows(v, src.rows)
		v.total = len(src.rows)
		sortRows(v.rows, cols, v.sortCol, v.desc)
		v.built, v.dirty, v.faults = src.stamp, false, m.faults
		v.lay.width = -1 // natural widths may have changed
		m.restoreCursor(v)
	}
	if avail := m.width - gutter; v.lay.width != avail {
		m.relayout(v, cols, avail)
	}
	m.clampCursor(v)
}

// filterRows applies the view's filter and the faults toggle.
func (m *Model) filterRows(v *view, src []*row) []*row {
	if v.filter.empty() && !m.faults {
		return append([]*row(nil), src...)
	}
	out := make([]*row, 0, len(src))
	for _, r := range src {
		if m.faults && !isFault(r) {
			continue
		}
		if !v.filter.empty() {
			var ok bool
			if r.node != nil {
				ok = v.filter.matchNode(r)
			} else {
				ok = v.filter.matchSummary(r, summaryNameField(v.kind))
			}
			if !ok {
				continue
			}
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

// summaryNameField is the field term that names a row of kind k.
func summaryNameField(k viewKind) filterField {
	switch k {
	case viewRoles:
		return fieldRole
	case viewGroups:
		return fieldGroup
	}
	return fieldName
}

// relayout fits the columns to avail cells using the widest content of
// the filtered rows.
func (m *Model) relayout(v *view, cols []column, avail int) {
	natural := make([]int, len(cols))
	for _, r := range v.rows {
		for i, w := range r.widths {
			if w > natural[i] {
				natural[i] = w
			}
		}
	}
	w := fitColumns(cols, natural, avail)
	if !equalInts(w, v.lay.widths) {
		m.layoutSeq++
		v.lay.id = m.layoutSeq
		v.lay.widths = w
	}
	v.lay.width = avail
}

// equalInts compares two int slices.
func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// restoreCursor puts the cursor back on the row it was on (by id) after
// the rows were recomputed; if that row is gone, the cursor keeps its
// position.
func (m *Model) restoreCursor(v *view) {
	if v.selID != "" {
		if v.cursor < len(v.rows) && v.rows[v.cursor].id == v.selID {
			return
		}
		for i, r := range v.rows {
			if r.id == v.selID {
				v.cursor = i
				return
			}
		}
	}
	m.clampCursor(v)
}

// bodyHeight is the number of rows (or text lines) the body can show:
// the screen minus two header lines, the column header and the footer.
func (m *Model) bodyHeight() int {
	return max(m.height-4, 1)
}

// clampCursor keeps the cursor on a row and inside the visible window,
// and records the row it is on.
func (m *Model) clampCursor(v *view) {
	n := len(v.rows)
	if !v.kind.isTable() {
		n = len(v.lines)
		// Text views scroll: the offset is the position.
		v.offset = min(v.offset, max(n-m.bodyHeight(), 0))
		v.offset = max(v.offset, 0)
		return
	}
	v.cursor = min(v.cursor, n-1)
	v.cursor = max(v.cursor, 0)
	h := m.bodyHeight()
	if v.cursor < v.offset {
		v.offset = v.cursor
	}
	if v.cursor >= v.offset+h {
		v.offset = v.cursor - h + 1
	}
	v.offset = min(v.offset, max(n-h, 0))
	v.offset = max(v.offset, 0)
	if n > 0 {
		v.selID = v.rows[v.cursor].id
	}
}

// move moves the cursor (table views) or scrolls (text views) by delta.
func (m *Model) move(v *view, delta int) {
	if v.kind.isTable() {
		v.cursor += delta
	} else {
		v.offset += delta
	}
	m.clampCursor(v)
}

// selected returns the row under the cursor, or nil.
func (v *view) selected() *row {
	if !v.kind.isTable() || v.cursor < 0 || v.cursor >= len(v.rows) {
		return nil
	}
	return v.rows[v.cursor]
}
