package fleet

import (
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/fleetdeck/fleetdeck/internal/consul"
)

// Config tunes a Watcher. The zero value is usable: every zero field takes
// the default documented on it.
type Config struct {
	// Datacenters to watch. Empty means every datacenter the agent knows
	// (re-read every DatacenterRefresh).
	Datacenters []string
	// TokenSource says where the ACL token comes from, for the hints of
	// permission errors: "--token-file /path", "CONSUL_HTTP_TOKEN", ...;
	// empty means no token (anonymous requests).
	TokenSource string
	// GroupKeys are the node-meta keys that name a node's autoscaling
	// group; the first one present wins. Default: asg, mig.
	GroupKeys []string
	// InstanceKey, ZoneKey and ImageKey are node-meta keys. Defaults:
	// instance-id, zone, image.
	InstanceKey string
	ZoneKey     string
	ImageKey    string
	// WaitTime is the longest a blocking query waits. Default 5m; use ≤55s
	// behind proxies that cut idle connections.
	WaitTime time.Duration
	// Consistent disables stale reads: every read is consistent (the
	// leader confirms its leadership with a quorum before answering), the
	// watcher's, the inventory's and the inventory cache's probes alike.
	// Default false: stale reads spread load over servers and keep working
	// without a leader; ConnState shows how old the data may be.
	Consistent bool
	// StaleAfter is the LastContact above which data is shown as stale.
	// Default 5s.
	StaleAfter time.Duration
	// FullCheckInterval is how often all checks (passing too) are read for
	// totals and check names. Failing checks are always live. Default 5m.
	FullCheckInterval time.Duration
	// SkipAllChecks leaves out the occasional read of all checks: nodes
	// then carry only their failing checks. Health stays exact (it comes
	// from the failing checks); only passing checks' names and totals are
	// missing. For one-shot readers such as the inventory, where the full
	// read (~12 MB at 10k nodes) would dominate.
	SkipAllChecks bool
	// Direct, when set, is the configuration api.NewClient resolved for
	// the client the watcher reads through (scheme, address, path prefix,
	// token, HTTP client; NewClient fills them in). The watcher then makes
	// its one large read, the bootstrap (26 MB at 10,000 nodes), itself and
	// decodes it with a faster JSON decoder than the API client's, which
	// spends ~0.5 s on it. Nil: the API client reads it.
	Direct *api.Config
	// SkipBootstrap reads services one by one from the start instead of
	// first reading every node's services and checks in one request of
	// Consul's internal UI endpoint (see Watcher). For tests of the public
	// path; the bootstrap falls back to it by itself on any trouble.
	SkipBootstrap bool
	// oneShot makes every watch read once and stop (Once): no blocking
	// query is left waiting in Consul, and nothing is read twice.
	oneShot bool
	// DatacenterRefresh is how often the datacenter list is re-read when
	// Datacenters is empty. Default 5m.
	DatacenterRefresh time.Duration
	// JournalSize bounds the event journal. Default 10000.
	JournalSize int
	// RefetchRate and RefetchBurst shape the token bucket that limits how
	// often one watch may re-fetch. Defaults 5/s, burst 5.
	RefetchRate  float64
	RefetchBurst int
	// BackoffMin and BackoffMax bound the exponential backoff (with
	// jitter) after a failed request. Defaults 500ms and 30s.
	BackoffMin time.Duration
	BackoffMax time.Duration
	// ProbeInterval is how often each datacenter is asked for its leader
	// (/v1/status/leader), the cheap question that tells a quiet fleet
	// from a silent Consul: blocking queries may rightly stay unanswered
	// for WaitTime. ProbeTimeout bounds each probe. Defaults 2s and 2s.
	ProbeInterval time.Duration
	ProbeTimeout  time.Duration
	// LivenessTimeout is how long a datacenter may stay silent — no
	// answer at all, not even an error — before it is shown as
	// Unresponsive. Default 5s: with the defaults above, a frozen Consul
	// is called unresponsive within about 6 s.
	LivenessTimeout time.Duration
	// MaxConns bounds the HTTP connections the watcher keeps to each
	// datacenter (Consul refuses more than http_max_conns_per_client, 200
	// by default, per client address). Below the budget every service has
	// its own blocking query; above it, the services that changed last
	// keep theirs and the others are swept when the service list says
	// something changed (see Watcher). Default 32, at least MinMaxConns.
	MaxConns int
}

// Connections a datacenter uses besides the per-service watches: the node
// list, the service list and the failing checks (blocking), the probe, the
// occasional read of all checks, the reads of recovered nodes' checks, and
// the sweeper's readers.
const (
	sweepConns  = 3
	globalConns = 3 + 1 + 1 + 1 + sweepConns
	// MinMaxConns is the smallest MaxConns: the datacenter's own
	// connections plus three service watches.
	MinMaxConns = globalConns + 3
)

// access is the Consul access layer over client with c's direct-read
// configuration and token source.
func (c Config) access(client *api.Client) *consul.Client {
	return consul.New(client, consul.Options{Direct: c.Direct, TokenSource: c.TokenSource})
}

// readMode is the consistency of every read of the fleet: stale reads
// unless Consistent (see consul.ReadConsistency).
func (c Config) readMode() consul.Consistency { return consul.ReadConsistency(c.Consistent) }

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if len(c.GroupKeys) == 0 {
		c.GroupKeys = []string{"asg", "mig"}
	}
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&c.InstanceKey, "instance-id")
	def(&c.ZoneKey, "zone")
	def(&c.ImageKey, "image")
	dur := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	dur(&c.WaitTime, 5*time.Minute)
	dur(&c.StaleAfter, 5*time.Second)
	dur(&c.FullCheckInterval, 5*time.Minute)
	dur(&c.DatacenterRefresh, 5*time.Minute)
	dur(&c.BackoffMin, 500*time.Millisecond)
	dur(&c.BackoffMax, 30*time.Second)
	dur(&c.ProbeInterval, 2*time.Second)
	dur(&c.ProbeTimeout, 2*time.Second)
	dur(&c.LivenessTimeout, 5*time.Second)
	if c.MaxConns <= 0 {
		c.MaxConns = 32
	}
	c.MaxConns = max(c.MaxConns, MinMaxConns)
	if c.JournalSize <= 0 {
		c.JournalSize = 10000
	}
	if c.RefetchRate <= 0 {
		c.RefetchRate = 5
	}
	if c.RefetchBurst <= 0 {
		c.RefetchBurst = 5
	}
	return c
}
