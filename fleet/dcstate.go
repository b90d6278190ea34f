package fleet

import (
	"context"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"
)

// watchKey identifies one watch of a datacenter.
type watchKey struct {
	kind    watchKind
	service string
}

// svcWatch is a running per-service blocking query.
type svcWatch struct {
	id     uint64
	cancel context.CancelFunc
	loaded bool
}

// dcState is everything known about one datacenter, as the raw answers of
// its watches plus the Nodes built from them. Owned by the Run goroutine.
type dcState struct {
	name   string
	ctx    context.Context
	cancel context.CancelFunc

	nodes       map[string]*api.Node
	nodesLoaded bool
	svcList     map[string]bool
	svcLoaded   bool
	svcWatches  map[string]*svcWatch
	// byNode indexes service instances: node → service name → instances.
	byNode        map[string]map[string][]Service
	instances     map[string][]instance
	failing       map[string]map[string]Check
	failingLoaded bool
	all           map[string]map[string]Check
	allLoaded     bool
	fullTrigger   chan struct{}

	built map[string]*Node
	// sorted is the built nodes in name order; nil when membership changed.
	sorted []*Node
	dirty  map[string]bool
	ready  bool
	// held maps nodes that lost every service to when they are shown
	// anyway (see holdLeaving).
	held map[string]time.Time

	errs        map[watchKey]result
	aclFiltered map[watchKey]bool
	// anonymousEmpty: the node list was empty and read without a token.
	anonymousEmpty bool
	lastSuccess    time.Time
	lastContact    time.Duration
	knownLeader    bool
}

func newDCState(name string, ctx context.Context, cancel context.CancelFunc) *dcState {
	return &dcState{
		name:        name,
		ctx:         ctx,
		cancel:      cancel,
		nodes:       map[string]*api.Node{},
		svcList:     map[string]bool{},
		svcWatches:  map[string]*svcWatch{},
		byNode:      map[string]map[string][]Service{},
		instances:   map[string][]instance{},
		failing:     map[string]map[string]Check{},
		all:         map[string]map[string]Check{},
		fullTrigger: make(chan struct{}, 1),
		built:       map[string]*Node{},
		dirty:       map[string]bool{},
		held:        map[string]time.Time{},
		errs:        map[watchKey]result{},
		aclFiltered: map[watchKey]bool{},
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
func (d *dcState) applyNodes(nodes []*api.Node) (membership bool) {
	next := make(map[string]*api.Node, len(nodes))
	for _, n := range nodes {
		next[n.Node] = n
		old, ok := d.nodes[n.Node]
		switch {
		case !ok:
			membership = true
			d.dirty[n.Node] = true
		case old.Address != n.Address || !reflect.DeepEqual(old.Meta, n.Meta):
			d.dirty[n.Node] = true
		}
	}
	for name := range d.nodes {
		if _, ok := next[name]; !ok {
			membership = true
			d.dirty[name] = true
		}
	}
	d.nodes = next
	d.nodesLoaded = true
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

// dropService stops a service's watch and forgets its instances.
func (d *dcState) dropService(svc string) {
	if sw := d.svcWatches[svc]; sw != nil {
		sw.cancel()
		delete(d.svcWatches, svc)
	}
	d.setInstances(svc, nil)
	delete(d.instances, svc)
}

// applyService records the instances of one service.
func (d *dcState) applyService(svc string, insts []instance) {
	if sw := d.svcWatches[svc]; sw != nil {
		sw.loaded = true
	}
	d.setInstances(svc, insts)
}

// setInstances replaces svc's instances and marks every node that gained
// or lost one dirty.
func (d *dcState) setInstances(svc string, insts []instance) {
	for _, old := range d.instances[svc] {
		d.dirty[old.node] = true
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

// applyFailing replaces the failing checks; only nodes whose failing
// checks differ are rebuilt.
func (d *dcState) applyFailing(checks []nodeCheck) {
	next := indexChecks(checks)
	for node, m := range next {
		if !sameChecks(d.failing[node], m) {
			d.dirty[node] = true
		}
	}
	for node := range d.failing {
		if _, ok := next[node]; !ok {
			d.dirty[node] = true
		}
	}
	d.failing = next
	d.failingLoaded = true
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
func (d *dcState) applyAllChecks(checks []nodeCheck) {
	d.all = indexChecks(checks)
	d.allLoaded = true
	for name := range d.nodes {
		d.dirty[name] = true
	}
}

// loaded reports whether every watch has answered once.
func (d *dcState) loaded() bool {
	if !d.nodesLoaded || !d.svcLoaded || !d.failingLoaded || !d.allLoaded {
		return false
	}
	for _, sw := range d.svcWatches {
		if !sw.loaded {
			return false
		}
	}
	return true
}

// rebuild rebuilds the dirty nodes and returns the events their changes
// make. The first complete load makes no events: the fleet did not change,
// fleetdeck just started looking.
func (d *dcState) rebuild(cfg Config, now time.Time) []Event {
	if !d.ready {
		if !d.loaded() {
			return nil
		}
		d.ready = true
		d.dirty = map[string]bool{}
		d.built = make(map[string]*Node, len(d.nodes))
		for name := range d.nodes {
			// ChangedAt stays zero: fleetdeck has not seen these nodes
			// change, only started looking at them.
			d.built[name] = d.buildNode(name, cfg)
		}
		d.sorted = nil
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

// leaveGrace is how long a node that lost a service is shown as it was,
// waiting for the node list to say whether it left (a role removed for
// good shows this much later).
const leaveGrace = 2 * time.Second

// holdLeaving reports whether the rebuilt node n should not be shown yet.
// A deregistered node vanishes from the service and check watches before
// the (much larger) node list says it is gone; showing that intermediate
// state would journal bogus "roles changed" and "passing" events.
func (d *dcState) holdLeaving(name string, old, n *Node, now time.Time) bool {
	if old == nil || n == nil || !lostService(old, n) {
		delete(d.held, name)
		return false
	}
	due, ok := d.held[name]
	if !ok {
		d.held[name] = now.Add(leaveGrace)
		return true
	}
	if now.Before(due) {
		return true
	}
	delete(d.held, name)
	return false
}

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
	if !d.ready {
		return nil
	}
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
	n.Checks, n.Health = mergeChecks(d.all[name], d.failing[name])
	return n
}

// mergeChecks combines the last full read with the live failing checks.
// The failing watch is authoritative for status: a check from the full
// read that is no longer failing is passing now.
func mergeChecks(all, failing map[string]Check) ([]Check, Health) {
	checks := make([]Check, 0, len(all)+len(failing))
	for id, c := range all {
		if _, ok := failing[id]; ok {
			continue
		}
		if c.Status != HealthPassing {
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

// connState summarises the datacenter's connection for the console.
func (d *dcState) connState(staleAfter time.Duration) ConnState {
	cs := ConnState{
		Datacenter:       d.name,
		LastSuccess:      d.lastSuccess,
		LastContact:      d.lastContact,
		KnownLeader:      d.knownLeader,
		FilteredByACL:    len(d.aclFiltered) > 0 || d.anonymousEmpty,
		HealthIncomplete: d.aclFiltered[watchKey{kind: watchFailing}] || d.aclFiltered[watchKey{kind: watchAllChecks}],
		AnonymousEmpty:   d.anonymousEmpty,
	}
	var latest result
	for _, r := range d.errs {
		if latest.err == nil || r.nextRetry.After(latest.nextRetry) {
			latest = r
		}
	}
	switch {
	case latest.err != nil:
		cs.Status, cs.LastError, cs.NextRetry = Degraded, latest.err.Error(), latest.nextRetry
	case d.lastSuccess.IsZero() || !d.ready:
		cs.Status = Connecting
	case !d.knownLeader || d.lastContact > staleAfter:
		cs.Status = Stale
	default:
		cs.Status = Connected
	}
	return cs
}
