// Package consul is fleetdeck's one access layer to Consul's HTTP API:
// the watcher (fleet), the host locks (provision/locks.go), the inventory
// cache (cmd/fleetdeck) and the simulated fleet (internal/fleetsim) read
// and write Consul through it rather than each through the API client in
// its own way.
//
// It owns what every request needs to get right:
//
//   - consistency (Stale, Default, Consistent) and the mapping of the
//     user's --consistent to it (ReadConsistency);
//   - a deadline on every request (Query.Timeout, or one derived from the
//     request: a blocking query its wait plus Consul's jitter plus a
//     margin, anything else ReadTimeout), and Consul's blocking-query
//     index rules (NextIndex);
//   - errors: what a 403 means given where the token came from, what a
//     429 means (Describe), and whether an error is silence rather than an
//     answer (IsSilence);
//   - the direct read of large answers with a faster JSON decoder
//     (GetLarge);
//   - transactions: packing groups of operations into batches Consul
//     accepts without splitting a group, rollbacks as errors mapped back to
//     their operations (Txn, Batches, TxnError), KV locks taken and
//     released in batches (LockKeys, UnlockKeys);
//   - KV reads of one key (KVGet) and lists, sessions (create in a
//     datacenter on a given node or the agent's, renew, destroy) and the
//     server nodes;
//   - the datacenter list and the catalog's cheap identity and content
//     probes (CatalogIdentities, CatalogContents).
//
// What to read and how to decode it stays with the callers: the watcher
// decodes into its own small structs, and its loops, epochs, probes and
// sweeps are its own (see fleet).
package consul

import (
	"github.com/hashicorp/consul/api"
)

// Client reads and writes one Consul agent's HTTP API. It is safe for
// concurrent use.
type Client struct {
	api *api.Client
	// direct is the API client's resolved configuration for GetLarge; nil
	// makes GetLarge read through the API client.
	direct      *api.Config
	tokenSource string
}

// Options configures a Client. The zero value is usable.
type Options struct {
	// Direct is the configuration api.NewClient resolved for the client
	// (scheme, address, path prefix, token, HTTP client; NewClient fills
	// them in). With it, GetLarge makes its request itself and decodes
	// with go-json; nil: GetLarge is Get.
	Direct *api.Config
	// TokenSource says where the ACL token comes from, for the hints of
	// permission errors (Describe): "--token-file /path",
	// "CONSUL_HTTP_TOKEN", ...; empty means no token (anonymous requests).
	TokenSource string
}

// New returns a Client that talks to Consul through c.
func New(c *api.Client, o Options) *Client {
	return &Client{api: c, direct: o.Direct, tokenSource: o.TokenSource}
}
