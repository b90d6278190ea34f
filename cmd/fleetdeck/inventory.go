package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-cleanhttp"
	"github.com/spf13/cobra"

	"github.com/fleetdeck/fleetdeck/fleet"
	"github.com/fleetdeck/fleetdeck/internal/consul"
	"github.com/fleetdeck/fleetdeck/provision"
)

const inventoryLong = `inventory prints an Ansible dynamic inventory of the fleet, read from one
consistent snapshot of Consul (a constant number of requests, not one per node):

  --list         every group with its hosts, and every host's variables
                 under _meta.hostvars
  --host NAME    one host's variables ({} for a host not in the inventory)

Groups: dc_<datacenter>, svc_<service>, svc_<service>__tag_<tag>,
meta_<key>_<value> (node meta, except instance-id), asg_<group>, and
health_passing / health_warning / health_critical / health_maintenance.
Characters outside [A-Za-z0-9_] in group names become "_".

Host variables: ansible_host (the node address) and consul_node, consul_dc,
consul_address, consul_meta, consul_services, consul_roles, consul_tags,
consul_health, consul_group, consul_zone, consul_instance_id, consul_image,
consul_failing_checks. Every string is marked unsafe, so Ansible never
templates text that came from Consul.

Nodes whose names Ansible cannot target exactly (all, localhost, names with
",", ":", spaces, a leading "-" or "@", names equal to a group, ...) get an
alias fd_<name>_<hash>; a name used in several datacenters becomes
<name>.node.<dc>.consul. Each such renaming is a warning on stderr.

Answers are cached in $XDG_CACHE_HOME/fleetdeck/inventory, per Consul
address, datacenters and token (hashed), but never served unchecked: each
run reads the failing checks anew and checks that the catalog is the same
one, unchanged: its raft index, its servers and cluster id, and the sums
of its node and service lists; any change, error, ACL filtering or doubt
means a full read. --no-cache always
reads everything and leaves the cache alone; --cache-max-age (default 10m,
config [ansible] inventory_cache_max_age) forces a full read of an older
entry; [ansible] inventory_cache = false turns the cache off. --verbose
says on stderr where the answer came from.

Under ACLs: when no node at all is visible (no token and a default policy
of deny, or a token without node:read) the command fails and says which
token it used; when the token may not read every check or service, the
inventory is printed with a warning on stderr that health or roles are
incomplete, and is not cached.

Ansible runs an inventory script with only --list, so point it at a small
wrapper and pass the connection through the environment or the wrapper:

  #!/bin/sh
  exec fleetdeck inventory "$@"

  CONSUL_HTTP_ADDR=consul.example:8500 ansible-playbook -i ./fleetdeck-inventory site.yml`

// inventoryWait is the blocking-query wait of the inventory's one-shot
// read; see runInventory.
const inventoryWait = time.Second

// newInventoryCmd implements Ansible's dynamic inventory protocol.
func newInventoryCmd(flags *flagSet) *cobra.Command {
	var list, noCache, verbose bool
	var host string
	var timeout, maxAge time.Duration
	cmd := &cobra.Command{
		Use:   "inventory (--list | --host NAME)",
		Short: "Print an Ansible dynamic inventory of the fleet",
		Long:  inventoryLong,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			hostSet := cmd.Flags().Changed("host")
			if list == hostSet {
				return errors.New("inventory: give exactly one of --list or --host NAME")
			}
			opts, err := flags.resolve(cmd.Flags().Changed)
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("cache-max-age") && maxAge <= 0 {
				return fmt.Errorf("inventory: --cache-max-age %v: must be positive (--no-cache turns the cache off)", maxAge)
			}
			if timeout <= 0 {
				return fmt.Errorf("inventory: --timeout %v: must be positive", timeout)
			}
			req := inventoryRequest{list: list, host: host, verbose: verbose}
			if opts.ansible.inventoryCache && !noCache {
				if cmd.Flags().Changed("cache-max-age") {
					opts.ansible.inventoryCacheMaxAge = maxAge
				}
				dir, err := defaultInventoryCacheDir()
				if err != nil {
					fmt.Fprintln(cmd.ErrOrStderr(), "fleetdeck inventory: warning: no inventory cache:", err)
				} else {
					req.cache = &inventoryCache{dir: dir, maxAge: opts.ansible.inventoryCacheMaxAge, now: time.Now}
				}
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			_, err = runInventory(ctx, opts, cmd.OutOrStdout(), cmd.ErrOrStderr(), req)
			return err
		},
	}
	cmd.Flags().BoolVar(&list, "list", false, "print every group and every host's variables")
	cmd.Flags().StringVar(&host, "host", "", "print the variables of one inventory host")
	cmd.Flags().DurationVar(&timeout, "timeout", time.Minute, "give up reading Consul after this long")
	cmd.Flags().BoolVar(&noCache, "no-cache", false, "read the whole catalog; neither use nor write the inventory cache")
	cmd.Flags().DurationVar(&maxAge, "cache-max-age", defaultInventoryCacheMaxAge, "read the whole catalog again after this long even if it looks unchanged")
	cmd.Flags().BoolVar(&verbose, "verbose", false, "say on stderr whether the cache answered, and if not why")
	return cmd
}

// inventoryRequest is one invocation of the inventory command.
type inventoryRequest struct {
	list bool
	host string
	// cache is nil when the cache is off.
	cache   *inventoryCache
	verbose bool
}

// inventorySource says where an answer came from.
type inventorySource int

const (
	// fromConsul: a full read of the catalog.
	fromConsul inventorySource = iota
	// fromCache: the cached --list output, validated, health unchanged.
	fromCache
	// fromCachedNodes: the cached nodes, validated, with fresh health.
	fromCachedNodes
)

// String describes the source, for messages.
func (s inventorySource) String() string {
	switch s {
	case fromCache:
		return "the cached output"
	case fromCachedNodes:
		return "the cached nodes with fresh health"
	}
	return "a full read"
}

// runInventory writes the --list or --host answer to stdout, from the
// cache when it is still exact (see inventory_cache.go) and otherwise from
// one full snapshot; warnings go to stderr, where Ansible shows them
// without parsing them.
func runInventory(ctx context.Context, opts options, stdout, stderr io.Writer, req inventoryRequest) (inventorySource, error) {
	if os.Getenv("GOMEMLIMIT") == "" {
		// main's soft limit suits the long-running console. This process
		// lives for one read of ~50 MB of JSON at 10k nodes and exits: under
		// 128 MiB the garbage collector ran almost continuously and made
		// the read several times slower.
		debug.SetMemoryLimit(math.MaxInt64)
	}
	// One read of ~50 MB at 10k nodes: Consul compressing it costs more
	// (on its cores, ~40 ms per 1 MB service answer) than the bytes save
	// next to the Ansible controller. FLEETDECK_INVENTORY_GZIP=1 keeps it
	// for slow links.
	if os.Getenv("FLEETDECK_INVENTORY_GZIP") != "1" {
		t := cleanhttp.DefaultPooledTransport()
		t.DisableCompression = true
		opts.consul.Transport = t
		// The idle connections' goroutines would outlive an in-process
		// caller (the tests).
		defer t.CloseIdleConnections()
	}
	client, resolved, err := newConsulClient(opts)
	if err != nil {
		return fromConsul, err
	}
	cfg := opts.fleet
	cfg.Direct = resolved
	// The inventory needs health, which the failing checks alone give
	// exactly; the full check read is ~12 MB at 10k nodes.
	cfg.SkipAllChecks = true
	// While Once waits for the last datacenter, watches that have answered
	// already sit in blocking queries. Consul 1.15 keeps such a request
	// (and its place in the 200-connections-per-client limit) until its
	// wait time ends even after this process has exited, so with the
	// console's 5-minute wait a few inventory runs in a row were refused
	// with HTTP 429 at 50 services. A short wait bounds what each run
	// leaves behind.
	cfg.WaitTime = inventoryWait
	inv := &inventoryRun{ctx: ctx, client: client, cfg: cfg, req: req, stdout: stdout, stderr: stderr,
		access: consul.New(client, consul.Options{Direct: resolved, TokenSource: cfg.TokenSource})}
	if req.cache == nil {
		return fromConsul, inv.full(nil, "")
	}
	// NewClient resolved the token (file or variable) into opts.consul.
	key := inventoryCacheKey(opts.consul, cfg)
	entry, err := req.cache.load(key)
	if err != nil {
		inv.warn("ignoring the inventory cache: %v", err)
	}
	if entry != nil {
		src, why, err := inv.fromCache(entry)
		if err != nil || why == "" {
			return src, err
		}
		inv.note("cache not used: %s", why)
	} else if err == nil {
		inv.note("cache not used: no entry for this Consul, token and settings")
	}
	return fromConsul, inv.full(req.cache, key)
}

// inventoryRun carries one invocation through its steps.
type inventoryRun struct {
	ctx    context.Context
	client *api.Client
	// access is the Consul access layer over client: the cache's probes.
	access         *consul.Client
	cfg            fleet.Config
	req            inventoryRequest
	stdout, stderr io.Writer
}

func (r *inventoryRun) warn(format string, args ...any) {
	fmt.Fprintf(r.stderr, "fleetdeck inventory: warning: "+format+"\n", args...)
}

// note is said with --verbose only.
func (r *inventoryRun) note(format string, args ...any) {
	if r.req.verbose {
		fmt.Fprintf(r.stderr, "fleetdeck inventory: "+format+"\n", args...)
	}
}

// build builds the inventory of snap and returns the warnings to print.
func (r *inventoryRun) build(snap *fleet.Snapshot) (*provision.Inventory, []string) {
	skip := []string{r.cfg.InstanceKey}
	if r.cfg.InstanceKey == "" {
		skip = []string{"instance-id"}
	}
	inv, warns := provision.BuildInventory(snap, provision.InventoryOptions{SkipMetaGroupKeys: skip})
	lines := make([]string, 0, len(warns))
	for _, w := range warns {
		lines = append(lines, "fleetdeck inventory: warning: "+w.String())
	}
	for _, c := range snap.Conn {
		if c.HealthIncomplete {
			lines = append(lines, fmt.Sprintf("fleetdeck inventory: warning: datacenter %s: the ACL token (%s) may not read every check: health is incomplete — "+
				"a node may be in health_passing, with consul_health passing, while a check it cannot read fails (it needs node:read and service:read)",
				c.Datacenter, r.tokenSource()))
		}
		if c.FilteredByACL {
			lines = append(lines, fmt.Sprintf("fleetdeck inventory: warning: datacenter %s: the ACL token (%s) may not read every node and service: "+
				"hosts, roles (svc_* groups, consul_services) or health may be missing; the inventory is incomplete",
				c.Datacenter, r.tokenSource()))
		}
	}
	return inv, lines
}

// tokenSource says which token fleetdeck sent, for messages.
func (r *inventoryRun) tokenSource() string {
	if r.cfg.TokenSource == "" {
		return "none: anonymous requests"
	}
	return "from " + r.cfg.TokenSource
}

// checkVisible fails when a datacenter shows no node at all because of
// ACLs: an empty inventory would let Ansible run on nothing and report
// success. Without a token Consul filters silently (AnonymousEmpty);
// with one it says it filtered, and a datacenter always has nodes (its
// servers), so none means the token may not read any.
func (r *inventoryRun) checkVisible(snap *fleet.Snapshot) error {
	nodes := map[string]int{}
	for _, n := range snap.Nodes {
		nodes[n.Datacenter]++
	}
	for _, c := range snap.Conn {
		switch {
		case c.AnonymousEmpty:
			return fmt.Errorf("datacenter %s: no node is visible without an ACL token (Consul's ACL default policy denies anonymous reads): "+
				"give a token with node:read and service:read with --token-file, [consul] token_file, CONSUL_HTTP_TOKEN_FILE or CONSUL_HTTP_TOKEN", c.Datacenter)
		case c.FilteredByACL && nodes[c.Datacenter] == 0:
			return fmt.Errorf("datacenter %s: the ACL token %s may read no node (Consul filtered them all out): it needs node:read and service:read",
				c.Datacenter, r.tokenSource())
		}
	}
	return nil
}

// answer writes the warnings and the answer; for --list with the cache on
// it returns the output written, for the cache. sizeHint is the expected size of the
// --list output (0: unknown): growing an 18 MB buffer step by step is a
// tenth of a rebuild.
func (r *inventoryRun) answer(inv *provision.Inventory, warnings []string, sizeHint int64) ([]byte, error) {
	for _, w := range warnings {
		fmt.Fprintln(r.stderr, w)
	}
	if !r.req.list {
		return nil, inv.WriteHost(r.stdout, r.req.host)
	}
	if r.req.cache == nil {
		return nil, inv.WriteList(r.stdout)
	}
	var buf bytes.Buffer
	buf.Grow(int(sizeHint + sizeHint/16))
	if err := inv.WriteList(&buf); err != nil {
		return nil, err
	}
	if _, err := r.stdout.Write(buf.Bytes()); err != nil {
		return nil, fmt.Errorf("writing the inventory: %w", err)
	}
	return buf.Bytes(), nil
}

// full reads one snapshot and answers from it. With a cache, the read is
// bracketed by probes of the catalog index and cached only if nothing
// changed meanwhile.
func (r *inventoryRun) full(cache *inventoryCache, key string) error {
	var dcs []string
	var before []cacheDC
	var probeErr error
	if cache != nil {
		dcs = slices.Clone(r.cfg.Datacenters)
		slices.Sort(dcs)
		dcs = slices.Compact(dcs)
		if len(dcs) == 0 {
			dcs, probeErr = readDatacenters(r.ctx, r.access)
		}
		if probeErr == nil {
			before, probeErr = probeCatalog(r.ctx, r.access, r.cfg, dcs)
		}
	}
	created := time.Now()
	snap, err := fleet.Once(r.ctx, r.client, r.cfg)
	if err != nil {
		return fmt.Errorf("reading the fleet for the inventory: %w", err)
	}
	if err := r.checkVisible(snap); err != nil {
		return fmt.Errorf("reading the fleet for the inventory: %w", err)
	}
	inv, warnings := r.build(snap)
	list, err := r.answer(inv, warnings, 0)
	if err != nil || cache == nil {
		return err
	}
	if probeErr != nil {
		r.note("not cached: %v", probeErr)
		return nil
	}
	if why := cacheable(snap, dcs); why != "" {
		r.note("not cached: %s", why)
		return nil
	}
	// The content is read after the snapshot: if the index is the same
	// before the snapshot, in the content's answer and after it, the
	// content is that of the snapshot.
	content, err := contentOf(r.ctx, r.access, r.cfg, dcs)
	if err != nil {
		r.note("not cached: %v", err)
		return nil
	}
	after, err := probeCatalog(r.ctx, r.access, r.cfg, dcs)
	if err != nil {
		r.note("not cached: %v", err)
		return nil
	}
	if why := compareProbes(before, after); why != "" {
		r.note("not cached: changed during the read: %s", why)
		return nil
	}
	for i := range before {
		if content[i].filtered {
			r.note("not cached: the ACL token may not read every node and service in %s", before[i].Name)
			return nil
		}
		if content[i].Index != before[i].Index {
			r.note("not cached: changed during the read: the catalog of %s changed (index %d, was %d)", before[i].Name, content[i].Index, before[i].Index)
			return nil
		}
		before[i].Nodes, before[i].Services = content[i].Nodes, content[i].Services
	}
	nodes, err := encodeNodes(cacheableNodes(snap.Nodes))
	if err != nil {
		r.warn("not caching the inventory: %v", err)
		return nil
	}
	h := cacheHeader{Key: key, Created: created, Datacenters: before, Warnings: warnings}
	if r.req.list {
		h.ListChecks = fingerprint(failingOf(snap.Nodes))
	}
	if err := cache.store(h, nodes, list); err != nil {
		r.warn("%v", err)
		return nil
	}
	r.note("read the catalog; cached for up to %v", cache.maxAge)
	return nil
}

// cacheable says why a full read must not be cached, or "" when it may.
func cacheable(snap *fleet.Snapshot, dcs []string) string {
	if !slices.Equal(snap.Datacenters, dcs) {
		return "the datacenters changed during the read"
	}
	for _, c := range snap.Conn {
		switch {
		// FilteredByACL includes the other two today; each is named so
		// that none is ever cached whatever fleet folds into which.
		case c.AnonymousEmpty:
			return fmt.Sprintf("no node of %s is visible without a token", c.Datacenter)
		case c.HealthIncomplete:
			return fmt.Sprintf("the ACL token may not read every check in %s", c.Datacenter)
		case c.FilteredByACL:
			return fmt.Sprintf("the ACL token may not read everything in %s", c.Datacenter)
		case c.Status != fleet.Connected:
			return fmt.Sprintf("datacenter %s is %s", c.Datacenter, c.Status)
		}
	}
	return ""
}

// fromCache answers from entry if it is still exact. why says why it was
// not used ("" when it was); err is an error writing the answer.
func (r *inventoryRun) fromCache(e *cacheEntry) (src inventorySource, why string, err error) {
	h := e.header
	now := r.req.cache.now()
	if age := now.Sub(h.Created); age > r.req.cache.maxAge || age < -time.Minute {
		return fromConsul, fmt.Sprintf("the entry is %v old (max %v)", age.Round(time.Second), r.req.cache.maxAge), nil
	}
	names := make([]string, len(h.Datacenters))
	for i, dc := range h.Datacenters {
		names[i] = dc.Name
	}
	// The failing checks (~40 ms at 10k nodes, Consul filtering every
	// check) and the catalog's content (the node list, ~4 MB at 10k)
	// at once, then the catalog probes (a millisecond each): the index was
	// the same when the entry was written and is the same after both
	// reads, so both belong to exactly the cached catalog.
	var (
		wg                                sync.WaitGroup
		dcs                               []string
		dcErr, contentErr, probeErr, fErr error
		content, probes                   []cacheDC
		failing                           fleet.FailingChecks
		conn                              []fleet.ConnState
	)
	start := time.Now()
	if len(r.cfg.Datacenters) == 0 {
		wg.Go(func() { dcs, dcErr = readDatacenters(r.ctx, r.access) })
	}
	wg.Go(func() { content, contentErr = contentOf(r.ctx, r.access, r.cfg, names) })
	failing, conn, fErr = fleet.ReadFailingChecks(r.ctx, r.client, r.cfg, names)
	wg.Wait()
	if fErr == nil && contentErr == nil {
		probes, probeErr = probeCatalog(r.ctx, r.access, r.cfg, names)
	}
	validated := time.Since(start)
	if err := errors.Join(dcErr, contentErr, probeErr, fErr); err != nil {
		return fromConsul, "validating it: " + err.Error(), nil
	}
	if len(r.cfg.Datacenters) == 0 && !slices.Equal(dcs, names) {
		return fromConsul, "the datacenters changed", nil
	}
	// A token that lost rights reads fewer servers too: name the cause.
	for _, c := range content {
		if c.filtered {
			return fromConsul, fmt.Sprintf("the ACL token may not read every node and service in %s", c.Name), nil
		}
	}
	if why := compareProbes(h.Datacenters, probes); why != "" {
		return fromConsul, why, nil
	}
	if why := compareContent(h.Datacenters, content); why != "" {
		return fromConsul, why, nil
	}
	for _, c := range conn {
		if c.FilteredByACL || c.HealthIncomplete {
			return fromConsul, fmt.Sprintf("the ACL token may not read every check in %s", c.Datacenter), nil
		}
	}
	fp := fingerprint(failing)
	if r.req.list && h.ListChecks == fp {
		list, err := e.checkedList()
		if err != nil {
			r.warn("ignoring the inventory cache: %v", err)
			return fromConsul, "damaged", nil
		}
		for _, w := range h.Warnings {
			fmt.Fprintln(r.stderr, w)
		}
		if _, err := r.stdout.Write(list); err != nil {
			return fromCache, "", fmt.Errorf("writing the inventory: %w", err)
		}
		r.note("served from the cache (catalog unchanged, health unchanged; validated in %v)", validated.Round(time.Millisecond))
		return fromCache, "", nil
	}
	cached, err := e.decodeNodes()
	if err != nil {
		r.warn("ignoring the inventory cache: %v", err)
		return fromConsul, "damaged", nil
	}
	snap := fleet.NewSnapshot(0, now, failing.Apply(cached), conn, nil)
	inv, warnings := r.build(snap)
	list, err := r.answer(inv, warnings, h.ListLen)
	if err != nil {
		return fromCachedNodes, "", err
	}
	r.note("served from the cached catalog with fresh health (validated in %v)", validated.Round(time.Millisecond))
	if r.req.list {
		h.ListChecks, h.Warnings = fp, warnings
		if err := r.req.cache.store(h, e.nodes, list); err != nil {
			r.warn("%v", err)
		}
	}
	return fromCachedNodes, "", nil
}
