package fleetsim

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/consul/api"
	"golang.org/x/sync/errgroup"

	"github.com/fleetdeck/fleetdeck/internal/consul"
)

// maxTxnOps is the most operations of one /v1/txn request: the simulated
// fleet is loaded into the Consul 1.15 that fleetdeck's tests and demo run,
// which takes 128 (older versions 64).
const maxTxnOps = consul.MaxTxnOpsSince14

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
	return register(ctx, consul.New(c, consul.Options{}), spec.Datacenter, nodes, loadConcurrency)
}

// register writes nodes in transactions of up to maxTxnOps operations,
// each node (with its services and checks) in one.
func register(ctx context.Context, c *consul.Client, dc string, nodes []Node, concurrency int) error {
	groups := make([]api.TxnOps, len(nodes))
	for i := range nodes {
		groups[i] = nodeOps(dc, &nodes[i])
		if len(groups[i]) > maxTxnOps {
			return fmt.Errorf("fleetsim: node %s needs %d operations, more than one transaction allows (%d)", nodes[i].Name, len(groups[i]), maxTxnOps)
		}
	}
	batches, err := consul.Batches(groups, maxTxnOps)
	if err != nil {
		return fmt.Errorf("fleetsim: %w", err)
	}

	eg, gctx := errgroup.WithContext(ctx)
	eg.SetLimit(concurrency)
	for _, b := range batches {
		if gctx.Err() != nil {
			break
		}
		eg.Go(func() error { return applyTxn(gctx, c, dc, b.Ops, "registering nodes") })
	}
	if err := eg.Wait(); err != nil {
		return err
	}
	return ctx.Err()
}

// applyTxn runs one transaction; a rollback is a *consul.TxnError naming
// the failed operations.
func applyTxn(ctx context.Context, c *consul.Client, dc string, ops api.TxnOps, what string) error {
	_, err := c.Txn(ctx, consul.Query{Datacenter: dc}, ops)
	var te *consul.TxnError
	switch {
	case errors.As(err, &te):
		return fmt.Errorf("fleetsim: %s: %w", what, err)
	case err != nil:
		return fmt.Errorf("fleetsim: %s (txn of %d ops): %w", what, len(ops), err)
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
