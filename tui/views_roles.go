package tui

import (
	"strconv"

	"github.com/fleetdeck/fleetdeck/fleet"
)

// countColumns are the health tally columns shared by roles and groups.
func countColumns(total string) []column {
	num := func(t string, prio int) column {
		return column{title: t, min: len(t) + 1, max: 9, right: true, prio: prio, sortBy: sortNum, descFirst: true}
	}
	return []column{num(total, 90), num("PASSING", 80), num("WARNING", 70), num("CRITICAL", 85), num("MAINT", 60)}
}

// roleColumns returns the roles table's columns.
func roleColumns() []column {
	cols := []column{{title: "ROLE", min: 10, max: 40, flex: true, prio: 100}}
	cols = append(cols, countColumns("NODES")...)
	return append(cols, column{title: "HEALTH", min: 8, max: 11, prio: 95, sortBy: sortHealth, descFirst: true})
}

// countCells renders a health tally as cells and numeric sort keys,
// starting at column index at.
func countCells(c fleet.Counts) []string {
	return []string{
		strconv.Itoa(c.Nodes), strconv.Itoa(c.Passing), strconv.Itoa(c.Warning),
		strconv.Itoa(c.Critical), strconv.Itoa(c.Maintenance),
	}
}

// countNums returns the tally as sort keys for columns at..at+4 of a row
// with n columns.
func countNums(c fleet.Counts, at, n int) []int {
	nums := make([]int, n)
	copy(nums[at:], []int{c.Nodes, c.Passing, c.Warning, c.Critical, c.Maintenance})
	return nums
}

// roleRows returns a row per role in scope, sorted by name.
func (m *Model) roleRows() []*row {
	roles := m.scope.Roles()
	rows := make([]*row, len(roles))
	for i, ro := range roles {
		cells := append([]string{ro.Name}, countCells(ro.Counts)...)
		cells = append(cells, ro.Worst().String())
		r := newRow(ro.Name, cells)
		r.nums = countNums(ro.Counts, 1, len(cells))
		r.health = ro.Worst()
		r.name = r.cells[0]
		rows[i] = r
	}
	return rows
}
