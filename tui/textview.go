package tui

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	tea "charm.land/bubbletea/v2"
)

// textView is a component that scrolls lines of text under a heading:
// the node detail, the help, a run's failure detail, an expanded log
// entry. Its lines are built for a width and rebuilt when the width
// changes (or, with live set, when the snapshot does).
type textView struct {
	base
	name string
	// heading is the line above the text.
	heading func() string
	// build renders the text for width w.
	build func(w int) []textLine
	// live rebuilds the text when the snapshot changes (a node's detail
	// follows the node), or when ver, if set, changes.
	live bool
	ver  func() uint64
	// onTop, if set, runs when the view is on top (node detail reads the
	// node's desired records and history again when they are old).
	onTop func() tea.Cmd

	lines    []textLine
	builtW   int
	builtGen uint64
	offset   int
}

// textLine is one line of a text view: sanitised text and the style it is
// drawn in.
type textLine struct {
	style string
	text  string
}

// newTextView returns a text view with the scroll keys, back, the
// command prompt, help and quit, plus extra.
func newTextView(s *shared, name string, heading func() string, build func(w int) []textLine, extra ...action) *textView {
	v := &textView{base: base{s: s}, name: name, heading: heading, build: build, builtW: -1}
	acts := moveActions(func() int { return v.page() }, v.scroll)
	acts = append(acts, extra...)
	acts = append(acts, s.viewActions(v, "back")...)
	v.acts = s.register(acts...)
	return v
}

func (v *textView) title() string { return v.name }

// page is the number of text lines shown.
func (v *textView) page() int { return max(v.h-1, 1) }

// scroll moves the text by delta lines.
func (v *textView) scroll(delta int) {
	v.offset += delta
	v.clamp()
}

func (v *textView) clamp() {
	v.offset = min(v.offset, max(len(v.lines)-v.page(), 0))
	v.offset = max(v.offset, 0)
}

// refresh rebuilds the text when the width (or, for a live view, the
// snapshot) changed.
func (v *textView) refresh() {
	gen := v.s.gen
	if v.ver != nil {
		gen = v.ver()
	}
	if v.builtW != v.w || (v.live && v.builtGen != gen) {
		v.lines = v.build(v.w)
		v.builtW, v.builtGen = v.w, gen
	}
	v.clamp()
}

// wake runs the view's onTop hook.
func (v *textView) wake() tea.Cmd {
	if v.onTop == nil {
		return nil
	}
	return v.onTop()
}

// view draws the heading and the text from the scroll position.
func (v *textView) view(_ time.Time, line func(string)) {
	st := &v.s.st
	line(st.render(st.colHeader, fitLine("  "+v.heading(), v.w)))
	end := min(v.offset+v.page(), len(v.lines))
	for _, l := range v.lines[min(v.offset, end):end] {
		line(st.render(l.style, fitLine(l.text, v.w)))
	}
}

// status is the scroll position when the text is longer than the screen.
func (v *textView) status() string {
	if len(v.lines) > v.page() {
		return " line " + strconv.Itoa(v.offset+1) + "/" + strconv.Itoa(len(v.lines))
	}
	return ""
}

// newHelpView returns the help of component c: the keys c registered
// (read-only has removed the dangerous ones), the prompt's keys when c
// opens one, the commands, and c's own sections.
func newHelpView(s *shared, c component) *textView {
	build := func(w int) []textLine {
		st := &s.st
		var out []textLine
		add := func(style, text string) { out = append(out, textLine{style: style, text: text}) }
		section := func(title string, lines [][2]string, keyW int) {
			if len(lines) == 0 {
				return
			}
			if keyW == 0 {
				keyW = 14
			}
			add(st.colHeader, title)
			for _, l := range lines {
				for i, d := range wordWrap(sanitize(l[1]), max(w-keyW-2, 10)) {
					k := ""
					if i == 0 {
						k = l[0]
					}
					add("", "  "+padCells(k, keyW)+d)
				}
			}
			add("", "")
		}
		section("Keys here ("+c.title()+")", c.keys().helpLines(), 0)
		if c.keys().has("/") || c.keys().has(":") || c.keys().has("@") {
			p := newPrompt(s, promptFilter, "", promptHooks{})
			section("In the / : @ prompt", p.keys().helpLines(), 0)
		}
		if c.keys().has(":") {
			section("Commands", commandHelp(), 0)
		}
		for _, x := range c.helpExtra() {
			section(x.title, x.lines, x.keyW)
		}
		add(st.dim, "Rows are coloured by health; > marks the cursor, + a marked node,")
		add(st.dim, "* a row that changed in the last 3 seconds.")
		add(st.dim, "esc or ? closes this help.")
		return out
	}
	v := &textView{base: base{s: s}, name: "help", heading: func() string { return "Help: " + c.title() }, build: build, builtW: -1}
	closeHelp := func(tea.KeyPressMsg) tea.Cmd { s.pop(); return nil }
	acts := moveActions(func() int { return v.page() }, v.scroll)
	acts = append(acts,
		action{keys: []string{"esc", "?"}, label: "esc/?", short: "close", desc: "close the help", do: closeHelp},
		s.commandAction(),
		s.quitAction(true),
	)
	v.acts = s.register(acts...)
	return v
}

// padCells pads s (safe text) to n cells.
func padCells(s string, n int) string {
	return fit(s, cellWidth(s), max(n, cellWidth(s)+1), false)
}

// wordWrap breaks sanitised s into lines of at most w cells between words;
// a word longer than a line (a path) breaks after a slash where it can,
// else anywhere.
func wordWrap(s string, w int) []string {
	if w <= 0 {
		return nil
	}
	if cellWidth(s) <= w {
		return []string{s}
	}
	var out []string
	var cur strings.Builder
	curW := 0
	flush := func() {
		out = append(out, strings.TrimRight(cur.String(), " "))
		cur.Reset()
		curW = 0
	}
	for _, word := range strings.Split(s, " ") {
		ww := cellWidth(word)
		if curW > 0 && curW+1+ww > w {
			flush()
		}
		for ww > w {
			// Too long for any line: break after the last slash that fits,
			// or at the width.
			head := truncateTo(word, w)
			if i := strings.LastIndexByte(head, '/'); i > 0 {
				head = head[:i+1]
			}
			if head == "" {
				_, size := utf8.DecodeRuneInString(word)
				head = word[:size]
			}
			if curW > 0 {
				flush()
			}
			out = append(out, head)
			word = word[len(head):]
			ww = cellWidth(word)
		}
		if curW > 0 {
			cur.WriteByte(' ')
			curW++
		}
		cur.WriteString(word)
		curW += ww
	}
	if curW > 0 || len(out) == 0 {
		flush()
	}
	return out
}

// truncateTo returns the longest prefix of s that is at most w cells
// (no ellipsis).
func truncateTo(s string, w int) string {
	if isPrintableASCII(s) {
		return s[:min(w, len(s))]
	}
	n := 0
	for i, r := range s {
		rw := cellWidth(string(r))
		if n+rw > w {
			return s[:i]
		}
		n += rw
	}
	return s
}
