package tui

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/fleetdeck/fleetdeck/fleet"
)

// The table renders only the rows in the visible window: View costs the
// same with 10 rows or 10,000. Each row keeps its sanitised cells and their
// widths, and caches its rendered line for the layout it was last drawn
// with, so an unchanged row costs one string concatenation per frame.

// column describes one table column.
type column struct {
	title string
	// min and max bound the width the column gets; flex columns shrink
	// towards min before lower-priority columns are dropped.
	min, max int
	flex     bool
	// prio orders dropping on narrow terminals: lowest goes first.
	prio int
	// right aligns numbers.
	right bool
	// hideEmpty drops the column while no row shown has anything in it
	// (the Nodes view's STATE in a fleet whose roles fleetdeck does not
	// manage).
	hideEmpty bool
	// words cuts a long cell between words (a queue reason, a scope), so
	// that no word is shown half.
	words bool
	// sortBy says how the column sorts; descFirst makes the first press of
	// the sort key sort descending (worst health, biggest count first).
	sortBy    sortKind
	descFirst bool
}

// sortKind selects the comparison used when sorting by a column.
type sortKind uint8

const (
	sortText sortKind = iota
	sortNum
	sortHealth
	sortTime
	// sortAddr orders IP addresses numerically (10.0.0.9 before
	// 10.0.0.10); anything that is not an address sorts after, as text.
	sortAddr
)

// row is one table row. Rows for nodes are cached per *fleet.Node and
// reused while the node's pointer is unchanged.
type row struct {
	// id identifies the row across snapshots, to keep the cursor on it.
	id     string
	cells  []string
	widths []int
	// nums holds numeric sort keys for sortNum columns (by column index).
	nums []int
	// addr is the parsed address for sortAddr columns (invalid when the
	// cell holds none); parsed once per row, not per comparison.
	addr   netip.Addr
	health fleet.Health
	// style, when set, replaces the health colour (run and host states
	// health has no colour for).
	style string
	// changedAt drives the "just changed" highlight (zero: never).
	changedAt time.Time
	// search is the lowercased text free-text filter terms search.
	search string
	// name, dc and group are what summary filters test.
	name, dc, group string
	node            *fleet.Node
	// keys holds a node's lowercased fields for field filter terms, so
	// filtering compares strings in the row instead of chasing pointers
	// through the node (zero for other rows).
	keys  nodeKeys
	event *fleet.Event
	// runID is, for a host lock, the run that holds it.
	runID string
	// state is a node row's desired-state label (roles.State; "" for
	// unmanaged), kept up to date by recomputeStates.
	state string
	// filterable is set once a node row's search text and keys are built
	// (filterKeys): the first screen of 10,000 nodes does not wait for
	// what only a filter needs.
	filterable bool

	// seen is the cache sweep generation that last found the row's node.
	seen uint64

	// line caches the row rendered for layout lineLayout.
	lineLayout uint64
	line       string
}

// newRow builds a row from raw (unsanitised) cell texts.
func newRow(id string, raw []string) *row {
	r := newRowCells(id, raw)
	r.search = cellsSearch(r.cells)
	return r
}

// newRowCells builds a row's sanitised cells and widths, without the
// search text (a node row builds it when a filter first needs it).
func newRowCells(id string, raw []string) *row {
	r := &row{id: id, cells: make([]string, len(raw)), widths: make([]int, len(raw))}
	for i, c := range raw {
		c = sanitize(c)
		r.cells[i] = c
		r.widths[i] = cellWidth(c)
	}
	return r
}

// cellsSearch is the lowercased text free-text filter terms search in.
func cellsSearch(cells []string) string {
	var search strings.Builder
	for _, c := range cells {
		search.WriteString(strings.ToLower(c))
		search.WriteByte('\t')
	}
	return search.String()
}

// layout is the column widths a table was fitted to. A width of 0 means
// the column is dropped. id changes whenever the widths change, which
// invalidates rendered row lines.
type layout struct {
	id     uint64
	widths []int
	width  int
}

// gutter is the three cells left of every row: a cursor marker, a mark
// marker and a "changed" marker, so no state depends on colour alone.
const gutter = 3

// fitColumns chooses widths for cols given each column's widest content
// (natural) and the space available. Columns start at their natural width
// (clamped to [min,max], at least the title); while the total is too wide,
// the widest flex column shrinks towards its min, and when nothing can
// shrink, the lowest-priority column is dropped. The first column is never
// dropped.
func fitColumns(cols []column, natural []int, avail int) []int {
	w := make([]int, len(cols))
	for i, c := range cols {
		if c.hideEmpty && natural[i] == 0 {
			continue
		}
		n := max(natural[i], cellWidth(c.title)+1) // +1: room for a sort arrow
		w[i] = min(max(n, c.min), max(c.max, cellWidth(c.title)+1))
	}
	want := slices.Clone(w)
	total := func() int {
		t, n := 0, 0
		for _, x := range w {
			if x > 0 {
				t += x
				n++
			}
		}
		return t + max(n-1, 0) // one space between columns
	}
	for {
		over := total() - avail
		if over <= 0 {
			break
		}
		// Shrink the widest flex column that can still shrink.
		best := -1
		for i, c := range cols {
			if c.flex && w[i] > c.min && (best < 0 || w[i] > w[best]) {
				best = i
			}
		}
		if best >= 0 {
			w[best] -= min(over, w[best]-cols[best].min)
			continue
		}
		// Drop the lowest-priority column still shown.
		drop := -1
		for i, c := range cols {
			if i > 0 && w[i] > 0 && (drop < 0 || c.prio < cols[drop].prio) {
				drop = i
			}
		}
		if drop < 0 {
			w[0] = max(avail, 1)
			break
		}
		w[drop] = 0
	}
	// Dropping a column can free more room than was missing: give it back
	// to the columns shrunk before, first column (the name) first.
	spare := avail - total()
	for i := range w {
		if spare <= 0 {
			break
		}
		if w[i] > 0 && w[i] < want[i] {
			d := min(spare, want[i]-w[i])
			w[i] += d
			spare -= d
		}
	}
	return w
}

// renderCells renders one row's cells for layout widths w (without the
// gutter), padded to exactly width cells.
func renderCells(cols []column, cells []string, cellWidths []int, w []int, width int) string {
	var b strings.Builder
	b.Grow(width)
	used := 0
	first := true
	for i := range cols {
		if w[i] == 0 {
			continue
		}
		if !first {
			b.WriteByte(' ')
			used++
		}
		first = false
		cell, cw := cells[i], cellWidths[i]
		if cols[i].words && cw > w[i] {
			cell = cutWords(cell, w[i])
			cw = cellWidth(cell)
		}
		b.WriteString(fit(cell, cw, w[i], cols[i].right))
		used += w[i]
	}
	if used < width {
		b.WriteString(strings.Repeat(" ", width-used))
	}
	return b.String()
}

// cutWords cuts sanitised s to at most w cells at a space, ending in an
// ellipsis; a first word longer than that is cut where it must be.
func cutWords(s string, w int) string {
	if cellWidth(s) <= w {
		return s
	}
	if w <= 1 {
		return truncate(s, cellWidth(s), w)
	}
	head := truncateTo(s, w-1)
	if i := strings.LastIndexByte(head, ' '); i > 0 {
		return strings.TrimRight(head[:i], " ") + ellipsis
	}
	return head + ellipsis
}

// headerLine renders the column titles with the sort indicator.
func headerLine(cols []column, w []int, width, sortCol int, desc bool) string {
	cells := make([]string, len(cols))
	widths := make([]int, len(cols))
	for i, c := range cols {
		t := c.title
		if i == sortCol {
			if desc {
				t += "↓"
			} else {
				t += "↑"
			}
		}
		cells[i] = t
		widths[i] = cellWidth(t)
	}
	return renderCells(cols, cells, widths, w, width)
}

// compareRows orders a and b by column col of kind k.
func compareRows(a, b *row, col int, k sortKind) int {
	switch k {
	case sortNum, sortTime:
		return cmp.Compare(a.nums[col], b.nums[col])
	case sortHealth:
		return cmp.Compare(a.health, b.health)
	case sortAddr:
		switch av, bv := a.addr.IsValid(), b.addr.IsValid(); {
		case av && bv:
			if c := a.addr.Compare(b.addr); c != 0 {
				return c
			}
		case av != bv:
			if av {
				return -1
			}
			return 1
		}
	}
	return strings.Compare(a.cells[col], b.cells[col])
}

// sortRows sorts rows by column col (stable, so the natural order breaks
// ties). col < 0 keeps the natural order.
func sortRows(rows []*row, cols []column, col int, desc bool) {
	if col < 0 || col >= len(cols) {
		return
	}
	k := cols[col].sortBy
	slices.SortStableFunc(rows, func(a, b *row) int {
		c := compareRows(a, b, col, k)
		if desc {
			return -c
		}
		return c
	})
}
