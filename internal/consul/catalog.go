package consul

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/hashicorp/consul/api"
)

// The catalog probes: cheap reads that tell whether a datacenter's catalog
// is still the one read earlier, for the inventory cache (see
// docs/architecture.md, "The inventory cache").

// probeMetaKey/Value is a node-meta filter that matches no node.
const (
	probeMetaKey   = "fleetdeck-inventory-probe"
	probeMetaValue = "no-such-value"
)

// CatalogIdentity is what tells a datacenter's catalog, and its cluster,
// apart without reading the catalog.
type CatalogIdentity struct {
	Datacenter string
	// Index is the node table's raft index. In Consul 1.15
	// (agent/consul/state/catalog*.go) every node insert, update and
	// delete and every service insert and delete raise it
	// (catalogUpdateNodesIndexes); check updates never do. Asked with a
	// node-meta filter that matches nothing, Consul answers from its meta
	// index: an empty list with that header, in well under a millisecond
	// at 10k nodes. (/v1/catalog/node/<missing> answers the
	// node-extinction index or 1 in 1.15: it cannot be used.)
	Index uint64
	// ServerIDs are the node IDs of the datacenter's Consul servers,
	// sorted.
	ServerIDs []string
	// Cluster is the trust domain of the Connect CA, "<cluster id>.consul":
	// the leader makes the cluster id once, when a cluster's raft state is
	// created, and it needs no ACL rights to read. "" when Consul answers
	// with an error (Connect off, or its CA not set up).
	Cluster string
}

// CatalogIdentities probes each datacenter in dcs: its index, its
// servers' node IDs and its cluster id, three small requests per
// datacenter, all at once, with consistency mode.
func (c *Client) CatalogIdentities(ctx context.Context, dcs []string, mode Consistency) ([]CatalogIdentity, error) {
	out := make([]CatalogIdentity, len(dcs))
	errs := make([]error, 3*len(dcs))
	var wg sync.WaitGroup
	for i, dc := range dcs {
		out[i].Datacenter = dc
		q := Query{Datacenter: dc, Consistency: mode}
		wg.Go(func() {
			q := q
			q.NodeMeta = map[string]string{probeMetaKey: probeMetaValue}
			var none []struct{}
			meta, err := c.Get(ctx, "/v1/catalog/nodes", q, &none)
			if err != nil {
				errs[3*i] = fmt.Errorf("reading the catalog index of %s: %w", dc, err)
				return
			}
			out[i].Index = meta.LastIndex
		})
		wg.Go(func() {
			servers, _, err := c.Servers(ctx, q)
			if err != nil {
				errs[3*i+1] = fmt.Errorf("reading the Consul servers of %s: %w", dc, err)
				return
			}
			ids := make([]string, len(servers))
			for j, s := range servers {
				ids[j] = s.ID
			}
			slices.Sort(ids)
			out[i].ServerIDs = ids
		})
		wg.Go(func() {
			var roots struct{ TrustDomain string }
			_, err := c.Get(ctx, "/v1/connect/ca/roots", q, &roots)
			var se api.StatusError
			switch {
			case errors.As(err, &se):
				// Consul answered: Connect is off (or its CA is not set
				// up). The node list's sum still tells catalogs apart.
			case err != nil:
				errs[3*i+2] = fmt.Errorf("reading the cluster identity of %s: %w", dc, err)
			default:
				out[i].Cluster = roots.TrustDomain
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// CatalogContent is what a datacenter's catalog holds, as two sums.
type CatalogContent struct {
	Datacenter string
	// Index is the node list's X-Consul-Index (see CatalogIdentity.Index).
	Index uint64
	// Nodes is the SHA-256 sum of the node list exactly as Consul sent
	// it: Consul encodes the same catalog state as the same bytes (nodes
	// in name order, map keys sorted), and every node carries its ID,
	// address, meta and the raft indexes it was created and modified at,
	// so another catalog at the same index gives another sum.
	Nodes string
	// Services is the SHA-256 sum of the service list (which services and
	// tags exist), whatever the order of its services and tags.
	Services string
	// Filtered: Consul said ACLs left something out of either answer.
	Filtered bool
}

// CatalogContents reads each datacenter's whole node list and service
// list, all at once, with consistency mode, and returns their sums (~130
// ms of Consul's time at 10,000 nodes, whose node list is ~4 MB). The
// index alone cannot tell two catalogs apart: a Consul restarted with a
// new raft state and the same server node IDs and written to until its
// index reaches an earlier one looks unchanged to CatalogIdentities, and
// the cluster id catches a new raft state only when Connect is on. What
// the sums do not show either — the same nodes and services at the same
// indexes with services moved between nodes — would need the per-service
// reads.
func (c *Client) CatalogContents(ctx context.Context, dcs []string, mode Consistency) ([]CatalogContent, error) {
	out := make([]CatalogContent, len(dcs))
	errs := make([]error, 2*len(dcs))
	filtered := make([]bool, 2*len(dcs))
	var wg sync.WaitGroup
	for i, dc := range dcs {
		out[i].Datacenter = dc
		q := Query{Datacenter: dc, Consistency: mode}
		wg.Go(func() {
			var nodes bodySum
			meta, err := c.Get(ctx, "/v1/catalog/nodes", q, &nodes)
			if err != nil {
				errs[2*i] = fmt.Errorf("reading the node list of %s: %w", dc, err)
				return
			}
			out[i].Nodes, out[i].Index = string(nodes), meta.LastIndex
			filtered[2*i] = meta.ResultsFilteredByACLs
		})
		wg.Go(func() {
			var services map[string][]string
			meta, err := c.Get(ctx, "/v1/catalog/services", q, &services)
			if err != nil {
				errs[2*i+1] = fmt.Errorf("reading the service list of %s: %w", dc, err)
				return
			}
			// Unlike the node list, its bytes vary: Consul collects each
			// service's tags in a map. It is small; sort and sum it.
			out[i].Services = servicesSum(services)
			filtered[2*i+1] = meta.ResultsFilteredByACLs
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for i := range out {
		out[i].Filtered = filtered[2*i] || filtered[2*i+1]
	}
	return out, nil
}

// bodySum decodes a JSON answer into the SHA-256 sum of its bytes. The
// decoder hands over the value's bytes as sent, so nothing is built from
// them.
type bodySum string

func (b *bodySum) UnmarshalJSON(data []byte) error {
	s := sha256.Sum256(data)
	*b = bodySum(hex.EncodeToString(s[:]))
	return nil
}

// servicesSum is the SHA-256 sum of a service list, whatever the order of
// its services and tags: the JSON encoding of the list with every
// service's tags sorted (encoding/json writes map keys sorted).
func servicesSum(services map[string][]string) string {
	sorted := make(map[string][]string, len(services))
	for name, tags := range services {
		tags = slices.Clone(tags)
		slices.Sort(tags)
		if tags == nil {
			tags = []string{}
		}
		sorted[name] = tags
	}
	b, err := json.Marshal(sorted)
	if err != nil {
		// A map of strings always encodes; keep the sum distinct anyway.
		return "unencodable: " + err.Error()
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
