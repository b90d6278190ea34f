package tui

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/fleetdeck/fleetdeck/fleet"
	"github.com/fleetdeck/fleetdeck/provision"
)

func TestNodesViewDefault(t *testing.T) {
	h := newHarness(t, synthSnapshot(300), 80, 24)
	s := h.mustContain("fleetdeck", "nodes 300", "passing 275", "warning 15", "critical 6", "maint 4",
		"connected", "NAME", "HEALTH", "ROLES", "node-00000", "nodes 1/300")
	lines := strings.Split(s, "\n")
	if len(lines) != 24 {
		t.Fatalf("screen has %d lines, want 24", len(lines))
	}
	if !strings.HasPrefix(lines[3], ">  node-00000") {
		t.Fatalf("cursor row = %q", lines[3])
	}
	// 20 rows fit between the three header lines and the footer.
	if got := len(h.rowNames()); got != 20 {
		t.Fatalf("visible rows = %d, want 20", got)
	}
}

func TestNarrowTerminalDropsColumns(t *testing.T) {
	h := newHarness(t, synthSnapshot(50), 200, 30)
	h.mustContain("IMAGE", "INSTANCE", "ZONE", "ADDRESS")
	h.w, h.h = 60, 20
	h.send(tea.WindowSizeMsg{Width: 60, Height: 20})
	s := h.screen()
	if strings.Contains(s, "IMAGE") || strings.Contains(s, "INSTANCE") {
		t.Fatalf("narrow screen kept low-priority columns:\n%s", s)
	}
	for _, want := range []string{"NAME", "HEALTH", "node-00000"} {
		if !strings.Contains(s, want) {
			t.Fatalf("narrow screen lost %q:\n%s", want, s)
		}
	}
}

func TestViewSwitching(t *testing.T) {
	h := newHarness(t, synthSnapshot(300), 100, 30)
	h.keys(":roles", "enter")
	h.mustContain("ROLE", "NODES", "PASSING", "CRITICAL", "api", "metrics", "roles 1/8")
	h.keys(":groups", "enter")
	h.mustContain("GROUP", "SIZE", "HEALTHY", "JOINS", "LEAVES", "web-asg", "worker-mig", "groups 1/4")
	h.keys(":events", "enter")
	h.mustContain("TIME", "KIND", "DETAIL", "events 0/0")
	h.keys(":nodes", "enter")
	h.mustContain("NAME", "node-00000")
	h.keys(":bogus", "enter")
	h.mustContain("unknown command: bogus")
	if len(h.m.stack) != 1 || h.m.top().title() != "nodes" {
		t.Fatalf("stack after commands = %d views, top %v", len(h.m.stack), h.m.top().title())
	}
	// esc leaves command mode without running anything.
	h.keys(":roles", "esc")
	if h.m.top().title() != "nodes" || h.m.overlay != nil {
		t.Fatal("esc in command mode must cancel")
	}
	// :q quits.
	h.keys(":q")
	if cmd := h.send(keyMsg("enter")); cmd == nil || !isQuit(cmd) {
		t.Fatal(":q must quit")
	}
}

// isQuit runs cmd (and the commands of a batch) and reports whether it
// asks the program to quit.
func isQuit(cmd tea.Cmd) bool {
	if cmd == nil {
		return false
	}
	switch msg := cmd().(type) {
	case tea.QuitMsg:
		return true
	case tea.BatchMsg:
		return slices.ContainsFunc(msg, isQuit)
	}
	return false
}

func TestQuitKeys(t *testing.T) {
	h := newHarness(t, synthSnapshot(10), 80, 24)
	for _, k := range []string{"q", "ctrl+c"} {
		if cmd := h.send(keyMsg(k)); cmd == nil || !isQuit(cmd) {
			t.Fatalf("%s must quit", k)
		}
	}
	// ctrl+c quits even while typing a filter; q is just text there.
	h.keys("/")
	if cmd := h.send(keyMsg("q")); cmd != nil {
		t.Fatal("q in the filter prompt must be text")
	}
	if cmd := h.send(keyMsg("ctrl+c")); cmd == nil || !isQuit(cmd) {
		t.Fatal("ctrl+c must quit from the prompt")
	}
}

func TestFilterInModel(t *testing.T) {
	h := newHarness(t, synthSnapshot(300), 120, 30)
	count := func() int { return len(h.table().rows) }

	h.keys("/", "role:web")
	if h.m.overlay == nil {
		t.Fatal("prompt closed early")
	}
	h.mustContain("/role:web")
	live := count()
	h.keys("enter")
	if count() != live || live != 73 {
		t.Fatalf("role:web matched %d nodes (live %d), want 73", count(), live)
	}
	h.mustContain("/role:web", "of 300")
	for _, r := range h.table().rows {
		if !r.node.HasRole("web") {
			t.Fatalf("%s has no role web", r.node.Name)
		}
	}

	// Edit: add a negated health term; the prompt starts with the filter.
	h.keys("/", " !health:passing", "enter")
	for _, r := range h.table().rows {
		if !r.node.HasRole("web") || r.node.Health == fleet.HealthPassing {
			t.Fatalf("%s should not match", r.node.Name)
		}
	}
	if count() != 7 {
		t.Fatalf("role:web !health:passing = %d, want 7", count())
	}

	// esc in the prompt restores the filter in force before.
	h.keys("/")
	h.send(tea.KeyPressMsg{Code: 'u', Mod: tea.ModCtrl})
	h.keys("zzz")
	if count() != 0 {
		t.Fatalf("live filter zzz matched %d", count())
	}
	h.mustContain("nothing matches")
	h.send(tea.KeyPressMsg{Code: 'u', Mod: tea.ModCtrl})
	h.keys("health:broken")
	h.mustContain(`nothing matches: unknown health "broken" (passing, warning, critical, maint or failing)`)
	h.keys("esc")
	if h.table().filterText != "role:web !health:passing" || count() != 7 {
		t.Fatalf("esc did not restore the filter: %q (%d rows)", h.table().filterText, count())
	}

	// meta, group, dc and free text.
	for q, want := range map[string]int{
		"meta:env=prod":         150,
		"group:web-asg":         75,
		"dc:dc2":                100,
		"node-0001":             10,
		"!dc:dc1 meta:env=prod": 50,
	} {
		h.table().setFilter("")
		h.keys("/", "ctrl+u")
		h.send(tea.KeyPressMsg{Code: 'u', Mod: tea.ModCtrl})
		h.keys(q, "enter")
		if count() != want {
			t.Errorf("filter %q matched %d, want %d", q, count(), want)
		}
	}

	// esc on the root view clears the filter.
	h.keys("esc")
	if h.table().filterText != "" || count() != 300 {
		t.Fatalf("esc on root must clear the filter, have %q", h.table().filterText)
	}
}

func TestSort(t *testing.T) {
	h := newHarness(t, synthSnapshot(300), 150, 30)
	h.keys("s") // NAME ascending (first press of a text column)
	h.mustContain("NAME↑", "sort:NAME↑")
	if got := h.rowNames()[0]; got != "node-00000" {
		t.Fatalf("name asc first = %s", got)
	}
	h.keys("S")
	h.mustContain("NAME↓")
	// The cursor stays on its node (node-00000, now last); row 0 is the
	// greatest name.
	if got := h.table().rows[0].cells[0]; got != "node-00299" {
		t.Fatalf("name desc first = %s", got)
	}
	h.keys("s", "s") // DC, then HEALTH (worst first)
	h.mustContain("HEALTH↓")
	if r := h.table().rows[0]; r.health != fleet.HealthMaintenance {
		t.Fatalf("health sort first = %v", r.health)
	}
	h.keys("S")
	if r := h.table().rows[0]; r.health != fleet.HealthPassing {
		t.Fatalf("health sort reversed first = %v", r.health)
	}
	// Cycle through the remaining columns back to the natural order.
	for range len(nodeColumns()) - 2 {
		h.keys("s")
	}
	if v := h.table(); v.sortCol != -1 {
		t.Fatalf("sort did not wrap to natural order: %d", v.sortCol)
	}
	if got := h.table().rows[0].cells[0]; got != "node-00000" {
		t.Fatalf("natural order first = %s", got)
	}

	// Numeric sort in the roles view: NODES, most first.
	h.keys(":roles", "enter", "s", "s")
	v := h.table()
	for i := 1; i < len(v.rows); i++ {
		if v.rows[i-1].nums[1] < v.rows[i].nums[1] {
			t.Fatalf("roles not sorted by node count desc: %v", h.rowNames())
		}
	}
}

func TestDrillDownAndBack(t *testing.T) {
	h := newHarness(t, synthSnapshot(300), 120, 30)
	h.keys(":roles", "enter", "j", "j") // cache
	if got := h.table().selected().id; got != "cache" {
		t.Fatalf("selected role %s", got)
	}
	h.keys("enter")
	v := h.table()
	if v.title() != "nodes" || v.filterText != "role:cache" || len(v.rows) != 73 {
		t.Fatalf("role drill-down: kind %v filter %q rows %d", v.title(), v.filterText, len(v.rows))
	}
	h.mustContain("roles › nodes /role:cache")
	h.keys("j", "enter")
	d := h.detailNode()
	if d != v.rows[1].node.Name {
		t.Fatalf("node drill-down: %v %s", h.m.top().title(), d)
	}
	h.mustContain("Node "+d, "Services (2)", "Checks (2)", "Meta (5)", "env = ", "Recent events (0)", "HTTP GET /health")
	h.keys("esc")
	if h.m.top() != component(v) || v.cursor != 1 {
		t.Fatal("esc must return to the filtered nodes with the cursor kept")
	}
	h.keys("esc")
	if h.m.top().title() != "roles" || h.table().selected().id != "cache" {
		t.Fatal("esc must return to roles on the same row")
	}
	h.keys("esc") // root: nothing to pop, no filter
	if len(h.m.stack) != 1 {
		t.Fatal("root view must stay")
	}

	h.keys(":groups", "enter", "G", "enter")
	if v := h.table(); v.filterText != "group:worker-mig" || len(v.rows) != 75 {
		t.Fatalf("group drill-down: %q %d", v.filterText, len(v.rows))
	}
}

func TestFaultsToggle(t *testing.T) {
	h := newHarness(t, synthSnapshot(300), 120, 30)
	h.keys("f")
	v := h.table()
	if len(v.rows) != 25 {
		t.Fatalf("faults only: %d rows, want 25", len(v.rows))
	}
	for _, r := range v.rows {
		if r.node.Health == fleet.HealthPassing {
			t.Fatalf("passing node %s shown in faults mode", r.node.Name)
		}
	}
	h.mustContain("[faults]", "of 300")
	h.keys(":roles", "enter")
	if n := len(h.table().rows); n != 8 { // every synthetic role has a fault
		t.Fatalf("faulty roles = %d", n)
	}
	h.keys("f")
	h.keys(":nodes", "enter")
	if n := len(h.table().rows); n != 300 {
		t.Fatalf("faults off: %d rows", n)
	}
}

func TestDatacenterScope(t *testing.T) {
	h := newHarness(t, synthSnapshot(300), 120, 30)
	h.keys(":dc dc2", "enter")
	if n := len(h.table().rows); n != 100 {
		t.Fatalf(":dc dc2 shows %d nodes", n)
	}
	h.mustContain("nodes 100", "dc dc2", "dc:dc2")
	for _, r := range h.table().rows {
		if r.node.Datacenter != "dc2" {
			t.Fatalf("node %s from %s", r.node.Name, r.node.Datacenter)
		}
	}
	want := 0
	for _, n := range h.m.snap.Nodes {
		if n.Datacenter == "dc2" {
			want += len(n.Roles())
		}
	}
	h.keys(":roles", "enter")
	total := 0
	for _, r := range h.table().rows {
		total += r.nums[1]
	}
	if total != want {
		t.Fatalf("role memberships in dc2 = %d, want %d", total, want)
	}
	h.keys(":dc nowhere", "enter")
	h.mustContain("unknown datacenter nowhere")
	if h.m.dc != "dc2" {
		t.Fatal("unknown dc must not change the scope")
	}
	h.keys(":dc all", "enter", ":nodes", "enter")
	if n := len(h.table().rows); n != 300 {
		t.Fatalf(":dc all shows %d nodes", n)
	}
	h.keys(":dc dc1", "enter", ":dc", "enter")
	if h.m.dc != "" {
		t.Fatal(":dc alone must clear the scope")
	}
}

func TestCursorStableAcrossUpdates(t *testing.T) {
	s1 := synthSnapshot(300)
	h := newHarness(t, s1, 120, 30)
	for range 40 {
		h.keys("j")
	}
	sel := h.table().selected().node
	// A new node sorts before the selected one; an unrelated node changes.
	nodes := append([]*fleet.Node(nil), s1.Nodes...)
	nodes = append(nodes, &fleet.Node{Name: "node-00000a", Datacenter: "dc1", Health: fleet.HealthPassing, ChangedAt: t0})
	for i, n := range nodes {
		if n.Name == "node-00003" {
			c := *n
			c.Health = fleet.HealthCritical
			c.ChangedAt = t0
			nodes[i] = &c
		}
	}
	h.publish(fleet.NewSnapshot(2, t0, nodes, connected(t0), nil))
	if got := h.table().selected().node; got != sel {
		t.Fatalf("cursor moved from %s to %s", sel.Name, got.Name)
	}
	if h.table().cursor != 41 {
		t.Fatalf("cursor index %d, want 41", h.table().cursor)
	}
	// The selected node leaves: the cursor stays at the same position.
	var rest []*fleet.Node
	for _, n := range nodes {
		if n != sel {
			rest = append(rest, n)
		}
	}
	h.publish(fleet.NewSnapshot(3, t0, rest, connected(t0), nil))
	if h.table().cursor != 41 || h.table().selected() == nil {
		t.Fatalf("cursor after removal at %d", h.table().cursor)
	}
}

func TestRowCachePerNodePointer(t *testing.T) {
	s1 := synthSnapshot(100)
	h := newHarness(t, s1, 120, 30)
	h.screen()
	r0 := h.m.nodeCache[s1.Nodes[0]]
	nodes := append([]*fleet.Node(nil), s1.Nodes...)
	c := *nodes[1]
	c.Health = fleet.HealthCritical
	nodes[1] = &c
	h.publish(fleet.NewSnapshot(2, t0, nodes, connected(t0), nil))
	h.screen()
	if h.m.nodeCache[s1.Nodes[0]] != r0 {
		t.Fatal("unchanged node's row was rebuilt")
	}
	if _, ok := h.m.nodeCache[s1.Nodes[1]]; ok {
		t.Fatal("replaced node's old row is still cached")
	}
	if r := h.m.nodeCache[&c]; r == nil || r.cells[ncHealth] != "critical" {
		t.Fatal("changed node has no fresh row")
	}
}

func TestChangedRowHighlight(t *testing.T) {
	s1 := synthSnapshot(30)
	h := newHarness(t, s1, 120, 30)
	h.mustNotContain(" *node-")
	nodes := append([]*fleet.Node(nil), s1.Nodes...)
	c := *nodes[2]
	c.Health = fleet.HealthCritical
	c.ChangedAt = t0.Add(time.Second)
	nodes[2] = &c
	h.clk.add(time.Second)
	h.publish(fleet.NewSnapshot(2, t0.Add(time.Second), nodes, connected(t0), nil))
	s := h.mustContain(" *" + c.Name)
	if strings.Count(s, " *node-") != 1 {
		t.Fatalf("exactly one row should be marked changed:\n%s", s)
	}
	// Colour mode also marks it bold.
	if line := h.m.renderRow(nodeColumns(), h.table().lay, h.m.nodeCache[&c], false, h.clk.t, 118); !strings.HasPrefix(line, sgrBold) {
		t.Fatalf("changed row not bold: %q", line)
	}
	h.clk.add(changedFor)
	h.send(tickMsg(h.clk.t))
	h.mustNotContain(" *node-")
}

func TestHeaderConnectionStates(t *testing.T) {
	nodes := synthNodes(10, t0)
	cases := []struct {
		name string
		conn []fleet.ConnState
		want []string
	}{
		{"connecting", nil, []string{"connecting"}},
		// The age is the time since Consul last answered (7s here: the
		// probe keeps it small on a live fleet) plus the server's lag.
		{"connected", []fleet.ConnState{{Datacenter: "dc1", Status: fleet.Connected, LastSuccess: t0, LastContact: time.Second}},
			[]string{"● connected", "data age 8s"}},
		{"stale", []fleet.ConnState{
			{Datacenter: "dc1", Status: fleet.Connected, LastSuccess: t0},
			{Datacenter: "dc2", Status: fleet.Stale, LastSuccess: t0, LastContact: 12 * time.Second, KnownLeader: false},
		}, []string{"STALE dc2", "last contact with leader 12s", "no known leader", "data age 19s"}},
		{"degraded", []fleet.ConnState{{
			Datacenter: "dc1", Status: fleet.Degraded, LastError: "watch nodes: connection refused\x1b[2J",
			NextRetry: t0.Add(10 * time.Second), LastSuccess: t0.Add(-2 * time.Minute),
		}}, []string{"DEGRADED", "watch nodes: connection refused", "retry in 3s", "last ok 2m7s ago", "last known:"}},
		{"unresponsive", []fleet.ConnState{{
			Datacenter: "dc1", Status: fleet.Unresponsive, LastError: "no answer from Consul for 9s", LastSuccess: t0.Add(-5 * time.Second),
		}}, []string{"UNRESPONSIVE", "last answer 12s ago", "showing last known data", "last known:  nodes 10"}},
		{"loading", []fleet.ConnState{{Datacenter: "dc1", Status: fleet.Connected, LastSuccess: t0, Pending: []string{"roles", "health", "check details"}}},
			[]string{"● connected", "loading roles, health, check details…", "health loading…"}},
		{"acl", []fleet.ConnState{{Datacenter: "dc1", Status: fleet.Connected, FilteredByACL: true}},
			[]string{"ACL filtered results: fleet incomplete", "connected"}},
		{"acl-anonymous", []fleet.ConnState{{Datacenter: "dc1", Status: fleet.Connected, FilteredByACL: true, AnonymousEmpty: true}},
			[]string{"Consul shows nothing without one", "CONSUL_HTTP_TOKEN"}},
		{"acl-health", []fleet.ConnState{{Datacenter: "dc1", Status: fleet.Connected, FilteredByACL: true, HealthIncomplete: true}},
			[]string{"health incomplete"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, noColor := range []bool{true, false} {
				h := newHarnessOpts(t, fleet.NewSnapshot(1, t0, append([]*fleet.Node(nil), nodes...), c.conn, nil), 160, 20, noColor)
				h.clk.add(7 * time.Second)
				h.send(tickMsg(h.clk.t))
				h.mustContain(c.want...)
			}
		})
	}
}

func TestReadOnlyMarker(t *testing.T) {
	m := New(context.Background(), Options{Feed: fleet.NewPublisher(synthSnapshot(3)), ReadOnly: true, NoColor: true, Now: func() time.Time { return t0 }})
	first := strings.SplitN(m.View().Content, "\n", 2)[0]
	if !strings.Contains(first, "RO") {
		t.Fatalf("header without RO: %q", first)
	}
}

func TestHelpFromKeyMap(t *testing.T) {
	h := newHarness(t, synthSnapshot(10), 100, 120)
	nodes := h.m.top()
	h.keys("?")
	s := h.mustContain("Help", ":dc NAME", "meta:key=value", "!term")
	// Long descriptions wrap: compare with the whitespace collapsed.
	flat := strings.Join(strings.Fields(s), " ")
	lines := nodes.keys().helpLines()
	if len(lines) < 15 {
		t.Fatalf("the nodes view registered %d actions with help", len(lines))
	}
	for _, l := range lines {
		if !strings.Contains(s, l[0]) || !strings.Contains(flat, strings.Join(strings.Fields(l[1]), " ")) {
			t.Fatalf("help lacks binding %q %q", l[0], l[1])
		}
	}
	h.keys("?")
	if h.m.top().title() != "nodes" {
		t.Fatal("? must close help")
	}
	h.keys("?", "esc")
	if h.m.top().title() != "nodes" {
		t.Fatal("esc must close help")
	}
	// Help scrolls on a small terminal.
	h2 := newHarness(t, synthSnapshot(10), 80, 12)
	h2.keys("?", "G")
	h2.mustContain("esc or ? closes this help")
}

func TestEventsView(t *testing.T) {
	nodes := synthNodes(20, t0.Add(-time.Hour))
	events := []fleet.Event{
		{Seq: 1, Time: t0.Add(-10 * time.Minute), Kind: fleet.NodeJoined, Datacenter: "dc1", Node: "node-00001", Group: "api-asg"},
		{Seq: 2, Time: t0.Add(-5 * time.Minute), Kind: fleet.HealthChanged, Datacenter: "dc1", Node: "node-00003",
			CheckID: "service:web", CheckName: "http", From: fleet.HealthPassing, To: fleet.HealthCritical, Output: "HTTP 500\x1b]0;pwned\x07"},
		{Seq: 3, Time: t0.Add(-4 * time.Minute), Kind: fleet.RolesChanged, Datacenter: "dc1", Node: "node-00004", OldRoles: []string{"web"}, NewRoles: []string{"api", "web"}},
		{Seq: 4, Time: t0.Add(-3 * time.Minute), Kind: fleet.GroupSizeChanged, Datacenter: "dc1", Group: "web-asg", Before: 4, After: 5},
		{Seq: 5, Time: t0.Add(-1 * time.Minute), Kind: fleet.NodeLeft, Datacenter: "dc2", Node: "node-gone", Group: "db-mig"},
	}
	h := newHarness(t, fleet.NewSnapshot(1, t0, nodes, connected(t0), events), 140, 30)
	h.keys(":events", "enter")
	s := h.mustContain("passing → critical: check http: HTTP 500", "roles web → api,web", "group size 4 → 5",
		"node left group db-mig", "node joined group api-asg")
	if strings.Contains(s, "pwned") {
		t.Fatal("OSC payload reached the screen")
	}
	v := h.table()
	if v.rows[0].event.Seq != 5 || v.rows[4].event.Seq != 1 {
		t.Fatal("events must be newest first")
	}
	h.keys("f")
	if n := len(h.table().rows); n != 2 {
		t.Fatalf("faulty events = %d, want 2 (critical, left)", n)
	}
	h.keys("f", "/", "dc:dc1 health:critical", "enter")
	if n := len(h.table().rows); n != 1 {
		t.Fatalf("event filter matched %d", n)
	}
	h.keys("enter")
	if d := h.detailNode(); d != "node-00003" {
		t.Fatalf("event drill-down to %v %q", h.m.top().title(), d)
	}
	h.mustContain("Recent events (1)", "passing → critical: check http: HTTP 500")
	// A node that left still opens, and says it left.
	h.keys("esc", "esc", "esc")
	h.keys(":events", "enter", "enter")
	h.mustContain("is not in the current snapshot (it left)", "Recent events (1)")
	// A group event drills to the group's nodes.
	h.keys("esc", "j", "enter")
	if v := h.table(); v.title() != "nodes" || v.filterText != "group:web-asg" {
		t.Fatalf("group event drill-down: %v %q", v.title(), v.filterText)
	}
}

func TestGroupsJoinsAndLeaves(t *testing.T) {
	nodes := synthNodes(20, t0.Add(-time.Hour))
	events := []fleet.Event{
		{Seq: 1, Time: t0.Add(-30 * time.Minute), Kind: fleet.NodeJoined, Datacenter: "dc1", Node: "old", Group: "web-asg"},
		{Seq: 2, Time: t0.Add(-5 * time.Minute), Kind: fleet.NodeJoined, Datacenter: "dc1", Node: "a", Group: "web-asg"},
		{Seq: 3, Time: t0.Add(-4 * time.Minute), Kind: fleet.NodeJoined, Datacenter: "dc1", Node: "b", Group: "web-asg"},
		{Seq: 4, Time: t0.Add(-3 * time.Minute), Kind: fleet.NodeLeft, Datacenter: "dc1", Node: "c", Group: "web-asg"},
	}
	h := newHarness(t, fleet.NewSnapshot(1, t0, nodes, connected(t0), events), 140, 30)
	h.keys(":groups", "enter")
	var web *row
	for _, r := range h.table().rows {
		if r.id == "web-asg" {
			web = r
		}
	}
	if web == nil || web.cells[gcJoins] != "+2" || web.cells[gcLeaves] != "-1" {
		t.Fatalf("web-asg joins/leaves: %v", web.cells)
	}
	// Eleven minutes later the window has moved past the first two.
	h.clk.add(11 * time.Minute)
	h.send(tickMsg(h.clk.t))
	for _, r := range h.table().rows {
		if r.id == "web-asg" && (r.cells[gcJoins] != "+1" || r.cells[gcLeaves] != "-1") {
			t.Fatalf("after 10m: %v", r.cells)
		}
	}
}

func TestCursorKeys(t *testing.T) {
	h := newHarness(t, synthSnapshot(300), 100, 24)
	v := h.table()
	h.keys("j", "j", "down")
	if v.cursor != 3 {
		t.Fatalf("down x3: %d", v.cursor)
	}
	h.keys("k", "up")
	if v.cursor != 1 {
		t.Fatalf("up x2: %d", v.cursor)
	}
	h.keys("pgdown")
	if v.cursor != 21 || v.offset != 2 {
		t.Fatalf("pgdown: cursor %d offset %d", v.cursor, v.offset)
	}
	h.keys("G")
	if v.cursor != 299 || v.offset != 280 {
		t.Fatalf("G: cursor %d offset %d", v.cursor, v.offset)
	}
	h.mustContain("nodes 300/300", ">  node-00299")
	h.keys("pgup")
	if v.cursor != 279 {
		t.Fatalf("pgup: %d", v.cursor)
	}
	h.keys("g")
	if v.cursor != 0 || v.offset != 0 {
		t.Fatalf("g: cursor %d offset %d", v.cursor, v.offset)
	}
	h.keys("k")
	if v.cursor != 0 {
		t.Fatal("cursor must not go above the first row")
	}
}

func TestFeedCommands(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	pub := fleet.NewPublisher(synthSnapshot(5))
	m := New(ctx, Options{Feed: pub, NoColor: true})
	wait := m.waitSnapshot()
	got := make(chan tea.Msg, 1)
	go func() { got <- wait() }()
	s2 := fleet.NewSnapshot(2, t0, synthNodes(7, t0), connected(t0), nil)
	pub.Publish(s2)
	msg := <-got
	sm, ok := msg.(snapshotMsg)
	if !ok || sm.snap != s2 {
		t.Fatalf("feed command returned %#v", msg)
	}
	_, next := m.Update(sm)
	if m.snap != s2 || next == nil {
		t.Fatal("snapshot not applied or no further wait")
	}
	if !strings.Contains(m.View().Content, "nodes 7") {
		t.Fatal("new snapshot not shown")
	}
	// Cancelling ctx ends the pending wait and the tick: nothing leaks.
	go func() { got <- next() }()
	tick := m.tick()
	tickDone := make(chan tea.Msg, 1)
	go func() { tickDone <- tick() }()
	cancel()
	msg = <-got
	fe, ok := msg.(feedErrMsg)
	if !ok || !errors.Is(fe.err, context.Canceled) {
		t.Fatalf("after cancel: %#v", msg)
	}
	if _, cmd := m.Update(fe); cmd != nil {
		t.Fatal("no retry after cancel")
	}
	if msg := <-tickDone; msg != nil {
		t.Fatalf("tick after cancel returned %#v", msg)
	}
}

func TestPasteIntoFilter(t *testing.T) {
	h := newHarness(t, synthSnapshot(50), 100, 24)
	h.keys("/")
	h.send(tea.PasteMsg{Content: "role:db\x1b[2J"})
	h.keys("enter")
	if got := h.table().filterText; got != "role:db" {
		t.Fatalf("pasted filter = %q", got)
	}
}

func TestHeaderNoteIsSanitisedAndDroppedWhenNarrow(t *testing.T) {
	snap := fleet.NewSnapshot(1, t0, synthNodes(3, t0), nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m := New(ctx, Options{Feed: fleet.NewPublisher(snap), NoColor: true, Note: "demo · CONSUL_HTTP_ADDR=127.0.0.1:8500\x1b[2J"})
	m.Update(tea.WindowSizeMsg{Width: 160, Height: 20})
	if v := m.View().Content; !strings.Contains(v, "demo · CONSUL_HTTP_ADDR=127.0.0.1:8500") || strings.Contains(v, "[2J") {
		t.Errorf("wide header lacks the note or lets an escape through:\n%s", v)
	}
	m.Update(tea.WindowSizeMsg{Width: 80, Height: 24})
	if v := m.View().Content; strings.Contains(v, "CONSUL_HTTP_ADDR") {
		t.Errorf("the note should give way at 80 columns:\n%s", v)
	}
}

func TestMarksForBulkActions(t *testing.T) {
	h := newHarness(t, synthSnapshot(300), 120, 24)
	v := h.table()
	h.keys("space", "space")
	if v.cursor != 2 {
		t.Fatalf("space marks and moves down: cursor %d", v.cursor)
	}
	if got := h.m.Marked(); len(got) != 2 || got[0] != "dc1/node-00000" {
		t.Fatalf("marked = %v", got)
	}
	s := h.mustContain("marked 2", " + node-00000", " + node-00001")
	if strings.Contains(s, "+ node-00002") {
		t.Fatalf("an unmarked node shows a mark:\n%s", s)
	}
	h.keys("k", "space") // unmark node-00001
	if got := h.m.Marked(); len(got) != 1 {
		t.Fatalf("after unmarking: %v", got)
	}
	// Mark everything a filter shows, then clear.
	v.setFilter("group:web-asg")
	v.refresh()
	h.keys("M")
	want := len(v.rows)
	if v.rows[0].node.Name != "node-00000" {
		want++ // node-00000, marked before, is not in web-asg
	}
	if got := len(h.m.Marked()); got != want {
		t.Fatalf("M marked %d, want %d", got, want)
	}
	h.keys("U")
	if got := h.m.Marked(); len(got) != 0 {
		t.Fatalf("U left %v", got)
	}
	h.mustNotContain("marked ")
}

func TestNewFilterStartsAtFirstMatch(t *testing.T) {
	h := newHarness(t, synthSnapshot(300), 120, 24)
	v := h.table()
	for range 25 {
		h.keys("j")
	}
	h.keys("/", "w", "e", "b", "enter")
	if v.cursor != 0 || v.offset != 0 || len(v.rows) == 0 {
		t.Fatalf("after a new filter: cursor %d offset %d rows %d", v.cursor, v.offset, len(v.rows))
	}
}

func TestSortAddressesNumerically(t *testing.T) {
	var rows []*row
	for _, a := range []string{"10.0.0.10", "name.internal", "10.0.0.9", "", "fd00::2", "10.0.1.1", "9.255.255.255"} {
		rows = append(rows, nodeRow(&fleet.Node{Name: "n-" + a, Datacenter: "dc1", Address: a}))
	}
	cols := nodeColumns()
	sortRows(rows, cols, int(ncAddress), false)
	var got []string
	for _, r := range rows {
		got = append(got, r.node.Address)
	}
	want := []string{"9.255.255.255", "10.0.0.9", "10.0.0.10", "10.0.1.1", "fd00::2", "", "name.internal"}
	if !slices.Equal(got, want) {
		t.Fatalf("address order %q, want %q", got, want)
	}
}

func TestEventTimesGetADateAfterTwelveHours(t *testing.T) {
	now := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	for at, want := range map[time.Time]string{
		now.Add(-time.Minute):    "08:59:00",
		now.Add(-11 * time.Hour): "22:00:00",
		now.Add(-13 * time.Hour): "Nov 25 20:00:00",
	} {
		if got := eventTime(at, now); got != want {
			t.Errorf("eventTime(%v) = %q, want %q", at, got, want)
		}
	}
}

// While the fleet loads, the rows come before their roles and health: the
// cells say so, the header does not count unknown health as passing, and
// no view claims there is nothing.
func TestLoadingFleetSaysWhatIsStillComing(t *testing.T) {
	nodes := synthNodes(4, time.Time{})
	for _, n := range nodes {
		n.Pending = fleet.PendingRoles | fleet.PendingHealth
		n.Services, n.Checks = nil, nil
	}
	conn := []fleet.ConnState{{Datacenter: "dc1", Status: fleet.Connected, LastSuccess: t0, Pending: []string{"roles", "health", "check details"}}}
	h := newHarness(t, fleet.NewSnapshot(1, t0, nodes, conn, nil), 120, 20)
	h.mustContain("loading…", "health loading…", "loading roles, health, check details…")
	h.mustNotContain("passing 4")
	h.keys(":roles", "enter")
	h.mustContain("loading the roles from Consul…")
	h.mustNotContain("no roles in this scope")

	empty := []fleet.ConnState{{Datacenter: "dc1", Status: fleet.Connecting, Pending: []string{"nodes", "roles", "health", "check details"}}}
	h = newHarness(t, fleet.NewSnapshot(1, t0, nil, empty, nil), 120, 20)
	h.mustContain("loading the node list from Consul…")
	h.mustNotContain("no nodes in this scope")
}

// An 80-column header must keep the state, the retry time and the age of
// the data; a long error (a URL) is what gets cut.
func TestDegradedHeaderAt80ColumnsKeepsRetryAndAge(t *testing.T) {
	conn := []fleet.ConnState{{
		Datacenter: "dc1", Status: fleet.Degraded,
		LastError:   `watching service "web" in dc1: Get "http://consul.internal.example.com:8500/v1/catalog/service/web?index=12345&stale=&wait=300000ms": dial tcp 10.0.0.1:8500: connect: connection refused`,
		NextRetry:   t0.Add(4 * time.Second),
		LastSuccess: t0.Add(-30 * time.Second),
	}}
	h := newHarness(t, fleet.NewSnapshot(1, t0, synthNodes(3, time.Time{}), conn, nil), 80, 24)
	line := h.screenLines()[1]
	for _, want := range []string{"DEGRADED", "retry in 4s", "last ok 30s ago"} {
		if !strings.Contains(line, want) {
			t.Errorf("80-column connection line %q lacks %q", line, want)
		}
	}
}

// The Groups and Roles views do not count unknown health as healthy while
// the fleet loads.
func TestSummariesWhileHealthLoads(t *testing.T) {
	nodes := synthNodes(6, time.Time{})
	for _, n := range nodes {
		n.Pending = fleet.PendingHealth
	}
	conn := []fleet.ConnState{{Datacenter: "dc1", Status: fleet.Connected, LastSuccess: t0, Pending: []string{"health", "check details"}}}
	h := newHarness(t, fleet.NewSnapshot(1, t0, nodes, conn, nil), 160, 20)
	h.keys(":groups", "enter")
	s := h.mustContain("loading…")
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, "web-asg") && strings.Contains(l, " passing") {
			t.Errorf("a group's health while loading: %q", l)
		}
	}
	h.keys(":roles", "enter")
	h.mustContain("loading…")
}

// At 80 columns the counts line keeps what says what the counts are worth
// (RO, last known) and this console's runs, in compact words; before the
// node list it says the nodes are loading, not "nodes 0".
func TestHeaderCountsAt80Columns(t *testing.T) {
	conn := []fleet.ConnState{{Datacenter: "dc1", Status: fleet.Unresponsive, LastSuccess: t0.Add(-9 * time.Second)}}
	p := newFakeProv()
	p.runs = []provision.RunInfo{{ID: "r1", Status: provision.RunRunning, Live: true}, {ID: "r0", Status: provision.RunRunning}}
	h := newProvHarness(t, fleet.NewSnapshot(1, t0, synthNodes(10000, time.Time{}), conn, nil), p, true, 80, 24)
	h.do(h.m.fetchRuns()())
	first := h.screenLines()[0]
	for _, want := range []string{"RO", "last known:", "nodes 10000", "pass", "crit", "runs 1+0q"} {
		if !strings.Contains(first, want) {
			t.Errorf("80-column counts line %q lacks %q", first, want)
		}
	}
	empty := []fleet.ConnState{{Datacenter: "dc1", Status: fleet.Connecting, Pending: []string{"nodes", "roles", "health", "check details"}}}
	h = newHarness(t, fleet.NewSnapshot(1, t0, nil, empty, nil), 80, 24)
	if first := h.screenLines()[0]; !strings.Contains(first, "nodes loading…") || strings.Contains(first, "nodes 0") {
		t.Errorf("counts line before the node list: %q", first)
	}
}
