package tui

import (
	"strconv"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/fleetdeck/fleetdeck/fleet"
	"github.com/fleetdeck/fleetdeck/provision"
)

// runsKind is the Runs view: this console's running and queued runs and
// the history, newest first.
func runsKind() *tableKind {
	return &tableKind{name: "runs", cols: runsColumns, rows: (*shared).runsRows, nameField: fieldName,
		actions: runsActions, empty: runsEmpty}
}

// runsEmpty explains an empty Runs view.
func runsEmpty(t *tableView) string {
	s := t.s
	switch {
	case s.prov == nil:
		return s.runsOffText()
	case s.runsErr != "":
		return "runs: " + s.runsErr
	case t.total == 0 && s.ro:
		return "no runs yet (this console is read-only: runs launched elsewhere on this machine show here)"
	case t.total == 0:
		return "no runs yet: press r on a node, role or group to run a playbook"
	}
	return ""
}

// runsActions are the Runs view's own keys.
func runsActions(t *tableView) []action {
	s := t.s
	sel := func() *provision.RunInfo {
		if r := t.selected(); r != nil {
			return s.runInfo(r.id)
		}
		return nil
	}
	return append([]action{
		{keys: []string{"enter"}, short: "open", desc: "the run: hosts, tasks, output (live, or replayed from history)",
			when: func() bool { return t.selected() != nil },
			do:   func(tea.KeyPressMsg) tea.Cmd { return s.openRun(t.selected().id) }},
	}, s.runControlActions(sel)...)
}

// runControlActions are the keys acting on a run (the Runs view's
// selection, the run view's run): cancel, re-run, re-run what did not
// succeed.
func (s *shared) runControlActions(run func() *provision.RunInfo) []action {
	return []action{
		{keys: []string{"c"}, short: "cancel", desc: "cancel the run (asks y/n; only this console's runs)", dangerous: true,
			when: func() bool { ri := run(); return ri != nil && !ri.Status.Final() && ri.Live },
			do: func(tea.KeyPressMsg) tea.Cmd {
				ri := run()
				s.askCancel(ri.ID, ri.Status)
				return nil
			}},
		// c on another console's run says whose it is (not in the footer).
		{keys: []string{"c"}, dangerous: true,
			when: func() bool { ri := run(); return ri != nil && !ri.Status.Final() && !ri.Live },
			do: func(tea.KeyPressMsg) tea.Cmd {
				ri := run()
				s.setFlash("run "+sanitize(ri.ID)+" is another console's (by "+sanitize(ri.Who)+"): only that console can cancel it", true)
				return nil
			}},
		// c on an ended run says so (not in the footer or the help).
		{keys: []string{"c"}, dangerous: true,
			when: func() bool { ri := run(); return ri != nil && ri.Status.Final() },
			do: func(tea.KeyPressMsg) tea.Cmd {
				ri := run()
				s.askCancel(ri.ID, ri.Status)
				return nil
			}},
		{keys: []string{"R"}, short: "rerun", desc: "re-run with the same settings (preview first)", dangerous: true,
			when: func() bool { ri := run(); return ri != nil && ri.HostVars == nil },
			do:   func(tea.KeyPressMsg) tea.Cmd { return s.rerun(run().ID, false) }},
		{keys: []string{"F"}, short: "rerun failed", desc: "re-run on the hosts that failed, were unreachable or did not finish (preview first)", dangerous: true,
			when: func() bool {
				ri := run()
				return ri != nil && ri.HostVars == nil && ri.Status.Final() && ri.Status != provision.RunOK
			},
			do: func(tea.KeyPressMsg) tea.Cmd { return s.rerun(run().ID, true) }},
		// R or F on a run that carried per-host variables (a roles apply)
		// says why it cannot be re-run (not in the footer or the help):
		// its values were that moment's desired state.
		{keys: []string{"R", "F"}, dangerous: true,
			when: func() bool { ri := run(); return ri != nil && ri.HostVars != nil },
			do: func(tea.KeyPressMsg) tea.Cmd {
				s.setFlash("run "+sanitize(run().ID)+" applied per-host values (desired roles) as they were then: a re-run could undo a later change; apply the current desired state instead (o, or fleetdeck roles apply)", true)
				return nil
			}},
	}
}

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
		// A run id (a ULID) shrinks to an unambiguous prefix, which is
		// what `fleetdeck runs show` takes.
		rcID:       {title: "ID", min: 12, max: 26, flex: true, prio: 100},
		rcStarted:  {title: "STARTED", min: 8, max: 15, prio: 70, sortBy: sortTime, descFirst: true},
		rcWho:      {title: "WHO", min: 4, max: 16, flex: true, prio: 30},
		rcPlaybook: {title: "PLAYBOOK", min: 8, max: 30, flex: true, prio: 95},
		rcScope:    {title: "SCOPE", min: 20, max: 40, flex: true, prio: 90, words: true},
		rcHosts:    num("HOSTS", 60),
		rcStatus:   {title: "STATUS", min: 9, max: 13, prio: 98},
		rcOK:       num("OK", 55),
		rcChanged:  num("CHANGED", 54),
		rcFailed:   num("FAILED", 57),
		rcUnreach:  num("UNREACH", 56),
		rcExit:     num("EXIT", 50),
		rcNote:     {title: "NOTE", min: 6, max: 200, flex: true, prio: 40, words: true},
	}
}

// runsRows returns a row per run, newest first as the manager lists them.
// Rows are cached by id and rebuilt only when the run's line changed.
func (s *shared) runsRows() []*row {
	rows := make([]*row, 0, len(s.runs))
	next := make(map[string]*row, len(s.runs))
	for i := range s.runs {
		ri := &s.runs[i]
		key := runKey(ri, s.now())
		r, ok := s.runCache[ri.ID]
		if !ok || r.search != key {
			r = s.runRow(ri)
			r.search = key
		}
		next[ri.ID] = r
		rows = append(rows, r)
	}
	s.runCache = next
	return rows
}

// runKey is a fingerprint of what a runs row shows, to reuse its row.
func runKey(ri *provision.RunInfo, now time.Time) string {
	c := ri.Counts
	return string(ri.Status) + "|" + ri.QueueReason + "|" + strconv.Itoa(ri.Hosts) + "|" +
		strconv.Itoa(c[provision.HostOK]) + "," + strconv.Itoa(c[provision.HostChanged]) + "," +
		strconv.Itoa(c[provision.HostFailed]) + "," + strconv.Itoa(c[provision.HostUnreachable]) + "|" +
		strconv.Itoa(ri.ExitCode) + "|" + ri.Ended.String() + "|" + ri.Started.String() + "|" + ri.Who + "|" +
		strconv.FormatBool(now.Sub(ri.Started) < 12*time.Hour)
}

// runRow builds the row of run ri.
func (s *shared) runRow(ri *provision.RunInfo) *row {
	started, exit, note := "-", "", ri.QueueReason
	if !ri.Started.IsZero() {
		// The clock alone for the last 12 hours, as in Events.
		started = eventTime(ri.Started.Local(), s.now())
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
		rcScope:    scopeText(ri.Scope, ri.Subject),
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
	r.health, r.style = s.runStatusStyle(ri.Status)
	return r
}

// runStatusStyle maps a run status to a health (for the faults toggle and
// colour) and a style override for states health has no colour for.
func (s *shared) runStatusStyle(rs provision.RunStatus) (fleet.Health, string) {
	switch rs {
	case provision.RunRunning:
		return fleet.HealthPassing, s.st.title
	case provision.RunQueued:
		return fleet.HealthWarning, ""
	case provision.RunOK:
		return fleet.HealthPassing, s.st.ok
	case provision.RunCancelled, provision.RunInterrupted, provision.RunTimedOut:
		return fleet.HealthWarning, ""
	}
	return fleet.HealthCritical, ""
}

// runInfo returns this console's list entry of run id, or nil.
func (s *shared) runInfo(id string) *provision.RunInfo {
	for i := range s.runs {
		if s.runs[i].ID == id {
			return &s.runs[i]
		}
	}
	return nil
}

// scopeText names what a run ran on: "node dc1/web-1", "role web", "the
// marked 3 nodes", or a re-run's own description ("the 2 hosts of run …
// that failed or did not finish").
func scopeText(scope provision.LaunchScope, subject string) string {
	if scope == provision.ScopeMarked {
		if strings.HasPrefix(subject, "the ") {
			return subject
		}
		return "the marked " + subject
	}
	return string(scope) + " " + subject
}
