package tui

import (
	"context"
	"strconv"
	"strings"
	"time"

	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"

	"github.com/fleetdeck/fleetdeck/provision"
)

// Launch form fields, in tab order. Forks is last: enter on it previews.
const (
	fPlaybook = iota
	fCheck
	fDiff
	fBecome
	fTags
	fSkipTags
	fExtraVars
	fForks
	numFields
)

// formFieldName labels form field i.
func formFieldName(i int) string {
	return [numFields]string{"playbook", "check mode", "diff", "become", "tags", "skip tags", "extra vars", "forks"}[i]
}

// isText reports whether field i takes typed text.
func isText(i int) bool { return i == fTags || i == fSkipTags || i == fExtraVars || i == fForks }

// launchTarget is what r runs on: how it was chosen, its description,
// and the node keys.
type launchTarget struct {
	scope   provision.LaunchScope
	subject string
	targets []string
}

// runAction is r in the views whose selection a playbook can run on (a
// node, the marked nodes, a role, a group): the launch form for what
// target returns. It is dangerous: read-only consoles do not have it.
func (s *shared) runAction(desc string, target func() (launchTarget, bool)) action {
	return action{keys: []string{"r"}, short: "run", desc: desc, dangerous: true, do: func(tea.KeyPressMsg) tea.Cmd {
		if s.prov == nil {
			s.noProv()
			return nil
		}
		t, ok := target()
		if !ok {
			return nil
		}
		f := newLaunchForm(s, t)
		s.push(f)
		return f.loadPlaybooks()
	}}
}

// launchForm is the launch form component: playbook, modes, tags, extra
// vars, forks; ctrl+s (or enter on the last field) prepares the preview.
// It stays on the stack under the preview, so esc from the preview
// returns to the values typed.
type launchForm struct {
	base
	launchTarget

	playbooks []provision.Playbook
	pbErr     string
	pbLoaded  bool
	pbSel     int
	// pbWant is the playbook to select once the catalog arrives.
	pbWant string

	field               int
	check, diff, become bool
	// inputs are the text fields' editors (tags, skip tags, extra vars,
	// forks); vars are the extra vars added so far.
	inputs [numFields]textinput.Model
	vars   []string

	// busy is set while a preview is being prepared; err is the last
	// error (local validation, or from the manager).
	busy bool
	err  string

	lines  []textLine
	offset int
}

// newLaunchForm returns the form for target t; wide runs start in check
// mode.
func newLaunchForm(s *shared, t launchTarget) *launchForm {
	f := &launchForm{base: base{s: s}, launchTarget: t, check: t.scope.Wide()}
	for i := range numFields {
		if isText(i) {
			f.inputs[i] = newTextInput("")
		}
	}
	onPlaybook := func() bool { return f.field == fPlaybook }
	onText := func() bool { return isText(f.field) }
	onBox := func() bool { return f.field == fCheck || f.field == fDiff || f.field == fBecome }
	do := func(fn func()) func(tea.KeyPressMsg) tea.Cmd {
		return func(tea.KeyPressMsg) tea.Cmd { fn(); return nil }
	}
	f.acts = s.register(
		action{keys: []string{"tab"}, short: "next", desc: "next field", do: do(func() { f.field = (f.field + 1) % numFields })},
		action{keys: []string{"shift+tab"}, desc: "previous field", do: do(func() { f.field = (f.field + numFields - 1) % numFields })},
		action{keys: []string{"left", "right", "up", "down", "h", "l", "k", "j", "space"}, label: "←/→", desc: "on the playbook: choose it",
			when: onPlaybook, do: func(msg tea.KeyPressMsg) tea.Cmd {
				switch msg.String() {
				case "up", "left", "k", "h":
					f.choosePlaybook(-1)
				default:
					f.choosePlaybook(1)
				}
				return nil
			}},
		action{keys: []string{"up"}, label: "↑/↓", desc: "previous / next field (outside the playbook field)",
			when: func() bool { return !onPlaybook() }, do: do(func() { f.field = max(f.field-1, 0) })},
		action{keys: []string{"down"}, when: func() bool { return !onPlaybook() }, do: do(func() { f.field = (f.field + 1) % numFields })},
		action{keys: []string{"space", "x"}, label: "space", short: "toggle", desc: "toggle check mode, diff, become",
			when: onBox, do: do(f.toggle)},
		action{keys: []string{"enter"}, desc: "next field; on extra vars: add the key=value typed; on the last field: preview",
			do: func(tea.KeyPressMsg) tea.Cmd { return f.enter() }},
		action{keys: []string{"backspace", "ctrl+h"}, desc: "on empty extra vars: take back the last one added",
			when: func() bool { return f.field == fExtraVars && f.inputs[fExtraVars].Value() == "" && len(f.vars) > 0 },
			do: do(func() {
				f.inputs[fExtraVars].SetValue(f.vars[len(f.vars)-1])
				f.inputs[fExtraVars].CursorEnd()
				f.vars = f.vars[:len(f.vars)-1]
			})},
		action{keys: []string{"ctrl+s"}, short: "preview", desc: "preview: the hosts and the exact command, before anything runs",
			do: func(tea.KeyPressMsg) tea.Cmd { return f.submit() }},
		action{keys: []string{"esc"}, short: "close", desc: "close the form", do: do(func() { s.pop() })},
		// ? is text in the text fields: there f1 opens the help.
		action{keys: []string{"?", "f1"}, label: "?", short: "help", desc: "help (f1 in a text field)",
			when: func() bool { return !onText() }, do: do(func() { s.push(newHelpView(s, f)) })},
		action{keys: []string{"f1"}, short: "help", when: onText, do: do(func() { s.push(newHelpView(s, f)) })},
		s.quitAction(false),
	)
	return f
}

func (f *launchForm) title() string { return "launch" }

// loadPlaybooks fetches the playbook catalog for the form.
func (f *launchForm) loadPlaybooks() tea.Cmd {
	p := f.s.prov
	return f.s.provCall(provTimeout, func(ctx context.Context) tea.Msg {
		pbs, err := p.Playbooks(ctx)
		return playbooksMsg{form: f, pbs: pbs, err: err}
	})
}

// update takes the catalog, and text typed into a text field.
func (f *launchForm) update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case playbooksMsg:
		if msg.form == f {
			f.setPlaybooks(msg.pbs, msg.err)
		}
	case tea.KeyPressMsg, tea.PasteMsg:
		if !isText(f.field) {
			return nil
		}
		if k, ok := msg.(tea.KeyPressMsg); ok && f.field == fForks && strings.Trim(k.Text, "0123456789") != "" {
			return nil // forks is a number
		}
		if p, ok := msg.(tea.PasteMsg); ok && f.field == fForks && strings.Trim(p.Content, "0123456789") != "" {
			return nil
		}
		editText(&f.inputs[f.field], msg)
	}
	return nil
}

// setPlaybooks installs the catalog (or the reason there is none).
func (f *launchForm) setPlaybooks(pbs []provision.Playbook, err error) {
	f.pbLoaded = true
	if err != nil {
		f.pbErr = sanitize(err.Error())
		return
	}
	f.pbErr = ""
	f.playbooks = pbs
	f.pbSel = min(f.pbSel, max(len(pbs)-1, 0))
	if f.pbWant != "" {
		for i, p := range pbs {
			if p.Name == f.pbWant {
				f.pbSel = i
			}
		}
		f.pbWant = ""
	}
}

// choosePlaybook moves the playbook choice by d.
func (f *launchForm) choosePlaybook(d int) {
	if n := len(f.playbooks); n > 0 {
		f.pbSel = (f.pbSel + n + d) % n
	}
}

// toggle flips the boolean field under the cursor.
func (f *launchForm) toggle() {
	switch f.field {
	case fCheck:
		f.check = !f.check
	case fDiff:
		f.diff = !f.diff
	case fBecome:
		f.become = !f.become
	}
}

// enter goes to the next field; on extra vars it adds the var typed, on
// the last field it prepares the preview.
func (f *launchForm) enter() tea.Cmd {
	switch t := strings.TrimSpace(f.inputs[fExtraVars].Value()); {
	case f.field == fExtraVars && t != "":
		if err := checkExtraVar(t); err != "" {
			f.err = err
			return nil
		}
		f.vars = append(f.vars, t)
		f.inputs[fExtraVars].SetValue("")
		f.err = ""
	case f.field == numFields-1:
		return f.submit()
	default:
		f.field++
	}
	return nil
}

// checkExtraVar validates one key=value (the manager validates again).
func checkExtraVar(s string) string {
	s = strings.TrimSpace(s)
	k, _, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return "extra var " + strconv.Quote(s) + " is not key=value"
	}
	for i, c := range k {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return "extra var name " + strconv.Quote(k) + " is not a valid variable name"
		}
	}
	return ""
}

// splitList splits a comma list, dropping empty entries.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// request builds the launch request from the form, or says what is wrong.
func (f *launchForm) request() (provision.LaunchRequest, string) {
	req := provision.LaunchRequest{
		Scope: f.scope, Subject: f.subject, Targets: append([]string(nil), f.targets...),
		Check: f.check, Diff: f.diff, Become: f.become,
		Tags: splitList(f.inputs[fTags].Value()), SkipTags: splitList(f.inputs[fSkipTags].Value()),
		ExtraVars: append([]string(nil), f.vars...),
	}
	if len(f.playbooks) == 0 {
		if f.pbErr != "" {
			return req, "no playbooks: " + f.pbErr
		}
		return req, "no playbook to run (the playbook directory is empty)"
	}
	req.Playbook = f.playbooks[f.pbSel].Name
	if t := strings.TrimSpace(f.inputs[fExtraVars].Value()); t != "" {
		// A var typed but not yet added with enter counts.
		if err := checkExtraVar(t); err != "" {
			return req, err
		}
		req.ExtraVars = append(req.ExtraVars, t)
	}
	if forks := f.inputs[fForks].Value(); forks != "" {
		n, err := strconv.Atoi(forks)
		if err != nil || n < 1 || n > 1000 {
			return req, "forks must be a number from 1 to 1000"
		}
		req.Forks = n
	}
	return req, ""
}

// submit asks the manager for a preview of the form's run.
func (f *launchForm) submit() tea.Cmd {
	if f.busy {
		return nil
	}
	req, bad := f.request()
	if bad != "" {
		f.err = sanitize(bad)
		f.s.setFlash(f.err, true)
		return nil
	}
	f.busy, f.err = true, ""
	p := f.s.prov
	return f.s.provCall(provLongTimeout, func(ctx context.Context) tea.Msg {
		prev, err := p.Preview(ctx, req)
		return previewMsg{form: f, prev: prev, err: err}
	})
}

// refresh renders the form's lines.
func (f *launchForm) refresh() {
	f.lines = f.formLines()
	f.offset = clamp(f.offset, 0, max(len(f.lines)-f.h, 0))
}

// view draws the form from its scroll position.
func (f *launchForm) view(_ time.Time, line func(string)) {
	end := min(f.offset+f.h, len(f.lines))
	for _, l := range f.lines[min(f.offset, end):end] {
		line(f.s.st.render(l.style, fitLine(l.text, f.w)))
	}
}

// formLines renders the launch form as body lines.
func (f *launchForm) formLines() []textLine {
	st := &f.s.st
	var out []textLine
	add := func(style, text string) { out = append(out, textLine{style: style, text: text}) }
	title := "Run a playbook on " + string(f.scope) + " " + sanitize(f.subject) + " (" + plural(len(f.targets), "node") + ")"
	if f.scope == provision.ScopeMarked {
		title = "Run a playbook on the marked " + sanitize(f.subject)
	}
	add(st.title, title)
	if f.scope.Wide() {
		add(st.warn, "  "+string(f.scope)+"-wide run: check mode is on by default; without it you will type the name to confirm")
	}
	add("", "")
	cur := func(i int) string {
		if f.field == i {
			return "> "
		}
		return "  "
	}
	label := func(i int) string { return cur(i) + padWord(formFieldName(i), 12) }
	// Playbook.
	switch {
	case !f.pbLoaded:
		add("", label(fPlaybook)+"loading the playbook catalog…")
	case f.pbErr != "":
		add(st.bad, label(fPlaybook)+f.pbErr)
	case len(f.playbooks) == 0:
		add(st.bad, label(fPlaybook)+"the playbook directory has no playbooks")
	default:
		pb := f.playbooks[f.pbSel]
		add(st.key, label(fPlaybook)+"‹ "+sanitize(pb.Name)+" ›  ("+strconv.Itoa(f.pbSel+1)+"/"+strconv.Itoa(len(f.playbooks))+")")
		if pb.Description != "" {
			add(st.dim, "                "+sanitize(pb.Description))
		}
	}
	box := func(b bool) string {
		if b {
			return "[x]"
		}
		return "[ ]"
	}
	add("", label(fCheck)+box(f.check)+"  (--check: report what would change, change nothing)")
	add("", label(fDiff)+box(f.diff)+"  (--diff)")
	add("", label(fBecome)+box(f.become)+"  (--become)")
	input := func(i int, hint string) {
		in := &f.inputs[i]
		if f.field == i {
			add("", label(i)+inputText(in))
			return
		}
		line := label(i) + sanitize(in.Value())
		if in.Value() == "" && hint != "" {
			line += "  " + hint
		}
		add("", line)
	}
	input(fTags, "(comma list)")
	input(fSkipTags, "(comma list)")
	input(fExtraVars, "(key=value, enter adds one; backspace takes one back)")
	for _, ev := range f.vars {
		add(st.dim, "                "+strconv.Quote(ev))
	}
	input(fForks, "(ansible default)")
	add("", "")
	switch {
	case f.busy:
		add(st.warn, "  preparing the preview (inventory snapshot, ansible-playbook --list-hosts)…")
	case f.err != "":
		for _, l := range wrap(f.err, max(f.w-4, 10)) {
			add(st.bad, "  "+l)
		}
	}
	add("", "")
	add(st.colHeader, "Targets ("+strconv.Itoa(len(f.targets))+")")
	for i, t := range f.targets {
		if i == maxListed {
			add(st.dim, "  … and "+strconv.Itoa(len(f.targets)-i)+" more")
			break
		}
		add("", "  "+sanitize(t))
	}
	return out
}

// maxListed bounds the targets the form lists (the preview lists all
// resolved hosts).
const maxListed = 200

// plural renders "1 node", "3 nodes".
func plural(n int, word string) string {
	return pluralWord(n, word, word+"s")
}

// pluralWord renders n with the singular or the plural form.
func pluralWord(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}
