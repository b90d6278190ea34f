package tui

import (
	"strconv"

	tea "charm.land/bubbletea/v2"

	"github.com/fleetdeck/fleetdeck/fleet"
	"github.com/fleetdeck/fleetdeck/provision"
)

// rolesKind is the Roles view: a row per role with its health tally.
func rolesKind() *tableKind {
	return &tableKind{name: "roles", cols: roleColumns, rows: (*shared).roleRows, nameField: fieldRole,
		actions: func(t *tableView) []action {
			return summaryActions(t, provision.ScopeRole, "role", func(n *fleet.Node, id string) bool { return n.HasRole(id) })
		}}
}

// summaryActions are the keys of a view whose rows stand for a set of
// nodes (a role, a group): enter opens the nodes, r runs on all of them, l
// shows their logs. scope names the set in runs, field in filters.
func summaryActions(t *tableView, scope provision.LaunchScope, field string, member func(n *fleet.Node, id string) bool) []action {
	s := t.s
	nodesOf := func(id string) []*fleet.Node {
		var out []*fleet.Node
		for _, n := range s.scope.Nodes {
			if member(n, id) {
				out = append(out, n)
			}
		}
		return out
	}
	return []action{
		{keys: []string{"enter"}, short: "open", desc: "the " + field + "'s nodes", when: func() bool { return t.selected() != nil },
			do: func(tea.KeyPressMsg) tea.Cmd {
				// Row ids are the raw Consul names: filters compare against
				// raw strings, not their sanitised display form.
				s.push(newNodesView(s, quoteTerm(field, t.selected().id)))
				return nil
			}},
		s.runAction("run a playbook on every node of the "+field+" in this scope (form, then preview)", func() (launchTarget, bool) {
			r := t.selected()
			if r == nil {
				return launchTarget{}, false
			}
			var targets []string
			for _, n := range nodesOf(r.id) {
				targets = append(targets, n.Key())
			}
			if len(targets) == 0 {
				s.setFlash(field+" "+r.id+" has no nodes in this scope", true)
				return launchTarget{}, false
			}
			return launchTarget{scope, r.id, targets}, true
		}),
		s.logsAction("logs of all the "+field+"'s nodes, interleaved, around their last warning/critical transition", func() (logTarget, bool) {
			r := t.selected()
			if r == nil {
				return logTarget{}, false
			}
			return logTarget{title: field + " " + r.id, nodes: nodesOf(r.id)}.withIncident(s), true
		}),
	}
}

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

// countCells renders a health tally as cells. While health is still
// loading, nodes whose health is unknown count as passing in the tally:
// the health cells then say so instead.
func countCells(c fleet.Counts, healthLoading bool) []string {
	if healthLoading {
		return []string{strconv.Itoa(c.Nodes), loadingCell, "…", "…", "…"}
	}
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
func (s *shared) roleRows() []*row {
	roles := s.scope.Roles()
	rows := make([]*row, len(roles))
	for i, ro := range roles {
		loading := s.healthLoading()
		cells := append([]string{ro.Name}, countCells(ro.Counts, loading)...)
		worst := ro.Worst().String()
		if loading {
			worst = loadingCell
		}
		cells = append(cells, worst)
		r := newRow(ro.Name, cells)
		r.nums = countNums(ro.Counts, 1, len(cells))
		r.health = ro.Worst()
		r.name = r.cells[0]
		rows[i] = r
	}
	return rows
}
