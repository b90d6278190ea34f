package tui

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"

	"github.com/fleetdeck/fleetdeck/fleet"
	"github.com/fleetdeck/fleetdeck/roles"
)

// The roles form: which catalog roles to add to and remove from the
// target nodes, their maintenance mode, check mode and the reason (which
// is required); ctrl+s (or enter on the reason) plans the change and
// opens its preview. The same form, without the roles and the
// maintenance, reverts a node to a generation of its history.

// rolesTarget is what a roles change is about: its description and the
// node keys.
type rolesTarget struct {
	subject string
	nodes   []string
}

// formMode is what the roles form changes.
type formMode int

const (
	formRoles formMode = iota
	formMaint
	formRevert
	// formApply applies the current desired record again (after a
	// failed run, or a drift): nothing is recorded.
	formApply
)

// form row kinds.
const (
	rowRole = iota
	rowMaint
	rowCheck
	rowReason
)

type formRow struct {
	kind int
	role int
}

// rolesForm is the roles form component. It stays on the stack under its
// preview, so esc from the preview returns to what was chosen.
type rolesForm struct {
	base
	rolesTarget
	mode formMode

	// names are the roles offered (the catalog's, plus roles a target
	// holds that the catalog lost); held counts the targets holding each;
	// change is each role's choice: 0 keep, +1 add, -1 remove.
	names   []string
	inCat   []bool
	held    []int
	change  []int8
	maint   int8 // 0 unchanged, +1 on, -1 off
	check   bool
	reason  textinput.Model
	cur     int
	rows    []formRow
	revert  *roles.Desired
	busy    bool
	err     string
	lines   []textLine
	offset  int
	heldMap map[string][]string // key → roles held now
}

// rolesAction is o in the views whose selection roles can change on.
func (s *shared) rolesAction(desc string, target func() (rolesTarget, bool)) action {
	return action{keys: []string{"o"}, short: "roles", desc: desc, dangerous: true, do: func(tea.KeyPressMsg) tea.Cmd {
		return s.openRolesForm(formRoles, target)
	}}
}

// reapplyAction is a in Node detail: apply the node's current desired
// record again, through the same form (check mode) and preview.
func (s *shared) reapplyAction(dc, name string) action {
	key := dc + "/" + name
	return action{keys: []string{"a"}, short: "reapply", dangerous: true,
		desc: "apply the node's desired state again (after a failed run or a drift): preview, then apply and track; nothing is recorded",
		when: func() bool { _, ok := s.rl.desired[key]; return s.rl.svc != nil && ok },
		do: func(tea.KeyPressMsg) tea.Cmd {
			t, ok := s.detailTarget(dc, name)
			if !ok {
				return nil
			}
			d := s.rl.desired[key]
			s.push(newRolesForm(s, t, formApply, &d))
			return nil
		}}
}

// maintAction is m: the same form, for maintenance on or off.
func (s *shared) maintAction(desc string, target func() (rolesTarget, bool)) action {
	return action{keys: []string{"m"}, short: "maint", desc: desc, dangerous: true, do: func(tea.KeyPressMsg) tea.Cmd {
		return s.openRolesForm(formMaint, target)
	}}
}

// openRolesForm pushes the form for what target returns.
func (s *shared) openRolesForm(mode formMode, target func() (rolesTarget, bool)) tea.Cmd {
	if s.rl.svc == nil {
		s.setFlash(s.rolesOffText(), true)
		return nil
	}
	t, ok := target()
	if !ok {
		return nil
	}
	s.push(newRolesForm(s, t, mode, nil))
	return s.maybeFetchDesired()
}

// heldRoles returns the roles node key holds now: its desired record's,
// or, unmanaged, its managed services' in the catalog.
func (s *shared) heldRoles(key string) []string {
	if d, ok := s.rl.desired[key]; ok {
		return d.Roles
	}
	dc, name, _ := strings.Cut(key, "/")
	return nodeManagedRoles(s.snap.Node(dc, name))
}

// nodeManagedRoles returns the roles of n's managed services.
func nodeManagedRoles(n *fleet.Node) []string {
	if n == nil {
		return nil
	}
	ids := make([]string, len(n.Services))
	for i, sv := range n.Services {
		ids[i] = sv.ID
	}
	return managedRoles(ids)
}

// newRolesForm returns the form for target t; revert is the generation to
// restore (formRevert).
func newRolesForm(s *shared, t rolesTarget, mode formMode, revert *roles.Desired) *rolesForm {
	f := &rolesForm{base: base{s: s}, rolesTarget: t, mode: mode, revert: revert, reason: newTextInput(""), heldMap: map[string][]string{}}
	if s.rl.catalog != nil {
		f.names = slices.Clone(s.rl.catalog.Names())
	}
	f.inCat = make([]bool, len(f.names))
	for i := range f.inCat {
		f.inCat[i] = true
	}
	for _, k := range t.nodes {
		h := s.heldRoles(k)
		f.heldMap[k] = h
		for _, r := range h {
			if !slices.Contains(f.names, r) {
				f.names = append(f.names, r)
				f.inCat = append(f.inCat, false)
			}
		}
	}
	f.held = make([]int, len(f.names))
	f.change = make([]int8, len(f.names))
	for i, r := range f.names {
		for _, k := range t.nodes {
			if slices.Contains(f.heldMap[k], r) {
				f.held[i]++
			}
		}
	}
	if mode != formRevert && mode != formApply {
		for i := range f.names {
			f.rows = append(f.rows, formRow{kind: rowRole, role: i})
		}
		f.rows = append(f.rows, formRow{kind: rowMaint})
	}
	f.rows = append(f.rows, formRow{kind: rowCheck}, formRow{kind: rowReason})
	if mode == formMaint {
		// m turns maintenance on, or off when every target has it on.
		f.maint = 1
		if f.allInMaintenance() {
			f.maint = -1
		}
		f.cur = len(f.rows) - 1
	}
	if mode == formRevert || mode == formApply {
		f.cur = len(f.rows) - 1
	}
	onReason := func() bool { return f.row().kind == rowReason }
	onRole := func() bool { return f.row().kind == rowRole }
	onToggle := func() bool { k := f.row().kind; return k == rowRole || k == rowMaint || k == rowCheck }
	do := func(fn func()) func(tea.KeyPressMsg) tea.Cmd {
		return func(tea.KeyPressMsg) tea.Cmd { fn(); return nil }
	}
	f.acts = s.register(
		action{keys: []string{"tab", "down"}, label: "tab/↓", short: "next", desc: "next line", do: do(func() { f.move(1) })},
		action{keys: []string{"shift+tab", "up"}, label: "shift+tab/↑", desc: "previous line", do: do(func() { f.move(-1) })},
		action{keys: []string{"j"}, label: "j/k", desc: "next / previous line (outside the reason)", when: func() bool { return !onReason() }, do: do(func() { f.move(1) })},
		action{keys: []string{"k"}, when: func() bool { return !onReason() }, do: do(func() { f.move(-1) })},
		action{keys: []string{"space", "x"}, label: "space", short: "toggle",
			desc: "a role: add it (a role the nodes hold: remove it; held by some: add, remove, keep); maintenance: on, off, unchanged; check mode",
			when: onToggle, do: do(f.toggle)},
		action{keys: []string{"+"}, desc: "add the role under the cursor", when: onRole, do: do(func() { f.set(1) })},
		action{keys: []string{"-"}, desc: "remove the role under the cursor", when: onRole, do: do(func() { f.set(-1) })},
		action{keys: []string{"enter"}, desc: "next line; on the reason: preview",
			do: func(tea.KeyPressMsg) tea.Cmd {
				if onReason() {
					return f.submit()
				}
				f.move(1)
				return nil
			}},
		action{keys: []string{"ctrl+s"}, short: "preview", desc: "preview: per node current → desired, the apply run's hosts and command, before anything is written",
			do: func(tea.KeyPressMsg) tea.Cmd { return f.submit() }},
		action{keys: []string{"esc"}, short: "close", desc: "close the form (nothing is written)", do: do(func() { s.pop() })},
		action{keys: []string{"?", "f1"}, label: "?", short: "help", desc: "help (f1 in the reason)",
			when: func() bool { return !onReason() }, do: do(func() { s.push(newHelpView(s, f)) })},
		action{keys: []string{"f1"}, short: "help", when: onReason, do: do(func() { s.push(newHelpView(s, f)) })},
		s.quitAction(false),
	)
	return f
}

func (f *rolesForm) title() string {
	switch f.mode {
	case formMaint:
		return "maint"
	case formRevert:
		return "revert"
	case formApply:
		return "reapply"
	}
	return "assign"
}

// row is the line under the cursor.
func (f *rolesForm) row() formRow { return f.rows[f.cur] }

func (f *rolesForm) move(d int) { f.cur = clamp(f.cur+d, 0, len(f.rows)-1) }

// allInMaintenance reports whether every target's desired (or, unmanaged,
// catalog) maintenance is on.
func (f *rolesForm) allInMaintenance() bool {
	for _, k := range f.nodes {
		if d, ok := f.s.rl.desired[k]; ok {
			if !d.Maintenance.On {
				return false
			}
			continue
		}
		dc, name, _ := strings.Cut(k, "/")
		if !roles.InMaintenance(f.s.snap.Node(dc, name)) {
			return false
		}
	}
	return len(f.nodes) > 0
}

// toggle flips the line under the cursor.
func (f *rolesForm) toggle() {
	switch r := f.row(); r.kind {
	case rowRole:
		i := r.role
		switch h := f.held[i]; {
		case h == len(f.nodes): // held by all: keep ↔ remove
			f.change[i] = map[int8]int8{0: -1, -1: 0, 1: -1}[f.change[i]]
		case h == 0: // held by none: keep ↔ add
			f.change[i] = map[int8]int8{0: 1, 1: 0, -1: 1}[f.change[i]]
		default: // some: add → remove → keep
			f.change[i] = map[int8]int8{0: 1, 1: -1, -1: 0}[f.change[i]]
		}
	case rowMaint:
		f.maint = map[int8]int8{0: 1, 1: -1, -1: 0}[f.maint]
	case rowCheck:
		f.check = !f.check
	}
}

// set chooses add (+1) or remove (-1) for the role under the cursor; the
// same again keeps it.
func (f *rolesForm) set(v int8) {
	i := f.row().role
	if f.change[i] == v {
		f.change[i] = 0
	} else {
		f.change[i] = v
	}
}

// update takes text typed into the reason.
func (f *rolesForm) update(msg tea.Msg) tea.Cmd {
	switch msg.(type) {
	case tea.KeyPressMsg, tea.PasteMsg:
		if f.row().kind == rowReason && !f.busy {
			editText(&f.reason, msg)
		}
	}
	return nil
}

// request builds the change from the form, or says what is wrong.
func (f *rolesForm) request() (roles.Request, string) {
	req := roles.Request{Reason: strings.TrimSpace(f.reason.Value()), Check: f.check}
	for _, k := range f.nodes {
		dc, name, _ := strings.Cut(k, "/")
		n := f.s.snap.Node(dc, name)
		if n == nil {
			return req, "node " + k + " has left the fleet"
		}
		req.Targets = append(req.Targets, n)
	}
	switch f.mode {
	case formRevert:
		req.RevertTo = f.revert.Generation
	case formApply:
		// Nothing is recorded, so no reason is needed: the run applies
		// the record as it is, with its own reason.
		req.ApplyOnly = true
		return req, ""
	default:
		for i, c := range f.change {
			switch c {
			case 1:
				req.Add = append(req.Add, f.names[i])
			case -1:
				req.Remove = append(req.Remove, f.names[i])
			}
		}
		if f.maint != 0 {
			req.Maintenance = &roles.Maintenance{On: f.maint > 0, Reason: req.Reason}
			if !req.Maintenance.On {
				req.Maintenance.Reason = ""
			}
		}
		if len(req.Add)+len(req.Remove) == 0 && req.Maintenance == nil {
			return req, "nothing to change: toggle a role (space) or the maintenance"
		}
	}
	if req.Reason == "" {
		return req, "a reason is required: type why on the reason line (it is recorded with the change)"
	}
	return req, ""
}

// rolesPlanMsg carries a planned change for the preview.
type rolesPlanMsg struct {
	form *rolesForm
	plan *roles.Plan
	err  error
}

func (m rolesPlanMsg) apply(s *shared) tea.Cmd {
	f := m.form
	f.busy = false
	if s.top() != component(f) {
		// The form was closed while the change was being planned.
		if m.plan != nil && s.rl.svc != nil {
			s.rl.svc.Discard(m.plan)
		}
		return nil
	}
	if m.err != nil {
		f.err = sanitize("refused, nothing changed: " + m.err.Error())
		s.setFlash(f.err, true)
		return nil
	}
	if m.plan == nil || m.plan.Preview == nil {
		f.err = "the applier returned no plan"
		return nil
	}
	s.push(newRolesPreview(s, m.plan, f))
	return nil
}

// submit plans the change (reads the records, previews the run).
func (f *rolesForm) submit() tea.Cmd {
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
	return f.s.rolesCall(provLongTimeout, func(ctx context.Context, svc RolesService) tea.Msg {
		p, err := svc.Plan(ctx, req)
		return rolesPlanMsg{form: f, plan: p, err: err}
	})
}

// refresh renders the form's lines and keeps the cursor's line shown.
func (f *rolesForm) refresh() {
	var curLine int
	f.lines, curLine = f.formLines()
	if curLine < f.offset {
		f.offset = curLine
	}
	if curLine >= f.offset+f.h {
		f.offset = curLine - f.h + 1
	}
	f.offset = clamp(f.offset, 0, max(len(f.lines)-f.h, 0))
}

// view draws the form from its scroll position.
func (f *rolesForm) view(_ time.Time, line func(string)) {
	end := min(f.offset+f.h, len(f.lines))
	for _, l := range f.lines[min(f.offset, end):end] {
		line(f.s.st.render(l.style, fitLine(l.text, f.w)))
	}
}

// formLines renders the form, and the index of the cursor's line.
func (f *rolesForm) formLines() ([]textLine, int) {
	st := &f.s.st
	var out []textLine
	curLine := 0
	add := func(style, text string) { out = append(out, textLine{style: style, text: text}) }
	subject := sanitize(f.subject)
	switch f.mode {
	case formRevert:
		add(st.title, "Revert "+subject+" to generation "+strconv.FormatUint(f.revert.Generation, 10))
		d := f.revert
		add("", "  generation "+strconv.FormatUint(d.Generation, 10)+": roles "+rolesList(d.Roles)+", maintenance "+maintText(d.Maintenance))
		add(st.dim, "  set "+d.When.Local().Format(time.DateTime)+" by "+sanitize(d.Who)+": "+sanitize(d.Reason))
		add(st.dim, "  a new generation restores these roles and maintenance; it is recorded and applied like any change")
	case formMaint:
		add(st.title, "Maintenance of "+subject)
	case formApply:
		add(st.title, "Apply the desired state of "+subject+" again")
		if d := f.revert; d != nil {
			add("", "  generation "+strconv.FormatUint(d.Generation, 10)+": roles "+rolesList(d.Roles)+", maintenance "+maintText(d.Maintenance))
			add(st.dim, "  set "+d.When.Local().Format(time.DateTime)+" by "+sanitize(d.Who)+": "+sanitize(d.Reason))
		}
		add(st.dim, "  nothing is recorded: the run applies the current record (after a failed run, or a drift); the reason is optional")
	default:
		add(st.title, "Change the roles of "+subject)
	}
	if f.mode == formApply {
		add(st.dim, "  run as "+sanitize(f.s.rl.who)+"; the preview shows every node and the apply run before anything runs")
	} else {
		add(st.dim, "  recorded as "+sanitize(f.s.rl.who)+"; the preview shows every node and the apply run before anything is written")
	}
	add("", "")
	mark := func(i int) string {
		if f.cur == i {
			curLine = len(out)
			return "> "
		}
		return "  "
	}
	for i, r := range f.rows {
		switch r.kind {
		case rowRole:
			if i == 0 {
				add(st.colHeader, "  Roles (space: add/remove; + add, - remove)")
			}
			box, what, style := "[ ]", "", ""
			switch f.change[r.role] {
			case 1:
				box, what, style = "[+]", "add", st.ok
			case -1:
				box, what, style = "[-]", "remove", st.bad
			}
			held := "held by " + strconv.Itoa(f.held[r.role]) + "/" + strconv.Itoa(len(f.nodes))
			if len(f.nodes) == 1 {
				held = "not held"
				if f.held[r.role] == 1 {
					held = "held"
				}
			}
			if !f.inCat[r.role] {
				held += ", not in the role catalog"
			}
			add(style, mark(i)+box+" "+padCells(sanitize(f.names[r.role]), 16)+padWord(what, 8)+held)
		case rowMaint:
			if len(f.names) == 0 && f.mode != formRevert {
				add(st.warn, "  the role catalog is empty: only maintenance can change")
			}
			v := map[int8]string{0: "unchanged", 1: "on", -1: "off"}[f.maint]
			add("", mark(i)+padWord("Maintenance", 13)+"‹ "+v+" ›  (space cycles; on: consul maint -enable with the reason)")
		case rowCheck:
			box := "[ ]"
			if f.check {
				box = "[x]"
			}
			add("", mark(i)+padWord("Check mode", 13)+box+"  (--check --diff: show what would change, record nothing)")
		case rowReason:
			text := sanitize(f.reason.Value())
			if f.cur == i {
				text = inputText(&f.reason)
			} else if text == "" {
				text = "(required: why; recorded with the change)"
			}
			add("", mark(i)+padWord("Reason", 13)+text)
		}
	}
	add("", "")
	switch {
	case f.busy:
		add(st.warn, "  planning: reading the desired records, previewing the apply run (ansible-playbook --list-hosts)…")
	case f.err != "":
		for _, l := range wrap(f.err, max(f.w-4, 10)) {
			add(st.bad, "  "+l)
		}
	}
	add("", "")
	add(st.colHeader, "Nodes ("+strconv.Itoa(len(f.nodes))+"): now")
	for i, k := range f.nodes {
		if i == maxListed {
			add(st.dim, "  … and "+strconv.Itoa(len(f.nodes)-i)+" more")
			break
		}
		add("", "  "+sanitize(k)+"  "+f.s.nowText(k))
	}
	return out, curLine
}

// nowText describes node key's desired and actual roles in a line.
func (s *shared) nowText(key string) string {
	dc, name, _ := strings.Cut(key, "/")
	actual := rolesList(nodeManagedRoles(s.snap.Node(dc, name)))
	d, ok := s.rl.desired[key]
	if !ok {
		return "unmanaged · catalog " + actual
	}
	st := s.nodeState(key)
	return "generation " + strconv.FormatUint(d.Generation, 10) + " " + rolesList(d.Roles) + " maintenance " + maintText(d.Maintenance) +
		" · " + string(st.State) + " · catalog " + actual
}
