package tui

import (
	"context"
	"sort"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/fleetdeck/fleetdeck/fleet"
	"github.com/fleetdeck/fleetdeck/logview"
	"github.com/fleetdeck/fleetdeck/provision"
)

// shared is the context every component holds (soft-serve's
// common.Common): what the console keeps once for all its views. It is
// used from Bubble Tea's one goroutine only.
type shared struct {
	ctx           context.Context
	feed          fleet.Feed
	now           func() time.Time
	ro            bool
	note          string
	st            styles
	width, height int

	// snap is the latest snapshot; scope is snap restricted to dc (the
	// same pointer when dc is empty). Views read scope.
	snap, scope *fleet.Snapshot
	dc          string
	// marks holds the keys (dc/name) of marked nodes, for bulk actions.
	marks map[string]bool
	// gen increases whenever scope changes; sources rebuild when stale.
	gen uint64
	// baseline is the time of the first snapshot: nodes whose ChangedAt is
	// not after it were there at start-up and are not "changed".
	baseline time.Time

	// Row sources per table kind, and row caches shared by the views of
	// a kind (see table.go).
	sources    map[string]*source
	nodeCache  map[*fleet.Node]*row
	cacheGen   uint64
	eventCache map[uint64]*row
	runCache   map[string]*row
	layoutSeq  uint64

	// stack holds the views, the root first; overlay, when set, takes the
	// keys and the footer (a prompt, a question).
	stack   []component
	overlay component

	// flash is the footer's message, shown until flashUntil.
	flash      string
	flashBad   bool
	flashUntil time.Time

	// Runs (see prov.go): the run manager, the last version of its state
	// seen, the runs list.
	prov         Provisioner
	runsOff      string
	provVer      uint64
	runs         []provision.RunInfo
	runsErr      string
	runsFetching bool
	// runsAt is when the runs list was last asked for.
	runsAt    time.Time
	runsAgain bool

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

	// ssh is the x action's command (ssh.go).
	ssh *SSHCommand
	// alerts is the alert state (alerts.go).
	alerts alerting
	// rl is role reassignment's state (roles.go).
	rl rolesState
	// dp is the deployment server's status (deploy.go).
	dp deployState
}

// flashFor is how long a footer message stays.
const flashFor = 5 * time.Second

// setFlash shows a message in the footer for flashFor.
func (s *shared) setFlash(text string, bad bool) {
	s.flash, s.flashBad, s.flashUntil = sanitize(text), bad, s.now().Add(flashFor)
}

// clearFlash removes the footer's message.
func (s *shared) clearFlash() {
	s.flash = ""
}

// flashShown returns the footer's message if it has not expired at now.
func (s *shared) flashShown(now time.Time) (string, bool) {
	if s.flash == "" || !now.Before(s.flashUntil) {
		return "", false
	}
	return s.flash, true
}

// expireFlash removes the footer's message once its time is over. The
// one-second tick calls it, so a message goes even when nothing else
// happens.
func (s *shared) expireFlash(now time.Time) {
	if s.flash != "" && !now.Before(s.flashUntil) {
		s.clearFlash()
	}
}

// setSnapshot makes snap the shown snapshot.
func (s *shared) setSnapshot(snap *fleet.Snapshot) {
	if s.baseline.IsZero() && snap.Version > 0 {
		s.baseline = snap.Time
	}
	s.snap = snap
	// A node that left cannot be acted on: drop its mark rather than keep
	// an invisible target.
	for k := range s.marks {
		dc, name, _ := strings.Cut(k, "/")
		if snap.Node(dc, name) == nil {
			delete(s.marks, k)
		}
	}
	s.rescope()
}

// rescope recomputes the datacenter-restricted snapshot.
func (s *shared) rescope() {
	s.scope = restrict(s.snap, s.dc)
	s.gen++
}

// restrict returns snap limited to datacenter dc ("" = all). The result
// is a new immutable snapshot sharing snap's node pointers, so per-node
// caches stay valid.
func restrict(snap *fleet.Snapshot, dc string) *fleet.Snapshot {
	if dc == "" {
		return snap
	}
	var nodes []*fleet.Node
	for _, n := range snap.Nodes {
		if n.Datacenter == dc {
			nodes = append(nodes, n)
		}
	}
	var conn []fleet.ConnState
	for _, c := range snap.Conn {
		if c.Datacenter == dc {
			conn = append(conn, c)
		}
	}
	var events []fleet.Event
	for _, e := range snap.Events {
		if e.Datacenter == dc {
			events = append(events, e)
		}
	}
	return fleet.NewSnapshot(snap.Version, snap.Time, nodes, conn, events)
}

// marked returns the keys (dc/name) of the marked nodes, sorted.
func (s *shared) marked() []string {
	keys := make([]string, 0, len(s.marks))
	for k := range s.marks {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// isChanged reports whether a row stamped at t is highlighted as changed.
func (s *shared) isChanged(t, now time.Time) bool {
	return !t.IsZero() && t.After(s.baseline) && now.Sub(t) < changedFor
}

// retryAfterSecond runs wait after a second, unless the console ends first.
func (s *shared) retryAfterSecond(wait tea.Cmd) tea.Cmd {
	ctx := s.ctx
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
