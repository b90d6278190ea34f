package tui

import (
	"strings"

	tea "charm.land/bubbletea/v2"
	"github.com/rivo/uniseg"
)

// prompt is the one-line editor of ":" command mode and "/" filter mode.
type prompt struct {
	// kind is ':' (command), '/' (filter or search) or '@' (jump to a
	// time in the Logs view).
	kind byte
	text string
	// prev is the filter in force when "/" was pressed, restored on esc.
	prev string
}

// insert appends s (already sanitised) at the end.
func (p *prompt) insert(s string) {
	p.text += s
}

// backspace deletes the last grapheme cluster, so one press removes one
// visible character even for emoji and combining sequences.
func (p *prompt) backspace() {
	if p.text == "" {
		return
	}
	var last int
	g := uniseg.NewGraphemes(p.text)
	for g.Next() {
		last, _ = g.Positions()
	}
	p.text = p.text[:last]
}

// deleteWord deletes back to the previous space (ctrl+w).
func (p *prompt) deleteWord() {
	t := strings.TrimRight(p.text, " ")
	p.text = t[:strings.LastIndexByte(t, ' ')+1]
}

// handleInput edits the prompt. Filters apply as they are typed; commands
// run on enter.
func (m *Model) handleInput(msg tea.KeyPressMsg) tea.Cmd {
	p := m.input
	switch msg.String() {
	case "ctrl+c":
		return tea.Quit
	case "esc":
		if p.kind == '/' {
			m.top().setFilter(p.prev)
		}
		m.input = nil
		return nil
	case "enter":
		m.input = nil
		switch p.kind {
		case ':':
			return m.runCommand(p.text)
		case '@':
			m.jumpLogs(p.text)
			return nil
		}
		m.top().setFilter(strings.TrimSpace(p.text))
		return nil
	case "backspace", "ctrl+h":
		if p.text == "" {
			// Backspace on an empty prompt leaves it, as in k9s and vim.
			m.input = nil
			return nil
		}
		p.backspace()
	case "ctrl+u":
		p.text = ""
	case "ctrl+w":
		p.deleteWord()
	case "space":
		p.insert(" ")
	default:
		if msg.Text != "" && msg.Mod&^tea.ModShift == 0 {
			p.insert(sanitize(msg.Text))
		}
	}
	m.inputChanged()
	return nil
}

// inputChanged applies a filter being typed to the current view.
func (m *Model) inputChanged() {
	if m.input != nil && m.input.kind == '/' {
		m.top().setFilter(m.input.text)
	}
}
