package tui

import (
	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
)

// keyMap is the console's key map. The help view is generated from it, so
// a binding added here documents itself.
type keyMap struct {
	Up, Down, PageUp, PageDown, Home, End key.Binding
	Enter, Back                           key.Binding
	Filter, Command                       key.Binding
	Sort, Reverse, Faults                 key.Binding
	Mark, MarkAll, Unmark                 key.Binding
	Help, Quit                            key.Binding
	// Runs. Run, Cancel, Rerun and RerunFailed are dangerous: read-only
	// mode leaves them unbound.
	Run, Cancel, Rerun, RerunFailed key.Binding
	Pane, NextMatch, PrevMatch      key.Binding
	// Logs: Logs opens them from a node, event, role or group; the rest
	// act in the Logs view (Copy also in an expanded entry).
	Logs, Follow, Level, Wrap, TimeMode, Window key.Binding
	JumpTime, Incident, NextError, PrevError    key.Binding
	Copy, Save                                  key.Binding
}

// newKeyMap returns the default key map. In read-only mode the dangerous
// actions (launching, cancelling, re-running playbooks) are unbound: they
// do nothing and the help does not list them.
func newKeyMap(readOnly bool) keyMap {
	k := keyMap{
		Up:       key.NewBinding(key.WithKeys("up", "k"), key.WithHelp("↑/k", "move up")),
		Down:     key.NewBinding(key.WithKeys("down", "j"), key.WithHelp("↓/j", "move down")),
		PageUp:   key.NewBinding(key.WithKeys("pgup", "ctrl+b"), key.WithHelp("pgup/ctrl+b", "page up")),
		PageDown: key.NewBinding(key.WithKeys("pgdown", "ctrl+f"), key.WithHelp("pgdn/ctrl+f", "page down")),
		Home:     key.NewBinding(key.WithKeys("home", "g"), key.WithHelp("g/home", "first row")),
		End:      key.NewBinding(key.WithKeys("end", "G"), key.WithHelp("G/end", "last row")),
		Enter:    key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "drill down (role/group → nodes, node/event → detail)")),
		Back:     key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "back (or clear the filter)")),
		Filter:   key.NewBinding(key.WithKeys("/"), key.WithHelp("/", "filter rows")),
		Command:  key.NewBinding(key.WithKeys(":"), key.WithHelp(":", "command (:nodes :roles :groups :events :runs :dc :q)")),
		Sort:     key.NewBinding(key.WithKeys("s"), key.WithHelp("s", "sort by next column")),
		Reverse:  key.NewBinding(key.WithKeys("S"), key.WithHelp("S", "reverse sort order")),
		Faults:   key.NewBinding(key.WithKeys("f"), key.WithHelp("f", "toggle faults only (hide passing)")),
		Mark:     key.NewBinding(key.WithKeys("space"), key.WithHelp("space", "mark/unmark the node (for bulk actions)")),
		MarkAll:  key.NewBinding(key.WithKeys("M"), key.WithHelp("M", "mark every node shown (filter first)")),
		Unmark:   key.NewBinding(key.WithKeys("U"), key.WithHelp("U", "clear all marks")),
		Help:     key.NewBinding(key.WithKeys("?"), key.WithHelp("?", "toggle help")),
		Quit:     key.NewBinding(key.WithKeys("q", "ctrl+c"), key.WithHelp("q/ctrl+c", "quit")),

		Run:         key.NewBinding(key.WithKeys("r"), key.WithHelp("r", "run a playbook on the node, marked nodes, role or group (form, preview)")),
		Cancel:      key.NewBinding(key.WithKeys("c"), key.WithHelp("c", "cancel the run (runs, run view; asks y/n)")),
		Rerun:       key.NewBinding(key.WithKeys("R"), key.WithHelp("R", "re-run with the same settings (preview first)")),
		RerunFailed: key.NewBinding(key.WithKeys("F"), key.WithHelp("F", "re-run on failed and unreachable hosts only (preview first)")),
		Pane:        key.NewBinding(key.WithKeys("tab"), key.WithHelp("tab", "run view: switch pane (hosts, tasks, output)")),
		NextMatch:   key.NewBinding(key.WithKeys("n"), key.WithHelp("n", "next search match (run output, logs; search with /)")),
		PrevMatch:   key.NewBinding(key.WithKeys("N"), key.WithHelp("N", "previous search match")),

		Logs:      key.NewBinding(key.WithKeys("l"), key.WithHelp("l", "logs around the node's last warning/critical, event, role, group")),
		Follow:    key.NewBinding(key.WithKeys("p"), key.WithHelp("p", "logs: pause / follow (paused keeps receiving: N new)")),
		Level:     key.NewBinding(key.WithKeys("v"), key.WithHelp("v", "logs: severity floor (all, ≥INFO, ≥WARN, ≥ERR)")),
		Wrap:      key.NewBinding(key.WithKeys("w"), key.WithHelp("w", "logs: wrap long lines")),
		TimeMode:  key.NewBinding(key.WithKeys("t"), key.WithHelp("t", "logs: timestamps UTC, local, relative to the incident")),
		Window:    key.NewBinding(key.WithKeys("1", "2", "3", "4", "5", "6", "7", "8", "9", "0"), key.WithHelp("0-9", "logs: window ±1m 5m 15m 30m 1h 3h 6h 12h 24h; 0 live from now")),
		JumpTime:  key.NewBinding(key.WithKeys("@"), key.WithHelp("@", "logs: jump to a time (10:02, 10:02:13, RFC3339, -5m, now)")),
		Incident:  key.NewBinding(key.WithKeys("i"), key.WithHelp("i", "logs: jump to the incident marker")),
		NextError: key.NewBinding(key.WithKeys("e"), key.WithHelp("e", "logs: next error (ERROR or worse)")),
		PrevError: key.NewBinding(key.WithKeys("E"), key.WithHelp("E", "logs: previous error")),
		Copy:      key.NewBinding(key.WithKeys("y"), key.WithHelp("y", "logs: copy the entry as JSON (OSC 52, works over SSH)")),
		Save:      key.NewBinding(key.WithKeys("ctrl+s"), key.WithHelp("ctrl+s", "logs: save the entries shown to a file")),
	}
	if readOnly {
		for _, b := range []*key.Binding{&k.Run, &k.Cancel, &k.Rerun, &k.RerunFailed} {
			b.SetEnabled(false)
		}
	}
	return k
}

// groups returns the bindings in the order the help view lists them.
func (k keyMap) groups() []keyGroup {
	return []keyGroup{
		{"Move", []key.Binding{k.Up, k.Down, k.PageUp, k.PageDown, k.Home, k.End}},
		{"Navigate", []key.Binding{k.Enter, k.Back, k.Command, k.Help, k.Quit}},
		{"Rows", []key.Binding{k.Filter, k.Sort, k.Reverse, k.Faults}},
		{"Marks", []key.Binding{k.Mark, k.MarkAll, k.Unmark}},
		{"Runs", []key.Binding{k.Run, k.Cancel, k.Rerun, k.RerunFailed, k.Pane, k.NextMatch, k.PrevMatch}},
		{"Logs (enter expands an entry, / searches)", []key.Binding{k.Logs, k.Follow, k.Level, k.Wrap, k.TimeMode, k.Window,
			k.JumpTime, k.Incident, k.NextError, k.PrevError, k.Copy, k.Save}},
	}
}

// shortHelp returns the few bindings shown in the footer, each with a
// one-word label (the full description is in the help view).
func (k keyMap) shortHelp() []shortBinding {
	return []shortBinding{
		{b: k.Enter, label: "open"}, {b: k.Back, label: "back"}, {b: k.Filter, label: "filter"},
		{b: k.Command, label: "cmd"}, {b: k.Sort, label: "sort"}, {b: k.Faults, label: "faults"},
		{b: k.Run, label: "run"}, {b: k.Logs, label: "logs"}, {b: k.Help, label: "help"},
	}
}

// logsShortHelp is the footer's key list in the Logs view.
func (k keyMap) logsShortHelp() []shortBinding {
	return []shortBinding{
		{b: k.Follow, label: "follow"}, {b: k.Filter, label: "search"}, {b: k.Level, label: "level"},
		{b: k.Window, label: "window", key: "0-9"}, {b: k.Enter, label: "expand"}, {b: k.Copy, label: "copy"},
		{b: k.Back, label: "back"}, {b: k.Help, label: "help"},
	}
}

// entryShortHelp is the footer's key list in an expanded log entry.
func (k keyMap) entryShortHelp() []shortBinding {
	return []shortBinding{
		{b: k.Down, label: "scroll"}, {b: k.Copy, label: "copy"}, {b: k.Back, label: "back"}, {b: k.Help, label: "help"},
	}
}

// step is how far a movement key moves a cursor in a list whose page is h
// lines (±1<<30 for home and end), and false for any other key. Every list
// (tables, the run view's panes, the Logs view) moves through it.
func (k *keyMap) step(msg tea.KeyPressMsg, h int) (int, bool) {
	switch {
	case key.Matches(msg, k.Up):
		return -1, true
	case key.Matches(msg, k.Down):
		return 1, true
	case key.Matches(msg, k.PageUp):
		return -h, true
	case key.Matches(msg, k.PageDown):
		return h, true
	case key.Matches(msg, k.Home):
		return -1 << 30, true
	case key.Matches(msg, k.End):
		return 1 << 30, true
	}
	return 0, false
}

// shortBinding is a binding with its footer label.
type shortBinding struct {
	b     key.Binding
	label string
	// key replaces the binding's first key in the footer ("0-9").
	key string
}

// keyGroup is a titled set of bindings in the help view.
type keyGroup struct {
	title    string
	bindings []key.Binding
}
