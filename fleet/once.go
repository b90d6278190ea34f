package fleet

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/fleetdeck/fleetdeck/internal/consul"
)

// Once reads one complete snapshot of the fleet — every watched datacenter
// fully loaded — and stops. It is for one-shot readers such as the
// Ansible inventory, which must fail clearly rather than wait out an
// outage: the first error Consul gives ends it.
func Once(ctx context.Context, client *api.Client, cfg Config) (*Snapshot, error) {
	// Plain reads, not blocking queries: a blocking query that has
	// answered would come back for more, re-reading a ~1 MB service at 10k
	// nodes each time its wait ends, and one still waiting when we return
	// keeps a Consul connection slot until its wait time is over.
	cfg.oneShot = true
	w := NewWatcher(client, cfg)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = w.Run(ctx) // returns when ctx ends; errors are in the snapshots
	}()
	defer func() {
		cancel()
		<-done
	}()
	s := w.Current()
	for {
		if s.Complete() {
			return s, nil
		}
		if st := s.Status(); st.Status == Degraded || st.Status == Unresponsive {
			return nil, errors.New(st.LastError)
		}
		next, err := w.Next(ctx, s.Version)
		if err != nil {
			return nil, fmt.Errorf("reading the fleet from Consul: %w", err)
		}
		s = next
	}
}

// FailingChecks are the checks that are not passing, by node key
// ("<dc>/<name>"), each node's sorted by ID — exactly the checks Once with
// SkipAllChecks gives a node. Maintenance is HealthMaintenance, as in a
// Snapshot.
type FailingChecks map[string][]Check

// ReadFailingChecks reads the failing checks of each datacenter in dcs:
// one small request per datacenter (the same filtered read the Watcher
// keeps live), all at once, with cfg's consistency. With Apply it lets a
// one-shot reader that kept the nodes of an earlier snapshot — and knows
// the catalog has not changed since — bring their health up to date
// without reading the catalog again. The ConnStates say how fresh each
// answer is and whether ACLs left checks out.
func ReadFailingChecks(ctx context.Context, client *api.Client, cfg Config, dcs []string) (FailingChecks, []ConnState, error) {
	cfg = cfg.withDefaults()
	c := cfg.access(client)
	type answer struct {
		checks api.HealthChecks
		meta   *api.QueryMeta
		err    error
	}
	answers := make([]answer, len(dcs))
	var wg sync.WaitGroup
	for i, dc := range dcs {
		wg.Go(func() {
			a := &answers[i]
			a.meta, a.err = c.Get(ctx, healthAnyPath, consul.Query{Datacenter: dc, Consistency: cfg.readMode(), Filter: failingFilter}, &a.checks)
		})
	}
	wg.Wait()
	out := FailingChecks{}
	conn := make([]ConnState, len(dcs))
	now := time.Now()
	for i, dc := range dcs {
		a := answers[i]
		if a.err != nil {
			return nil, nil, c.Describe(watchFailing.what(dc, ""), a.err)
		}
		cs := ConnState{Datacenter: dc, Status: Connected, LastSuccess: now, LastContact: a.meta.LastContact,
			KnownLeader: a.meta.KnownLeader, FilteredByACL: a.meta.ResultsFilteredByACLs, HealthIncomplete: a.meta.ResultsFilteredByACLs}
		if !cs.KnownLeader || cs.LastContact > cfg.StaleAfter {
			cs.Status = Stale
		}
		conn[i] = cs
		for node, byID := range indexChecks(toChecks(a.checks)) {
			checks, _ := mergeChecks(nil, byID, nil)
			out[dc+"/"+node] = checks
		}
	}
	return out, conn, nil
}

// Apply returns copies of nodes whose Checks and Health are f's: a node
// without failing checks is passing. nodes are not modified.
func (f FailingChecks) Apply(nodes []*Node) []*Node {
	out := make([]*Node, len(nodes))
	for i, n := range nodes {
		c := *n
		c.Checks, c.Health = nil, HealthPassing
		if checks := f[n.Key()]; len(checks) > 0 {
			c.Checks = checks
			for _, ch := range checks {
				c.Health = max(c.Health, ch.Status)
			}
		}
		out[i] = &c
	}
	return out
}
