package tui

import (
	"strconv"
	"strings"

	"github.com/fleetdeck/fleetdeck/fleet"
	"github.com/fleetdeck/fleetdeck/provision"
)

// groupsKind is the Groups view: a row per autoscaling group, with joins
// and leaves over the last groupWindow (rebuilt every second while shown:
// the window slides).
func groupsKind() *tableKind {
	return &tableKind{name: "groups", cols: groupColumns, rows: (*shared).groupRows, nameField: fieldGroup, tick: true,
		actions: func(t *tableView) []action {
			return summaryActions(t, provision.ScopeGroup, "group", func(n *fleet.Node, id string) bool { return n.Group == id })
		}}
}

// Groups view: column indexes that are not counts.
const (
	gcName   = 0
	gcDCs    = 6
	gcZones  = 7
	gcJoins  = 8
	gcLeaves = 9
)

// groupColumns returns the groups table's columns.
func groupColumns() []column {
	cols := []column{{title: "GROUP", min: 10, max: 32, flex: true, prio: 100}}
	cols = append(cols, countColumns("SIZE")...)
	cols[2].title = "HEALTHY"
	return append(cols,
		column{title: "DCS", min: 4, max: 20, flex: true, prio: 30},
		column{title: "ZONES", min: 6, max: 30, flex: true, prio: 40},
		column{title: "JOINS", min: 6, max: 7, right: true, prio: 50, sortBy: sortNum, descFirst: true},
		column{title: "LEAVES", min: 7, max: 7, right: true, prio: 50, sortBy: sortNum, descFirst: true},
	)
}

// groupRows returns a row per autoscaling group in scope, with joins and
// leaves counted over the last groupWindow.
func (s *shared) groupRows() []*row {
	groups := s.scope.Groups(s.now().Add(-groupWindow))
	rows := make([]*row, len(groups))
	for i, g := range groups {
		cells := append([]string{g.Name}, countCells(g.Counts, s.healthLoading())...)
		cells = append(cells,
			strings.Join(g.Datacenters, ","),
			strings.Join(g.Zones, ","),
			"+"+strconv.Itoa(g.Joins),
			"-"+strconv.Itoa(g.Leaves),
		)
		r := newRow(g.Name, cells)
		r.nums = countNums(g.Counts, 1, len(cells))
		r.nums[gcJoins], r.nums[gcLeaves] = g.Joins, g.Leaves
		r.health = g.Worst()
		r.name, r.group = r.cells[gcName], r.cells[gcName]
		rows[i] = r
	}
	return rows
}
