package fleet

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"
	"golang.org/x/time/rate"
)

// Watcher keeps a complete Snapshot of the fleet live from Consul. Per
// datacenter it holds a constant set of blocking queries — the node list,
// the service list, one query per service, the failing checks — plus an
// occasional read of all checks for totals and check names. It never opens
// one query per node: Consul caps concurrent connections per client
// address.
//
// A Watcher is a Feed. Run drives it; Current and Next may be called from
// any goroutine, before, during and after Run.
type Watcher struct {
	client *api.Client
	cfg    Config
	pub    *Publisher
	now    func() time.Time
}

// NewWatcher returns a Watcher reading from client. Nothing happens until
// Run is called.
func NewWatcher(client *api.Client, cfg Config) *Watcher {
	return &Watcher{client: client, cfg: cfg.withDefaults(), pub: NewPublisher(nil), now: time.Now}
}

// Current implements Feed.
func (w *Watcher) Current() *Snapshot { return w.pub.Current() }

// Next implements Feed.
func (w *Watcher) Next(ctx context.Context, after uint64) (*Snapshot, error) {
	return w.pub.Next(ctx, after)
}

// Run watches Consul and publishes snapshots until ctx ends. It does not
// give up on errors: they are published in the snapshot's ConnState and
// retried with backoff, and the last good data is kept meanwhile. Run
// returns nil once ctx is done and every goroutine it started has ended.
func (w *Watcher) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	r := &runner{
		w:       w,
		cfg:     w.cfg,
		out:     make(chan result, 64),
		dcs:     map[string]*dcState{},
		version: w.pub.Current().Version,
		events:  w.pub.Current().Events,
		wg:      &wg,
		// A few at a time: enough to overlap network and decoding with
		// Consul's encoding, few enough not to thrash small machines.
		firstReads: make(chan struct{}, 4),
	}
	if n := len(r.events); n > 0 {
		r.seq = r.events[n-1].Seq
	}
	if len(w.cfg.Datacenters) > 0 {
		for _, dc := range w.cfg.Datacenters {
			r.addDC(ctx, dc)
		}
	} else {
		r.goFunc(func() { r.watchDatacenters(ctx) })
	}
	r.publish()
	wake := time.NewTimer(time.Hour)
	wake.Stop()
	defer wake.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case res := <-r.out:
			r.apply(ctx, res)
			r.settle(ctx)
		case <-wake.C:
			r.dirty = true // held nodes are due
		}
		if r.dirty {
			r.publish()
		}
		if due := r.nextHold(); !due.IsZero() {
			wake.Reset(max(time.Until(due), time.Millisecond))
		}
	}
}

// Consul answers every watch a change touches at about the same moment
// (one raft write bumps several indexes), but the answers arrive one by
// one. Waiting until the channel has been quiet for settleQuiet (at most
// settleMax) lets one snapshot show the whole change — a node leaving is
// one "left" event, not "roles removed" and "checks passing" first.
const (
	settleQuiet = 25 * time.Millisecond
	settleMax   = 150 * time.Millisecond
)

// settle applies the rest of a burst of answers.
func (r *runner) settle(ctx context.Context) {
	deadline := time.NewTimer(settleMax)
	defer deadline.Stop()
	quiet := time.NewTimer(settleQuiet)
	defer quiet.Stop()
	for {
		select {
		case res := <-r.out:
			r.apply(ctx, res)
			quiet.Reset(settleQuiet)
		case <-quiet.C:
			return
		case <-deadline.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

// nextHold returns the earliest time a held node is due, or zero.
func (r *runner) nextHold() time.Time {
	var due time.Time
	for _, dc := range r.dcs {
		for _, t := range dc.held {
			if due.IsZero() || t.Before(due) {
				due = t
			}
		}
	}
	return due
}

// runner is the state owned by one Run call. Only Run's goroutine touches
// it; watch goroutines talk to it through out.
type runner struct {
	w       *Watcher
	cfg     Config
	out     chan result
	dcs     map[string]*dcState
	wg      *sync.WaitGroup
	nextID  uint64
	version uint64
	seq     uint64
	events  []Event
	// dirty is set when something the snapshot shows has changed.
	dirty bool
	// firstReads gates the first read of every service watch (see
	// loopParams.gate).
	firstReads chan struct{}
	// dcErr is the last failure to list datacenters, if not since cured.
	dcErr result
	// groupSize is the last published size of each autoscaling group.
	groupSize map[string]int
}

// goFunc runs f on a goroutine that Run waits for.
func (r *runner) goFunc(f func()) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		f()
	}()
}

func (r *runner) params(dc string, kind watchKind, blocking bool) loopParams {
	r.nextID++
	return loopParams{
		dc:          dc,
		kind:        kind,
		id:          r.nextID,
		wait:        r.cfg.WaitTime,
		tokenSource: r.cfg.TokenSource,
		stale:       !r.cfg.Consistent,
		limiter:     rate.NewLimiter(rate.Limit(r.cfg.RefetchRate), r.cfg.RefetchBurst),
		backoff:     backoff{min: r.cfg.BackoffMin, max: r.cfg.BackoffMax},
		out:         r.out,
		blocking:    blocking && !r.cfg.oneShot,
	}
}

// watchDatacenters re-reads the datacenter list now and then. Consul has
// no blocking query for it, and it changes only when clusters federate.
func (r *runner) watchDatacenters(ctx context.Context) {
	p := r.params("", watchDatacenter, false)
	fetch := func(q *api.QueryOptions) (result, *api.QueryMeta, error) {
		var dcs []string
		meta, err := r.w.client.Raw().Query("/v1/catalog/datacenters", &dcs, q)
		return result{dcs: dcs}, meta, err
	}
	for {
		loop(ctx, p, fetch)
		t := time.NewTimer(r.cfg.DatacenterRefresh)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// addDC starts the constant set of watches for one datacenter.
func (r *runner) addDC(parent context.Context, name string) {
	if _, ok := r.dcs[name]; ok {
		return
	}
	ctx, cancel := context.WithCancel(parent)
	dc := newDCState(name, ctx, cancel)
	r.dcs[name] = dc
	r.dirty = true
	cat, health := r.w.client.Catalog(), r.w.client.Health()
	// params numbers each watch: build them here, on the runner's
	// goroutine, not in the watches' own.
	nodesP, servicesP, failingP := r.params(name, watchNodes, true), r.params(name, watchServices, true), r.params(name, watchFailing, true)
	r.goFunc(func() {
		loop(ctx, nodesP, func(q *api.QueryOptions) (result, *api.QueryMeta, error) {
			nodes, meta, err := cat.Nodes(q)
			return result{nodes: nodes}, meta, err
		})
	})
	r.goFunc(func() {
		loop(ctx, servicesP, func(q *api.QueryOptions) (result, *api.QueryMeta, error) {
			svcs, meta, err := cat.Services(q)
			return result{services: svcs}, meta, err
		})
	})
	r.goFunc(func() {
		loop(ctx, failingP, func(q *api.QueryOptions) (result, *api.QueryMeta, error) {
			q.Filter = failingFilter
			checks, meta, err := health.State(api.HealthAny, q)
			return result{checks: toChecks(checks)}, meta, err
		})
	})
	if r.cfg.SkipAllChecks {
		dc.allLoaded = true
		return
	}
	full := r.params(name, watchAllChecks, false)
	// At most one full read per 15 s however often it is asked for: at
	// 10k nodes one read is about 12 MB.
	full.limiter = rate.NewLimiter(rate.Every(15*time.Second), 1)
	r.goFunc(func() { r.readAllChecks(ctx, dc.fullTrigger, full) })
}

// readAllChecks reads every check once now, then again each time it is
// triggered (nodes joined) or FullCheckInterval has passed.
func (r *runner) readAllChecks(ctx context.Context, trigger <-chan struct{}, p loopParams) {
	health := r.w.client.Health()
	fetch := func(q *api.QueryOptions) (result, *api.QueryMeta, error) {
		checks, meta, err := health.State(api.HealthAny, q)
		return result{checks: toChecks(checks)}, meta, err
	}
	tick := time.NewTicker(r.cfg.FullCheckInterval)
	defer tick.Stop()
	for {
		loop(ctx, p, fetch)
		select {
		case <-ctx.Done():
			return
		case <-trigger:
		case <-tick.C:
		}
	}
}

// startServiceWatch starts the blocking query for one service.
func (r *runner) startServiceWatch(dc *dcState, svc string) {
	ctx, cancel := context.WithCancel(dc.ctx)
	p := r.params(dc.name, watchService, true)
	p.service = svc
	p.gate = r.firstReads
	dc.svcWatches[svc] = &svcWatch{id: p.id, cancel: cancel}
	cat := r.w.client.Catalog()
	r.goFunc(func() {
		tags := map[string][]string{}
		loop(ctx, p, func(q *api.QueryOptions) (result, *api.QueryMeta, error) {
			insts, meta, err := cat.Service(svc, "", q)
			return result{svc: toInstances(insts, tags)}, meta, err
		})
	})
}

// apply folds one answer into the state.
func (r *runner) apply(ctx context.Context, res result) {
	if res.kind == watchDatacenter {
		r.applyDatacenters(ctx, res)
		return
	}
	dc := r.dcs[res.dc]
	if dc == nil {
		return // the datacenter was dropped meanwhile
	}
	if res.kind == watchService {
		if sw := dc.svcWatches[res.service]; sw == nil || sw.id != res.id {
			return // a cancelled watch's last answer
		}
	}
	now := r.w.now()
	key := watchKey{res.kind, res.service}
	if res.err != nil {
		dc.errs[key] = res
		r.dirty = true
		return
	}
	if _, had := dc.errs[key]; had {
		delete(dc.errs, key)
		r.dirty = true
	}
	dc.lastSuccess = now
	if res.meta != nil {
		dc.lastContact, dc.knownLeader = res.meta.LastContact, res.meta.KnownLeader
		if res.meta.ResultsFilteredByACLs {
			dc.aclFiltered[key] = true
		} else {
			delete(dc.aclFiltered, key)
		}
	}
	r.dirty = true // data age and connection state changed at least
	if !res.changed {
		return
	}
	switch res.kind {
	case watchNodes:
		// Consul never tells anonymous requests that it filtered them, but
		// a reachable Consul always has nodes (its servers): none at all
		// without a token is an ACL default policy of deny.
		dc.anonymousEmpty = len(res.nodes) == 0 && r.cfg.TokenSource == ""
		if dc.applyNodes(res.nodes) && dc.ready {
			dc.requestFullRead()
		}
	case watchServices:
		added, removed := dc.applyServiceList(res.services)
		for _, s := range added {
			r.startServiceWatch(dc, s)
		}
		for _, s := range removed {
			dc.dropService(s)
		}
	case watchService:
		dc.applyService(res.service, res.svc)
	case watchFailing:
		dc.applyFailing(res.checks)
	case watchAllChecks:
		dc.applyAllChecks(res.checks)
	}
}

// applyDatacenters starts watching new datacenters and stops watching
// those that are gone.
func (r *runner) applyDatacenters(ctx context.Context, res result) {
	if res.err != nil {
		// Shown against every known datacenter; with none known yet, as a
		// placeholder so the console can say why it is empty.
		r.dcErr = res
		r.dirty = true
		return
	}
	if r.dcErr.err != nil {
		r.dcErr = result{}
		r.dirty = true
	}
	seen := map[string]bool{}
	for _, name := range res.dcs {
		seen[name] = true
		r.addDC(ctx, name)
	}
	for name, dc := range r.dcs {
		if !seen[name] {
			dc.cancel()
			delete(r.dcs, name)
			r.dirty = true
		}
	}
}

// publish builds and publishes a new snapshot from the current state.
func (r *runner) publish() {
	r.dirty = false
	now := r.w.now()
	names := make([]string, 0, len(r.dcs))
	for name := range r.dcs {
		names = append(names, name)
	}
	sort.Strings(names)
	var nodes []*Node
	conn := make([]ConnState, 0, len(names))
	for _, name := range names {
		dc := r.dcs[name]
		for _, e := range dc.rebuild(r.cfg, now) {
			r.record(e, now)
		}
		nodes = append(nodes, dc.list()...)
		cs := dc.connState(r.cfg.StaleAfter)
		if r.dcErr.err != nil && cs.Status != Degraded {
			cs.Status, cs.LastError, cs.NextRetry = Degraded, r.dcErr.err.Error(), r.dcErr.nextRetry
		}
		conn = append(conn, cs)
	}
	if len(names) == 0 {
		cs := ConnState{Status: Connecting}
		if r.dcErr.err != nil {
			cs.Status, cs.LastError, cs.NextRetry = Degraded, r.dcErr.err.Error(), r.dcErr.nextRetry
		}
		conn = append(conn, cs)
	}
	r.recordGroupSizes(nodes, now)
	r.version++
	lo := max(0, len(r.events)-r.cfg.JournalSize)
	// The three-index slice keeps consumers' appends off our backing array.
	ev := r.events[lo:len(r.events):len(r.events)]
	r.w.pub.Publish(NewSnapshot(r.version, now, nodes, conn, ev))
}

// record appends e to the journal. Old entries are dropped in bulk so
// that appending stays amortised O(1) while snapshots share the array.
func (r *runner) record(e Event, now time.Time) {
	r.seq++
	e.Seq, e.Time = r.seq, now
	if len(r.events) >= 2*r.cfg.JournalSize {
		keep := make([]Event, r.cfg.JournalSize, 2*r.cfg.JournalSize)
		copy(keep, r.events[len(r.events)-r.cfg.JournalSize:])
		r.events = keep
	}
	r.events = append(r.events, e)
}

// recordGroupSizes journals every change in an autoscaling group's size
// among datacenters that have finished loading.
func (r *runner) recordGroupSizes(nodes []*Node, now time.Time) {
	size := map[string]int{}
	for _, n := range nodes {
		if n.Group != "" {
			size[n.Group]++
		}
	}
	if r.groupSize != nil {
		var changed []string
		for g, n := range size {
			if r.groupSize[g] != n {
				changed = append(changed, g)
			}
		}
		for g := range r.groupSize {
			if _, ok := size[g]; !ok {
				changed = append(changed, g)
			}
		}
		sort.Strings(changed)
		for _, g := range changed {
			r.record(Event{Kind: GroupSizeChanged, Group: g, Before: r.groupSize[g], After: size[g]}, now)
		}
	}
	if r.allReady() {
		r.groupSize = size
	}
}

// allReady reports whether every watched datacenter has loaded fully.
func (r *runner) allReady() bool {
	if len(r.dcs) == 0 {
		return false
	}
	for _, dc := range r.dcs {
		if !dc.ready {
			return false
		}
	}
	return true
}
