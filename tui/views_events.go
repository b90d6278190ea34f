package tui

import (
	"strconv"
	"strings"
	"time"

	"github.com/fleetdeck/fleetdeck/fleet"
)

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
func (m *Model) eventRows() []*row {
	evs := m.scope.Events
	rows := make([]*row, 0, len(evs))
	next := make(map[uint64]*row, len(m.snap.Events))
	now := m.now()
	for i := len(evs) - 1; i >= 0; i-- {
		e := &evs[i]
		r, ok := m.eventCache[e.Seq]
		if !ok || r.event.Time != e.Time || (len(r.cells[ecTime]) == len(time.TimeOnly) && now.Sub(e.Time) >= 12*time.Hour) {
			r = eventRow(e, now)
		}
		next[e.Seq] = r
		rows = append(rows, r)
	}
	m.eventCache = next
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
