package deploy

import "github.com/fleetdeck/fleetdeck/fleet"

// Incarnation identifies one life of a node: a replacement server with the
// same name (an autoscaling group's auto-heal) is a new incarnation, due
// for every stage again, while a restarted one keeps its records.
//
// The issue asks for the Consul node ID plus the instance id. fleet.Node
// does not carry the node ID yet (fleet must add Node.ID from the catalog
// node list's ID field); until then the datacenter, the name and the
// instance id (node meta "instance-id", set at boot) stand in. A node
// without an instance id is identified by its name alone, so its
// replacement is not told apart: that is the gap Node.ID closes.
func Incarnation(n *fleet.Node) string {
	return n.Key() + "/" + n.InstanceID
}

// Due returns every stage due on every node of the snapshot, in the
// stages' order (Config.Stages is ordered by after) then the nodes'.
//
// A stage is due on a node when the node matches its select, every stage
// in its after has a successful record for this incarnation made with
// that stage's current inputs, and the stage itself has no such record.
// Current inputs are playbookSum(stage) (hex SHA-256 of its playbook),
// Stage.SettingsSum and, for @roles stages only, desiredGen(node).
// records are keyed by RecordKey.
//
// Nodes with Pending facts are never due: their roles (and so select and
// the role stage's outcome) are not known yet, and a run on a guess could
// undo what the agent is about to report.
func Due(nodes []*fleet.Node, stages []Stage, records map[string]Record, desiredGen func(*fleet.Node) uint64, playbookSum func(Stage) string) []DueItem {
	var out []DueItem
	// Inputs per stage are the same for every node except the desired
	// generation; compute the sums once per pass.
	sums := make(map[string]Inputs, len(stages))
	for _, s := range stages {
		sums[s.Name] = Inputs{PlaybookSum: playbookSum(s), SettingsSum: s.SettingsSum()}
	}
	inputs := func(s Stage, n *fleet.Node) Inputs {
		in := sums[s.Name]
		if s.Roles() && desiredGen != nil {
			in.DesiredGen = desiredGen(n)
		}
		return in
	}
	byName := make(map[string]Stage, len(stages))
	for _, s := range stages {
		byName[s.Name] = s
	}
	applied := func(inc string, s Stage, n *fleet.Node) bool {
		r, ok := records[RecordKey(inc, s.Name)]
		return ok && r.Outcome == Succeeded && r.Inputs == inputs(s, n)
	}
	for _, s := range stages {
		for _, n := range nodes {
			if n.Pending != 0 {
				continue
			}
			if s.Selector != nil && !s.Selector.Match(n) {
				continue
			}
			inc := Incarnation(n)
			ready := true
			for _, a := range s.After {
				if !applied(inc, byName[a], n) {
					ready = false
					break
				}
			}
			if !ready || applied(inc, s, n) {
				continue
			}
			out = append(out, DueItem{Node: n.Key(), Name: n.Name, Incarnation: inc, Stage: s.Name, Inputs: inputs(s, n)})
		}
	}
	return out
}
