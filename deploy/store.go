package deploy

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/fleetdeck/fleetdeck/internal/consul"
)

// DecisionsKept is how many decisions the KV keeps (a ring); the leader's
// history file has them all.
const DecisionsKept = 1000

// Layout under the prefix, in one datacenter's KV store:
//
//	leader                                   the lock (leader.go)
//	state                                    the scheduler's State, gzip'd JSON
//	records/<dc>/<node>/<id>/<inst>/<stage>  Record (path-escaped parts, "-" for none)
//	requests/<id>                            an operator's Request, until the leader takes it
//	decisions/head                           the ring's next sequence number
//	decisions/<slot>                         Decision, slot = seq mod DecisionsKept
//
// The State is one value because the scheduler changes many parts of it
// in one pass and a new leader must see them together; compressed, a
// 10,000-node fleet's state stays far below Consul's 512 KB value limit.
// Records are one key each: they grow with the fleet, and the console
// reads one node's with a prefix list. Operators never write the State:
// they leave a Request, which the leader applies and deletes in the same
// transaction that saves the State it changed, so a pause asked while no
// leader runs waits for the next one and is never lost.

// Store reads and writes one datacenter's deployment state. Writes are
// transactions fenced (Fenced) by the leader's session: a leader that lost
// the lock can no longer write.
type Store struct {
	c      *consul.Client
	dc     string
	prefix string
	fence  string
}

// NewStore returns the store of datacenter dc ("" the agent's own) under
// prefix ("" DefaultPrefix).
func NewStore(c *consul.Client, dc, prefix string) *Store {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	return &Store{c: c, dc: dc, prefix: prefix}
}

// Prefix is the store's KV prefix (with its trailing slash).
func (s *Store) Prefix() string { return s.prefix }

// Fenced returns a store whose every write also checks, in the same
// transaction, that session holds the leader lock.
func (s *Store) Fenced(session string) *Store {
	f := *s
	f.fence = session
	return &f
}

// ConflictError is a write refused because a key changed since it was
// read (another writer) or because the writer no longer holds the leader
// lock (Fence).
type ConflictError struct {
	Key   string
	Fence bool
	Err   error
}

func (e *ConflictError) Error() string {
	if e.Fence {
		return "deploy: not the leader any more (the leader lock is not held by this session): " + e.Err.Error()
	}
	return fmt.Sprintf("deploy: %s changed since it was read: %v", e.Key, e.Err)
}

func (e *ConflictError) Unwrap() error { return e.Err }

func (s *Store) query() consul.Query {
	return consul.Query{Datacenter: s.dc, Timeout: 30 * time.Second}
}

func (s *Store) stateKey() string { return s.prefix + "state" }

// part escapes one part of a record's key ("-" for an empty one).
func part(p string) string {
	if p == "" {
		return "-"
	}
	return url.PathEscape(p)
}

// RecordsPrefix is where node's records are (node: "dc/name").
func (s *Store) RecordsPrefix(node string) string {
	dc, name, _ := strings.Cut(node, "/")
	return s.prefix + "records/" + part(dc) + "/" + part(name) + "/"
}

func (s *Store) recordKey(r Record) string {
	// The incarnation is dc/name/id/instance (Incarnation); its node part
	// is r.Node's.
	rest := strings.TrimPrefix(r.Incarnation, r.Node+"/")
	id, inst, _ := strings.Cut(rest, "/")
	return s.RecordsPrefix(r.Node) + part(id) + "/" + part(inst) + "/" + part(r.Stage)
}

func (s *Store) requestKey(id string) string { return s.prefix + "requests/" + id }
func (s *Store) decisionsHead() string       { return s.prefix + "decisions/head" }
func (s *Store) slotKey(seq uint64) string {
	return fmt.Sprintf("%sdecisions/%04d", s.prefix, seq%DecisionsKept)
}

// RequestKind is what an operator asks of the leader.
type RequestKind string

// Operator requests.
const (
	RequestPause   RequestKind = "pause"
	RequestResume  RequestKind = "resume"
	RequestRelease RequestKind = "release" // Node, Stage ("" every hold of the node)
	RequestRerun   RequestKind = "rerun"   // Node, Stage: forget the stage's record so it is due again
)

// Request is an operator's request, waiting under requests/ for the
// leader.
type Request struct {
	ID     string      `json:"id"`
	Kind   RequestKind `json:"kind"`
	Node   string      `json:"node,omitempty"` // dc/name
	Stage  string      `json:"stage,omitempty"`
	Reason string      `json:"reason"`
	Who    string      `json:"who"`
	At     time.Time   `json:"at"`
	// Index is the key's ModifyIndex as read: the leader deletes the
	// request check-and-set on it.
	Index uint64 `json:"-"`
}

// Check says what is wrong with a request before it is written.
func (r Request) Check() error {
	switch r.Kind {
	case RequestPause, RequestResume:
	case RequestRelease:
		if r.Node == "" {
			return errors.New("release needs a node")
		}
	case RequestRerun:
		if r.Node == "" || r.Stage == "" {
			return errors.New("rerun needs a node and a stage")
		}
	default:
		return fmt.Errorf("unknown request %q", r.Kind)
	}
	if strings.TrimSpace(r.Reason) == "" && r.Kind != RequestRelease {
		return fmt.Errorf("%s needs a reason (--reason)", r.Kind)
	}
	if r.Node != "" && !strings.Contains(r.Node, "/") {
		return fmt.Errorf("node %q: give it as datacenter/name", r.Node)
	}
	if len(r.Reason) > 1000 {
		return errors.New("the reason is longer than 1000 bytes")
	}
	return nil
}

// Ask writes an operator's request for the leader (create-only under a
// fresh id) and returns it with its id.
func (s *Store) Ask(ctx context.Context, r Request) (Request, error) {
	if err := r.Check(); err != nil {
		return r, err
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return r, err
	}
	if r.At.IsZero() {
		r.At = time.Now().UTC()
	}
	r.ID = fmt.Sprintf("%d-%s", r.At.UnixNano(), hex.EncodeToString(b[:]))
	v, err := json.Marshal(r)
	if err != nil {
		return r, err
	}
	ops := api.TxnOps{{KV: &api.KVTxnOp{Verb: api.KVCAS, Key: s.requestKey(r.ID), Value: v, Index: 0}}}
	if _, err := s.txn(ctx, ops, false); err != nil {
		return r, fmt.Errorf("writing the %s request: %w", r.Kind, err)
	}
	return r, nil
}

// Loaded is everything under the prefix, from one read.
type Loaded struct {
	State State
	// StateIndex is the state key's ModifyIndex (0: none yet); Save
	// checks it.
	StateIndex uint64
	// Records by RecordKey.
	Records   map[string]Record
	Requests  []Request  // oldest first
	Decisions []Decision // oldest first
}

// Load reads the whole state with one consistent KV list of the prefix.
func (s *Store) Load(ctx context.Context) (*Loaded, error) {
	q := s.query()
	q.Consistency = consul.Consistent
	pairs, _, err := s.c.KVList(ctx, s.prefix, q)
	if err != nil {
		return nil, fmt.Errorf("reading the deployment state under %s: %w", s.prefix, err)
	}
	return s.decode(pairs)
}

// LoadStatus reads all but the records (which grow with the fleet): the
// state, the requests and the decisions, in three reads.
func (s *Store) LoadStatus(ctx context.Context) (*Loaded, error) {
	var all api.KVPairs
	p, _, err := s.c.KVGet(ctx, s.stateKey(), s.query())
	if err != nil {
		return nil, fmt.Errorf("reading the deployment state %s: %w", s.stateKey(), err)
	}
	if p != nil {
		all = append(all, p)
	}
	for _, sub := range []string{"requests/", "decisions/"} {
		pairs, _, err := s.c.KVList(ctx, s.prefix+sub, s.query())
		if err != nil {
			return nil, fmt.Errorf("reading %s%s: %w", s.prefix, sub, err)
		}
		all = append(all, pairs...)
	}
	return s.decode(all)
}

func (s *Store) decode(pairs api.KVPairs) (*Loaded, error) {
	l := &Loaded{Records: map[string]Record{}}
	for _, p := range pairs {
		rel := strings.TrimPrefix(p.Key, s.prefix)
		var err error
		switch {
		case rel == "state":
			err = decodeState(p.Value, &l.State)
			l.StateIndex = p.ModifyIndex
		case strings.HasPrefix(rel, "records/"):
			var r Record
			if err = json.Unmarshal(p.Value, &r); err == nil {
				l.Records[RecordKey(r.Incarnation, r.Stage)] = r
			}
		case strings.HasPrefix(rel, "requests/"):
			var r Request
			err = json.Unmarshal(p.Value, &r)
			r.Index = p.ModifyIndex
			l.Requests = append(l.Requests, r)
		case strings.HasPrefix(rel, "decisions/"):
			if _, e := strconv.Atoi(strings.TrimPrefix(rel, "decisions/")); e != nil {
				continue // the head
			}
			var d Decision
			err = json.Unmarshal(p.Value, &d)
			l.Decisions = append(l.Decisions, d)
		}
		if err != nil {
			// One bad value must not stop the datacenter's provisioning
			// forever, nor be silently dropped: the error names the key
			// to repair or delete.
			return nil, fmt.Errorf("deploy: decoding %s: %w", p.Key, err)
		}
	}
	slices.SortFunc(l.Requests, func(a, b Request) int { return strings.Compare(a.ID, b.ID) })
	slices.SortFunc(l.Decisions, func(a, b Decision) int { return cmpUint(a.Seq, b.Seq) })
	return l, nil
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// NodeRecords reads one node's records (node: "dc/name"), every
// incarnation's, with one KV list.
func (s *Store) NodeRecords(ctx context.Context, node string) ([]Record, error) {
	pairs, _, err := s.c.KVList(ctx, s.RecordsPrefix(node), s.query())
	if err != nil {
		return nil, fmt.Errorf("reading the stage records of %s: %w", node, err)
	}
	out := make([]Record, 0, len(pairs))
	for _, p := range pairs {
		var r Record
		if err := json.Unmarshal(p.Value, &r); err != nil {
			return nil, fmt.Errorf("deploy: decoding %s: %w", p.Key, err)
		}
		out = append(out, r)
	}
	return out, nil
}

func encodeState(st *State) ([]byte, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if err := json.NewEncoder(zw).Encode(st); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func decodeState(b []byte, st *State) error {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return err
	}
	// The state is bounded by the fleet; 64 MB uncompressed is far past
	// any real one and stops a hostile value from exhausting memory.
	raw, err := io.ReadAll(io.LimitReader(zr, 64<<20))
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, st)
}

// MaxStateBytes is the largest compressed State the store writes:
// Consul's default limit for a KV value.
const MaxStateBytes = 512 * 1024

// Save is one pass's changes.
type Save struct {
	// State, when set, replaces the state, check-and-set on StateIndex.
	State      *State
	StateIndex uint64
	// Records to write (the latest outcome of each node's stage) and
	// records to delete (a rerun).
	Records []Record
	Forget  []Record
	// Done are the requests the state now reflects: deleted with it.
	Done []Request
}

// Commit writes sv, fenced. Records go first, in transactions of up to
// MaxTxnOps operations, then the state with the requests it took in one
// last transaction: if the writer dies between them, the records are kept
// (what was applied is never applied again) and the state is the one
// before, which a new leader's first pass brings in line with them.
// It returns the state key's new index.
func (s *Store) Commit(ctx context.Context, sv Save) (uint64, error) {
	var ops api.TxnOps
	for _, r := range sv.Records {
		if r.Node == "" || r.Incarnation == "" || r.Stage == "" {
			return 0, fmt.Errorf("deploy: a record needs a node, an incarnation and a stage: %+v", r)
		}
		b, err := json.Marshal(r)
		if err != nil {
			return 0, err
		}
		ops = append(ops, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVSet, Key: s.recordKey(r), Value: b}})
	}
	for _, r := range sv.Forget {
		ops = append(ops, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVDelete, Key: s.recordKey(r)}})
	}
	var last api.TxnOps
	for _, r := range sv.Done {
		last = append(last, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVDeleteCAS, Key: s.requestKey(r.ID), Index: r.Index}})
	}
	if sv.State != nil {
		b, err := encodeState(sv.State)
		if err != nil {
			return 0, err
		}
		if len(b) > MaxStateBytes {
			return 0, fmt.Errorf("deploy: the state is %d bytes compressed, over Consul's value limit of %d", len(b), MaxStateBytes)
		}
		last = append(last, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVCAS, Key: s.stateKey(), Value: b, Index: sv.StateIndex}})
	}
	per := consul.MaxTxnOps - 1 // the fence
	for len(ops) > 0 {
		n := min(per, len(ops))
		if len(ops) == n && n+len(last) <= per {
			break // the last records go with the state
		}
		if _, err := s.txn(ctx, ops[:n], true); err != nil {
			return 0, fmt.Errorf("writing stage records: %w", err)
		}
		ops = ops[n:]
	}
	ops = append(ops, last...)
	if len(ops) == 0 {
		return sv.StateIndex, nil
	}
	if len(ops) > per {
		return 0, fmt.Errorf("deploy: %d requests at once do not fit one transaction", len(sv.Done))
	}
	idx, err := s.txn(ctx, ops, true)
	if err != nil {
		return 0, fmt.Errorf("writing the deployment state: %w", err)
	}
	if v, ok := idx[s.stateKey()]; ok {
		return v, nil
	}
	return sv.StateIndex, nil
}

// txn runs ops (behind the fence when fenced and the store has one) and
// maps a rollback to a ConflictError.
func (s *Store) txn(ctx context.Context, ops api.TxnOps, fenced bool) (map[string]uint64, error) {
	fence := fenced && s.fence != ""
	if fence {
		ops = append(api.TxnOps{{KV: &api.KVTxnOp{Verb: api.KVCheckSession, Key: s.prefix + "leader", Session: s.fence}}}, ops...)
	}
	if len(ops) > consul.MaxTxnOps {
		return nil, fmt.Errorf("deploy: a change of %d operations does not fit one transaction (%d)", len(ops), consul.MaxTxnOps)
	}
	resp, err := s.c.Txn(ctx, s.query(), ops)
	var te *consul.TxnError
	if errors.As(err, &te) {
		ce := &ConflictError{Err: err}
		if len(te.Errors) > 0 {
			i := te.Errors[0].Op
			if i >= 0 && i < len(ops) {
				ce.Key = ops[i].KV.Key
				ce.Fence = fence && i == 0
			}
		}
		return nil, ce
	}
	if err != nil {
		return nil, err
	}
	idx := map[string]uint64{}
	for _, r := range resp.Results {
		if r.KV != nil {
			idx[r.KV.Key] = r.KV.ModifyIndex
		}
	}
	return idx, nil
}

// ringHead is the value of decisions/head.
type ringHead struct {
	Next uint64 `json:"next"`
}

// AppendDecisions adds ds to the ring, oldest first, in transactions of
// up to MaxTxnOps operations: each moves the head (check-and-set, so two
// writers never take the same sequence numbers) and writes its slots.
// Only the last DecisionsKept of ds can be kept anyway.
func (s *Store) AppendDecisions(ctx context.Context, ds []Decision) error {
	if len(ds) > DecisionsKept {
		ds = ds[len(ds)-DecisionsKept:]
	}
	per := consul.MaxTxnOps - 2 // the head, the fence
	for len(ds) > 0 {
		n := min(per, len(ds))
		// Another writer moving the head between the read and the write
		// is a conflict on the head alone: read it again and retry (up to
		// 20 times with a growing, jittered pause so two writers stop
		// colliding; a fence conflict is final).
		var err error
		for try := 0; try < 20; try++ {
			err = s.appendBatch(ctx, ds[:n])
			var ce *ConflictError
			if !errors.As(err, &ce) || ce.Fence || ce.Key != s.decisionsHead() {
				break
			}
			if !sleep(ctx, time.Duration(try+1)*time.Duration(1+mrand.IntN(10))*time.Millisecond) {
				return ctx.Err()
			}
		}
		if err != nil {
			return fmt.Errorf("recording decisions: %w", err)
		}
		ds = ds[n:]
	}
	return nil
}

func (s *Store) appendBatch(ctx context.Context, ds []Decision) error {
	q := s.query()
	q.Consistency = consul.Consistent // the head's index must be current for the CAS
	p, _, err := s.c.KVGet(ctx, s.decisionsHead(), q)
	if err != nil {
		return err
	}
	var head ringHead
	var index uint64
	if p != nil {
		if err := json.Unmarshal(p.Value, &head); err != nil {
			return fmt.Errorf("deploy: %s: %w", p.Key, err)
		}
		index = p.ModifyIndex
	}
	next := ringHead{Next: head.Next + uint64(len(ds))}
	hb, _ := json.Marshal(next)
	ops := api.TxnOps{{KV: &api.KVTxnOp{Verb: api.KVCAS, Key: s.decisionsHead(), Value: hb, Index: index}}}
	for i, d := range ds {
		d.Seq = head.Next + uint64(i)
		if d.At.IsZero() {
			d.At = time.Now().UTC()
		}
		b, err := json.Marshal(d)
		if err != nil {
			return err
		}
		ops = append(ops, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVSet, Key: s.slotKey(d.Seq), Value: b}})
	}
	_, err = s.txn(ctx, ops, true)
	return err
}

// RequestsAt lists the operators' requests waiting for the leader, as a
// blocking query when index > 0 (answering when they change or after
// wait). It returns the index to wait on next.
func (s *Store) RequestsAt(ctx context.Context, index uint64, wait time.Duration) ([]Request, uint64, error) {
	q := s.query()
	if index > 0 {
		q.WaitIndex, q.WaitTime, q.Timeout = index, wait, 0
	}
	pairs, meta, err := s.c.KVList(ctx, s.prefix+"requests/", q)
	if err != nil {
		return nil, 0, fmt.Errorf("reading the operators' requests: %w", err)
	}
	out := make([]Request, 0, len(pairs))
	for _, p := range pairs {
		var r Request
		if err := json.Unmarshal(p.Value, &r); err != nil {
			// A request nobody can read is skipped (named in the log by
			// the caller's next error) rather than blocking the others.
			continue
		}
		r.Index = p.ModifyIndex
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b Request) int { return strings.Compare(a.ID, b.ID) })
	return out, meta.LastIndex, nil
}
