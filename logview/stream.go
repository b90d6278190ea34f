package logview

import (
	"context"
	"io"
	"maps"
	"slices"
	"sync"
	"time"

	"cloud.google.com/go/logging/apiv2/loggingpb"
)

// stream is one open view: it lists its window on its own goroutine and
// receives tail entries from the hubs it is registered with.
type stream struct {
	svc  *Service
	q    Query
	live bool
	// window are the list filters (several when the node clause was
	// split); tail the same without time bounds, for the hub.
	window, tail []string
	values       map[string][]string // mapping value -> node names
	unmapped     []string
	hubs         []*hub

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{} // closed when run returns
	// wake holds one token when Next has something to look at.
	wake chan struct{}

	// dedupFrom: entries from then on may arrive twice (see seenLocked).
	dedupFrom time.Time

	mu        sync.Mutex
	stopAfter func() bool
	seen      map[entryKey]int64
	newest    int64
	closed    bool
	listing   bool
	final     bool // Done or Failed: nothing more will come
	changed   bool
	pending   []*Entry // for the next Batch
	held      []*Entry // tail entries that arrived while listing
	st        Status
	// tails is each hub's state for this stream: nil error when its tail
	// is up.
	tails map[*hub]tailState
}

type tailState struct {
	up      bool
	err     error
	retryAt time.Time
	// stalled: the tail is down because it was found dead (not ended);
	// lastSign is when it last worked.
	stalled  bool
	lastSign time.Time
}

func newStream(s *Service, q Query) (*stream, error) {
	now := s.cfg.Now()
	live := q.To.IsZero() || !q.To.Before(now)
	to := q.To
	if live {
		// The tail takes over from now. The bound keeps the list finite
		// however fast the nodes log (a page a call at 30 calls a minute
		// cannot keep up with a busy role); the margin takes in clocks a
		// little ahead, and the hub's first gap fill lists from just
		// before now, so nothing falls between.
		to = now.Add(gapOverlap)
	}
	wp, err := BuildPlan(q, s.cfg.Mapping, q.From, to)
	if err != nil {
		return nil, err
	}
	tp, err := BuildPlan(q, s.cfg.Mapping, time.Time{}, time.Time{})
	if err != nil {
		return nil, err
	}
	st := &stream{
		svc:      s,
		q:        q,
		live:     live,
		window:   wp.Filters,
		tail:     tp.Filters,
		values:   wp.values,
		unmapped: wp.Unmapped,
		done:     make(chan struct{}),
		wake:     make(chan struct{}, 1),
		listing:  true,
		tails:    map[*hub]tailState{},
		seen:     map[entryKey]int64{},
		// The hubs' first gap fill reaches back gapOverlap before
		// registration, which happens right after this.
		dedupFrom: now.Add(-2 * gapOverlap),
	}
	st.st = Status{Phase: Listing, Unmapped: slices.Clone(wp.Unmapped)}
	st.ctx, st.cancel = context.WithCancel(s.ctx)
	return st, nil
}

func (st *stream) signal() {
	select {
	case st.wake <- struct{}{}:
	default:
	}
}

// run lists the window, then hands over to the tail (or finishes).
func (st *stream) run() {
	defer close(st.done)
	var err error
	for _, f := range st.window {
		err = st.svc.list(st.ctx, st.svc.cfg.Projects, f, listHooks{
			page: func(es []*loggingpb.LogEntry) { st.deliver(st.convert(es, ""), srcList) },
			call: func() {
				st.mu.Lock()
				st.st.ListCalls++
				st.mu.Unlock()
			},
			retry: func(err error, at time.Time) {
				st.mu.Lock()
				st.st.Err, st.st.RetryAt = err, at
				st.changed = true
				st.mu.Unlock()
				st.signal()
			},
			ok: func() {
				st.mu.Lock()
				st.st.Err, st.st.RetryAt = nil, time.Time{}
				st.changed = true
				st.mu.Unlock()
				st.signal()
			},
		})
		if err != nil {
			break
		}
	}
	if st.ctx.Err() != nil {
		return // closed
	}
	st.mu.Lock()
	st.listing = false
	switch {
	case err != nil:
		st.final = true
		st.st.Phase, st.st.Err, st.st.RetryAt = Failed, err, time.Time{}
		st.held = nil
	case !st.live:
		st.final = true
		st.st.Phase = Done
	default:
		st.pending = append(st.pending, st.held...)
		st.held = nil
		st.trimLocked()
		st.updatePhaseLocked()
	}
	st.changed = true
	st.mu.Unlock()
	st.signal()
	if err != nil {
		// A failed view needs no tail.
		for _, h := range st.hubs {
			h.unregister(st)
		}
	}
}

// convert turns API entries into Entries with their node set.
func (st *stream) convert(es []*loggingpb.LogEntry, project string) []*Entry {
	out := make([]*Entry, 0, len(es))
	for _, pe := range es {
		e := convert(pe, project)
		if v, ok := st.svc.entryValue(pe); ok {
			if names := st.values[v]; len(names) > 0 {
				e.Node = names[0]
			}
		}
		out = append(out, e)
	}
	return out
}

// source says where entries came from.
type source uint8

const (
	srcList source = iota // the stream's own window list
	srcTail               // a hub's tail
	srcGap                // a hub's gap-filling list call
)

// deliver queues entries for Next, dropping those this stream already
// delivered (a gap fill overlaps the tail and the window list on purpose),
// and returns those it kept: new to this stream. Tail entries wait while
// the window is still being listed, so batches stay mostly in time order.
func (st *stream) deliver(es []*Entry, src source) []*Entry {
	if len(es) == 0 {
		return nil
	}
	st.mu.Lock()
	if st.closed || st.final {
		st.mu.Unlock()
		return nil
	}
	kept := es[:0:0]
	for _, e := range es {
		// Gap fills overlap the tail by design and may reach before the
		// window; the view asked for nothing older than From.
		if e.Time.Before(st.q.From) {
			continue
		}
		if st.seenLocked(e) {
			st.st.Duplicates++
			continue
		}
		kept = append(kept, e)
	}
	switch src {
	case srcTail:
		st.st.Tailed += len(kept)
	default:
		st.st.Listed += len(kept)
	}
	if src == srcTail && st.listing {
		st.held = append(st.held, kept...)
	} else {
		st.pending = append(st.pending, kept...)
	}
	st.trimLocked()
	if len(kept) < len(es) {
		st.changed = true // the Duplicates count moved
	}
	st.mu.Unlock()
	st.signal()
	return kept
}

// seenMax bounds the keys a stream remembers for de-duplication; beyond
// it the oldest are forgotten (the view's Buffer still de-duplicates).
const seenMax = 50_000

// entryKey identifies an entry, as Buffer does: log name, insertId and
// timestamp.
type entryKey struct {
	logName, insertID string
	unix              int64
}

// seenLocked reports whether e was delivered already, and remembers it.
// Only entries a gap fill can return again are remembered: those from
// shortly before the stream registered with its hubs on. An entry without
// insertId is never a duplicate here (Buffer compares its content).
func (st *stream) seenLocked(e *Entry) bool {
	if !st.live || e.InsertID == "" || e.Time.Before(st.dedupFrom) {
		return false
	}
	k := entryKey{e.LogName, e.InsertID, e.Time.UnixNano()}
	if _, ok := st.seen[k]; ok {
		return true
	}
	st.seen[k] = k.unix
	st.newest = max(st.newest, k.unix)
	if len(st.seen) > seenMax {
		// A gap fill reaches back gapOverlap before the newest entry a
		// tail delivered; keep a margin beyond that.
		cut := st.newest - int64(4*gapOverlap)
		for k, t := range st.seen {
			if t < cut {
				delete(st.seen, k)
			}
		}
		if len(st.seen) > seenMax {
			clear(st.seen)
		}
	}
	return false
}

// trimLocked keeps at most Cap entries waiting, dropping the oldest
// queued first (a reader that fell that far behind wants the newest).
func (st *stream) trimLocked() {
	capacity := st.svc.cfg.Cap
	over := len(st.pending) + len(st.held) - capacity
	if over <= 0 {
		return
	}
	st.st.Dropped += over
	n := min(over, len(st.pending))
	clear(st.pending[:n])
	st.pending = st.pending[n:]
	over -= n
	if over > 0 {
		clear(st.held[:over])
		st.held = st.held[over:]
	}
}

// addStatus updates counters that come from a hub.
func (st *stream) addStatus(f func(*Status)) {
	st.mu.Lock()
	if st.closed || st.final {
		st.mu.Unlock()
		return
	}
	f(&st.st)
	st.changed = true
	st.mu.Unlock()
	st.signal()
}

// setTail records a hub's tail state for this stream.
func (st *stream) setTail(h *hub, ts tailState) {
	st.mu.Lock()
	if st.closed || st.final {
		st.mu.Unlock()
		return
	}
	if old, ok := st.tails[h]; ok && old == ts {
		st.mu.Unlock()
		return
	}
	st.tails[h] = ts
	st.updatePhaseLocked()
	st.changed = true
	st.mu.Unlock()
	st.signal()
}

// updatePhaseLocked derives the live phase from the hubs' tails: Live
// when every project's tail is up; Stalled when one was found dead (with
// the oldest last sign of life), else Reconnecting, with the first error
// and the latest retry time.
func (st *stream) updatePhaseLocked() {
	if st.listing || st.final {
		return
	}
	st.st.Phase, st.st.Err, st.st.RetryAt, st.st.LastSign = Live, nil, time.Time{}, time.Time{}
	for _, h := range st.hubs {
		ts, ok := st.tails[h]
		if !ok {
			// The hub has not covered this stream yet: what arrived
			// between the window list and the tail's start is still
			// being listed.
			if st.st.Phase == Live {
				st.st.Phase = Listing
			}
			continue
		}
		if !ts.up {
			switch {
			case ts.stalled:
				// A dead tail is the stronger claim: it says since
				// when nothing is known.
				st.st.Phase = Stalled
				if st.st.LastSign.IsZero() || ts.lastSign.Before(st.st.LastSign) {
					st.st.LastSign = ts.lastSign
				}
			case st.st.Phase != Stalled:
				st.st.Phase = Reconnecting
			}
			if ts.retryAt.After(st.st.RetryAt) {
				st.st.RetryAt = ts.retryAt
			}
		}
		// An up tail may still carry an error: a gap fill that failed.
		if st.st.Err == nil {
			st.st.Err = ts.err
		}
	}
}

// Next returns what arrived since the last call, waiting until there is
// something (entries or a status change). After the final batch of a
// stream that is Done or Failed it returns io.EOF; after Close, ErrClosed;
// when ctx is done, ctx.Err().
func (st *stream) Next(ctx context.Context) (Batch, error) {
	for {
		st.mu.Lock()
		if st.closed {
			st.mu.Unlock()
			return Batch{}, ErrClosed
		}
		if len(st.pending) > 0 || st.changed {
			b := Batch{Entries: st.pending, Status: st.statusLocked()}
			st.pending, st.changed = nil, false
			st.mu.Unlock()
			if !slices.IsSortedFunc(b.Entries, cmpEntryTime) {
				slices.SortStableFunc(b.Entries, cmpEntryTime)
			}
			return b, nil
		}
		if st.final {
			b := Batch{Status: st.statusLocked()}
			st.mu.Unlock()
			return b, io.EOF
		}
		st.mu.Unlock()
		select {
		case <-ctx.Done():
			return Batch{}, ctx.Err()
		case <-st.wake:
		case <-st.ctx.Done():
			// Closed (the stream or the Service): the next turn of the
			// loop sees closed once markClosed has run.
			st.markClosed()
		}
	}
}

func cmpEntryTime(a, b *Entry) int { return a.Time.Compare(b.Time) }

func (st *stream) statusLocked() Status {
	s := st.st
	s.Suppressed = maps.Clone(st.st.Suppressed)
	s.Unmapped = slices.Clone(st.st.Unmapped)
	return s
}

// markClosed makes Next return ErrClosed and drops what is queued.
func (st *stream) markClosed() {
	st.mu.Lock()
	st.closed = true
	st.pending, st.held = nil, nil
	st.mu.Unlock()
	st.signal()
}

// Close stops the stream: its list call ends, its hubs drop it (and
// restart their tails without it), and Next returns ErrClosed. It waits
// for the stream's goroutine.
func (st *stream) Close() {
	st.mu.Lock()
	stop := st.stopAfter
	st.mu.Unlock()
	if stop != nil {
		stop()
	}
	st.cancel()
	st.markClosed()
	for _, h := range st.hubs {
		h.unregister(st)
	}
	<-st.done
	st.svc.forget(st)
}

var _ Stream = (*stream)(nil)
