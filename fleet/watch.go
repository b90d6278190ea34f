package fleet

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"
	"golang.org/x/time/rate"

	"github.com/fleetdeck/fleetdeck/internal/backoff"
	"github.com/fleetdeck/fleetdeck/internal/consul"
)

// watchKind names one of the constant set of queries per datacenter.
type watchKind uint8

const (
	watchNodes      watchKind = iota + 1 // /v1/catalog/nodes
	watchServices                        // /v1/catalog/services
	watchService                         // /v1/catalog/service/<name>
	watchFailing                         // /v1/health/state/any?filter=Status != "passing"
	watchAllChecks                       // /v1/health/state/any, non-blocking, occasional
	watchDatacenter                      // /v1/catalog/datacenters, occasional
	watchProbe                           // /v1/status/leader, every ProbeInterval: is Consul answering?
	watchSweep                           // a sweep of the services without a watch of their own has ended
	watchNodeChecks                      // /v1/health/node/<name>, after one of its checks passed again
	watchBootstrap                       // /v1/internal/ui/nodes, once: services and checks in one read
	watchHeldNode                        // /v1/catalog/node/<name>, for a node held after it lost a service
)

// what says what a watch is doing, for error messages.
func (k watchKind) what(dc, service string) string {
	switch k {
	case watchNodes:
		return "watching catalog nodes in " + dc
	case watchServices:
		return "watching the service list in " + dc
	case watchService:
		return fmt.Sprintf("watching service %q in %s", service, dc)
	case watchFailing:
		return "watching failing checks in " + dc
	case watchAllChecks:
		return "reading all checks in " + dc
	case watchDatacenter:
		return "listing datacenters"
	case watchProbe:
		return "asking " + dc + " for its leader"
	case watchSweep:
		return "checking services for changes in " + dc
	case watchNodeChecks:
		return fmt.Sprintf("reading the checks of node %q in %s", service, dc)
	case watchBootstrap:
		return "reading every node's services and checks in " + dc
	case watchHeldNode:
		return fmt.Sprintf("asking whether node %q is still in %s", service, dc)
	}
	return "querying Consul"
}

// failingFilter selects the non-passing checks: at 10k nodes about 40 KB
// instead of the 12 MB of all checks.
const failingFilter = `Status != "passing"`

// healthAnyPath reads checks in any state (with failingFilter: the
// failing ones).
const healthAnyPath = "/v1/health/state/" + api.HealthAny

// result is what a watch goroutine hands to the Run loop, which owns all
// state. Exactly one of the data fields is set when err is nil.
type result struct {
	dc      string
	kind    watchKind
	service string
	// id identifies the watch instance so results of a cancelled service
	// watch can be dropped.
	id uint64

	nodes    []catalogNode
	services map[string][]string
	svc      []instance
	checks   []nodeCheck
	dcs      []string

	// leader is the probe's answer: the leader's address, "" without one.
	leader string
	// sweep marks a service read made by the sweeper rather than by the
	// service's own watch; index is, for watchSweep, the service-list
	// index the finished sweep covers.
	sweep bool
	index uint64
	// boot is a bootstrap read (nil when it failed).
	boot *bootData
	// present is, for watchHeldNode, whether the node is in the catalog.
	present bool

	// changed is false when a blocking query timed out without a new
	// index: only the connection state is refreshed.
	changed bool
	meta    *api.QueryMeta
	err     error
	// silent: err is a deadline that passed without any answer.
	silent    bool
	nextRetry time.Time
}

// catalogNode is the part of a /v1/catalog/nodes entry fleetdeck keeps.
// Decoding into it rather than api.Node skips what fleetdeck does not use
// (tagged addresses, raft indexes): at 10,000 nodes the answer is about
// 4 MB and decoding is most of the first screen's cost. The node ID is
// kept: it tells a replacement with the same name apart (the deployment
// server's incarnations).
type catalogNode struct {
	ID      string
	Node    string
	Address string
	Meta    map[string]string
}

// catalogInstance is the part of a /v1/catalog/service/<name> entry
// fleetdeck reads. Each entry carries a copy of its node's meta, tagged
// addresses, proxy and weights settings (~1 KB); decoding only these
// fields takes about a third less time than api.CatalogService.
type catalogInstance struct {
	Node        string
	ServiceID   string
	ServiceName string
	ServiceTags []string
	ServicePort int
}

// instance is the part of a catalog service instance that fleetdeck keeps.
type instance struct {
	node string
	svc  Service
}

// toInstances converts a per-service answer, sharing identical tag lists
// through tags (owned by one reader) since most instances of a service
// carry the same tags.
func toInstances(in []catalogInstance, tags map[string][]string) []instance {
	out := make([]instance, len(in))
	for i, cs := range in {
		key := strings.Join(cs.ServiceTags, "\x00")
		t, ok := tags[key]
		if !ok {
			t = cs.ServiceTags
			tags[key] = t
		}
		out[i] = instance{node: cs.Node, svc: Service{ID: cs.ServiceID, Name: cs.ServiceName, Tags: t, Port: cs.ServicePort}}
	}
	return out
}

// readService reads one service's instances (decoded lightly).
func readService(ctx context.Context, c *consul.Client, name string, q consul.Query, tags map[string][]string) (result, *api.QueryMeta, error) {
	var insts []catalogInstance
	meta, err := c.Get(ctx, "/v1/catalog/service/"+name, q, &insts)
	return result{svc: toInstances(insts, tags)}, meta, err
}

// serviceIndexFilter matches no instance (every instance has a node), so
// a read with it costs Consul almost nothing to encode and answers only
// the service's index: how the sweeper finds which services changed.
const serviceIndexFilter = `Node == ""`

// nodeCheck is a Check with the node it is on.
type nodeCheck struct {
	node string
	Check
}

// toChecks converts a health answer. Consul reports maintenance as a
// critical check with a reserved ID.
func toChecks(in api.HealthChecks) []nodeCheck {
	out := make([]nodeCheck, len(in))
	for i, c := range in {
		st, _ := ParseHealth(c.Status)
		if st == HealthCritical && isMaintenance(c.CheckID) {
			st = HealthMaintenance
		}
		out[i] = nodeCheck{node: c.Node, Check: Check{ID: c.CheckID, Name: c.Name, Status: st, Output: c.Output, ServiceID: c.ServiceID, ServiceName: c.ServiceName}}
	}
	return out
}

// fetchFunc performs one (blocking) query; the access layer applies q's
// deadline.
type fetchFunc func(ctx context.Context, q consul.Query) (result, *api.QueryMeta, error)

// epoch lets the runner restart every request of a datacenter at once:
// when Consul answers again after an outage, requests parked on dead
// connections (a black hole keeps them open until their deadline, minutes
// for a blocking query) and watches waiting out a long backoff must go
// again now, or the console would say "connected" while showing data
// nobody is refreshing. Safe for concurrent use.
type epoch struct {
	mu     sync.Mutex
	parent context.Context
	ctx    context.Context
	cancel context.CancelFunc
}

func newEpoch(parent context.Context) *epoch {
	e := &epoch{parent: parent}
	e.ctx, e.cancel = context.WithCancel(parent)
	return e
}

// current returns the context that ends at the next kick.
func (e *epoch) current() context.Context {
	if e == nil {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.ctx
}

// kick ends the current epoch and starts the next.
func (e *epoch) kick() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.cancel()
	e.ctx, e.cancel = context.WithCancel(e.parent)
}

// loopParams are the settings every watch loop shares.
type loopParams struct {
	dc      string
	kind    watchKind
	service string
	id      uint64
	wait    time.Duration
	// consistency is Config.Consistent's read mode.
	consistency consul.Consistency
	limiter     *rate.Limiter
	backoff     backoff.Backoff
	out         chan<- result
	blocking    bool
	// index is the wait index of the first query: a service watch that
	// takes over from a read made elsewhere (a sweep) starts blocking at
	// once instead of reading everything again.
	index uint64
	// gate, when set, bounds how many watches make their first (full)
	// read at once: 50 per-service reads of ~1 MB each at 10k nodes are
	// several times slower all at once than a few at a time, because
	// Consul encodes them on the same few cores.
	gate chan struct{}
	// after, when set, delays the first read until it is closed (the
	// datacenter's node list has arrived: the first rows go on screen
	// before the large per-service reads compete for Consul's cores).
	after <-chan struct{}
	// epoch restarts requests in flight when kicked (see epoch).
	epoch *epoch
	// client describes errors (with Config.TokenSource's hints).
	client *consul.Client
	// timeout, when set, replaces the access layer's default deadline.
	timeout time.Duration
}

// loop runs one blocking query over and over until ctx ends, sending every
// answer (and every error) to p.out. Re-fetches are paced by a token bucket
// rather than sleeps so bursts of changes are absorbed but a hot index
// cannot spin. Every request has a deadline, applied by the access layer:
// its wait time plus Consul's jitter plus a margin for a blocking query,
// consul.ReadTimeout for a read.
func loop(ctx context.Context, p loopParams, fetch fetchFunc) {
	index := p.index
	first := index == 0
	if p.after != nil {
		select {
		case <-p.after:
		case <-ctx.Done():
			return
		}
	}
	for {
		if err := p.limiter.Wait(ctx); err != nil {
			return
		}
		q := consul.Query{Datacenter: p.dc, Consistency: p.consistency, Timeout: p.timeout}
		if p.blocking {
			q.WaitIndex = index
			q.WaitTime = p.wait
		}
		gated := first && p.gate != nil
		if gated {
			select {
			case p.gate <- struct{}{}:
			case <-ctx.Done():
				return
			}
		}
		ep := p.epoch.current()
		reqCtx, cancel := context.WithCancel(ctx)
		var stop func() bool
		if ep != nil {
			stop = context.AfterFunc(ep, cancel)
		}
		res, meta, err := fetch(reqCtx, q)
		if stop != nil {
			stop()
		}
		cancel()
		if gated {
			<-p.gate
		}
		if ctx.Err() != nil {
			return
		}
		res.dc, res.kind, res.service, res.id = p.dc, p.kind, p.service, p.id
		if err != nil && ep != nil && ep.Err() != nil {
			// Kicked: Consul answers again; go again at once with the
			// same index, as if nothing had happened.
			p.backoff.Reset()
			continue
		}
		if err != nil {
			// The server may come back as a new cluster whose index is
			// below ours, and a blocking query with a future index just
			// hangs until WaitTime: start over with a non-blocking read.
			index = 0
			delay := p.backoff.Next()
			res.silent = consul.IsSilence(err)
			res.err = p.client.Describe(p.kind.what(p.dc, p.service), err)
			res.nextRetry = time.Now().Add(delay)
			if !send(ctx, p.out, res) {
				return
			}
			ok, kicked := sleepOrKick(ctx, p.epoch.current(), delay)
			if !ok {
				return
			}
			if kicked {
				p.backoff.Reset()
			}
			continue
		}
		p.backoff.Reset()
		res.meta = meta
		res.changed = first || !p.blocking || meta.LastIndex != index
		first = false
		index = consul.NextIndex(index, meta.LastIndex)
		if !send(ctx, p.out, res) {
			return
		}
		if !p.blocking {
			return
		}
	}
}

// sleepOrKick waits d, or less if the epoch ep is kicked; ok is false
// when ctx ended.
func sleepOrKick(ctx, ep context.Context, d time.Duration) (ok, kicked bool) {
	var kick <-chan struct{}
	if ep != nil {
		kick = ep.Done()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false, false
	case <-t.C:
		return true, false
	case <-kick:
		return true, true
	}
}

// send delivers r unless ctx ends first.
func send(ctx context.Context, out chan<- result, r result) bool {
	select {
	case out <- r:
		return true
	case <-ctx.Done():
		return false
	}
}
