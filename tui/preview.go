package tui

import (
	"context"
	"sort"
	"strconv"
	"strings"
	"time"

	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"

	"github.com/fleetdeck/fleetdeck/provision"
)

// previewView is the preview component: what will run, exactly, before
// anything runs. Launching passes what was typed in the confirmation to
// the run manager, which checks it (the console checks it first only to
// say so at once).
type previewView struct {
	base
	p *provision.Preview
	// form is the launch form under the preview (nil for a re-run, whose
	// run rerunOf is).
	form    *launchForm
	rerunOf string
	// typed is the confirmation's editor (used when p.Confirm is set).
	typed textinput.Model
	busy  bool
	// launched is set once the run was launched: closing the view then
	// does not discard the plan.
	launched bool
	err      string

	statusLines []textLine
	lines       []textLine
	builtW      int
	offset      int
}

// newPreviewView returns the preview of p.
func newPreviewView(s *shared, p *provision.Preview, form *launchForm, rerunOf string) *previewView {
	ps := &previewView{base: base{s: s}, p: p, form: form, rerunOf: rerunOf, typed: newTextInput(""), builtW: -1}
	confirming := func() bool { return p.Confirm != "" }
	esc := "discard the preview (back to the form)"
	if form == nil {
		esc = "discard the preview"
	}
	acts := []action{
		{keys: []string{"enter"}, short: "launch", desc: "launch (after typing the confirmation when asked)",
			do: func(tea.KeyPressMsg) tea.Cmd { return ps.launch() }},
		{keys: []string{"esc"}, short: "discard", desc: esc, do: func(tea.KeyPressMsg) tea.Cmd { s.pop(); return nil }},
	}
	acts = append(acts, confirmScreenActions(s, ps, confirming, ps.page, ps.scroll)...)
	ps.acts = s.register(acts...)
	return ps
}

// confirmScreenActions are the keys of a screen where a confirmation may
// be typed (the run preview, the roles preview): while it is typed,
// letters are text, so only the arrows and page keys scroll, help is f1
// and q is not quit; otherwise the usual move keys, ? and q.
func confirmScreenActions(s *shared, c component, confirming func() bool, page func() int, scroll func(int)) []action {
	notConfirming := func() bool { return !confirming() }
	var acts []action
	for _, a := range moveActions(page, scroll) {
		a.when = notConfirming
		acts = append(acts, a)
	}
	acts = append(acts,
		action{keys: []string{"up", "down", "pgup", "pgdown"}, label: "↑/↓ pgup/pgdn", desc: "scroll", when: confirming,
			do: func(msg tea.KeyPressMsg) tea.Cmd {
				switch msg.String() {
				case "up":
					scroll(-1)
				case "down":
					scroll(1)
				case "pgup":
					scroll(-page())
				default:
					scroll(page())
				}
				return nil
			}},
		action{keys: []string{"?", "f1"}, label: "?", short: "help", desc: "help (f1 while typing the confirmation)", when: notConfirming,
			do: func(tea.KeyPressMsg) tea.Cmd { s.push(newHelpView(s, c)); return nil }},
		action{keys: []string{"f1"}, short: "help", when: confirming, do: func(tea.KeyPressMsg) tea.Cmd { s.push(newHelpView(s, c)); return nil }},
	)
	// q quits as in the views, except while it is text.
	quitQ, quit := s.quitAction(true), s.quitAction(false)
	quitQ.when, quit.when, quit.desc = notConfirming, confirming, ""
	return append(acts, quitQ, quit)
}

func (ps *previewView) title() string { return "preview" }

// page is the number of preview lines shown below the fixed lines.
func (ps *previewView) page() int { return max(ps.h-1-len(ps.statusLines), 1) }

func (ps *previewView) scroll(d int) {
	ps.offset = clamp(ps.offset+d, 0, max(len(ps.lines)-ps.page(), 0))
}

// update takes the typed confirmation.
func (ps *previewView) update(msg tea.Msg) tea.Cmd {
	switch msg.(type) {
	case tea.KeyPressMsg, tea.PasteMsg:
		if ps.p.Confirm != "" && !ps.busy {
			editText(&ps.typed, msg)
		}
	}
	return nil
}

// close discards the plan unless it was launched.
func (ps *previewView) close() {
	if !ps.launched && ps.s.prov != nil {
		ps.s.prov.Discard(ps.p.PlanID)
	}
}

// launch asks the manager to launch the plan with what was typed.
func (ps *previewView) launch() tea.Cmd {
	if ps.busy || ps.s.prov == nil {
		return nil
	}
	typed := ps.typed.Value()
	if ps.p.Confirm != "" && typed != ps.p.Confirm {
		ps.err = "type " + strconv.Quote(sanitize(ps.p.Confirm)) + " exactly to launch (esc goes back)"
		ps.s.setFlash(ps.err, true)
		return nil
	}
	ps.busy, ps.err = true, ""
	p, id := ps.s.prov, ps.p.PlanID
	return ps.s.provCall(provLongTimeout, func(ctx context.Context) tea.Msg {
		runID, err := p.Launch(ctx, id, typed)
		return launchedMsg{ps: ps, runID: runID, err: err}
	})
}

// previewDone shows a prepared run, or the error that stopped it.
func (s *shared) previewDone(msg previewMsg) tea.Cmd {
	if f := msg.form; f != nil {
		f.busy = false
		if s.top() != component(f) {
			// The form was closed while the preview was being prepared.
			if msg.prev != nil && s.prov != nil {
				s.prov.Discard(msg.prev.PlanID)
			}
			return nil
		}
		if msg.err != nil {
			f.err = sanitize(msg.err.Error())
			s.setFlash("preview failed: "+msg.err.Error(), true)
			return nil
		}
	} else if msg.err != nil {
		s.setFlash("re-run of "+msg.rerunOf+": "+msg.err.Error(), true)
		return nil
	}
	if msg.prev == nil {
		s.setFlash("the run manager returned no preview", true)
		return nil
	}
	s.push(newPreviewView(s, msg.prev, msg.form, msg.rerunOf))
	return nil
}

// launchDone follows a launched run, or shows why it did not start (the
// preview stays: a refused confirmation can be typed again).
func (s *shared) launchDone(msg launchedMsg) tea.Cmd {
	ps := msg.ps
	ps.busy = false
	if msg.err != nil {
		ps.err = sanitize(msg.err.Error())
		s.setFlash("launch failed: "+msg.err.Error(), true)
		return nil
	}
	ps.launched = true
	// The form and its preview are done: replace them with the run view.
	if s.onStack(ps) {
		bottom := component(ps)
		if ps.form != nil && s.onStack(ps.form) {
			bottom = ps.form
		}
		s.popTo(bottom)
		s.pop()
	}
	s.setFlash("run "+msg.runID+" launched", false)
	return tea.Batch(s.openRun(msg.runID), s.fetchRuns())
}

// refresh renders the fixed lines and, when the width changed, the
// preview's text.
func (ps *previewView) refresh() {
	ps.statusLines = ps.previewStatus()
	if ps.builtW != ps.w {
		ps.lines, ps.builtW = ps.previewLines(ps.w), ps.w
	}
	ps.scroll(0)
}

// view draws the heading, the fixed lines, then the preview from its
// scroll position.
func (ps *previewView) view(_ time.Time, line func(string)) {
	st := &ps.s.st
	line(st.render(st.colHeader, fitLine("  Preview: nothing has run yet", ps.w)))
	for _, l := range ps.statusLines {
		line(st.render(l.style, fitLine(l.text, ps.w)))
	}
	end := min(ps.offset+ps.page(), len(ps.lines))
	for _, l := range ps.lines[min(ps.offset, end):end] {
		line(st.render(l.style, fitLine(l.text, ps.w)))
	}
}

// status is the scroll position when the preview is longer than the
// screen.
func (ps *previewView) status() string {
	if len(ps.lines) > ps.page() {
		return " line " + strconv.Itoa(ps.offset+1) + "/" + strconv.Itoa(len(ps.lines))
	}
	return ""
}

// quoteArg renders one argv element unambiguously: plain when it is made
// only of characters no shell or reader would misread, otherwise as a Go
// quoted string (every control, invisible and non-printable character
// escaped).
func quoteArg(s string) string {
	if s == "" {
		return `""`
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("_-+=:,./@%", c)) {
			return strconv.QuoteToASCII(s)
		}
	}
	return s
}

// previewLines renders the preview: scope, hosts (alias → node), argv,
// environment additions, warnings.
func (ps *previewView) previewLines(width int) []textLine {
	return runPreviewLines(&ps.s.st, ps.p, ps.rerunOf, width)
}

// runPreviewLines renders a run's preview (the launch preview's text; the
// roles preview shows it below the nodes' changes).
func runPreviewLines(st *styles, p *provision.Preview, rerunOf string, width int) []textLine {
	r := p.Request
	var out []textLine
	add := func(style, text string) { out = append(out, textLine{style: style, text: text}) }
	w := max(width-6, 10)
	mode := []string{}
	if r.Check {
		mode = append(mode, "check mode")
	} else {
		mode = append(mode, "REAL RUN (not check mode)")
	}
	if r.Diff {
		mode = append(mode, "diff")
	}
	if r.Become {
		mode = append(mode, "become")
	}
	style := st.ok
	if !r.Check {
		style = st.warn
	}
	title := "Playbook " + sanitize(r.Playbook) + " on " + sanitize(scopeText(r.Scope, r.Subject))
	if rerunOf != "" && !strings.Contains(r.Subject, rerunOf) {
		title += " (re-run of " + sanitize(rerunOf) + ")"
	}
	add(st.title, title)
	add(style, "  "+strings.Join(mode, " · "))
	if len(p.Warnings) > 0 {
		add("", "")
		add(st.warn, "Warnings ("+strconv.Itoa(len(p.Warnings))+")")
		for _, x := range p.Warnings {
			for _, l := range wrap(sanitize(x), w) {
				add(st.warn, "  ! "+l)
			}
		}
	}
	add("", "")
	add(st.colHeader, "Hosts as ansible-playbook resolves them ("+strconv.Itoa(len(p.Hosts))+")")
	if len(p.Hosts) == 0 {
		add(st.bad, "  no host matched: nothing would run")
	}
	for _, h := range p.Hosts {
		line := "  " + sanitize(h)
		if node, ok := p.Aliases[h]; ok {
			line += "  → node " + sanitize(node)
		}
		add("", line)
	}
	if vars := p.ExtraVars; len(vars) > 0 {
		add("", "")
		// The values typed, as the run gets them (secrets redacted): the
		// argv only names the file they are passed in.
		add(st.colHeader, "Extra vars ("+strconv.Itoa(len(vars))+"; secret values redacted)")
		for _, v := range vars {
			for _, l := range hardWrap(sanitize(quoteVar(v)), max(w-2, 8)) {
				add("", "  "+l)
			}
		}
	}
	add("", "")
	add(st.colHeader, "Command ("+strconv.Itoa(len(p.Argv))+" arguments, no shell)")
	for i, a := range p.Argv {
		// Wrap inside the 8-cell prefix, so no line is cut: the argv must be
		// readable exactly.
		for j, l := range hardWrap(sanitize(quoteArg(a)), max(w-8, 8)) {
			prefix := "  " + padWord("["+strconv.Itoa(i)+"]", 5) + " "
			if j > 0 {
				prefix = "        "
			}
			add("", prefix+l)
		}
	}
	if len(p.Env) > 0 {
		add("", "")
		// The run's whole environment (an allow-list): NAME=value for what
		// fleetdeck and [ansible] env set, a bare NAME for what is passed
		// from the console's environment (its value is not shown).
		add(st.colHeader, "Environment ("+strconv.Itoa(len(p.Env))+"; a bare NAME is passed from this console's environment)")
		env := append([]string(nil), p.Env...)
		sort.Strings(env)
		for _, e := range env {
			for _, l := range hardWrap(sanitize(quoteEnv(e)), max(w-2, 8)) {
				add("", "  "+l)
			}
		}
	}
	return out
}

// quoteVar renders an extra var key=value, the value quoted when needed;
// a redacted value stays as the manager wrote it.
func quoteVar(kv string) string {
	k, v, ok := strings.Cut(kv, "=")
	if ok && v == "<redacted>" {
		return quoteArg(k) + "=" + v
	}
	return quoteEnv(kv)
}

// quoteEnv renders NAME=value with the value quoted when needed.
func quoteEnv(e string) string {
	k, v, ok := strings.Cut(e, "=")
	if !ok {
		return quoteArg(e)
	}
	return quoteArg(k) + "=" + quoteArg(v)
}

// previewStatus is the fixed line above the scrolling preview: how to
// launch, the typed confirmation, or the last error.
func (ps *previewView) previewStatus() []textLine {
	st := &ps.s.st
	var out []textLine
	switch {
	case ps.busy:
		out = append(out, textLine{st.warn, "  launching…"})
	case ps.p.Confirm != "":
		c := sanitize(ps.p.Confirm)
		style := st.warn
		if ps.typed.Value() == ps.p.Confirm {
			style = st.ok
		}
		what := "on " + plural(len(ps.p.Hosts), "host")
		if ps.p.Request.Scope.Wide() {
			what = "on a whole " + string(ps.p.Request.Scope)
		}
		out = append(out, textLine{style, "  Not in check mode " + what + ": type " + strconv.Quote(c) +
			" then enter to launch, esc to discard: " + inputText(&ps.typed)})
	default:
		back := ""
		if ps.form != nil {
			back = " (back to the form)"
		}
		out = append(out, textLine{st.key, "  enter launch · esc discard" + back})
	}
	if ps.err != "" {
		for _, l := range wrap(ps.err, max(ps.w-4, 10)) {
			out = append(out, textLine{st.bad, "  " + l})
		}
	}
	return out
}
