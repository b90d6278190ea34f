package tui

import (
	"strings"
	"time"

	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
)

// Overlays take the keys and the footer while they are open, over the view
// on top: the one-line prompt ("/" filter or search, ":" command, "@" jump
// to a time) and the y/n question.

// promptKind is what a prompt is for.
type promptKind byte

const (
	// promptFilter filters a table as typed.
	promptFilter promptKind = iota
	// promptSearch searches the run output or the logs as typed.
	promptSearch
	// promptCommand runs a ":" command on enter.
	promptCommand
	// promptJump moves the Logs view to a time on enter.
	promptJump
	// promptReason asks the reason of an operator's request; its label
	// (promptHooks.label) says what is asked.
	promptReason
)

// promptHooks connect a prompt to the view it edits: change runs as the
// text changes, enter when it is applied, cancel when esc abandons it.
type promptHooks struct {
	// label starts a promptReason's line.
	label  string
	change func(text string)
	enter  func(text string) tea.Cmd
	cancel func()
}

// prompt is the one-line editor of the footer, a bubbles textinput (the
// console draws it itself, in its own styles, and sanitises what it
// shows: a drilled-down filter can hold a raw Consul name).
type prompt struct {
	base
	kind  promptKind
	in    textinput.Model
	hooks promptHooks
}

// newTextInput returns a focused textinput as the console uses it: no
// blinking virtual cursor (no timers), no system clipboard reads, no
// suggestions (tab and the arrows mean something in the form).
func newTextInput(value string) textinput.Model {
	in := textinput.New()
	in.SetVirtualCursor(false)
	st := in.Styles()
	st.Cursor.Blink = false
	in.SetStyles(st)
	in.Prompt = ""
	km := &in.KeyMap
	km.Paste.SetEnabled(false)
	km.AcceptSuggestion.SetEnabled(false)
	km.NextSuggestion.SetEnabled(false)
	km.PrevSuggestion.SetEnabled(false)
	in.SetValue(value)
	in.CursorEnd()
	_ = in.Focus() // nil: the cursor does not blink
	return in
}

// editText hands a key press or a paste to in, sanitised first: what is
// typed or pasted is shown back, and a terminal paste can carry escape
// sequences. It reports whether the value changed.
func editText(in *textinput.Model, msg tea.Msg) bool {
	before := in.Value()
	switch msg := msg.(type) {
	case tea.KeyPressMsg:
		if msg.Text != "" {
			if msg.Mod&^tea.ModShift != 0 {
				return false // alt+x and the like are not text
			}
			msg.Text = sanitize(msg.Text)
			if msg.Text == "" {
				return false
			}
		}
		*in, _ = in.Update(msg)
	case tea.PasteMsg:
		*in, _ = in.Update(tea.PasteMsg{Content: sanitize(msg.Content)})
	}
	return in.Value() != before
}

// newPrompt returns a prompt of kind k starting with text.
func newPrompt(s *shared, k promptKind, text string, hooks promptHooks) *prompt {
	p := &prompt{base: base{s: s}, kind: k, in: newTextInput(text), hooks: hooks}
	p.acts = s.register(
		action{keys: []string{"enter"}, short: "apply", desc: "apply (a command runs, a filter stays)", do: func(tea.KeyPressMsg) tea.Cmd {
			s.closeOverlay()
			if p.hooks.enter != nil {
				return p.hooks.enter(p.in.Value())
			}
			return nil
		}},
		action{keys: []string{"esc"}, short: "cancel", desc: "cancel (a filter or search returns to what it was)", do: func(tea.KeyPressMsg) tea.Cmd {
			s.closeOverlay()
			if p.hooks.cancel != nil {
				p.hooks.cancel()
			}
			return nil
		}},
		// Backspace on an empty prompt leaves it, as in k9s and vim.
		action{keys: []string{"backspace", "ctrl+h"}, label: "backspace", desc: "on an empty prompt: close it", when: func() bool { return p.in.Value() == "" },
			do: func(tea.KeyPressMsg) tea.Cmd { s.closeOverlay(); return nil }},
		action{keys: []string{"ctrl+u", "ctrl+w"}, label: "ctrl+u/w", desc: "clear / delete a word (←/→, home/end move; paste works)",
			do: func(msg tea.KeyPressMsg) tea.Cmd { p.edit(msg); return nil }},
		s.quitAction(false),
	)
	return p
}

func (p *prompt) title() string { return "prompt" }

// update edits the text.
func (p *prompt) update(msg tea.Msg) tea.Cmd {
	switch msg.(type) {
	case tea.KeyPressMsg, tea.PasteMsg:
		p.edit(msg)
	}
	return nil
}

// edit applies msg to the text and tells the view it changed.
func (p *prompt) edit(msg tea.Msg) {
	if editText(&p.in, msg) && p.hooks.change != nil {
		p.hooks.change(p.in.Value())
	}
}

// label is what the prompt line starts with.
func (p *prompt) label() string {
	switch p.kind {
	case promptCommand:
		return ":"
	case promptJump:
		return "jump to (10:02, 10:02:13, RFC3339, -5m, now): "
	case promptReason:
		return p.hooks.label
	}
	return "/"
}

// view draws the prompt line: the label, the text with the cursor, and
// the keys when they fit.
func (p *prompt) view(_ time.Time, line func(string)) {
	line(renderInput(&p.s.st, p.label(), &p.in, p.w, strings.Join(p.acts.hints(), "  ")))
}

// renderInput draws a one-line text input of width w: label, text with a
// reverse-video cursor, and hints right of it when they fit. The end of a
// long text stays visible.
func renderInput(st *styles, label string, in *textinput.Model, w int, hints string) string {
	runes := []rune(in.Value())
	pos := min(in.Position(), len(runes))
	before := label + sanitize(string(runes[:pos]))
	cur, after := " ", ""
	if pos < len(runes) {
		cur = sanitize(string(runes[pos : pos+1]))
		if cur == "" {
			cur = " "
		}
		after = sanitize(string(runes[pos+1:]))
	}
	bw, cw := cellWidth(before), cellWidth(cur)
	if bw+cw > w {
		before = ansi.TruncateLeft(before, bw+cw-w+1, ellipsis)
		bw = cellWidth(before)
	}
	aw := cellWidth(after)
	if bw+cw+aw > w {
		after = truncate(after, aw, max(w-bw-cw, 0))
		aw = cellWidth(after)
	}
	out := st.render(st.prompt, before) + st.render(st.cursor, cur) + st.render(st.prompt, after)
	if used := bw + cw + aw; hints != "" && used+4+cellWidth(hints) <= w {
		out += strings.Repeat(" ", w-used-cellWidth(hints)) + st.render(st.dim, hints)
	}
	return out
}

// inputText renders a text input inside a line of text: its value with a
// caret at the cursor, plain (the line's own style applies).
func inputText(in *textinput.Model) string {
	runes := []rune(in.Value())
	pos := min(in.Position(), len(runes))
	return sanitize(string(runes[:pos])) + "▏" + sanitize(string(runes[pos:]))
}

// question is a y/n question in the footer.
type question struct {
	base
	text string
	yes  func() tea.Cmd
	// no is the footer message when the answer is no.
	no string
	// quit marks the quit question: ctrl+c while it is open quits.
	quit bool
	// runID is the run a cancel question is about (it is withdrawn when
	// the run ends meanwhile).
	runID string
}

// newQuestion registers q's keys and returns it.
func newQuestion(s *shared, q question) *question {
	p := &q
	p.s = s
	p.acts = s.register(
		action{keys: []string{"y", "Y"}, short: "yes", desc: "yes", do: func(tea.KeyPressMsg) tea.Cmd {
			s.closeOverlay()
			return p.yes()
		}},
		action{keys: []string{"n", "N", "esc", "q"}, label: "n/esc", short: "no", desc: "no", do: func(tea.KeyPressMsg) tea.Cmd {
			s.closeOverlay()
			s.setFlash(p.no, false)
			return nil
		}},
		s.quitAction(false),
	)
	return p
}

func (q *question) title() string { return "question" }

// view draws the question.
func (q *question) view(_ time.Time, line func(string)) {
	line(q.s.st.render(q.s.st.bad, fitLine(q.text, q.w)))
}
