package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/fleetdeck/fleetdeck/internal/consul"
)

// DecisionsKept is how many decisions the KV keeps (a ring); the leader's
// history has them all.
const DecisionsKept = 1000

// Layout under the prefix, one datacenter's KV store:
//
//	leader                                  the lock (leader.go)
//	records/<node>/<incarnation>/<stage>    Record
//	holds/<node>/<stage>                    Hold ("_all" for the whole node)
//	pause                                   Pause
//	breaker                                 Breaker
//	decisions/head                          the ring's next sequence number
//	decisions/<slot>                        Decision, slot = seq mod DecisionsKept
//
// A full pass reads it all with one KV list of the prefix (Snapshot).

// Record is the outcome of a stage on one incarnation of a node (Consul
// node ID + instance id: a replacement with the same name is new).
type Record struct {
	Node        string    `json:"node"`
	Incarnation string    `json:"incarnation"`
	Stage       string    `json:"stage"`
	Status      string    `json:"status"` // StatusSucceeded or StatusFailed
	RunID       string    `json:"run_id,omitempty"`
	InputsHash  string    `json:"inputs_hash,omitempty"`
	Attempts    int       `json:"attempts"`
	LastAttempt time.Time `json:"last_attempt"`
	Held        *Hold     `json:"held,omitempty"`
	At          time.Time `json:"at"`
	// Index is the record's ModifyIndex as read (0: new); a write
	// succeeds only if the record is still at it (check-and-set).
	Index uint64 `json:"-"`
}

// Stage statuses.
const (
	StatusSucceeded = "succeeded"
	StatusFailed    = "failed"
)

// Hold stops a node (Stage "": all its stages) until an operator releases
// it: max attempts reached, oscillating.
type Hold struct {
	Node   string    `json:"node,omitempty"`
	Stage  string    `json:"stage,omitempty"`
	Reason string    `json:"reason"`
	By     string    `json:"by,omitempty"`
	Since  time.Time `json:"since"`
	Index  uint64    `json:"-"`
}

// Pause stops all launches of the datacenter's leader.
type Pause struct {
	Paused bool      `json:"paused"`
	Reason string    `json:"reason,omitempty"`
	Who    string    `json:"who,omitempty"`
	At     time.Time `json:"at"`
	Index  uint64    `json:"-"`
}

// Breaker is the circuit breaker's state: open pauses everything.
type Breaker struct {
	Open   bool      `json:"open"`
	Reason string    `json:"reason,omitempty"`
	Since  time.Time `json:"since"`
	// Recent is the outcome of the last runs (true: failed), newest last.
	Recent []bool `json:"recent,omitempty"`
	Index  uint64 `json:"-"`
}

// Decision is one entry of the decisions log. The planner's types.go may
// define its own: reconcile them when the branches meet (this one is what
// the KV ring stores).
type Decision struct {
	Seq    uint64    `json:"seq"` // assigned by the store
	At     time.Time `json:"at"`
	Node   string    `json:"node,omitempty"`
	Stage  string    `json:"stage,omitempty"`
	Kind   string    `json:"kind"`
	Reason string    `json:"reason,omitempty"`
	RunID  string    `json:"run_id,omitempty"`
}

// State is everything under the prefix, from one read.
type State struct {
	Records   []Record
	Holds     []Hold
	Pause     Pause
	Breaker   Breaker
	Decisions []Decision // oldest first
	// Index is the KV's index at the read.
	Index uint64
}

// Store reads and writes one datacenter's state. Writes are one
// transaction per logical change, check-and-set on what was read, and,
// fenced (Fenced), valid only while the writer holds the leader lock.
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

// Fenced returns a store whose every write also checks that session holds
// the leader lock, in the same transaction: a leader that lost the lock
// (a new one elected while it was frozen) can no longer write.
func (s *Store) Fenced(session string) *Store {
	f := *s
	f.fence = session
	return &f
}

// ConflictError is a write refused because a key changed since it was
// read (another writer: an old and a new leader) or because the writer no
// longer holds the leader lock (Fence). Re-read and decide again.
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

func (s *Store) recordKey(node, incarnation, stage string) string {
	return s.prefix + "records/" + node + "/" + incarnation + "/" + stage
}

func (s *Store) holdKey(node, stage string) string {
	if stage == "" {
		stage = "_all"
	}
	return s.prefix + "holds/" + node + "/" + stage
}

func (s *Store) decisionsHead() string { return s.prefix + "decisions/head" }
func (s *Store) slotKey(seq uint64) string {
	return fmt.Sprintf("%sdecisions/%04d", s.prefix, seq%DecisionsKept)
}

// Change is one logical change, written in one transaction: all of it or
// none. Every item is check-and-set on its Index.
type Change struct {
	Records []Record
	Holds   []Hold
	// Released deletes these holds (check-and-set on their Index).
	Released []Hold
	Pause    *Pause
	Breaker  *Breaker
}

// ops is the change's operations with the key of each.
func (s *Store) ops(ch Change) (api.TxnOps, error) {
	var ops api.TxnOps
	put := func(key string, v any, index uint64) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		ops = append(ops, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVCAS, Key: key, Value: b, Index: index}})
		return nil
	}
	for _, r := range ch.Records {
		if r.Node == "" || r.Incarnation == "" || r.Stage == "" {
			return nil, fmt.Errorf("deploy: record needs a node, an incarnation and a stage: %+v", r)
		}
		if err := put(s.recordKey(r.Node, r.Incarnation, r.Stage), r, r.Index); err != nil {
			return nil, err
		}
	}
	for _, h := range ch.Holds {
		if h.Node == "" {
			return nil, errors.New("deploy: a hold needs a node")
		}
		if err := put(s.holdKey(h.Node, h.Stage), h, h.Index); err != nil {
			return nil, err
		}
	}
	for _, h := range ch.Released {
		ops = append(ops, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVDeleteCAS, Key: s.holdKey(h.Node, h.Stage), Index: h.Index}})
	}
	if ch.Pause != nil {
		if err := put(s.prefix+"pause", ch.Pause, ch.Pause.Index); err != nil {
			return nil, err
		}
	}
	if ch.Breaker != nil {
		if err := put(s.prefix+"breaker", ch.Breaker, ch.Breaker.Index); err != nil {
			return nil, err
		}
	}
	return ops, nil
}

// Commit writes ch in one transaction (fenced when the store is) and
// returns the new ModifyIndex of every key written. A *ConflictError when
// something changed since it was read or the fence failed.
func (s *Store) Commit(ctx context.Context, ch Change) (map[string]uint64, error) {
	ops, err := s.ops(ch)
	if err != nil {
		return nil, err
	}
	return s.txn(ctx, ops)
}

// txn runs ops behind the fence and maps a rollback to a ConflictError.
func (s *Store) txn(ctx context.Context, ops api.TxnOps) (map[string]uint64, error) {
	if s.fence != "" {
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
				ce.Fence = s.fence != "" && i == 0
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

// PutRecord writes r (check-and-set on r.Index) and returns it with its
// new Index.
func (s *Store) PutRecord(ctx context.Context, r Record) (Record, error) {
	idx, err := s.Commit(ctx, Change{Records: []Record{r}})
	if err != nil {
		return r, err
	}
	r.Index = idx[s.recordKey(r.Node, r.Incarnation, r.Stage)]
	return r, nil
}

// SetPause pauses (p.Paused) or resumes, check-and-set on p.Index.
func (s *Store) SetPause(ctx context.Context, p Pause) (Pause, error) {
	if p.At.IsZero() {
		p.At = time.Now().UTC()
	}
	idx, err := s.Commit(ctx, Change{Pause: &p})
	if err != nil {
		return p, err
	}
	p.Index = idx[s.prefix+"pause"]
	return p, nil
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
			if !sleep(ctx, time.Duration(try+1)*time.Duration(1+rand.IntN(10))*time.Millisecond) {
				return ctx.Err()
			}
		}
		if err != nil {
			return err
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
	_, err = s.txn(ctx, ops)
	return err
}

// Snapshot reads the whole state with one KV list of the prefix.
func (s *Store) Snapshot(ctx context.Context) (*State, error) {
	q := s.query()
	q.Consistency = consul.Consistent
	pairs, meta, err := s.c.KVList(ctx, s.prefix, q)
	if err != nil {
		return nil, err
	}
	st := &State{Index: meta.LastIndex}
	for _, p := range pairs {
		rel := strings.TrimPrefix(p.Key, s.prefix)
		var err error
		switch {
		case strings.HasPrefix(rel, "records/"):
			var r Record
			err = json.Unmarshal(p.Value, &r)
			r.Index = p.ModifyIndex
			st.Records = append(st.Records, r)
		case strings.HasPrefix(rel, "holds/"):
			var h Hold
			err = json.Unmarshal(p.Value, &h)
			h.Index = p.ModifyIndex
			st.Holds = append(st.Holds, h)
		case rel == "pause":
			err = json.Unmarshal(p.Value, &st.Pause)
			st.Pause.Index = p.ModifyIndex
		case rel == "breaker":
			err = json.Unmarshal(p.Value, &st.Breaker)
			st.Breaker.Index = p.ModifyIndex
		case rel == "decisions/head", rel == "leader":
		case strings.HasPrefix(rel, "decisions/"):
			if _, e := strconv.Atoi(strings.TrimPrefix(rel, "decisions/")); e != nil {
				continue
			}
			var d Decision
			err = json.Unmarshal(p.Value, &d)
			st.Decisions = append(st.Decisions, d)
		}
		if err != nil {
			return nil, fmt.Errorf("deploy: %s: %w", p.Key, err)
		}
	}
	slices.SortFunc(st.Decisions, func(a, b Decision) int {
		switch {
		case a.Seq < b.Seq:
			return -1
		case a.Seq > b.Seq:
			return 1
		}
		return 0
	})
	return st, nil
}
