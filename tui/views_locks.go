package tui

import (
	"context"
	"strconv"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/fleetdeck/fleetdeck/fleet"
	"github.com/fleetdeck/fleetdeck/provision"
)

// The Locks view lists the host locks held now in Consul, by every console
// of the fleet: which host, in which datacenter, held by whom (user@host and
// the console's identity or pid), for which run and since when. It is read
// when the view opens, when this console's runs change, and every
// locksRefresh while it is on top.

// locksRefresh is how often the Locks view reads the locks while shown:
// other consoles' runs take and free hosts without this console hearing
// of it.
const locksRefresh = 3 * time.Second

// Locks view columns.
const (
	lcHost = iota
	lcDC
	lcHolder
	lcConsole
	lcRun
	lcSince
	lcCount
)

// locksMsg carries the locks read.
type locksMsg struct {
	locks []provision.HeldLock
	at    time.Time
	err   error
}

// locksKind is the Locks view.
func locksKind() *tableKind {
	return &tableKind{name: "locks", cols: locksColumns, rows: (*shared).locksRows, nameField: fieldName,
		empty: func(t *tableView) string {
			if t.total == 0 {
				return t.s.locksEmptyText()
			}
			return ""
		},
		actions: func(t *tableView) []action {
			return []action{{keys: []string{"enter"}, short: "open", desc: "the run holding the host (live here, or from this machine's history)",
				when: func() bool { r := t.selected(); return r != nil && r.runID != "" },
				do:   func(tea.KeyPressMsg) tea.Cmd { return t.s.openRun(t.selected().runID) }}}
		}}
}

// locksColumns returns the locks table's columns.
func locksColumns() []column {
	return []column{
		lcHost:    {title: "HOST", min: 10, max: 40, flex: true, prio: 100},
		lcDC:      {title: "DC", min: 3, max: 12, prio: 80},
		lcHolder:  {title: "HOLDER", min: 10, max: 40, flex: true, prio: 95},
		lcConsole: {title: "CONSOLE", min: 8, max: 30, flex: true, prio: 40},
		lcRun:     {title: "RUN", min: 8, max: 26, prio: 90},
		lcSince:   {title: "SINCE", min: 8, max: 19, prio: 70, sortBy: sortTime, descFirst: true},
	}
}

// locksRows returns a row per held lock, in the manager's order
// (datacenter, node).
func (s *shared) locksRows() []*row {
	rows := make([]*row, 0, len(s.locks))
	for i := range s.locks {
		l := &s.locks[i]
		h := l.Holder
		holder := h.User
		if holder == "" {
			holder = "unknown"
		}
		if h.Host != "" {
			holder += "@" + h.Host
		}
		console := h.Identity
		if h.PID != 0 {
			if console != "" {
				console += " "
			}
			console += "pid " + strconv.Itoa(h.PID)
		}
		since := "-"
		if !h.Since.IsZero() {
			since = h.Since.Local().Format(time.DateTime)
		}
		r := newRow(l.Target.Datacenter+"/"+l.Target.Node, []string{
			lcHost:    l.Target.Node,
			lcDC:      l.Target.Datacenter,
			lcHolder:  holder,
			lcConsole: console,
			lcRun:     h.RunID,
			lcSince:   since,
		})
		r.nums = make([]int, lcCount)
		r.nums[lcSince] = int(h.Since.UnixNano())
		r.name, r.dc = r.cells[lcHost], r.cells[lcDC]
		r.runID = h.RunID
		r.health = fleet.HealthPassing
		rows = append(rows, r)
	}
	return rows
}

// fetchLocks reads the locks held now; calls are coalesced so at most one
// is in flight.
func (s *shared) fetchLocks() tea.Cmd {
	if s.prov == nil {
		return nil
	}
	if s.locksFetching {
		s.locksAgain = true
		return nil
	}
	s.locksFetching = true
	p, now := s.prov, s.now
	return s.provCall(provTimeout, func(ctx context.Context) tea.Msg {
		locks, err := p.Locks(ctx)
		return locksMsg{locks: locks, at: now(), err: err}
	})
}

// locksDone installs what fetchLocks read. A datacenter that could not be
// read is said in the footer; what the others hold is shown.
func (s *shared) locksDone(msg locksMsg) tea.Cmd {
	s.locksFetching = false
	s.locksAt = msg.at
	s.locksErr = ""
	if msg.err != nil {
		s.locksErr = sanitize(msg.err.Error())
	}
	if msg.err == nil || len(msg.locks) > 0 {
		s.locks = msg.locks
	}
	s.invalidate("locks")
	if s.locksAgain {
		s.locksAgain = false
		return s.fetchLocks()
	}
	return nil
}

// tickLocks reads the locks again when the Locks view is on top and its
// data is older than locksRefresh.
func (s *shared) tickLocks() tea.Cmd {
	if s.top().title() != "locks" || s.now().Sub(s.locksAt) < locksRefresh {
		return nil
	}
	return s.fetchLocks()
}

// locksEmptyText explains an empty Locks view.
func (s *shared) locksEmptyText() string {
	switch {
	case s.prov == nil:
		return s.runsOffText()
	case s.locksErr != "":
		return "locks: " + s.locksErr
	case s.locksAt.IsZero():
		return "reading the host locks from Consul…"
	}
	return "no host is locked: no run holds a host now (read " + ago(s.now(), s.locksAt) + " ago)"
}
