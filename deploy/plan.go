package deploy

import "github.com/fleetdeck/fleetdeck/fleet"

// Incarnation identifies one life of a node: "dc/name/node-id/instance-id".
// A replacement server with the same name (an autoscaling group's
// auto-heal) has a new Consul node ID and instance id, so it is a new
// incarnation, due for every stage again, while a restarted one keeps
// both and its records. Either may be empty (a node registered without
// an ID, a group without the instance-id meta): the other still tells
// replacements apart.
func Incarnation(n *fleet.Node) string {
	return n.Key() + "/" + n.ID + "/" + n.InstanceID
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
// A @roles stage is never due on a node whose desiredGen is 0 (no
// desired record: generations start at 1).
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
			// A node without desired roles (no record, no group default)
			// has nothing for @roles to apply: the chain stops there.
			if s.Roles() && (desiredGen == nil || desiredGen(n) == 0) {
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
