package consul

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"
)

// KVList lists the keys under prefix in q.Datacenter's KV store with their
// values and sessions; none is an empty list, not an error.
func (c *Client) KVList(ctx context.Context, prefix string, q Query) (api.KVPairs, *api.QueryMeta, error) {
	o, cancel := q.options(ctx)
	defer cancel()
	return c.api.KV().List(prefix, o)
}

// KVGet reads key in q.Datacenter's KV store: nil (and no error) when the
// key does not exist. It is not a prefix read: "nodes/web" never answers
// "nodes/web-2". Callers that must see every committed write before a
// check-and-set read it with Consistent.
func (c *Client) KVGet(ctx context.Context, key string, q Query) (*api.KVPair, *api.QueryMeta, error) {
	o, cancel := q.options(ctx)
	defer cancel()
	return c.api.KV().Get(key, o)
}

// Session describes a session to create: TTL-only (no health checks, so a
// flapping agent never invalidates it) with behavior "delete" (its keys go
// with it).
type Session struct {
	Name string
	// Node holds the session; "" for the agent's own node, which exists
	// only in the agent's own datacenter (see Servers for elsewhere).
	Node      string
	TTL       time.Duration
	LockDelay time.Duration
}

// CreateSession creates s in q.Datacenter and returns its ID.
func (c *Client) CreateSession(ctx context.Context, q Query, s Session) (string, error) {
	o, cancel := q.writeOptions(ctx)
	defer cancel()
	id, _, err := c.api.Session().CreateNoChecks(&api.SessionEntry{
		Name:      s.Name,
		Node:      s.Node,
		TTL:       s.TTL.String(),
		LockDelay: s.LockDelay,
		Behavior:  api.SessionBehaviorDelete,
	}, o)
	return id, err
}

// RenewSession restarts session id's TTL in q.Datacenter. gone is true
// when Consul no longer knows the session (expired, destroyed).
func (c *Client) RenewSession(ctx context.Context, q Query, id string) (gone bool, err error) {
	o, cancel := q.writeOptions(ctx)
	defer cancel()
	entry, _, err := c.api.Session().Renew(id, o)
	if err != nil {
		return false, err
	}
	return entry == nil, nil
}

// DestroySession ends session id in q.Datacenter (its keys are deleted,
// behavior "delete").
func (c *Client) DestroySession(ctx context.Context, q Query, id string) error {
	o, cancel := q.writeOptions(ctx)
	defer cancel()
	_, err := c.api.Session().Destroy(id, o)
	return err
}

// Server is a Consul server node.
type Server struct {
	// Node is the node's name; ID its node ID, which survives a rebuild
	// that keeps the node-id file.
	Node, ID string
}

// Servers lists the Consul server nodes of q.Datacenter (the nodes of the
// "consul" service) sorted by node name, so every console picks the same
// one first.
func (c *Client) Servers(ctx context.Context, q Query) ([]Server, *api.QueryMeta, error) {
	var svcs []struct{ Node, ID string }
	meta, err := c.Get(ctx, "/v1/catalog/service/consul", q, &svcs)
	if err != nil {
		return nil, nil, err
	}
	out := make([]Server, len(svcs))
	for i, s := range svcs {
		out[i] = Server{Node: s.Node, ID: s.ID}
	}
	slices.SortFunc(out, func(a, b Server) int { return strings.Compare(a.Node, b.Node) })
	return out, meta, nil
}

// KVAcquire takes key in q.Datacenter's KV store for session, writing
// value, when no other session holds it (the lock of a leader election).
// ok is false when Consul refused: the key is held by another session, or
// it is in the lock-delay of a session that was invalidated while holding
// it. Retaking a key the session already holds succeeds and rewrites value.
func (c *Client) KVAcquire(ctx context.Context, q Query, key string, value []byte, session string) (ok bool, err error) {
	o, cancel := q.writeOptions(ctx)
	defer cancel()
	ok, _, err = c.api.KV().Acquire(&api.KVPair{Key: key, Value: value, Session: session}, o)
	return ok, err
}

// KVRelease gives up session's hold on key in q.Datacenter, writing value
// (Consul's release is a write: what was there is replaced). Releasing is not an invalidation, so no lock-delay follows: the
// next contender can take the key at once (a resignation). ok is false
// when session did not hold key.
func (c *Client) KVRelease(ctx context.Context, q Query, key string, value []byte, session string) (ok bool, err error) {
	o, cancel := q.writeOptions(ctx)
	defer cancel()
	ok, _, err = c.api.KV().Release(&api.KVPair{Key: key, Value: value, Session: session}, o)
	return ok, err
}
