package tui

import (
	"strconv"
	"strings"
	"time"

	"github.com/fleetdeck/fleetdeck/fleet"
	"github.com/fleetdeck/fleetdeck/roles"
)

// maxDetailHistory bounds the generations Node detail lists (h lists
// them all).
const maxDetailHistory = 8

// stateStyle is the style a desired-state state is drawn in.
func (s *shared) stateStyle(st roles.State) string {
	switch st {
	case roles.StateConverged:
		return s.st.ok
	case roles.StateFailed, roles.StateDrift:
		return s.st.bad
	case roles.StatePending, roles.StateApplying:
		return s.st.warn
	}
	return ""
}

// desiredLines renders Node detail's desired-state section: the record
// (roles, maintenance, generation, who, when, why), the node's state and
// what differs, the last apply run, a tracked change, and the newest
// generations of the audit trail.
func (s *shared) desiredLines(n *fleet.Node, width int) []textLine {
	st := &s.st
	var out []textLine
	add := func(style, text string) { out = append(out, textLine{style: style, text: text}) }
	field := func(style, name, value string) {
		for i, l := range wordWrap(value, max(width-16, 10)) {
			label := ""
			if i == 0 {
				label = name
			}
			add(style, "  "+padWord(label, 13)+l)
		}
	}
	if s.rl.svc == nil {
		// Roles are off: o, m and h say why when pressed.
		return nil
	}
	add("", "")
	add(st.colHeader, "Desired state (roles and maintenance fleetdeck manages)")
	key := n.Key()
	d, managed := s.rl.desired[key]
	state := s.nodeState(key)
	if !managed {
		if !s.rl.listed {
			add(st.dim, "  reading the desired records from Consul KV…")
		} else {
			what := "unmanaged: no desired record (o changes its roles, m its maintenance)"
			if s.ro {
				what = "unmanaged: no desired record"
			}
			field("", "state", what)
		}
		if extra := nodeManagedRoles(n); len(extra) > 0 {
			field(st.dim, "catalog", "managed services "+rolesList(extra)+" (not recorded in KV)")
		}
	} else {
		field(s.stateStyle(state.State), "state", string(state.State)+": "+sanitize(state.Reason))
		if len(state.Missing) > 0 {
			field(st.bad, "missing", rolesList(state.Missing))
		}
		if len(state.Extra) > 0 {
			field(st.bad, "extra", rolesList(state.Extra))
		}
		if len(state.Differ) > 0 {
			field(st.bad, "differ", rolesList(state.Differ)+" (tags or port not as the catalog defines them)")
		}
		field("", "desired", rolesList(d.Roles)+"  maintenance "+maintText(d.Maintenance)+"  generation "+strconv.FormatUint(d.Generation, 10))
		field("", "changed", d.When.Local().Format(time.DateTime)+" by "+sanitize(d.Who)+": "+sanitize(d.Reason))
		if d.RevertOf != 0 {
			field("", "restores", "generation "+strconv.FormatUint(d.RevertOf, 10))
		}
		run := roles.LatestRun(s.rl.runsBy[key], &d)
		if run.ID != "" {
			field("", "last apply", "run "+sanitize(run.ID)+" "+string(run.Status)+" (generation "+strconv.FormatUint(run.Generation, 10)+")")
		} else {
			field(st.dim, "last apply", "no apply run known to this console for the node")
		}
	}
	if roles.InMaintenance(n) {
		m := "maintenance on"
		if r := roles.MaintenanceReason(n); r != "" {
			m += ": " + sanitize(r)
		}
		field(st.healthStyle(fleet.HealthMaintenance), "in catalog", m)
	}
	if t := s.lastTrack(key); t != nil {
		now := s.now()
		if f, ok := t.final[key]; ok {
			took := compactDuration(t.ended.Sub(t.started))
			if !t.done() {
				took = compactDuration(now.Sub(t.started))
			}
			field(s.stateStyle(f.State), "tracked", string(f.State)+" "+took+" after confirm (run "+sanitize(t.runID)+")")
		} else {
			field(st.warn, "tracking", "generation "+strconv.FormatUint(t.gens[key], 10)+" "+string(state.State)+" for "+
				compactDuration(now.Sub(t.started))+" (run "+sanitize(t.runID)+")")
		}
	}
	if s.rl.listErr != "" {
		field(st.bad, "kv", s.rl.listErr)
	}
	h := s.rl.hist[key]
	switch {
	case h == nil || (!h.read && len(h.recs) == 0):
		add(st.dim, "  history: reading…")
	case h.err != "" && len(h.recs) == 0:
		add(st.bad, "  history: "+h.err)
	case len(h.recs) > 0:
		what := "h picks one to revert to"
		if s.ro {
			what = "h lists them"
		}
		add(st.colHeader, "History ("+strconv.Itoa(len(h.recs))+", newest first; "+what+")")
		for i := len(h.recs) - 1; i >= 0 && i >= len(h.recs)-maxDetailHistory; i-- {
			add("", "  "+historyLine(h.recs[i], d.Generation))
		}
		if len(h.recs) > maxDetailHistory {
			add(st.dim, "  … "+plural(len(h.recs)-maxDetailHistory, "older generation")+": h lists them all")
		}
	}
	return trimRight(out)
}

// trimRight drops trailing spaces of every line (padded fields).
func trimRight(lines []textLine) []textLine {
	for i := range lines {
		lines[i].text = strings.TrimRight(lines[i].text, " ")
	}
	return lines
}
