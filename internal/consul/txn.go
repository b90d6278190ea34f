package consul

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/hashicorp/consul/api"
)

// Consul's limits on the operations of one /v1/txn request: 64 before
// Consul 1.14, 128 since (hashicorp/consul#14599; agent/txn_endpoint.go
// maxTxnOps). MaxTxnOps works with every version.
const (
	MaxTxnOps        = 64
	MaxTxnOpsSince14 = 128
)

// TxnOpError is one reason Consul gave for rolling a transaction back.
type TxnOpError struct {
	// Op is the operation it is about: an index into the operations given
	// to Txn, or, from a batched call (LockKeys), into its keys.
	Op   int
	What string
}

// TxnError is a transaction Consul rolled back: none of its operations
// was applied.
type TxnError struct {
	Errors []TxnOpError
	// From and To delimit the operations (from a batched call: the keys)
	// of the transaction that was rolled back.
	From, To int
}

// Error is "transaction rolled back: op 3: <why>; op 7: <why>".
func (e *TxnError) Error() string {
	msgs := make([]string, len(e.Errors))
	for i, oe := range e.Errors {
		msgs[i] = fmt.Sprintf("op %d: %s", oe.Op, oe.What)
	}
	return "transaction rolled back: " + strings.Join(msgs, "; ")
}

// Txn applies ops, at most MaxTxnOpsSince14 (MaxTxnOps for Consul before
// 1.14), in one transaction in q.Datacenter: all of them or, when Consul
// rolls it back, none, and the error is a *TxnError naming the operations
// that failed. Other errors are the API client's.
func (c *Client) Txn(ctx context.Context, q Query, ops api.TxnOps) (*api.TxnResponse, error) {
	o, cancel := q.options(ctx)
	defer cancel()
	ok, resp, _, err := c.api.Txn().Txn(ops, o)
	if err != nil {
		return nil, err
	}
	if !ok {
		te := &TxnError{To: len(ops)}
		if resp != nil {
			for _, e := range resp.Errors {
				te.Errors = append(te.Errors, TxnOpError{Op: e.OpIndex, What: e.What})
			}
		}
		return resp, te
	}
	return resp, nil
}

// TxnBatch is one transaction of a batched write: the whole groups
// [From, To) of the groups given to Batches, in order.
type TxnBatch struct {
	Ops      api.TxnOps
	From, To int
	// starts[i] is the index in Ops of group From+i's first operation.
	starts []int
}

// Group returns the index (among the groups given to Batches) of the group
// that operation op of the batch belongs to, -1 if op is out of range.
func (b TxnBatch) Group(op int) int {
	if op < 0 || op >= len(b.Ops) {
		return -1
	}
	g := len(b.starts) - 1
	for g > 0 && b.starts[g] > op {
		g--
	}
	return b.From + g
}

// Batches packs groups of operations, in order, into transactions of at
// most limit operations (MaxTxnOps when limit ≤ 0) without ever splitting
// a group: a group is what must be applied all or nothing (a node with its
// services and checks, a key's check-session and delete). A group larger
// than limit is an error.
func Batches(groups []api.TxnOps, limit int) ([]TxnBatch, error) {
	if limit <= 0 {
		limit = MaxTxnOps
	}
	var out []TxnBatch
	cur := TxnBatch{}
	for i, g := range groups {
		if len(g) > limit {
			return nil, fmt.Errorf("group %d needs %d operations, more than one transaction allows (%d)", i, len(g), limit)
		}
		if len(cur.Ops)+len(g) > limit {
			out = append(out, cur)
			cur = TxnBatch{From: i}
		}
		cur.starts = append(cur.starts, len(cur.Ops))
		cur.Ops = append(cur.Ops, g...)
		cur.To = i + 1
	}
	if len(cur.Ops) > 0 {
		out = append(out, cur)
	}
	return out, nil
}

// LockKeys locks keys in q.Datacenter's KV store under session, each with
// value, in transactions of at most limit keys (MaxTxnOps when limit ≤ 0),
// in order, stopping at the first that fails. keys[:taken] are locked
// then. A transaction Consul refused (a key held by another session or in
// its lock-delay, ACLs) is a *TxnError whose From, To and Op index keys.
// All or nothing across transactions is the caller's: release keys[:taken]
// (UnlockKeys) when err is not nil.
func (c *Client) LockKeys(ctx context.Context, q Query, session string, keys []string, value []byte, limit int) (taken int, err error) {
	groups := make([]api.TxnOps, len(keys))
	for i, k := range keys {
		groups[i] = api.TxnOps{{KV: &api.KVTxnOp{Verb: api.KVLock, Key: k, Value: value, Session: session}}}
	}
	batches, err := Batches(groups, limit)
	if err != nil {
		return 0, err
	}
	for _, b := range batches {
		if _, err := c.Txn(ctx, q, b.Ops); err != nil {
			var te *TxnError
			if errors.As(err, &te) {
				for i := range te.Errors {
					te.Errors[i].Op = b.Group(te.Errors[i].Op)
				}
				te.From, te.To = b.From, b.To
			}
			return taken, err
		}
		taken = b.To
	}
	return taken, nil
}

// UnlockKeys deletes those of keys that session still holds in
// q.Datacenter, in transactions of check-session + delete pairs of at most
// limit operations (MaxTxnOps when limit ≤ 0), so that a key another
// session took after this one lost it is never deleted. A transaction
// rolled back because some key is not held goes again key by key; keys
// not held are left alone.
func (c *Client) UnlockKeys(ctx context.Context, q Query, session string, keys []string, limit int) error {
	groups := make([]api.TxnOps, len(keys))
	for i, k := range keys {
		groups[i] = api.TxnOps{
			{KV: &api.KVTxnOp{Verb: api.KVCheckSession, Key: k, Session: session}},
			{KV: &api.KVTxnOp{Verb: api.KVDelete, Key: k}},
		}
	}
	batches, err := Batches(groups, limit)
	if err != nil {
		return err
	}
	var te *TxnError
	for _, b := range batches {
		_, err := c.Txn(ctx, q, b.Ops)
		if err == nil {
			continue
		}
		if !errors.As(err, &te) {
			return err
		}
		for g := b.From; g < b.To; g++ {
			if _, err := c.Txn(ctx, q, groups[g]); err != nil && !errors.As(err, &te) {
				return fmt.Errorf("unlocking %s: %w", keys[g], err)
			}
		}
	}
	return nil
}
