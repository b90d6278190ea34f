package roles

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/hashicorp/consul/api"

	"github.com/fleetdeck/fleetdeck/internal/consul"
)

// Limits of the free text of a change.
const (
	maxReasonLen = 500
	maxWhoLen    = 255
	// maxNodeLen and maxDCLen keep a run's metadata key
	// (fleetdeck.roles/<dc>/<node>) within provision's 256 bytes.
	maxNodeLen = 128
	maxDCLen   = 64
	// DefaultRequestTimeout bounds each Consul request of the store
	// (StoreConfig.Timeout): a change is a read and one transaction, and an
	// on-call engineer should hear about a silent Consul in seconds.
	DefaultRequestTimeout = 10 * time.Second
)

// ErrNothingToChange is returned (wrapped) by Set and Revert when the
// change would leave the node's roles and maintenance as they are: a new
// generation that changes nothing would only add noise to the audit
// trail. Callers that apply changes idempotently can treat it as success.
var ErrNothingToChange = errors.New("nothing to change")

// StoreConfig configures a Store.
type StoreConfig struct {
	// Prefix is [roles] kv_prefix ("": DefaultKVPrefix). A prefix without
	// a trailing '/' gets one.
	Prefix string
	// Catalog is the role catalog changes are checked against.
	Catalog *Catalog
	// Timeout bounds each request (0: DefaultRequestTimeout), within the
	// caller's context.
	Timeout time.Duration
	// Now dates changes (nil: time.Now).
	Now func() time.Time
}

// Store reads and writes nodes' desired state and its audit trail in
// Consul KV, in each node's own datacenter, through the access layer. It
// is safe for concurrent use.
type Store struct {
	c       *consul.Client
	prefix  string
	catalog *Catalog
	timeout time.Duration
	now     func() time.Time
	// beforeWrite, when set (tests only), runs between a change's read and
	// its transaction, so a test can make two changers race on the
	// check-and-set itself.
	beforeWrite func()
}

// NewStore returns a Store on c.
func NewStore(c *consul.Client, cfg StoreConfig) (*Store, error) {
	p, err := normalizePrefix(cfg.Prefix)
	if err != nil {
		return nil, err
	}
	s := &Store{c: c, prefix: p, catalog: cfg.Catalog, timeout: cfg.Timeout, now: cfg.Now}
	if s.timeout <= 0 {
		s.timeout = DefaultRequestTimeout
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s, nil
}

// Prefix is the store's KV prefix, ending in '/'.
func (s *Store) Prefix() string { return s.prefix }

// normalizePrefix checks [roles] kv_prefix: a relative KV path whose
// segments are not "." or "..", ending in '/'.
func normalizePrefix(p string) (string, error) {
	if p == "" {
		return DefaultKVPrefix, nil
	}
	if !strings.HasSuffix(p, "/") {
		p += "/"
	}
	if strings.HasPrefix(p, "/") || strings.Contains(p, "//") || strings.ContainsFunc(p, unicode.IsControl) || !utf8.ValidString(p) {
		return "", fmt.Errorf("roles kv_prefix %q: want a KV path like %q (no leading '/', no empty segment, no control characters)", p, DefaultKVPrefix)
	}
	for _, seg := range strings.Split(strings.TrimSuffix(p, "/"), "/") {
		if seg == "." || seg == ".." {
			return "", fmt.Errorf("roles kv_prefix %q: segment %q is not allowed", p, seg)
		}
	}
	return p, nil
}

// DesiredKey is node's desired record under prefix (which ends in '/').
func DesiredKey(prefix, node string) string { return prefix + "nodes/" + node }

// AuditKey is the audit record of node's generation gen under prefix; the
// generation is zero-padded to 20 digits so that keys sort by generation.
func AuditKey(prefix, node string, gen uint64) string {
	return auditPrefix(prefix, node) + fmt.Sprintf("%020d", gen)
}

// auditPrefix is the folder of node's audit records; the trailing '/'
// keeps node "web" from listing "web-2".
func auditPrefix(prefix, node string) string { return prefix + "audit/" + node + "/" }

// ValidNode checks a node name before it becomes part of a KV key. Node
// names come from Consul and are not trusted: one that could escape the
// prefix ("/", ".", "..") or that is not printable text is refused.
func ValidNode(node string) error {
	switch {
	case node == "":
		return errors.New("node name is empty")
	case len(node) > maxNodeLen:
		return fmt.Errorf("node name %.20q… is %d bytes, more than %d", node, len(node), maxNodeLen)
	case !plainName(node):
		// The name becomes a KV key, a run's metadata key
		// (fleetdeck.roles/<dc>/<node>) and an inventory host: Consul's
		// DNS-compatible names are what all three take as they are.
		return fmt.Errorf("node name %q: role reassignment needs a DNS-compatible node name (letters, digits, '-', '_' and '.', not starting with '-' or '.')", node)
	}
	return nil
}

// plainName reports whether s is made of [A-Za-z0-9._-] and starts with
// neither '-' nor '.'.
func plainName(s string) bool {
	if s == "" || s[0] == '-' || s[0] == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// validDatacenter: the desired record lives in the node's own datacenter,
// which must be named (the agent's "default" would put a node's record
// wherever the console happens to run).
func validDatacenter(dc string) error {
	switch {
	case dc == "":
		return errors.New("datacenter is empty: a node's desired state lives in its own datacenter, which must be named")
	case len(dc) > maxDCLen || !plainName(dc):
		return fmt.Errorf("datacenter name %q is not valid (Consul's are letters, digits, '-' and '_')", dc)
	}
	return nil
}

// validText checks a change's free text (reason, who): required, printable,
// bounded. It is stored byte for byte and never interpreted; control
// characters are refused because they would reach terminals and logs.
func validText(what, s string, max int) error {
	switch {
	case strings.TrimSpace(s) == "":
		return fmt.Errorf("%s is required", what)
	case len(s) > max:
		return fmt.Errorf("%s is %d bytes, more than %d", what, len(s), max)
	case !utf8.ValidString(s):
		return fmt.Errorf("%s is not UTF-8", what)
	case strings.ContainsFunc(s, unicode.IsControl):
		return fmt.Errorf("%s has control characters (newlines included)", what)
	}
	return nil
}

// Change is one change of a node's desired state.
type Change struct {
	Node, Datacenter string
	// Add and Remove are role names. Adding a role the node holds, or
	// removing a catalogued one it does not hold, does nothing for that
	// role; a role in both is an error.
	Add, Remove []string
	// Maintenance, when set, is the node's new maintenance mode; an empty
	// reason for "on" is the change's Reason.
	Maintenance *Maintenance
	// Reason (required) and Who (user@host) are recorded with the change.
	Reason, Who string
	// Expect, when not 0, is the generation the change was prepared
	// against (the one a preview showed): any other current generation is
	// a *ConflictError and nothing is written.
	Expect uint64
	// ExpectUnmanaged says the change was prepared against a node without
	// a desired record (a preview showed it unmanaged): a record found now
	// is a *ConflictError. Expect 0 alone means "no expectation".
	ExpectUnmanaged bool
	// RevertTo, when not 0, makes the change restore the roles and the
	// maintenance mode generation RevertTo recorded (the new record's
	// RevertOf); Add, Remove and Maintenance must then be empty.
	RevertTo uint64
	// ID becomes the new record's Change (see Desired.Change); "" when
	// the caller links no run to it.
	ID string
}

// expectation is what commit checks the current record against.
func (ch Change) expectation() (gen uint64, none bool) { return ch.Expect, ch.ExpectUnmanaged }

// ConflictError is a change refused because the node's desired record
// changed since it was read (another operator's change won), or since
// the generation the change expected. Nothing was written.
type ConflictError struct {
	Node, Datacenter string
	// Based is the generation the change was based on (0: none).
	Based uint64
	// Current is the record that won, re-read after the refusal; nil when
	// the record was deleted.
	Current *Desired
}

func (e *ConflictError) Error() string {
	if e.Current == nil {
		return fmt.Sprintf("node %s (%s): its desired record was deleted after generation %d was read; nothing was written: look again and retry", e.Node, e.Datacenter, e.Based)
	}
	c := e.Current
	read := fmt.Sprintf("generation %d", e.Based)
	if e.Based == 0 {
		read = "the node (no desired record)"
	}
	return fmt.Sprintf("node %s (%s) was changed by %s at %s to generation %d (%q) after %s was read; nothing was written: look again and retry",
		e.Node, e.Datacenter, c.Who, c.When.UTC().Format(time.RFC3339), c.Generation, c.Reason, read)
}

// query is a request in dc with the store's deadline.
func (s *Store) query(dc string, mode consul.Consistency) consul.Query {
	return consul.Query{Datacenter: dc, Consistency: mode, Timeout: s.timeout}
}

// Get reads node's desired record in dc (Consul's default consistency: the
// leader answers); nil means the node is unmanaged.
func (s *Store) Get(ctx context.Context, dc, node string) (*Desired, error) {
	d, _, err := s.read(ctx, dc, node, consul.Default)
	return d, err
}

// read returns node's desired record and its ModifyIndex (0: none).
func (s *Store) read(ctx context.Context, dc, node string, mode consul.Consistency) (*Desired, uint64, error) {
	if err := ValidNode(node); err != nil {
		return nil, 0, err
	}
	if err := validDatacenter(dc); err != nil {
		return nil, 0, err
	}
	key := DesiredKey(s.prefix, node)
	p, _, err := s.c.KVGet(ctx, key, s.query(dc, mode))
	if err != nil {
		return nil, 0, s.c.Describe(fmt.Sprintf("reading the desired state of node %s in %s (%s)", node, dc, key), err)
	}
	if p == nil {
		return nil, 0, nil
	}
	d, err := decodeRecord(key, p.Value, node, dc, 0)
	if err != nil {
		return nil, 0, err
	}
	return d, p.ModifyIndex, nil
}

// decodeRecord decodes a desired or audit record read from key and checks
// that it is about node in dc (and, for an audit record, generation gen).
// A corrupt value is an error naming the key, to fix or delete by hand.
func decodeRecord(key string, value []byte, node, dc string, gen uint64) (*Desired, error) {
	var d Desired
	bad := func(why string) error {
		return fmt.Errorf("KV key %s holds no valid record (%s): fix or delete it", key, why)
	}
	if err := json.Unmarshal(value, &d); err != nil {
		return nil, bad(err.Error())
	}
	switch {
	case d.Node != node:
		return nil, bad(fmt.Sprintf("it is about node %q", d.Node))
	case d.Datacenter != dc:
		return nil, bad(fmt.Sprintf("it is about datacenter %q", d.Datacenter))
	case d.Generation == 0:
		return nil, bad("generation 0")
	case gen != 0 && d.Generation != gen:
		return nil, bad(fmt.Sprintf("it records generation %d", d.Generation))
	}
	for _, r := range d.Roles {
		if err := ValidName(r); err != nil {
			return nil, bad(err.Error())
		}
	}
	return &d, nil
}

// History returns every audit record of node in dc, oldest first. Records
// that cannot be decoded are left out and named in the error, which comes
// with the others.
func (s *Store) History(ctx context.Context, dc, node string) ([]Desired, error) {
	if err := ValidNode(node); err != nil {
		return nil, err
	}
	if err := validDatacenter(dc); err != nil {
		return nil, err
	}
	folder := auditPrefix(s.prefix, node)
	pairs, _, err := s.c.KVList(ctx, folder, s.query(dc, consul.Default))
	if err != nil {
		return nil, s.c.Describe(fmt.Sprintf("reading the audit trail of node %s in %s (%s)", node, dc, folder), err)
	}
	var out []Desired
	var errs []error
	for _, p := range pairs {
		gen, err := strconv.ParseUint(strings.TrimPrefix(p.Key, folder), 10, 64)
		if err != nil || gen == 0 {
			errs = append(errs, fmt.Errorf("KV key %s is not an audit record (its name is no generation)", p.Key))
			continue
		}
		d, err := decodeRecord(p.Key, p.Value, node, dc, gen)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, *d)
	}
	slices.SortFunc(out, func(a, b Desired) int { return cmp.Compare(a.Generation, b.Generation) })
	return out, errors.Join(errs...)
}

// List returns the desired records of every managed node of dc, sorted
// by node, in one KV read (for the console). Records that cannot be
// decoded are left out and named in the error, which comes with the
// others: one corrupt key must not hide the fleet.
func (s *Store) List(ctx context.Context, dc string) ([]Desired, error) {
	out, _, err := s.ListAt(ctx, dc, 0, 0)
	return out, err
}

// ListAt is List as a blocking query: with index > 0 it answers when the
// records have changed since index or wait has passed (the deployment
// server follows the desired state this way, one request per change
// however many nodes there are). It returns the KV index to wait on next.
func (s *Store) ListAt(ctx context.Context, dc string, index uint64, wait time.Duration) ([]Desired, uint64, error) {
	if err := validDatacenter(dc); err != nil {
		return nil, 0, err
	}
	folder := s.prefix + "nodes/"
	q := s.query(dc, consul.Default)
	if index > 0 {
		// Timeout 0: consul.BlockingTimeout(wait) outlasts the wait.
		q.WaitIndex, q.WaitTime, q.Timeout = index, wait, 0
	}
	pairs, meta, err := s.c.KVList(ctx, folder, q)
	if err != nil {
		return nil, 0, s.c.Describe(fmt.Sprintf("listing the desired state of %s (%s)", dc, folder), err)
	}
	var out []Desired
	var errs []error
	for _, p := range pairs {
		node := strings.TrimPrefix(p.Key, folder)
		if err := ValidNode(node); err != nil {
			errs = append(errs, fmt.Errorf("KV key %s is not a desired record: %w", p.Key, err))
			continue
		}
		d, err := decodeRecord(p.Key, p.Value, node, dc, 0)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, *d)
	}
	slices.SortFunc(out, func(a, b Desired) int { return strings.Compare(a.Node, b.Node) })
	return out, meta.LastIndex, errors.Join(errs...)
}

// Set records ch as node's next generation: one consistent read, then one
// transaction (check-and-set of the desired record on the ModifyIndex read
// — 0 when there is none, meaning it must not exist — and creation of
// the generation's audit record, which must not exist). Refused changes
// (bad names, unknown roles, no reason, nothing to change) write nothing.
// Losing a race is a *ConflictError naming who won.
func (s *Store) Set(ctx context.Context, ch Change) (*Desired, error) {
	next, err := s.builder(ctx, ch)
	if err != nil {
		return nil, err
	}
	_, d, err := s.commit(ctx, ch, next, true)
	return d, err
}

// Plan returns node's current record (nil: unmanaged) and the record
// Set(ch) would write now, without writing anything, with Set's checks
// and refusals: the preview of a change. To commit what was previewed,
// Set the change with Expect set to the current generation shown.
func (s *Store) Plan(ctx context.Context, ch Change) (cur, next *Desired, err error) {
	build, err := s.builder(ctx, ch)
	if err != nil {
		return nil, nil, err
	}
	return s.commit(ctx, ch, build, false)
}

// builder is change for a plain change and revertTo for a revert.
func (s *Store) builder(ctx context.Context, ch Change) (func(cur *Desired) (Desired, error), error) {
	if ch.RevertTo == 0 {
		return s.change(ch)
	}
	if len(ch.Add) > 0 || len(ch.Remove) > 0 || ch.Maintenance != nil {
		return nil, fmt.Errorf("node %s: a revert restores generation %d as it was: it takes no roles to add or remove and no maintenance mode", ch.Node, ch.RevertTo)
	}
	return s.revertTo(ctx, ch)
}

// change checks what can be checked of ch without reading KV and returns
// the function that builds the next record from the current one.
func (s *Store) change(ch Change) (func(cur *Desired) (Desired, error), error) {
	if err := s.validChange(ch.Node, ch.Datacenter, ch.Reason, ch.Who); err != nil {
		return nil, err
	}
	if err := validRoleNames("add", ch.Add); err != nil {
		return nil, err
	}
	if err := validRoleNames("remove", ch.Remove); err != nil {
		return nil, err
	}
	if both := intersect(ch.Add, ch.Remove); len(both) > 0 {
		return nil, fmt.Errorf("node %s: %s both added and removed", ch.Node, strings.Join(both, ", "))
	}
	if err := s.catalog.Validate(ch.Add); err != nil {
		return nil, fmt.Errorf("node %s: %w", ch.Node, err)
	}
	maint := ch.Maintenance
	if maint != nil {
		m := *maint
		if !m.On {
			m.Reason = ""
		} else if m.Reason == "" {
			m.Reason = ch.Reason
		} else if err := validText("maintenance reason", m.Reason, maxReasonLen); err != nil {
			return nil, fmt.Errorf("node %s: %w", ch.Node, err)
		}
		maint = &m
	}
	if len(ch.Add) == 0 && len(ch.Remove) == 0 && maint == nil {
		return nil, fmt.Errorf("node %s: %w: no role to add or remove and no maintenance mode given", ch.Node, ErrNothingToChange)
	}
	return func(cur *Desired) (Desired, error) {
		var held []string
		next := Desired{}
		if cur != nil {
			held = cur.Roles
			next.Maintenance = cur.Maintenance
		}
		// Removing a role neither held nor catalogued is a typo, not a
		// no-op: say so rather than recording nothing for it.
		var stray []string
		for _, r := range ch.Remove {
			if !slices.Contains(held, r) {
				stray = append(stray, r)
			}
		}
		if err := s.catalog.Validate(stray); err != nil {
			return Desired{}, err
		}
		next.Roles = sortedDistinct(slices.DeleteFunc(slices.Concat(held, ch.Add), func(r string) bool { return slices.Contains(ch.Remove, r) }))
		if maint != nil {
			next.Maintenance = *maint
		}
		next.Reason, next.Who = ch.Reason, ch.Who
		return next, nil
	}, nil
}

// Revert records, as node's next generation, the roles and maintenance
// mode its generation toGen had (RevertOf = toGen), with the rules and
// the single transaction of Set: Set(Change{RevertTo: toGen, …}).
func (s *Store) Revert(ctx context.Context, dc, node string, toGen uint64, reason, who string) (*Desired, error) {
	if err := s.validChange(node, dc, reason, who); err != nil {
		return nil, err
	}
	if toGen == 0 {
		return nil, fmt.Errorf("node %s: revert to generation 0: generations count from 1", node)
	}
	return s.Set(ctx, Change{Node: node, Datacenter: dc, RevertTo: toGen, Reason: reason, Who: who})
}

// revertTo reads generation ch.RevertTo from node's audit trail and
// returns the builder of the record that restores it.
func (s *Store) revertTo(ctx context.Context, ch Change) (func(cur *Desired) (Desired, error), error) {
	node, dc, toGen := ch.Node, ch.Datacenter, ch.RevertTo
	if err := s.validChange(node, dc, ch.Reason, ch.Who); err != nil {
		return nil, err
	}
	key := AuditKey(s.prefix, node, toGen)
	p, _, err := s.c.KVGet(ctx, key, s.query(dc, consul.Consistent))
	if err != nil {
		return nil, s.c.Describe(fmt.Sprintf("reading generation %d of node %s in %s (%s)", toGen, node, dc, key), err)
	}
	if p == nil {
		return nil, fmt.Errorf("node %s in %s has no generation %d in its audit trail (%s)", node, dc, toGen, key)
	}
	old, err := decodeRecord(key, p.Value, node, dc, toGen)
	if err != nil {
		return nil, err
	}
	return func(*Desired) (Desired, error) {
		return Desired{Roles: sortedDistinct(old.Roles), Maintenance: old.Maintenance, Reason: ch.Reason, Who: ch.Who, RevertOf: toGen}, nil
	}, nil
}

func (s *Store) validChange(node, dc, reason, who string) error {
	if err := ValidNode(node); err != nil {
		return err
	}
	if err := validDatacenter(dc); err != nil {
		return fmt.Errorf("node %s: %w", node, err)
	}
	if err := validText("reason", reason, maxReasonLen); err != nil {
		return fmt.Errorf("node %s: %w", node, err)
	}
	if err := validText("who", who, maxWhoLen); err != nil {
		return fmt.Errorf("node %s: %w", node, err)
	}
	return nil
}

// commit reads node's record (consistent: a check-and-set based on a stale
// read would only fail later), builds the next one with next, checks it
// and, when write is set, writes it with its audit record in one
// transaction. It returns the record read and the next one.
func (s *Store) commit(ctx context.Context, ch Change, next func(cur *Desired) (Desired, error), write bool) (*Desired, *Desired, error) {
	node, dc := ch.Node, ch.Datacenter
	expect, none := ch.expectation()
	cur, index, err := s.read(ctx, dc, node, consul.Consistent)
	if err != nil {
		return nil, nil, err
	}
	base := uint64(0)
	if cur != nil {
		base = cur.Generation
	}
	if (expect != 0 && base != expect) || (none && cur != nil) {
		return nil, nil, &ConflictError{Node: node, Datacenter: dc, Based: expect, Current: cur}
	}
	d, err := next(cur)
	if err != nil {
		return nil, nil, fmt.Errorf("node %s: %w", node, err)
	}
	if cur != nil && slices.Equal(d.Roles, cur.Roles) && d.Maintenance == cur.Maintenance {
		return nil, nil, fmt.Errorf("node %s: %w: generation %d already has roles [%s] and maintenance %s", node, ErrNothingToChange, cur.Generation, strings.Join(cur.Roles, ", "), onOff(cur.Maintenance.On))
	}
	if cur == nil && len(d.Roles) == 0 && !d.Maintenance.On {
		return nil, nil, fmt.Errorf("node %s: %w: it is unmanaged and the change gives it no role and no maintenance", node, ErrNothingToChange)
	}
	// Every role of the new record must be catalogued: the apply needs its
	// definition. A role dropped from the catalog can still be removed.
	if err := s.catalog.Validate(d.Roles); err != nil {
		return nil, nil, fmt.Errorf("node %s: the new roles [%s]: %w (remove the role, or define it again)", node, strings.Join(d.Roles, ", "), err)
	}
	if cur == nil {
		// A node without a record may have had one (deleted by hand):
		// carry on from its audit trail, whose keys must not be reused.
		if base, err = s.lastAudited(ctx, dc, node); err != nil {
			return nil, nil, err
		}
	}
	if d.Roles == nil {
		d.Roles = []string{}
	}
	d.Node, d.Datacenter, d.Generation, d.When, d.Change = node, dc, base+1, s.now().UTC().Round(0), ch.ID
	value, err := json.Marshal(d)
	if err != nil {
		return nil, nil, fmt.Errorf("encoding the desired record of node %s: %w", node, err)
	}
	if !write {
		return cur, &d, nil
	}
	if s.beforeWrite != nil {
		s.beforeWrite()
	}
	key, audit := DesiredKey(s.prefix, node), AuditKey(s.prefix, node, d.Generation)
	ops := api.TxnOps{
		{KV: &api.KVTxnOp{Verb: api.KVCAS, Key: key, Value: value, Index: index}},
		{KV: &api.KVTxnOp{Verb: api.KVCAS, Key: audit, Value: value, Index: 0}},
	}
	_, err = s.c.Txn(ctx, s.query(dc, consul.Default), ops)
	var te *consul.TxnError
	if errors.As(err, &te) {
		return nil, nil, s.refused(ctx, node, dc, base, index, audit, te)
	}
	if err != nil {
		return nil, nil, s.c.Describe(fmt.Sprintf("recording generation %d of node %s in %s", d.Generation, node, dc), err)
	}
	return cur, &d, nil
}

// refused explains a rolled-back change: the desired record moved (a
// conflict naming who won) or its audit record already existed.
func (s *Store) refused(ctx context.Context, node, dc string, base, index uint64, audit string, te *consul.TxnError) error {
	now, nowIndex, err := s.read(ctx, dc, node, consul.Consistent)
	if err != nil {
		return fmt.Errorf("node %s: the change was refused (%v) and re-reading the record failed: %w", node, te, err)
	}
	if nowIndex != index {
		return &ConflictError{Node: node, Datacenter: dc, Based: base, Current: now}
	}
	for _, oe := range te.Errors {
		if oe.Op == 1 {
			return fmt.Errorf("node %s: audit record %s already exists while the desired record is at generation %d (KV edited by hand?); nothing was written: %w", node, audit, base, te)
		}
	}
	return fmt.Errorf("node %s: recording the change: %w", node, te)
}

// lastAudited returns the highest generation in node's audit trail (0:
// none).
func (s *Store) lastAudited(ctx context.Context, dc, node string) (uint64, error) {
	folder := auditPrefix(s.prefix, node)
	pairs, _, err := s.c.KVList(ctx, folder, s.query(dc, consul.Consistent))
	if err != nil {
		return 0, s.c.Describe(fmt.Sprintf("reading the audit trail of node %s in %s (%s)", node, dc, folder), err)
	}
	var last uint64
	for _, p := range pairs {
		if g, err := strconv.ParseUint(strings.TrimPrefix(p.Key, folder), 10, 64); err == nil && g > last {
			last = g
		}
	}
	return last, nil
}

func validRoleNames(what string, names []string) error {
	for _, n := range names {
		if err := ValidName(n); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	return nil
}

func intersect(a, b []string) []string {
	var out []string
	for _, x := range a {
		if slices.Contains(b, x) && !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

func sortedDistinct(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return slices.Compact(out)
}

func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}
