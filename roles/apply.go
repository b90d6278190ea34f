package roles

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/fleetdeck/fleetdeck/fleet"
	"github.com/fleetdeck/fleetdeck/provision"
)

// The applier: a change of desired state from request to convergence, for
// the console and the CLI alike.
//
//	plan, err := a.Plan(ctx, roles.Request{Targets: nodes, Add: []string{"api"}, Reason: "…"})
//	// show plan.Nodes (current → next) and plan.Preview (hosts, argv, Confirm)
//	runID, written, err := a.Apply(ctx, plan, typed) // or a.Discard(plan)
//	states, err := a.Wait(ctx, feed, written, runID)
//
// Plan writes nothing: it reads each node's record (Store.Plan), builds
// the per-host variables of the apply playbook from the next records
// (HostVars) and previews one run over all the nodes through the run
// manager, with the run linked to the next generations (RunLinks). Apply
// writes each node's record, checked against the generation the plan read
// (one /v1/txn per node), then launches the previewed run. The run's
// hosts, argv and inventory are the preview's, so what was shown is what
// runs.

// Runner is what the applier needs of the run manager; *provision.Manager
// implements it. The manager's policy applies as to every run: read-only
// refuses, 5 hosts or more need the typed confirmation (Preview.Confirm),
// host locks, history and cancel.
type Runner interface {
	Preview(ctx context.Context, req provision.LaunchRequest) (*provision.Preview, error)
	Launch(ctx context.Context, planID, typed string) (string, error)
	Discard(planID string)
	Runs(ctx context.Context) ([]provision.RunInfo, error)
	Run(ctx context.Context, runID string) (*provision.RunView, error)
}

// ApplierConfig wires an Applier.
type ApplierConfig struct {
	// Store holds the desired records; Catalog defines the roles (the
	// store's own catalog, normally).
	Store   *Store
	Catalog *Catalog
	// Runner previews and launches the apply runs.
	Runner Runner
	// Playbook is the apply playbook's name in the run manager's catalog
	// ([roles] playbook; "": PlaybookFile).
	Playbook string
	// Who is recorded with every change ("": Who()).
	Who string
	// Poll bounds how long Wait sleeps between looks at the runs when the
	// fleet is quiet (0: 250 ms).
	Poll time.Duration
	// ReadNode, when set, reads one node's services and checks from the
	// catalog directly. Wait uses it for nodes whose run has ended and that
	// the snapshot does not show converged: the watcher holds back a node
	// that lost a service until the node list moves (up to 30 s), and an
	// agent's deregistration alone does not move it, so on a quiet cluster
	// the snapshot can lag the catalog by longer than SettleTime.
	ReadNode func(ctx context.Context, dc, name string) (*fleet.Node, error)
}

// Applier plans, applies and follows changes of nodes' desired state. It
// is safe for concurrent use.
type Applier struct {
	cfg ApplierConfig
}

// NewApplier returns an Applier; Store, Catalog and Runner are required.
func NewApplier(cfg ApplierConfig) (*Applier, error) {
	if cfg.Store == nil || cfg.Runner == nil {
		return nil, errors.New("roles: the applier needs a store and a run manager")
	}
	if cfg.Playbook == "" {
		cfg.Playbook = PlaybookFile
	}
	if cfg.Who == "" {
		cfg.Who = Who()
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 250 * time.Millisecond
	}
	return &Applier{cfg: cfg}, nil
}

// Who is the applier's "who".
func (a *Applier) Who() string { return a.cfg.Who }

// Who returns who is making changes from this process: user@host, the
// login name (os/user, else $USER or $LOGNAME) and the host name, reduced
// to printable text. It is decided here only; a served console passes the
// SSH user in ApplierConfig.Who instead.
func Who() string {
	name := ""
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	for _, env := range []string{"USER", "LOGNAME"} {
		if name == "" {
			name = os.Getenv(env)
		}
	}
	if name == "" {
		name = "uid" + strconv.Itoa(os.Getuid())
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown-host"
	}
	clean := func(s string, max int) string {
		s = strings.ToValidUTF8(s, "?")
		s = strings.Map(func(r rune) rune {
			if unicode.IsControl(r) || unicode.IsSpace(r) {
				return '_'
			}
			return r
		}, s)
		for len(s) > max {
			_, n := utf8.DecodeLastRuneInString(s)
			s = s[:len(s)-n]
		}
		return s
	}
	return clean(name, 120) + "@" + clean(host, 120)
}

// Request is one change asked for, over nodes taken from a snapshot. A
// role-wide change is a request over the role's nodes, resolved by the
// caller: the run manager refuses per-host variables on role- or
// group-wide runs, whose nodes it would choose again.
type Request struct {
	// Targets are the nodes, from a fleet snapshot (for their names,
	// datacenters and addresses). A node must not be given twice.
	Targets []*fleet.Node
	// Add and Remove are role names of the catalog; Maintenance, when
	// set, is the new maintenance mode.
	Add, Remove []string
	Maintenance *Maintenance
	// Reason is required for every change that writes a record.
	Reason string
	// RevertTo restores one node's generation RevertTo (a new generation
	// with RevertOf set); Add, Remove and Maintenance must be empty and
	// Targets must be one node.
	RevertTo uint64
	// ApplyOnly applies the nodes' current records as they are: a failed
	// apply again, a drifted node back, a pending record. Nothing is
	// written; every node needs a record.
	ApplyOnly bool
	// Meta is more run metadata (the deployment server's stage and batch
	// labels), merged with the run's generation links.
	Meta map[string]string
	// Unlisted skips the preview's --list-hosts (provision.LaunchRequest):
	// for the deployment server, which names its hosts exactly.
	Unlisted bool
	// Check previews and launches an ansible-playbook --check --diff run
	// of the change and writes nothing to KV. The run is not linked to any
	// generation, so it never makes a node Applying or Failed.
	Check bool
}

// NodePlan is one node of a plan.
type NodePlan struct {
	Node *fleet.Node
	// Current is the node's record now (nil: unmanaged); Next the record
	// the change makes (for ApplyOnly, the current record itself). Next's
	// When is the plan's time; Apply records its own.
	Current *Desired
	Next    Desired
	// Added and Removed are the roles Next adds to and takes from Current.
	Added, Removed []string
	// Write says Apply records Next (not for ApplyOnly or Check).
	Write bool
	// change is the change Apply records (with the seeded roles of an
	// unmanaged node).
	change Change
}

// Key is the node's key, "dc/name".
func (np NodePlan) Key() string { return np.Node.Key() }

// MaintenanceChange says how the maintenance mode changes ("" when it
// does not): "on (reason)", "off", "reason → …".
func (np NodePlan) MaintenanceChange() string {
	var cur Maintenance
	if np.Current != nil {
		cur = np.Current.Maintenance
	}
	next := np.Next.Maintenance
	switch {
	case cur == next:
		return ""
	case next.On && !cur.On:
		return fmt.Sprintf("on (%s)", next.Reason)
	case !next.On:
		return "off"
	}
	return fmt.Sprintf("reason %q → %q", cur.Reason, next.Reason)
}

// Plan is a prepared change: per node what it is and what it becomes, and
// the apply run's preview (hosts, argv, the confirmation to type).
type Plan struct {
	Request Request
	Who     string
	Nodes   []NodePlan
	Preview *provision.Preview
}

// Keys are the plan's node keys, in order.
func (p *Plan) Keys() []string {
	out := make([]string, len(p.Nodes))
	for i, np := range p.Nodes {
		out[i] = np.Key()
	}
	return out
}

// newChangeID returns a random change identifier (Desired.Change).
func newChangeID() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("making a change identifier: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// Records are the records the plan applies (the Next of every node).
func (p *Plan) Records() []Desired {
	out := make([]Desired, len(p.Nodes))
	for i, np := range p.Nodes {
		out[i] = np.Next
	}
	return out
}

// Plan prepares req: nothing is written, and the preview stays open in
// the run manager until Apply or Discard. A refused request (unknown
// role, bad reason, nothing to change, a node without a DNS-compatible
// name, …) is an error naming every node it is refused for.
func (a *Applier) Plan(ctx context.Context, req Request) (*Plan, error) {
	if err := req.check(); err != nil {
		return nil, err
	}
	p := &Plan{Request: req, Who: a.cfg.Who}
	changeID, err := newChangeID()
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, n := range req.Targets {
		np, err := a.planNode(ctx, req, n, changeID)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		p.Nodes = append(p.Nodes, np)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	hostVars := make(map[string]map[string]any, len(p.Nodes))
	for _, np := range p.Nodes {
		vars, err := a.hostVars(np)
		if err != nil {
			return nil, fmt.Errorf("node %s: %w", np.Key(), err)
		}
		hostVars[np.Key()] = vars
	}
	lr := provision.LaunchRequest{
		Playbook: a.cfg.Playbook, Scope: provision.ScopeNode, Subject: p.Nodes[0].Key(),
		Targets: p.Keys(), Check: req.Check, Diff: req.Check, HostVars: hostVars, Unlisted: req.Unlisted,
	}
	if len(p.Nodes) > 1 {
		lr.Scope, lr.Subject = provision.ScopeMarked, fmt.Sprintf("%d nodes", len(p.Nodes))
	}
	if !req.Check {
		lr.Meta = RunLinks(p.Records())
	}
	if len(req.Meta) > 0 {
		if lr.Meta == nil {
			lr.Meta = map[string]string{}
		}
		maps.Copy(lr.Meta, req.Meta)
	}
	pv, err := a.cfg.Runner.Preview(ctx, lr)
	if err != nil {
		return nil, fmt.Errorf("previewing the apply run: %w", err)
	}
	p.Preview = pv
	return p, nil
}

// check refuses requests whose parts contradict each other.
func (req Request) check() error {
	if len(req.Targets) == 0 {
		return errors.New("no node to change")
	}
	seen := map[string]bool{}
	for _, n := range req.Targets {
		if n == nil {
			return errors.New("a nil target node")
		}
		if seen[n.Key()] {
			return fmt.Errorf("node %s is given twice", n.Key())
		}
		seen[n.Key()] = true
	}
	changes := len(req.Add) > 0 || len(req.Remove) > 0 || req.Maintenance != nil
	switch {
	case req.ApplyOnly && (changes || req.RevertTo != 0):
		return errors.New("applying the current desired state changes nothing: no roles to add or remove, no maintenance, no revert")
	case req.RevertTo != 0 && changes:
		return fmt.Errorf("a revert restores generation %d as it was: no roles to add or remove, no maintenance", req.RevertTo)
	case req.RevertTo != 0 && len(req.Targets) != 1:
		return fmt.Errorf("a revert is for one node (generations are per node); %d given", len(req.Targets))
	}
	return nil
}

// planNode reads one node's record and works out its next one.
func (a *Applier) planNode(ctx context.Context, req Request, n *fleet.Node, changeID string) (NodePlan, error) {
	np := NodePlan{Node: n}
	if req.ApplyOnly {
		cur, err := a.cfg.Store.Get(ctx, n.Datacenter, n.Name)
		if err != nil {
			return np, err
		}
		if cur == nil {
			return np, fmt.Errorf("node %s is unmanaged (no desired record): nothing to apply", n.Key())
		}
		np.Current, np.Next = cur, *cur
		return np, nil
	}
	ch := Change{
		Node: n.Name, Datacenter: n.Datacenter, Add: req.Add, Remove: req.Remove, Maintenance: req.Maintenance,
		Reason: req.Reason, Who: a.cfg.Who, RevertTo: req.RevertTo, ID: changeID,
	}
	cur, next, err := a.cfg.Store.Plan(ctx, ch)
	// A node without a record may already run managed services (put there
	// by hand, or by a record deleted since): its first record starts from
	// them, so that adding a role does not silently take the others away.
	var held []string
	changes := len(req.Add) > 0 || len(req.Remove) > 0 || req.Maintenance != nil
	if cur == nil && req.RevertTo == 0 && changes && (err == nil || errors.Is(err, ErrNothingToChange)) {
		for _, s := range n.Services {
			if r, ok := strings.CutPrefix(s.ID, ServicePrefix); ok && !slices.Contains(req.Remove, r) && !slices.Contains(held, r) {
				if _, known := a.cfg.Catalog.Lookup(r); known {
					held = append(held, r)
				}
			}
		}
		if len(held) > 0 {
			ch.Add = slices.Concat(held, req.Add)
			cur, next, err = a.cfg.Store.Plan(ctx, ch)
		}
	}
	if err != nil {
		return np, err
	}
	if cur != nil {
		ch.Expect = cur.Generation
		held = cur.Roles
	} else {
		ch.ExpectUnmanaged = true
	}
	np.Current, np.Next, np.Write, np.change = cur, *next, !req.Check, ch
	for _, r := range next.Roles {
		if !slices.Contains(held, r) {
			np.Added = append(np.Added, r)
		}
	}
	for _, r := range held {
		if !slices.Contains(next.Roles, r) {
			np.Removed = append(np.Removed, r)
		}
	}
	if cur == nil {
		// Roles the catalog shows that the record will not have.
		for _, s := range n.Services {
			if r, ok := strings.CutPrefix(s.ID, ServicePrefix); ok && !slices.Contains(next.Roles, r) && !slices.Contains(np.Removed, r) {
				np.Removed = append(np.Removed, r)
			}
		}
	}
	return np, nil
}

// hostVars builds a node's apply variables from its next record.
func (a *Applier) hostVars(np NodePlan) (map[string]any, error) {
	rs := make([]*Role, 0, len(np.Next.Roles))
	for _, name := range np.Next.Roles {
		r, ok := a.cfg.Catalog.Lookup(name)
		if !ok {
			return nil, fmt.Errorf("role %s of generation %d is not in the role catalog (define it again, or remove it from the node)", name, np.Next.Generation)
		}
		rs = append(rs, &r)
	}
	m := np.Next.Maintenance
	return HostVars(ApplyNode{Address: np.Node.Address, Roles: rs, Maintenance: &m})
}

// Discard drops a plan that will not be applied (its preview's run
// directory goes with it).
func (a *Applier) Discard(p *Plan) {
	if p != nil && p.Preview != nil {
		a.cfg.Runner.Discard(p.Preview.PlanID)
	}
}

// Apply records the plan's next records and launches its run, returning
// the run's id and the records written.
//
// typed is the confirmation the user typed; when the preview asks for one
// (Preview.Confirm: 5 hosts or more outside check mode) and typed is not
// it, the error wraps provision.ErrConfirmation and nothing is written
// (the plan stays open: Apply again or Discard). Each node's record is
// then written in one transaction, checked against the generation the plan
// read (a node the plan found unmanaged must still be): a change made
// since by someone else is a *ConflictError naming who won, the run is not
// launched and the plan is discarded. Records written before a failure
// (a conflict on a later node, a launch that fails) stay: those nodes show
// Pending until a run applies them (Request.ApplyOnly); the error names
// them. In check mode nothing is written and only the check run launches.
func (a *Applier) Apply(ctx context.Context, p *Plan, typed string) (runID string, written []Desired, err error) {
	if p == nil || p.Preview == nil {
		return "", nil, errors.New("no plan to apply")
	}
	if c := p.Preview.Confirm; c != "" && typed != c {
		got := "nothing was typed"
		if typed != "" {
			got = fmt.Sprintf("%q was typed", typed)
		}
		return "", nil, fmt.Errorf("applying: %w: the run changes %d hosts; type %q exactly to apply (%s); nothing was written",
			provision.ErrConfirmation, len(p.Preview.Hosts), c, got)
	}
	for _, np := range p.Nodes {
		if !np.Write {
			continue
		}
		ch := np.change
		ch.Who = p.Who
		d, err := a.cfg.Store.Set(ctx, ch)
		if err == nil && (d.Generation != np.Next.Generation || !slices.Equal(d.Roles, np.Next.Roles) || d.Maintenance != np.Next.Maintenance) {
			err = fmt.Errorf("node %s: recorded generation %d is not the planned %d (the catalog or the store changed under the plan)", np.Key(), d.Generation, np.Next.Generation)
		}
		if err != nil {
			a.Discard(p)
			return "", written, fmt.Errorf("%w%s", err, pendingNote(written))
		}
		written = append(written, *d)
	}
	id, err := a.cfg.Runner.Launch(ctx, p.Preview.PlanID, typed)
	if err != nil {
		a.Discard(p)
		return "", written, fmt.Errorf("launching the apply run: %w%s", err, pendingNote(written))
	}
	return id, written, nil
}

// pendingNote names records written before a failure.
func pendingNote(written []Desired) string {
	if len(written) == 0 {
		return ""
	}
	parts := make([]string, len(written))
	for i, d := range written {
		parts[i] = fmt.Sprintf("%s/%s generation %d", d.Datacenter, d.Node, d.Generation)
	}
	return "; already recorded (pending until applied, e.g. `fleetdeck roles apply`): " + strings.Join(parts, ", ")
}

// NodeStates computes the state of every node of records (keyed
// "dc/name") from a snapshot and the run manager's runs: for each node
// the latest run linked to its record's generation (RunLinks), or failing
// that the latest linked to any of its generations, goes to StateOf with
// the node's services and its maintenance (Consul's _node_maintenance
// check) as the snapshot has them. A node missing from the snapshot is
// compared with no services, and its reason says so.
func NodeStates(snap *fleet.Snapshot, records []Desired, runs []provision.RunInfo, catalog *Catalog, now time.Time) map[string]NodeState {
	out := make(map[string]NodeState, len(records))
	for _, d := range records {
		n := snap.Node(d.Datacenter, d.Node)
		var services []fleet.Service
		maint := false
		if n != nil {
			services, maint = n.Services, InMaintenance(n)
		}
		st := StateOf(&d, services, LatestRun(runs, &d), maint, catalog, now)
		if n == nil {
			st.Reason = "not in the fleet snapshot; " + st.Reason
		}
		out[d.Datacenter+"/"+d.Node] = st
	}
	return out
}

// InMaintenance reports whether the catalog shows node n in maintenance
// (Consul's _node_maintenance check).
func InMaintenance(n *fleet.Node) bool {
	return n != nil && slices.ContainsFunc(n.Checks, func(c fleet.Check) bool { return c.ID == "_node_maintenance" })
}

// MaintenanceReason is the output of n's _node_maintenance check ("" when
// none). Consul keeps the reason in the check's notes, which the fleet
// watcher does not read: a node read for its maintenance reason must put
// the notes in the output (the CLI's direct read does).
func MaintenanceReason(n *fleet.Node) string {
	if n == nil {
		return ""
	}
	for _, c := range n.Checks {
		if c.ID == "_node_maintenance" {
			return c.Output
		}
	}
	return ""
}

// LatestRun returns the latest run (by start) linked to record d — its
// generation, and its change when it names one —, or when there is none
// the latest linked to the node otherwise, as StateOf takes it (a run of
// the same generation number but another change counts as an older
// generation's: it belongs to another lineage of records); the zero
// RunInfo when no run is linked.
func LatestRun(runs []provision.RunInfo, d *Desired) RunInfo {
	dc, node, gen := d.Datacenter, d.Node, d.Generation
	var best, latest *provision.RunInfo
	var bestGen, latestGen uint64
	for i := range runs {
		r := &runs[i]
		g := LinkedGeneration(r.Meta, dc, node)
		if g == 0 {
			continue
		}
		match := g == gen && (d.Change == "" || LinkedChange(r.Meta, dc, node) == d.Change)
		if !match && g == gen {
			g = 0 // not this record's: an unknown, older one
		}
		if latest == nil || r.Started.After(latest.Started) {
			latest, latestGen = r, g
		}
		if match && (best == nil || r.Started.After(best.Started)) {
			best, bestGen = r, g
		}
	}
	if best == nil {
		best, bestGen = latest, latestGen
	}
	if best == nil {
		return RunInfo{}
	}
	ri := RunInfo{ID: best.ID, Status: RunStatusOf(string(best.Status)), Generation: bestGen, Ended: best.Ended}
	if ri.Status == RunFailed {
		ri.Reason = string(best.Status)
		if best.ExitCode > 0 {
			ri.Reason += ", exit code " + strconv.Itoa(best.ExitCode)
		}
	}
	return ri
}

// WaitError is Wait's answer when a node did not converge: the nodes that
// failed (Failed, Drift, or left Pending by a run that ended) with their
// states.
type WaitError struct {
	// Nodes are the keys of the nodes that did not converge, sorted.
	Nodes  []string
	States map[string]NodeState
}

func (e *WaitError) Error() string {
	parts := make([]string, len(e.Nodes))
	for i, k := range e.Nodes {
		st := e.States[k]
		parts[i] = fmt.Sprintf("%s %s (%s)", k, st.State, st.Reason)
		if st.RunID != "" && !strings.Contains(st.Reason, st.RunID) {
			parts[i] += " run " + st.RunID
		}
	}
	return "not converged: " + strings.Join(parts, "; ")
}

// Wait follows the nodes of records (as Apply wrote them, or a plan's
// Records for ApplyOnly) until every one is Converged, or one fails:
// Failed, Drift (its run succeeded SettleTime ago and the catalog still
// differs), or Pending after the run runID ended (another change replaced
// the record, or the run did not cover it). It returns the last states;
// a failure is a *WaitError whose reasons carry the failing task's message
// from the run. ctx bounds the wait (a timeout is ctx's error, with the
// states so far). feed is the fleet the CLI or the console watches.
func (a *Applier) Wait(ctx context.Context, feed fleet.Feed, records []Desired, runID string) (map[string]NodeState, error) {
	for {
		snap := feed.Current()
		runs, err := a.cfg.Runner.Runs(ctx)
		if err != nil {
			return nil, fmt.Errorf("following the apply run: %w", err)
		}
		runEnded := false
		for _, r := range runs {
			if r.ID == runID {
				s := RunStatusOf(string(r.Status))
				runEnded = s != RunQueued && s != RunRunning
			}
		}
		states := NodeStates(snap, records, runs, a.cfg.Catalog, time.Now())
		if a.cfg.ReadNode != nil && runEnded {
			states = a.reread(ctx, snap, records, runs, states)
		}
		var failed []string
		converged := 0
		for k, st := range states {
			switch st.State {
			case StateConverged:
				converged++
			case StateFailed, StateDrift:
				failed = append(failed, k)
			case StatePending:
				if runEnded {
					failed = append(failed, k)
				}
			}
		}
		if len(failed) > 0 {
			slices.Sort(failed)
			a.failureReasons(ctx, states, failed)
			return states, &WaitError{Nodes: failed, States: states}
		}
		if converged == len(states) {
			return states, nil
		}
		wctx, cancel := context.WithTimeout(ctx, a.cfg.Poll)
		_, _ = feed.Next(wctx, snap.Version)
		cancel()
		if err := ctx.Err(); err != nil {
			return states, fmt.Errorf("waiting for convergence: %w", err)
		}
	}
}

// reread recomputes the states of the nodes not converged from the
// catalog as ReadNode reads it now.
func (a *Applier) reread(ctx context.Context, snap *fleet.Snapshot, records []Desired, runs []provision.RunInfo, states map[string]NodeState) map[string]NodeState {
	var nodes []*fleet.Node
	var recs []Desired
	for _, d := range records {
		if states[d.Datacenter+"/"+d.Node].State == StateConverged {
			continue
		}
		n, err := a.cfg.ReadNode(ctx, d.Datacenter, d.Node)
		if err != nil || n == nil {
			continue
		}
		nodes = append(nodes, n)
		recs = append(recs, d)
	}
	if len(nodes) == 0 {
		return states
	}
	fresh := NodeStates(fleet.NewSnapshot(snap.Version, time.Now(), nodes, nil, nil), recs, runs, a.cfg.Catalog, time.Now())
	maps.Copy(states, fresh)
	return states
}

// failureReasons adds to the failed nodes' reasons what their run said:
// the host's last failed task and its message.
func (a *Applier) failureReasons(ctx context.Context, states map[string]NodeState, keys []string) {
	views := map[string]*provision.RunView{}
	for _, k := range keys {
		st := states[k]
		if st.RunID == "" || st.State != StateFailed {
			continue
		}
		v, ok := views[st.RunID]
		if !ok {
			v, _ = a.cfg.Runner.Run(ctx, st.RunID)
			views[st.RunID] = v
		}
		if v == nil || v.State == nil {
			continue
		}
		_, name, _ := strings.Cut(k, "/")
		h := v.State.Hosts[name]
		if h == nil {
			continue
		}
		if f := h.LastFailure; f != nil {
			msg := f.Result.Msg
			if msg == "" {
				msg = strings.TrimSpace(f.Result.Stderr)
			}
			st.Reason += fmt.Sprintf("; task %q: %s", f.Task, msg)
			states[k] = st
		}
	}
}
