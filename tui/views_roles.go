package tui

import (
	"slices"
	"strconv"
	"strings"

	tea "charm.land/bubbletea/v2"

	"github.com/fleetdeck/fleetdeck/fleet"
	"github.com/fleetdeck/fleetdeck/provision"
	"github.com/fleetdeck/fleetdeck/roles"
)

// rolesKind is the Roles view: a row per role with its health tally.
func rolesKind() *tableKind {
	return &tableKind{name: "roles", cols: roleColumns, rows: (*shared).roleRows, nameField: fieldRole,
		actions: func(t *tableView) []action {
			acts := summaryActions(t, provision.ScopeRole, "role", func(n *fleet.Node, id string) bool { return n.HasRole(id) })
			return append(acts, t.s.rolesAction("change the roles of the role's nodes in this scope: those running it or desired to (form, preview, apply, track)",
				func() (rolesTarget, bool) { return t.s.roleTarget(t) }))
		},
		onTop: func(t *tableView) tea.Cmd { return t.s.maybeFetchRoles() },
	}
}

// roleTarget is what o changes in the Roles view: the nodes of the role
// under the cursor in scope, those running it and those whose desired
// record has it.
func (s *shared) roleTarget(t *tableView) (rolesTarget, bool) {
	r := t.selected()
	if r == nil {
		return rolesTarget{}, false
	}
	var keys []string
	for _, n := range s.scope.Nodes {
		if n.HasRole(r.id) || slices.Contains(s.rl.desired[n.Key()].Roles, r.id) {
			keys = append(keys, n.Key())
		}
	}
	if len(keys) == 0 {
		s.setFlash("role "+r.id+" has no nodes in this scope", true)
		return rolesTarget{}, false
	}
	return rolesTarget{subject: "role " + r.id + " (" + plural(len(keys), "node") + ")", nodes: keys}, true
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
	cols = append(cols, column{title: "HEALTH", min: 8, max: 11, prio: 95, sortBy: sortHealth, descFirst: true})
	// Desired vs actual, for roles fleetdeck manages: nodes whose desired
	// record has the role, and nodes whose catalog shows its managed
	// service. Blank (and hidden) when roles are not managed here.
	num := func(t string, prio int) column {
		return column{title: t, min: len(t) + 1, max: 9, right: true, prio: prio, sortBy: sortNum, descFirst: true, hideEmpty: true}
	}
	return append(cols, num("DESIRED", 88), num("ACTUAL", 87))
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
	rs := s.scope.Roles()
	desired, actual := s.roleCounts()
	rows := make([]*row, 0, len(rs))
	seen := make(map[string]bool, len(rs))
	for _, ro := range rs {
		seen[ro.Name] = true
		loading := s.healthLoading()
		cells := append([]string{ro.Name}, countCells(ro.Counts, loading)...)
		worst := ro.Worst().String()
		if loading {
			worst = loadingCell
		}
		cells = append(cells, worst)
		rows = append(rows, s.roleRow(ro.Name, cells, ro.Counts, ro.Worst(), desired, actual))
	}
	// Roles desired on nodes of this scope that no node runs yet.
	var missing []string
	for name := range desired {
		if !seen[name] {
			missing = append(missing, name)
		}
	}
	slices.Sort(missing)
	for _, name := range missing {
		cells := append([]string{name}, countCells(fleet.Counts{}, false)...)
		rows = append(rows, s.roleRow(name, append(cells, "-"), fleet.Counts{}, fleet.HealthPassing, desired, actual))
	}
	return rows
}

// roleRow builds a Roles row from its health cells and the desired and
// actual counts (nil maps: roles are not managed here, the cells stay
// blank).
func (s *shared) roleRow(name string, cells []string, c fleet.Counts, worst fleet.Health, desired, actual map[string]int) *row {
	d, a := "", ""
	if desired != nil {
		d, a = strconv.Itoa(desired[name]), strconv.Itoa(actual[name])
	}
	cells = append(cells, d, a)
	r := newRow(name, cells)
	r.nums = countNums(c, 1, len(cells))
	r.nums[len(cells)-2], r.nums[len(cells)-1] = desired[name], actual[name]
	r.health = worst
	r.name = r.cells[0]
	return r
}

// roleCounts counts per role the nodes in scope whose desired record has
// it and those whose catalog shows its managed service; nil maps when
// roles are not managed here (no service, or nothing managed at all).
func (s *shared) roleCounts() (desired, actual map[string]int) {
	if s.rl.svc == nil {
		return nil, nil
	}
	desired, actual = map[string]int{}, map[string]int{}
	for _, d := range s.rl.records {
		if s.dc != "" && d.Datacenter != s.dc {
			continue
		}
		for _, r := range d.Roles {
			desired[r]++
		}
	}
	for _, n := range s.scope.Nodes {
		for _, sv := range n.Services {
			if r, ok := strings.CutPrefix(sv.ID, roles.ServicePrefix); ok {
				actual[r]++
			}
		}
	}
	if len(desired) == 0 && len(actual) == 0 {
		return nil, nil
	}
	return desired, actual
}
