package tui

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"charm.land/bubbles/v2/table"
	tea "charm.land/bubbletea/v2"

	"github.com/fleetdeck/fleetdeck/fleet"
	"github.com/fleetdeck/fleetdeck/provision"
)

// benchModel returns a colour model of 10,000 nodes at 200x50, rendered
// once so caches are warm as they are in a running console.
func benchModel(b *testing.B) *Model {
	b.Helper()
	snap := fleet.NewSnapshot(1, t0, synthNodes(10000, t0.Add(-time.Hour)), connected(t0), nil)
	m := New(context.Background(), Options{Feed: fleet.NewPublisher(snap), Now: func() time.Time { return t0 }})
	m.Update(tea.WindowSizeMsg{Width: 200, Height: 50})
	_ = m.View()
	return m
}

// BenchmarkView10kNodes is one frame of the nodes view: design goal
// < 1 ms/op.
func BenchmarkView10kNodes(b *testing.B) {
	m := benchModel(b)
	b.ReportAllocs()
	for b.Loop() {
		_ = m.View()
	}
}

// BenchmarkFilter10kNodes applies a filter (field terms, negation and
// free text) to 10,000 nodes and renders the result: goal < 5 ms/op.
func BenchmarkFilter10kNodes(b *testing.B) {
	m := benchModel(b)
	v := m.top().(*tableView)
	filters := []string{"role:web !health:passing", "meta:env=prod zone:zone-a node-01", "group:web-asg"}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		v.setFilter(filters[i%len(filters)])
		i++
		v.refresh()
		_ = m.View()
	}
	if len(v.rows) == 0 {
		b.Fatal("filter matched nothing")
	}
}

// BenchmarkCursorMove10k is a key press moving the cursor plus the frame
// it causes, over 10,000 nodes.
func BenchmarkCursorMove10k(b *testing.B) {
	m := benchModel(b)
	down, up := keyMsg("j"), keyMsg("k")
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		k := down
		if i%2000 >= 1000 {
			k = up
		}
		i++
		m.Update(k)
		_ = m.View()
	}
}

// BenchmarkSnapshot10kOneChange applies a new snapshot in which one node
// changed, and renders it: row caches make it cost a pass over the node
// list. Snapshots are built outside the timed loop (that is the
// watcher's cost); the version is bumped so each one is new.
func BenchmarkSnapshot10kOneChange(b *testing.B) {
	m := benchModel(b)
	base := m.snap.Nodes
	snaps := make([]*fleet.Snapshot, 2)
	for i := range snaps {
		nodes := append([]*fleet.Node(nil), base...)
		c := *nodes[100+i]
		c.Health = fleet.HealthCritical
		nodes[100+i] = &c
		snaps[i] = fleet.NewSnapshot(2, t0, nodes, connected(t0), nil)
	}
	b.ReportAllocs()
	v := uint64(2)
	for b.Loop() {
		s := snaps[v%2]
		v++
		s.Version = v
		m.Update(snapshotMsg{s})
		_ = m.View()
	}
}

// BenchmarkPeerBubblesTableCursorMove10k is the peer the design names:
// bubbles/table holding the same 10,000 rows, one cursor move plus its
// frame. It styles every cell of every row with lipgloss, which is why
// fleetdeck renders only the visible window itself.
func BenchmarkPeerBubblesTableCursorMove10k(b *testing.B) {
	nodes := synthNodes(10000, t0)
	rows := make([]table.Row, len(nodes))
	for i, n := range nodes {
		rows[i] = table.Row{n.Name, n.Datacenter, n.Health.String(), strings.Join(n.Roles(), ","), n.Group, n.Zone, n.Address, n.InstanceID, n.Image}
	}
	cols := []table.Column{{Title: "NAME", Width: 20}, {Title: "DC", Width: 4}, {Title: "HEALTH", Width: 11}, {Title: "ROLES", Width: 30},
		{Title: "GROUP", Width: 12}, {Title: "ZONE", Width: 10}, {Title: "ADDRESS", Width: 15}, {Title: "INSTANCE", Width: 20}, {Title: "IMAGE", Width: 20}}
	t := table.New(table.WithColumns(cols), table.WithRows(rows), table.WithHeight(46), table.WithWidth(200), table.WithFocused(true))
	_ = t.View()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i%2 == 0 {
			t.MoveDown(1)
		} else {
			t.MoveUp(1)
		}
		i++
		_ = t.View()
	}
}

// BenchmarkFirstSnapshot10k is the console's share of the first screen:
// a fresh console receiving its first 10,000-node snapshot (every row
// built: sanitised, measured, search keys) and drawing the frame.
func BenchmarkFirstSnapshot10k(b *testing.B) {
	nodes := synthNodes(10000, time.Time{})
	b.ReportAllocs()
	for b.Loop() {
		m := New(context.Background(), Options{Feed: fleet.NewPublisher(nil), Now: func() time.Time { return t0 }})
		m.Update(tea.WindowSizeMsg{Width: 200, Height: 50})
		m.Update(snapshotMsg{fleet.NewSnapshot(1, t0, append([]*fleet.Node(nil), nodes...), connected(t0), nil)})
		_ = m.View()
	}
}

// BenchmarkPromptKey10k is a key typed into the "/" prompt over 10,000
// nodes plus its frame: the bubbles textinput edit, the filter applied as
// typed (alternately narrowed by a character and widened by backspace)
// and the frame.
func BenchmarkPromptKey10k(b *testing.B) {
	m := benchModel(b)
	m.Update(keyMsg("/"))
	for _, r := range "web" {
		m.Update(keyMsg(string(r)))
	}
	typed, back := keyMsg("-"), keyMsg("backspace")
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		k := typed
		if i%2 == 1 {
			k = back
		}
		i++
		m.Update(k)
		_ = m.View()
	}
	if _, ok := m.overlay.(*prompt); !ok {
		b.Fatal("the prompt closed")
	}
}

// BenchmarkTextInputKey is the editor alone: one character typed into a
// 40-character textinput, then taken back.
func BenchmarkTextInputKey(b *testing.B) {
	in := newTextInput(strings.Repeat("role:web ", 4) + "name")
	typed, back := keyMsg("x"), keyMsg("backspace")
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		k := typed
		if i%2 == 1 {
			k = back
		}
		i++
		editText(&in, k)
	}
}

// BenchmarkFormKey is a character typed into the launch form's extra vars
// field (then taken back) plus its frame.
func BenchmarkFormKey(b *testing.B) {
	m := benchModel(b)
	m.prov = newFakeProv()
	f := newLaunchForm(m.shared, launchTarget{scope: provision.ScopeNode, subject: "dc1/node-00000", targets: []string{"dc1/node-00000"}})
	f.setPlaybooks(m.prov.(*fakeProv).playbooks, nil)
	m.push(f)
	f.field = fExtraVars
	for _, r := range "version=1." {
		m.Update(keyMsg(string(r)))
	}
	typed, back := keyMsg("2"), keyMsg("backspace")
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		k := typed
		if i%2 == 1 {
			k = back
		}
		i++
		m.Update(k)
		_ = m.View()
	}
	if got := f.inputs[fExtraVars].Value(); !strings.HasPrefix(got, "version=1.") {
		b.Fatalf("extra var field %q", got)
	}
}

// BenchmarkSnapshot10kFullJournalAlerts is BenchmarkSnapshot10kOneChange
// with alerts on and a full journal (10,000 events, the default bound):
// each snapshot brings one node turning critical, which alerts. It prices
// what alert detection adds to a snapshot.
func BenchmarkSnapshot10kFullJournalAlerts(b *testing.B) {
	for _, on := range []bool{false, true} {
		b.Run("alerts="+strconv.FormatBool(on), func(b *testing.B) { benchSnapshotJournal(b, on) })
	}
}

func benchSnapshotJournal(b *testing.B, alerts bool) {
	base := synthNodes(10000, t0.Add(-time.Hour))
	journal := make([]fleet.Event, 10000)
	for i := range journal {
		n := base[i%len(base)]
		journal[i] = fleet.Event{Seq: uint64(i + 1), Time: t0.Add(-time.Hour), Kind: fleet.HealthChanged,
			Datacenter: n.Datacenter, Node: n.Name, From: fleet.HealthPassing, To: fleet.HealthWarning}
	}
	first := fleet.NewSnapshot(1, t0, slices.Clone(base), connected(t0), slices.Clone(journal))
	m := New(context.Background(), Options{Feed: fleet.NewPublisher(first), Now: func() time.Time { return t0 },
		Alerts: AlertOptions{Enabled: alerts, Filter: DefaultAlertFilter}})
	m.Update(tea.WindowSizeMsg{Width: 200, Height: 50})
	_ = m.View()
	// Snapshots alternate a critical node 100 and node 101, each with the
	// journal moved on by one event that says so.
	const rounds = 4096
	snaps := make([]*fleet.Snapshot, rounds)
	for i := range snaps {
		nodes := slices.Clone(base)
		idx := 100 + i%2
		c := *nodes[idx]
		c.Health = fleet.HealthCritical
		nodes[idx] = &c
		seq := uint64(10000 + i + 1)
		ev := append(slices.Clone(journal[i+1:]), fleet.Event{Seq: seq, Time: t0, Kind: fleet.HealthChanged,
			Datacenter: c.Datacenter, Node: c.Name, From: fleet.HealthPassing, To: fleet.HealthCritical})
		snaps[i] = fleet.NewSnapshot(uint64(i+2), t0, nodes, connected(t0), ev)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i == rounds {
			b.StopTimer()
			b.Logf("ran out of prepared snapshots at %d", i)
			break
		}
		m.Update(snapshotMsg{snaps[i]})
		_ = m.View()
		i++
	}
}
