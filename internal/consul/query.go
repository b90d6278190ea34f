package consul

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/consul/api"
)

// Consistency is how up to date a read must be.
type Consistency uint8

const (
	// Default: the leader answers without checking it still is one
	// (Consul's default mode).
	Default Consistency = iota
	// Stale: any server answers from its own state (?stale): spreads the
	// load over servers and keeps working without a leader; the answer's
	// LastContact and KnownLeader say how old it may be.
	Stale
	// Consistent: the leader confirms its leadership with a quorum before
	// answering (?consistent).
	Consistent
)

// ReadConsistency is the mode of every read of the fleet (the watcher, the
// inventory and the inventory cache's probes) for the user's
// --consistent: stale reads by default, consistent ones with it. It is
// the one place that mapping is made, so the cache's probes always see
// what a full read sees.
func ReadConsistency(consistent bool) Consistency {
	if consistent {
		return Consistent
	}
	return Stale
}

// Request deadlines. Consul adds up to WaitTime/16 of jitter to a blocking
// query's wait; BlockingMargin covers that plus a slow answer. A plain
// read of the largest answers (all checks at 10k nodes, ~16 MB) takes a
// few seconds on a busy machine; ReadTimeout leaves room for far more.
const (
	BlockingMargin = 15 * time.Second
	ReadTimeout    = time.Minute
	// defaultWait is Consul's wait for a blocking query that names none.
	defaultWait = 5 * time.Minute
)

// BlockingTimeout is the deadline of a blocking query that waits up to
// wait (0: Consul's default, 5 minutes).
func BlockingTimeout(wait time.Duration) time.Duration {
	if wait <= 0 {
		wait = defaultWait
	}
	return wait + wait/16 + BlockingMargin
}

// Query is one request's options. Reads use all of them; writes
// (transactions, sessions) only Datacenter and Timeout.
type Query struct {
	// Datacenter: "" for the agent's own.
	Datacenter  string
	Consistency Consistency
	// Filter is a filter expression (?filter=).
	Filter string
	// NodeMeta filters nodes by meta (?node-meta=key:value).
	NodeMeta map[string]string
	// WaitIndex > 0 makes a read a blocking query that returns when the
	// answer's index passes it or after WaitTime.
	WaitIndex uint64
	WaitTime  time.Duration
	// Timeout bounds the request, within ctx. 0: BlockingTimeout(WaitTime)
	// for a blocking query, ReadTimeout for anything else. Every request
	// has a deadline.
	Timeout time.Duration
}

// Blocking reports whether q is a blocking query.
func (q Query) Blocking() bool { return q.WaitIndex > 0 }

// deadline is the request's timeout (see Query.Timeout).
func (q Query) deadline() time.Duration {
	switch {
	case q.Timeout > 0:
		return q.Timeout
	case q.Blocking():
		return BlockingTimeout(q.WaitTime)
	}
	return ReadTimeout
}

// options returns the API client's options for q with the request's
// deadline applied; cancel releases it once the answer is read.
func (q Query) options(ctx context.Context) (*api.QueryOptions, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(ctx, q.deadline())
	o := &api.QueryOptions{Datacenter: q.Datacenter, Filter: q.Filter, NodeMeta: q.NodeMeta, WaitIndex: q.WaitIndex, WaitTime: q.WaitTime}
	switch q.Consistency {
	case Stale:
		o.AllowStale = true
	case Consistent:
		o.RequireConsistent = true
	}
	return o.WithContext(ctx), cancel
}

// writeOptions returns the API client's write options for q with the
// request's deadline applied.
func (q Query) writeOptions(ctx context.Context) (*api.WriteOptions, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(ctx, q.deadline())
	return (&api.WriteOptions{Datacenter: q.Datacenter}).WithContext(ctx), cancel
}

// Get reads path (a GET of Consul's HTTP API) with q and decodes the JSON
// answer into out. Errors are the API client's (api.StatusError for an
// HTTP error): wrap them with Describe.
func (c *Client) Get(ctx context.Context, path string, q Query, out any) (*api.QueryMeta, error) {
	o, cancel := q.options(ctx)
	defer cancel()
	return c.api.Raw().Query(path, out, o)
}

// NextIndex applies Consul's blocking-query index rules to the index of
// the last answer: an index that goes backwards (snapshot restore, new
// cluster) resets to 0 so the next query returns at once, and an index is
// never below 1.
func NextIndex(prev, got uint64) uint64 {
	switch {
	case got < prev:
		return 0
	case got < 1:
		return 1
	}
	return got
}

// Datacenters lists the datacenters the agent knows, in Consul's order
// (by estimated round-trip time). Consul has no blocking query for it.
func (c *Client) Datacenters(ctx context.Context, q Query) ([]string, *api.QueryMeta, error) {
	var dcs []string
	meta, err := c.Get(ctx, "/v1/catalog/datacenters", q, &dcs)
	return dcs, meta, err
}

// Leader asks the datacenter for its leader's address ("" without one):
// the question Consul answers at once whatever its catalog does.
func (c *Client) Leader(ctx context.Context, q Query) (string, *api.QueryMeta, error) {
	var leader string
	meta, err := c.Get(ctx, "/v1/status/leader", q, &leader)
	return leader, meta, err
}

// LocalDatacenter is the datacenter of the agent the client talks to
// (/v1/agent/self).
func (c *Client) LocalDatacenter(ctx context.Context) (string, error) {
	var self struct {
		Config struct {
			Datacenter string
		}
	}
	if _, err := c.Get(ctx, "/v1/agent/self", Query{}, &self); err != nil {
		return "", fmt.Errorf("asking the agent for its datacenter: %w", err)
	}
	if self.Config.Datacenter == "" {
		return "", fmt.Errorf("asking the agent for its datacenter: the answer names none")
	}
	return self.Config.Datacenter, nil
}
