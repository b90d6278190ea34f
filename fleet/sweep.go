package fleet

import (
	"context"
	"errors"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/fleetdeck/fleetdeck/internal/consul"
)

// Sweeps: a datacenter with more services than its connection budget
// gives a blocking query only to some of them (see Watcher). The others
// are swept: whenever the service list's index moves — Consul raises it
// with every service registration and deregistration, and with nothing
// else — each swept service is asked for its index alone (serviceIndexFilter
// makes the answer empty) and only those whose index moved are read. A
// sweep runs at most once per sweepSpacing and sweepDelay after the change
// that called for it, so that the answers of the watched services, which
// arrive at the same moment, are in first; the sweeper uses at most
// sweepConns connections.
const (
	sweepDelay   = 100 * time.Millisecond
	sweepSpacing = time.Second
)

// sweepItem is one swept service and the index of what is known of it
// (0: not read yet).
type sweepItem struct {
	name  string
	index uint64
}

// sweepRequest asks the sweeper to look at items; upTo is the service
// list's index the sweep accounts for once it has ended without errors.
type sweepRequest struct {
	items []sweepItem
	upTo  uint64
}

// swept reports whether some service has no watch of its own.
func (d *dcState) swept() bool {
	return len(d.svcs) > d.hot
}

// sweepDue reports whether the swept services must be looked at: the
// service list moved past the last sweep, or some have never been read.
func (d *dcState) sweepDue() bool {
	if d.sweeping || !d.svcLoaded || !d.bootDone || !d.swept() {
		return false
	}
	if d.svcListIndex != d.sweptTo {
		return true
	}
	for _, s := range d.svcs {
		if s.watch == nil && !s.loaded {
			return true
		}
	}
	return false
}

// sweepItems lists the swept services, in name order.
func (d *dcState) sweepItems() []sweepItem {
	var items []sweepItem
	for name, s := range d.svcs {
		if s.watch != nil {
			continue
		}
		it := sweepItem{name: name}
		if s.loaded {
			it.index = s.index
		}
		items = append(items, it)
	}
	sort.Slice(items, func(i, j int) bool { return items[i].name < items[j].name })
	return items
}

// startSweeps hands each datacenter whose swept services are due for a
// look to its sweeper, once the delay and the spacing allow.
func (r *runner) startSweeps() {
	if r.cfg.oneShot {
		return
	}
	now := r.w.now()
	for _, dc := range r.dcs {
		if !dc.sweepDue() {
			continue
		}
		if dc.sweepAt.IsZero() {
			dc.sweepAt = now.Add(sweepDelay)
			if !dc.lastSweep.IsZero() {
				dc.sweepAt = maxTime(dc.sweepAt, dc.lastSweep.Add(sweepSpacing))
			}
		}
		if now.Before(dc.sweepAt) {
			continue
		}
		req := sweepRequest{items: dc.sweepItems(), upTo: dc.svcListIndex}
		select {
		case dc.sweepReq <- req:
			dc.sweeping = true
			dc.sweepAt = time.Time{}
		default:
		}
	}
}

// applySweepEnd records the end of a sweep. A sweep with errors does not
// count (its services are looked at again), after a backoff.
func (dc *dcState) applySweepEnd(res result, now time.Time) {
	dc.sweeping = false
	dc.lastSweep = now
	if res.err != nil {
		dc.sweepAt = now.Add(dc.sweepBackoff.Next())
		return
	}
	dc.sweepBackoff.Reset()
	dc.sweptTo = res.index
	dc.sweepAt = time.Time{}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// sweeper serves one datacenter's sweep requests until ctx ends. Each
// service's answer goes to the Run loop as a service result, and the end of
// the sweep as a watchSweep result.
func (r *runner) sweeper(ctx context.Context, dc *dcState) {
	// The first sweep reads services in full: not before the node list.
	select {
	case <-dc.nodesArrived:
	case <-ctx.Done():
		return
	}
	for {
		var req sweepRequest
		select {
		case <-ctx.Done():
			return
		case req = <-dc.sweepReq:
		}
		var failed atomic.Bool
		sem := make(chan struct{}, sweepConns)
		var wg sync.WaitGroup
		for _, it := range req.items {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				wg.Wait()
				return
			}
			wg.Go(func() {
				defer func() { <-sem }()
				if !r.sweepOne(ctx, dc.name, dc.epoch, it) {
					failed.Store(true)
				}
			})
		}
		wg.Wait()
		end := result{dc: dc.name, kind: watchSweep, index: req.upTo}
		if failed.Load() {
			end.err = errors.New("some services could not be checked")
		}
		if !send(ctx, r.out, end) {
			return
		}
	}
}

// sweepOne asks one swept service for its index and reads it when the
// index moved (or it was never read). It reports whether it got answers.
func (r *runner) sweepOne(ctx context.Context, dcName string, ep *epoch, it sweepItem) bool {
	c := r.w.c
	// Each request ends at its deadline (the access layer's) or when the
	// epoch is kicked.
	kicked := false
	request := func(do func(ctx context.Context) (*api.QueryMeta, error)) (*api.QueryMeta, error) {
		reqCtx, cancel := context.WithCancel(ctx)
		defer cancel()
		e := ep.current()
		if e != nil {
			defer context.AfterFunc(e, cancel)()
		}
		meta, err := do(reqCtx)
		kicked = err != nil && e != nil && e.Err() != nil
		return meta, err
	}
	res := result{dc: dcName, kind: watchService, service: it.name, sweep: true, changed: true}
	fail := func(err error) bool {
		if kicked {
			// Consul answers again and the epoch restarted every request:
			// not an error of this service's; the sweep goes again.
			return false
		}
		res.silent = consul.IsSilence(err)
		res.err = c.Describe(watchService.what(dcName, it.name), err)
		res.nextRetry = time.Now().Add(sweepSpacing)
		send(ctx, r.out, res)
		return false
	}
	if it.index > 0 {
		q := consul.Query{Datacenter: dcName, Consistency: r.cfg.readMode(), Filter: serviceIndexFilter}
		meta, err := request(func(ctx context.Context) (*api.QueryMeta, error) {
			var none []catalogInstance
			return c.Get(ctx, "/v1/catalog/service/"+it.name, q, &none)
		})
		if err != nil {
			return ctx.Err() == nil && fail(err)
		}
		if meta.LastIndex > 0 && meta.LastIndex <= it.index {
			// Unchanged: a service adopted from the bootstrap read is
			// known as of the bootstrap's index, which may be above its own.
			// Said all the same: the answer clears an earlier error of the
			// service, which no change may come to clear.
			res.changed, res.meta = false, meta
			return send(ctx, r.out, res)
		}
	}
	q := consul.Query{Datacenter: dcName, Consistency: r.cfg.readMode()}
	var data result
	meta, err := request(func(ctx context.Context) (*api.QueryMeta, error) {
		var m *api.QueryMeta
		var err error
		data, m, err = readService(ctx, c, it.name, q, map[string][]string{})
		return m, err
	})
	if err != nil {
		return ctx.Err() == nil && fail(err)
	}
	res.svc, res.meta = data.svc, meta
	return send(ctx, r.out, res)
}

// sameInstances reports whether two answers of one service list the same
// instances in the same order (Consul's order is stable).
func sameInstances(a, b []instance) bool {
	return slices.EqualFunc(a, b, func(x, y instance) bool {
		return x.node == y.node && x.svc.ID == y.svc.ID && x.svc.Port == y.svc.Port && slices.Equal(x.svc.Tags, y.svc.Tags)
	})
}
