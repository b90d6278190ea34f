package tui

import (
	"time"

	tea "charm.land/bubbletea/v2"
)

// The console is a stack of components, one per view (Nodes, Roles,
// Groups, Events, Runs, Locks, Node detail, Run, Launch form, Preview,
// Logs, Log entry, Failure detail, Help), plus at most one overlay that
// takes the keys and the footer while it is open (the "/" ":" "@" prompt,
// a y/n question). Like soft-serve's common.Component, each component has
// its own update, view, actions (see actions.go), help and size, and holds
// the shared context (shared.go): the console's context, clock, size,
// styles, read-only flag, footer message, snapshot, marks, and the runs
// and logs providers.
//
// The console's Update does what belongs to no view (window size,
// snapshots, the tick, the run manager's lists, ctrl+c), then hands a key
// to the overlay or the component on top (its registered actions first,
// then its update for text entry) and any other message to every
// component on the stack (each takes only messages of its own commands).
// After every message the component on top is refreshed: everything a
// frame needs is computed there, so that View changes nothing.
//
// Adding a view is one new file with the component, plus one line in
// viewRegistry (commands.go) if ":" should open it.

// component is one view of the console.
type component interface {
	// title names the view in the footer's path ("nodes", "run").
	title() string
	// keys returns the actions the component registered.
	keys() *keyActions
	// update handles a message: a key press no action took (text entry),
	// or a message of the component's own commands (others are ignored).
	update(msg tea.Msg) tea.Cmd
	// setSize gives the component the size of the body: the screen minus
	// the two header lines and the footer.
	setSize(w, h int)
	// refresh brings what the next frame shows up to date (rows,
	// layout, cursor, caches). It is called after every message while the
	// component is on top, so it must be cheap when nothing changed.
	refresh()
	// view draws the body through line, at most h lines of at most w
	// cells each. It changes nothing.
	view(now time.Time, line func(string))
	// status is the component's part of the footer's left side: filter,
	// sort, position.
	status() string
	// helpExtra returns the help's sections beyond the actions (the
	// filter language, the commands).
	helpExtra() []helpSection
	// close releases what the component holds (a log stream, a prepared
	// run) when it leaves the stack.
	close()
}

// waker is a component that has work to start when it is back on top (a
// run view fetches the board it missed while covered).
type waker interface {
	wake() tea.Cmd
}

// helpSection is a titled two-column list in the help view.
type helpSection struct {
	title string
	lines [][2]string
	// keyW is the first column's width (default 14).
	keyW int
}

// base holds what every component has: the shared context, its size and
// its actions. Components embed it and override what they need.
type base struct {
	s    *shared
	w, h int
	acts *keyActions
}

func (b *base) keys() *keyActions        { return b.acts }
func (b *base) update(tea.Msg) tea.Cmd   { return nil }
func (b *base) setSize(w, h int)         { b.w, b.h = w, h }
func (b *base) refresh()                 {}
func (b *base) status() string           { return "" }
func (b *base) helpExtra() []helpSection { return nil }
func (b *base) close()                   {}

// Stack operations.

// top returns the component on top of the stack.
func (s *shared) top() component { return s.stack[len(s.stack)-1] }

// focus returns what takes the keys: the overlay, or the top component.
func (s *shared) focus() component {
	if s.overlay != nil {
		return s.overlay
	}
	return s.top()
}

// push shows c on top of the current view.
func (s *shared) push(c component) {
	c.setSize(s.width, s.bodyHeight())
	s.stack = append(s.stack, c)
}

// pop returns to the previous view, closing the top one; the root view
// stays.
func (s *shared) pop() bool {
	if len(s.stack) <= 1 {
		return false
	}
	n := len(s.stack) - 1
	s.stack[n].close()
	s.stack[n] = nil
	s.stack = s.stack[:n]
	return true
}

// popTo pops until c is on top (nothing when c is not on the stack).
func (s *shared) popTo(c component) {
	for i := range s.stack {
		if s.stack[i] == c {
			for len(s.stack) > i+1 {
				s.pop()
			}
			return
		}
	}
}

// switchTo makes c the root. A ":" view command starts over rather than
// stacking, so the stack only holds drill-downs and esc always goes back
// along the path the user drilled.
func (s *shared) switchTo(c component) {
	for _, v := range s.stack {
		v.close()
	}
	s.overlay = nil
	c.setSize(s.width, s.bodyHeight())
	s.stack = []component{c}
}

// onStack reports whether c is on the stack.
func (s *shared) onStack(c component) bool {
	for _, v := range s.stack {
		if v == c {
			return true
		}
	}
	return false
}

// openOverlay gives the keys and the footer to o until it closes.
func (s *shared) openOverlay(o component) {
	o.setSize(s.width, 1)
	s.overlay = o
}

// closeOverlay closes the overlay.
func (s *shared) closeOverlay() { s.overlay = nil }

// bodyHeight is the height of a component's body: the screen minus two
// header lines and the footer.
func (s *shared) bodyHeight() int { return max(s.height-3, 1) }

// resize gives every component the new size.
func (s *shared) resize(w, h int) {
	s.width, s.height = max(w, 1), max(h, 1)
	for _, c := range s.stack {
		c.setSize(s.width, s.bodyHeight())
	}
	if s.overlay != nil {
		s.overlay.setSize(s.width, 1)
	}
}
