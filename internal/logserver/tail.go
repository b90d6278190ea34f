package logserver

import (
	"fmt"
	"slices"
	"sync"

	"cloud.google.com/go/logging/apiv2/loggingpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// maxTailBatch is the most entries one tail response carries.
const maxTailBatch = 1000

// tail is one open TailLogEntries stream. Writers only append to its queue
// (never blocking: past max entries they count drops instead), and the
// stream's own handler goroutine sends what is queued.
type tail struct {
	projects map[string]bool
	filter   *Filter
	max      int

	mu    sync.Mutex
	queue []*rec
	// suppressed counts entries left out since the last response, by
	// reason: NOT_CONSUMED from queue overflow, others from Suppress.
	suppressed map[loggingpb.TailLogEntriesResponse_SuppressionInfo_Reason]int64
	ending     bool
	// endErr, when set, ends the stream at once with this error.
	endErr error
	// frozen: the stream stays open and sends nothing more (FreezeTails).
	frozen bool

	// wake has room for one token: a writer leaves one when there is
	// something to send, and the sender picks it up.
	wake chan struct{}
	// onDrop is told how many entries were dropped (Stats.NotConsumed).
	onDrop func(int64)
}

func (t *tail) signal() {
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// offer queues r if it is for this tail.
func (t *tail) offer(r *rec) {
	if !t.projects[r.project] || !t.filter.Match(r.e) {
		return
	}
	t.mu.Lock()
	if t.ending || t.frozen {
		t.mu.Unlock()
		return
	}
	if len(t.queue) >= t.max {
		t.suppressed[loggingpb.TailLogEntriesResponse_SuppressionInfo_NOT_CONSUMED]++
		t.mu.Unlock()
		t.onDrop(1)
		t.signal()
		return
	}
	t.queue = append(t.queue, r)
	t.mu.Unlock()
	t.signal()
}

func (t *tail) suppress(reason loggingpb.TailLogEntriesResponse_SuppressionInfo_Reason, n int64) {
	t.mu.Lock()
	if !t.frozen {
		t.suppressed[reason] += n
	}
	t.mu.Unlock()
	t.signal()
}

// freeze makes the stream send nothing more, and drops what is queued.
func (t *tail) freeze() {
	t.mu.Lock()
	t.frozen = true
	t.queue = nil
	clear(t.suppressed)
	t.mu.Unlock()
}

// finish asks the stream to send what is queued and end.
func (t *tail) finish() {
	t.mu.Lock()
	t.ending = true
	t.mu.Unlock()
	t.signal()
}

// fail asks the stream to end at once with err.
func (t *tail) fail(err error) {
	t.mu.Lock()
	t.ending, t.endErr = true, err
	t.queue = nil
	t.mu.Unlock()
	t.signal()
}

// take removes the next response's worth from the queue. It returns nil
// when there is nothing to send, and whether the stream should end (with
// endErr) instead of sending.
func (t *tail) take() (resp *loggingpb.TailLogEntriesResponse, end bool, endErr error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.endErr != nil {
		return nil, true, t.endErr
	}
	if len(t.queue) == 0 && len(t.suppressed) == 0 {
		return nil, t.ending, nil
	}
	n, bytes := 0, 0
	for n < len(t.queue) && n < maxTailBatch && (n == 0 || bytes < maxPageBytes) {
		bytes += t.queue[n].size
		n++
	}
	resp = &loggingpb.TailLogEntriesResponse{Entries: make([]*loggingpb.LogEntry, n)}
	for i, r := range t.queue[:n] {
		resp.Entries[i] = r.e
	}
	clear(t.queue[:n])
	t.queue = t.queue[n:]
	if len(t.queue) == 0 {
		t.queue = nil // drop the backing array once drained
	}
	// Each response orders its entries by timestamp, as the API says.
	slices.SortStableFunc(resp.Entries, func(a, b *loggingpb.LogEntry) int {
		return ts{a.GetTimestamp().GetSeconds(), a.GetTimestamp().GetNanos()}.cmp(ts{b.GetTimestamp().GetSeconds(), b.GetTimestamp().GetNanos()})
	})
	for _, r := range []loggingpb.TailLogEntriesResponse_SuppressionInfo_Reason{
		loggingpb.TailLogEntriesResponse_SuppressionInfo_REASON_UNSPECIFIED,
		loggingpb.TailLogEntriesResponse_SuppressionInfo_RATE_LIMIT,
		loggingpb.TailLogEntriesResponse_SuppressionInfo_NOT_CONSUMED,
	} {
		if c, ok := t.suppressed[r]; ok {
			resp.SuppressionInfo = append(resp.SuppressionInfo, &loggingpb.TailLogEntriesResponse_SuppressionInfo{
				Reason: r, SuppressedCount: int32(min(c, 1<<31-1)),
			})
			delete(t.suppressed, r)
		}
	}
	return resp, false, nil
}

// TailLogEntries implements the RPC. The first request names the projects,
// the filter and the buffer window; later requests are ignored. The stream
// carries entries written after it started until the client cancels,
// EndTails or Close ends it.
func (s *Server) TailLogEntries(stream loggingpb.LoggingServiceV2_TailLogEntriesServer) error {
	ctx := stream.Context()
	req, err := stream.Recv()
	if err != nil {
		if st, ok := status.FromError(err); ok && st.Code() != codes.Unknown {
			return err
		}
		return status.Errorf(codes.InvalidArgument, "reading the first request: %v", err)
	}
	projects, err := projectSet(req.GetResourceNames())
	if err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	if bw := req.GetBufferWindow(); bw != nil {
		if err := bw.CheckValid(); err != nil {
			return status.Errorf(codes.InvalidArgument, "buffer_window: %v", err)
		}
		if d := bw.AsDuration(); d < 0 || d.Milliseconds() > 60000 {
			return status.Errorf(codes.InvalidArgument, "buffer_window: %v is outside 0-60s", d)
		}
	}
	f, err := ParseFilter(req.GetFilter())
	if err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	t := &tail{
		projects:   projects,
		filter:     f,
		max:        s.opts.TailQueue,
		suppressed: map[loggingpb.TailLogEntriesResponse_SuppressionInfo_Reason]int64{},
		wake:       make(chan struct{}, 1),
		onDrop:     func(n int64) { s.notConsumed.Add(n) },
	}
	if err := s.addTail(t); err != nil {
		return err
	}
	defer s.removeTail(t)
	for {
		select {
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		case <-t.wake:
		}
		for {
			resp, end, endErr := t.take()
			if end {
				return endErr
			}
			if resp == nil {
				break
			}
			if err := stream.Send(resp); err != nil {
				return err
			}
		}
	}
}

func (s *Server) addTail(t *tail) error {
	s.tailMu.Lock()
	defer s.tailMu.Unlock()
	if s.closed {
		return status.Error(codes.Unavailable, "logserver: server is closing")
	}
	for p := range t.projects {
		if s.perProject[p] >= s.opts.MaxTailsPerProject {
			return status.Error(codes.ResourceExhausted, fmt.Sprintf(
				"too many open tail sessions for project %q (limit %d)", p, s.opts.MaxTailsPerProject))
		}
	}
	for p := range t.projects {
		s.perProject[p]++
	}
	s.tails[t] = struct{}{}
	s.tailsOpened.Add(1)
	s.notifyTailsChanged()
	return nil
}

func (s *Server) removeTail(t *tail) {
	s.tailMu.Lock()
	defer s.tailMu.Unlock()
	if _, ok := s.tails[t]; !ok {
		return
	}
	delete(s.tails, t)
	s.notifyTailsChanged()
	for p := range t.projects {
		if s.perProject[p]--; s.perProject[p] <= 0 {
			delete(s.perProject, p)
		}
	}
}

// notifyTailsChanged wakes WaitTails; the caller holds tailMu.
func (s *Server) notifyTailsChanged() {
	close(s.tailsChanged)
	s.tailsChanged = make(chan struct{})
}
