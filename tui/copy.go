package tui

import (
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/fleetdeck/fleetdeck/fleet"
)

// Copying a node's name, address or instance id: y opens a one-line menu
// in the footer, then n (or y again, as vim's yy) copies the name, a the
// address, i the instance id. The value goes to the clipboard through
// OSC 52 (tea.SetClipboard, as the Logs view's copy), written to the
// program's output, so it reaches the user's terminal over SSH too. The
// payload is base64, so no value can end the sequence early, and it is
// the sanitised value: a name from Consul with a newline or an escape
// sequence in it must not paste into a shell as a command.

// copyAction is y on a node row: the copy menu for node() (nil: none).
func (s *shared) copyAction(node func() *fleet.Node) action {
	return action{keys: []string{"y"}, short: "copy", desc: "copy the node's name, address or instance id: y then n (or y), a or i (OSC 52)",
		when: func() bool { return node() != nil },
		do: func(tea.KeyPressMsg) tea.Cmd {
			s.openOverlay(newCopyMenu(s, node()))
			return nil
		}}
}

// copyMenu is the footer's "copy what?" menu.
type copyMenu struct {
	base
	n *fleet.Node
}

// newCopyMenu returns the copy menu for node n.
func newCopyMenu(s *shared, n *fleet.Node) *copyMenu {
	c := &copyMenu{base: base{s: s}, n: n}
	pick := func(field string, value func(*fleet.Node) string) func(tea.KeyPressMsg) tea.Cmd {
		return func(tea.KeyPressMsg) tea.Cmd {
			s.closeOverlay()
			return s.copyNodeField(c.n, field, value(c.n))
		}
	}
	c.acts = s.register(
		action{keys: []string{"n", "y"}, label: "n/y", short: "name", desc: "copy the node's name", do: pick("name", func(n *fleet.Node) string { return n.Name })},
		action{keys: []string{"a"}, short: "address", desc: "copy the node's address", do: pick("address", func(n *fleet.Node) string { return n.Address })},
		action{keys: []string{"i"}, short: "instance", desc: "copy the node's instance id", do: pick("instance id", func(n *fleet.Node) string { return n.InstanceID })},
		action{keys: []string{"esc", "q"}, label: "esc", short: "cancel", desc: "copy nothing", do: func(tea.KeyPressMsg) tea.Cmd { s.closeOverlay(); return nil }},
		s.quitAction(false),
	)
	return c
}

func (c *copyMenu) title() string { return "copy" }

// update closes the menu on any other key: a menu that stays open after
// a stray key would swallow the next one.
func (c *copyMenu) update(msg tea.Msg) tea.Cmd {
	if _, ok := msg.(tea.KeyPressMsg); ok {
		c.s.closeOverlay()
		c.s.setFlash("copied nothing (y then n, a or i)", false)
	}
	return nil
}

// view draws the menu line.
func (c *copyMenu) view(_ time.Time, line func(string)) {
	st := &c.s.st
	head := "copy from " + sanitize(c.n.Name) + ":  "
	line(st.render(st.prompt, fitLine(head+strings.Join(c.acts.hints(), "  "), c.w)))
}

// copyNodeField puts a node's field on the clipboard, sanitised, and says
// what was copied.
func (s *shared) copyNodeField(n *fleet.Node, field, raw string) tea.Cmd {
	v := sanitize(raw)
	if v == "" {
		s.setFlash("node "+n.Name+" has no "+field+": nothing copied", true)
		return nil
	}
	msg := "copied the " + field + " " + v + " (if the terminal allows OSC 52)"
	if v != raw {
		msg = "copied the " + field + " " + v + ", control characters removed (if the terminal allows OSC 52)"
	}
	s.setFlash(msg, false)
	return tea.SetClipboard(v)
}
