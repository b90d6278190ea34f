package tui

import (
	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/fleetdeck/fleetdeck/provision"
)

// handleKey dispatches a key press: to the prompt while one is open,
// otherwise through the key map.
func (m *Model) handleKey(msg tea.KeyPressMsg) tea.Cmd {
	if m.confirm != nil {
		return m.handleConfirm(msg)
	}
	if m.input != nil {
		return m.handleInput(msg)
	}
	v := m.top()
	k := &m.keys
	switch v.kind {
	case viewLaunch:
		return m.handleForm(v, msg)
	case viewPreview:
		if cmd, ok := m.handlePreview(v, msg); ok {
			return cmd
		}
	case viewRun:
		if cmd, ok := m.handleRun(v, msg); ok {
			return cmd
		}
	case viewLogs:
		if cmd, ok := m.handleLogs(v, msg); ok {
			return cmd
		}
	case viewLogEntry:
		if key.Matches(msg, k.Copy) {
			return m.copyEntry(v.entry)
		}
	}
	if d, ok := k.step(msg, m.bodyHeight()); ok {
		m.move(v, d)
		return nil
	}
	switch {
	case key.Matches(msg, k.Quit):
		return m.quit()
	case key.Matches(msg, k.Help):
		if v.kind == viewHelp {
			m.pop()
		} else {
			m.push(newView(viewHelp))
		}
	case key.Matches(msg, k.Back):
		m.back()
	case key.Matches(msg, k.Command):
		m.input = &prompt{kind: ':'}
	case key.Matches(msg, k.Filter):
		if v.kind.isTable() {
			m.input = &prompt{kind: '/', text: v.filterText, prev: v.filterText}
		}
	case key.Matches(msg, k.Sort):
		m.cycleSort(v)
	case key.Matches(msg, k.Reverse):
		if v.kind.isTable() {
			if v.sortCol < 0 {
				// Reversing the natural order is meaningful too (oldest
				// events first, names Z→A): sort by the first column.
				v.sortCol = 0
			}
			v.desc = !v.desc
			v.dirty = true
		}
	case key.Matches(msg, k.Mark):
		if v.kind == viewNodes && v.cursor < len(v.rows) {
			if n := v.rows[v.cursor].node; n != nil {
				if m.marks[n.Key()] {
					delete(m.marks, n.Key())
				} else {
					m.marks[n.Key()] = true
				}
				m.move(v, 1)
			}
		}
	case key.Matches(msg, k.MarkAll):
		if v.kind == viewNodes {
			for _, r := range v.rows {
				if r.node != nil {
					m.marks[r.node.Key()] = true
				}
			}
		}
	case key.Matches(msg, k.Unmark):
		clear(m.marks)
	case key.Matches(msg, k.Faults):
		// Only the tables filter by faults; elsewhere (a Logs view, an
		// entry) the key would silently change the view behind.
		if !v.kind.showsFaults() {
			return nil
		}
		m.faults = !m.faults
		for _, sv := range m.stack {
			sv.dirty = true
		}
	case key.Matches(msg, k.Enter):
		return m.drill(v)
	case key.Matches(msg, k.Logs):
		switch v.kind {
		case viewNodes, viewDetail, viewEvents, viewRoles, viewGroups:
			return m.openLogs(v)
		}
	case key.Matches(msg, k.Run):
		switch v.kind {
		case viewNodes, viewRoles, viewGroups, viewDetail:
			return m.openLaunch(v)
		}
	case key.Matches(msg, k.Cancel):
		if ri := m.runsSelected(v); ri != nil {
			m.askCancel(ri.ID, ri.Status)
		}
	case key.Matches(msg, k.Rerun):
		if ri := m.runsSelected(v); ri != nil {
			return m.rerun(ri.ID, false)
		}
	case key.Matches(msg, k.RerunFailed):
		if ri := m.runsSelected(v); ri != nil {
			return m.rerun(ri.ID, true)
		}
	}
	return nil
}

// runsSelected returns the run under the cursor when v is the runs view.
func (m *Model) runsSelected(v *view) *provision.RunInfo {
	if v.kind != viewRuns {
		return nil
	}
	return m.selectedRun(v)
}

// back leaves the top view; on the root view it clears the filter.
func (m *Model) back() {
	if m.pop() {
		return
	}
	if v := m.top(); v.filterText != "" {
		v.setFilter("")
	}
}

// cycleSort moves the sort to the next column; after the last column it
// returns to the view's natural order.
func (m *Model) cycleSort(v *view) {
	if !v.kind.isTable() {
		return
	}
	cols := m.columns(v.kind)
	v.sortCol++
	if v.sortCol >= len(cols) {
		v.sortCol, v.desc = -1, false
	} else {
		v.desc = cols[v.sortCol].descFirst
	}
	v.dirty = true
}

// drill opens what the selected row stands for: a role's or a group's
// nodes, a node's detail, or the detail of the node an event is about.
func (m *Model) drill(v *view) tea.Cmd {
	r := v.selected()
	if r == nil {
		return nil
	}
	switch v.kind {
	case viewRuns:
		return m.openRun(r.id)
	case viewLocks:
		// The run holding the host: live here, or from this machine's
		// history (another machine's run is not).
		if r.runID != "" {
			return m.openRun(r.runID)
		}
	case viewNodes:
		m.push(newDetail(r.node.Datacenter, r.node.Name))
	case viewRoles:
		// Row ids are the raw Consul names: filters compare against raw
		// strings, not their sanitised display form.
		nv := newView(viewNodes)
		nv.setFilter(quoteTerm("role", r.id))
		m.push(nv)
	case viewGroups:
		nv := newView(viewNodes)
		nv.setFilter(quoteTerm("group", r.id))
		m.push(nv)
	case viewEvents:
		e := r.event
		switch {
		case e.Node != "":
			m.push(newDetail(e.Datacenter, e.Node))
		case e.Group != "":
			nv := newView(viewNodes)
			nv.setFilter(quoteTerm("group", e.Group))
			m.push(nv)
		}
	}
	return nil
}
