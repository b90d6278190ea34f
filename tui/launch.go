package tui

import (
	"context"
	"strconv"
	"strings"

	tea "charm.land/bubbletea/v2"

	"github.com/fleetdeck/fleetdeck/fleet"
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

// fieldNames label the form's fields.
var fieldNames = [numFields]string{"playbook", "check mode", "diff", "become", "tags", "skip tags", "extra vars", "forks"}

// launchForm is the state of the launch form. It stays on the view stack
// under the preview, so esc from the preview returns to the values typed.
type launchForm struct {
	scope   provision.LaunchScope
	subject string
	targets []string

	playbooks []provision.Playbook
	pbErr     string
	pbLoaded  bool
	pbSel     int
	// pbWant is the playbook to select once the catalog arrives.
	pbWant string

	field                   int
	check, diff, become     bool
	tags, skipTags, varText string
	vars                    []string
	forks                   string

	// busy is set while a preview is being prepared; err is the last
	// error (local validation, or from the manager).
	busy bool
	err  string
}

// launchTargets works out what `r` targets in view v: the marked nodes or
// the node under the cursor (nodes), the role or group under the cursor
// (every node of it in the current scope), or the node shown (detail).
func (m *Model) launchTargets(v *view) (scope provision.LaunchScope, subject string, targets []string, ok bool) {
	switch v.kind {
	case viewNodes:
		if len(m.marks) > 0 {
			// Only the marked nodes this view shows: a mark hidden by the
			// filter or the datacenter scope must not be run on unseen.
			for _, r := range v.rows {
				if r.node != nil && m.marks[r.node.Key()] {
					targets = append(targets, r.node.Key())
				}
			}
			if len(targets) == 0 {
				m.setFlash("no marked node is shown here (clear the filter, :dc all, or U to clear marks)", true)
				return "", "", nil, false
			}
			subject = strconv.Itoa(len(targets)) + " nodes"
			if hidden := len(m.marks) - len(targets); hidden > 0 {
				subject += " (" + strconv.Itoa(hidden) + " more marked but not shown here: left out)"
			}
			return provision.ScopeMarked, subject, targets, true
		}
		r := v.selected()
		if r == nil || r.node == nil {
			m.setFlash("no node under the cursor", true)
			return "", "", nil, false
		}
		return provision.ScopeNode, r.node.Key(), []string{r.node.Key()}, true
	case viewDetail:
		n := m.snap.Node(v.dc, v.node)
		if n == nil {
			m.setFlash("node "+v.node+" has left the fleet", true)
			return "", "", nil, false
		}
		return provision.ScopeNode, n.Key(), []string{n.Key()}, true
	case viewRoles, viewGroups:
		r := v.selected()
		if r == nil {
			return "", "", nil, false
		}
		scope = provision.ScopeRole
		match := func(n *fleet.Node) bool { return n.HasRole(r.id) }
		if v.kind == viewGroups {
			scope = provision.ScopeGroup
			match = func(n *fleet.Node) bool { return n.Group == r.id }
		}
		for _, n := range m.scope.Nodes {
			if match(n) {
				targets = append(targets, n.Key())
			}
		}
		if len(targets) == 0 {
			m.setFlash(string(scope)+" "+r.id+" has no nodes in this scope", true)
			return "", "", nil, false
		}
		return scope, r.id, targets, true
	}
	m.setFlash("run a playbook from nodes, a node, roles or groups", true)
	return "", "", nil, false
}

// openLaunch opens the launch form for what view v targets.
func (m *Model) openLaunch(v *view) tea.Cmd {
	if m.prov == nil {
		m.noProv()
		return nil
	}
	scope, subject, targets, ok := m.launchTargets(v)
	if !ok {
		return nil
	}
	f := &launchForm{scope: scope, subject: subject, targets: targets, check: scope.Wide()}
	lv := newView(viewLaunch)
	lv.form = f
	m.push(lv)
	return m.loadPlaybooks(f)
}

// loadPlaybooks fetches the playbook catalog for form f.
func (m *Model) loadPlaybooks(f *launchForm) tea.Cmd {
	p := m.prov
	return m.provCall(provTimeout, func(ctx context.Context) tea.Msg {
		pbs, err := p.Playbooks(ctx)
		return playbooksMsg{form: f, pbs: pbs, err: err}
	})
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

// isText reports whether field i takes typed text.
func isText(i int) bool { return i == fTags || i == fSkipTags || i == fExtraVars || i == fForks }

// text returns a pointer to the text of field i.
func (f *launchForm) text(i int) *string {
	switch i {
	case fTags:
		return &f.tags
	case fSkipTags:
		return &f.skipTags
	case fExtraVars:
		return &f.varText
	case fForks:
		return &f.forks
	}
	return nil
}

// toggle flips boolean field i.
func (f *launchForm) toggle(i int) {
	switch i {
	case fCheck:
		f.check = !f.check
	case fDiff:
		f.diff = !f.diff
	case fBecome:
		f.become = !f.become
	}
}

// handleForm edits the launch form: tab/shift+tab (or ↑/↓ outside the
// playbook list) move between fields, space toggles, ←/→ (or ↑/↓) choose
// the playbook, enter on extra vars adds the typed key=value, enter on the
// last field or ctrl+s prepares the preview, esc closes the form.
func (m *Model) handleForm(v *view, msg tea.KeyPressMsg) tea.Cmd {
	f := v.form
	k := msg.String()
	switch k {
	case "ctrl+c":
		return tea.Quit
	case "esc":
		m.pop()
		return nil
	case "ctrl+s":
		return m.submitForm(f)
	case "tab":
		f.field = (f.field + 1) % numFields
		return nil
	case "shift+tab":
		f.field = (f.field + numFields - 1) % numFields
		return nil
	}
	if f.field == fPlaybook {
		n := len(f.playbooks)
		switch k {
		case "up", "left", "k", "h":
			if n > 0 {
				f.pbSel = (f.pbSel + n - 1) % n
			}
			return nil
		case "down", "right", "j", "l", "space":
			if n > 0 {
				f.pbSel = (f.pbSel + 1) % n
			}
			return nil
		case "enter":
			f.field++
			return nil
		}
		return nil
	}
	switch k {
	case "up":
		f.field--
		return nil
	case "down":
		f.field = (f.field + 1) % numFields
		return nil
	case "enter":
		switch {
		case f.field == fExtraVars && strings.TrimSpace(f.varText) != "":
			if err := checkExtraVar(f.varText); err != "" {
				f.err = err
				return nil
			}
			f.vars = append(f.vars, strings.TrimSpace(f.varText))
			f.varText, f.err = "", ""
		case f.field == numFields-1:
			return m.submitForm(f)
		default:
			f.field++
		}
		return nil
	}
	if !isText(f.field) {
		if k == "space" || k == "x" {
			f.toggle(f.field)
		}
		return nil
	}
	t := f.text(f.field)
	switch k {
	case "backspace", "ctrl+h":
		if *t == "" && f.field == fExtraVars && len(f.vars) > 0 {
			// Backspace on an empty input takes back the last var.
			*t = f.vars[len(f.vars)-1]
			f.vars = f.vars[:len(f.vars)-1]
			return nil
		}
		p := prompt{text: *t}
		p.backspace()
		*t = p.text
	case "ctrl+u":
		*t = ""
	case "space":
		if f.field != fForks {
			*t += " "
		}
	default:
		if msg.Text != "" && msg.Mod&^tea.ModShift == 0 {
			s := sanitize(msg.Text)
			if f.field == fForks && strings.Trim(s, "0123456789") != "" {
				return nil
			}
			*t += s
		}
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
		Tags: splitList(f.tags), SkipTags: splitList(f.skipTags),
		ExtraVars: append([]string(nil), f.vars...),
	}
	if len(f.playbooks) == 0 {
		if f.pbErr != "" {
			return req, "no playbooks: " + f.pbErr
		}
		return req, "no playbook to run (the playbook directory is empty)"
	}
	req.Playbook = f.playbooks[f.pbSel].Name
	if t := strings.TrimSpace(f.varText); t != "" {
		// A var typed but not yet added with enter counts.
		if err := checkExtraVar(t); err != "" {
			return req, err
		}
		req.ExtraVars = append(req.ExtraVars, t)
	}
	if f.forks != "" {
		n, err := strconv.Atoi(f.forks)
		if err != nil || n < 1 || n > 1000 {
			return req, "forks must be a number from 1 to 1000"
		}
		req.Forks = n
	}
	return req, ""
}

// submitForm asks the manager for a preview of the form's run.
func (m *Model) submitForm(f *launchForm) tea.Cmd {
	if f.busy {
		return nil
	}
	req, bad := f.request()
	if bad != "" {
		f.err = sanitize(bad)
		m.setFlash(f.err, true)
		return nil
	}
	f.busy, f.err = true, ""
	p := m.prov
	return m.provCall(provLongTimeout, func(ctx context.Context) tea.Msg {
		prev, err := p.Preview(ctx, req)
		return previewMsg{form: f, prev: prev, err: err}
	})
}

// formLines renders the launch form as body lines.
func (m *Model) formLines(f *launchForm) []textLine {
	st := &m.st
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
	label := func(i int) string { return cur(i) + padWord(fieldNames[i], 12) }
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
	input := func(i int, s, hint string) {
		caret := ""
		if f.field == i {
			caret = "▏"
		}
		line := label(i) + s + caret
		if s == "" && hint != "" {
			line += "  " + hint
		}
		add("", line)
	}
	input(fTags, f.tags, "(comma list)")
	input(fSkipTags, f.skipTags, "(comma list)")
	input(fExtraVars, f.varText, "(key=value, enter adds one; backspace takes one back)")
	for _, ev := range f.vars {
		add(st.dim, "                "+strconv.Quote(ev))
	}
	input(fForks, f.forks, "(ansible default)")
	add("", "")
	switch {
	case f.busy:
		add(st.warn, "  preparing the preview (inventory snapshot, ansible-playbook --list-hosts)…")
	case f.err != "":
		for _, l := range wrap(f.err, max(m.width-4, 10)) {
			add(st.bad, "  "+l)
		}
	}
	add(st.dim, "  tab/shift+tab field · space toggle · ←/→ playbook · enter next · ctrl+s (or enter on forks) preview · esc cancel")
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
	s := strconv.Itoa(n) + " " + word
	if n != 1 {
		s += "s"
	}
	return s
}
