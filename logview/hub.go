package logview

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/logging/apiv2/loggingpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/fleetdeck/fleetdeck/internal/backoff"
)

// hubFilterRoom is what a gap fill or a liveness check adds around the
// hub's filter (timestamp and receiveTimestamp clauses and parentheses,
// at most about 160 characters); the hub keeps its filter this much under
// MaxFilterLen.
const hubFilterRoom = 200

// hub is one project's tail, shared by every live Stream: Cloud Logging
// allows only 10 tail sessions per project, and one console may have many
// views. Its filter is the OR of its streams' filters (or, when that is too
// long, the resource type and the lowest severity floor), and it routes
// each entry to the streams whose nodes and severity floor it matches.
// When the set of streams changes the tail restarts with the new filter;
// when the tail ends or fails it reconnects with backoff; after every start
// one list call fills whatever the streams may have missed. A tail that
// stays quiet is checked, and one found dead is stalled and reconnected
// (the liveness rule is on session).
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
// the newest timestamp among them (unix ns, 0 when none) and the entries
// some stream did not have yet. The streams drop what they already have
// (a gap fill overlaps the tail on purpose).
func (h *hub) route(es []*loggingpb.LogEntry, set []*stream, gap bool) (newest int64, fresh []*Entry) {
	per := map[*stream][]*Entry{}
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
	src := srcTail
	if gap {
		src = srcGap
	}
	for st, es := range per {
		fresh = append(fresh, st.deliver(es, src)...)
	}
	return newest, fresh
}

// liveness is what a hub knows of its tail's life across sessions (only
// its run goroutine touches it).
type liveness struct {
	// sign is the last sign of life: a tail's answer, a check that
	// passed, or a gap fill that succeeded after a tail's start.
	sign time.Time
	// stalled: the last tail was found dead, and none has worked since.
	stalled bool
	// carry: the last session ended only because the set of streams
	// changed, so its streams stayed Live and its evidence still counts.
	carry bool
}

// run keeps a tail going for the hub's streams until ctx is done.
func (h *hub) run(ctx context.Context) {
	bo := backoff.New(h.svc.cfg.RetryMin, h.svc.cfg.RetryMax)
	// A stalled tail retries at most every reconnectMax, as gRPC retries
	// its connection: an attempt over a dead path costs nothing at the
	// service, and once the path works the view is live again within
	// seconds rather than half a minute. Any list call an attempt makes
	// still waits for the project's budget.
	sbo := backoff.New(h.svc.cfg.RetryMin, min(h.svc.cfg.RetryMax, reconnectMax))
	// uncovered holds, per stream, the earliest timestamp it may have
	// missed: its registration (its own list covers what came before),
	// or where the last tail it was served by stopped. A stream is
	// covered again once a gap fill after a new tail's start succeeded.
	uncovered := map[*stream]time.Time{}
	// down marks streams that are not served yet (new ones) or whose tail
	// failed: they become Live after the gap fill that follows the next
	// start.
	down := map[*stream]bool{}
	var lv liveness
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
			lv.carry = false
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
		res := h.session(ctx, set, uncovered, down, lv)
		switch {
		case ctx.Err() != nil:
			return
		case res.established:
			bo.Reset()
			sbo.Reset()
		}
		lv.sign = maxTime(lv.sign, res.sign)
		// Once stalled, the tail stays stalled until a new one works: an
		// attempt that failed in between proves nothing.
		lv.stalled = res.stalled || lv.stalled && !res.established
		lv.carry = res.err == nil
		if res.err == nil {
			continue // the set changed: restart at once
		}
		var d time.Duration
		if lv.stalled {
			d = sbo.Next()
		} else {
			d = bo.Next()
		}
		at := h.svc.cfg.Now().Add(d)
		for _, st := range set {
			down[st] = true
			st.setTail(h, tailState{err: res.err, retryAt: at, stalled: lv.stalled, lastSign: lv.sign})
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
	// stalled: the tail was found dead (it had not ended): a check
	// failed or found what it missed, keepalive gave up on its
	// connection, or it did not start in time.
	stalled bool
	// sign is the session's last sign of life (zero when it had none).
	sign time.Time
}

// checkResult is what a liveness check found.
type checkResult struct {
	// at is when the check listed; upTo the time up to which it listed
	// everything a working tail must have delivered by then.
	at, upTo time.Time
	// missed counts those entries that no stream had.
	missed int
	err    error
}

// session runs one tail for set until it fails, ends, the set changes or
// ctx is done. uncovered and down are updated (see run).
//
// The liveness rule. Cloud Logging's tail sends a response only when it
// has entries (or suppression counts) for it: it has no heartbeat, so a
// quiet tail and a dead one look alike. The tail's signs of life are its
// responses and the gap fill after its start. When it has shown none for
// TailCheck, the hub checks it with one list call (bounded by the
// project's rate limiter and by CheckTimeout): the hub's filter, for
// entries from where the tail's coverage is known minus gapOverlap on,
// that Cloud Logging received more than missLag ago, so that a working
// tail has delivered every one of them. The check passes, and counts as a
// sign of life, when it answers in time and every entry it found was
// already delivered. Otherwise the tail is stalled: the entries it missed
// are delivered by the check (the streams drop the others), the session
// ends, the streams show Stalled with the last sign of life, and the hub
// reconnects with backoff and fills the gap from the last point known to
// be covered. gRPC keepalive closing the connection and a tail that does
// not start within CheckTimeout are stalls too. So a stream is never Live
// on evidence older than TailCheck plus the check's limiter wait and
// CheckTimeout.
func (h *hub) session(ctx context.Context, set []*stream, uncovered map[*stream]time.Time, down map[*stream]bool, lv liveness) sessionResult {
	cfg := &h.svc.cfg
	sctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	// The receiver, the gap fill and a check end once sctx is cancelled.
	defer func() {
		cancel()
		wg.Wait()
	}()
	filter := h.filterFor(set)
	// Opening a stream waits for a connection, which on a dead path lasts
	// until gRPC gives up on it: the start gets CheckTimeout. The
	// library's own retries are off, as for lists, so that failures show.
	late := time.AfterFunc(cfg.CheckTimeout, cancel)
	tc, err := h.svc.client.TailLogEntries(sctx, noLibraryRetry)
	if err == nil {
		err = tc.Send(&loggingpb.TailLogEntriesRequest{
			ResourceNames: []string{"projects/" + h.project},
			Filter:        filter,
		})
	}
	if !late.Stop() && ctx.Err() == nil {
		return sessionResult{
			err:     fmt.Errorf("starting the live tail in %s: no answer within %v", h.project, cfg.CheckTimeout),
			stalled: true,
		}
	}
	if err != nil {
		return sessionResult{err: describe(err, "starting the live tail", []string{h.project})}
	}
	start := cfg.Now()
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
	// gapAt is when the gap fill started: it lists up to then (and a
	// margin), so its success proves the tail's coverage up to then.
	var gapAt time.Time
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
		gapAt = cfg.Now()
		wg.Add(1)
		go func() {
			defer wg.Done()
			gapDone <- h.fill(sctx, set, filter, from, tailState{stalled: lv.stalled, lastSign: lv.sign})
		}()
	}
	settle := time.NewTimer(cfg.TailSettle)
	defer settle.Stop()

	res := sessionResult{}
	// known is the time up to which the tail's streams are known to have
	// everything (a gap fill covers what came before the start); sign is
	// the last sign of life, which the watchdog counts from. A restart
	// for a changed set carries the last session's sign over, since its
	// streams stayed Live.
	known, sign := start, start
	if lv.carry && !lv.sign.IsZero() {
		sign = lv.sign
	}
	alive := func(at, upTo time.Time) {
		res.sign = maxTime(res.sign, at)
		sign = maxTime(sign, at)
		known = maxTime(known, upTo)
	}
	watchdog := time.NewTimer(sign.Add(cfg.TailCheck).Sub(cfg.Now()))
	defer watchdog.Stop()
	rearm := func() { watchdog.Reset(sign.Add(cfg.TailCheck).Sub(cfg.Now())) }
	checked := make(chan checkResult, 1)
	checking := false
	stalled := func(err error) sessionResult {
		res.err, res.stalled = err, true
		return res
	}

	var newest int64
	// coveredNow: the gap fill succeeded, so the tail serves every stream
	// of set from here on.
	coveredNow := false
loop:
	for {
		select {
		case <-ctx.Done():
			return res
		case resp := <-recv:
			n, _ := h.route(resp.GetEntries(), set, false)
			newest = max(newest, n)
			h.suppressed(resp.GetSuppressionInfo(), set)
			now := cfg.Now()
			alive(now, now)
			rearm()
			// The tail answered, so the service has registered it: the
			// gap fill cannot miss what the tail will not deliver.
			startGap()
		case <-settle.C:
			startGap()
		case err := <-gapDone:
			res.established = true
			coveredNow = true
			if err == nil && !gapAt.IsZero() {
				alive(gapAt, gapAt)
				rearm()
			}
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
		case <-watchdog.C:
			if checking {
				break // re-armed when the check ends
			}
			checking = true
			from := known.Add(-gapOverlap)
			wg.Add(1)
			go func() {
				defer wg.Done()
				checked <- h.check(sctx, set, filter, from)
			}()
		case r := <-checked:
			checking = false
			switch {
			case ctx.Err() != nil:
				return res
			case r.err != nil:
				res = stalled(fmt.Errorf("the live tail in %s was silent for %v and a check failed: %w",
					h.project, cfg.Now().Sub(sign).Round(time.Second), r.err))
				break loop
			case r.missed > 0:
				res = stalled(fmt.Errorf("the live tail in %s missed %d entries that a check found", h.project, r.missed))
				break loop
			}
			alive(r.at, r.upTo)
			rearm()
		case err := <-ended:
			switch {
			case errors.Is(err, io.EOF):
				err = errors.New("the live tail ended")
			case status.Code(err) == codes.Canceled && ctx.Err() != nil:
				return res
			case keepaliveFailure(err):
				res.stalled = true
			}
			res.err = describe(err, "tailing log entries", []string{h.project})
			break loop
		case <-h.kick:
			break loop
		}
	}
	// Where the streams this tail served may have started missing entries:
	// after the newest entry it delivered, or its last sign of life if
	// that is later, never after now.
	if coveredNow {
		stop := cfg.Now()
		from := known
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

// keepaliveFailure reports whether err is gRPC closing the connection
// because a keepalive ping went unanswered: the path died silently.
func keepaliveFailure(err error) bool {
	s, ok := status.FromError(err)
	return ok && s.Code() == codes.Unavailable && strings.Contains(s.Message(), "keepalive")
}

// check is the watchdog's liveness check of a quiet tail (see session):
// one list call, one page, for the entries of the hub's filter with
// timestamps from `from` on that Cloud Logging received more than
// missLag ago: a working tail has delivered each of them. They are routed
// like a gap fill, so those the streams lack (missed) reach them here.
// Younger entries are left to the tail, or to the next check if the tail
// is dead: a check never races a working tail.
func (h *hub) check(ctx context.Context, set []*stream, filter string, from time.Time) checkResult {
	cfg := &h.svc.cfg
	if d := h.svc.reserve([]string{h.project}); d > 0 {
		if err := sleep(ctx, d); err != nil {
			return checkResult{err: err}
		}
	}
	for _, st := range set {
		st.addStatus(func(s *Status) { s.ListCalls++ })
	}
	at := cfg.Now()
	cut := at.Add(-missLag)
	f := checkFilter(filter, from, at.Add(gapOverlap), cut)
	cctx, cancel := context.WithTimeout(ctx, cfg.CheckTimeout)
	defer cancel()
	es, next, err := h.svc.client.ListLogEntries(cctx, h.svc.listRequest([]string{h.project}, f), noLibraryRetry).
		InternalFetch(cfg.PageSize, "")
	if err != nil {
		return checkResult{err: describe(err, "checking the live tail", []string{h.project})}
	}
	_, fresh := h.route(es, set, true)
	r := checkResult{at: at, upTo: cut, missed: len(fresh)}
	if next != "" && len(es) > 0 {
		// Only the first page was read: the check covered nothing later
		// than its last entry.
		ts := es[len(es)-1].GetTimestamp()
		r.upTo = time.Unix(ts.GetSeconds(), int64(ts.GetNanos()))
	}
	return r
}

// fill is the gap fill: one list operation over the hub's filter from
// `from` to now (and a margin for clocks ahead; the tail, registered by
// now, delivers what comes later), routed like tail entries and
// de-duplicated against them by the streams. While it backs off, the
// streams show its error and retry time, still stalled (with lv's last
// sign of life) if the tail was.
func (h *hub) fill(ctx context.Context, set []*stream, filter string, from time.Time, lv tailState) error {
	to := h.svc.cfg.Now().Add(gapOverlap)
	return h.svc.list(ctx, []string{h.project}, timeBounded(filter, from, to), listHooks{
		page: func(es []*loggingpb.LogEntry) { h.route(es, set, true) },
		call: func() {
			for _, st := range set {
				st.addStatus(func(s *Status) { s.ListCalls++ })
			}
		},
		retry: func(err error, at time.Time) {
			ts := lv
			ts.err, ts.retryAt = err, at
			for _, st := range set {
				st.setTail(h, ts)
			}
		},
	})
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// checkFilter is a liveness check's filter: timeBounded, for entries
// received before cut.
func checkFilter(filter string, from, to, cut time.Time) string {
	return "(receiveTimestamp<" + timeLiteral(cut) + ") AND " + timeBounded(filter, from, to)
}

// timeBounded is filter restricted to timestamps in [from, to).
func timeBounded(filter string, from, to time.Time) string {
	f := "(timestamp>=" + timeLiteral(from) + ") AND (timestamp<" + timeLiteral(to) + ")"
	if filter != "" {
		f += " AND (" + filter + ")"
	}
	return f
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
