package tui

import (
	"slices"
	"strings"

	tea "charm.land/bubbletea/v2"
)

// Every key a component answers to is an action it registers (as in k9s's
// KeyActions): the keys, the word the footer shows, the description the
// help shows, what it does, and whether it is dangerous. The footer hints
// and the `?` help are generated from the registry of the component on
// top, so they cannot drift from what the keys do, and read-only mode
// removes every dangerous action in one place: register.

// action is one key binding of a component.
type action struct {
	// keys are the key names as tea.KeyPressMsg.String() spells them.
	keys []string
	// label is how help and the footer name the keys ("↑/k"); default the
	// keys joined with "/".
	label string
	// short is the footer's word for the action ("" keeps it out of the
	// footer); desc is the help's description.
	short, desc string
	// do runs the action.
	do func(msg tea.KeyPressMsg) tea.Cmd
	// dangerous actions (launching, cancelling, re-running playbooks) are
	// not registered in read-only mode.
	dangerous bool
	// when, if set, says whether the action applies now: an action that
	// would do nothing in the current state is neither run nor hinted.
	when func() bool
}

// keyLabel is how the help and the footer name the action's keys.
func (a *action) keyLabel() string {
	if a.label != "" {
		return a.label
	}
	return strings.Join(a.keys, "/")
}

// live reports whether the action applies now.
func (a *action) live() bool { return a.when == nil || a.when() }

// keyActions is a component's registry of actions, in the order the help
// lists them.
type keyActions struct {
	list []action
}

// register builds a registry from list. It is the one place where
// read-only mode takes effect: dangerous actions are left out, so no key,
// hint or help line of any view offers them.
func (s *shared) register(list ...action) *keyActions {
	a := &keyActions{list: make([]action, 0, len(list))}
	for _, x := range list {
		if x.dangerous && s.ro {
			continue
		}
		a.list = append(a.list, x)
	}
	return a
}

// match returns the live action bound to the pressed key.
func (a *keyActions) match(msg tea.KeyPressMsg) (*action, bool) {
	if a == nil {
		return nil, false
	}
	k := msg.String()
	for i := range a.list {
		x := &a.list[i]
		if slices.Contains(x.keys, k) && x.live() {
			return x, true
		}
	}
	return nil, false
}

// has reports whether a live action is bound to key k.
func (a *keyActions) has(k string) bool {
	_, ok := a.match(keyPress(k))
	return ok
}

// hints returns the footer's key hints ("enter open", "f faults"), in
// registration order; the help hint is last so that the footer can keep
// it when it cuts the others.
func (a *keyActions) hints() []string {
	if a == nil {
		return nil
	}
	var out []string
	var help string
	for i := range a.list {
		x := &a.list[i]
		if x.short == "" || !x.live() {
			continue
		}
		k := x.label
		if k == "" {
			k = x.keys[0]
		}
		h := k + " " + x.short
		if x.short == "help" {
			help = h
			continue
		}
		out = append(out, h)
	}
	if help != "" {
		out = append(out, help)
	}
	return out
}

// helpLines lists every registered action for the help view (those that
// apply only in some states too: the help documents the view): keys, then
// what they do.
func (a *keyActions) helpLines() [][2]string {
	if a == nil {
		return nil
	}
	out := make([][2]string, 0, len(a.list))
	for i := range a.list {
		x := &a.list[i]
		if x.desc == "" {
			continue
		}
		out = append(out, [2]string{x.keyLabel(), x.desc})
	}
	return out
}

// keyPress builds the key press whose String() is name, for has().
func keyPress(name string) tea.KeyPressMsg {
	switch name {
	case "enter":
		return tea.KeyPressMsg{Code: tea.KeyEnter}
	case "esc":
		return tea.KeyPressMsg{Code: tea.KeyEscape}
	case "space":
		return tea.KeyPressMsg{Code: tea.KeySpace, Text: " "}
	case "tab":
		return tea.KeyPressMsg{Code: tea.KeyTab}
	case "backspace":
		return tea.KeyPressMsg{Code: tea.KeyBackspace}
	}
	r := []rune(name)
	return tea.KeyPressMsg{Code: r[0], Text: name}
}

// Common actions. Each component registers those that apply to it; the
// constructors keep their keys and wording the same everywhere.

// moveActions are the cursor (or scroll) keys of a list whose page is
// page() lines; step moves by delta (±1<<30 for the ends).
func moveActions(page func() int, step func(delta int)) []action {
	return []action{
		{keys: []string{"up", "k"}, label: "↑/k", desc: "move up", do: func(tea.KeyPressMsg) tea.Cmd { step(-1); return nil }},
		{keys: []string{"down", "j"}, label: "↓/j", desc: "move down", do: func(tea.KeyPressMsg) tea.Cmd { step(1); return nil }},
		{keys: []string{"pgup", "ctrl+b"}, label: "pgup/ctrl+b", desc: "page up", do: func(tea.KeyPressMsg) tea.Cmd { step(-page()); return nil }},
		{keys: []string{"pgdown", "ctrl+f"}, label: "pgdn/ctrl+f", desc: "page down", do: func(tea.KeyPressMsg) tea.Cmd { step(page()); return nil }},
		{keys: []string{"home", "g"}, label: "g/home", desc: "first row", do: func(tea.KeyPressMsg) tea.Cmd { step(-1 << 30); return nil }},
		{keys: []string{"end", "G"}, label: "G/end", desc: "last row", do: func(tea.KeyPressMsg) tea.Cmd { step(1 << 30); return nil }},
	}
}

// quitAction is the quit action: ctrl+c everywhere (the console handles it
// before any component), and q where q is not text. It asks first while
// runs of this console are live.
func (s *shared) quitAction(alsoQ bool) action {
	a := action{keys: []string{"ctrl+c"}, desc: "quit (asks first while this console's runs are live: quitting cancels them)",
		do: func(tea.KeyPressMsg) tea.Cmd { return s.quit() }}
	if alsoQ {
		a.keys, a.label = []string{"q", "ctrl+c"}, "q/ctrl+c"
	}
	return a
}

// helpAction opens the help of component c: ? where ? is not text, f1
// everywhere.
func (s *shared) helpAction(c component, alsoQuestion bool) action {
	a := action{keys: []string{"f1"}, short: "help", desc: "help: the keys of this view",
		do: func(tea.KeyPressMsg) tea.Cmd { s.push(newHelpView(s, c)); return nil }}
	if alsoQuestion {
		a.keys, a.label = []string{"?", "f1"}, "?"
	}
	return a
}

// commandAction opens the ":" prompt.
func (s *shared) commandAction() action {
	return action{keys: []string{":"}, short: "cmd", desc: "command (:nodes :roles :groups :events :alerts :runs :locks :dc :q)",
		do: func(tea.KeyPressMsg) tea.Cmd { s.openCommand(); return nil }}
}

// backAction leaves the component on top (esc).
func (s *shared) backAction(desc string) action {
	return action{keys: []string{"esc"}, short: "back", desc: desc, when: func() bool { return len(s.stack) > 1 },
		do: func(tea.KeyPressMsg) tea.Cmd { s.pop(); return nil }}
}

// viewActions are what every view that is not a text entry has: back,
// the command prompt, help and quit.
func (s *shared) viewActions(c component, back string) []action {
	return []action{s.backAction(back), s.commandAction(), s.helpAction(c, true), s.quitAction(true)}
}
