package fleet

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/hashicorp/consul/api"

	"github.com/fleetdeck/fleetdeck/internal/consul"
)

// The bootstrap read. A datacenter's services and checks are first read in
// one request, /v1/internal/ui/nodes (every node with its service instances
// and checks — what the Consul UI reads), instead of one read per service
// and one of all checks: at 10,000 nodes and 50 services Consul serves it
// in about half the time of the 50 per-service answers (one pass over the
// catalog instead of 50, and 26 MB instead of 29 MB + 16 MB), and it brings
// the passing checks' details too. Its index, taken in one state-store
// transaction, is where every blocking query then starts: each waits for the
// first change after the bootstrap's snapshot, so nothing is read twice.
//
// The endpoint is internal (the UI's), so fleetdeck never depends on it: it
// is read once per datacenter, with the node list; an error, an ACL denial
// or an answer that does not have the expected shape falls back to the
// public per-service reads, silently apart from the request it cost. It is
// never watched: a blocking query on it would answer 26 MB per change.

// uiNode is the part of a /v1/internal/ui/nodes entry the bootstrap reads.
type uiNode struct {
	Node     string
	Services []uiService
	Checks   []uiCheck
}

type uiService struct {
	ID      string
	Service string
	Tags    []string
	Port    int
}

type uiCheck struct {
	CheckID     string
	Name        string
	Status      string
	Output      string
	ServiceID   string
	ServiceName string
}

// bootData is a bootstrap read: every service's instances and every check,
// as of index.
type bootData struct {
	services map[string][]instance
	checks   []nodeCheck
}

// errBootShape says the internal endpoint answered something else than
// fleetdeck expects (another Consul version): the public reads take over.
var errBootShape = errors.New("the answer does not have the expected shape")

// toBoot converts and checks a bootstrap answer.
func toBoot(in []uiNode) (*bootData, error) {
	b := &bootData{services: map[string][]instance{}}
	tags := map[string][]string{}
	for i := range in {
		n := &in[i]
		if n.Node == "" {
			return nil, fmt.Errorf("%w: a node without a name", errBootShape)
		}
		for _, s := range n.Services {
			if s.Service == "" || s.ID == "" {
				return nil, fmt.Errorf("%w: a service instance without a name or ID on node %q", errBootShape, n.Node)
			}
			key := strings.Join(s.Tags, "\x00")
			t, ok := tags[key]
			if !ok {
				t = s.Tags
				tags[key] = t
			}
			b.services[s.Service] = append(b.services[s.Service], instance{node: n.Node, svc: Service{ID: s.ID, Name: s.Service, Tags: t, Port: s.Port}})
		}
		for _, c := range n.Checks {
			st, ok := ParseHealth(c.Status)
			if c.CheckID == "" || !ok {
				return nil, fmt.Errorf("%w: a check without an ID or a known status on node %q", errBootShape, n.Node)
			}
			if st == HealthCritical && isMaintenance(c.CheckID) {
				st = HealthMaintenance
			}
			b.checks = append(b.checks, nodeCheck{node: n.Node, Check: Check{ID: c.CheckID, Name: c.Name, Status: st,
				Output: c.Output, ServiceID: c.ServiceID, ServiceName: c.ServiceName}})
		}
	}
	return b, nil
}

// bootstrap reads a datacenter's services and checks in one request, and
// hands the answer — or the failure, after which the public reads take
// over — to the Run loop. It starts with the node list rather than after
// it: the node list is small work for Consul and still comes first (the
// first rows do not wait), while the bootstrap, most of the wait for a
// complete fleet, starts ~100 ms earlier (measured both ways at 10,000
// nodes: first rows 150–250 ms either way).
func (r *runner) bootstrap(ctx context.Context, p loopParams) {
	var nodes []uiNode
	var meta *api.QueryMeta
	var err error
	for {
		reqCtx, cancel := context.WithCancel(ctx)
		ep := p.epoch.current()
		stop := context.AfterFunc(ep, cancel)
		nodes = nil
		// The one large read: decoded with go-json when Config.Direct is set.
		meta, err = r.w.c.GetLarge(reqCtx, "/v1/internal/ui/nodes", consul.Query{Datacenter: p.dc, Consistency: p.consistency}, &nodes)
		stop()
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err == nil || ep.Err() == nil {
			break
		}
		// Kicked: Consul answers again after an outage that caught the
		// read in flight. Ask again rather than fall back to the one read
		// per service, which costs Consul twice as much.
	}
	res := result{dc: p.dc, kind: watchBootstrap, id: p.id, meta: meta, changed: true}
	if err == nil {
		res.boot, err = toBoot(nodes)
	}
	if err != nil {
		// Not shown: the public reads that follow report their own errors.
		res.boot = nil
		res.meta = nil
	}
	send(ctx, r.out, res)
}

// adoptBoot gives svc its instances from the bootstrap read, if it has
// them: the service is then loaded as of the bootstrap's index (its own
// index is at most that; sweeps treat a lower one as unchanged).
func (d *dcState) adoptBoot(name string, s *svcState) {
	if d.boot == nil || s.loaded {
		return
	}
	insts, ok := d.boot.services[name]
	if !ok {
		return
	}
	s.loaded, s.index = true, d.bootIndex
	d.applyService(name, insts, d.bootIndex)
}
