package tui

import (
	"context"
	"sort"
	"strconv"
	"strings"

	tea "charm.land/bubbletea/v2"

	"github.com/fleetdeck/fleetdeck/provision"
)

// previewScreen is the state of the preview screen: what will run, exactly,
// before anything runs.
type previewScreen struct {
	p *provision.Preview
	// form is the launch form under the preview (nil for a re-run).
	form *launchForm
	// typed is the typed confirmation so far.
	typed string
	busy  bool
	err   string
}

// previewDone shows a prepared run, or the error that stopped it.
func (m *Model) previewDone(msg previewMsg) tea.Cmd {
	if f := msg.form; f != nil {
		f.busy = false
		if m.top().form != f {
			// The form was closed while the preview was being prepared.
			m.discard(msg.prev)
			return nil
		}
		if msg.err != nil {
			f.err = sanitize(msg.err.Error())
			m.setFlash("preview failed: "+msg.err.Error(), true)
			return nil
		}
	} else if msg.err != nil {
		m.setFlash("re-run of "+msg.rerunOf+": "+msg.err.Error(), true)
		return nil
	}
	if msg.prev == nil {
		m.setFlash("the run manager returned no preview", true)
		return nil
	}
	v := newView(viewPreview)
	v.prev = &previewScreen{p: msg.prev, form: msg.form}
	m.push(v)
	return nil
}

// discard drops a preview that will not be launched.
func (m *Model) discard(p *provision.Preview) {
	if p != nil && m.prov != nil {
		m.prov.Discard(p.PlanID)
	}
}

// handlePreview handles keys on the preview screen: enter launches (once
// the confirmation text, if any, is typed), esc discards. While a typed
// confirmation is required, printable keys go to it.
func (m *Model) handlePreview(v *view, msg tea.KeyPressMsg) (tea.Cmd, bool) {
	ps := v.prev
	k := msg.String()
	switch k {
	case "ctrl+c":
		m.discard(ps.p)
		return tea.Quit, true
	case "esc":
		m.discard(ps.p)
		m.pop()
		return nil, true
	case "enter":
		if ps.busy {
			return nil, true
		}
		if ps.p.Confirm != "" && ps.typed != ps.p.Confirm {
			ps.err = "type " + strconv.Quote(sanitize(ps.p.Confirm)) + " exactly to launch (esc goes back)"
			m.setFlash(ps.err, true)
			return nil, true
		}
		if m.ro {
			return nil, true
		}
		ps.busy, ps.err = true, ""
		p, id := m.prov, ps.p.PlanID
		return m.provCall(provLongTimeout, func(ctx context.Context) tea.Msg {
			runID, err := p.Launch(ctx, id)
			return launchedMsg{ps: ps, runID: runID, err: err}
		}), true
	}
	if ps.p.Confirm == "" {
		return nil, false
	}
	switch k {
	case "backspace", "ctrl+h":
		p := prompt{text: ps.typed}
		p.backspace()
		ps.typed = p.text
		return nil, true
	case "ctrl+u":
		ps.typed = ""
		return nil, true
	case "space":
		ps.typed += " "
		return nil, true
	}
	if msg.Text != "" && msg.Mod&^tea.ModShift == 0 {
		ps.typed += msg.Text
		return nil, true
	}
	return nil, false
}

// launchDone follows a launched run, or shows why it did not start.
func (m *Model) launchDone(msg launchedMsg) tea.Cmd {
	ps := msg.ps
	ps.busy = false
	if msg.err != nil {
		ps.err = sanitize(msg.err.Error())
		m.setFlash("launch failed: "+msg.err.Error(), true)
		return nil
	}
	// The form and its preview are done: replace them with the run view.
	for len(m.stack) > 1 {
		t := m.top()
		if t.prev != ps && (t.form == nil || t.form != ps.form) {
			break
		}
		m.pop()
	}
	m.setFlash("run "+msg.runID+" launched", false)
	return tea.Batch(m.openRun(msg.runID), m.fetchRuns())
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
func (m *Model) previewLines(ps *previewScreen) []textLine {
	st := &m.st
	p := ps.p
	r := p.Request
	var out []textLine
	add := func(style, text string) { out = append(out, textLine{style: style, text: text}) }
	w := max(m.width-6, 10)
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
	add(st.title, "Playbook "+sanitize(r.Playbook)+" on "+string(r.Scope)+" "+sanitize(r.Subject))
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
func (m *Model) previewStatus(ps *previewScreen) []textLine {
	st := &m.st
	var out []textLine
	switch {
	case ps.busy:
		out = append(out, textLine{st.warn, "  launching…"})
	case ps.p.Confirm != "":
		c := sanitize(ps.p.Confirm)
		style := st.warn
		if ps.typed == ps.p.Confirm {
			style = st.ok
		}
		out = append(out, textLine{style, "  Not in check mode on a whole " + string(ps.p.Request.Scope) + ": type " +
			strconv.Quote(c) + " then enter to launch, esc to discard: " + sanitize(ps.typed) + "▏"})
	default:
		out = append(out, textLine{st.key, "  enter launch · esc discard (back to the form)"})
	}
	if ps.err != "" {
		for _, l := range wrap(ps.err, max(m.width-4, 10)) {
			out = append(out, textLine{st.bad, "  " + l})
		}
	}
	return out
}
