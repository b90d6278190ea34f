package tui

// refreshHelp builds the help text, generated from the key map so that the
// help cannot drift from the bindings.
func (m *Model) refreshHelp(v *view) {
	if v.lines != nil && v.linesWidth == m.width {
		return
	}
	st := &m.st
	var out []textLine
	add := func(style, text string) { out = append(out, textLine{style: style, text: text}) }
	for _, g := range m.keys.groups() {
		add(st.colHeader, g.title)
		for _, b := range g.bindings {
			if !b.Enabled() {
				continue
			}
			h := b.Help()
			add("", "  "+padCells(h.Key, 14)+h.Desc)
		}
		add("", "")
	}
	if m.keys.Run.Enabled() {
		add(st.colHeader, "Launch form and preview")
		for _, c := range formHelp() {
			add("", "  "+padCells(c[0], 14)+c[1])
		}
		add("", "")
	}
	add(st.colHeader, "Logs view")
	for _, c := range logsHelp() {
		add("", "  "+padCells(c[0], 14)+c[1])
	}
	add("", "")
	add(st.colHeader, "Commands")
	for _, c := range commandHelp() {
		add("", "  "+padCells(c[0], 14)+c[1])
	}
	add("", "")
	add(st.colHeader, "Filter (/), terms ANDed, ! negates")
	for _, c := range filterHelp() {
		add("", "  "+padCells(c[0], 20)+c[1])
	}
	add("", "")
	add(st.dim, "Rows are coloured by health; > marks the cursor,")
	add(st.dim, "* a row that changed in the last 3 seconds.")
	add(st.dim, "esc or ? closes this help.")
	v.lines, v.linesWidth = out, m.width
	m.clampCursor(v)
}

// padCells pads s (safe text) to n cells.
func padCells(s string, n int) string {
	return fit(s, cellWidth(s), max(n, cellWidth(s)+1), false)
}

// formHelp documents the launch form's and the preview's keys (they are
// modal, like the prompt, so they are not in the key map).
func formHelp() [][2]string {
	return [][2]string{
		{"tab/shift+tab", "next/previous field (↑/↓ outside the playbook field)"},
		{"←/→", "choose the playbook"},
		{"space", "toggle check mode, diff, become"},
		{"enter", "next field; on extra vars adds the key=value typed"},
		{"ctrl+s", "preview (also enter on the last field)"},
		{"esc", "close the form; on the preview: discard it"},
		{"enter", "preview: launch (after typing the confirmation when asked)"},
	}
}

// logsHelp documents the Logs view beyond its keys.
func logsHelp() [][2]string {
	return [][2]string{
		{"l", "node, detail: around the node's last warning/critical (else now)"},
		{"", "events: the event's node (or group) at its time"},
		{"", "roles, groups: all their nodes, interleaved, a colour per node"},
		{"@ -5m, +90s", "from the incident; 10:02 in the zone shown (t)"},
		{"histogram", "the window's volume; ! (red in colour) has errors"},
		{"────", "the incident's moment in the stream"},
	}
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
		{"!term", "negate, e.g. !health:passing"},
		{`role:"a b"`, "quote values with spaces"},
	}
}
