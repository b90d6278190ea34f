package fleet

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"
	"golang.org/x/time/rate"
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

	nodes    []*api.Node
	services map[string][]string
	svc      []instance
	checks   []nodeCheck
	dcs      []string

	// changed is false when a blocking query timed out without a new
	// index: only the connection state is refreshed.
	changed   bool
	meta      *api.QueryMeta
	err       error
	nextRetry time.Time
}

// instance is the part of a catalog service instance that fleetdeck keeps.
// Converting in the watch goroutine keeps the large API structs (each
// carries a copy of its node's meta and addresses) from being retained: at
// 10k nodes with 5 services each that is most of the watcher's memory.
type instance struct {
	node string
	svc  Service
}

// toInstances converts a per-service answer, sharing identical tag lists
// through tags (owned by one watch) since most instances of a service
// carry the same tags.
func toInstances(in []*api.CatalogService, tags map[string][]string) []instance {
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

// backoff is exponential backoff with jitter; not safe for concurrent use.
type backoff struct {
	min, max time.Duration
	n        int
}

// next returns the delay before the next retry and increases the step.
func (b *backoff) next() time.Duration {
	d := b.min << min(b.n, 30)
	if d > b.max || d <= 0 {
		d = b.max
	} else {
		b.n++
	}
	// Half fixed, half random: spreads reconnect storms from many
	// consoles without ever retrying immediately.
	return d/2 + rand.N(d/2+1)
}

func (b *backoff) reset() { b.n = 0 }

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
// errors users can act on, what to do.
// tokenSource is Config.TokenSource: the hint names the token in use, or
// says how to give one.
func describeErr(what, tokenSource string, err error) error {
	var se api.StatusError
	if errors.As(err, &se) {
		switch se.Code {
		case http.StatusForbidden:
			hint := "no token is set: set CONSUL_HTTP_TOKEN, CONSUL_HTTP_TOKEN_FILE or --token-file to a token with node:read and service:read"
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

// loopParams are the settings every watch loop shares.
type loopParams struct {
	dc      string
	kind    watchKind
	service string
	id      uint64
	wait    time.Duration
	stale   bool
	// tokenSource is Config.TokenSource, for error hints.
	tokenSource string
	limiter     *rate.Limiter
	backoff     backoff
	out         chan<- result
	blocking    bool
	// gate, when set, bounds how many watches make their first (full)
	// read at once: 50 per-service reads of ~1 MB each at 10k nodes are
	// several times slower all at once than a few at a time, because
	// Consul encodes and compresses them on the same few cores.
	gate chan struct{}
}

// loop runs one blocking query over and over until ctx ends, sending every
// answer (and every error) to p.out. Re-fetches are paced by a token bucket
// rather than sleeps so bursts of changes are absorbed but a hot index
// cannot spin.
func loop(ctx context.Context, p loopParams, fetch fetchFunc) {
	var index uint64
	first := true
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
		res, meta, err := fetch(q.WithContext(ctx))
		if gated {
			<-p.gate
		}
		if ctx.Err() != nil {
			return
		}
		res.dc, res.kind, res.service, res.id = p.dc, p.kind, p.service, p.id
		if err != nil {
			// The server may come back as a new cluster whose index is
			// below ours, and a blocking query with a future index just
			// hangs until WaitTime: start over with a non-blocking read.
			index = 0
			delay := p.backoff.next()
			res.err = describeErr(p.kind.what(p.dc, p.service), p.tokenSource, err)
			res.nextRetry = time.Now().Add(delay)
			if !send(ctx, p.out, res) {
				return
			}
			t := time.NewTimer(delay)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			continue
		}
		p.backoff.reset()
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

// send delivers r unless ctx ends first.
func send(ctx context.Context, out chan<- result, r result) bool {
	select {
	case out <- r:
		return true
	case <-ctx.Done():
		return false
	}
}
