package tui

import (
	"strconv"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/fleetdeck/fleetdeck/fleet"
)

// alertsName is the :alerts view's kind name.
const alertsName = "alerts"

// alertsKind is the :alerts view: the alerts that were unseen when it was
// opened, and those that come while it is open, newest first. Opening it
// marks every alert seen (the header's counter goes to zero), and so does
// each alert that arrives while it is on top.
func alertsKind() *tableKind {
	return &tableKind{name: alertsName, cols: alertColumns, rows: (*shared).alertRows, nameField: fieldName,
		actions: alertsActions, empty: alertsEmpty,
		onTop: func(t *tableView) tea.Cmd { t.s.seeAlerts(); return nil }}
}

// seeAlerts marks every alert seen.
func (s *shared) seeAlerts() {
	s.alerts.seen, s.alerts.seenAt = s.alerts.lastID, s.now()
}

// openAlerts is :alerts.
func openAlerts(s *shared, _ []string) tea.Cmd {
	a := &s.alerts
	a.from, a.since = a.seen, a.seenAt
	s.seeAlerts()
	s.invalidate(alertsName)
	s.switchTo(newTable(s, alertsKind(), ""))
	return nil
}

// alertsActions: enter opens the node's detail, l its logs around the
// alert, x ssh, y copy.
func alertsActions(t *tableView) []action {
	s := t.s
	al := func() *alert {
		if r := t.selected(); r != nil {
			return s.alertOfRow(r)
		}
		return nil
	}
	node := func() *fleet.Node {
		if a := al(); a != nil {
			return s.nodeOrDeparted(a.ev.Datacenter, a.ev.Node)
		}
		return nil
	}
	return []action{
		{keys: []string{"enter"}, short: "open", desc: "the node's detail", when: func() bool { return al() != nil },
			do: func(tea.KeyPressMsg) tea.Cmd {
				a := al()
				s.push(newDetailView(s, a.ev.Datacenter, a.ev.Node))
				return nil
			}},
		s.logsAction("logs of the node around the moment it turned critical", func() (logTarget, bool) {
			a := al()
			if a == nil {
				return logTarget{}, false
			}
			return eventLogTarget(s, &a.ev)
		}),
		s.sshAction(node),
		s.copyAction(node),
	}
}

// alertOfRow returns the alert row r stands for.
func (s *shared) alertOfRow(r *row) *alert {
	id, err := strconv.ParseUint(strings.TrimPrefix(r.id, "alert-"), 10, 64)
	if err != nil {
		return nil
	}
	for _, a := range s.alerts.list {
		if a.id == id {
			return a
		}
	}
	return nil
}

// alertsEmpty explains an empty :alerts view.
func alertsEmpty(t *tableView) string {
	a := &t.s.alerts
	switch {
	case !a.on:
		return "alerts are off in this console ([alerts] enabled = false)"
	case t.total > 0:
		return ""
	}
	what := "a node turns critical"
	if a.filterText != "" {
		what = "a node matching " + sanitize(a.filterText) + " turns critical"
	}
	return "no new alerts since " + a.since.Format(time.TimeOnly) + " (an alert comes when " + what + "; :events has every change)"
}

// Alerts view columns.
const (
	acTime = iota
	acDC
	acNode
	acGroup
	acWhat
)

// alertColumns returns the alerts table's columns.
func alertColumns() []column {
	return []column{
		acTime:  {title: "TIME", min: 8, max: 19, prio: 100, sortBy: sortTime, descFirst: true},
		acDC:    {title: "DC", min: 3, max: 12, prio: 40},
		acNode:  {title: "NODE", min: 10, max: 32, flex: true, prio: 95},
		acGroup: {title: "GROUP", min: 8, max: 24, flex: true, prio: 30},
		acWhat:  {title: "WHAT", min: 12, max: 400, flex: true, prio: 80},
	}
}

// alertRows returns the rows of the alerts after the view's mark, newest
// first. Rows are built once per alert (and again when their time needs a
// date).
func (s *shared) alertRows() []*row {
	a := &s.alerts
	now := s.now()
	var rows []*row
	for i := len(a.list) - 1; i >= 0 && a.list[i].id > a.from; i-- {
		al := a.list[i]
		if r := al.row; r == nil || (len(r.cells[acTime]) == len(time.TimeOnly) && now.Sub(al.ev.Time) >= 12*time.Hour) {
			al.row = alertRow(al, now)
		}
		rows = append(rows, al.row)
	}
	return rows
}

// alertRow builds the row of alert al as seen at now.
func alertRow(al *alert, now time.Time) *row {
	e := &al.ev
	what := "critical: joined critical"
	if e.Kind == fleet.HealthChanged {
		what = eventDetail(e)
	}
	r := newRow("alert-"+strconv.FormatUint(al.id, 10), []string{
		acTime:  eventTime(e.Time, now),
		acDC:    e.Datacenter,
		acNode:  e.Node,
		acGroup: e.Group,
		acWhat:  what,
	})
	r.nums = make([]int, acWhat+1)
	r.nums[acTime] = int(e.Time.UnixNano())
	r.changedAt = e.Time
	r.health = fleet.HealthCritical
	r.name, r.dc, r.group = r.cells[acNode], r.cells[acDC], r.cells[acGroup]
	return r
}
