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
func (m *Model) locksRows() []*row {
	rows := make([]*row, 0, len(m.locks))
	for i := range m.locks {
		l := &m.locks[i]
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
func (m *Model) fetchLocks() tea.Cmd {
	if m.prov == nil {
		return nil
	}
	if m.locksFetching {
		m.locksAgain = true
		return nil
	}
	m.locksFetching = true
	p, now := m.prov, m.now
	return m.provCall(provTimeout, func(ctx context.Context) tea.Msg {
		locks, err := p.Locks(ctx)
		return locksMsg{locks: locks, at: now(), err: err}
	})
}

// locksDone installs what fetchLocks read. A datacenter that could not be
// read is said in the footer; what the others hold is shown.
func (m *Model) locksDone(msg locksMsg) tea.Cmd {
	m.locksFetching = false
	m.locksAt = msg.at
	m.locksErr = ""
	if msg.err != nil {
		m.locksErr = sanitize(msg.err.Error())
	}
	if msg.err == nil || len(msg.locks) > 0 {
		m.locks = msg.locks
	}
	m.src[viewLocks].force = true
	if m.locksAgain {
		m.locksAgain = false
		return m.fetchLocks()
	}
	return nil
}

// tickLocks reads the locks again when the Locks view is on top and its
// data is older than locksRefresh.
func (m *Model) tickLocks() tea.Cmd {
	if m.top().kind != viewLocks || m.now().Sub(m.locksAt) < locksRefresh {
		return nil
	}
	return m.fetchLocks()
}

// locksEmptyText explains an empty Locks view.
func (m *Model) locksEmptyText() string {
	switch {
	case m.prov == nil:
		return m.runsOffText()
	case m.locksErr != "":
		return "locks: " + m.locksErr
	case m.locksAt.IsZero():
		return "reading the host locks from Consul…"
	}
	return "no host is locked: no run holds a host now (read " + ago(m.now(), m.locksAt) + " ago)"
}
