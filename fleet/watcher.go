package fleet

import (
	"context"
	"net/url"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"
	"golang.org/x/time/rate"

	"github.com/fleetdeck/fleetdeck/internal/backoff"
	"github.com/fleetdeck/fleetdeck/internal/consul"
)

// Watcher keeps a complete Snapshot of the fleet live from Consul. Per
// datacenter it holds a constant set of blocking queries — the node list,
// the service list, one query per service up to the connection budget, the
// failing checks — plus an occasional read of all checks for totals and
// check names, and a cheap probe every ProbeInterval that tells a quiet
// fleet from a silent Consul. It never opens one query per node: Consul
// caps concurrent connections per client address.
//
// Services beyond the budget (Config.MaxConns) have no query of their own:
// when the service list's index moves (Consul raises it with every service
// registration and deregistration), the sweeper asks each of them for its
// index alone (a filter that matches nothing: a few bytes) and reads the
// ones that moved. A swept service that changed takes over the watch of
// the service that changed least recently, so the services that change
// often keep answering at once.
//
// Nodes are published as soon as the node list arrives; their roles and
// health follow (ConnState.Pending says what is still loading).
//
// A Watcher is a Feed. Run drives it; Current and Next may be called from
// any goroutine, before, during and after Run.
type Watcher struct {
	// c is the Consul access layer over the client given to NewWatcher.
	c   *consul.Client
	cfg Config
	pub *Publisher
	now func() time.Time
}

// NewWatcher returns a Watcher reading from client. Nothing happens until
// Run is called.
func NewWatcher(client *api.Client, cfg Config) *Watcher {
	cfg = cfg.withDefaults()
	return &Watcher{c: cfg.access(client), cfg: cfg, pub: NewPublisher(nil), now: time.Now}
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
		started: w.now(),
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
	if due := r.nextWake(); !due.IsZero() {
		// Even if nothing ever answers: silence must show.
		wake.Reset(max(due.Sub(w.now()), time.Millisecond))
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case res := <-r.out:
			r.apply(ctx, res)
			if !r.urgent {
				r.settle(ctx)
			}
			r.urgent = false
		case <-wake.C:
			r.dirty = true // held nodes are due, a datacenter fell silent, a sweep is due
		}
		r.startSweeps()
		if r.dirty {
			r.publish()
		}
		if due := r.nextWake(); !due.IsZero() {
			wake.Reset(max(due.Sub(w.now()), time.Millisecond))
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

// nextWake returns when the Run loop must act without an answer arriving:
// the earliest held node due, a sweep due, or the moment a datacenter has
// been silent for LivenessTimeout; zero for none.
func (r *runner) nextWake() time.Time {
	var due time.Time
	earliest := func(t time.Time) {
		if !t.IsZero() && (due.IsZero() || t.Before(due)) {
			due = t
		}
	}
	now := r.w.now()
	if len(r.dcs) == 0 && !r.cfg.oneShot {
		if t := maxTime(r.dcHeard, r.started).Add(r.cfg.LivenessTimeout + time.Millisecond); t.After(now) {
			earliest(t)
		}
	}
	for _, dc := range r.dcs {
		for _, h := range dc.held {
			earliest(h.due)
		}
		if dc.sweepDue() {
			earliest(dc.sweepAt)
		}
		if !r.cfg.oneShot {
			if t := dc.silentSince().Add(r.cfg.LivenessTimeout + time.Millisecond); t.After(now) {
				earliest(t)
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
	// urgent skips the settling of a burst: a datacenter's first node
	// list goes on screen at once, not after the per-service answers it
	// sets off have quieted down.
	urgent bool
	// firstReads gates the first read of every service watch (see
	// loopParams.gate).
	firstReads chan struct{}
	// dcErr is the last failure to list datacenters, if not since cured.
	dcErr result
	// started is when Run began; dcHeard when the datacenter list last
	// got an answer (data or an error): before any datacenter is known,
	// silence is counted from them.
	started, dcHeard time.Time
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

func (r *runner) params(dc *dcState, kind watchKind, blocking bool) loopParams {
	r.nextID++
	p := loopParams{
		kind:        kind,
		id:          r.nextID,
		wait:        r.cfg.WaitTime,
		consistency: r.cfg.readMode(),
		limiter:     rate.NewLimiter(rate.Limit(r.cfg.RefetchRate), r.cfg.RefetchBurst),
		backoff:     backoff.New(r.cfg.BackoffMin, r.cfg.BackoffMax),
		out:         r.out,
		blocking:    blocking && !r.cfg.oneShot,
		client:      r.w.c,
	}
	if dc != nil {
		p.dc, p.epoch = dc.name, dc.epoch
	}
	return p
}

// maxHot is how many services may have a blocking query of their own in
// one datacenter: the connection budget minus the datacenter's other
// connections. One-shot reads do not block and are gated, so they take
// every service.
func (r *runner) maxHot() int {
	if r.cfg.oneShot {
		return int(^uint(0) >> 1)
	}
	return r.cfg.MaxConns - globalConns
}

// watchDatacenters re-reads the datacenter list now and then. Consul has
// no blocking query for it, and it changes only when clusters federate.
func (r *runner) watchDatacenters(ctx context.Context) {
	p := r.params(nil, watchDatacenter, false)
	// A tiny answer, and until it comes nothing else is asked: a short
	// deadline, so that a connection that died under it (a black hole)
	// is given up in seconds, not after the minute of a large read.
	p.timeout = 2 * r.cfg.ProbeTimeout
	fetch := func(ctx context.Context, q consul.Query) (result, *api.QueryMeta, error) {
		dcs, meta, err := r.w.c.Datacenters(ctx, q)
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

// addDC starts the constant set of watches for one datacenter. The node
// list goes first and alone among the large reads: the per-service reads
// wait for it, and the read of all checks waits until roles and health are
// complete, so the first rows are on screen as fast as Consul can list its
// nodes.
func (r *runner) addDC(parent context.Context, name string) {
	if _, ok := r.dcs[name]; ok {
		return
	}
	ctx, cancel := context.WithCancel(parent)
	dc := newDCState(name, ctx, cancel, r.w.now())
	r.dcs[name] = dc
	r.dirty = true
	c := r.w.c
	// params numbers each watch: build them here, on the runner's
	// goroutine, not in the watches' own.
	nodesP, servicesP, failingP := r.params(dc, watchNodes, true), r.params(dc, watchServices, true), r.params(dc, watchFailing, true)
	// The service list and the failing checks are small answers but cost
	// Consul a pass over every service instance and check (a filter over
	// 30,000 checks at 10k nodes): they wait for the node list too.
	servicesP.after, failingP.after = dc.nodesArrived, dc.nodesArrived
	r.goFunc(func() {
		loop(ctx, nodesP, func(ctx context.Context, q consul.Query) (result, *api.QueryMeta, error) {
			var nodes []catalogNode
			meta, err := c.Get(ctx, "/v1/catalog/nodes", q, &nodes)
			return result{nodes: nodes}, meta, err
		})
	})
	r.goFunc(func() {
		loop(ctx, servicesP, func(ctx context.Context, q consul.Query) (result, *api.QueryMeta, error) {
			var svcs map[string][]string
			meta, err := c.Get(ctx, "/v1/catalog/services", q, &svcs)
			return result{services: svcs}, meta, err
		})
	})
	r.goFunc(func() {
		loop(ctx, failingP, func(ctx context.Context, q consul.Query) (result, *api.QueryMeta, error) {
			q.Filter = failingFilter
			var checks api.HealthChecks
			meta, err := c.Get(ctx, healthAnyPath, q, &checks)
			return result{checks: toChecks(checks)}, meta, err
		})
	})
	if r.cfg.SkipBootstrap {
		dc.bootDone = true
	} else {
		bootP := r.params(dc, watchBootstrap, false)
		r.goFunc(func() { r.bootstrap(ctx, bootP) })
	}
	if !r.cfg.oneShot {
		probeP := r.params(dc, watchProbe, false)
		r.goFunc(func() { r.probe(ctx, probeP) })
		r.goFunc(func() { r.sweeper(ctx, dc) })
		r.goFunc(func() { r.readNodeChecks(ctx, dc.name, dc.epoch, dc.nodeReads) })
		r.goFunc(func() { r.readHeldNodes(ctx, dc.name, dc.epoch, dc.heldReads) })
	}
	if r.cfg.SkipAllChecks {
		dc.allLoaded = true
		return
	}
	if r.cfg.oneShot && r.cfg.SkipBootstrap {
		dc.requestFullRead()
	}
	full := r.params(dc, watchAllChecks, false)
	// At most one full read per 15 s however often it is asked for: at
	// 10k nodes one read is about 12 MB.
	full.limiter = rate.NewLimiter(rate.Every(15*time.Second), 1)
	r.goFunc(func() { r.readAllChecks(ctx, dc.fullTrigger, full) })
}

// readAllChecks reads every check when triggered — at the first complete
// load or, in a one-shot read, at once, when the bootstrap read did not
// bring them; when nodes joined — or FullCheckInterval has passed.
func (r *runner) readAllChecks(ctx context.Context, trigger <-chan struct{}, p loopParams) {
	fetch := func(ctx context.Context, q consul.Query) (result, *api.QueryMeta, error) {
		var checks api.HealthChecks
		meta, err := r.w.c.Get(ctx, healthAnyPath, q, &checks)
		return result{checks: toChecks(checks)}, meta, err
	}
	select {
	case <-ctx.Done():
		return
	case <-trigger:
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

// nodeChecksBatch bounds the nodes read one by one after their checks
// passed again; more at once (a fleet-wide recovery) are left to the full
// read, which the Run loop asks for instead.
const nodeChecksBatch = 16

// readNodeChecks reads the checks of nodes whose failing checks passed
// again, one request per node (/v1/health/node/<name>, a few hundred
// bytes), so the journal and the node detail show what a recovered check
// says now rather than what it said before it failed.
func (r *runner) readNodeChecks(ctx context.Context, dcName string, ep *epoch, in <-chan []string) {
	c := r.w.c
	for {
		var nodes []string
		select {
		case <-ctx.Done():
			return
		case nodes = <-in:
		}
		for _, node := range nodes {
			reqCtx, cancel := context.WithCancel(ctx)
			stop := context.AfterFunc(ep.current(), cancel)
			var checks api.HealthChecks
			meta, err := c.Get(reqCtx, "/v1/health/node/"+node, consul.Query{Datacenter: dcName, Consistency: r.cfg.readMode()}, &checks)
			stop()
			cancel()
			if ctx.Err() != nil {
				return
			}
			res := result{dc: dcName, kind: watchNodeChecks, service: node, meta: meta, changed: true, checks: toChecks(checks)}
			if err != nil {
				// Not worth a degraded state: the next full read brings
				// the output; the status is right meanwhile.
				continue
			}
			if !send(ctx, r.out, res) {
				return
			}
		}
	}
}

// readHeldNodes asks for nodes held after losing a service
// (holdLeaving) whether they are still in the catalog, one small request
// per node, read through the leader so that the answer is at least as new
// as the service answer that removed the service.
func (r *runner) readHeldNodes(ctx context.Context, dcName string, ep *epoch, in <-chan []string) {
	c := r.w.c
	for {
		var nodes []string
		select {
		case <-ctx.Done():
			return
		case nodes = <-in:
		}
		for _, node := range nodes {
			reqCtx, cancel := context.WithCancel(ctx)
			stop := context.AfterFunc(ep.current(), cancel)
			var got *struct{ Node *struct{ Node string } }
			meta, err := c.Get(reqCtx, "/v1/catalog/node/"+url.PathEscape(node), consul.Query{Datacenter: dcName}, &got)
			stop()
			cancel()
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				// The node list settles it, later.
				continue
			}
			res := result{dc: dcName, kind: watchHeldNode, service: node, meta: meta, changed: true,
				present: got != nil && got.Node != nil && got.Node.Node == node}
			if !send(ctx, r.out, res) {
				return
			}
		}
	}
}

// probe asks the datacenter for its leader every ProbeInterval, with a
// deadline of ProbeTimeout: the one question that is answered at once
// whatever the fleet does. Its answers keep the data age honest on a
// quiet fleet; its silence is how a frozen Consul shows within seconds
// rather than after a blocking query's five minutes.
func (r *runner) probe(ctx context.Context, p loopParams) {
	t := time.NewTicker(r.cfg.ProbeInterval)
	defer t.Stop()
	for {
		leader, meta, err := r.w.c.Leader(ctx, consul.Query{Datacenter: p.dc, Timeout: r.cfg.ProbeTimeout})
		if ctx.Err() != nil {
			return
		}
		res := result{dc: p.dc, kind: watchProbe, id: p.id, leader: leader, meta: meta}
		if err != nil {
			res.silent = consul.IsSilence(err)
			res.err = r.w.c.Describe(watchProbe.what(p.dc, ""), err)
			res.nextRetry = time.Now().Add(r.cfg.ProbeInterval)
		}
		if !send(ctx, r.out, res) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// startServiceWatch gives one service a blocking query of its own,
// starting at the index of what is known of it (a service not read yet
// makes its first read, gated).
func (r *runner) startServiceWatch(dc *dcState, name string, s *svcState) {
	ctx, cancel := context.WithCancel(dc.ctx)
	p := r.params(dc, watchService, true)
	p.service = name
	if s.loaded {
		p.index = s.index
	} else {
		p.gate, p.after = r.firstReads, dc.nodesArrived
	}
	s.watch = &svcWatch{id: p.id, cancel: cancel}
	dc.hot++
	c := r.w.c
	r.goFunc(func() {
		tags := map[string][]string{}
		loop(ctx, p, func(ctx context.Context, q consul.Query) (result, *api.QueryMeta, error) {
			return readService(ctx, c, name, q, tags)
		})
	})
}

// watchService gives a service that has no watch yet its own blocking
// query when the budget allows; the others are swept (sweepItems), and a
// one-shot read needs none for a service the bootstrap brought.
func (r *runner) watchService(dc *dcState, name string, s *svcState) {
	if s.watch != nil || (r.cfg.oneShot && s.loaded) {
		return
	}
	if dc.hot < r.maxHot() {
		r.startServiceWatch(dc, name, s)
	}
}

// stopServiceWatch ends a service's own query: it is swept from now on.
// An error of that query goes with it; the sweeps report their own.
func (dc *dcState) stopServiceWatch(name string, s *svcState) {
	if s.watch == nil {
		return
	}
	s.watch.cancel()
	s.watch = nil
	dc.hot--
	delete(dc.errs, watchKey{watchService, name})
}

// promote gives a swept service that changed a watch of its own, taking
// it from the watched service that changed least recently when the budget
// is spent.
func (r *runner) promote(dc *dcState, name string, s *svcState) {
	if s.watch != nil || r.cfg.oneShot {
		return
	}
	if dc.hot >= r.maxHot() {
		var coldest *svcState
		var coldestName string
		for n, o := range dc.svcs {
			if o.watch != nil && o.loaded && (coldest == nil || o.changed.Before(coldest.changed)) {
				coldest, coldestName = o, n
			}
		}
		if coldest == nil {
			return // every watch is still making its first read
		}
		dc.stopServiceWatch(coldestName, coldest)
	}
	r.startServiceWatch(dc, name, s)
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
	now := r.w.now()
	switch res.kind {
	case watchProbe:
		r.applyProbe(dc, res, now)
		return
	case watchSweep:
		dc.applySweepEnd(res, now)
		return
	case watchService:
		s := dc.svcs[res.service]
		if s == nil {
			return // dropped meanwhile
		}
		if !res.sweep && (s.watch == nil || s.watch.id != res.id) {
			return // a stopped watch's last answer
		}
		if res.sweep && s.watch != nil {
			return // it has its own watch now, which knows better
		}
	}
	key := watchKey{res.kind, res.service}
	if !res.silent {
		dc.lastHeard = now
	}
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
	var index uint64
	if res.meta != nil {
		index = res.meta.LastIndex
	}
	switch res.kind {
	case watchNodes:
		// Consul never tells anonymous requests that it filtered them, but
		// a reachable Consul always has nodes (its servers): none at all
		// without a token is an ACL default policy of deny.
		dc.anonymousEmpty = len(res.nodes) == 0 && r.cfg.TokenSource == ""
		r.urgent = r.urgent || !dc.nodesLoaded
		if dc.applyNodes(res.nodes, index) && dc.ready {
			dc.requestFullRead()
		}
	case watchServices:
		if index < dc.svcListIndex {
			// A new cluster or a restore: what the swept services were
			// known as means nothing now; read them again.
			for _, s := range dc.svcs {
				if s.watch == nil {
					s.index = 0
				}
			}
			dc.boot = nil
		}
		dc.svcListIndex = index
		added, removed := dc.applyServiceList(res.services)
		for _, name := range removed {
			dc.dropService(name, index)
		}
		for _, name := range added {
			s := &svcState{changed: now}
			dc.svcs[name] = s
			if dc.bootDone {
				dc.adoptBoot(name, s)
				r.watchService(dc, name, s)
			}
		}
		if dc.boot != nil && index >= dc.bootIndex {
			dc.boot = nil // every service it covers is in the list, or gone
		}
	case watchBootstrap:
		dc.bootDone = true
		if res.boot != nil {
			dc.boot, dc.bootIndex = res.boot, index
			if !r.cfg.SkipAllChecks {
				dc.applyAllChecks(res.boot.checks, index)
			}
		} else if r.cfg.oneShot && !r.cfg.SkipAllChecks {
			dc.requestFullRead()
		}
		names := make([]string, 0, len(dc.svcs))
		for name := range dc.svcs {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			s := dc.svcs[name]
			dc.adoptBoot(name, s)
			r.watchService(dc, name, s)
		}
		if res.boot != nil && dc.svcLoaded && dc.svcListIndex <= index {
			// Every swept service is known as of the bootstrap, which is
			// not older than the service list: no sweep is due for it.
			dc.sweptTo = max(dc.sweptTo, dc.svcListIndex)
		}
		if dc.boot != nil && dc.svcListIndex >= dc.bootIndex {
			dc.boot = nil
		}
	case watchService:
		s := dc.svcs[res.service]
		if res.sweep && s.loaded && index != s.index {
			// Consul also raises a service's index when a check on one of
			// its nodes changes: only a swept service whose instances
			// changed is one that changes. Give it a watch of its own.
			s.index = index
			if sameInstances(dc.instances[res.service], res.svc) {
				return
			}
			s.changed = now
			dc.applyService(res.service, res.svc, index)
			r.promote(dc, res.service, s)
			return
		}
		if s.loaded && index != s.index {
			s.changed = now
		}
		s.index = index
		dc.applyService(res.service, res.svc, index)
	case watchFailing:
		if rec := dc.applyFailing(res.checks, index); len(rec) > 0 && dc.ready && !r.cfg.oneShot {
			// What the recovered checks say now: a read per node, or
			// the full read when many recovered at once.
			sent := false
			if len(rec) <= nodeChecksBatch {
				select {
				case dc.nodeReads <- rec:
					sent = true
				default:
				}
			}
			if !sent {
				dc.requestFullRead()
			}
		}
	case watchAllChecks:
		dc.applyAllChecks(res.checks, index)
	case watchNodeChecks:
		dc.applyNodeChecks(res.service, res.checks, index)
	case watchHeldNode:
		dc.confirmHeld(res.service, res.present)
	}
}

// applyProbe records a probe's answer. The first answer after silence or
// errors kicks the datacenter's epoch, so that every watch asks again now
// instead of waiting on a dead connection or out a backoff.
func (r *runner) applyProbe(dc *dcState, res result, now time.Time) {
	key := watchKey{kind: watchProbe}
	wasSilent := now.Sub(dc.silentSince()) > r.cfg.LivenessTimeout
	if res.err != nil {
		dc.probeFailing = true
		if !res.silent {
			dc.lastHeard = now
			dc.errs[key] = res
		}
		r.dirty = true
		return
	}
	if dc.probeFailing || wasSilent {
		dc.epoch.kick()
	}
	dc.probeFailing = false
	delete(dc.errs, key)
	dc.lastHeard, dc.lastSuccess = now, now
	dc.knownLeader = res.leader != ""
	if res.meta != nil {
		dc.lastContact = res.meta.LastContact
	}
	r.dirty = true
}

// applyDatacenters starts watching new datacenters and stops watching
// those that are gone.
func (r *runner) applyDatacenters(ctx context.Context, res result) {
	if res.err == nil || !res.silent {
		r.dcHeard = r.w.now()
	}
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
		wasReady := dc.ready
		for _, e := range dc.rebuild(r.cfg, now) {
			r.record(e, now)
		}
		if ask := dc.takeToAsk(); len(ask) > 0 && !r.cfg.oneShot {
			select {
			case dc.heldReads <- ask:
			default: // reads under way: these wait for the node list
			}
		}
		if dc.ready && !wasReady && !r.cfg.oneShot && !dc.allLoaded {
			// Roles and health are complete: now the passing checks'
			// names and outputs, which the first screen did not wait for.
			dc.requestFullRead()
		}
		nodes = append(nodes, dc.list()...)
		cs := dc.connState(r.cfg, now)
		if r.dcErr.err != nil && cs.Status != Degraded && cs.Status != Unresponsive {
			cs.Status, cs.LastError, cs.NextRetry = Degraded, r.dcErr.err.Error(), r.dcErr.nextRetry
		}
		conn = append(conn, cs)
	}
	if len(names) == 0 {
		// No datacenter known yet: everything is still to come.
		cs := ConnState{Status: Connecting, Pending: []string{"nodes", "roles", "health", "check details"}}
		silent := now.Sub(maxTime(r.dcHeard, r.started))
		switch {
		case !r.cfg.oneShot && silent > r.cfg.LivenessTimeout:
			// Not even the datacenter list answered: a Consul frozen or
			// black-holed from the start.
			cs.Status, cs.LastError = Unresponsive, "no answer from Consul for "+silent.Truncate(time.Second).String()
		case r.dcErr.err != nil:
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
	if !r.allReady() {
		return
	}
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
	r.groupSize = size
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
