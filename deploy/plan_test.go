package deploy

import (
	"fmt"
	"strings"
	"testing"

	"github.com/fleetdeck/fleetdeck/fleet"
)

func chainStages() []Stage {
	return []Stage{
		{Name: "base", Playbook: "base.yml", Selector: roleSel{role: "no-provision", neg: true}},
		{Name: "roles", Playbook: RolesPlaybook, After: []string{"base"}},
		{Name: "web", Playbook: "web.yml", Selector: roleSel{role: "web"}, After: []string{"roles"}},
	}
}

func node(name, inst string, roles ...string) *fleet.Node {
	n := &fleet.Node{Name: name, Datacenter: "dc1", InstanceID: inst}
	for _, r := range roles {
		n.Services = append(n.Services, fleet.Service{ID: r, Name: r})
	}
	return n
}

func sum(s Stage) string { return "sum-" + s.Playbook }

func dueString(ds []DueItem) string {
	var parts []string
	for _, d := range ds {
		parts = append(parts, d.Name+":"+d.Stage)
	}
	return strings.Join(parts, " ")
}

// succeed records every due item as applied, as the runs would.
func succeed(records map[string]Record, ds []DueItem) {
	for _, d := range ds {
		records[d.Key()] = Record{Incarnation: d.Incarnation, Node: d.Node, Stage: d.Stage, Inputs: d.Inputs, Outcome: Succeeded}
	}
}

// TestDueChain walks a blank node through base → roles → web over a
// sequence of snapshots, each pass applying what was due: the role stage's
// effect (the web service appears) is what makes the next stage due.
func TestDueChain(t *testing.T) {
	stages := chainStages()
	records := map[string]Record{}
	gen := map[string]uint64{"n1": 1}
	desired := func(n *fleet.Node) uint64 { return gen[n.Name] }
	steps := []struct {
		name  string
		nodes []*fleet.Node
		want  string
		apply bool
	}{
		{"pending facts", []*fleet.Node{{Name: "n1", Datacenter: "dc1", InstanceID: "i-1", Pending: fleet.PendingRoles}}, "", false},
		{"joined blank", []*fleet.Node{node("n1", "i-1")}, "n1:base", false},
		{"base still due until recorded", []*fleet.Node{node("n1", "i-1")}, "n1:base", true},
		{"after base", []*fleet.Node{node("n1", "i-1")}, "n1:roles", true},
		{"roles applied, agent not reloaded yet", []*fleet.Node{node("n1", "i-1")}, "", false},
		{"agent reloaded with web", []*fleet.Node{node("n1", "i-1", "web")}, "n1:web", true},
		{"converged", []*fleet.Node{node("n1", "i-1", "web")}, "", false},
		{"excluded node", []*fleet.Node{node("n1", "i-1", "web"), node("n2", "i-2", "no-provision")}, "", false},
		{"replacement with the same name", []*fleet.Node{node("n1", "i-9")}, "n1:base", false},
	}
	for _, s := range steps {
		got := Due(s.nodes, stages, records, desired, sum)
		if dueString(got) != s.want {
			t.Fatalf("%s: due %q, want %q", s.name, dueString(got), s.want)
		}
		if s.apply {
			succeed(records, got)
		}
	}
	// A new desired generation makes only the @roles stage due again; the
	// web stage waits for it (its after no longer has current inputs).
	gen["n1"] = 2
	if got := dueString(Due([]*fleet.Node{node("n1", "i-1", "web")}, stages, records, desired, sum)); got != "n1:roles" {
		t.Errorf("new generation: due %q, want n1:roles", got)
	}
	// A changed playbook makes its stage due again.
	changed := func(s Stage) string {
		if s.Name == "base" {
			return "new"
		}
		return sum(s)
	}
	gen["n1"] = 1
	if got := dueString(Due([]*fleet.Node{node("n1", "i-1", "web")}, stages, records, desired, changed)); got != "n1:base" {
		t.Errorf("changed playbook: due %q, want n1:base", got)
	}
	// A failed record is no record.
	r := records[RecordKey(Incarnation(node("n1", "i-1")), "web")]
	r.Outcome = Failed
	records[r.Incarnation+"|web"] = r
	if got := dueString(Due([]*fleet.Node{node("n1", "i-1", "web")}, stages, records, desired, sum)); got != "n1:web" {
		t.Errorf("failed record: due %q, want n1:web", got)
	}
}

func TestDueMany(t *testing.T) {
	var nodes []*fleet.Node
	for i := range 200 {
		nodes = append(nodes, node(fmt.Sprintf("n%03d", i), fmt.Sprintf("i-%d", i)))
	}
	got := Due(nodes, chainStages(), map[string]Record{}, nil, sum)
	if len(got) != 200 || got[0].Stage != "base" || got[0].Inputs.SettingsSum == "" {
		t.Fatalf("due %d items, first %+v", len(got), got[0])
	}
}
