package fleet

import (
	"context"
	"maps"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/fleetdeck/fleetdeck/internal/backoff"
)

// watchKey identifies one watch of a datacenter.
type watchKey struct {
	kind    watchKind
	service string
}

// svcState is what a datacenter knows of one service.
type svcState struct {
	// index is the X-Consul-Index of the last answer applied.
	index  uint64
	loaded bool
	// watch is the service's own blocking query; nil for a service that
	// is swept (see runner.sweep).
	watch *svcWatch
	// changed is when its instances last changed (or it was first
	// watched): the services that changed last keep their watches.
	changed time.Time
}

// svcWatch is a running per-service blocking query.
type svcWatch struct {
	id     uint64
	cancel context.CancelFunc
}

// hold keeps a node that lost a service as it was (see holdLeaving).
type hold struct {
	// index is the raft index of the service answer that removed the
	// service; the node list answers at or after it say whether the node
	// left. 0: unknown, only due applies.
	index uint64
	due   time.Time
}

// dcState is everything known about one datacenter, as the raw answers of
// its watches plus the Nodes built from them. Owned by the Run goroutine.
type dcState struct {
	name   string
	ctx    context.Context
	cancel context.CancelFunc
	// epoch restarts the datacenter's requests in flight (see epoch).
	epoch *epoch
	// nodesArrived is closed when the first node list has been applied;
	// the per-service first reads wait for it.
	nodesArrived chan struct{}
	// started is when watching began: silence is counted from it until
	// the first answer.
	started time.Time

	nodes       map[string]*catalogNode
	nodesLoaded bool
	nodesIndex  uint64
	svcList     map[string]bool
	svcLoaded   bool
	svcs        map[string]*svcState
	hot         int // services with a watch of their own
	// svcListIndex is the service list's index; sweptTo the highest
	// service-list index a finished sweep covered. A sweep is due when a
	// swept service may have changed since (svcListIndex > sweptTo).
	svcListIndex uint64
	sweptTo      uint64
	sweeping     bool
	sweepAt      time.Time // not before: sweeps are spaced out
	lastSweep    time.Time
	sweepReq     chan sweepRequest
	sweepBackoff backoff.Backoff
	// byNode indexes service instances: node → service name → instances.
	byNode        map[string]map[string][]Service
	instances     map[string][]instance
	failing       map[string]map[string]Check
	failingLoaded bool
	all           map[string]map[string]Check
	allLoaded     bool
	// recovered marks checks that left the failing set after the read
	// that all holds them from: node → check → index of that failing
	// answer.
	recovered map[string]map[string]uint64
	// nodeReads hands nodes whose checks must be read to readNodeChecks.
	nodeReads chan []string
	// bootDone is set when the bootstrap read has answered or failed:
	// until then the per-service watches wait. boot is its data while
	// services it covers may still appear in the service list, as of
	// bootIndex.
	bootDone    bool
	boot        *bootData
	bootIndex   uint64
	fullTrigger chan struct{}

	built map[string]*Node
	// sorted is the built nodes in name order; nil when membership changed.
	sorted []*Node
	dirty  map[string]bool
	ready  bool
	// partial is set before ready when the node list or the failing checks
	// changed: the nodes are shown (built) before the roles have loaded.
	partial bool
	// held maps nodes that lost a service to when they are shown anyway;
	// lostAt is the index of the service answer that removed it.
	held   map[string]hold
	lostAt map[string]uint64
	// heldReads hands held nodes to readHeldNodes; toAsk collects them
	// during a rebuild; confirmed are held nodes a read found still in the
	// catalog: their roles did change.
	heldReads chan []string
	toAsk     []string
	confirmed map[string]bool

	errs        map[watchKey]result
	aclFiltered map[watchKey]bool
	// anonymousEmpty: the node list was empty and read without a token.
	anonymousEmpty bool
	// lastSuccess is the last answer with data; lastHeard the last time
	// Consul answered at all (an error is an answer too, a deadline that
	// passed is not).
	lastSuccess time.Time
	lastHeard   time.Time
	lastContact time.Duration
	knownLeader bool
	// probeFailing: the last probe got no answer or an error. The next one
	// that succeeds kicks the epoch.
	probeFailing bool
}

func newDCState(name string, ctx context.Context, cancel context.CancelFunc, now time.Time) *dcState {
	return &dcState{
		name:         name,
		ctx:          ctx,
		cancel:       cancel,
		epoch:        newEpoch(ctx),
		nodesArrived: make(chan struct{}),
		started:      now,
		nodes:        map[string]*catalogNode{},
		svcList:      map[string]bool{},
		svcs:         map[string]*svcState{},
		sweepReq:     make(chan sweepRequest, 1),
		sweepBackoff: backoff.New(sweepSpacing, 30*time.Second),
		byNode:       map[string]map[string][]Service{},
		instances:    map[string][]instance{},
		failing:      map[string]map[string]Check{},
		all:          map[string]map[string]Check{},
		recovered:    map[string]map[string]uint64{},
		nodeReads:    make(chan []string, 16),
		fullTrigger:  make(chan struct{}, 1),
		built:        map[string]*Node{},
		dirty:        map[string]bool{},
		held:         map[string]hold{},
		lostAt:       map[string]uint64{},
		heldReads:    make(chan []string, 4),
		confirmed:    map[string]bool{},
		errs:         map[watchKey]result{},
		aclFiltered:  map[watchKey]bool{},
	}
}

// requestFullRead asks for a read of all checks soon (new nodes' passing
// checks are not in the failing-checks watch).
func (d *dcState) requestFullRead() {
	select {
	case d.fullTrigger <- struct{}{}:
	default:
	}
}

// applyNodes replaces the node list and reports whether membership changed.
func (d *dcState) applyNodes(nodes []catalogNode, index uint64) (membership bool) {
	next := make(map[string]*catalogNode, len(nodes))
	for i := range nodes {
		n := &nodes[i]
		next[n.Node] = n
		old, ok := d.nodes[n.Node]
		switch {
		case !ok:
			membership = true
			d.dirty[n.Node] = true
		case old.ID != n.ID || old.Address != n.Address || !maps.Equal(old.Meta, n.Meta):
			d.dirty[n.Node] = true
		}
	}
	for name := range d.nodes {
		if _, ok := next[name]; !ok {
			membership = true
			d.dirty[name] = true
		}
	}
	if index < d.nodesIndex {
		// A new cluster (or a restore): the held nodes' indexes mean
		// nothing now; their time limit still applies.
		for name, h := range d.held {
			h.index = 0
			d.held[name] = h
		}
		clear(d.lostAt)
	}
	d.nodesIndex = index
	d.nodes = next
	if !d.nodesLoaded {
		d.nodesLoaded = true
		close(d.nodesArrived)
	}
	d.partial = true
	return membership
}

// applyServiceList records the set of services and returns those to start
// and stop watching.
func (d *dcState) applyServiceList(svcs map[string][]string) (added, removed []string) {
	for name := range svcs {
		if !d.svcList[name] {
			added = append(added, name)
		}
	}
	for name := range d.svcList {
		if _, ok := svcs[name]; !ok {
			removed = append(removed, name)
		}
	}
	d.svcList = make(map[string]bool, len(svcs))
	for name := range svcs {
		d.svcList[name] = true
	}
	d.svcLoaded = true
	sort.Strings(added)
	return added, removed
}

// dropService stops a service's watch and forgets its instances, and any
// error or ACL note of its watch: a service that is gone cannot keep the
// datacenter degraded.
func (d *dcState) dropService(svc string, index uint64) {
	if s := d.svcs[svc]; s != nil {
		d.stopServiceWatch(svc, s)
	}
	delete(d.svcs, svc)
	key := watchKey{watchService, svc}
	delete(d.errs, key)
	delete(d.aclFiltered, key)
	d.setInstances(svc, nil, index)
	delete(d.instances, svc)
}

// applyService records the instances of one service read at index.
func (d *dcState) applyService(svc string, insts []instance, index uint64) {
	if s := d.svcs[svc]; s != nil {
		s.loaded = true
	}
	d.setInstances(svc, insts, index)
}

// setInstances replaces svc's instances and marks every node that gained
// or lost one dirty. A node that lost one is noted with index, for
// holdLeaving.
func (d *dcState) setInstances(svc string, insts []instance, index uint64) {
	stay := make(map[string]bool, len(insts))
	for _, in := range insts {
		stay[in.node+"\x00"+in.svc.ID] = true
	}
	for _, old := range d.instances[svc] {
		d.dirty[old.node] = true
		if !stay[old.node+"\x00"+old.svc.ID] {
			d.lostAt[old.node] = max(d.lostAt[old.node], index)
		}
		if m := d.byNode[old.node]; m != nil {
			delete(m, svc)
			if len(m) == 0 {
				delete(d.byNode, old.node)
			}
		}
	}
	d.instances[svc] = insts
	for _, in := range insts {
		d.dirty[in.node] = true
		m := d.byNode[in.node]
		if m == nil {
			m = map[string][]Service{}
			d.byNode[in.node] = m
		}
		m[svc] = append(m[svc], in.svc)
	}
}

// indexChecks groups checks by node and check ID.
func indexChecks(checks []nodeCheck) map[string]map[string]Check {
	out := map[string]map[string]Check{}
	for _, c := range checks {
		m := out[c.node]
		if m == nil {
			m = map[string]Check{}
			out[c.node] = m
		}
		m[c.ID] = c.Check
	}
	return out
}

// applyFailing replaces the failing checks read at index; only nodes
// whose failing checks differ are rebuilt. It returns the nodes with a
// check that passes again: what that check says now is not known until
// their checks are read (readNodeChecks), and until then the output the
// last full read had must not be shown as current.
func (d *dcState) applyFailing(checks []nodeCheck, index uint64) (recovered []string) {
	next := indexChecks(checks)
	for node, m := range next {
		if !sameChecks(d.failing[node], m) {
			d.dirty[node] = true
		}
	}
	for node, m := range d.failing {
		if _, ok := next[node]; !ok {
			d.dirty[node] = true
		}
		for id := range m {
			if _, still := next[node][id]; still {
				continue
			}
			r := d.recovered[node]
			if r == nil {
				r = map[string]uint64{}
				d.recovered[node] = r
				recovered = append(recovered, node)
			}
			r[id] = index
		}
	}
	d.failing = next
	d.failingLoaded = true
	d.partial = true
	sort.Strings(recovered)
	return recovered
}

func sameChecks(a, b map[string]Check) bool {
	if len(a) != len(b) {
		return false
	}
	for id, x := range a {
		if y, ok := b[id]; !ok || x != y {
			return false
		}
	}
	return true
}

// applyAllChecks replaces the full check set (every node is rebuilt; this
// happens rarely).
func (d *dcState) applyAllChecks(checks []nodeCheck, index uint64) {
	d.all = indexChecks(checks)
	d.allLoaded = true
	for name := range d.nodes {
		d.dirty[name] = true
	}
	for node := range d.recovered {
		d.forgetRecovered(node, index)
	}
}

// applyNodeChecks replaces one node's checks with a read of them at index.
func (d *dcState) applyNodeChecks(node string, checks []nodeCheck, index uint64) {
	m := indexChecks(checks)[node]
	if m == nil {
		m = map[string]Check{}
	}
	d.all[node] = m
	d.forgetRecovered(node, index)
	d.dirty[node] = true
}

// forgetRecovered drops the recovered marks of node that a read at index
// has superseded.
func (d *dcState) forgetRecovered(node string, index uint64) {
	for id, at := range d.recovered[node] {
		if at <= index {
			delete(d.recovered[node], id)
		}
	}
	if len(d.recovered[node]) == 0 {
		delete(d.recovered, node)
	}
}

// loaded reports whether the datacenter's nodes, roles and health have
// all been read once. The occasional read of all checks (passing checks'
// names and outputs, ~16 MB at 10k nodes) is not waited for: health comes
// from the failing checks.
func (d *dcState) loaded() bool {
	return d.nodesLoaded && d.failingLoaded && d.rolesLoaded()
}

// rolesLoaded reports whether the service list and every service have
// been read once.
func (d *dcState) rolesLoaded() bool {
	if !d.svcLoaded {
		return false
	}
	for _, s := range d.svcs {
		if !s.loaded {
			return false
		}
	}
	return true
}

// pending names what has not been read yet, in the words the console
// shows: "nodes", "roles", "health", "check details".
func (d *dcState) pending() []string {
	var p []string
	if !d.nodesLoaded {
		p = append(p, "nodes")
	}
	// After the first complete load, a service added later is read by the
	// next sweep like any change: roles are not "loading" again.
	if !d.ready && !d.rolesLoaded() {
		p = append(p, "roles")
	}
	if !d.failingLoaded {
		p = append(p, "health")
	}
	if !d.allLoaded {
		p = append(p, "check details")
	}
	return p
}

// rebuild rebuilds the dirty nodes and returns the events their changes
// make. The first complete load makes no events: the fleet did not change,
// fleetdeck just started looking. Before it, the nodes are built as far as
// they are known whenever the node list or the failing checks change, so
// the first rows go on screen as soon as the node list arrives.
func (d *dcState) rebuild(cfg Config, now time.Time) []Event {
	if !d.ready {
		if !d.loaded() {
			if d.nodesLoaded && d.partial {
				d.buildAll(cfg)
			}
			return nil
		}
		d.ready = true
		// ChangedAt stays zero: fleetdeck has not seen these nodes
		// change, only started looking at them.
		d.buildAll(cfg)
		return nil
	}
	var events []Event
	carry := map[string]bool{}
	for name := range d.dirty {
		old := d.built[name]
		n := d.buildNode(name, cfg)
		if d.holdLeaving(name, old, n, now) {
			carry[name] = true
			continue
		}
		switch {
		case n == nil && old == nil:
			continue
		case n == nil:
			delete(d.built, name)
			d.sorted = nil
		case old != nil && sameNode(old, n):
			continue // keep the old pointer: callers cache by it
		default:
			n.ChangedAt = now
			if old != nil && sameButPassingChecks(old, n) {
				// Only passing checks' names came in (the read of all
				// checks): nothing the fleet did.
				n.ChangedAt = old.ChangedAt
			}
			d.built[name] = n
			if old == nil {
				d.sorted = nil
			} else if d.sorted != nil {
				i := sort.Search(len(d.sorted), func(i int) bool { return d.sorted[i].Name >= name })
				d.sorted[i] = n
			}
		}
		events = append(events, diffNode(d.name, old, n)...)
	}
	d.dirty = carry
	sort.Slice(events, func(i, j int) bool { return events[i].Node < events[j].Node })
	return events
}

// buildAll builds every node afresh (before and at the first complete
// load).
func (d *dcState) buildAll(cfg Config) {
	d.partial = false
	d.dirty = map[string]bool{}
	d.built = make(map[string]*Node, len(d.nodes))
	for name := range d.nodes {
		d.built[name] = d.buildNode(name, cfg)
	}
	d.sorted = nil
}

// sameButPassingChecks reports whether a and b differ only in checks that
// are passing in both (or absent in a and passing in b).
func sameButPassingChecks(a, b *Node) bool {
	x, y := *a, *b
	x.Checks, y.Checks = a.FailingChecks(), b.FailingChecks()
	return sameNode(&x, &y)
}

// leaveGrace is how long a node that lost a service is shown as it was
// when it is not known which node-list answer will tell whether it left;
// leaveGraceMax bounds the wait for that answer when it is known.
const (
	leaveGrace    = 2 * time.Second
	leaveGraceMax = 30 * time.Second
)

// holdLeaving reports whether the rebuilt node n should not be shown yet.
// A deregistered node vanishes from the service and check watches before
// the (much larger) node list says it is gone; showing that intermediate
// state would journal bogus "roles changed" and "passing" events. The node
// is held until the node list has answered at or after the index of the
// service answer that removed the service (Consul raises the node list's
// index with every service write), so a node list that lags seconds behind
// — 2,000 nodes deregistered at once — still turns into "left" events only.
//
// The node list's blocking query does not wake for a service write (its
// watch is on the node table), so on a quiet cluster a node whose agent
// took a service away — a role reassignment — would be held the whole
// leaveGraceMax. So a held node is also asked for directly
// (readHeldNodes): one that is still in the catalog after the service
// answer really lost the service, and is shown at once.
func (d *dcState) holdLeaving(name string, old, n *Node, now time.Time) bool {
	if old == nil || n == nil || !lostService(old, n) || d.confirmed[name] {
		delete(d.held, name)
		delete(d.lostAt, name)
		delete(d.confirmed, name)
		return false
	}
	h, ok := d.held[name]
	if !ok {
		h = hold{index: d.lostAt[name], due: now.Add(leaveGrace)}
		if h.index > 0 {
			h.due = now.Add(leaveGraceMax)
			d.toAsk = append(d.toAsk, name)
		}
		d.held[name] = h
	}
	if h.index > 0 && d.nodesIndex >= h.index {
		// The node list has caught up and still has the node: its roles
		// really changed.
		delete(d.held, name)
		delete(d.lostAt, name)
		return false
	}
	if now.Before(h.due) {
		return true
	}
	delete(d.held, name)
	delete(d.lostAt, name)
	return false
}

// confirmHeld records a direct read of a held node: one still in the
// catalog is shown as it is now at the next rebuild.
func (d *dcState) confirmHeld(name string, present bool) {
	if _, ok := d.held[name]; !ok || !present {
		return // shown already, or leaving: the node list will say so
	}
	d.confirmed[name] = true
	d.dirty[name] = true
}

// takeToAsk returns the held nodes to ask for, if few enough: many nodes
// losing services at once is a mass deregistration, which the node list
// settles without a read per node.
func (d *dcState) takeToAsk() []string {
	ask := d.toAsk
	d.toAsk = nil
	if len(ask) > heldReadsMax {
		return nil
	}
	return ask
}

// heldReadsMax is the most held nodes asked for one by one at once.
const heldReadsMax = 16

// lostService reports whether n lacks a service instance old had. The
// per-service watches of a leaving node answer one by one, so a node that
// is leaving first looks like one losing its roles a few at a time.
func lostService(old, n *Node) bool {
	have := make(map[string]bool, len(n.Services))
	for _, s := range n.Services {
		have[s.ID] = true
	}
	for _, s := range old.Services {
		if !have[s.ID] {
			return true
		}
	}
	return false
}

// list returns the built nodes in name order. The slice is reused by the
// next rebuild, so callers copy it.
func (d *dcState) list() []*Node {
	if d.sorted == nil {
		d.sorted = make([]*Node, 0, len(d.built))
		for _, n := range d.built {
			d.sorted = append(d.sorted, n)
		}
		sort.Slice(d.sorted, func(i, j int) bool { return d.sorted[i].Name < d.sorted[j].Name })
	}
	return d.sorted
}

// buildNode assembles the Node for name from the raw answers, or nil when
// the node is not in the catalog.
func (d *dcState) buildNode(name string, cfg Config) *Node {
	an := d.nodes[name]
	if an == nil {
		return nil
	}
	n := &Node{
		Name:       an.Node,
		ID:         an.ID,
		Datacenter: d.name,
		Address:    an.Address,
		Meta:       an.Meta,
		InstanceID: an.Meta[cfg.InstanceKey],
		Zone:       an.Meta[cfg.ZoneKey],
		Image:      an.Meta[cfg.ImageKey],
	}
	for _, k := range cfg.GroupKeys {
		if g := an.Meta[k]; g != "" {
			n.Group = g
			break
		}
	}
	for _, svcs := range d.byNode[name] {
		n.Services = append(n.Services, svcs...)
	}
	sort.Slice(n.Services, func(i, j int) bool { return n.Services[i].ID < n.Services[j].ID })
	n.Checks, n.Health = mergeChecks(d.all[name], d.failing[name], d.recovered[name])
	if !d.ready {
		if !d.rolesLoaded() {
			n.Pending |= PendingRoles
		}
		if !d.failingLoaded {
			n.Pending |= PendingHealth
		}
	}
	return n
}

// mergeChecks combines the last full read with the live failing checks.
// The failing watch is authoritative for status: a check from the full
// read that is no longer failing is passing now. Its output from the full
// read is stale if it failed since (recovered): shown as unknown ("").
func mergeChecks(all, failing map[string]Check, recovered map[string]uint64) ([]Check, Health) {
	checks := make([]Check, 0, len(all)+len(failing))
	for id, c := range all {
		if _, ok := failing[id]; ok {
			continue
		}
		if _, stale := recovered[id]; c.Status != HealthPassing || stale {
			c.Status, c.Output = HealthPassing, ""
		}
		checks = append(checks, c)
	}
	health := HealthPassing
	for _, c := range failing {
		health = max(health, c.Status)
		checks = append(checks, c)
	}
	sort.Slice(checks, func(i, j int) bool { return checks[i].ID < checks[j].ID })
	return checks, health
}

// isMaintenance reports whether a check ID is one of Consul's maintenance
// checks, which are critical while maintenance mode is on.
func isMaintenance(id string) bool {
	return id == "_node_maintenance" || strings.HasPrefix(id, "_service_maintenance:")
}

// sameNode compares everything but ChangedAt.
func sameNode(a, b *Node) bool {
	x, y := *a, *b
	x.ChangedAt, y.ChangedAt = time.Time{}, time.Time{}
	return reflect.DeepEqual(x, y)
}

// diffNode returns the events that turn old into n (either may be nil).
func diffNode(dc string, old, n *Node) []Event {
	switch {
	case old == nil:
		return []Event{{Kind: NodeJoined, Datacenter: dc, Node: n.Name, Group: n.Group, To: n.Health, NewRoles: n.Roles()}}
	case n == nil:
		return []Event{{Kind: NodeLeft, Datacenter: dc, Node: old.Name, Group: old.Group, From: old.Health, OldRoles: old.Roles(), Last: old}}
	}
	var events []Event
	if or, nr := old.Roles(), n.Roles(); !slices.Equal(or, nr) {
		events = append(events, Event{Kind: RolesChanged, Datacenter: dc, Node: n.Name, Group: n.Group, OldRoles: or, NewRoles: nr})
	}
	prev := make(map[string]Check, len(old.Checks))
	for _, c := range old.Checks {
		prev[c.ID] = c
	}
	for _, c := range n.Checks {
		p, ok := prev[c.ID]
		delete(prev, c.ID)
		from := HealthPassing
		if ok {
			from = p.Status
		}
		if from != c.Status {
			events = append(events, Event{Kind: HealthChanged, Datacenter: dc, Node: n.Name, Group: n.Group,
				CheckID: c.ID, CheckName: c.Name, From: from, To: c.Status, Output: c.Output})
		}
	}
	// A failing check that vanished (passed before the next full read, or
	// was deregistered) no longer holds the node down.
	for _, p := range prev {
		if p.Status != HealthPassing {
			events = append(events, Event{Kind: HealthChanged, Datacenter: dc, Node: n.Name, Group: n.Group,
				CheckID: p.ID, CheckName: p.Name, From: p.Status, To: HealthPassing})
		}
	}
	return events
}

// connState summarises the datacenter's connection for the console at
// time now.
func (d *dcState) connState(cfg Config, now time.Time) ConnState {
	cs := ConnState{
		Datacenter:       d.name,
		LastSuccess:      d.lastSuccess,
		LastContact:      d.lastContact,
		KnownLeader:      d.knownLeader,
		FilteredByACL:    len(d.aclFiltered) > 0 || d.anonymousEmpty,
		HealthIncomplete: d.aclFiltered[watchKey{kind: watchFailing}] || d.aclFiltered[watchKey{kind: watchAllChecks}],
		AnonymousEmpty:   d.anonymousEmpty,
		Pending:          d.pending(),
	}
	var latest result
	for _, r := range d.errs {
		if latest.err == nil || r.nextRetry.After(latest.nextRetry) {
			latest = r
		}
	}
	heard := d.silentSince()
	switch {
	case !cfg.oneShot && now.Sub(heard) > cfg.LivenessTimeout:
		// Not even an error for this long: a frozen agent, a black hole.
		cs.Status = Unresponsive
		cs.LastError = "no answer from Consul for " + now.Sub(heard).Truncate(time.Second).String()
		if latest.err != nil {
			cs.LastError += " (" + latest.err.Error() + ")"
		}
	case latest.err != nil:
		cs.Status, cs.LastError, cs.NextRetry = Degraded, latest.err.Error(), latest.nextRetry
	case d.lastSuccess.IsZero():
		cs.Status = Connecting
	case !d.knownLeader || d.lastContact > cfg.StaleAfter:
		cs.Status = Stale
	default:
		cs.Status = Connected
	}
	return cs
}

// silentSince is when the datacenter last answered (or watching began),
// for the Run loop's wake-up at the moment it turns Unresponsive.
func (d *dcState) silentSince() time.Time { return maxTime(d.lastHeard, d.started) }
