package tui

import "charm.land/bubbles/v2/key"

// keyMap is the console's key map. The help view is generated from it, so
// a binding added here documents itself.
type keyMap struct {
	Up, Down, PageUp, PageDown, Home, End key.Binding
	Enter, Back                           key.Binding
	Filter, Command                       key.Binding
	Sort, Reverse, Faults                 key.Binding
	Mark, MarkAll, Unmark                 key.Binding
	Help, Quit                            key.Binding
}

// newKeyMap returns the default key map. readOnly is accepted so that
// dangerous actions, when they exist, can be left unbound; none exist yet.
func newKeyMap(readOnly bool) keyMap {
	_ = readOnly
	return keyMap{
		Up:       key.NewBinding(key.WithKeys("up", "k"), key.WithHelp("↑/k", "move up")),
		Down:     key.NewBinding(key.WithKeys("down", "j"), key.WithHelp("↓/j", "move down")),
		PageUp:   key.NewBinding(key.WithKeys("pgup", "ctrl+b"), key.WithHelp("pgup/ctrl+b", "page up")),
		PageDown: key.NewBinding(key.WithKeys("pgdown", "ctrl+f"), key.WithHelp("pgdn/ctrl+f", "page down")),
		Home:     key.NewBinding(key.WithKeys("home", "g"), key.WithHelp("g/home", "first row")),
		End:      key.NewBinding(key.WithKeys("end", "G"), key.WithHelp("G/end", "last row")),
		Enter:    key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "drill down (role/group → nodes, node/event → detail)")),
		Back:     key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "back (or clear the filter)")),
		Filter:   key.NewBinding(key.WithKeys("/"), key.WithHelp("/", "filter rows")),
		Command:  key.NewBinding(key.WithKeys(":"), key.WithHelp(":", "command (:nodes :roles :groups :events :dc :q)")),
		Sort:     key.NewBinding(key.WithKeys("s"), key.WithHelp("s", "sort by next column")),
		Reverse:  key.NewBinding(key.WithKeys("S"), key.WithHelp("S", "reverse sort order")),
		Faults:   key.NewBinding(key.WithKeys("f"), key.WithHelp("f", "toggle faults only (hide passing)")),
		Mark:     key.NewBinding(key.WithKeys("space"), key.WithHelp("space", "mark/unmark the node (for bulk actions)")),
		MarkAll:  key.NewBinding(key.WithKeys("M"), key.WithHelp("M", "mark every node shown (filter first)")),
		Unmark:   key.NewBinding(key.WithKeys("U"), key.WithHelp("U", "clear all marks")),
		Help:     key.NewBinding(key.WithKeys("?"), key.WithHelp("?", "toggle help")),
		Quit:     key.NewBinding(key.WithKeys("q", "ctrl+c"), key.WithHelp("q/ctrl+c", "quit")),
	}
}

// groups returns the bindings in the order the help view lists them.
func (k keyMap) groups() []keyGroup {
	return []keyGroup{
		{"Move", []key.Binding{k.Up, k.Down, k.PageUp, k.PageDown, k.Home, k.End}},
		{"Navigate", []key.Binding{k.Enter, k.Back, k.Command, k.Help, k.Quit}},
		{"Rows", []key.Binding{k.Filter, k.Sort, k.Reverse, k.Faults}},
		{"Marks", []key.Binding{k.Mark, k.MarkAll, k.Unmark}},
	}
}

// shortHelp returns the few bindings shown in the footer, each with a
// one-word label (the full description is in the help view).
func (k keyMap) shortHelp() []shortBinding {
	return []shortBinding{
		{k.Enter, "open"}, {k.Back, "back"}, {k.Filter, "filter"}, {k.Command, "cmd"},
		{k.Sort, "sort"}, {k.Faults, "faults"}, {k.Help, "help"},
	}
}

// shortBinding is a binding with its footer label.
type shortBinding struct {
	b     key.Binding
	label string
}

// keyGroup is a titled set of bindings in the help view.
type keyGroup struct {
	title    string
	bindings []key.Binding
}
