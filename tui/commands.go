package tui

import (
	"slices"
	"strings"

	tea "charm.land/bubbletea/v2"
)

// command is one ":" command: its names (the first is the one the help
// shows), its help, and what it does.
type command struct {
	names []string
	usage string // the help's key column (":dc NAME"); default ":" + names[0]
	help  string
	run   func(s *shared, args []string) tea.Cmd
}

// viewRegistry lists the ":" commands. A view that ":" opens is registered
// here: one line, pointing at its constructor.
func viewRegistry() []command {
	root := func(k func() *tableKind) func(s *shared, args []string) tea.Cmd {
		return func(s *shared, _ []string) tea.Cmd { s.switchTo(newTable(s, k(), "")); return nil }
	}
	return []command{
		{names: []string{"nodes", "node", "no", "n"}, help: "all nodes (default view)", run: root(nodesKind)},
		{names: []string{"roles", "role", "ro", "r"}, help: "roles: node count and health mix", run: root(rolesKind)},
		{names: []string{"groups", "group", "gr", "asg", "asgs"}, help: "autoscaling groups: size, health, joins/leaves (15m)", run: root(groupsKind)},
		{names: []string{"events", "event", "ev", "e"}, help: "event journal, newest first", run: root(eventsKind)},
		{names: []string{"alerts", "alert", "al"}, help: "alerts not seen yet: nodes that turned critical ([alerts] filter); opening it marks them seen", run: openAlerts},
		{names: []string{"runs", "run", "ru"}, help: "Ansible runs: running, queued and past, newest first",
			run: func(s *shared, args []string) tea.Cmd {
				root(runsKind)(s, args)
				if s.prov == nil {
					s.noProv()
				}
				return s.fetchRuns()
			}},
		{names: []string{"locks", "lock", "lo"}, help: "host locks held now in Consul, by every console: host, holder, run, since",
			run: func(s *shared, args []string) tea.Cmd {
				root(locksKind)(s, args)
				if s.prov == nil {
					s.noProv()
				}
				return s.fetchLocks()
			}},
		{names: []string{"provisioner", "prov", "pv", "deploy"}, help: "the deployment server: leader, state, held/backoff/queued/running nodes with why and until when", run: openProvisioner},
		{names: []string{"decisions", "decision", "dec"}, help: "the deployment server's decisions, newest first, with their reasons", run: openDecisions},
		{names: []string{"dc", "datacenter"}, usage: ":dc NAME", help: "restrict every view to one datacenter (:dc or :dc all: all)",
			run: func(s *shared, args []string) tea.Cmd { s.setDC(args); return nil }},
		{names: []string{"help", "h"}, help: "the help of the view on top",
			run: func(s *shared, _ []string) tea.Cmd { s.push(newHelpView(s, s.top())); return nil }},
		{names: []string{"q", "quit", "exit"}, help: "quit (asks first while this console's runs are live)",
			run: func(s *shared, _ []string) tea.Cmd { return s.quit() }},
		{names: []string{"q!"}, help: "quit now (this console's live runs are cancelled)",
			run: func(s *shared, _ []string) tea.Cmd { return s.quitNow(true) }},
	}
}

// commandHelp documents the ":" commands for the help view.
func commandHelp() [][2]string {
	var out [][2]string
	for _, c := range viewRegistry() {
		u := c.usage
		if u == "" {
			u = ":" + c.names[0]
		}
		out = append(out, [2]string{u, c.help})
	}
	return out
}

// openCommand opens the ":" prompt.
func (s *shared) openCommand() {
	s.openOverlay(newPrompt(s, promptCommand, "", promptHooks{enter: s.runCommand}))
}

// runCommand executes a ":" command line.
func (s *shared) runCommand(line string) tea.Cmd {
	fields := strings.Fields(line)
	if len(fields) == 0 {
		return nil
	}
	name, args := strings.ToLower(fields[0]), fields[1:]
	for _, c := range viewRegistry() {
		if slices.Contains(c.names, name) {
			return c.run(s, args)
		}
	}
	s.setFlash("unknown command: "+line+" (try :nodes :roles :groups :events :alerts :runs :locks :provisioner :decisions :dc :q)", true)
	return nil
}

// setDC handles ":dc [NAME|all]".
func (s *shared) setDC(args []string) {
	dc := ""
	if len(args) > 0 && !strings.EqualFold(args[0], "all") && args[0] != "*" {
		dc = args[0]
	}
	if dc != "" && !slices.Contains(s.snap.Datacenters, dc) {
		s.setFlash("unknown datacenter "+dc+" (known: "+strings.Join(s.snap.Datacenters, ", ")+")", true)
		return
	}
	if dc == s.dc {
		return
	}
	s.dc = dc
	s.rescope()
	if dc == "" {
		s.setFlash("showing all datacenters", false)
	} else {
		s.setFlash("showing datacenter "+dc, false)
	}
}
