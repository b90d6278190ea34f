package tui

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"

	"github.com/fleetdeck/fleetdeck/provision"
	"github.com/fleetdeck/fleetdeck/roles"
)

// rolesPreview is the roles change's preview component: per node its
// current and next record, the reason and who, then the apply run's
// preview (hosts as ansible-playbook resolves them, the exact argv), and
// the typed confirmation when the run manager asks for one. enter
// records the change and launches the run (RolesService.Apply); a
// conflict with another change shows who won, and nothing is applied.
type rolesPreview struct {
	base
	plan  *roles.Plan
	form  *rolesForm
	typed textinput.Model
	busy  bool
	// applied is set once Apply succeeded; gone once the plan was
	// discarded by a failed Apply (a conflict): closing the view then
	// discards nothing.
	applied, gone bool
	err           string

	statusLines []textLine
	lines       []textLine
	builtW      int
	offset      int
}

// newRolesPreview returns the preview of plan p, planned from form f.
func newRolesPreview(s *shared, p *roles.Plan, f *rolesForm) *rolesPreview {
	ps := &rolesPreview{base: base{s: s}, plan: p, form: f, typed: newTextInput(""), builtW: -1}
	confirming := func() bool { return p.Preview.Confirm != "" }
	acts := []action{
		{keys: []string{"enter"}, short: "apply", desc: "record the change and launch the apply run (after typing the confirmation when asked)",
			when: func() bool { return !ps.gone }, do: func(tea.KeyPressMsg) tea.Cmd { return ps.apply() }},
		{keys: []string{"esc"}, short: "back", desc: "discard the preview (back to the form; nothing was written)",
			do: func(tea.KeyPressMsg) tea.Cmd { s.pop(); return nil }},
	}
	acts = append(acts, confirmScreenActions(s, ps, confirming, ps.page, ps.scroll)...)
	ps.acts = s.register(acts...)
	return ps
}

func (ps *rolesPreview) title() string { return "change" }

func (ps *rolesPreview) page() int { return max(ps.h-1-len(ps.statusLines), 1) }

func (ps *rolesPreview) scroll(d int) {
	ps.offset = clamp(ps.offset+d, 0, max(len(ps.lines)-ps.page(), 0))
}

// update takes the typed confirmation.
func (ps *rolesPreview) update(msg tea.Msg) tea.Cmd {
	switch msg.(type) {
	case tea.KeyPressMsg, tea.PasteMsg:
		if ps.plan.Preview.Confirm != "" && !ps.busy && !ps.gone {
			editText(&ps.typed, msg)
		}
	}
	return nil
}

// close discards the plan unless it was applied or is gone.
func (ps *rolesPreview) close() {
	if !ps.applied && !ps.gone && ps.s.rl.svc != nil {
		ps.s.rl.svc.Discard(ps.plan)
	}
}

// rolesAppliedMsg reports the outcome of RolesService.Apply.
type rolesAppliedMsg struct {
	ps      *rolesPreview
	runID   string
	written []roles.Desired
	err     error
}

// apply records the change and launches its run.
func (ps *rolesPreview) apply() tea.Cmd {
	if ps.busy || ps.gone || ps.s.rl.svc == nil {
		return nil
	}
	typed := ps.typed.Value()
	if c := ps.plan.Preview.Confirm; c != "" && typed != c {
		ps.err = "type " + strconv.Quote(sanitize(c)) + " exactly to apply (esc goes back)"
		ps.s.setFlash(ps.err, true)
		return nil
	}
	ps.busy, ps.err = true, ""
	p := ps.plan
	return ps.s.rolesCall(provLongTimeout, func(ctx context.Context, svc RolesService) tea.Msg {
		id, written, err := svc.Apply(ctx, p, typed)
		return rolesAppliedMsg{ps: ps, runID: id, written: written, err: err}
	})
}

func (m rolesAppliedMsg) apply(s *shared) tea.Cmd {
	ps := m.ps
	ps.busy = false
	keys := ps.plan.Keys()
	s.staleHistory(keys)
	if m.err != nil {
		if errors.Is(m.err, provision.ErrConfirmation) {
			ps.err = sanitize(m.err.Error())
			s.setFlash(ps.err, true)
			return nil
		}
		// Apply discarded the plan: a conflict (who won is said), a
		// refused write or a launch that failed. Records written before
		// the failure stay (pending) and are tracked as such.
		ps.gone = true
		msg := conflictText(m.err)
		if msg == "" {
			msg = "not applied: " + m.err.Error()
		}
		ps.err = sanitize(msg)
		ps.builtW = -1
		s.setFlash(msg, true)
		s.recordWritten(m.written)
		return s.fetchDesired()
	}
	ps.applied = true
	if s.onStack(ps) {
		bottom := component(ps)
		if ps.form != nil && s.onStack(ps.form) {
			bottom = ps.form
		}
		s.popTo(bottom)
		s.pop()
	}
	req := ps.plan.Request
	if req.Check {
		s.setFlash("check run "+m.runID+" launched: it shows what would change and records nothing", false)
	} else {
		s.recordWritten(m.written)
		s.startTrack(m.runID, m.written)
		s.setFlash("run "+m.runID+" launched: "+plural(len(m.written), "node")+" tracked until Consul shows them (header: applying)", false)
	}
	return tea.Batch(s.openRun(m.runID), s.fetchRuns(), s.fetchDesired())
}

// refresh renders the fixed lines and, when the width changed, the text.
func (ps *rolesPreview) refresh() {
	ps.statusLines = ps.fixedLines()
	if ps.builtW != ps.w {
		ps.lines, ps.builtW = ps.planLines(ps.w), ps.w
	}
	ps.scroll(0)
}

// view draws the heading, the fixed lines, then the text from its
// scroll position.
func (ps *rolesPreview) view(_ time.Time, line func(string)) {
	st := &ps.s.st
	heading := "  Preview: nothing has been written or run yet"
	if ps.gone {
		heading = "  Not applied: nothing was written by this change"
	}
	line(st.render(st.colHeader, fitLine(heading, ps.w)))
	for _, l := range ps.statusLines {
		line(st.render(l.style, fitLine(l.text, ps.w)))
	}
	end := min(ps.offset+ps.page(), len(ps.lines))
	for _, l := range ps.lines[min(ps.offset, end):end] {
		line(st.render(l.style, fitLine(l.text, ps.w)))
	}
}

// status is the scroll position when the text is longer than the screen.
func (ps *rolesPreview) status() string {
	if len(ps.lines) > ps.page() {
		return " line " + strconv.Itoa(ps.offset+1) + "/" + strconv.Itoa(len(ps.lines))
	}
	return ""
}

// fixedLines is the fixed lines above the text: how to apply, the typed
// confirmation, or the error (a conflict names who won).
func (ps *rolesPreview) fixedLines() []textLine {
	st := &ps.s.st
	var out []textLine
	switch {
	case ps.gone:
	case ps.busy:
		out = append(out, textLine{st.warn, "  recording the change and launching the apply run…"})
	case ps.plan.Preview.Confirm != "":
		c := sanitize(ps.plan.Preview.Confirm)
		style := st.warn
		if ps.typed.Value() == ps.plan.Preview.Confirm {
			style = st.ok
		}
		out = append(out, textLine{style, "  The run changes " + plural(len(ps.plan.Preview.Hosts), "host") + ": type " + strconv.Quote(c) +
			" then enter to apply, esc to go back: " + inputText(&ps.typed)})
	default:
		out = append(out, textLine{st.key, "  enter apply · esc back to the form"})
	}
	if ps.err != "" {
		for _, l := range wrap(ps.err, max(ps.w-4, 10)) {
			out = append(out, textLine{st.bad, "  " + l})
		}
	}
	return out
}

// planLines renders the change per node, then the run's preview.
func (ps *rolesPreview) planLines(width int) []textLine {
	st := &ps.s.st
	p := ps.plan
	req := p.Request
	var out []textLine
	add := func(style, text string) { out = append(out, textLine{style: style, text: text}) }
	w := max(width-6, 10)
	what := "Change the roles of " + plural(len(p.Nodes), "node")
	switch {
	case req.ApplyOnly:
		what = "Apply the desired state of " + plural(len(p.Nodes), "node") + " again"
	case req.RevertTo != 0:
		what = "Revert to generation " + strconv.FormatUint(req.RevertTo, 10)
	case req.Maintenance != nil && len(req.Add)+len(req.Remove) == 0:
		what = "Maintenance " + map[bool]string{true: "on", false: "off"}[req.Maintenance.On] + " for " + plural(len(p.Nodes), "node")
	}
	add(st.title, what)
	switch {
	case req.Check:
		add(st.ok, "  check mode: the run shows what would change (--check --diff); nothing is recorded")
	case req.ApplyOnly:
		add(st.warn, "  REAL RUN: the apply run applies each node's current desired record; nothing new is recorded")
	default:
		add(st.warn, "  REAL CHANGE: each node's next generation is recorded in Consul KV, then the run applies it")
	}
	why := "reason: " + sanitize(req.Reason) + " (by " + sanitize(p.Who) + ")"
	if req.Reason == "" {
		why = "by " + sanitize(p.Who)
	}
	for _, l := range wordWrap(why, w) {
		add("", "  "+l)
	}
	add("", "")
	add(st.colHeader, "Nodes ("+strconv.Itoa(len(p.Nodes))+"): current → desired")
	for _, np := range p.Nodes {
		cur, gen := "unmanaged", "-"
		curMaint := "off"
		if np.Current != nil {
			cur, gen = rolesList(np.Current.Roles), strconv.FormatUint(np.Current.Generation, 10)
			curMaint = maintText(np.Current.Maintenance)
		}
		next := "generation " + gen + " → " + strconv.FormatUint(np.Next.Generation, 10)
		switch {
		case req.ApplyOnly:
			next = "generation " + gen + " (applied again, not recorded)"
		case !np.Write:
			next = "generation " + gen + " (check only: not recorded)"
		}
		add(st.key, "  "+sanitize(np.Key())+"  "+next)
		change := ""
		if len(np.Added) > 0 {
			change += "  +" + strings.Join(sanitizeAll(np.Added), " +")
		}
		if len(np.Removed) > 0 {
			change += "  -" + strings.Join(sanitizeAll(np.Removed), " -")
		}
		if change == "" && np.Current != nil {
			change = "  (unchanged)"
		}
		for _, l := range wordWrap("roles: "+cur+" → "+rolesList(np.Next.Roles)+change, w-4) {
			add("", "      "+l)
		}
		if np.Current == nil {
			add(st.dim, "      catalog now: "+rolesList(nodeManagedRoles(np.Node))+" (managed services the apply replaces)")
		}
		maint := "maintenance: " + curMaint
		if m := np.MaintenanceChange(); m != "" {
			maint += " → " + maintText(np.Next.Maintenance)
		} else {
			maint += " (unchanged)"
		}
		for _, l := range wordWrap(maint, w-4) {
			add("", "      "+l)
		}
		if np.Next.RevertOf != 0 {
			add("", "      restores generation "+strconv.FormatUint(np.Next.RevertOf, 10))
		}
	}
	add("", "")
	add(st.colHeader, "The apply run")
	out = append(out, runPreviewLines(st, p.Preview, "", width)...)
	return out
}

// sanitizeAll sanitises every string of xs.
func sanitizeAll(xs []string) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = sanitize(x)
	}
	return out
}
