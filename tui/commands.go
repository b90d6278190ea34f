package tui

import (
	"slices"
	"strings"

	tea "charm.land/bubbletea/v2"
)

// commandHelp documents the ":" commands for the help view.
func commandHelp() [][2]string {
	return [][2]string{
		{":nodes", "all nodes (default view)"},
		{":roles", "roles: node count and health mix"},
		{":groups", "autoscaling groups: size, health, joins/leaves (15m)"},
		{":events", "event journal, newest first"},
		{":runs", "Ansible runs: running, queued and past, newest first"},
		{":locks", "host locks held now in Consul, by every console: host, holder, run, since"},
		{":dc NAME", "restrict every view to one datacenter"},
		{":dc / :dc all", "show all datacenters"},
		{":help", "this help"},
		{":q", "quit"},
	}
}

// runCommand executes a ":" command line.
func (m *Model) runCommand(line string) tea.Cmd {
	fields := strings.Fields(line)
	if len(fields) == 0 {
		return nil
	}
	name, args := strings.ToLower(fields[0]), fields[1:]
	switch name {
	case "q!":
		return tea.Quit
	case "q", "quit", "exit":
		return m.quit()
	case "nodes", "node", "no", "n":
		m.switchTo(viewNodes)
	case "roles", "role", "ro", "r":
		m.switchTo(viewRoles)
	case "groups", "group", "gr", "asg", "asgs":
		m.switchTo(viewGroups)
	case "events", "event", "ev", "e":
		m.switchTo(viewEvents)
	case "runs", "run", "ru":
		m.switchTo(viewRuns)
		if m.prov == nil {
			m.noProv()
		}
		return m.fetchRuns()
	case "locks", "lock", "lo":
		m.switchTo(viewLocks)
		if m.prov == nil {
			m.noProv()
		}
		return m.fetchLocks()
	case "help", "h":
		m.push(newView(viewHelp))
	case "dc", "datacenter":
		m.setDC(args)
	default:
		m.setFlash("unknown command: "+line+" (try :nodes :roles :groups :events :runs :locks :dc :q)", true)
	}
	return nil
}

// switchTo makes a fresh view of kind k the root. A ":" view command
// starts over rather than stacking, so the stack only holds drill-downs
// and esc always goes back along the path the user drilled.
func (m *Model) switchTo(k viewKind) {
	for _, v := range m.stack {
		m.closeView(v)
	}
	m.stack = []*view{newView(k)}
}

// setDC handles ":dc [NAME|all]".
func (m *Model) setDC(args []string) {
	dc := ""
	if len(args) > 0 && !strings.EqualFold(args[0], "all") && args[0] != "*" {
		dc = args[0]
	}
	if dc != "" && !slices.Contains(m.snap.Datacenters, dc) {
		m.setFlash("unknown datacenter "+dc+" (known: "+strings.Join(m.snap.Datacenters, ", ")+")", true)
		return
	}
	if dc == m.dc {
		return
	}
	m.dc = dc
	m.rescope()
	if dc == "" {
		m.setFlash("showing all datacenters", false)
	} else {
		m.setFlash("showing datacenter "+dc, false)
	}
}
