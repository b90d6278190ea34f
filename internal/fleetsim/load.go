package fleetsim

import (
	"context"
	"fmt"
	"strings"

	"github.com/hashicorp/consul/api"
	"golang.org/x/sync/errgroup"
)

// maxTxnOps is Consul's hard limit on operations in one /v1/txn request.
const maxTxnOps = 128

// loadConcurrency is how many transactions Load keeps in flight. Raft
// applies them one at a time, but overlapping the HTTP round trips and JSON
// work with the apply keeps the leader busy; more than a handful only adds
// contention on a 2-core machine.
const loadConcurrency = 4

// Load registers the spec's fleet (see Spec.Fleet) in the catalog with
// batched /v1/txn requests, each holding whole nodes so no node is ever
// half-registered. It does not remove nodes already there.
func Load(ctx context.Context, c *api.Client, spec Spec) error {
	nodes, err := spec.Fleet()
	if err != nil {
		return err
	}
	return register(ctx, c, spec.Datacenter, nodes, loadConcurrency)
}

// register writes nodes in transactions of up to maxTxnOps operations.
func register(ctx context.Context, c *api.Client, dc string, nodes []Node, concurrency int) error {
	var batches []api.TxnOps
	var cur api.TxnOps
	for i := range nodes {
		ops := nodeOps(dc, &nodes[i])
		if len(ops) > maxTxnOps {
			return fmt.Errorf("fleetsim: node %s needs %d operations, more than one transaction allows (%d)", nodes[i].Name, len(ops), maxTxnOps)
		}
		if len(cur)+len(ops) > maxTxnOps {
			batches = append(batches, cur)
			cur = nil
		}
		cur = append(cur, ops...)
	}
	if len(cur) > 0 {
		batches = append(batches, cur)
	}

	eg, gctx := errgroup.WithContext(ctx)
	eg.SetLimit(concurrency)
	for _, b := range batches {
		if gctx.Err() != nil {
			break
		}
		eg.Go(func() error { return applyTxn(gctx, c, dc, b, "registering nodes") })
	}
	if err := eg.Wait(); err != nil {
		return err
	}
	return ctx.Err()
}

// applyTxn runs one transaction and turns a rollback into an error naming
// the failed operations.
func applyTxn(ctx context.Context, c *api.Client, dc string, ops api.TxnOps, what string) error {
	q := (&api.QueryOptions{Datacenter: dc}).WithContext(ctx)
	ok, resp, _, err := c.Txn().Txn(ops, q)
	if err != nil {
		return fmt.Errorf("fleetsim: %s (txn of %d ops): %w", what, len(ops), err)
	}
	if !ok {
		var msgs []string
		if resp != nil {
			for _, e := range resp.Errors {
				msgs = append(msgs, fmt.Sprintf("op %d: %s", e.OpIndex, e.What))
			}
		}
		return fmt.Errorf("fleetsim: %s: transaction rolled back: %s", what, strings.Join(msgs, "; "))
	}
	return nil
}

// nodeOps are the operations that register one node with its services and
// checks.
func nodeOps(dc string, n *Node) api.TxnOps {
	ops := make(api.TxnOps, 0, 1+len(n.Services)+len(n.Checks))
	ops = append(ops, &api.TxnOp{Node: &api.NodeTxnOp{Verb: api.NodeSet, Node: api.Node{
		Node: n.Name, Address: n.Address, Datacenter: dc, Meta: n.Meta,
	}}})
	for _, s := range n.Services {
		ops = append(ops, &api.TxnOp{Service: &api.ServiceTxnOp{Verb: api.ServiceSet, Node: n.Name, Service: api.AgentService{
			ID: s.ID, Service: s.Name, Tags: s.Tags, Port: s.Port, Address: n.Address, Datacenter: dc,
		}}})
	}
	for i := range n.Checks {
		ops = append(ops, checkOp(dc, n.Name, &n.Checks[i]))
	}
	return ops
}

func checkOp(dc, node string, ch *Check) *api.TxnOp {
	return &api.TxnOp{Check: &api.CheckTxnOp{Verb: api.CheckSet, Check: api.HealthCheck{
		Node: node, CheckID: ch.ID, Name: ch.Name, Status: ch.Status, Output: ch.Output,
		ServiceID: ch.ServiceID, ServiceName: ch.ServiceName,
	}}}
}

// deleteNodeOp removes a node; Consul drops its services and checks with it.
func deleteNodeOp(name string) *api.TxnOp {
	return &api.TxnOp{Node: &api.NodeTxnOp{Verb: api.NodeDelete, Node: api.Node{Node: name}}}
}
