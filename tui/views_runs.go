package tui

import (
	"strconv"
	"time"

	"github.com/fleetdeck/fleetdeck/fleet"
	"github.com/fleetdeck/fleetdeck/provision"
)

// Runs view columns.
const (
	rcID = iota
	rcStarted
	rcWho
	rcPlaybook
	rcScope
	rcHosts
	rcStatus
	rcOK
	rcChanged
	rcFailed
	rcUnreach
	rcExit
	rcNote
	rcCount
)

// runsColumns returns the runs table's columns.
func runsColumns() []column {
	num := func(t string, prio int) column {
		return column{title: t, min: len(t) + 1, max: 8, right: true, prio: prio, sortBy: sortNum, descFirst: true}
	}
	return []column{
		rcID:       {title: "ID", min: 8, max: 26, prio: 100},
		rcStarted:  {title: "STARTED", min: 8, max: 19, prio: 70, sortBy: sortTime, descFirst: true},
		rcWho:      {title: "WHO", min: 4, max: 16, flex: true, prio: 30},
		rcPlaybook: {title: "PLAYBOOK", min: 8, max: 30, flex: true, prio: 95},
		rcScope:    {title: "SCOPE", min: 10, max: 32, flex: true, prio: 80},
		rcHosts:    num("HOSTS", 60),
		rcStatus:   {title: "STATUS", min: 9, max: 13, prio: 98},
		rcOK:       num("OK", 55),
		rcChanged:  num("CHANGED", 54),
		rcFailed:   num("FAILED", 57),
		rcUnreach:  num("UNREACH", 56),
		rcExit:     num("EXIT", 50),
		rcNote:     {title: "NOTE", min: 6, max: 200, flex: true, prio: 40},
	}
}

// runsRows returns a row per run, newest first as the manager lists them.
// Rows are cached by id and rebuilt only when the run's line changed.
func (m *Model) runsRows() []*row {
	rows := make([]*row, 0, len(m.runs))
	next := make(map[string]*row, len(m.runs))
	for i := range m.runs {
		ri := &m.runs[i]
		key := runKey(ri)
		r, ok := m.runCache[ri.ID]
		if !ok || r.search != key {
			r = m.runRow(ri)
			r.search = key
		}
		next[ri.ID] = r
		rows = append(rows, r)
	}
	m.runCache = next
	return rows
}

// runKey is a fingerprint of what a runs row shows, to reuse its row.
func runKey(ri *provision.RunInfo) string {
	c := ri.Counts
	return string(ri.Status) + "|" + ri.QueueReason + "|" + strconv.Itoa(ri.Hosts) + "|" +
		strconv.Itoa(c[provision.HostOK]) + "," + strconv.Itoa(c[provision.HostChanged]) + "," +
		strconv.Itoa(c[provision.HostFailed]) + "," + strconv.Itoa(c[provision.HostUnreachable]) + "|" +
		strconv.Itoa(ri.ExitCode) + "|" + ri.Ended.String() + "|" + ri.Started.String() + "|" + ri.Who
}

// runRow builds the row of run ri.
func (m *Model) runRow(ri *provision.RunInfo) *row {
	started, exit, note := "-", "", ri.QueueReason
	if !ri.Started.IsZero() {
		started = ri.Started.Local().Format(time.DateTime)
	}
	if ri.Status.Final() && ri.ExitCode >= 0 {
		exit = strconv.Itoa(ri.ExitCode)
	}
	if ri.Check {
		if note != "" {
			note = "check · " + note
		} else {
			note = "check"
		}
	}
	c := ri.Counts
	r := newRow(ri.ID, []string{
		rcID:       ri.ID,
		rcStarted:  started,
		rcWho:      ri.Who,
		rcPlaybook: ri.Playbook,
		rcScope:    string(ri.Scope) + " " + ri.Subject,
		rcHosts:    strconv.Itoa(ri.Hosts),
		rcStatus:   string(ri.Status),
		rcOK:       strconv.Itoa(c[provision.HostOK]),
		rcChanged:  strconv.Itoa(c[provision.HostChanged]),
		rcFailed:   strconv.Itoa(c[provision.HostFailed]),
		rcUnreach:  strconv.Itoa(c[provision.HostUnreachable]),
		rcExit:     exit,
		rcNote:     note,
	})
	r.nums = make([]int, rcCount)
	r.nums[rcStarted] = int(ri.Started.UnixNano())
	r.nums[rcHosts] = ri.Hosts
	r.nums[rcOK], r.nums[rcChanged] = c[provision.HostOK], c[provision.HostChanged]
	r.nums[rcFailed], r.nums[rcUnreach] = c[provision.HostFailed], c[provision.HostUnreachable]
	r.nums[rcExit] = ri.ExitCode
	r.name = r.cells[rcPlaybook]
	r.health, r.style = m.runStatusStyle(ri.Status)
	return r
}

// runStatusStyle maps a run status to a health (for the faults toggle and
// colour) and a style override for states health has no colour for.
func (m *Model) runStatusStyle(s provision.RunStatus) (fleet.Health, string) {
	switch s {
	case provision.RunRunning:
		return fleet.HealthPassing, m.st.title
	case provision.RunQueued:
		return fleet.HealthWarning, ""
	case provision.RunOK:
		return fleet.HealthPassing, m.st.ok
	case provision.RunCancelled, provision.RunInterrupted, provision.RunTimedOut:
		return fleet.HealthWarning, ""
	}
	return fleet.HealthCritical, ""
}

// selectedRun returns the run under the cursor of the runs view.
func (m *Model) selectedRun(v *view) *provision.RunInfo {
	r := v.selected()
	if r == nil {
		return nil
	}
	for i := range m.runs {
		if m.runs[i].ID == r.id {
			return &m.runs[i]
		}
	}
	return nil
}
