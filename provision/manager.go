package provision

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/fleetdeck/fleetdeck/fleet"
)

// ManagerConfig wires a Manager to the parts it orchestrates.
type ManagerConfig struct {
	// Feed gives the fleet snapshot each run's inventory is built from.
	Feed fleet.Feed
	// Runner starts ansible-playbook; History records every run; Queue caps
	// parallel runs and takes the hosts' locks in Consul.
	Runner  *Runner
	History *History
	Queue   *RunQueue
	// Inventory tunes the per-run inventory.
	Inventory InventoryOptions
	// Timeout ends a run that takes longer (0: no timeout).
	Timeout time.Duration
	// OutputLines bounds the output lines kept in memory per live run
	// (default 5000; the whole output is in history and the run dir). Each
	// line is cut at OutputLineMax bytes.
	OutputLines int
	// KeepRuns is how many runs history keeps ([ansible] keep_runs,
	// default DefaultKeepRuns); KeepFor how long ([ansible] keep_days,
	// default DefaultKeepFor). Older final runs are pruned with their run
	// directories at start and after each run (see Prune). A negative
	// value turns that rule off.
	KeepRuns int
	KeepFor  time.Duration
	// ReadOnly makes the manager refuse everything that would change
	// something ([ui] read_only, --read-only): Preview, Launch, Cancel and
	// Rerun return ErrReadOnly. Lists, boards and locks stay readable.
	ReadOnly bool
}

// Errors of the launch policy. The Manager enforces the policy itself, so
// a caller without a console (a script, a test, a later API) is held to it
// as the console is.
var (
	// ErrReadOnly: the manager is read-only (ManagerConfig.ReadOnly).
	ErrReadOnly = errors.New("read-only: fleetdeck was started with --read-only (or [ui] read_only), nothing can be run or cancelled")
	// ErrConfirmation: a launch that needs a typed confirmation
	// (Preview.Confirm) was not given it; the error says what to type.
	ErrConfirmation = errors.New("confirmation needed")
)

// Defaults of ManagerConfig's pruning rules.
const (
	DefaultKeepRuns = 1000
	DefaultKeepFor  = 90 * 24 * time.Hour
)

// OutputLineMax bounds one line of a run's output held in memory (the live
// tail, the run view): a longer line is cut there with a marker saying how
// many bytes were left out. output.log has the whole line; history keeps
// the first HistoryConfig.MaxOutputBytes of the output.
const OutputLineMax = 64 << 10

// Manager is the one place runs are launched from: it previews (inventory
// snapshot, exact argv, --list-hosts), queues and locks, runs, follows the
// events, records everything in history and releases the locks. The
// console talks to it through tui.Provisioner. Methods are safe for
// concurrent use.
type Manager struct {
	cfg    ManagerConfig
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	plans   map[string]*mgrPlan
	live    map[string]*mgrRun
	version uint64
	changed chan struct{}

	pruning sync.Mutex // one Prune at a time; a Prune already under way is enough

	hookMu  sync.Mutex
	hooks   []mgrHook
	hookSeq uint64
}

// mgrHook is one OnRunFinished subscription.
type mgrHook struct {
	id uint64
	f  func(RunInfo)
}

// mgrPlan is a preview waiting to be launched or discarded. Its fields are
// the manager's own copies: the *Preview handed to the caller may be
// changed by it without changing what is launched or what must be typed.
type mgrPlan struct {
	plan    *RunPlan
	scope   LaunchScope
	subject string
	confirm string // what Launch needs typed (Preview.Confirm)
	targets []RunTarget
	meta    map[string]string // LaunchRequest.Meta, validated
	hostVar []string          // the names of the per-host variables, sorted
}

// mgrRun is a run of this process, queued or running.
type mgrRun struct {
	info    RunInfo
	argv    []string
	state   *RunState
	out     []string
	outSize int    // bytes of out
	partial string // the line being written, at most OutputLineMax bytes
	partCut int    // bytes of it left out
	dropped int
	cancel  context.CancelFunc
	// canceled is set by Cancel, so a run cancelled while queued ends as
	// cancelled rather than as an error.
	canceled bool
	// ticket is the run's place in the queue, given up by its final
	// transition.
	ticket *QueueTicket
}

// NewManager returns a Manager; Close stops its runs.
func NewManager(cfg ManagerConfig) (*Manager, error) {
	if cfg.Feed == nil || cfg.Runner == nil || cfg.History == nil || cfg.Queue == nil {
		return nil, errors.New("creating the run manager: feed, runner, history and queue are all required")
	}
	if cfg.OutputLines <= 0 {
		cfg.OutputLines = 5000
	}
	if cfg.KeepRuns == 0 {
		cfg.KeepRuns = DefaultKeepRuns
	}
	if cfg.KeepFor == 0 {
		cfg.KeepFor = DefaultKeepFor
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &Manager{
		cfg: cfg, ctx: ctx, cancel: cancel,
		plans: map[string]*mgrPlan{}, live: map[string]*mgrRun{},
		changed: make(chan struct{}),
	}
	// Clean up after earlier consoles (leftover secrets files, old runs)
	// without delaying the start.
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.maintain()
	}()
	return m, nil
}

// maintain runs Prune in the background of a start or a run's end; a
// Prune already under way makes it return at once.
func (m *Manager) maintain() {
	if !m.pruning.TryLock() {
		return
	}
	defer m.pruning.Unlock()
	ctx, cancel := context.WithTimeout(m.ctx, 2*time.Minute)
	defer cancel()
	_, _ = m.prune(ctx)
}

// Close cancels every queued and running run of this manager, waits until
// they have ended and been recorded, and discards open previews. Each run's
// host locks are released within DefaultLockReleaseTimeout whatever Consul
// does, so Close returns within about that after the runs' cancel
// sequence.
func (m *Manager) Close() {
	m.cancel()
	m.wg.Wait()
	m.mu.Lock()
	plans := m.plans
	m.plans = map[string]*mgrPlan{}
	m.mu.Unlock()
	for _, p := range plans {
		_ = p.plan.Discard()
	}
}

// notifyLocked wakes Next callers.
func (m *Manager) notifyLocked() {
	m.version++
	close(m.changed)
	m.changed = make(chan struct{})
}

// Next blocks until the runs changed after version after and returns the
// current version.
func (m *Manager) Next(ctx context.Context, after uint64) (uint64, error) {
	for {
		m.mu.Lock()
		v, ch := m.version, m.changed
		m.mu.Unlock()
		if v > after {
			return v, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

// Playbooks lists the allow-listed playbooks.
func (m *Manager) Playbooks(ctx context.Context) ([]Playbook, error) {
	return m.cfg.Runner.cfg.Catalog.List(ctx)
}

// Preview builds the inventory from the current snapshot, prepares the run
// and resolves its hosts with ansible-playbook --list-hosts.
func (m *Manager) Preview(ctx context.Context, req LaunchRequest) (*Preview, error) {
	if m.cfg.ReadOnly {
		return nil, fmt.Errorf("previewing a run: %w", ErrReadOnly)
	}
	if len(req.Targets) == 0 {
		return nil, fmt.Errorf("previewing a run: %w: no target nodes", ErrRunSpec)
	}
	if req.Scope.Wide() && req.Subject == "" {
		// The subject is what a wide run's confirmation asks for.
		return nil, fmt.Errorf("previewing a run: %w: a %s-wide run names its %s", ErrRunSpec, req.Scope, req.Scope)
	}
	if err := ValidateRunMeta(req.Meta); err != nil {
		return nil, fmt.Errorf("previewing a run: %w", err)
	}
	if req.Unlisted && req.Scope.Wide() {
		return nil, fmt.Errorf("previewing a run: %w: a %s-wide run is always listed", ErrRunSpec, req.Scope)
	}
	if len(req.HostVars) > 0 && req.Scope.Wide() {
		// Its nodes are worked out again below: nodes that joined the
		// role or group since would run without their variables.
		return nil, fmt.Errorf("previewing a run: %w: a %s-wide run cannot carry per-host variables (its nodes are chosen again at preview time); name the nodes (scope node or marked)", ErrHostVars, req.Scope)
	}
	// Checked against the targets as the caller named them: a node that
	// has left the fleet since is dropped below with a note, its
	// variables with it.
	hostVars, err := encodeHostVars(req.HostVars, req.Targets, req.ExtraVars)
	if err != nil {
		return nil, fmt.Errorf("previewing a run: %w", err)
	}
	snap := m.cfg.Feed.Current()
	var notes []string
	req.Targets, notes = resolveTargets(snap, req)
	if len(req.Targets) == 0 {
		return nil, fmt.Errorf("previewing a run: none of the %s's nodes is in the fleet now", req.Scope)
	}
	inv, warns := BuildInventory(snap, m.cfg.Inventory)
	varHosts := 0
	for _, key := range req.Targets {
		vars := hostVars.vars[key]
		host, ok := inv.Resolve(key)
		if len(vars) == 0 || !ok {
			continue // no variables; or not in the inventory, refused below
		}
		// A copy: the inventory built above is this preview's own, but its
		// host variables are documented as never changed once built.
		hv := *inv.Hosts[host]
		hv.Extra = vars
		inv.Hosts[host] = &hv
		varHosts++
	}
	var invJSON bytes.Buffer
	if err := inv.WriteList(&invJSON); err != nil {
		return nil, fmt.Errorf("previewing a run: writing the inventory: %w", err)
	}
	want := map[string]bool{}
	var limit []string
	var targets []RunTarget
	aliases := map[string]string{}
	for _, key := range req.Targets {
		host, ok := inv.Resolve(key)
		if !ok {
			return nil, fmt.Errorf("previewing a run: node %s is not in the inventory", key)
		}
		dc, name, _ := strings.Cut(key, "/")
		if host != name {
			aliases[host] = key
		}
		want[key] = true
		limit = append(limit, host)
		targets = append(targets, RunTarget{Host: host, Node: name, Datacenter: dc})
	}
	spec := RunSpec{
		Playbook: req.Playbook, Inventory: invJSON.Bytes(), Limit: limit,
		Check: req.Check, Diff: req.Diff, Tags: req.Tags, SkipTags: req.SkipTags,
		ExtraVars: req.ExtraVars, Forks: req.Forks, Become: req.Become, Timeout: m.cfg.Timeout, Unlisted: req.Unlisted,
	}
	plan, err := m.cfg.Runner.Preview(ctx, spec)
	if err != nil {
		return nil, err
	}
	p := &Preview{
		PlanID: plan.ID, Request: req, Hosts: slices.Clone(plan.Hosts), Aliases: aliases,
		Argv: slices.Clone(plan.Argv), Env: slices.Clone(plan.Env), ExtraVars: shownExtraVars(spec.ExtraVars),
		HostVarNames: slices.Clone(hostVars.names), HostVarHosts: varHosts,
	}
	p.Warnings = append(p.Warnings, snapshotWarnings(snap)...)
	p.Warnings = append(p.Warnings, notes...)
	for _, w := range warns {
		if w.Node != "" && want[w.Node] {
			p.Warnings = append(p.Warnings, w.Message)
		}
	}
	if len(plan.Hosts) == 0 {
		p.Warnings = append(p.Warnings, "ansible-playbook matched no host: the playbook's plays do not target these nodes")
	}
	p.Confirm = confirmText(spec.Check, req.Scope, req.Subject, len(plan.Hosts))
	m.mu.Lock()
	m.plans[plan.ID] = &mgrPlan{plan: plan, scope: req.Scope, subject: req.Subject, confirm: p.Confirm, targets: targets,
		meta: maps.Clone(req.Meta), hostVar: hostVars.names}
	m.mu.Unlock()
	return p, nil
}

// shownExtraVars is the extra vars as a preview shows them, in the order
// given: "key=value", a secret's value (the rule of RedactExtraVars) as
// "key=<redacted>". The values were checked by Prepare.
func shownExtraVars(vars []string) []string {
	out := make([]string, 0, len(vars))
	for _, kv := range vars {
		k, v, _ := strings.Cut(kv, "=")
		out = append(out, k+"="+histRedactValue(k, v))
	}
	return out
}

// snapshotWarnings says why the snapshot an inventory is built from may
// not be the fleet as it is: a datacenter that is not connected (its nodes
// are as last known, or missing), or results Consul left out for the
// token's ACLs.
func snapshotWarnings(s *fleet.Snapshot) []string {
	var out []string
	for _, c := range s.Conn {
		if c.Status != fleet.Connected {
			w := fmt.Sprintf("datacenter %s is %s: its nodes are as last known, the inventory may be out of date", c.Datacenter, c.Status)
			if c.LastError != "" {
				w += " (" + c.LastError + ")"
			}
			out = append(out, w)
		}
		if c.FilteredByACL {
			out = append(out, fmt.Sprintf("datacenter %s: Consul left out results the token may not read (ACLs): the inventory may be incomplete", c.Datacenter))
		}
		if c.Loading("roles") || c.Loading("health") {
			out = append(out, fmt.Sprintf("datacenter %s is still loading its nodes' roles or health: roles, groups of roles and health in the inventory may be incomplete", c.Datacenter))
		}
	}
	return out
}

// confirmThreshold is the number of hosts from which a run that is not in
// check mode needs typed confirmation even when it is not role- or
// group-wide (marked nodes, re-runs).
const confirmThreshold = 5

// confirmText is what the user must type to launch a run that changes
// things on many hosts: the role or group name for a wide run, the number
// of hosts for a large selection; "" when no confirmation is needed (check
// mode changes nothing).
func confirmText(check bool, scope LaunchScope, subject string, hosts int) string {
	switch {
	case check:
		return ""
	case scope.Wide():
		return subject
	case hosts >= confirmThreshold:
		return strconv.Itoa(hosts)
	}
	return ""
}

// confirmError says what must be typed to launch p, and why.
func confirmError(p *mgrPlan, typed string) error {
	why := fmt.Sprintf("the run changes %d hosts (not in check mode)", len(p.plan.Hosts))
	if p.scope.Wide() {
		why = fmt.Sprintf("the run changes the whole %s %s (not in check mode)", p.scope, p.subject)
	}
	got := "nothing was typed"
	if typed != "" {
		got = fmt.Sprintf("%q was typed", typed)
	}
	return fmt.Errorf("launching: %w: type %q exactly to launch: %s; %s", ErrConfirmation, p.confirm, why, got)
}

// resolveTargets works out the nodes a request runs on from the current
// snapshot, at preview time: a role or a group is whatever nodes hold it
// now (autoscaling groups churn between opening the form and previewing),
// kept to the datacenters the request's targets were in; a node or a
// selection keeps the nodes that are still there. notes say what changed.
func resolveTargets(s *fleet.Snapshot, req LaunchRequest) (targets, notes []string) {
	dcs := map[string]bool{}
	for _, k := range req.Targets {
		dc, _, _ := strings.Cut(k, "/")
		dcs[dc] = true
	}
	if req.Scope.Wide() {
		for _, n := range s.Nodes {
			if len(dcs) > 0 && !dcs[n.Datacenter] {
				continue
			}
			if (req.Scope == ScopeRole && n.HasRole(req.Subject)) || (req.Scope == ScopeGroup && n.Group == req.Subject) {
				targets = append(targets, n.Key())
			}
		}
		before := map[string]bool{}
		for _, k := range req.Targets {
			before[k] = true
		}
		joined := 0
		for _, k := range targets {
			if !before[k] {
				joined++
			}
			delete(before, k)
		}
		if joined > 0 || len(before) > 0 {
			notes = append(notes, fmt.Sprintf("%s %s has %d nodes now (%d when the form opened: %d joined, %d left since)",
				req.Scope, req.Subject, len(targets), len(req.Targets), joined, len(before)))
		}
		return targets, notes
	}
	var gone []string
	for _, k := range req.Targets {
		dc, name, _ := strings.Cut(k, "/")
		if s.Node(dc, name) == nil {
			gone = append(gone, k)
			continue
		}
		targets = append(targets, k)
	}
	if len(gone) > 0 {
		notes = append(notes, fmt.Sprintf("left out %d node(s) no longer in the fleet: %s", len(gone), strings.Join(gone, ", ")))
	}
	return targets, notes
}

// Discard drops a preview that will not be launched.
func (m *Manager) Discard(planID string) {
	m.mu.Lock()
	p := m.plans[planID]
	delete(m.plans, planID)
	m.mu.Unlock()
	if p != nil {
		_ = p.plan.Discard()
	}
}

// Launch records and queues a previewed plan and returns the run's id. The
// run starts when a slot is free and all its hosts are locked.
//
// Launch enforces the launch policy whoever calls it. A read-only manager
// launches nothing (ErrReadOnly). A plan whose Preview.Confirm is set —
// the role or group name for a role- or group-wide run, the number of
// hosts for 5 hosts or more, in both cases outside check mode — launches
// only when typed is exactly that text; otherwise the error wraps
// ErrConfirmation and says what to type, and the plan stays open so the
// caller can try again (or Discard it). typed is what the user typed, ""
// when nothing was asked; it is not looked at when no confirmation is
// needed. What must be typed is the manager's own record of the preview:
// changing the returned Preview changes nothing.
func (m *Manager) Launch(ctx context.Context, planID, typed string) (string, error) {
	if m.cfg.ReadOnly {
		return "", fmt.Errorf("launching: %w", ErrReadOnly)
	}
	m.mu.Lock()
	p := m.plans[planID]
	if p != nil && p.confirm != "" && typed != p.confirm {
		m.mu.Unlock()
		return "", confirmError(p, typed)
	}
	delete(m.plans, planID)
	m.mu.Unlock()
	if p == nil {
		return "", fmt.Errorf("launching: no preview %s (already launched or discarded)", planID)
	}
	spec := p.plan.Spec
	vars := map[string]string{}
	for _, kv := range spec.ExtraVars {
		k, v, err := ParseExtraVar(kv)
		if err != nil {
			_ = p.plan.Discard()
			return "", err
		}
		vars[k] = v
	}
	rec, err := m.cfg.History.Create(ctx, RunRecord{
		Status: RunQueued, Argv: p.plan.Argv, Playbook: p.plan.Playbook.Name, PlaybookSHA256: p.plan.Playbook.SHA256,
		Check: spec.Check, Diff: spec.Diff, Tags: spec.Tags, SkipTags: spec.SkipTags, Forks: spec.Forks, Become: spec.Become,
		ExtraVars: vars, Targets: p.targets, Inventory: InventorySnapshot(spec.Inventory),
		Scope: string(p.scope), Subject: p.subject, Dir: p.plan.Dir, Meta: p.meta, HostVars: p.hostVar,
	})
	if err != nil {
		_ = p.plan.Discard()
		return "", err
	}
	runCtx, cancel := context.WithCancel(m.ctx)
	r := &mgrRun{
		info: RunInfo{
			ID: rec.ID, Playbook: rec.Playbook, Scope: p.scope, Subject: p.subject,
			Who: rec.User, Status: RunQueued, Check: spec.Check, Hosts: len(p.plan.Hosts), Started: rec.Created, Live: true,
			Meta: rec.Meta, HostVars: rec.HostVars,
		},
		argv:   rec.Argv,
		state:  NewRunState(p.plan.Hosts),
		cancel: cancel,
	}
	r.info.Counts = r.state.StatusCounts()
	r.ticket, _ = m.cfg.Queue.Enqueue(rec.ID, p.targets)
	m.mu.Lock()
	m.live[rec.ID] = r
	m.notifyLocked()
	m.mu.Unlock()
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer cancel()
		m.execute(runCtx, r, p.plan)
		m.maintain()
	}()
	return rec.ID, nil
}

// execute waits for the queue, runs the plan, follows it and records it;
// every change of the run's status goes through transition. Records are
// written with a context that outlives runCtx so a cancelled run is still
// recorded as cancelled.
func (m *Manager) execute(runCtx context.Context, r *mgrRun, plan *RunPlan) {
	id := r.info.ID
	rec := context.WithoutCancel(runCtx)
	ticket := r.ticket

	// Show why a queued run waits, as the queue learns it.
	waitDone := make(chan struct{})
	go func() {
		for {
			select {
			case <-waitDone:
				return
			case <-m.cfg.Queue.Changed():
				m.mu.Lock()
				r.info.QueueReason = ticket.Reason()
				m.notifyLocked()
				m.mu.Unlock()
			}
		}
	}()
	lock, err := ticket.Wait(runCtx)
	close(waitDone)
	if err != nil {
		_ = plan.Discard()
		m.mu.Lock()
		canceled := r.canceled
		m.mu.Unlock()
		if canceled || runCtx.Err() != nil {
			m.transition(rec, r, RunResult{Status: RunCancelled, Reason: "cancelled while queued"})
		} else {
			m.transition(rec, r, RunResult{Status: RunError, Reason: err.Error()})
		}
		return
	}
	m.transition(rec, r, RunResult{Status: RunRunning})
	run, err := m.cfg.Runner.Start(runCtx, plan)
	if err != nil {
		// A cancel that lands between the locks and the process start
		// makes Start fail on the cancelled context: that run was
		// cancelled, not broken.
		m.mu.Lock()
		canceled := r.canceled
		m.mu.Unlock()
		if canceled || runCtx.Err() != nil {
			m.transition(rec, r, RunResult{Status: RunCancelled, Reason: "cancelled while starting"})
		} else {
			m.transition(rec, r, RunResult{Status: RunError, Reason: err.Error()})
		}
		return
	}

	// A lock that is lost (not renewed for half its TTL, or invalidated)
	// may be taken by another console once Consul expires it: the run is
	// killed, with graces cut short, before that can happen.
	lostLocks := make(chan struct{})
	runEnded := make(chan struct{})
	go func() {
		select {
		case <-lock.Lost():
			run.CancelBy(lock.Expires())
			close(lostLocks)
			note := "\nfleetdeck: " + lock.Err().Error() + "; cancelling the run\n"
			_ = m.cfg.History.AppendOutput(rec, id, []byte(note))
			m.noteOutput(r, note)
		case <-runEnded:
		}
	}()

	var follow sync.WaitGroup
	follow.Add(2)
	go func() { defer follow.Done(); m.followEvents(rec, r, run) }()
	go func() { defer follow.Done(); m.followOutput(rec, r, run) }()
	report, runErr := run.Wait(rec)
	close(runEnded)
	follow.Wait()

	res := RunResult{Ended: report.Ended, Status: statusOf(report.End, runErr)}
	if report.End.ExitCode >= 0 && runErr == nil {
		code := report.End.ExitCode
		res.ExitCode = &code
	}
	switch {
	case isClosed(lostLocks) && report.End.Canceled:
		res.Status = RunLockLost
		res.Reason = "cancelled: the host locks were lost: " + lock.Err().Error()
	case report.End.Error != "":
		res.Reason = report.End.Error
	case runErr != nil:
		res.Reason = runErr.Error()
	}
	if report.State != nil {
		res.Recap = recapOf(report.State)
	}
	m.transition(rec, r, res)
}

// transition is the one place the status of a run of this manager
// changes (the run is created queued by Launch). It refuses what
// RunStatus.CanBecome refuses, so a run ends once. It records the change
// in history, then shows it: going to running, the run leaves the queue;
// going to a final status, the board is settled (RunState.MarkEnded), its
// host counts recorded, the run's place in the queue and its host locks
// given up, the run removed from the live runs, and the OnRunFinished
// hooks called. A failure to record is reported in the run's reason (a
// final status) or output (running), not lost.
func (m *Manager) transition(ctx context.Context, r *mgrRun, res RunResult) {
	id := r.info.ID
	final := res.Status.Final()
	m.mu.Lock()
	if !r.info.Status.CanBecome(res.Status) {
		m.mu.Unlock()
		return
	}
	if final {
		r.state.MarkEnded()
		res.HostCounts = r.state.StatusCounts()
	}
	m.mu.Unlock()

	if final {
		if res.Ended.IsZero() {
			res.Ended = time.Now()
		}
		if err := m.cfg.History.Finish(ctx, id, res); err != nil {
			res.Reason = strings.TrimSpace(res.Reason + "; recording the end failed: " + err.Error())
		}
		_ = r.ticket.Done(ctx)
	} else if err := m.cfg.History.SetStatus(ctx, id, res.Status, res.Reason); err != nil {
		m.noteOutput(r, "fleetdeck: recording the status "+string(res.Status)+" failed: "+err.Error()+"\n")
	}

	m.mu.Lock()
	r.info.Status = res.Status
	switch {
	case final:
		r.info.Ended, r.info.QueueReason, r.info.Live = res.Ended, res.Reason, false
		r.info.ExitCode = -1
		if res.ExitCode != nil {
			r.info.ExitCode = *res.ExitCode
		}
		r.info.Counts = res.HostCounts
		delete(m.live, id)
	case res.Status == RunRunning:
		r.info.QueueReason, r.info.Started = "", time.Now()
	default:
		r.info.QueueReason = res.Reason
	}
	info := r.info
	m.notifyLocked()
	m.mu.Unlock()
	if final {
		m.runFinished(info)
	}
}

// OnRunFinished subscribes f to the end of the runs of this manager: f is
// called exactly once for each run that reaches a final status (ok,
// failed, cancelled — also while queued —, timed-out, lock-lost, error),
// with its final RunInfo, after the end is recorded in history and the
// run's host locks are released, so f may launch a follow-up run on the
// same hosts. Runs that other, dead consoles left behind and that
// History.RecoverInterrupted marks interrupted are not this manager's
// runs: no hook is called for them.
//
// f runs on the finishing run's goroutine, hooks in the order they
// subscribed: it must return soon (start a goroutine for slow work), must
// not call Close, and must not panic. Each call gets its own copy of the
// info. unsubscribe stops further calls; calling it again does nothing.
func (m *Manager) OnRunFinished(f func(RunInfo)) (unsubscribe func()) {
	m.hookMu.Lock()
	m.hookSeq++
	id := m.hookSeq
	m.hooks = append(m.hooks, mgrHook{id: id, f: f})
	m.hookMu.Unlock()
	return func() {
		m.hookMu.Lock()
		m.hooks = slices.DeleteFunc(m.hooks, func(h mgrHook) bool { return h.id == id })
		m.hookMu.Unlock()
	}
}

// runFinished calls the OnRunFinished hooks for one run.
func (m *Manager) runFinished(info RunInfo) {
	m.hookMu.Lock()
	hooks := slices.Clone(m.hooks)
	m.hookMu.Unlock()
	for _, h := range hooks {
		h.f(info.clone())
	}
}

// clone copies the info's maps and slices, so a caller may keep or change
// it while the run goes on.
func (info RunInfo) clone() RunInfo {
	info.Counts = maps.Clone(info.Counts)
	info.Meta = maps.Clone(info.Meta)
	info.HostVars = slices.Clone(info.HostVars)
	return info
}

// isClosed reports whether c is closed.
func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// statusOf maps how ansible-playbook ended to the run's final status.
func statusOf(end RunEnd, err error) RunStatus {
	switch {
	case end.Canceled:
		return RunCancelled
	case end.TimedOut:
		return RunTimedOut
	case err != nil:
		return RunError
	}
	switch end.Outcome {
	case OutcomeOK:
		return RunOK
	case OutcomeFailed, OutcomeUnreachable:
		return RunFailed
	case OutcomeCanceled:
		return RunCancelled
	case OutcomeTimedOut:
		return RunTimedOut
	}
	return RunError
}

// recapOf converts the play recap for the history.
func recapOf(s *RunState) map[string]HostRecap {
	if len(s.Recap) == 0 {
		return nil
	}
	out := make(map[string]HostRecap, len(s.Recap))
	for h, st := range s.Recap {
		out[h] = HostRecap{OK: st.OK, Changed: st.Changed, Failed: st.Failures, Unreachable: st.Unreachable,
			Skipped: st.Skipped, Rescued: st.Rescued, Ignored: st.Ignored}
	}
	return out
}

// followEvents applies the run's events to the live board and appends them
// to history, one batch at a time: the runner hands over what arrived
// together, so a burst of thousands of events is one history write and one
// console refresh. It reads the run's event log rather than its in-memory
// window, so however far behind it falls it sees every event: the board
// stays exact and history complete, while memory holds one batch.
func (m *Manager) followEvents(ctx context.Context, r *mgrRun, run *Run) {
	var off int64
	for {
		data, next, err := run.EventLog(ctx, off)
		if len(data) > 0 {
			var lines [][]byte
			var batch []RunEvent
			for line := range bytes.Lines(data) {
				line = bytes.TrimSuffix(line, []byte("\n"))
				// Lines that are not events (a broken plugin's) stay in
				// events.jsonl only, as before.
				if ev, err := ParseRunEvent(line); err == nil {
					lines = append(lines, line)
					batch = append(batch, ev)
				}
			}
			_ = m.cfg.History.AppendEvents(ctx, r.info.ID, lines...)
			m.mu.Lock()
			for _, ev := range batch {
				r.state.Apply(ev)
			}
			r.info.Counts = r.state.StatusCounts()
			m.notifyLocked()
			m.mu.Unlock()
		}
		off = next
		if err != nil {
			return
		}
	}
}

// followOutput keeps the tail of the human output for the console and
// appends all of it to history.
func (m *Manager) followOutput(ctx context.Context, r *mgrRun, run *Run) {
	var off int64
	for {
		data, next, err := run.Output(ctx, off)
		if len(data) > 0 {
			_ = m.cfg.History.AppendOutput(ctx, r.info.ID, data)
			m.noteOutput(r, string(data))
		}
		off = next
		if err != nil {
			return
		}
	}
}

// noteOutput adds output text to the live run's bounded line tail. A line
// longer than OutputLineMax keeps its first OutputLineMax bytes and gets a
// marker with the number of bytes left out, so a run printing a 50 MB line
// without a newline holds 64 KiB here, not 50 MB.
func (m *Manager) noteOutput(r *mgrRun, text string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for {
		i := strings.IndexByte(text, '\n')
		seg := text
		if i >= 0 {
			seg = text[:i]
		}
		keep := utf8Prefix(seg, OutputLineMax-len(r.partial))
		r.partial += keep
		r.partCut += len(seg) - len(keep)
		if i < 0 {
			break
		}
		line := lineCutMarker(r.partial, r.partCut)
		r.out = append(r.out, line)
		r.outSize += len(line)
		r.partial, r.partCut = "", 0
		text = text[i+1:]
	}
	over := max(len(r.out)-m.cfg.OutputLines, 0)
	size := r.outSize
	for _, l := range r.out[:over] {
		size -= len(l)
	}
	for size > mgrOutputTailBytes && over < len(r.out)-1 {
		size -= len(r.out[over])
		over++
	}
	if over > 0 {
		r.outSize = size
		r.dropped += over
		r.out = slices.Clone(r.out[over:])
	}
	m.notifyLocked()
}

// mgrOutputTailBytes bounds the live tail's bytes as OutputLines bounds its
// lines: 5000 lines of up to 64 KiB each would be 312 MiB.
const mgrOutputTailBytes = 8 << 20

// utf8Prefix is the longest prefix of s of at most n bytes that does not
// end inside a UTF-8 sequence.
func utf8Prefix(s string, n int) string {
	if n >= len(s) {
		return s
	}
	if n <= 0 {
		return ""
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// lineCutMarker appends the cut marker to a line that lost cut bytes.
func lineCutMarker(line string, cut int) string {
	if cut <= 0 {
		return line
	}
	return line + fmt.Sprintf("… [line cut: %d bytes]", cut)
}

// cutLine bounds one line to OutputLineMax bytes, with the marker.
func cutLine(line string) string {
	keep := utf8Prefix(line, OutputLineMax)
	return lineCutMarker(keep, len(line)-len(keep))
}

// Cancel stops a queued or running run of this manager (ErrReadOnly when
// the manager is read-only).
func (m *Manager) Cancel(_ context.Context, runID string) error {
	if m.cfg.ReadOnly {
		return fmt.Errorf("cancelling run %s: %w", runID, ErrReadOnly)
	}
	m.mu.Lock()
	r := m.live[runID]
	if r != nil {
		r.canceled = true
	}
	m.mu.Unlock()
	if r == nil {
		return fmt.Errorf("cancelling run %s: not running in this console", runID)
	}
	r.cancel()
	return nil
}

// Rerun previews a recorded run again with the same playbook and settings:
// on the same nodes (a role or group run on its nodes of now), or, with
// onlyFailed, on the hosts that did not end well — those that failed or
// were unreachable, and those that did not finish: a host missing from
// the run's PLAY RECAP, which for a run cut short (cancelled, timed out,
// lock-lost, interrupted: Ansible prints no recap then) is every host. It
// is an error only when every host finished without failing, or when the
// run has not ended yet. The subject says which hosts: "the 1 host of run
// X that failed", "the 3 hosts of run X that failed or did not finish".
func (m *Manager) Rerun(ctx context.Context, runID string, onlyFailed bool) (*Preview, error) {
	if m.cfg.ReadOnly {
		return nil, fmt.Errorf("re-running %s: %w", runID, ErrReadOnly)
	}
	rec, err := m.cfg.History.Get(ctx, runID)
	if err != nil {
		return nil, err
	}
	if len(rec.HostVars) > 0 {
		return nil, fmt.Errorf("re-running %s: %w: the run applied per-host variables (%s) as they were when it was launched; a re-run would apply those stale values: apply the current desired state instead (for role changes: set or revert the node's roles)",
			runID, ErrRerunHostVars, strings.Join(rec.HostVars, ", "))
	}
	req := LaunchRequest{
		Playbook: rec.Playbook, Scope: ScopeMarked, Check: rec.Check, Diff: rec.Diff, Become: rec.Become,
		Tags: rec.Tags, SkipTags: rec.SkipTags, Forks: rec.Forks,
	}
	// A re-run of a role or group run is a role or group run again: on its
	// nodes of now, with the same confirmation.
	if sc := LaunchScope(rec.Scope); sc.Wide() && !onlyFailed {
		req.Scope, req.Subject = sc, rec.Subject
	}
	for k, v := range rec.ExtraVars {
		if IsSecretVar(k) {
			return nil, fmt.Errorf("re-running %s: extra var %s was a secret and is not stored; launch it again from the form", runID, k)
		}
		req.ExtraVars = append(req.ExtraVars, k+"="+v)
	}
	slices.Sort(req.ExtraVars)
	var why map[string]rerunReason
	if onlyFailed {
		if !rec.Status.Final() {
			return nil, fmt.Errorf("re-running %s on the hosts that failed or did not finish: the run is still %s", runID, rec.Status)
		}
		why = rerunReasons(rec)
		if len(why) == 0 {
			return nil, fmt.Errorf("re-running %s on the hosts that failed or did not finish: every host finished without failing", runID)
		}
	}
	reasons := map[rerunReason]bool{}
	for _, t := range rec.Targets {
		if onlyFailed {
			r, ok := why[t.Host]
			if !ok {
				continue
			}
			reasons[r] = true
		}
		req.Targets = append(req.Targets, t.Datacenter+"/"+t.Node)
	}
	switch {
	case onlyFailed:
		req.Subject = rerunSubject(len(req.Targets), runID, reasons)
	case !req.Scope.Wide():
		req.Subject = rerunSubject(len(req.Targets), runID, nil)
	}
	return m.Preview(ctx, req)
}

// rerunReason is why a host is re-run by Rerun's onlyFailed.
type rerunReason int

// Re-run reasons, in the order a subject names them.
const (
	rerunFailed rerunReason = iota
	rerunUnreachable
	rerunUnfinished
)

// rerunReasons returns the hosts of an ended run that did not end well,
// with why: unreachable or failed in the recap, or missing from it.
func rerunReasons(rec RunRecord) map[string]rerunReason {
	out := map[string]rerunReason{}
	for _, t := range rec.Targets {
		rc, ok := rec.Recap[t.Host]
		switch {
		case !ok:
			out[t.Host] = rerunUnfinished
		case rc.Unreachable > 0:
			out[t.Host] = rerunUnreachable
		case rc.Failed > 0:
			out[t.Host] = rerunFailed
		}
	}
	return out
}

// rerunSubject names the hosts of a re-run: "the 1 host of run X", "the 3
// hosts of run X that failed or did not finish". reasons is nil for a
// re-run on every host.
func rerunSubject(n int, runID string, reasons map[rerunReason]bool) string {
	noun, be := "hosts", "were"
	if n == 1 {
		noun, be = "host", "was"
	}
	s := fmt.Sprintf("the %d %s of run %s", n, noun, runID)
	var why []string
	for _, r := range []rerunReason{rerunFailed, rerunUnreachable, rerunUnfinished} {
		if !reasons[r] {
			continue
		}
		switch r {
		case rerunFailed:
			why = append(why, "failed")
		case rerunUnreachable:
			why = append(why, be+" unreachable")
		case rerunUnfinished:
			why = append(why, "did not finish")
		}
	}
	switch len(why) {
	case 0:
		return s
	case 1:
		return s + " that " + why[0]
	}
	return s + " that " + strings.Join(why[:len(why)-1], ", ") + " or " + why[len(why)-1]
}

// Runs lists this manager's live runs and the history, newest first.
func (m *Manager) Runs(ctx context.Context) ([]RunInfo, error) {
	m.mu.Lock()
	var out []RunInfo
	seen := map[string]bool{}
	for _, r := range m.live {
		info := r.info.clone()
		info.Counts = r.state.StatusCounts()
		out = append(out, info)
		seen[info.ID] = true
	}
	m.mu.Unlock()
	page, err := m.cfg.History.List(ctx, ListOptions{Limit: 200})
	if err != nil {
		return out, err
	}
	for _, rec := range page.Runs {
		if seen[rec.ID] {
			continue
		}
		out = append(out, infoOf(rec))
	}
	slices.SortFunc(out, func(a, b RunInfo) int { return strings.Compare(b.ID, a.ID) })
	return out, nil
}

// infoOf summarises a history record.
func infoOf(rec RunRecord) RunInfo {
	info := RunInfo{
		ID: rec.ID, Playbook: rec.Playbook, Who: rec.User, Status: rec.Status, QueueReason: rec.Reason,
		Check: rec.Check, Hosts: rec.TargetCount, Started: rec.Started, Ended: rec.Ended,
		Scope: LaunchScope(rec.Scope), Subject: rec.Subject, Meta: rec.Meta, HostVars: rec.HostVars,
	}
	if info.Subject == "" {
		info.Subject = fmt.Sprintf("%d nodes", rec.TargetCount)
	}
	if info.Started.IsZero() {
		info.Started = rec.Created
	}
	info.ExitCode = -1
	if rec.ExitCode != nil {
		info.ExitCode = *rec.ExitCode
	}
	if len(rec.HostCounts) > 0 {
		info.Counts = map[HostStatus]int{}
		for k, n := range rec.HostCounts {
			info.Counts[HostStatus(k)] = n
		}
	}
	return info
}

// Run returns one run's board: live from memory, or replayed from its
// recorded events with the same reducer.
func (m *Manager) Run(ctx context.Context, runID string) (*RunView, error) {
	m.mu.Lock()
	if r := m.live[runID]; r != nil {
		v := &RunView{Info: r.info.clone(), Argv: slices.Clone(r.argv), State: cloneRunState(r.state),
			Output: slices.Clone(r.out), OutputTruncated: r.dropped}
		if r.partial != "" || r.partCut > 0 {
			v.Output = append(v.Output, lineCutMarker(r.partial, r.partCut))
		}
		v.Info.Counts = r.state.StatusCounts()
		m.mu.Unlock()
		return v, nil
	}
	m.mu.Unlock()
	rec, err := m.cfg.History.Get(ctx, runID)
	if err != nil {
		return nil, err
	}
	st := replayBoard(rec.Targets, slices.Values(rec.Events), rec.Status.Final())
	v := &RunView{Info: infoOf(rec), Argv: rec.Argv, State: st}
	v.Info.Counts = st.StatusCounts()
	if rec.Output != "" {
		for line := range strings.SplitSeq(strings.TrimRight(rec.Output, "\n"), "\n") {
			v.Output = append(v.Output, cutLine(line))
		}
	}
	return v, nil
}

// Locks lists every host lock held now, in every datacenter of the current
// snapshot (one read of each datacenter's KV store), sorted by datacenter
// and node. A datacenter that cannot be read does not hide the others:
// what was read comes with an error naming it.
func (m *Manager) Locks(ctx context.Context) ([]HeldLock, error) {
	lm := m.cfg.Queue.Locks()
	if lm == nil {
		return nil, errors.New("listing host locks: the run queue has no lock manager")
	}
	return lm.Held(ctx, m.cfg.Feed.Current().Datacenters...)
}

// cloneRunState deep-copies a board so the console can read it while the
// run goes on. Failures and tasks are immutable once appended except for
// their counters, so tasks are copied and failures shared by value.
func cloneRunState(s *RunState) *RunState {
	c := *s
	c.Hosts = make(map[string]*HostState, len(s.Hosts))
	for k, h := range s.Hosts {
		hc := *h
		c.Hosts[k] = &hc
	}
	c.HostOrder = slices.Clone(s.HostOrder)
	c.Tasks = make([]*TaskState, len(s.Tasks))
	for i, t := range s.Tasks {
		tc := *t
		c.Tasks[i] = &tc
	}
	c.Failures = slices.Clone(s.Failures)
	if s.Recap != nil {
		c.Recap = make(map[string]HostStats, len(s.Recap))
		for k, v := range s.Recap {
			c.Recap[k] = v
		}
	}
	if s.End != nil {
		e := *s.End
		c.End = &e
	}
	c.evTaskIndex = nil // the copy is read-only
	return &c
}
