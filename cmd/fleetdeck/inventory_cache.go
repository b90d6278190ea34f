package main

// The validated inventory cache.
//
// Ansible runs the inventory script once per ansible-playbook run. At
// 10,000 nodes a full read is ~55 requests and ~2.5 s, nearly all of it
// Consul encoding the 50 per-service catalog answers, and in most runs the
// catalog has not changed since the last one. So, like Ansible's own
// inventory cache, `fleetdeck inventory` keeps what it read — but it never
// serves it unchecked. Each entry holds the nodes of one full read (with
// their services, without their checks), the --list output built from
// them, and per datacenter the catalog's raft index and the identity of
// the cluster. Before an entry is used, a few small requests check it:
//
//   - the index: in Consul 1.15 X-Consul-Index of /v1/catalog/nodes is the
//     node table's index entry, which every write to a node *or* a service
//     instance raises (catalogInsertNode, catalogInsertService,
//     deleteServiceTxn and deleteNodeTxn all call
//     catalogUpdateNodesIndexes); check updates do not touch it. Asking
//     with a node-meta filter nothing matches makes Consul look the filter
//     up in its meta index, so the answer is an empty list with the same
//     header. (/v1/catalog/node/<missing> does not work: for a node that
//     does not exist Consul 1.15 answers the node-extinction index, or 1.)
//   - the cluster: the node IDs of the servers behind the "consul" service
//     and the cluster id in the Connect CA's trust domain (made once per
//     raft state; readable without ACL rights; absent when Connect is
//     off), so a new cluster at the same address whose index happens to
//     equal the old one is not mistaken for it;
//   - the content: the SHA-256 sums of the whole node list (~4 MB at 10k
//     nodes, each node with its ID, address, meta and create/modify
//     indexes) and of the service list, read at the same time as the
//     failing checks. Server node IDs survive a rebuild that keeps the
//     node-id file, and the cluster id is absent without Connect: a
//     restarted Consul with other nodes written up to the cached index
//     was served from the cache before these sums (see contentOf);
//   - with no datacenters configured, the datacenter list;
//   - health is not validated but read anew every time: the failing checks
//     (one filtered request per datacenter, ~40 ms at 10k nodes), exactly
//     what the full read takes health from. Check outputs change all the
//     time, so an index over checks would make the cache useless.
//
// Any mismatch, any error, an index that moved (forwards or back), an ACL
// filter (on the checks, the nodes or the services), or an entry older
// than the maximum age means a full read, which
// rewrites the entry. A full read is only cached when the index was the
// same just before and just after it (no node or service changed while it
// ran; the content sums are read after the snapshot, at that same
// index), every datacenter was connected (not stale), no answer was
// filtered by ACLs and the nodes were not read anonymously into an empty
// list (an ACL default policy of deny: the inventory then fails): a token
// whose permissions change without a catalog write would otherwise keep
// seeing its old view until the maximum age.
// The probes use the same consistency mode as the full read, so a served
// entry is what a full read through the same agent would return.
//
// If the failing checks are the ones the cached --list output was built
// with (same fingerprint), that output is served as is; otherwise the
// cached nodes get the fresh checks and the inventory is built again, as a
// full read would build it, and the entry's output is replaced.
//
// Entries live in $XDG_CACHE_HOME/fleetdeck/inventory (directory 0700,
// files 0600), one per Consul address, datacenter set, token (hashed; the
// token itself is never written), fleet settings and fleetdeck build. They
// are written to a temporary file and renamed into place, so concurrent
// runs each see a whole entry; they carry SHA-256 sums, so a torn or
// damaged file is noticed, reported on stderr and rewritten.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/gob"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/fleetdeck/fleetdeck/fleet"
	"github.com/fleetdeck/fleetdeck/internal/consul"
)

// defaultInventoryCacheMaxAge bounds how long one full read is reused
// even when every check passes: a safety net for what no index shows
// (ACL policy edits, a Consul bug).
const defaultInventoryCacheMaxAge = 10 * time.Minute

const (
	// cacheFormat changes with the file layout or the meaning of a field.
	cacheFormat = 2
	cacheMagic  = "fleetdeck inventory cache\n"
	cacheSuffix = ".inv"
	cacheTemp   = ".tmp-"
	// Entries of other keys (an old token, another Consul) unused this
	// long are removed when an entry is written; so are temporary files
	// left by a crashed writer.
	cachePruneAfter     = 24 * time.Hour
	cacheTempPruneAfter = time.Hour
	// A header is a few hundred bytes plus the warnings; this only stops
	// a damaged length from allocating gigabytes.
	cacheMaxHeader = 64 << 20
)

// inventoryCache is where and for how long inventories are kept.
type inventoryCache struct {
	dir    string
	maxAge time.Duration
	now    func() time.Time
}

// defaultInventoryCacheDir is $XDG_CACHE_HOME/fleetdeck/inventory.
func defaultInventoryCacheDir() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("finding the user cache directory: %w", err)
	}
	return filepath.Join(dir, "fleetdeck", "inventory"), nil
}

// cacheDC is what an entry depends on in one datacenter.
type cacheDC struct {
	Name string
	// Index is the X-Consul-Index of the datacenter's node list (see the
	// comment at the top of this file and consul.CatalogIdentity).
	Index uint64
	// Servers is the sorted node IDs of the datacenter's Consul servers,
	// comma-separated.
	Servers string
	// Cluster is the trust domain of the datacenter's Connect CA,
	// "<cluster id>.consul" ("" when Connect is off; see
	// consul.CatalogIdentity).
	Cluster string
	// Nodes and Services are the SHA-256 sums of the node list and the
	// service list: what the catalog holds, not just how often it was
	// written (see consul.CatalogContent). Empty in the cheap probes.
	Nodes, Services string
	// filtered: Consul said the content read left things out (ACLs).
	filtered bool
}

// cacheHeader describes an entry. It is JSON at the start of the file;
// the gob-encoded nodes and the --list output follow it.
type cacheHeader struct {
	Format int
	// Key is the entry's key (also its file name), against renamed files.
	Key string
	// Created is when the catalog was read; the age counts from here.
	Created     time.Time
	Datacenters []cacheDC
	NodesLen    int64
	NodesSum    string
	// ListLen and ListSum describe the --list output, built with the
	// failing checks whose fingerprint is ListChecks. ListChecks is empty
	// when the entry has no output (it was written by --host).
	ListLen    int64
	ListSum    string
	ListChecks string
	// Warnings are the stderr lines that go with the output.
	Warnings []string
}

// cacheEntry is a loaded entry. Its sections are checked against their
// sums when used, so a damaged section that is not needed costs nothing.
type cacheEntry struct {
	path   string
	header cacheHeader
	nodes  []byte
	list   []byte
}

// inventoryCacheKey identifies what an entry may be reused for: the same
// Consul, datacenters, token and fleet settings, and the same fleetdeck
// build (a new build may render the inventory differently). client must
// have been made from c: api.NewClient resolves the token into it.
func inventoryCacheKey(c *api.Config, cfg fleet.Config) string {
	h := newFieldHash()
	field := h.field
	field(strconv.Itoa(cacheFormat))
	field(buildIdentity())
	for _, s := range []string{c.Scheme, c.Address, c.PathPrefix, c.Namespace, c.Partition} {
		field(s)
	}
	// The token is hashed before it is mixed in; neither it nor its hash
	// is stored anywhere.
	tok := sha256.Sum256([]byte(c.Token))
	field(string(tok[:]))
	dcs := slices.Clone(cfg.Datacenters)
	slices.Sort(dcs)
	field(strconv.Itoa(len(dcs)))
	for _, dc := range slices.Compact(dcs) {
		field(dc)
	}
	field(strconv.Itoa(len(cfg.GroupKeys)))
	for _, k := range cfg.GroupKeys {
		field(k)
	}
	for _, s := range []string{cfg.InstanceKey, cfg.ZoneKey, cfg.ImageKey, strconv.FormatBool(cfg.Consistent)} {
		field(s)
	}
	return h.sum()
}

// fieldHash is a SHA-256 over length-prefixed fields, so that "ab", "c"
// and "a", "bc" differ.
type fieldHash struct {
	h hash.Hash
	n [binary.MaxVarintLen64]byte
}

func newFieldHash() *fieldHash { return &fieldHash{h: sha256.New()} }

func (f *fieldHash) field(s string) {
	f.h.Write(f.n[:binary.PutUvarint(f.n[:], uint64(len(s)))])
	f.h.Write([]byte(s))
}

// sum is the hex sum of the fields so far.
func (f *fieldHash) sum() string { return hex.EncodeToString(f.h.Sum(nil)) }

// buildIdentity names this fleetdeck executable: its VCS stamp plus the
// file's size and modification time, which change with every build (a
// `go build` of a modified tree has the same revision).
func buildIdentity() string {
	var b strings.Builder
	if bi, ok := debug.ReadBuildInfo(); ok {
		b.WriteString(bi.Main.Version)
		for _, s := range bi.Settings {
			if strings.HasPrefix(s.Key, "vcs.") {
				fmt.Fprintf(&b, " %s=%s", s.Key, s.Value)
			}
		}
	}
	if exe, err := os.Executable(); err == nil {
		if fi, err := os.Stat(exe); err == nil {
			fmt.Fprintf(&b, " %s %d %d", exe, fi.Size(), fi.ModTime().UnixNano())
		}
	}
	return b.String()
}

func (c *inventoryCache) path(key string) string { return filepath.Join(c.dir, key+cacheSuffix) }

// load reads the entry for key. A missing entry is (nil, nil); one that
// cannot be read or is damaged is an error for the caller to report.
func (c *inventoryCache) load(key string) (*cacheEntry, error) {
	p := c.path(key)
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", p, err)
	}
	e := &cacheEntry{path: p}
	rest, ok := bytes.CutPrefix(data, []byte(cacheMagic))
	if !ok || len(rest) < 4 {
		return nil, fmt.Errorf("%s is not an inventory cache file", p)
	}
	hlen := binary.BigEndian.Uint32(rest)
	rest = rest[4:]
	if hlen > cacheMaxHeader || int64(hlen) > int64(len(rest)) {
		return nil, fmt.Errorf("%s is truncated or damaged (header length %d)", p, hlen)
	}
	if err := json.Unmarshal(rest[:hlen], &e.header); err != nil {
		return nil, fmt.Errorf("%s is damaged: decoding its header: %w", p, err)
	}
	rest = rest[hlen:]
	h := e.header
	switch {
	case h.Format != cacheFormat:
		return nil, fmt.Errorf("%s has format %d, want %d", p, h.Format, cacheFormat)
	case h.Key != key:
		return nil, fmt.Errorf("%s holds the entry of another key", p)
	case h.NodesLen < 0 || h.ListLen < 0 || h.NodesLen+h.ListLen != int64(len(rest)):
		return nil, fmt.Errorf("%s is truncated or damaged (%d bytes of data, header says %d + %d)", p, len(rest), h.NodesLen, h.ListLen)
	}
	e.nodes, e.list = rest[:h.NodesLen], rest[h.NodesLen:]
	return e, nil
}

// sum is the hex SHA-256 of b.
func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// decodeNodes checks and decodes the entry's nodes.
func (e *cacheEntry) decodeNodes() ([]*fleet.Node, error) {
	if sum(e.nodes) != e.header.NodesSum {
		return nil, fmt.Errorf("%s is damaged: the nodes do not match their checksum", e.path)
	}
	var nodes []*fleet.Node
	if err := gob.NewDecoder(bytes.NewReader(e.nodes)).Decode(&nodes); err != nil {
		return nil, fmt.Errorf("%s is damaged: decoding its nodes: %w", e.path, err)
	}
	return nodes, nil
}

// checkedList returns the entry's --list output after checking its sum.
func (e *cacheEntry) checkedList() ([]byte, error) {
	if sum(e.list) != e.header.ListSum {
		return nil, fmt.Errorf("%s is damaged: the --list output does not match its checksum", e.path)
	}
	return e.list, nil
}

// cacheableNodes returns copies of nodes without what is read anew at
// every use (checks, health) or means nothing later (ChangedAt).
func cacheableNodes(nodes []*fleet.Node) []*fleet.Node {
	out := make([]*fleet.Node, len(nodes))
	for i, n := range nodes {
		c := *n
		c.Checks, c.Health, c.ChangedAt = nil, fleet.HealthPassing, time.Time{}
		out[i] = &c
	}
	return out
}

// encodeNodes gob-encodes nodes for an entry.
func encodeNodes(nodes []*fleet.Node) ([]byte, error) {
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(nodes); err != nil {
		return nil, fmt.Errorf("encoding the nodes: %w", err)
	}
	return buf.Bytes(), nil
}

// store writes an entry atomically: a temporary file in the same
// directory renamed over the old entry. It does not fsync: a file torn
// by a crash fails its checksums and is replaced at the next run.
func (c *inventoryCache) store(h cacheHeader, nodes, list []byte) error {
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return fmt.Errorf("creating the inventory cache directory: %w", err)
	}
	// MkdirAll leaves an existing directory's mode alone; the entries
	// describe the whole fleet, so only the user may list or replace them.
	if err := os.Chmod(c.dir, 0o700); err != nil {
		return fmt.Errorf("restricting the inventory cache directory: %w", err)
	}
	h.Format = cacheFormat
	h.NodesLen, h.NodesSum = int64(len(nodes)), sum(nodes)
	h.ListLen, h.ListSum = int64(len(list)), sum(list)
	hdr, err := json.Marshal(h)
	if err != nil {
		return fmt.Errorf("encoding the cache header: %w", err)
	}
	f, err := os.CreateTemp(c.dir, cacheTemp+"*") // mode 0600
	if err != nil {
		return fmt.Errorf("creating an inventory cache file: %w", err)
	}
	tmp := f.Name()
	var lenBuf [4]byte
	binary.BigEndian.PutUint32(lenBuf[:], uint32(len(hdr)))
	werr := errors.Join(
		writeAll(f, []byte(cacheMagic), lenBuf[:], hdr, nodes, list),
		f.Close(),
	)
	if werr == nil {
		werr = os.Rename(tmp, c.path(h.Key))
	}
	if werr != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing the inventory cache: %w", werr)
	}
	c.prune(h.Key)
	return nil
}

func writeAll(f *os.File, parts ...[]byte) error {
	for _, p := range parts {
		if _, err := f.Write(p); err != nil {
			return err
		}
	}
	return nil
}

// prune removes other keys' entries and temporary files that have not
// been touched for a long time. Errors are ignored: it is housekeeping.
func (c *inventoryCache) prune(keep string) {
	ents, err := os.ReadDir(c.dir)
	if err != nil {
		return
	}
	now := c.now()
	for _, de := range ents {
		name := de.Name()
		var after time.Duration
		switch {
		case strings.HasPrefix(name, cacheTemp):
			after = cacheTempPruneAfter
		case strings.HasSuffix(name, cacheSuffix) && name != keep+cacheSuffix:
			after = cachePruneAfter
		default:
			continue
		}
		if fi, err := de.Info(); err == nil && fi.Mode().IsRegular() && now.Sub(fi.ModTime()) > after {
			os.Remove(filepath.Join(c.dir, name))
		}
	}
}

// The cache's reads of Consul are the access layer's catalog probes
// (internal/consul, catalog.go), with the full read's consistency mode so
// that they see what it sees; the functions below turn their answers into
// an entry's records.

// readDatacenters lists the datacenters the agent knows, sorted, as the
// full read does when none are configured.
func readDatacenters(ctx context.Context, c *consul.Client) ([]string, error) {
	dcs, _, err := c.Datacenters(ctx, consul.Query{})
	if err != nil {
		return nil, fmt.Errorf("listing datacenters: %w", err)
	}
	slices.Sort(dcs)
	return dcs, nil
}

// probeCatalog reads, for each datacenter in dcs, the node list's index,
// the servers' node IDs and the cluster's identity: three small requests
// per datacenter, all at once.
func probeCatalog(ctx context.Context, c *consul.Client, cfg fleet.Config, dcs []string) ([]cacheDC, error) {
	ids, err := c.CatalogIdentities(ctx, dcs, consul.ReadConsistency(cfg.Consistent))
	if err != nil {
		return nil, err
	}
	out := make([]cacheDC, len(ids))
	for i, id := range ids {
		out[i] = cacheDC{Name: id.Datacenter, Index: id.Index, Servers: strings.Join(id.ServerIDs, ","), Cluster: id.Cluster}
	}
	return out, nil
}

// contentOf reads, for each datacenter in dcs, the sums of the whole node
// list and of the service list, with the node list's index: read every
// time, since the index and the cluster's identity alone cannot tell two
// catalogs apart (see consul.CatalogContents).
func contentOf(ctx context.Context, c *consul.Client, cfg fleet.Config, dcs []string) ([]cacheDC, error) {
	contents, err := c.CatalogContents(ctx, dcs, consul.ReadConsistency(cfg.Consistent))
	if err != nil {
		return nil, err
	}
	out := make([]cacheDC, len(contents))
	for i, ct := range contents {
		out[i] = cacheDC{Name: ct.Datacenter, Index: ct.Index, Nodes: ct.Nodes, Services: ct.Services, filtered: ct.Filtered}
	}
	return out, nil
}

// compareProbes says why got does not match the entry's want, or "" when
// it does.
func compareProbes(want, got []cacheDC) string {
	if len(want) != len(got) {
		return "the datacenters changed"
	}
	for i, w := range want {
		g := got[i]
		switch {
		case w.Name != g.Name:
			return "the datacenters changed"
		case w.Servers != g.Servers:
			return fmt.Sprintf("datacenter %s has other Consul servers (another cluster?)", w.Name)
		case w.Cluster != g.Cluster:
			return fmt.Sprintf("datacenter %s belongs to another Consul cluster (cluster id %q, was %q)", w.Name, g.Cluster, w.Cluster)
		case g.Index < w.Index:
			return fmt.Sprintf("the catalog index of %s went back from %d to %d (a restored or new cluster?)", w.Name, w.Index, g.Index)
		case g.Index != w.Index:
			return fmt.Sprintf("the catalog of %s changed (index %d, was %d)", w.Name, g.Index, w.Index)
		}
	}
	return ""
}

// compareContent says why the content read got does not match the
// entry's want, or "" when it does.
func compareContent(want, got []cacheDC) string {
	if len(want) != len(got) {
		return "the datacenters changed"
	}
	for i, w := range want {
		g := got[i]
		switch {
		case w.Name != g.Name:
			return "the datacenters changed"
		case g.filtered:
			return fmt.Sprintf("the ACL token may not read every node and service in %s", w.Name)
		case g.Index != w.Index:
			return fmt.Sprintf("the catalog of %s changed (index %d, was %d)", w.Name, g.Index, w.Index)
		case g.Nodes != w.Nodes:
			return fmt.Sprintf("the node list of %s is not the cached one although its index is the same (another catalog?)", w.Name)
		case g.Services != w.Services:
			return fmt.Sprintf("the service list of %s is not the cached one although its index is the same (another catalog?)", w.Name)
		}
	}
	return ""
}

// failingOf returns the failing checks of a full read's nodes, keyed as
// fleet.ReadFailingChecks keys them.
func failingOf(nodes []*fleet.Node) fleet.FailingChecks {
	out := fleet.FailingChecks{}
	for _, n := range nodes {
		if fc := n.FailingChecks(); len(fc) > 0 {
			out[n.Key()] = fc
		}
	}
	return out
}

// fingerprint identifies a set of failing checks: equal sets (whatever
// their map order) give equal fingerprints.
func fingerprint(f fleet.FailingChecks) string {
	keys := make([]string, 0, len(f))
	for k := range f {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	h := newFieldHash()
	for _, k := range keys {
		h.field(k)
		h.field(strconv.Itoa(len(f[k])))
		for _, c := range f[k] {
			for _, s := range []string{c.ID, c.Name, c.Status.String(), c.Output, c.ServiceID, c.ServiceName} {
				h.field(s)
			}
		}
	}
	return h.sum()
}
