package tui

import (
	"slices"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/fleetdeck/fleetdeck/provision"
	"github.com/fleetdeck/fleetdeck/roles"
)

// form returns the roles form on top, or fails.
func (h *harness) rolesForm() *rolesForm {
	h.t.Helper()
	f, ok := h.m.top().(*rolesForm)
	if !ok {
		h.t.Fatalf("top view is %s, not the roles form", h.m.top().title())
	}
	return f
}

// toReason moves the form's cursor to the reason.
func (h *harness) toReason() {
	h.t.Helper()
	f := h.rolesForm()
	for f.row().kind != rowReason {
		h.do(special("tab"))
	}
}

// TestRolesFormPreviewApplyTrack: o on a node → the form (catalog roles
// with toggles, maintenance, check mode, reason) → ctrl+s → the preview
// (current → desired, the run's hosts and argv, who and why) → enter
// applies → the run view, the node tracked in the header until the
// catalog shows it → Converged, said in the footer, in the STATE column
// and in Node detail.
func TestRolesFormPreviewApplyTrack(t *testing.T) {
	fr := newFakeRoles(t)
	snap := synthSnapshot(10)
	h := newRolesHarness(t, snap, newFakeProv(), fr, false, 160, 40)
	h.mustNotContain("STATE") // nothing managed: no column
	h.press("o")
	f := h.rolesForm()
	if got := f.names; !slices.Equal(got, []string{"api", "search", "web"}) {
		t.Fatalf("form offers %q", got)
	}
	h.mustContain("Change the roles of node dc1/node-00000", "[ ] api", "not held", "recorded as alice@console", "dc1/node-00000  unmanaged")
	h.press("space") // api: add
	h.mustContain("[+] api             add")
	h.toReason()
	h.keys("move to api")
	h.mustContain("Reason       move to api▏")
	h.do(special("ctrl+s"))
	if len(fr.plans) != 1 {
		t.Fatalf("plans %d", len(fr.plans))
	}
	req := fr.plans[0]
	if !slices.Equal(req.Add, []string{"api"}) || len(req.Remove) != 0 || req.Reason != "move to api" || req.Maintenance != nil || req.Check ||
		len(req.Targets) != 1 || req.Targets[0].Key() != "dc1/node-00000" {
		t.Fatalf("request %+v", req)
	}
	h.mustContain("Preview: nothing has been written or run yet", "Change the roles of 1 node", "REAL CHANGE",
		"reason: move to api (by alice@console)", "dc1/node-00000  generation - → 1", "roles: unmanaged → [api]  +api",
		"Hosts as ansible-playbook resolves them (1)", "[3]   --limit=node-00000", "fleetdeck-apply.yml", "enter apply · esc back to the form")
	if len(fr.applied) != 0 {
		t.Fatal("applied before enter")
	}
	h.press("enter")
	if len(fr.applied) != 1 {
		t.Fatalf("applied %d", len(fr.applied))
	}
	if rv := h.runView(); rv.id != "run-1" {
		t.Fatalf("run view of %s", rv.id)
	}
	h.mustContain("roles applying 1", "run run-1 launched: 1 node tracked")
	if h.m.tracking() != 1 {
		t.Fatalf("tracking %d", h.m.tracking())
	}
	// The form and the preview are gone: esc from the run lands on Nodes.
	h.press("esc")
	h.mustContain("STATE", "pending")

	// The catalog shows api on the node: Converged, the track ends.
	h.clk.add(4 * time.Second)
	h.publish(withServices(snap, "dc1/node-00000", []string{"api"}, false, 4*time.Second))
	h.do(tickMsg(h.clk.now()))
	if h.m.tracking() != 0 {
		t.Fatalf("still tracking %d", h.m.tracking())
	}
	s := h.mustContain("roles: dc1/node-00000 converged 4s after confirm (run run-1)")
	if strings.Contains(s, "roles applying") {
		t.Fatalf("header still says applying:\n%s", s)
	}
	h.clk.add(6 * time.Second)
	h.do(tickMsg(h.clk.now()))
	if got := h.table().rows[0].state; got != "converged" {
		t.Fatalf("node-00000 state %q", got)
	}
	h.mustContain("converged")
	h.press("enter")
	h.mustContain("Desired state", "converged: generation 1 in the catalog", "[api]  maintenance off  generation 1",
		"by alice@console: move to api", "converged 4s after confirm (run run-1)", "History (1, newest first")
}

// TestRolesFormRefusesLocally: nothing chosen, or no reason, says so and
// plans nothing.
func TestRolesFormRefusesLocally(t *testing.T) {
	fr := newFakeRoles(t)
	h := newRolesHarness(t, synthSnapshot(10), newFakeProv(), fr, false, 120, 30)
	h.press("o")
	h.do(special("ctrl+s"))
	h.mustContain("nothing to change: toggle a role (space) or the maintenance")
	h.press("+")
	h.do(special("ctrl+s"))
	h.mustContain("a reason is required")
	h.toReason()
	h.keys("space", "space")
	h.do(special("ctrl+s"))
	h.mustContain("a reason is required")
	if len(fr.plans) != 0 {
		t.Fatalf("planned %d", len(fr.plans))
	}
	// esc closes the form; nothing was written.
	h.press("esc")
	h.table()
	if len(fr.applied) != 0 || fr.lists == 0 {
		t.Fatalf("applied %d, lists %d", len(fr.applied), fr.lists)
	}
}

// TestRolesConflictShowsWhoWon: Apply losing to another change shows who
// won in the preview and the footer, tracks nothing, and enter no longer
// applies.
func TestRolesConflictShowsWhoWon(t *testing.T) {
	fr := newFakeRoles(t)
	fr.applyErr = &roles.ConflictError{Node: "node-00000", Datacenter: "dc1", Current: &roles.Desired{Node: "node-00000", Datacenter: "dc1",
		Generation: 4, Who: "bob@bastion", When: t0, Reason: "db\x1b[2Jfailover", Roles: []string{"db"}}}
	h := newRolesHarness(t, synthSnapshot(10), newFakeProv(), fr, false, 160, 40)
	h.press("o", "space")
	h.toReason()
	h.keys("x")
	h.do(special("ctrl+s"))
	h.press("enter")
	s := h.mustContain("Not applied", "conflict: dc1/node-00000 was changed by bob@bastion", "to generation 4", "nothing was applied")
	if strings.Contains(s, "roles applying") || h.m.tracking() != 0 {
		t.Fatal("a conflict was tracked")
	}
	if h.m.top().keys().has("enter") {
		t.Fatal("enter still applies a plan that is gone")
	}
	if msg, _ := h.m.flashShown(h.m.now()); !strings.Contains(msg, "bob@bastion") {
		t.Fatalf("footer %q", msg)
	}
	// esc goes back to the form (the plan is not discarded twice).
	h.press("esc")
	h.rolesForm()
	if fr.discards != 0 {
		t.Fatalf("discarded %d", fr.discards)
	}
}

// TestRolesTypedConfirmation: a preview that asks for the typed
// confirmation applies only with it.
func TestRolesTypedConfirmation(t *testing.T) {
	fr := newFakeRoles(t)
	fr.confirm = "2"
	h := newRolesHarness(t, synthSnapshot(10), newFakeProv(), fr, false, 160, 40)
	h.press("space", "space") // mark node-00000 and node-00001
	h.press("o", "+")
	h.toReason()
	h.keys("two")
	h.do(special("ctrl+s"))
	h.mustContain(`The run changes 2 hosts: type "2"`, "Change the roles of 2 nodes", "dc1/node-00001  generation - → 1")
	h.press("enter")
	h.mustContain(`type "2" exactly to apply`)
	h.press("3", "backspace", "2", "enter")
	if len(fr.applied) != 1 || fr.typed[len(fr.typed)-1] != "2" {
		t.Fatalf("applied %d typed %q", len(fr.applied), fr.typed)
	}
	if h.m.tracking() != 2 {
		t.Fatalf("tracking %d", h.m.tracking())
	}
}

// TestMaintenanceForm: m opens the form with maintenance on and the
// reason focused; the change carries the maintenance and its reason; on a
// node in maintenance m turns it off.
func TestMaintenanceForm(t *testing.T) {
	fr := newFakeRoles(t)
	snap := synthSnapshot(10)
	h := newRolesHarness(t, snap, newFakeProv(), fr, false, 160, 40)
	h.press("m")
	h.mustContain("Maintenance of node dc1/node-00000", "Maintenance  ‹ on ›", "> Reason")
	h.keys("disk swap")
	h.press("enter")
	h.mustContain("Maintenance on for 1 node", "maintenance: off → on (disk swap)")
	h.press("enter")
	req := fr.applied[0]
	if req.Maintenance == nil || !req.Maintenance.On || req.Maintenance.Reason != "disk swap" || req.Reason != "disk swap" || len(req.Add) != 0 {
		t.Fatalf("request %+v", req)
	}
	// Consul shows the node in maintenance: the header counts it, the
	// Nodes view says so, the track converges.
	h.press("esc")
	h.publish(withServices(snap, "dc1/node-00000", nil, true, time.Second))
	h.mustContain("maint 2", "node-00000   dc1 maintenance converged") // node-00005 was in maintenance already
	h.press("m")
	h.mustContain("Maintenance  ‹ off ›")
}

// TestStateColumnAndFilter: the STATE column shows each managed node's
// state (blank for unmanaged, hidden when no node shown is managed);
// drift and state: filter on it.
func TestStateColumnAndFilter(t *testing.T) {
	fr := newFakeRoles(t)
	api := roles.Desired{Node: "node-00001", Datacenter: "dc1", Roles: []string{"api"}, Generation: 2, Who: "a@b", When: t0, Reason: "r"}
	web := roles.Desired{Node: "node-00003", Datacenter: "dc1", Roles: []string{"web"}, Generation: 1, Who: "a@b", When: t0, Reason: "r"}
	pend := roles.Desired{Node: "node-00004", Datacenter: "dc1", Roles: []string{"web"}, Generation: 1, Who: "a@b", When: t0, Reason: "r"}
	for _, d := range []roles.Desired{api, web, pend} {
		fr.records[d.Datacenter+"/"+d.Node] = d
	}
	p := newFakeProv()
	// web's generation was applied an hour ago, yet the catalog lacks it:
	// Drift.
	p.runs = []provision.RunInfo{{ID: "run-w", Status: provision.RunOK, Started: t0.Add(-time.Hour), Ended: t0.Add(-time.Hour),
		Meta: roles.RunLinks([]roles.Desired{web})}}
	snap := withServices(synthSnapshot(10), "dc1/node-00001", []string{"api"}, false, 0)
	h := newRolesHarness(t, snap, p, fr, false, 160, 40)
	h.runCmd(h.m.fetchRuns(), 0)
	states := map[string]string{}
	for _, r := range h.table().rows {
		states[r.name] = r.state
	}
	want := map[string]string{"node-00001": "converged", "node-00003": "drift", "node-00004": "pending", "node-00000": ""}
	for n, w := range want {
		if states[n] != w {
			t.Errorf("%s: state %q, want %q", n, states[n], w)
		}
	}
	h.mustContain("STATE", "converged", "drift", "pending")
	filter := func(f string, names ...string) {
		t.Helper()
		h.press("/")
		h.keys(f)
		h.press("enter")
		got := h.rowNames()
		if !slices.Equal(got, names) {
			t.Fatalf("filter %q: %q, want %q", f, got, names)
		}
		h.press("esc")
	}
	filter("drift", "node-00003")
	filter("state:pending", "node-00004")
	filter("state:converged dc:dc1", "node-00001")
	filter("!state:unmanaged", "node-00001", "node-00003", "node-00004")
	filter("!drift state:failed")
	h.press("/")
	h.keys("state:bogus")
	h.press("enter")
	h.mustContain("unknown state")
	h.press("esc")
	// A view showing only unmanaged nodes has no STATE column.
	h.press("/")
	h.keys("name:node-00000")
	h.press("enter")
	h.mustNotContain("STATE")
	h.press("esc")
	// The help documents the terms.
	h.press("?")
	var help []string
	for _, l := range h.text().lines {
		help = append(help, l.text)
	}
	if all := strings.Join(help, "\n"); !strings.Contains(all, "state:failed") || !strings.Contains(all, "drift  ") {
		t.Fatalf("the help does not document state: and drift:\n%s", all)
	}
}

// TestRolesViewDesiredActual: the Roles view counts per role the nodes
// desired to hold it and those whose catalog shows its managed service;
// o there targets the role's nodes.
func TestRolesViewDesiredActual(t *testing.T) {
	fr := newFakeRoles(t)
	fr.records["dc1/node-00001"] = roles.Desired{Node: "node-00001", Datacenter: "dc1", Roles: []string{"api"}, Generation: 1, When: t0, Who: "a", Reason: "r"}
	fr.records["dc1/node-00003"] = roles.Desired{Node: "node-00003", Datacenter: "dc1", Roles: []string{"api", "search"}, Generation: 1, When: t0, Who: "a", Reason: "r"}
	snap := withServices(synthSnapshot(10), "dc1/node-00001", []string{"api"}, false, 0)
	h := newRolesHarness(t, snap, newFakeProv(), fr, false, 160, 40)
	h.keys(":roles")
	h.press("enter")
	h.mustContain("DESIRED", "ACTUAL")
	cells := map[string][]string{}
	for _, r := range h.table().rows {
		cells[r.id] = r.cells
	}
	last2 := func(role string) [2]string {
		c := cells[role]
		if c == nil {
			t.Fatalf("no row for role %s (rows %v)", role, cells)
		}
		return [2]string{c[len(c)-2], c[len(c)-1]}
	}
	if got := last2("api"); got != [2]string{"2", "1"} {
		t.Errorf("api desired/actual %v", got)
	}
	if got := last2("search"); got != [2]string{"1", "0"} {
		t.Errorf("search desired/actual %v", got)
	}
	if got := last2("web"); got != [2]string{"0", "0"} {
		t.Errorf("web desired/actual %v", got)
	}
	// o on api: its nodes (running it, or desired to).
	for h.table().selected().id != "api" {
		h.press("down")
	}
	h.press("o")
	f := h.rolesForm()
	if !strings.HasPrefix(f.subject, "role api (") || !slices.Contains(f.nodes, "dc1/node-00001") || !slices.Contains(f.nodes, "dc1/node-00003") {
		t.Fatalf("role target %q %q", f.subject, f.nodes)
	}
}

// TestHistoryRevert: Node detail lists the generations newest first; h
// opens the history, enter on a generation opens the revert form, whose
// preview restores it (Request.RevertTo).
func TestHistoryRevert(t *testing.T) {
	fr := newFakeRoles(t)
	g1 := roles.Desired{Node: "node-00001", Datacenter: "dc1", Roles: []string{"web"}, Generation: 1, Who: "carol@ops", When: t0.Add(-2 * time.Hour), Reason: "first"}
	g2 := roles.Desired{Node: "node-00001", Datacenter: "dc1", Roles: []string{"api"}, Generation: 2, Who: "dave@ops", When: t0.Add(-time.Hour), Reason: "second"}
	fr.records["dc1/node-00001"] = g2
	fr.hist["dc1/node-00001"] = []roles.Desired{g1, g2}
	h := newRolesHarness(t, synthSnapshot(10), newFakeProv(), fr, false, 160, 40)
	h.press("down", "enter")
	s := h.mustContain("History (2, newest first", "2*", "dave@ops", "carol@ops")
	if strings.Index(s, "dave@ops") > strings.Index(s, "carol@ops") {
		t.Fatalf("history not newest first:\n%s", s)
	}
	h.press("h")
	h.mustContain("History of node node-00001", "GEN", "> 2*")
	h.press("down", "enter")
	h.mustContain("Revert node dc1/node-00001 to generation 1", "roles [web], maintenance off")
	h.keys("undo")
	h.press("enter")
	if req := fr.plans[0]; req.RevertTo != 1 || len(req.Add)+len(req.Remove) != 0 || req.Reason != "undo" {
		t.Fatalf("request %+v", req)
	}
	h.mustContain("Revert to generation 1", "generation 2 → 3", "roles: [api] → [web]  +web  -api", "restores generation 1")
	h.press("enter")
	h.runView()
	h.press("esc")
	h.mustContain("History of node node-00001")
}

// TestRolesReadOnly: a read-only console shows states and history but
// has none of the actions that change anything.
func TestRolesReadOnly(t *testing.T) {
	fr := newFakeRoles(t)
	fr.records["dc1/node-00000"] = roles.Desired{Node: "node-00000", Datacenter: "dc1", Roles: []string{"api"}, Generation: 1, When: t0, Who: "a", Reason: "r"}
	fr.hist["dc1/node-00000"] = []roles.Desired{fr.records["dc1/node-00000"]}
	h := newRolesHarness(t, synthSnapshot(10), newFakeProv(), fr, true, 160, 40)
	none := func(where string, keys ...string) {
		t.Helper()
		for _, k := range keys {
			if h.m.top().keys().has(k) {
				t.Errorf("read-only %s has %s", where, k)
			}
		}
		for _, l := range h.m.top().keys().helpLines() {
			if strings.Contains(l[1], "revert") || strings.Contains(l[1], "change the roles") || strings.Contains(l[1], "maintenance on/off") {
				t.Errorf("read-only %s help offers %q", where, l)
			}
		}
	}
	h.mustContain("pending")
	none("nodes", "o", "m")
	h.press("o", "m")
	h.table()
	h.press("enter")
	none("node detail", "o", "m")
	h.mustContain("Desired state", "History (1")
	h.press("h")
	none("history", "enter", "u")
	h.press("enter", "u")
	if _, ok := h.m.top().(*historyView); !ok {
		t.Fatalf("top is %s", h.m.top().title())
	}
	h.keys(":roles")
	h.press("enter")
	none("roles", "o")
	if len(fr.plans) != 0 {
		t.Fatal("a read-only console planned a change")
	}
}

// TestRolesHostileRecord: who and reason from KV are shown sanitised in
// Node detail, the history and the preview (the screen check fails on any
// escape or control character).
func TestRolesHostileRecord(t *testing.T) {
	fr := newFakeRoles(t)
	evil := "\x1b]52;c;ZXZpbA==\x07x\x1b[2J\u202eevil\r\nline"
	d := roles.Desired{Node: "node-00000", Datacenter: "dc1", Roles: []string{"api"}, Generation: 1, When: t0, Who: evil, Reason: evil}
	fr.records["dc1/node-00000"] = d
	fr.hist["dc1/node-00000"] = []roles.Desired{d}
	h := newRolesHarness(t, synthSnapshot(10), newFakeProv(), fr, false, 160, 40)
	h.press("enter")
	h.mustContain("evil")
	h.press("h")
	h.mustContain("evil")
	h.press("enter")
	h.do(tea.PasteMsg{Content: evil})
	h.mustContain("evil")
	h.do(special("ctrl+s"))
	h.mustContain("Revert to generation 1", "evil")
	if r := fr.plans[0].Reason; strings.ContainsAny(r, "\x1b\x07\r\n\u202e") {
		t.Fatalf("the pasted reason kept control characters: %q", r)
	}
}

// TestRolesOff: without a roles service, o m and h say why.
func TestRolesOff(t *testing.T) {
	h := newHarnessWith(t, synthSnapshot(10), 160, 40, true, func(o *Options) { o.RolesOff = "roles are off: no role catalog" })
	h.press("o")
	h.table()
	h.mustContain("roles are off: no role catalog")
	h.press("enter", "h")
	h.mustContain("roles are off: no role catalog")
	h.mustNotContain("Desired state")
}

// TestOtherProcessApplyRunReachesNodeDetail: an apply run launched by
// another console or by `fleetdeck roles set` is heard of only through
// the runs list; while Node detail of a managed node is on top the list
// is read again every few seconds, so the run shows as the last apply.
func TestOtherProcessApplyRunReachesNodeDetail(t *testing.T) {
	fr := newFakeRoles(t)
	rec := roles.Desired{Node: "node-00001", Datacenter: "dc1", Roles: []string{"api"}, Generation: 1, Who: "cli@ops", When: t0, Reason: "from the shell", Change: "c1"}
	fr.records["dc1/node-00001"] = rec
	fr.hist["dc1/node-00001"] = []roles.Desired{rec}
	p := newFakeProv()
	h := newRolesHarness(t, synthSnapshot(10), p, fr, false, 160, 40)
	h.press("down", "enter")
	h.mustContain("no apply run known to this console for the node")
	p.mu.Lock()
	p.runs = append(p.runs, provision.RunInfo{ID: "cli-run", Playbook: roles.PlaybookFile, Who: "cli", Status: provision.RunOK,
		Started: t0.Add(time.Second), Ended: t0.Add(9 * time.Second), Meta: roles.RunLinks([]roles.Desired{rec})})
	p.mu.Unlock()
	h.clk.add(rolesRefresh + time.Second)
	h.do(tickMsg(h.clk.now()))
	h.mustContain("last apply   run cli-run succeeded (generation 1)")
}

// TestReapplyFromNodeDetail: a in Node detail applies the node's current
// desired record again (after a failed run or a drift): the form needs
// no reason, the request is ApplyOnly, the preview says nothing new is
// recorded, and enter applies. Nodes without a record have no a, and a
// read-only console has none.
func TestReapplyFromNodeDetail(t *testing.T) {
	fr := newFakeRoles(t)
	rec := roles.Desired{Node: "node-00001", Datacenter: "dc1", Roles: []string{"api"}, Generation: 4, Who: "bob@ops", When: t0, Reason: "scale api"}
	fr.records["dc1/node-00001"] = rec
	h := newRolesHarness(t, synthSnapshot(10), newFakeProv(), fr, false, 160, 40)
	h.press("enter") // node-00000: unmanaged
	h.mustNotContain("a reapply")
	h.press("a")
	if h.m.top().title() != "node" {
		t.Fatalf("a on an unmanaged node opened %s", h.m.top().title())
	}
	h.press("esc", "down", "enter")
	h.mustContain("a reapply")
	h.press("a")
	h.mustContain("Apply the desired state of node dc1/node-00001 again", "generation 4: roles [api], maintenance off", "nothing is recorded")
	h.do(special("ctrl+s"))
	if len(fr.plans) != 1 || !fr.plans[0].ApplyOnly || fr.plans[0].Reason != "" {
		t.Fatalf("plans %+v, want one ApplyOnly request", fr.plans)
	}
	h.mustContain("Apply the desired state of 1 node again", "REAL RUN: the apply run applies each node's current desired record", "generation 4 (applied again, not recorded)")
	h.press("enter")
	if len(fr.applied) != 1 || !fr.applied[0].ApplyOnly {
		t.Fatalf("applied %+v", fr.applied)
	}
	h.runView()

	ro := newRolesHarness(t, synthSnapshot(10), newFakeProv(), fr, true, 160, 40)
	ro.press("down", "enter", "a")
	if ro.m.top().title() != "node" {
		t.Fatalf("a in a read-only console opened %s", ro.m.top().title())
	}
	ro.mustNotContain("a reapply")
}
