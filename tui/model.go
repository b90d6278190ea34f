// Package tui is fleetdeck's terminal console: Bubble Tea components over
// the live fleet, one per view (see component.go). It does no I/O of its
// own; snapshots arrive from a fleet.Feed through commands, and everything
// from Consul is sanitised before it reaches the terminal.
package tui

import (
	"cmp"
	"context"
	"errors"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/fleetdeck/fleetdeck/fleet"
	"github.com/fleetdeck/fleetdeck/logview"
	"github.com/fleetdeck/fleetdeck/provision"
)

// Options configures the console.
type Options struct {
	// Feed delivers live snapshots (a fleet.Publisher implements it).
	Feed fleet.Feed
	// NoColor turns colour off (NO_COLOR set or --no-color): the console
	// then uses only bold and reverse video, and spells health as words.
	NoColor bool
	// ReadOnly unbinds dangerous actions (launching, cancelling and
	// re-running playbooks) and shows "RO" in the header.
	ReadOnly bool
	// Provisioner launches and follows Ansible runs (provision.Manager).
	// Nil turns the run features off.
	Provisioner Provisioner
	// RunsOff says why there is no Provisioner (no playbook directory,
	// no ansible-playbook); shown where the run keys are.
	RunsOff string
	// Now returns the current time; nil means time.Now. Tests inject it.
	Now func() time.Time
	// Note is a short text shown at the end of the first header line when
	// it fits (the demo shows where its Consul is).
	Note string

	// Logs opens log streams (logview.Service). Nil turns the Logs view
	// off; the log key then says why (LogsOff).
	Logs logview.Opener
	// LogsOff says why there is no Logs opener (no project configured).
	LogsOff string
	// SaveLogs writes a Logs view's entries to a file and returns its
	// path; nil turns saving off. It runs off the update loop. The
	// console does no file I/O itself.
	SaveLogs func(title string, entries []*logview.Entry) (path string, err error)
	// LogsBefore and LogsAfter are the window opened around an incident
	// (default 5 minutes each).
	LogsBefore, LogsAfter time.Duration
	// LogsCap is the most entries a Logs view keeps (<= 0: the logview
	// default); older ones are dropped and counted.
	LogsCap int

	// SSH is the command x runs to ssh into a node (ParseSSHCommand);
	// nil means the default, ssh {address}.
	SSH *SSHCommand
	// Alerts configures the bell, desktop notifications and the header's
	// counter when a node turns critical (off unless Enabled).
	Alerts AlertOptions

	// Roles changes nodes' desired roles and maintenance (the roles
	// Applier and Store); nil turns those keys off, and RolesOff says
	// why (runs are off, no role catalog).
	Roles    RolesService
	RolesOff string
	// Deploy reads the deployment server's state and takes operators'
	// requests (the Provisioner view); nil turns it off, and DeployOff
	// says why.
	Deploy    Deployer
	DeployOff string
}

// defaultLogsWindow is the default of Options.LogsBefore and LogsAfter.
const defaultLogsWindow = 5 * time.Minute

// changedFor is how long a changed row stays highlighted.
const changedFor = 3 * time.Second

// groupWindow is how far back the groups view counts joins and leaves.
const groupWindow = 15 * time.Minute

// sharedMsg is a message for the console as a whole rather than one
// view (the end of an ssh session): it applies itself to the shared
// context.
type sharedMsg interface {
	apply(s *shared) tea.Cmd
}

// snapshotMsg carries a snapshot returned by Feed.Next.
type snapshotMsg struct{ snap *fleet.Snapshot }

// feedErrMsg reports that Feed.Next failed.
type feedErrMsg struct{ err error }

// tickMsg drives data age and change-highlight expiry.
type tickMsg time.Time

// Model is the console's Bubble Tea model. Create it with New; it is used
// through its pointer and is not safe for concurrent use (Bubble Tea calls
// it from one goroutine). It is the shared context plus the Bubble Tea
// glue: what a message means for the console as a whole, key dispatch to
// the component that has the focus, and the frame.
type Model struct {
	*shared
}

// New returns a console model reading snapshots from opts.Feed until ctx
// is cancelled. The current snapshot is shown immediately.
func New(ctx context.Context, opts Options) *Model {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	s := &shared{
		ctx:        ctx,
		feed:       opts.Feed,
		now:        now,
		ro:         opts.ReadOnly,
		note:       sanitize(opts.Note),
		st:         newStyles(opts.NoColor),
		width:      80,
		height:     24,
		sources:    map[string]*source{},
		nodeCache:  map[*fleet.Node]*row{},
		marks:      map[string]bool{},
		eventCache: map[uint64]*row{},
		prov:       opts.Provisioner,
		runsOff:    sanitize(opts.RunsOff),
		runCache:   map[string]*row{},
		logs:       opts.Logs,
		logsOff:    sanitize(opts.LogsOff),
		saveLogs:   opts.SaveLogs,
		logsBefore: cmp.Or(max(opts.LogsBefore, 0), defaultLogsWindow),
		logsAfter:  cmp.Or(max(opts.LogsAfter, 0), defaultLogsWindow),
		logsCap:    opts.LogsCap,
		ssh:        opts.SSH,
		alerts:     newAlerting(opts.Alerts, now()),
	}
	s.setRoles(opts.Roles, opts.RolesOff)
	s.setDeploy(opts.Deploy, opts.DeployOff)
	if s.ssh == nil {
		// The default template always parses.
		s.ssh, _ = ParseSSHCommand("", "", "")
	}
	var snap *fleet.Snapshot
	if opts.Feed != nil {
		snap = opts.Feed.Current()
	}
	if snap == nil {
		snap = fleet.NewSnapshot(0, time.Time{}, nil, nil, nil)
	}
	s.setSnapshot(snap)
	s.switchTo(newNodesView(s, ""))
	s.top().refresh()
	return &Model{shared: s}
}

// Marked returns the keys (dc/name) of the marked nodes, sorted.
func (m *Model) Marked() []string { return m.marked() }

// Init starts waiting for snapshots and the one-second tick.
func (m *Model) Init() tea.Cmd {
	return tea.Batch(m.waitSnapshot(), m.tick(), m.waitProv(), m.fetchRuns())
}

// waitSnapshot returns a command that blocks in Feed.Next until a snapshot
// newer than the one shown exists. It returns when ctx is cancelled, so no
// goroutine outlives the program.
func (s *shared) waitSnapshot() tea.Cmd {
	if s.feed == nil {
		return nil
	}
	ctx, feed, after := s.ctx, s.feed, s.snap.Version
	return func() tea.Msg {
		snap, err := feed.Next(ctx, after)
		if err != nil {
			return feedErrMsg{err}
		}
		return snapshotMsg{snap}
	}
}

// tick returns a command that sends a tickMsg after a second, or nothing
// once ctx is cancelled (a bare tea.Tick would outlive the program).
func (s *shared) tick() tea.Cmd {
	ctx := s.ctx
	return func() tea.Msg {
		t := time.NewTimer(time.Second)
		defer t.Stop()
		select {
		case now := <-t.C:
			return tickMsg(now)
		case <-ctx.Done():
			return nil
		}
	}
}

// Update handles one message.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	var cmds []tea.Cmd
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.resize(msg.Width, msg.Height)
	case snapshotMsg:
		if msg.snap != nil && msg.snap.Version > m.snap.Version {
			old := m.snap
			m.setSnapshot(msg.snap)
			m.recomputeStates()
			cmds = append(cmds, m.detectAlerts(old, msg.snap))
		}
		cmds = append(cmds, m.waitSnapshot())
	case feedErrMsg:
		if m.ctx.Err() != nil || errors.Is(msg.err, context.Canceled) {
			return m, nil
		}
		m.setFlash("feed: "+msg.err.Error(), true)
		cmds = append(cmds, m.retryAfterSecond(m.waitSnapshot()))
	case tickMsg:
		m.expireFlash(m.now())
		cmds = append(cmds, m.tick(), m.tickLocks(), m.tickRuns(), m.flushAlerts(), m.tickRoles(), m.tickDeploy())
		cmds = append(cmds, m.broadcast(msg))
	case tea.KeyPressMsg:
		cmds = append(cmds, m.handleKey(msg))
	case tea.PasteMsg:
		cmds = append(cmds, m.focus().update(msg))
	case sharedMsg:
		cmds = append(cmds, msg.apply(m.shared))
	default:
		if cmd, ok := m.updateProv(msg); ok {
			cmds = append(cmds, cmd)
		} else {
			cmds = append(cmds, m.broadcast(msg))
		}
	}
	top := m.top()
	if w, ok := top.(waker); ok {
		cmds = append(cmds, w.wake())
	}
	top.refresh()
	if m.overlay != nil {
		m.overlay.refresh()
	}
	return m, tea.Batch(cmds...)
}

// broadcast hands msg to every component on the stack: each takes only
// the messages of its own commands (a run view its board, a Logs view its
// stream's batches).
func (s *shared) broadcast(msg tea.Msg) tea.Cmd {
	var cmds []tea.Cmd
	// A copy: a component may push or pop while handling msg.
	for _, c := range append([]component(nil), s.stack...) {
		cmds = append(cmds, c.update(msg))
	}
	return tea.Batch(cmds...)
}

// handleKey dispatches a key press: ctrl+c is the one quit action
// everywhere; any other key goes to the overlay or the top component: a
// registered action first, then its update (text entry).
func (m *Model) handleKey(msg tea.KeyPressMsg) tea.Cmd {
	if msg.String() == "ctrl+c" {
		return m.quit()
	}
	c := m.focus()
	if a, ok := c.keys().match(msg); ok {
		return a.do(msg)
	}
	return c.update(msg)
}

// View renders the screen: header, the top component's body, footer. It
// changes nothing: everything it shows was computed by Update.
func (m *Model) View() tea.View {
	v := tea.NewView(m.render(m.now()))
	v.AltScreen = true
	v.MouseMode = tea.MouseModeNone
	v.WindowTitle = "fleetdeck"
	return v
}

// render draws the whole screen: two header lines, the body of the top
// component, the footer. Every line is at most m.width cells, and there
// are exactly m.height lines.
func (m *Model) render(now time.Time) string {
	var b strings.Builder
	b.Grow((m.width + 16) * m.height)
	lines := 0
	line := func(s string) {
		if lines >= m.height {
			return
		}
		if lines > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(s)
		lines++
	}
	line(m.headerCounts())
	line(m.headerConn(now))
	foot := m.footer(now)
	// A two-line footer message takes the body's last line.
	bodyEnd := m.height - len(foot)
	m.top().view(now, func(s string) {
		if lines < bodyEnd {
			line(s)
		}
	})
	for lines < bodyEnd {
		line("")
	}
	for _, f := range foot {
		line(f)
	}
	return b.String()
}

// footer draws the status line: the overlay (prompt, question) while one
// is open, otherwise the view path, the view's status and its key hints,
// or a message, which takes the whole footer (over two lines, broken
// between words) when it does not fit beside the path.
func (m *Model) footer(now time.Time) []string {
	if o := m.overlay; o != nil {
		var out string
		o.view(now, func(s string) { out = s })
		return []string{out}
	}
	top := m.top()
	var left strings.Builder
	for i, c := range m.stack {
		if i > 0 {
			left.WriteString(" › ")
		}
		left.WriteString(c.title())
	}
	left.WriteString(top.status())
	if m.dc != "" {
		left.WriteString(" dc:" + m.dc)
	}
	l := sanitize(left.String())
	lw := cellWidth(l)
	if msg, ok := m.flashShown(now); ok {
		style := ""
		if m.flashBad {
			style = m.st.bad
		}
		if fw := cellWidth(msg); lw+2+fw > m.width {
			return m.wideMessage(style, msg)
		}
		return []string{m.st.render(m.st.title, l) + "  " + m.st.render(style, fitLine(msg, m.width-lw-2))}
	}
	hints := top.keys().hints()
	right := fitHints(hints, m.width-lw-2)
	if right == "" && len(hints) > 0 {
		// Too narrow for the path and the hints: cut the path, keep the
		// help hint, so the way to every key stays on screen.
		last := hints[len(hints)-1]
		room := max(m.width-cellWidth(last)-2, 0)
		return []string{m.st.render(m.st.title, truncate(l, lw, room)) + strings.Repeat(" ", max(room-min(lw, room), 0)+2) +
			m.st.render(m.st.dim, fitLine(last, m.width-room-2))}
	}
	if right == "" {
		return []string{m.st.render(m.st.title, truncate(l, lw, m.width))}
	}
	return []string{m.st.render(m.st.title, l) + "  " + m.st.render(m.st.dim, fitLine(right, m.width-lw-2))}
}

// wideMessage lays out a footer message that does not fit beside the
// path: on the whole line, or two lines broken between words (a path
// without spaces breaks at its slashes).
func (m *Model) wideMessage(style, msg string) []string {
	if cellWidth(msg) <= m.width || m.height < 6 {
		return []string{m.st.render(style, truncate(msg, cellWidth(msg), m.width))}
	}
	parts := wordWrap(msg, m.width)
	if len(parts) > 2 {
		rest := strings.Join(parts[1:], " ")
		parts = []string{parts[0], truncate(rest, cellWidth(rest), m.width)}
	}
	out := make([]string, len(parts))
	for i, p := range parts {
		out[i] = m.st.render(style, fitLine(p, m.width))
	}
	return out
}

// fitHints joins as many hints as fit in w cells, two spaces apart. The
// last hint (help) is always kept when any is: the others are dropped from
// the end first.
func fitHints(hints []string, w int) string {
	if len(hints) == 0 || w <= 0 {
		return ""
	}
	last := hints[len(hints)-1]
	if cellWidth(last) > w {
		return ""
	}
	keep := hints[:len(hints)-1]
	for {
		total := cellWidth(last)
		for _, h := range keep {
			total += cellWidth(h) + 2
		}
		if total <= w {
			break
		}
		keep = keep[:len(keep)-1]
	}
	return strings.Join(append(append([]string(nil), keep...), last), "  ")
}

// liveRuns counts this console's running and queued runs.
func (s *shared) liveRuns() (running, queued int) {
	for i := range s.runs {
		if !s.runs[i].Live {
			continue
		}
		switch s.runs[i].Status {
		case provision.RunRunning:
			running++
		case provision.RunQueued:
			queued++
		}
	}
	return running, queued
}
