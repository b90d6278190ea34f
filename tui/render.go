package tui

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/charmbracelet/x/ansi"

	"github.com/fleetdeck/fleetdeck/fleet"
)

// render draws the whole screen: two header lines, the body of the top
// view, the footer. Every line is at most m.width cells, and there are
// exactly m.height lines.
func (m *Model) render() string {
	v := m.top()
	m.refresh(v)
	now := m.now()
	var b strings.Builder
	b.Grow((m.width + 16) * m.height)
	lines := 0
	line := func(s string) {
		if lines >= m.height {
			return
		}
		if lines > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(s)
		lines++
	}
	line(m.headerCounts())
	line(m.headerConn(now))
	switch {
	case v.kind.isCustom():
		m.renderCustom(v, now, line)
	case v.kind.isTable():
		m.renderTable(v, now, line)
	default:
		m.renderText(v, line)
	}
	for lines < m.height-1 {
		line("")
	}
	line(m.footer(v, now))
	return b.String()
}

// renderTable draws the column header and the visible window of rows.
func (m *Model) renderTable(v *view, now time.Time, line func(string)) {
	cols := m.columns(v.kind)
	avail := max(m.width-gutter, 1)
	line(m.st.render(m.st.colHeader, "  "+headerLine(cols, v.lay.widths, avail, v.sortCol, v.desc)))
	if len(v.rows) == 0 {
		line(fitLine("  "+m.emptyText(v), m.width))
		return
	}
	end := min(v.offset+m.bodyHeight(), len(v.rows))
	for i := v.offset; i < end; i++ {
		line(m.renderRow(v, cols, v.rows[i], i == v.cursor, now, avail))
	}
}

// renderRow draws one row: style prefix, gutter markers, cached cells.
func (m *Model) renderRow(v *view, cols []column, r *row, cursor bool, now time.Time, avail int) string {
	if r.lineLayout != v.lay.id || len(r.line) == 0 {
		r.line = renderCells(cols, r.cells, r.widths, v.lay.widths, avail)
		r.lineLayout = v.lay.id
	}
	changed := m.isChanged(r.changedAt, now)
	style := m.st.healthStyle(r.health)
	if r.style != "" {
		style = r.style
	}
	g := [gutter]byte{' ', ' ', ' '}
	if cursor {
		g[0] = '>'
	}
	if r.node != nil && m.marks[r.node.Key()] {
		g[1] = '+'
	}
	if changed {
		g[2] = '*'
	}
	if changed {
		style = m.st.changed + style
	}
	if cursor {
		style = m.st.cursor + style
	}
	if style == "" {
		return string(g[:]) + r.line
	}
	return style + string(g[:]) + r.line + m.st.reset
}

// emptyText explains an empty table.
func (m *Model) emptyText(v *view) string {
	switch {
	case v.kind == viewRuns && m.prov == nil:
		return m.runsOffText()
	case v.kind == viewRuns && m.runsErr != "":
		return "runs: " + m.runsErr
	case v.kind == viewLocks && v.total == 0:
		return m.locksEmptyText()
	case v.kind == viewRuns && v.total == 0:
		return "no runs yet: press r on a node, role or group to run a playbook"
	case m.snap.Version == 0:
		return "waiting for the first snapshot from Consul…"
	case v.total == 0 && m.loadingFor(v.kind) != "":
		return "loading " + m.loadingFor(v.kind) + " from Consul…"
	case v.total == 0 && len(m.snap.Nodes) == 0 && m.snap.Status().Status == fleet.Unresponsive:
		return "Consul has not answered: no nodes known yet"
	case v.total == 0:
		return "no " + v.kind.String() + " in this scope"
	case m.faults && v.filterText == "" && m.healthLoading():
		return "health is still loading: faults show once it is read"
	case m.faults && v.filterText == "":
		return "no faults: everything is passing (f shows all)"
	case v.filter.problem != "":
		return "nothing matches: " + sanitize(v.filter.problem) + " (esc clears the filter)"
	}
	return "nothing matches the filter (esc clears it)"
}

// loadingFor names what a view of kind k waits for while the fleet loads
// ("" when nothing it shows is pending).
func (m *Model) loadingFor(k viewKind) string {
	loading := m.snap.Loading()
	has := func(what string) bool { return slices.Contains(loading, what) }
	switch {
	case has("nodes"):
		return "the node list"
	case k == viewRoles && has("roles"):
		return "the roles"
	}
	return ""
}

// renderText draws the detail or help view from its scroll offset.
func (m *Model) renderText(v *view, line func(string)) {
	title := "Help"
	if v.title != "" {
		title = v.title
	}
	if v.kind == viewDetail {
		title = "Node " + sanitize(v.node) + " (" + sanitize(v.dc) + ")"
	}
	line(m.st.render(m.st.colHeader, fitLine("  "+title, m.width)))
	end := min(v.offset+m.bodyHeight(), len(v.lines))
	for i := v.offset; i < end; i++ {
		l := v.lines[i]
		line(m.st.render(l.style, fitLine(l.text, m.width)))
	}
}

// footer draws the status line: the prompt while typing, otherwise the
// view path, filter, sort, position and key hints (or a flash message).
func (m *Model) footer(v *view, now time.Time) string {
	if p := m.input; p != nil {
		// The text can hold a drilled-down raw Consul name: sanitise.
		text := string(p.kind) + sanitize(p.text)
		if p.kind == '@' {
			text = "jump to (10:02, 10:02:13, RFC3339, -5m, now): " + sanitize(p.text)
		}
		// Keep the end of a long input visible.
		if w := cellWidth(text); w > m.width-1 {
			text = ansi.TruncateLeft(text, w-(m.width-2), ellipsis)
		}
		return m.st.render(m.st.prompt, text) + m.st.render(m.st.cursor, " ")
	}
	if c := m.confirm; c != nil {
		return m.st.render(m.st.bad, fitLine(c.text, m.width))
	}
	var left strings.Builder
	for i, sv := range m.stack {
		if i > 0 {
			left.WriteString(" › ")
		}
		left.WriteString(sv.kind.String())
	}
	if v.kind.isTable() {
		if v.filterText != "" {
			left.WriteString(" /" + v.filterText)
		}
		if v.sortCol >= 0 {
			cols := m.columns(v.kind)
			dir := "↑"
			if v.desc {
				dir = "↓"
			}
			left.WriteString(" sort:" + cols[v.sortCol].title + dir)
		}
		pos := 0
		if len(v.rows) > 0 {
			pos = v.cursor + 1
		}
		left.WriteString(" " + strconv.Itoa(pos) + "/" + strconv.Itoa(len(v.rows)))
		if len(v.rows) != v.total {
			left.WriteString(" of " + strconv.Itoa(v.total))
		}
	} else if v.kind == viewLogs {
		left.WriteString(v.logs.footer())
	} else if len(v.lines) > m.bodyHeight() {
		left.WriteString(" line " + strconv.Itoa(v.offset+1) + "/" + strconv.Itoa(len(v.lines)))
	}
	if m.dc != "" {
		left.WriteString(" dc:" + m.dc)
	}
	if m.faults && v.kind.showsFaults() {
		left.WriteString(" [faults]")
	}
	l := sanitize(left.String())
	lw := cellWidth(l)
	right, rstyle := m.hints(v), m.st.dim
	if m.flash != "" && now.Before(m.flashUntil) {
		right, rstyle = m.flash, ""
		if m.flashBad {
			rstyle = m.st.bad
		}
		if fw := cellWidth(right); lw+2+fw > m.width {
			// A message that does not fit beside the position takes the
			// whole line for its few seconds: a saved file's path must be
			// readable.
			return m.st.render(rstyle, truncate(right, fw, m.width))
		}
	}
	if lw+2 >= m.width {
		return m.st.render(m.st.title, truncate(l, lw, m.width))
	}
	right = fitLine(right, m.width-lw-2)
	return m.st.render(m.st.title, l) + "  " + m.st.render(rstyle, right)
}

// hints lists the most useful keys of view v for the footer, from the
// key map.
func (m *Model) hints(v *view) string {
	var b strings.Builder
	list := m.keys.shortHelp()
	switch v.kind {
	case viewLogs:
		list = m.keys.logsShortHelp()
	case viewLogEntry:
		list = m.keys.entryShortHelp()
	}
	for _, k := range list {
		if !k.b.Enabled() {
			continue
		}
		if k.label == "follow" && v.logs != nil && v.logs.follow {
			k.label = "pause" // the key toggles: name what it does now
		}
		if b.Len() > 0 {
			b.WriteString("  ")
		}
		name := k.key
		if name == "" {
			name = k.b.Keys()[0]
		}
		b.WriteString(name + " " + k.label)
	}
	return b.String()
}
