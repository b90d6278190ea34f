package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fleetdeck/fleetdeck/fleet"
	"github.com/fleetdeck/fleetdeck/internal/backoff"
	"github.com/fleetdeck/fleetdeck/internal/notify"
	"github.com/fleetdeck/fleetdeck/roles"
)

// The server: `fleetdeck provisioner`'s loop around the pure core.
//
//	elect (leader.go) ─▶ load the state (store.go) ─▶ pass, pass, … ─▶ resign
//	pass: ended runs → outcomes; operators' requests; Consul answering?;
//	      group defaults; Due over the snapshot; Scheduler.Plan; launch;
//	      save the state and records (fenced); record, log, alert.
//
// A pass runs when something may have changed — a new fleet snapshot, a
// change of the desired roles or of the operators' requests (each a
// blocking query: requests per minute do not grow with the fleet), a run
// that ended, a guard's timer ending (quiet periods, backoffs, the
// breaker: Scheduler.NextWake) — and on a 30 s safety tick. It reconciles from the whole snapshot each time and never
// reacts to one event, so joins during a restart or a leader change are
// found by the first pass of whoever leads next.

// Launcher starts and follows stage runs; *RunLauncher implements it.
type Launcher interface {
	Launch(ctx context.Context, stage Stage, batch string, nodes []*fleet.Node) (Launched, error)
	Cancel(ctx context.Context, runID string) error
	Outcomes(ctx context.Context, runID string, hosts map[string]string) (map[string]Outcome, error)
	Ended() <-chan struct{}
	TakeEnded() []string
}

// DesiredSource is the nodes' desired roles; *roles.Store implements it.
type DesiredSource interface {
	ListAt(ctx context.Context, dc string, index uint64, wait time.Duration) ([]roles.Desired, uint64, error)
	Set(ctx context.Context, ch roles.Change) (*roles.Desired, error)
}

// ServerConfig wires a Server.
type ServerConfig struct {
	Config Config
	// Datacenter is the name of the datacenter this instance provisions
	// (its nodes in the snapshot); Store and Elect work in it.
	Datacenter string
	Store      *Store
	Elect      ElectConfig
	Feed       fleet.Feed
	Launcher   Launcher
	// Desired is required when a stage runs @roles or defaults are set.
	Desired DesiredSource
	// PlaybookSum is the hex SHA-256 of a stage's playbook (an error:
	// the stage cannot run; its runs fail and back off).
	PlaybookSum func(Stage) (string, error)
	// Alerts receives held nodes and the breaker (nil: none).
	Alerts notify.Sender
	// Log gets every decision and every problem (stderr, logfmt or
	// JSON); History every decision as a JSON line (the leader's complete
	// history; KV keeps the last DecisionsKept).
	Log     *slog.Logger
	History io.Writer
	// Who is recorded with the group defaults it sets.
	Who string
	// DryRun decides and records (log, history) but launches nothing and
	// writes nothing to KV: it does not take the lock either, so it can
	// run beside the real leader.
	DryRun bool
	// Once runs one pass, waits for the runs it launched and returns. The
	// quiet period does not apply: there is no later pass to batch with.
	Once bool
	// Grace is how long a stopping server lets its runs finish before it
	// cancels them (default 30 s).
	Grace time.Duration
	// Tick bounds the time between passes (default 30 s). It is a safety
	// net: every change has its own wake-up (a snapshot, the desired roles,
	// a request, a run's end, a guard's timer through NextWake), so an idle
	// leader does not recompute the due set of the whole fleet every
	// second.
	Tick time.Duration
}

// Server is the deployment server of one datacenter.
type Server struct {
	cfg ServerConfig
}

// NewServer checks cfg and returns a server.
func NewServer(cfg ServerConfig) (*Server, error) {
	switch {
	case cfg.Store == nil || cfg.Feed == nil || cfg.Launcher == nil || cfg.PlaybookSum == nil:
		return nil, errors.New("deploy: the server needs a store, a feed, a launcher and playbook sums")
	case cfg.Datacenter == "":
		return nil, errors.New("deploy: the server needs its datacenter's name")
	}
	needRoles := len(cfg.Config.Defaults) > 0
	for _, st := range cfg.Config.Stages {
		needRoles = needRoles || st.Roles()
	}
	if needRoles && cfg.Desired == nil {
		return nil, errors.New("deploy: a stage runs @roles or group defaults are set, but no desired-roles store is configured")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Grace <= 0 {
		cfg.Grace = 30 * time.Second
	}
	if cfg.Tick <= 0 {
		cfg.Tick = 30 * time.Second
	}
	if cfg.Who == "" {
		cfg.Who = "provisioner@" + roles.Who()
	}
	if cfg.Once {
		cfg.Config.Guards.QuietMin, cfg.Config.Guards.QuietMax = 0, 0
	}
	return &Server{cfg: cfg}, nil
}

// Run provisions until ctx ends (or, with Once, after one pass): it waits
// to lead its datacenter, leads until it loses the lock, and waits again.
// It returns nil when stopped by ctx.
func (s *Server) Run(ctx context.Context) error {
	if s.cfg.DryRun {
		err := s.lead(ctx, nil)
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	if s.cfg.Once {
		// One pass cannot wait for another instance to stop leading.
		qctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		h, err := Leader(qctx, s.cfg.Store.c, s.cfg.Store.dc, s.cfg.Store.prefix)
		cancel()
		switch {
		case err != nil:
			return fmt.Errorf("--once: reading who leads: %w", err)
		case h != nil:
			return fmt.Errorf("--once: %s leads %s now; a single pass runs only when no provisioner does (or use --dry-run)", h.ID, s.cfg.Datacenter)
		}
	}
	for {
		l, err := s.elect(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		err = s.lead(ctx, l)
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		rerr := l.Resign(rctx)
		cancel()
		if ctx.Err() != nil || s.cfg.Once {
			if err == nil && rerr != nil && ctx.Err() == nil {
				s.cfg.Log.Warn("resigning", "err", rerr)
			}
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		s.cfg.Log.Warn("leadership ended; standing by", "err", err)
	}
}

// elect waits for the lock, logging who leads meanwhile.
func (s *Server) elect(ctx context.Context) (*Leadership, error) {
	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		last := "?"
		for {
			qctx, cancel := context.WithTimeout(wctx, 10*time.Second)
			h, err := Leader(qctx, s.cfg.Store.c, s.cfg.Store.dc, s.cfg.Store.prefix)
			cancel()
			who := "nobody"
			switch {
			case err != nil:
				who = "unknown (" + err.Error() + ")"
			case h != nil:
				who = h.ID
			}
			if who != last && wctx.Err() == nil {
				s.cfg.Log.Info("standby", "leader", who)
				last = who
			}
			if !sleep(wctx, 5*time.Second) {
				return
			}
		}
	}()
	l, err := Elect(ctx, s.cfg.Elect)
	stop()
	wg.Wait()
	return l, err
}

// liveRun is a run this leader launched.
type liveRun struct {
	batch string // the scheduler's run id
	hosts map[string]string
	items []DueItem
}

// leading is one leadership's state.
type leading struct {
	l       *Leadership // nil in a dry run
	store   *Store
	sched   *Scheduler
	records map[string]Record
	// stateIndex is the state key's index as last written; saved the
	// state's bytes as last written.
	stateIndex uint64
	saved      []byte
	runs       map[string]*liveRun // by run manager id

	// carry are decisions taken outside a pass, emitted by the next one.
	carry []Decision
	// Not yet saved (a failed write is retried by the next pass).
	unsaved   []Record
	forget    []Record
	done      []Request
	decisions []Decision

	applied     map[string]bool // request ids taken
	defaults    map[string]bool // node keys given their group's defaults
	stopped     string          // why launching stopped ("" launching)
	stoppedKind string          // its kind, for one decision per kind
	planned     bool            // Once: the one pass has planned
	pruned      time.Time       // when records of gone nodes were last pruned

	mu       sync.Mutex
	desired  map[string]uint64 // node key → generation
	hasRoles map[string]bool
	requests []Request
	wake     chan struct{}
}

func (ld *leading) poke() {
	select {
	case ld.wake <- struct{}{}:
	default:
	}
}

// lead runs passes while this instance leads (l nil: a dry run).
func (s *Server) lead(ctx context.Context, l *Leadership) error {
	ld := &leading{l: l, store: s.cfg.Store, records: map[string]Record{}, runs: map[string]*liveRun{},
		applied: map[string]bool{}, defaults: map[string]bool{}, wake: make(chan struct{}, 1)}
	var lost <-chan struct{}
	// pctx is what the passes' requests run under: a lost leadership
	// cancels them at once, so a pass blocked on a frozen Consul cannot
	// keep a stale leader acting (or hide the loss) for its timeouts.
	// SIGTERM does not: a stopping leader still saves its state.
	pctx, cancelPasses := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelPasses()
	if l != nil {
		ld.store = s.cfg.Store.Fenced(l.Session())
		lost = l.Lost()
		go func() {
			select {
			case <-lost:
				cancelPasses()
			case <-pctx.Done():
			}
		}()
	}
	loaded, err := s.load(ctx, ld.store, lost)
	if err != nil {
		return err
	}
	ld.sched = NewScheduler(s.cfg.Config.Guards, loaded.State)
	g := s.cfg.Config.Guards
	ld.sched.State.Guards = &g
	ld.records = loaded.Records
	ld.stateIndex = loaded.StateIndex
	ld.requests = loaded.Requests
	now := time.Now().UTC()
	who := "dry run"
	if l != nil {
		who = l.Holder().ID
	}
	ld.carry = append(ld.carry, Decision{At: now, Kind: KindLeader, Reason: "leading " + s.cfg.Datacenter + ": " + who})
	// The previous leader's runs were its processes: whatever they did
	// not record is due again (a cancelled outcome counts no attempt).
	for _, id := range slices.Sorted(maps.Keys(ld.sched.State.Running)) {
		r := ld.sched.State.Running[id]
		out := map[string]Outcome{}
		for _, it := range r.Items {
			out[it.Incarnation] = Cancelled
		}
		ld.sched.Finished(now, id, out)
		ld.carry = append(ld.carry, Decision{At: now, Kind: KindStopped, Stage: r.Stage, RunID: id,
			Reason: fmt.Sprintf("run of the previous leader: its %d nodes are due again unless their records show them applied", len(r.Items))})
	}

	wctx, stopWatch := context.WithCancel(ctx)
	var wg sync.WaitGroup
	s.watch(wctx, &wg, ld)
	defer func() {
		stopWatch()
		wg.Wait()
	}()

	tick := time.NewTicker(s.cfg.Tick)
	defer tick.Stop()
	var alerts sync.WaitGroup
	defer alerts.Wait()
	started := time.Now()
	for {
		if err := s.pass(pctx, ld, &alerts, true); err != nil {
			s.cancelRuns(ld, "leadership lost")
			return err
		}
		if s.cfg.Once && ld.planned && len(ld.runs) == 0 {
			return nil
		}
		if s.cfg.Once && !ld.planned && time.Since(started) > OnceReadyTimeout {
			return fmt.Errorf("--once: nothing decided after %s: %s", OnceReadyTimeout, ld.stopped)
		}
		// A guard's timer ending (a quiet period, a backoff) runs a pass
		// at that moment, not at the next tick.
		var wake <-chan time.Time
		if at := ld.sched.NextWake(time.Now()); !at.IsZero() {
			// time.After: since Go 1.23 an unfired timer is collected.
			wake = time.After(time.Until(at) + 5*time.Millisecond)
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return s.shutdown(ld, &alerts)
		case <-lost:
			s.cancelRuns(ld, "leadership lost")
			err := l.Err()
			s.emit(context.WithoutCancel(ctx), ld, &alerts, []Decision{{At: time.Now().UTC(), Kind: KindLeader,
				Reason: fmt.Sprintf("stopped leading: %v; its runs are cancelled", err)}})
			return fmt.Errorf("leadership lost: %w", err)
		case <-ld.wake:
		case <-s.cfg.Launcher.Ended():
		case <-tick.C:
		}
	}
}

// load reads the state, retrying until it answers or leadership ends.
func (s *Server) load(ctx context.Context, store *Store, lost <-chan struct{}) (*Loaded, error) {
	b := backoff.New(500*time.Millisecond, 10*time.Second)
	for {
		lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		loaded, err := store.Load(lctx)
		cancel()
		if err == nil {
			return loaded, nil
		}
		s.cfg.Log.Warn("reading the deployment state", "err", err)
		t := time.NewTimer(b.Next())
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-lost:
			t.Stop()
			return nil, errors.New("leadership lost while reading the state")
		case <-t.C:
		}
	}
}

// watch starts the goroutines that wake passes: new snapshots, and
// blocking queries on the desired roles and the operators' requests.
func (s *Server) watch(ctx context.Context, wg *sync.WaitGroup, ld *leading) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		var v uint64
		for {
			snap, err := s.cfg.Feed.Next(ctx, v)
			if err != nil {
				return
			}
			v = snap.Version
			ld.poke()
		}
	}()
	follow := func(what string, read func(ctx context.Context, index uint64) (uint64, error)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := backoff.New(500*time.Millisecond, 15*time.Second)
			var index uint64
			for ctx.Err() == nil {
				next, err := read(ctx, index)
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					s.cfg.Log.Warn("following "+what, "err", err)
					if !sleep(ctx, b.Next()) {
						return
					}
					continue
				}
				b.Reset()
				if next != index {
					ld.poke()
				}
				// An index that goes back (a KV restored, a new cluster)
				// restarts the blocking from scratch.
				index = next
				if index == 0 {
					index = 1
				}
			}
		}()
	}
	if s.cfg.Desired != nil {
		follow("the desired roles", func(ctx context.Context, index uint64) (uint64, error) {
			list, next, err := s.cfg.Desired.ListAt(ctx, s.cfg.Datacenter, index, 5*time.Minute)
			if err != nil && list == nil {
				return 0, err
			}
			gens := make(map[string]uint64, len(list))
			has := make(map[string]bool, len(list))
			for _, d := range list {
				key := s.cfg.Datacenter + "/" + d.Node
				gens[key], has[key] = d.Generation, true
			}
			ld.mu.Lock()
			ld.desired, ld.hasRoles = gens, has
			ld.mu.Unlock()
			if err != nil {
				s.cfg.Log.Warn("some desired records cannot be read", "err", err)
			}
			return next, nil
		})
	} else {
		ld.desired, ld.hasRoles = map[string]uint64{}, map[string]bool{}
	}
	follow("the operators' requests", func(ctx context.Context, index uint64) (uint64, error) {
		reqs, next, err := ld.store.RequestsAt(ctx, index, 5*time.Minute)
		if err != nil {
			return 0, err
		}
		ld.mu.Lock()
		ld.requests = reqs
		ld.mu.Unlock()
		return next, nil
	})
}

// pass is one reconcile pass. It returns an error only when leadership is
// lost (a fenced write refused); other failures are logged and retried.
func (s *Server) pass(ctx context.Context, ld *leading, alerts *sync.WaitGroup, launch bool) error {
	now := time.Now().UTC()
	ds := ld.carry
	ld.carry = nil
	ds = append(ds, s.ended(ctx, ld, now)...)

	snap := s.cfg.Feed.Current()
	ld.mu.Lock()
	desired, hasRoles := ld.desired, ld.hasRoles
	requests := ld.requests
	ld.mu.Unlock()
	ds = append(ds, s.requests(ld, snap, requests, now)...)

	kind, why := s.notReady(snap, desired)
	// One decision per kind of trouble, with the first error: a long
	// outage whose error text changes every retry must not flood the
	// decisions.
	if kind != ld.stoppedKind {
		if kind != "" {
			ds = append(ds, Decision{At: now, Kind: KindStopped, Reason: "not launching: " + why})
		} else {
			ds = append(ds, Decision{At: now, Kind: KindStopped, Reason: "launching again: Consul answers and the fleet is read"})
		}
		ld.stoppedKind = kind
	}
	ld.stopped = why
	if kind == "" && launch && !(s.cfg.Once && ld.planned) {
		nodes := s.nodes(snap)
		if now.Sub(ld.pruned) >= PruneEvery {
			ds = append(ds, s.prune(ld, nodes, now)...)
			ld.pruned = now
		}
		ds = append(ds, s.defaults(ctx, ld, nodes, hasRoles, now)...)
		sums := map[string]string{}
		for _, st := range s.cfg.Config.Stages {
			sum, err := s.cfg.PlaybookSum(st)
			if err != nil {
				// The run fails on it and backs off; the sum says why.
				sum = "unreadable: " + err.Error()
			}
			sums[st.Name] = sum
		}
		due := Due(nodes, s.cfg.Config.Stages, ld.records,
			func(n *fleet.Node) uint64 { return desired[n.Key()] },
			func(st Stage) string { return sums[st.Name] })
		planned := ld.sched.Plan(now, due)
		ld.planned = true
		more := s.launch(ctx, ld, snap, planned, now)
		ds = append(ds, planned...)
		ds = append(ds, more...)
	}
	ld.decisions = append(ld.decisions, ds...)
	if err := s.save(ctx, ld); err != nil {
		return err
	}
	s.emit(ctx, ld, alerts, ds)
	return nil
}

// notReady says why nothing may launch now, and its kind ("" when it
// may): a fleet not read yet, or Consul not answering, must not look like
// a fleet with no due nodes — nor like nodes whose records are missing.
func (s *Server) notReady(snap *fleet.Snapshot, desired map[string]uint64) (kind, why string) {
	i := slices.Index(snap.Datacenters, s.cfg.Datacenter)
	if i < 0 || i >= len(snap.Conn) {
		return "unread", fmt.Sprintf("the fleet of %s is not read yet", s.cfg.Datacenter)
	}
	cs := snap.Conn[i]
	switch {
	case cs.Status != fleet.Connected:
		why := "Consul is " + cs.Status.String()
		if cs.LastError != "" {
			why += ": " + cs.LastError
		}
		return cs.Status.String(), why
	case len(cs.Pending) > 0:
		return "loading", "the fleet is still loading (" + strings.Join(cs.Pending, ", ") + ")"
	case desired == nil:
		return "loading", "the desired roles are not read yet"
	}
	return "", ""
}

// nodes are the snapshot's nodes of the server's datacenter.
func (s *Server) nodes(snap *fleet.Snapshot) []*fleet.Node {
	var out []*fleet.Node
	for _, n := range snap.Nodes {
		if n.Datacenter == s.cfg.Datacenter {
			out = append(out, n)
		}
	}
	return out
}

// OnceReadyTimeout bounds how long --once waits for Consul to answer and
// the fleet to be read before it gives up (a cron job must not hang).
const OnceReadyTimeout = time.Minute

// PruneEvery is how often the leader forgets incarnations gone from the
// fleet, and PruneAfter how long a node must have been gone (by its last
// record) when no other incarnation replaced it: a node down for a day
// comes back with its records, a server replaced under the same name
// loses its predecessor's at once.
const (
	PruneEvery = time.Hour
	PruneAfter = 7 * 24 * time.Hour
)

// prune forgets the records and the scheduler's memory of incarnations
// gone from the fleet: replaced (another incarnation of the node is
// there) or gone for PruneAfter. Without it the KV would grow with every
// server an autoscaling group ever started.
func (s *Server) prune(ld *leading, nodes []*fleet.Node, now time.Time) []Decision {
	current := make(map[string]string, len(nodes)) // node key → incarnation
	for _, n := range nodes {
		current[n.Key()] = Incarnation(n)
	}
	// A node's incarnation can be wrong for a moment (its catalog entry
	// exists before its agent syncs the meta with the instance id): an
	// incarnation replaces another only once it has records of its own.
	provisioned := map[string]bool{}
	for _, r := range ld.records {
		provisioned[r.Incarnation] = true
	}
	gone := map[string]string{} // incarnation → why
	for key, r := range ld.records {
		inc, ok := current[r.Node]
		switch {
		case ok && inc == r.Incarnation:
			continue
		case ok && provisioned[inc]:
			gone[r.Incarnation] = "replaced by a new incarnation of " + r.Node
		case !ok && now.Sub(r.At) >= PruneAfter:
			if _, seen := gone[r.Incarnation]; !seen {
				gone[r.Incarnation] = fmt.Sprintf("gone from the fleet for over %s", PruneAfter)
			}
		default:
			continue
		}
		ld.forget = append(ld.forget, r)
		delete(ld.records, key)
	}
	var out []Decision
	for _, inc := range slices.Sorted(maps.Keys(gone)) {
		ld.sched.Forget(inc)
		node := inc
		if parts := strings.SplitN(inc, "/", 3); len(parts) >= 2 {
			node = parts[0] + "/" + parts[1]
		}
		out = append(out, Decision{At: now, Kind: KindForgotten, Node: node, Incarnation: inc, Reason: "records forgotten: " + gone[inc]})
	}
	return out
}

// requests applies the operators' requests not taken yet.
func (s *Server) requests(ld *leading, snap *fleet.Snapshot, reqs []Request, now time.Time) []Decision {
	// Forget ids of requests deleted since: the set stays as small as
	// the requests waiting.
	waiting := make(map[string]bool, len(reqs))
	for _, r := range reqs {
		waiting[r.ID] = true
	}
	for id := range ld.applied {
		if !waiting[id] && !slices.ContainsFunc(ld.done, func(d Request) bool { return d.ID == id }) {
			delete(ld.applied, id)
		}
	}
	var out []Decision
	for _, r := range reqs {
		if ld.applied[r.ID] {
			continue
		}
		ld.applied[r.ID] = true
		ld.done = append(ld.done, r)
		by := fmt.Sprintf("%s (%s)", r.Reason, r.Who)
		switch r.Kind {
		case RequestPause:
			out = append(out, ld.sched.Pause(now, by)...)
		case RequestResume:
			out = append(out, ld.sched.Resume(now, by)...)
		case RequestRelease:
			incs := map[string]bool{}
			for _, h := range ld.sched.State.Holds {
				if h.Node == r.Node {
					incs[h.Incarnation] = true
				}
			}
			var got []Decision
			for _, inc := range slices.Sorted(maps.Keys(incs)) {
				got = append(got, ld.sched.Release(now, inc, r.Stage, by)...)
			}
			if len(got) == 0 {
				got = []Decision{{At: now, Kind: KindReleased, Node: r.Node, Stage: r.Stage, Reason: "nothing was held; " + by}}
			}
			out = append(out, got...)
		case RequestRerun:
			dc, name, _ := strings.Cut(r.Node, "/")
			n := snap.Node(dc, name)
			if n == nil {
				out = append(out, Decision{At: now, Kind: KindRerun, Node: r.Node, Stage: r.Stage, Reason: "not done: the node is not in the fleet; " + by})
				continue
			}
			if _, ok := s.cfg.Config.Stage(r.Stage); !ok {
				out = append(out, Decision{At: now, Kind: KindRerun, Node: r.Node, Stage: r.Stage, Reason: "not done: no such stage; " + by})
				continue
			}
			inc := Incarnation(n)
			key := RecordKey(inc, r.Stage)
			if rec, ok := ld.records[key]; ok {
				delete(ld.records, key)
				ld.forget = append(ld.forget, rec)
			}
			out = append(out, ld.sched.Release(now, inc, r.Stage, by)...)
			out = append(out, Decision{At: now, Kind: KindRerun, Node: r.Node, Incarnation: inc, Stage: r.Stage,
				Reason: "its record is forgotten: due again if it matches; " + by})
		}
	}
	return out
}

// defaults gives new nodes of a group with [provisioner.defaults] their
// roles (audited in the roles history as set by the provisioner).
func (s *Server) defaults(ctx context.Context, ld *leading, nodes []*fleet.Node, hasRoles map[string]bool, now time.Time) []Decision {
	var out []Decision
	for _, n := range nodes {
		rs := s.cfg.Config.Defaults[n.Group]
		if len(rs) == 0 || hasRoles[n.Key()] || ld.defaults[n.Key()] || n.Pending != 0 {
			continue
		}
		ld.defaults[n.Key()] = true
		reason := fmt.Sprintf("new node of group %s: its default roles %s", n.Group, strings.Join(rs, ","))
		if s.cfg.DryRun {
			out = append(out, Decision{At: now, Kind: KindDefaults, Node: n.Key(), Reason: "dry run: would set " + reason})
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_, err := s.cfg.Desired.Set(sctx, roles.Change{Node: n.Name, Datacenter: n.Datacenter, Add: rs, Reason: reason,
			Who: s.cfg.Who, ExpectUnmanaged: true})
		cancel()
		if err != nil {
			out = append(out, Decision{At: now, Kind: KindDefaults, Node: n.Key(), Reason: "could not set " + reason + ": " + err.Error()})
			continue
		}
		out = append(out, Decision{At: now, Kind: KindDefaults, Node: n.Key(), Reason: "set " + reason})
	}
	return out
}

// launch starts the runs of the Launched decisions, completing each with
// the run's id and hosts; it returns the decisions of launches that failed.
func (s *Server) launch(ctx context.Context, ld *leading, snap *fleet.Snapshot, planned []Decision, now time.Time) []Decision {
	var out []Decision
	for i := range planned {
		d := &planned[i]
		if d.Kind != KindLaunched {
			continue
		}
		if s.cfg.DryRun {
			// Kept running in memory so it is not launched again.
			d.Reason = "dry run: would launch on " + d.Reason
			continue
		}
		st, _ := s.cfg.Config.Stage(d.Stage)
		var nodes []*fleet.Node
		for _, it := range d.Batch {
			dc, name, _ := strings.Cut(it.Node, "/")
			if n := snap.Node(dc, name); n != nil {
				nodes = append(nodes, n)
			}
		}
		lctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		var got Launched
		var err error
		if len(nodes) == 0 {
			err = errors.New("its nodes left the fleet")
		} else {
			got, err = s.cfg.Launcher.Launch(lctx, st, d.RunID, nodes)
		}
		cancel()
		if err != nil {
			out = append(out, Decision{At: now, Kind: KindFailed, Stage: d.Stage, RunID: d.RunID, Reason: "could not launch: " + err.Error()})
			outcomes := map[string]Outcome{}
			for _, it := range d.Batch {
				outcomes[it.Incarnation] = Failed
			}
			recs, more := ld.sched.Finished(now, d.RunID, outcomes)
			s.keep(ld, recs)
			out = append(out, more...)
			continue
		}
		ld.runs[got.RunID] = &liveRun{batch: d.RunID, hosts: got.Hosts, items: d.Batch}
		d.Reason = fmt.Sprintf("run %s (batch %s) started on %d of %d nodes", got.RunID, d.RunID, len(got.Hosts), len(d.Batch))
		d.RunID = got.RunID
	}
	return out
}

// ended takes the outcomes of this leader's runs that ended.
func (s *Server) ended(ctx context.Context, ld *leading, now time.Time) []Decision {
	var out []Decision
	for _, id := range s.cfg.Launcher.TakeEnded() {
		r, ok := ld.runs[id]
		if !ok {
			continue
		}
		delete(ld.runs, id)
		octx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		byKey, err := s.cfg.Launcher.Outcomes(octx, id, r.hosts)
		cancel()
		if err != nil {
			s.cfg.Log.Warn("reading a run's outcome; counting it as failed", "run", id, "err", err)
		}
		outcomes := map[string]Outcome{}
		for _, it := range r.items {
			if _, in := r.hosts[it.Node]; !in {
				outcomes[it.Incarnation] = Cancelled // not in the run (a host lock excluded it)
				continue
			}
			if o, ok := byKey[it.Node]; ok {
				outcomes[it.Incarnation] = o
			}
		}
		recs, ds := ld.sched.Finished(now, r.batch, outcomes)
		for i := range recs {
			recs[i].RunID = id
		}
		for i := range ds {
			if ds[i].RunID == r.batch {
				ds[i].RunID = id
			}
		}
		s.keep(ld, recs)
		out = append(out, ds...)
	}
	return out
}

// keep takes new records into the leader's view and the next save.
func (s *Server) keep(ld *leading, recs []Record) {
	for _, r := range recs {
		ld.records[RecordKey(r.Incarnation, r.Stage)] = r
		ld.unsaved = append(ld.unsaved, r)
	}
}

// save writes what changed: records, forgotten records, the requests
// taken and the state (only when its bytes changed), then the decisions.
// A refused fence is a lost leadership; other errors keep everything for
// the next pass.
func (s *Server) save(ctx context.Context, ld *leading) error {
	if s.cfg.DryRun {
		ld.unsaved, ld.forget, ld.done, ld.decisions = nil, nil, nil, nil
		return nil
	}
	b, err := json.Marshal(ld.sched.State)
	if err != nil {
		return err
	}
	changed := string(b) != string(ld.saved)
	if changed || len(ld.unsaved) > 0 || len(ld.forget) > 0 || len(ld.done) > 0 {
		sv := Save{Records: ld.unsaved, Forget: ld.forget, Done: ld.done, StateIndex: ld.stateIndex}
		if changed || len(ld.done) > 0 {
			st := ld.sched.State
			sv.State = &st
		}
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		idx, err := ld.store.Commit(sctx, sv)
		cancel()
		var ce *ConflictError
		switch {
		case errors.As(err, &ce) && (ce.Fence || ce.Key == ld.store.stateKey()):
			// The lock is gone, or another leader wrote the state:
			// either way this one must stop.
			return fmt.Errorf("saving the deployment state: %w", err)
		case err != nil:
			s.cfg.Log.Warn("saving the deployment state; retrying next pass", "err", err)
			return nil
		}
		ld.stateIndex, ld.saved = idx, b
		ld.unsaved, ld.forget, ld.done = nil, nil, nil
	}
	if len(ld.decisions) > 0 {
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := ld.store.AppendDecisions(sctx, ld.decisions)
		cancel()
		var ce *ConflictError
		switch {
		case errors.As(err, &ce) && ce.Fence:
			return fmt.Errorf("recording decisions: %w", err)
		case err != nil:
			s.cfg.Log.Warn("recording decisions; retrying next pass", "err", err)
			if len(ld.decisions) > DecisionsKept {
				ld.decisions = ld.decisions[len(ld.decisions)-DecisionsKept:]
			}
			return nil
		}
		ld.decisions = nil
	}
	return nil
}

// emit logs the decisions, appends them to the history and sends the
// alerts they call for.
func (s *Server) emit(ctx context.Context, ld *leading, alerts *sync.WaitGroup, ds []Decision) {
	for _, d := range ds {
		attrs := []any{"kind", string(d.Kind)}
		for _, kv := range [][2]string{{"stage", d.Stage}, {"node", d.Node}, {"run", d.RunID}} {
			if kv[1] != "" {
				attrs = append(attrs, kv[0], kv[1])
			}
		}
		if !d.Until.IsZero() {
			attrs = append(attrs, "until", d.Until.Format(time.RFC3339))
		}
		if d.Kind == KindLaunched && len(d.Batch) > 0 {
			names := make([]string, len(d.Batch))
			for i, it := range d.Batch {
				names[i] = it.Name
			}
			attrs = append(attrs, "nodes", strings.Join(names, ","))
		}
		level := slog.LevelInfo
		switch d.Kind {
		case KindFailed, KindHeld, KindBreakerOpened, KindStopped:
			level = slog.LevelWarn
		}
		s.cfg.Log.Log(ctx, level, d.Reason, attrs...)
		if s.cfg.History != nil {
			if b, err := json.Marshal(d); err == nil {
				_, _ = s.cfg.History.Write(append(b, '\n'))
			}
		}
		if a, ok := AlertOf(s.cfg.Datacenter, d); ok && s.cfg.Alerts != nil && !s.cfg.DryRun {
			alerts.Add(1)
			go func() {
				defer alerts.Done()
				actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
				defer cancel()
				if err := s.cfg.Alerts.Send(actx, a); err != nil {
					s.cfg.Log.Warn("sending an alert", "key", a.Key, "err", err)
				}
			}()
		}
	}
}

// AlertOf is the alert a decision calls for: a held node or stage, an
// open breaker (critical), and their ends (resolved), deduplicated per
// datacenter and node+stage.
func AlertOf(dc string, d Decision) (notify.Alert, bool) {
	stage := d.Stage
	if stage == "" {
		stage = "all-stages"
	}
	a := notify.Alert{At: d.At, Details: map[string]string{"datacenter": dc, "reason": d.Reason}}
	switch d.Kind {
	case KindHeld:
		a.Key = "fleetdeck/" + dc + "/held/" + d.Node + "/" + stage
		a.Summary = fmt.Sprintf("fleetdeck provisioner: %s held (%s): %s", d.Node, stage, d.Reason)
		a.Severity = notify.SeverityError
		a.Details["node"], a.Details["stage"] = d.Node, stage
	case KindReleased:
		a.Key = "fleetdeck/" + dc + "/held/" + d.Node + "/" + stage
		a.Summary = fmt.Sprintf("fleetdeck provisioner: %s released (%s)", d.Node, stage)
		a.Resolved = true
	case KindBreakerOpened:
		a.Key = "fleetdeck/" + dc + "/breaker"
		a.Summary = "fleetdeck provisioner: circuit breaker open in " + dc + ", nothing launches: " + d.Reason
		a.Severity = notify.SeverityCritical
	case KindBreakerClosed:
		a.Key = "fleetdeck/" + dc + "/breaker"
		a.Summary = "fleetdeck provisioner: circuit breaker closed in " + dc
		a.Resolved = true
	default:
		return notify.Alert{}, false
	}
	return a, true
}

// cancelRuns cancels this leader's runs (lost leadership: at once).
func (s *Server) cancelRuns(ld *leading, why string) {
	for id := range ld.runs {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := s.cfg.Launcher.Cancel(cctx, id); err != nil {
			s.cfg.Log.Warn("cancelling a run", "run", id, "why", why, "err", err)
		}
		cancel()
	}
}

// shutdown stops cleanly: nothing new launches; running runs get Grace
// to finish (their outcomes recorded), then are cancelled; the state is
// saved with a context of its own.
func (s *Server) shutdown(ld *leading, alerts *sync.WaitGroup) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Grace+30*time.Second)
	defer cancel()
	if len(ld.runs) > 0 {
		s.cfg.Log.Info("stopping: waiting for runs to finish", "runs", len(ld.runs), "grace", s.cfg.Grace.String())
	}
	deadline := time.NewTimer(s.cfg.Grace)
	defer deadline.Stop()
	var lost <-chan struct{}
	if ld.l != nil {
		lost = ld.l.Lost()
	}
	cancelled := false
	for len(ld.runs) > 0 {
		select {
		case <-s.cfg.Launcher.Ended():
		case <-time.After(time.Second):
		case <-lost:
			s.cancelRuns(ld, "leadership lost while stopping")
			return errors.New("leadership lost while stopping")
		case <-deadline.C:
			if !cancelled {
				s.cfg.Log.Warn("stopping: the grace period ended; cancelling runs", "runs", len(ld.runs))
				s.cancelRuns(ld, "shutdown")
				cancelled = true
				deadline.Reset(15 * time.Second)
			} else {
				s.cfg.Log.Warn("stopping: runs did not end after cancelling", "runs", len(ld.runs))
				return s.pass(ctx, ld, alerts, false)
			}
		}
		if err := s.pass(ctx, ld, alerts, false); err != nil {
			return err
		}
	}
	if err := s.pass(ctx, ld, alerts, false); err != nil {
		return err
	}
	bye := []Decision{{At: time.Now().UTC(), Kind: KindLeader, Reason: "stopped leading: shutdown"}}
	ld.decisions = append(ld.decisions, bye...)
	s.emit(ctx, ld, alerts, bye)
	return s.save(ctx, ld)
}
