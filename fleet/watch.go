package fleet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"
	"golang.org/x/time/rate"

	"github.com/fleetdeck/fleetdeck/internal/backoff"
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
	}
	return "querying Consul"
}

// failingFilter selects the non-passing checks: at 10k nodes about 40 KB
// instead of the 12 MB of all checks.
const failingFilter = `Status != "passing"`

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
// (tagged addresses, raft indexes, IDs): at 10,000 nodes the answer is
// about 4 MB and decoding is most of the first screen's cost.
type catalogNode struct {
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
func readService(c *api.Client, name string, q *api.QueryOptions, tags map[string][]string) (result, *api.QueryMeta, error) {
	var insts []catalogInstance
	meta, err := c.Raw().Query("/v1/catalog/service/"+name, &insts, q)
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

// fetchFunc performs one (blocking) query.
type fetchFunc func(q *api.QueryOptions) (result, *api.QueryMeta, error)

// nextIndex applies Consul's blocking-query index rules: an index that
// goes backwards (snapshot restore, new cluster) resets to 0 so the next
// query returns at once, and an index is never below 1.
func nextIndex(prev, got uint64) uint64 {
	switch {
	case got < prev:
		return 0
	case got < 1:
		return 1
	}
	return got
}

// describeErr wraps a Consul error with what was being done and, for the
// errors users can act on, what to do. tokenSource is Config.TokenSource:
// the hint names the token in use, or says how to give one.
func describeErr(what, tokenSource string, err error) error {
	var se api.StatusError
	if errors.As(err, &se) {
		switch se.Code {
		case http.StatusForbidden:
			hint := "set CONSUL_HTTP_TOKEN, CONSUL_HTTP_TOKEN_FILE or --token-file to a token with node:read and service:read"
			if tokenSource != "" {
				hint = "the token from " + tokenSource + " is unknown to Consul or lacks node:read and service:read"
			}
			return fmt.Errorf("%s: permission denied by Consul ACLs (%s): %s: %w", what, se.Body, hint, err)
		case http.StatusTooManyRequests:
			return fmt.Errorf("%s: Consul is limiting connections from this address (HTTP 429): %w", what, err)
		}
	}
	return fmt.Errorf("%s: %w", what, err)
}

// isSilence reports whether err means Consul did not answer at all (the
// request's deadline passed) rather than answering with an error: a
// frozen agent or a black-holed connection, as opposed to a refused
// connection or an HTTP error.
func isSilence(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Request deadlines. Consul adds up to WaitTime/16 of jitter to a blocking
// query's wait; blockingMargin covers that plus a slow answer. A plain read
// of the largest answers (all checks at 10k nodes, ~16 MB) takes a few
// seconds on a busy machine; readTimeout leaves room for far more.
const (
	blockingMargin = 15 * time.Second
	readTimeout    = time.Minute
)

// requestTimeout is the deadline of one request of a watch.
func requestTimeout(blocking bool, wait time.Duration) time.Duration {
	if !blocking {
		return readTimeout
	}
	return wait + wait/16 + blockingMargin
}

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
	dc       string
	kind     watchKind
	service  string
	id       uint64
	wait     time.Duration
	stale    bool
	limiter  *rate.Limiter
	backoff  backoff.Backoff
	out      chan<- result
	blocking bool
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
	// tokenSource is Config.TokenSource, for error hints.
	tokenSource string
}

// loop runs one blocking query over and over until ctx ends, sending every
// answer (and every error) to p.out. Re-fetches are paced by a token bucket
// rather than sleeps so bursts of changes are absorbed but a hot index
// cannot spin. Every request has a deadline: its wait time plus Consul's
// jitter plus a margin for a blocking query, readTimeout for a read.
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
		q := &api.QueryOptions{Datacenter: p.dc, AllowStale: p.stale}
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
		reqCtx, cancel := context.WithTimeout(ctx, requestTimeout(p.blocking && index > 0, p.wait))
		var stop func() bool
		if ep != nil {
			stop = context.AfterFunc(ep, cancel)
		}
		res, meta, err := fetch(q.WithContext(reqCtx))
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
			res.silent = isSilence(err)
			res.err = describeErr(p.kind.what(p.dc, p.service), p.tokenSource, err)
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
		index = nextIndex(index, meta.LastIndex)
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
