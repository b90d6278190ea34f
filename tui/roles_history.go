package tui

import (
	"strconv"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/fleetdeck/fleetdeck/roles"
)

// historyView lists a node's generations from its audit trail, newest
// first; enter (or u) reverts the node to the generation under the cursor
// through the roles form and its preview (a new generation).
type historyView struct {
	base
	dc, name string
	// recs is the trail newest first, as last rendered; cursor indexes it.
	recs     []roles.Desired
	cursor   int
	offset   int
	builtVer uint64
	builtW   int
	lines    []textLine
}

// newHistoryView returns node dc/name's history.
func newHistoryView(s *shared, dc, name string) *historyView {
	v := &historyView{base: base{s: s}, dc: dc, name: name, builtVer: ^uint64(0)}
	acts := moveActions(func() int { return v.page() }, v.move)
	acts = append(acts,
		action{keys: []string{"enter", "u"}, label: "enter/u", short: "revert", dangerous: true,
			desc: "revert the node to the generation under the cursor (reason, preview, then a new generation)",
			when: func() bool { return v.selected() != nil }, do: func(tea.KeyPressMsg) tea.Cmd { return v.revert() }})
	acts = append(acts, s.viewActions(v, "back to the node")...)
	v.acts = s.register(acts...)
	return v
}

func (v *historyView) title() string { return "history" }

func (v *historyView) key() string { return v.dc + "/" + v.name }

// page is the number of generations shown.
func (v *historyView) page() int { return max(v.h-2, 1) }

func (v *historyView) move(d int) {
	v.cursor = clamp(v.cursor+d, 0, max(len(v.recs)-1, 0))
	if v.cursor < v.offset {
		v.offset = v.cursor
	}
	if v.cursor >= v.offset+v.page() {
		v.offset = v.cursor - v.page() + 1
	}
}

func (v *historyView) selected() *roles.Desired {
	if v.cursor < 0 || v.cursor >= len(v.recs) {
		return nil
	}
	return &v.recs[v.cursor]
}

// wake reads the trail when it is old.
func (v *historyView) wake() tea.Cmd {
	return tea.Batch(v.s.maybeFetchHistory(v.dc, v.name), v.s.maybeFetchRoles())
}

// revert opens the form that reverts to the selected generation.
func (v *historyView) revert() tea.Cmd {
	d := v.selected()
	if v.s.rl.svc == nil {
		v.s.setFlash(v.s.rolesOffText(), true)
		return nil
	}
	if v.s.snap.Node(v.dc, v.name) == nil {
		v.s.setFlash("node "+v.name+" has left the fleet", true)
		return nil
	}
	rec := *d
	v.s.push(newRolesForm(v.s, rolesTarget{subject: "node " + v.key(), nodes: []string{v.key()}}, formRevert, &rec))
	return nil
}

// refresh rebuilds the list when the trail or the width changed, keeping
// the cursor on its generation.
func (v *historyView) refresh() {
	if v.builtVer == v.s.rl.ver && v.builtW == v.w {
		return
	}
	var keep uint64
	if d := v.selected(); d != nil {
		keep = d.Generation
	}
	v.recs = v.recs[:0]
	if h := v.s.rl.hist[v.key()]; h != nil {
		for i := len(h.recs) - 1; i >= 0; i-- {
			v.recs = append(v.recs, h.recs[i])
		}
	}
	for i, d := range v.recs {
		if d.Generation == keep {
			v.cursor = i
		}
	}
	v.move(0)
	v.builtVer, v.builtW = v.s.rl.ver, v.w
	v.lines = v.lines[:0]
	cur := v.s.rl.desired[v.key()].Generation
	for _, d := range v.recs {
		v.lines = append(v.lines, textLine{text: historyLine(d, cur)})
	}
}

// historyLine renders one generation: number, when, who, roles,
// maintenance, reason.
func historyLine(d roles.Desired, current uint64) string {
	gen := strconv.FormatUint(d.Generation, 10)
	if d.Generation == current {
		gen += "*"
	}
	reason := sanitize(d.Reason)
	if d.RevertOf != 0 {
		reason = "(revert to " + strconv.FormatUint(d.RevertOf, 10) + ") " + reason
	}
	return padWord(gen, 5) + " " + d.When.Local().Format(time.DateTime) + "  " + padCells(sanitize(d.Who), 18) + " " +
		padCells(rolesList(d.Roles), 16) + " " + padWord(map[bool]string{true: "on", false: "off"}[d.Maintenance.On], 5) + reason
}

// view draws the heading, the column line and the generations.
func (v *historyView) view(_ time.Time, line func(string)) {
	st := &v.s.st
	line(st.render(st.colHeader, fitLine("  History of node "+sanitize(v.name)+" ("+sanitize(v.dc)+"), newest first; * is the current generation", v.w)))
	h := v.s.rl.hist[v.key()]
	switch {
	case v.s.rl.svc == nil:
		line(fitLine("  "+v.s.rolesOffText(), v.w))
		return
	case h != nil && h.err != "" && len(v.recs) == 0:
		line(st.render(st.bad, fitLine("  history: "+h.err, v.w)))
		return
	case len(v.recs) == 0 && (h == nil || !h.read):
		line(fitLine("  reading the audit trail from Consul KV…", v.w))
		return
	case len(v.recs) == 0:
		line(fitLine("  no generations: the node is unmanaged (o changes its roles, m its maintenance)", v.w))
		return
	}
	line(st.render(st.colHeader, fitLine("   GEN   WHEN                 WHO                ROLES            MAINT REASON", v.w)))
	end := min(v.offset+v.page(), len(v.lines))
	for i := v.offset; i < end; i++ {
		prefix, style := "   ", ""
		if i == v.cursor {
			prefix, style = " > ", st.cursor
		}
		line(st.render(style, fitLine(prefix+v.lines[i].text, v.w)))
	}
}

// status is the position in the trail.
func (v *historyView) status() string {
	if len(v.recs) == 0 {
		return ""
	}
	return " " + strconv.Itoa(v.cursor+1) + "/" + strconv.Itoa(len(v.recs))
}
