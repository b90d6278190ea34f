// Package tui is fleetdeck's terminal console: Bubble Tea models and views
// over the live fleet. It does no I/O of its own; snapshots arrive from a
// fleet.Feed through commands, and everything from Consul is sanitised
// before it reaches the terminal.
package tui

import (
	"cmp"
	"context"
	"errors"
	"sort"
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
}

// defaultLogsWindow is the default of Options.LogsBefore and LogsAfter.
const defaultLogsWindow = 5 * time.Minute

// changedFor is how long a changed row stays highlighted.
const changedFor = 3 * time.Second

// groupWindow is how far back the groups view counts joins and leaves.
const groupWindow = 15 * time.Minute

// snapshotMsg carries a snapshot returned by Feed.Next.
type snapshotMsg struct{ snap *fleet.Snapshot }

// feedErrMsg reports that Feed.Next failed.
type feedErrMsg struct{ err error }

// tickMsg drives data age and change-highlight expiry.
type tickMsg time.Time

// Model is the console's Bubble Tea model. Create it with New; it is used
// through its pointer and is not safe for concurrent use (Bubble Tea calls
// it from one goroutine).
type Model struct {
	ctx    context.Context
	feed   fleet.Feed
	now    func() time.Time
	ro     bool
	note   string
	keys   keyMap
	st     styles
	width  int
	height int

	// snap is the latest snapshot; scope is snap restricted to dc (the
	// same pointer when dc is empty). Views read scope.
	snap, scope *fleet.Snapshot
	dc          string
	faults      bool
	// marks holds the keys (dc/name) of marked nodes, for bulk actions.
	marks map[string]bool
	// gen increases whenever scope changes; sources rebuild when stale.
	gen uint64
	// baseline is the time of the first snapshot: nodes whose ChangedAt is
	// not after it were there at start-up and are not "changed".
	baseline time.Time

	src        [numKinds]source
	nodeCache  map[*fleet.Node]*row
	cacheGen   uint64
	eventCache map[uint64]*row
	layoutSeq  uint64

	stack []*view
	input *prompt

	flash      string
	flashBad   bool
	flashUntil time.Time

	// Runs (see prov.go): the run manager, the last version of its state
	// seen, the runs list, and a pending y/n question.
	prov         Provisioner
	runsOff      string
	provVer      uint64
	runs         []provision.RunInfo
	runsErr      string
	runsFetching bool
	runsAgain    bool
	runCache     map[string]*row
	confirm      *confirmAsk

	// Locks (see views_locks.go): the host locks last read and when.
	locks         []provision.HeldLock
	locksAt       time.Time
	locksErr      string
	locksFetching bool
	locksAgain    bool

	// Logs (see logs.go).
	logs                  logview.Opener
	logsOff               string
	saveLogs              func(string, []*logview.Entry) (string, error)
	logsBefore, logsAfter time.Duration
	logsCap               int
}

// source is the unfiltered row set of one view kind, rebuilt when the
// scope changes.
type source struct {
	gen   uint64 // Model.gen it was built for
	stamp uint64 // increases at each rebuild; views compare against it
	rows  []*row
	force bool
}

// New returns a console model reading snapshots from opts.Feed until ctx
// is cancelled. The current snapshot is shown immediately.
func New(ctx context.Context, opts Options) *Model {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	m := &Model{
		ctx:        ctx,
		feed:       opts.Feed,
		now:        now,
		ro:         opts.ReadOnly,
		note:       sanitize(opts.Note),
		keys:       newKeyMap(opts.ReadOnly),
		st:         newStyles(opts.NoColor),
		width:      80,
		height:     24,
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
	}
	m.stack = []*view{newView(viewNodes)}
	var s *fleet.Snapshot
	if opts.Feed != nil {
		s = opts.Feed.Current()
	}
	if s == nil {
		s = fleet.NewSnapshot(0, time.Time{}, nil, nil, nil)
	}
	m.setSnapshot(s)
	return m
}

// Init starts waiting for snapshots and the one-second tick.
func (m *Model) Init() tea.Cmd {
	return tea.Batch(m.waitSnapshot(), m.tick(), m.waitProv(), m.fetchRuns())
}

// waitSnapshot returns a command that blocks in Feed.Next until a snapshot
// newer than the one shown exists. It returns when ctx is cancelled, so no
// goroutine outlives the program.
func (m *Model) waitSnapshot() tea.Cmd {
	if m.feed == nil {
		return nil
	}
	ctx, feed, after := m.ctx, m.feed, m.snap.Version
	return func() tea.Msg {
		s, err := feed.Next(ctx, after)
		if err != nil {
			return feedErrMsg{err}
		}
		return snapshotMsg{s}
	}
}

// tick returns a command that sends a tickMsg after a second, or nothing
// once ctx is cancelled (a bare tea.Tick would outlive the program).
func (m *Model) tick() tea.Cmd {
	ctx := m.ctx
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
	var cmd tea.Cmd
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = max(msg.Width, 1), max(msg.Height, 1)
	case snapshotMsg:
		if msg.snap != nil && msg.snap.Version > m.snap.Version {
			m.setSnapshot(msg.snap)
		}
		cmd = m.waitSnapshot()
	case feedErrMsg:
		if m.ctx.Err() != nil || errors.Is(msg.err, context.Canceled) {
			return m, nil
		}
		m.setFlash("feed: "+msg.err.Error(), true)
		cmd = m.retryFeed()
	case tickMsg:
		if m.top().kind == viewGroups {
			// Joins and leaves are counted over a sliding window.
			m.src[viewGroups].force = true
		}
		m.tickLogs()
		cmd = tea.Batch(m.tick(), m.tickLocks())
	case tea.PasteMsg:
		if m.input != nil {
			m.input.insert(sanitize(msg.Content))
			m.inputChanged()
		}
	case tea.KeyPressMsg:
		cmd = m.handleKey(msg)
	case logsOpenedMsg:
		cmd = m.logsOpened(msg)
	case logsBatchMsg:
		cmd = m.logsBatch(msg)
	case logsSavedMsg:
		m.logsSaved(msg)
	default:
		cmd = m.updateProv(msg)
	}
	if v := m.top(); v.kind == viewRun && v.run.stale {
		// Back on top after another view: catch up with the run.
		v.run.stale = false
		cmd = tea.Batch(cmd, m.fetchRun(v.run))
	}
	m.refresh(m.top())
	return m, cmd
}

// retryFeed waits a second, then waits for snapshots again. Feeds other
// than a Publisher may fail transiently.
func (m *Model) retryFeed() tea.Cmd { return m.retryAfterSecond(m.waitSnapshot()) }

// retryAfterSecond runs wait after a second, unless the console ends first.
func (m *Model) retryAfterSecond(wait tea.Cmd) tea.Cmd {
	ctx := m.ctx
	return func() tea.Msg {
		t := time.NewTimer(time.Second)
		defer t.Stop()
		select {
		case <-t.C:
			return wait()
		case <-ctx.Done():
			return nil
		}
	}
}

// setSnapshot makes s the shown snapshot.
func (m *Model) setSnapshot(s *fleet.Snapshot) {
	if m.baseline.IsZero() && s.Version > 0 {
		m.baseline = s.Time
	}
	m.snap = s
	// A node that left cannot be acted on: drop its mark rather than keep
	// an invisible target.
	for k := range m.marks {
		dc, name, _ := strings.Cut(k, "/")
		if s.Node(dc, name) == nil {
			delete(m.marks, k)
		}
	}
	m.rescope()
}

// Marked returns the keys (dc/name) of the marked nodes, sorted.
func (m *Model) Marked() []string {
	keys := make([]string, 0, len(m.marks))
	for k := range m.marks {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// rescope recomputes the datacenter-restricted snapshot.
func (m *Model) rescope() {
	m.scope = restrict(m.snap, m.dc)
	m.gen++
}

// restrict returns s limited to datacenter dc ("" = all). The result is a
// new immutable snapshot sharing s's node pointers, so per-node caches stay
// valid.
func restrict(s *fleet.Snapshot, dc string) *fleet.Snapshot {
	if dc == "" {
		return s
	}
	var nodes []*fleet.Node
	for _, n := range s.Nodes {
		if n.Datacenter == dc {
			nodes = append(nodes, n)
		}
	}
	var conn []fleet.ConnState
	for _, c := range s.Conn {
		if c.Datacenter == dc {
			conn = append(conn, c)
		}
	}
	var events []fleet.Event
	for _, e := range s.Events {
		if e.Datacenter == dc {
			events = append(events, e)
		}
	}
	return fleet.NewSnapshot(s.Version, s.Time, nodes, conn, events)
}

// top returns the view on top of the stack.
func (m *Model) top() *view { return m.stack[len(m.stack)-1] }

// push shows v on top of the current view.
func (m *Model) push(v *view) {
	m.stack = append(m.stack, v)
}

// pop returns to the previous view; the root view stays.
func (m *Model) pop() bool {
	if len(m.stack) <= 1 {
		return false
	}
	m.closeView(m.stack[len(m.stack)-1])
	m.stack[len(m.stack)-1] = nil
	m.stack = m.stack[:len(m.stack)-1]
	return true
}

// setFlash shows a short message in the footer for a few seconds.
func (m *Model) setFlash(s string, bad bool) {
	m.flash, m.flashBad, m.flashUntil = sanitize(s), bad, m.now().Add(5*time.Second)
}

// isChanged reports whether a row stamped at t is highlighted as changed.
func (m *Model) isChanged(t, now time.Time) bool {
	return !t.IsZero() && t.After(m.baseline) && now.Sub(t) < changedFor
}

// View renders the screen: header, the top view's body, footer.
func (m *Model) View() tea.View {
	v := tea.NewView(m.render())
	v.AltScreen = true
	v.MouseMode = tea.MouseModeNone
	v.WindowTitle = "fleetdeck"
	return v
}
