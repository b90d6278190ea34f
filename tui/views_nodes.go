package tui

import (
	"net/netip"
	"sort"
	"strconv"
	"strings"

	tea "charm.land/bubbletea/v2"

	"github.com/fleetdeck/fleetdeck/fleet"
	"github.com/fleetdeck/fleetdeck/provision"
)

// nodesKind is the Nodes view: every node in scope, or those a drill-down
// filter selects.
func nodesKind() *tableKind {
	return &tableKind{
		name:      "nodes",
		cols:      nodeColumns,
		rows:      (*shared).nodeRows,
		nameField: fieldName,
		actions:   nodesActions,
		// The STATE column's records are read again while it is shown.
		onTop: func(t *tableView) tea.Cmd { return t.s.maybeFetchRoles() },
	}
}

// newNodesView returns a Nodes view filtered by filter.
func newNodesView(s *shared, filter string) *tableView { return newTable(s, nodesKind(), filter) }

// nodesActions are the Nodes view's own keys.
func nodesActions(t *tableView) []action {
	s := t.s
	node := func() *fleet.Node {
		if r := t.selected(); r != nil {
			return r.node
		}
		return nil
	}
	return []action{
		{keys: []string{"enter"}, short: "open", desc: "the node's detail", when: func() bool { return node() != nil },
			do: func(tea.KeyPressMsg) tea.Cmd {
				n := node()
				s.push(newDetailView(s, n.Datacenter, n.Name))
				return nil
			}},
		{keys: []string{"space"}, desc: "mark/unmark the node and move down (marks are for bulk runs)", when: func() bool { return node() != nil },
			do: func(tea.KeyPressMsg) tea.Cmd {
				k := node().Key()
				if s.marks[k] {
					delete(s.marks, k)
				} else {
					s.marks[k] = true
				}
				t.move(1)
				return nil
			}},
		{keys: []string{"M"}, desc: "mark every node shown (filter first)", do: func(tea.KeyPressMsg) tea.Cmd {
			for _, r := range t.rows {
				if r.node != nil {
					s.marks[r.node.Key()] = true
				}
			}
			return nil
		}},
		{keys: []string{"U"}, desc: "clear all marks", when: func() bool { return len(s.marks) > 0 },
			do: func(tea.KeyPressMsg) tea.Cmd { clear(s.marks); return nil }},
		s.runAction("run a playbook on the marked nodes shown here, or the node under the cursor (form, then preview)", func() (launchTarget, bool) {
			return nodesLaunchTarget(t)
		}),
		s.logsAction("logs around the node's last warning/critical transition (else now)", func() (logTarget, bool) {
			n := node()
			if n == nil {
				return logTarget{}, false
			}
			return logTarget{title: "node " + n.Name, nodes: []*fleet.Node{n}}.withIncident(s), true
		}),
		s.sshAction(node),
		s.copyAction(node),
		s.rolesAction("change the roles of the marked nodes shown here, or the node under the cursor (form, preview, apply, track)", func() (rolesTarget, bool) {
			return nodesRolesTarget(t)
		}),
		s.maintAction("maintenance on/off for the marked nodes shown here, or the node under the cursor (form, preview, apply, track)", func() (rolesTarget, bool) {
			return nodesRolesTarget(t)
		}),
	}
}

// nodesRolesTarget is what o and m change in the Nodes view: the marked
// nodes this view shows, or the node under the cursor (as r).
func nodesRolesTarget(t *tableView) (rolesTarget, bool) {
	lt, ok := nodesLaunchTarget(t)
	if !ok {
		return rolesTarget{}, false
	}
	subject := "node " + lt.subject
	if lt.scope == provision.ScopeMarked {
		subject = "the marked " + lt.subject
	}
	return rolesTarget{subject: subject, nodes: lt.targets}, true
}

// nodesLaunchTarget works out what r targets in the Nodes view: the marked
// nodes this view shows, or the node under the cursor.
func nodesLaunchTarget(t *tableView) (launchTarget, bool) {
	s := t.s
	if len(s.marks) > 0 {
		// Only the marked nodes this view shows: a mark hidden by the
		// filter or the datacenter scope must not be run on unseen.
		var targets []string
		for _, r := range t.rows {
			if r.node != nil && s.marks[r.node.Key()] {
				targets = append(targets, r.node.Key())
			}
		}
		if len(targets) == 0 {
			s.setFlash("no marked node is shown here (clear the filter, :dc all, or U to clear marks)", true)
			return launchTarget{}, false
		}
		subject := plural(len(targets), "node")
		if hidden := len(s.marks) - len(targets); hidden > 0 {
			subject += " (" + strconv.Itoa(hidden) + " more marked but not shown here: left out)"
		}
		return launchTarget{provision.ScopeMarked, subject, targets}, true
	}
	r := t.selected()
	if r == nil || r.node == nil {
		s.setFlash("no node under the cursor", true)
		return launchTarget{}, false
	}
	return launchTarget{provision.ScopeNode, r.node.Key(), []string{r.node.Key()}}, true
}

// Nodes view columns, in display order.
const (
	ncName = iota
	ncDC
	ncHealth
	ncState
	ncRoles
	ncGroup
	ncZone
	ncAddress
	ncInstance
	ncImage
	ncCount
)

// nodeColumns returns the nodes table's columns. On narrow terminals the
// low-priority columns (image, instance, zone, ...) are dropped first.
func nodeColumns() []column {
	return []column{
		ncName:   {title: "NAME", min: 12, max: 40, flex: true, prio: 100},
		ncDC:     {title: "DC", min: 3, max: 12, prio: 60},
		ncHealth: {title: "HEALTH", min: 8, max: 11, prio: 95, sortBy: sortHealth, descFirst: true},
		// The desired-state column shows only while a node shown is
		// managed (has a desired record): blank for unmanaged nodes.
		ncState:    {title: "STATE", min: 6, max: 9, prio: 92, hideEmpty: true},
		ncRoles:    {title: "ROLES", min: 10, max: 40, flex: true, prio: 90},
		ncGroup:    {title: "GROUP", min: 8, max: 24, flex: true, prio: 50},
		ncZone:     {title: "ZONE", min: 5, max: 16, prio: 30},
		ncAddress:  {title: "ADDRESS", min: 9, max: 39, prio: 40, sortBy: sortAddr},
		ncInstance: {title: "INSTANCE", min: 9, max: 22, prio: 20},
		ncImage:    {title: "IMAGE", min: 8, max: 30, flex: true, prio: 10},
	}
}

// nodeRows returns a row per node in scope, in the snapshot's order
// (datacenter, name). Rows are cached per node pointer: the watcher keeps
// an unchanged node's pointer between snapshots, so only changed nodes are
// sanitised again. Rows of nodes no longer in the snapshot are swept out
// (rows of nodes outside a :dc scope are kept, so switching back is free).
func (s *shared) nodeRows() []*row {
	s.cacheGen++
	gen := s.cacheGen
	nodes := s.scope.Nodes
	rows := make([]*row, len(nodes))
	for i, n := range nodes {
		r, ok := s.nodeCache[n]
		if !ok {
			r = nodeRow(n)
			s.rowState(r)
			s.nodeCache[n] = r
		}
		r.seen = gen
		rows[i] = r
	}
	if len(nodes) != len(s.snap.Nodes) {
		for _, n := range s.snap.Nodes {
			if r, ok := s.nodeCache[n]; ok {
				r.seen = gen
			}
		}
	}
	if len(s.nodeCache) > len(s.snap.Nodes) {
		for n, r := range s.nodeCache {
			if r.seen != gen {
				delete(s.nodeCache, n)
			}
		}
	}
	return rows
}

// nodeRow builds the row of node n: sanitised cells and the lowercased
// search text that free-text filter terms look in (every column plus
// meta and tags).
func nodeRow(n *fleet.Node) *row {
	health, roles := n.Health.String(), strings.Join(n.Roles(), ",")
	// The node list comes before the roles and the health: say they are
	// coming rather than show "passing" and no roles.
	if n.Pending&fleet.PendingHealth != 0 {
		health = loadingCell
	}
	if n.Pending&fleet.PendingRoles != 0 {
		roles = loadingCell
	}
	r := newRowCells(n.Key(), []string{
		ncName:     n.Name,
		ncDC:       n.Datacenter,
		ncHealth:   health,
		ncState:    "",
		ncRoles:    roles,
		ncGroup:    n.Group,
		ncZone:     n.Zone,
		ncAddress:  n.Address,
		ncInstance: n.InstanceID,
		ncImage:    n.Image,
	})
	r.node = n
	r.addr, _ = netip.ParseAddr(n.Address)
	r.health = n.Health
	r.changedAt = n.ChangedAt
	r.name, r.dc, r.group = r.cells[ncName], r.cells[ncDC], r.cells[ncGroup]
	return r
}

// filterKeys builds what filters test in a node row (every column, meta
// and tags for free text; the raw fields for field terms), once: rows are
// cached per node pointer, so a filter costs this only for nodes that
// changed since.
func (r *row) filterKeys() {
	if r.filterable || r.node == nil {
		return
	}
	r.filterable = true
	n := r.node
	r.keys = newNodeKeys(n)
	r.search = cellsSearch(r.cells)
	if len(n.Meta) > 0 || len(n.Services) > 0 {
		var b strings.Builder
		b.WriteString(r.search)
		keys := make([]string, 0, len(n.Meta))
		for k := range n.Meta {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			b.WriteString(strings.ToLower(sanitize(k + "=" + n.Meta[k])))
			b.WriteByte('\t')
		}
		for _, t := range n.Tags() {
			b.WriteString(strings.ToLower(sanitize(t)))
			b.WriteByte('\t')
		}
		r.search = b.String()
	}
}

// loadingCell fills a cell whose data has not been read yet.
const loadingCell = "loading…"

// nodeKeys are a node's raw fields, lowercased, as field filter terms
// compare them (raw rather than sanitised: a term typed to match a Consul
// value matches that value).
type nodeKeys struct {
	name, dc, group, zone string
	roles, tags           []string
}

// newNodeKeys lowercases the fields of n that filters test.
func newNodeKeys(n *fleet.Node) nodeKeys {
	k := nodeKeys{
		name:  strings.ToLower(n.Name),
		dc:    strings.ToLower(n.Datacenter),
		group: strings.ToLower(n.Group),
		zone:  strings.ToLower(n.Zone),
	}
	for _, r := range n.Roles() {
		k.roles = append(k.roles, strings.ToLower(r))
	}
	for _, t := range n.Tags() {
		k.tags = append(k.tags, strings.ToLower(t))
	}
	return k
}
