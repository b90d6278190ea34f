package logview

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"cloud.google.com/go/logging/apiv2/loggingpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// hubFilterRoom is what a gap fill adds around the hub's filter (a
// timestamp clause and parentheses); the hub keeps its filter this much
// under MaxFilterLen.
const hubFilterRoom = 200

// hub is one project's tail, shared by every live Stream: Cloud Logging
// allows only 10 tail sessions per project, and one console may have many
// views. Its filter is the OR of its streams' filters (or, when that is too
// long, the resource type and the lowest severity floor), and it routes
// each entry to the streams whose nodes and severity floor it matches.
// When the set of streams changes the tail restarts with the new filter;
// when the tail ends or fails it reconnects with backoff; after every start
// one list call fills whatever the streams may have missed.
type hub struct {
	svc     *Service
	project string
	// kick holds one token when the set of streams changed.
	kick chan struct{}

	mu      sync.Mutex
	streams map[*stream]time.Time // -> registration time
}

func newHub(s *Service, project string) *hub {
	return &hub{
		svc:     s,
		project: project,
		kick:    make(chan struct{}, 1),
		streams: map[*stream]time.Time{},
	}
}

func (h *hub) signal() {
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

func (h *hub) register(st *stream) {
	h.mu.Lock()
	h.streams[st] = h.svc.cfg.Now()
	h.mu.Unlock()
	h.signal()
}

func (h *hub) unregister(st *stream) {
	h.mu.Lock()
	_, ok := h.streams[st]
	delete(h.streams, st)
	h.mu.Unlock()
	if ok {
		h.signal()
	}
}

func (h *hub) snapshot() (set []*stream, reg map[*stream]time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	reg = make(map[*stream]time.Time, len(h.streams))
	for st, t := range h.streams {
		set = append(set, st)
		reg[st] = t
	}
	return set, reg
}

// filterFor is the tail filter serving set: the OR of the streams' own
// filters when it fits, else a broadened one (resource type and the lowest
// severity floor) that the hub narrows by routing.
func (h *hub) filterFor(set []*stream) string {
	var fs []string
	for _, st := range set {
		fs = append(fs, st.tail...)
	}
	if f, ok := orFilters(fs); ok && len(f) <= MaxFilterLen-hubFilterRoom {
		return f
	}
	floor := Emergency
	for _, st := range set {
		floor = min(floor, st.q.MinSeverity)
	}
	// Cannot fail: the severity floors were accepted when the streams'
	// own filters were built.
	f, _ := commonClauses(h.svc.cfg.Mapping, floor, time.Time{}, time.Time{})
	return f
}

// route delivers entries to the streams of set that want them and returns
// the newest timestamp among them (unix ns, 0 when none). The streams drop
// what they already have (a gap fill overlaps the tail on purpose).
func (h *hub) route(es []*loggingpb.LogEntry, set []*stream, gap bool) int64 {
	per := map[*stream][]*Entry{}
	var newest int64
	for _, pe := range es {
		ts := pe.GetTimestamp()
		newest = max(newest, ts.GetSeconds()*1e9+int64(ts.GetNanos()))
		v, ok := h.svc.entryValue(pe)
		if !ok {
			continue
		}
		var base *Entry
		for _, st := range set {
			names := st.values[v]
			if len(names) == 0 || Severity(pe.GetSeverity()) < st.q.MinSeverity {
				continue
			}
			e := base
			switch {
			case base == nil:
				base = convert(pe, h.project)
				base.Node = names[0]
				e = base
			case base.Node != names[0]:
				// Another view names the node differently; entries are
				// shared read-only, so it gets its own copy.
				c := *base
				c.Node = names[0]
				e = &c
			}
			per[st] = append(per[st], e)
		}
	}
	for st, es := range per {
		if gap {
			st.deliver(es, srcGap)
		} else {
			st.deliver(es, srcTail)
		}
	}
	return newest
}

// run keeps a tail going for the hub's streams until ctx is done.
func (h *hub) run(ctx context.Context) {
	bo := backoff{min: h.svc.cfg.RetryMin, max: h.svc.cfg.RetryMax}
	// uncovered holds, per stream, the earliest timestamp it may have
	// missed: its registration (its own list covers what came before),
	// or where the last tail it was served by stopped. A stream is
	// covered again once a gap fill after a new tail's start succeeded.
	uncovered := map[*stream]time.Time{}
	// down marks streams that are not served yet (new ones) or whose tail
	// failed: they become Live after the gap fill that follows the next
	// start.
	down := map[*stream]bool{}
	for ctx.Err() == nil {
		// Drain the kick: the snapshot below sees the latest set.
		select {
		case <-h.kick:
		default:
		}
		set, reg := h.snapshot()
		for st := range uncovered {
			if _, ok := reg[st]; !ok {
				delete(uncovered, st)
				delete(down, st)
			}
		}
		if len(set) == 0 {
			select {
			case <-ctx.Done():
			case <-h.kick:
			}
			continue
		}
		// A stream the hub has not served yet may miss what arrives
		// between its own list call and the tail's start, so it is not
		// Live before a gap fill has covered it.
		for _, st := range set {
			if _, ok := uncovered[st]; !ok {
				uncovered[st] = reg[st]
				down[st] = true
			}
		}
		res := h.session(ctx, set, uncovered, down)
		switch {
		case ctx.Err() != nil:
			return
		case res.established:
			bo.reset()
		}
		if res.err == nil {
			continue // the set changed: restart at once
		}
		d := bo.next()
		at := h.svc.cfg.Now().Add(d)
		for _, st := range set {
			down[st] = true
			st.setTail(h, tailState{err: res.err, retryAt: at})
		}
		if sleep(ctx, d) != nil {
			return
		}
	}
}

// sessionResult is how a tail session ended.
type sessionResult struct {
	// err is why the tail ended (nil when the hub ended it because the
	// set of streams changed).
	err error
	// established: the gap fill after the start succeeded.
	established bool
}

// session runs one tail for set until it fails, ends, the set changes or
// ctx is done. uncovered and down are updated (see run).
func (h *hub) session(ctx context.Context, set []*stream, uncovered map[*stream]time.Time, down map[*stream]bool) sessionResult {
	sctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	// The receiver and the gap fill end once sctx is cancelled.
	defer func() {
		cancel()
		wg.Wait()
	}()
	filter := h.filterFor(set)
	tc, err := h.svc.client.TailLogEntries(sctx)
	if err == nil {
		err = tc.Send(&loggingpb.TailLogEntriesRequest{
			ResourceNames: []string{"projects/" + h.project},
			Filter:        filter,
		})
	}
	if err != nil {
		return sessionResult{err: describe(err, "starting the live tail", []string{h.project})}
	}
	start := h.svc.cfg.Now()
	// Streams that were live before (the set changed) stay Live through
	// the restart; new ones and those whose tail failed wait for the gap
	// fill.
	for _, st := range set {
		if !down[st] {
			st.setTail(h, tailState{up: true})
		}
	}

	recv := make(chan *loggingpb.TailLogEntriesResponse)
	ended := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			resp, err := tc.Recv()
			if err != nil {
				ended <- err
				return
			}
			select {
			case recv <- resp:
			case <-sctx.Done():
				return
			}
		}
	}()

	var gapFrom time.Time
	for _, st := range set {
		if t, ok := uncovered[st]; ok && (gapFrom.IsZero() || t.Before(gapFrom)) {
			gapFrom = t
		}
	}
	gapDone := make(chan error, 1)
	gapStarted := false
	startGap := func() {
		if gapStarted {
			return
		}
		gapStarted = true
		if gapFrom.IsZero() {
			gapDone <- nil
			return
		}
		from := gapFrom.Add(-gapOverlap)
		wg.Add(1)
		go func() {
			defer wg.Done()
			gapDone <- h.fill(sctx, set, filter, from)
		}()
	}
	settle := time.NewTimer(h.svc.cfg.TailSettle)
	defer settle.Stop()

	var newest int64
	res := sessionResult{}
	// coveredNow: the gap fill succeeded, so the tail serves every stream
	// of set from here on.
	coveredNow := false
loop:
	for {
		select {
		case <-ctx.Done():
			return res
		case resp := <-recv:
			newest = max(newest, h.route(resp.GetEntries(), set, false))
			h.suppressed(resp.GetSuppressionInfo(), set)
			// The tail answered, so the service has registered it: the
			// gap fill cannot miss what the tail will not deliver.
			startGap()
		case <-settle.C:
			startGap()
		case err := <-gapDone:
			res.established = true
			coveredNow = true
			for _, st := range set {
				delete(uncovered, st)
				delete(down, st)
				var ts tailState
				ts.up = true
				if err != nil && ctx.Err() == nil {
					ts.err = err
				}
				st.setTail(h, ts)
			}
		case err := <-ended:
			if errors.Is(err, io.EOF) {
				err = errors.New("the live tail ended")
			} else if status.Code(err) == codes.Canceled && ctx.Err() != nil {
				return res
			}
			res.err = describe(err, "tailing log entries", []string{h.project})
			break loop
		case <-h.kick:
			break loop
		}
	}
	// Where the streams this tail served may have started missing entries:
	// after the newest entry it delivered, or its start if that is later
	// (a quiet tail still covered everything since it started), never
	// after now.
	if coveredNow {
		stop := h.svc.cfg.Now()
		from := start
		if newest > 0 {
			from = maxTime(from, time.Unix(0, newest))
		}
		if from.After(stop) {
			from = stop
		}
		for _, st := range set {
			uncovered[st] = from
		}
	}
	return res
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// fill is the gap fill: one list operation over the hub's filter from
// `from` to now (and a margin for clocks ahead; the tail, registered by
// now, delivers what comes later), routed like tail entries and
// de-duplicated against them by the streams.
func (h *hub) fill(ctx context.Context, set []*stream, filter string, from time.Time) error {
	to := h.svc.cfg.Now().Add(gapOverlap)
	f := "(timestamp>=" + timeLiteral(from) + ") AND (timestamp<" + timeLiteral(to) + ")"
	if filter != "" {
		f += " AND (" + filter + ")"
	}
	return h.svc.list(ctx, []string{h.project}, f, listHooks{
		page: func(es []*loggingpb.LogEntry) { h.route(es, set, true) },
		call: func() {
			for _, st := range set {
				st.addStatus(func(s *Status) { s.ListCalls++ })
			}
		},
		retry: func(err error, at time.Time) {
			for _, st := range set {
				st.setTail(h, tailState{err: err, retryAt: at})
			}
		},
	})
}

// suppressed adds the tail's suppression counts to every stream it
// serves: the service does not say whose entries they were.
func (h *hub) suppressed(info []*loggingpb.TailLogEntriesResponse_SuppressionInfo, set []*stream) {
	if len(info) == 0 {
		return
	}
	for _, st := range set {
		st.addStatus(func(s *Status) {
			if s.Suppressed == nil {
				s.Suppressed = map[string]int64{}
			}
			for _, si := range info {
				s.Suppressed[si.GetReason().String()] += int64(si.GetSuppressedCount())
			}
		})
	}
}
