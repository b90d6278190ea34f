package tui

import (
	"strconv"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/fleetdeck/fleetdeck/fleet"
)

// eventsKind is the Events view: the journal, newest first.
func eventsKind() *tableKind {
	return &tableKind{name: "events", cols: eventColumns, rows: (*shared).eventRows, nameField: fieldName, actions: eventsActions}
}

// eventsActions are the Events view's own keys: enter opens what the event
// is about, l its logs at its time. Events have no run key: a run targets
// nodes, roles or groups.
func eventsActions(t *tableView) []action {
	s := t.s
	event := func() *fleet.Event {
		if r := t.selected(); r != nil {
			return r.event
		}
		return nil
	}
	return []action{
		{keys: []string{"enter"}, short: "open", desc: "the event's node detail (a group-size event: the group's nodes)",
			when: func() bool { e := event(); return e != nil && (e.Node != "" || e.Group != "") },
			do: func(tea.KeyPressMsg) tea.Cmd {
				switch e := event(); {
				case e.Node != "":
					s.push(newDetailView(s, e.Datacenter, e.Node))
				case e.Group != "":
					s.push(newNodesView(s, quoteTerm("group", e.Group)))
				}
				return nil
			}},
		s.logsAction("logs of the event's node (or group) around the event's time", func() (logTarget, bool) {
			e := event()
			if e == nil {
				return logTarget{}, false
			}
			return eventLogTarget(s, e)
		}),
		s.sshAction(func() *fleet.Node { return eventNode(s, event()) }),
		s.copyAction(func() *fleet.Node { return eventNode(s, event()) }),
	}
}

// eventNode returns the node event e is about (as last seen, if it left),
// or nil.
func eventNode(s *shared, e *fleet.Event) *fleet.Node {
	if e == nil || e.Node == "" {
		return nil
	}
	return s.nodeOrDeparted(e.Datacenter, e.Node)
}

// eventLogTarget is what l opens on event e: its node (or its group's
// nodes) around the event, whatever its kind.
func eventLogTarget(s *shared, e *fleet.Event) (logTarget, bool) {
	var t logTarget
	switch {
	case e.Node != "":
		t.title = "node " + e.Node
		if n := s.nodeOrDeparted(e.Datacenter, e.Node); n != nil {
			t.nodes = []*fleet.Node{n}
		} else {
			t.names = []string{e.Node}
		}
	case e.Group != "":
		t.title = "group " + e.Group
		for _, n := range s.scope.Nodes {
			if n.Group == e.Group {
				t.nodes = append(t.nodes, n)
			}
		}
	default:
		s.setFlash("this event is about no node or group", false)
		return t, false
	}
	t.incident, t.what = e.Time, eventDetail(e)
	if e.Node != "" {
		t.what = e.Node + " " + t.what
	}
	return t, true
}

// Events view columns.
const (
	ecTime = iota
	ecKind
	ecDC
	ecNode
	ecGroup
	ecDetail
)

// eventColumns returns the events table's columns.
func eventColumns() []column {
	return []column{
		ecTime:   {title: "TIME", min: 8, max: 19, prio: 100, sortBy: sortTime, descFirst: true},
		ecKind:   {title: "KIND", min: 6, max: 10, prio: 90},
		ecDC:     {title: "DC", min: 3, max: 12, prio: 40},
		ecNode:   {title: "NODE", min: 10, max: 32, flex: true, prio: 95},
		ecGroup:  {title: "GROUP", min: 8, max: 24, flex: true, prio: 30},
		ecDetail: {title: "DETAIL", min: 12, max: 400, flex: true, prio: 80},
	}
}

// eventRows returns a row per journal event in scope, newest first.
// Events are immutable, so rows are cached by sequence number; the cache
// is trimmed to the events still in the journal.
func (s *shared) eventRows() []*row {
	evs := s.scope.Events
	rows := make([]*row, 0, len(evs))
	next := make(map[uint64]*row, len(s.snap.Events))
	now := s.now()
	for i := len(evs) - 1; i >= 0; i-- {
		e := &evs[i]
		r, ok := s.eventCache[e.Seq]
		if !ok || r.event.Time != e.Time || (len(r.cells[ecTime]) == len(time.TimeOnly) && now.Sub(e.Time) >= 12*time.Hour) {
			r = eventRow(e, now)
		}
		next[e.Seq] = r
		rows = append(rows, r)
	}
	s.eventCache = next
	return rows
}

// eventTime formats an event's time: the clock alone for the last 12
// hours, with the date before that (a console left open for days must not
// show yesterday's 03:00 as today's).
func eventTime(t, now time.Time) string {
	if now.Sub(t) < 12*time.Hour {
		return t.Format(time.TimeOnly)
	}
	return t.Format("Jan 02 15:04:05")
}

// eventRow builds the row of event e as seen at now.
func eventRow(e *fleet.Event, now time.Time) *row {
	r := newRow(strconv.FormatUint(e.Seq, 10), []string{
		ecTime:   eventTime(e.Time, now),
		ecKind:   e.Kind.String(),
		ecDC:     e.Datacenter,
		ecNode:   e.Node,
		ecGroup:  e.Group,
		ecDetail: eventDetail(e),
	})
	r.event = e
	r.nums = make([]int, ecDetail+1)
	r.nums[ecTime] = int(e.Time.UnixNano())
	r.changedAt = e.Time
	r.name, r.dc, r.group = r.cells[ecNode], r.cells[ecDC], r.cells[ecGroup]
	switch e.Kind {
	case fleet.HealthChanged:
		r.health = e.To
	case fleet.NodeLeft:
		r.health = fleet.HealthWarning
	}
	return r
}

// eventDetail describes what an event records, in one line (raw: the
// caller sanitises it).
func eventDetail(e *fleet.Event) string {
	switch e.Kind {
	case fleet.NodeJoined:
		if e.Group != "" {
			return "node joined group " + e.Group
		}
		return "node joined"
	case fleet.NodeLeft:
		if e.Group != "" {
			return "node left group " + e.Group
		}
		return "node left"
	case fleet.HealthChanged:
		what := "node"
		if e.CheckID != "" {
			name := e.CheckName
			if name == "" {
				name = e.CheckID
			}
			what = "check " + name
		}
		// The transition first: it is what matters when a narrow
		// terminal cuts the line.
		s := e.From.String() + " → " + e.To.String() + ": " + what
		if out := strings.TrimSpace(e.Output); out != "" {
			s += ": " + out
		}
		return s
	case fleet.RolesChanged:
		return "roles " + joinOrDash(e.OldRoles) + " → " + joinOrDash(e.NewRoles)
	case fleet.GroupSizeChanged:
		return "group size " + strconv.Itoa(e.Before) + " → " + strconv.Itoa(e.After)
	}
	return e.Kind.String()
}

// joinOrDash joins xs with commas, or returns "-" for none.
func joinOrDash(xs []string) string {
	if len(xs) == 0 {
		return "-"
	}
	return strings.Join(xs, ",")
}
