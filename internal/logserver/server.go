// Package logserver is a local Cloud Logging endpoint for fleetdeck's tests
// and demo: an in-process gRPC server implementing LoggingServiceV2
// (WriteLogEntries, ListLogEntries, TailLogEntries, plus ListLogs and
// DeleteLog) that the real apiv2 client talks to through ClientOptions.
// There is no official emulator, and the client library's own fake is
// internal and cannot tail.
//
// # What it does like the real service
//
//   - WriteLogEntries applies the request's log_name, resource and labels
//     as defaults, requires log names "projects/P/logs/ID", fills in
//     insert_id, timestamp and receive_timestamp, honours partial_success
//     and dry_run, and drops duplicates (same project, timestamp and
//     insert_id).
//   - ListLogEntries takes one or more "projects/P" resource names, a
//     filter, order_by "timestamp asc" (default) or "timestamp desc", a
//     page_size (default 50; above 1000 it is clamped to 1000; negative is
//     rejected) and opaque page tokens that stay valid while entries are
//     written and are rejected when reused with another filter, order or
//     resource list. Entries with equal timestamps come in insert_id order.
//     When the filter does not mention timestamp, only entries of the last
//     24 hours are listed, as Cloud Logging does. A page also stops at
//     about 8 MiB of entries.
//   - TailLogEntries streams entries written after the stream started that
//     match its filter, in batches ordered by timestamp, at most
//     MaxTailsPerProject streams per project (RESOURCE_EXHAUSTED beyond).
//     A consumer too slow to keep up does not block writers: past
//     TailQueue queued entries further ones are dropped and reported as
//     suppression_info NOT_CONSUMED. buffer_window is validated (0-60 s)
//     but entries are sent at once rather than held back.
//   - A client that sends keepalive pings more often than every
//     KeepaliveMinTime (default 30 s, as Google's front ends) gets GOAWAY
//     "too_many_pings" and its connection closed.
//
// The filter language subset is documented on ParseFilter: comparisons
// (= != < <= > >= : =~ !~) on timestamp, receiveTimestamp, severity,
// logName, insertId, resource.type, resource.labels.KEY, labels.KEY,
// textPayload, jsonPayload.PATH, httpRequest.*, trace and spanId; value
// lists field=(a OR b); bare search terms; AND, OR, NOT, '-', implicit AND
// and parentheses. OR binds tighter than AND. Anything else is
// INVALID_ARGUMENT naming the position.
//
// # What it adds for tests
//
// Add inserts entries directly, FailLists makes list calls fail with a
// chosen code (quota tests), EndTails ends every tail cleanly and
// EndTailsWithError with an error (reconnect tests), FreezeTails makes
// the open tails go silent without ending (liveness tests), WaitTails
// waits until tails are registered (so a test knows its writes will reach
// them), Suppress injects suppression info, and Stats counts calls.
//
// # Where it differs
//
// No authentication, no per-entry size limit (256 KB in the real service;
// here a 1 MB payload round-trips so hostile-payload tests can use one),
// no quotas unless injected, only project parents (log views under a
// project are read as the project), entries are kept in memory only.
package logserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"cloud.google.com/go/logging/apiv2/loggingpb"
	"google.golang.org/api/option"
	"google.golang.org/genproto/googleapis/api/monitoredres"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// Options configures Start. The zero value is usable.
type Options struct {
	// Addr is the listen address; default "127.0.0.1:0" (a free port).
	Addr string
	// MaxEntries is how many entries are kept in memory; the oldest (by
	// timestamp) are dropped beyond it. Default 1,000,000.
	MaxEntries int
	// MaxTailsPerProject is how many TailLogEntries streams may be open
	// per project at once; one more gets RESOURCE_EXHAUSTED. Default 10,
	// like the real service.
	MaxTailsPerProject int
	// TailQueue is how many entries may wait for one slow tail consumer
	// before further ones are dropped and reported as NOT_CONSUMED.
	// Default 10,000.
	TailQueue int
	// ScanLimit, when positive, makes a list call stop after examining
	// that many entries and return what it found (possibly nothing) with
	// a next-page token, as the real service does on long searches. Zero
	// scans the whole range.
	ScanLimit int
	// Now is the clock used for receive timestamps, missing timestamps and
	// the 24-hour default of list calls. Default time.Now.
	Now func() time.Time
	// KeepaliveMinTime is the shortest interval between a client's
	// keepalive pings that the server accepts while a call is open; a
	// client that pings more often gets GOAWAY "too_many_pings" and its
	// connection closed, as from Google's front ends, whose limit is the
	// default, 30 s. (With no call open, gRPC's stricter rule applies.)
	KeepaliveMinTime time.Duration
}

// Stats counts what the server has done since Start.
type Stats struct {
	// ListCalls counts ListLogEntries calls received, including those
	// failed by FailLists.
	ListCalls int
	// TailsOpened counts TailLogEntries streams accepted; TailsOpen those
	// still open.
	TailsOpened, TailsOpen int
	// Writes counts WriteLogEntries calls and Add calls.
	Writes int
	// Entries is how many entries are stored now; Evicted how many were
	// dropped to stay within MaxEntries.
	Entries int
	Evicted int
	// NotConsumed counts entries dropped from slow tails' queues.
	NotConsumed int
}

// Server is a running local Cloud Logging endpoint. Its methods are safe
// for concurrent use.
type Server struct {
	loggingpb.UnimplementedLoggingServiceV2Server

	opts Options
	lis  net.Listener
	gs   *grpc.Server
	// served is closed when the grpc Serve goroutine has returned.
	served   chan struct{}
	serveErr error
	stopCtx  func() bool

	mu    sync.RWMutex // guards store
	store store

	tailMu sync.Mutex // guards tails, perProject, closed
	tails  map[*tail]struct{}
	// perProject counts open tails per project.
	perProject map[string]int
	closed     bool
	// tailsChanged is closed (and replaced) whenever a tail opens or
	// closes, to wake WaitTails.
	tailsChanged chan struct{}

	failMu   sync.Mutex
	failN    int
	failCode codes.Code

	idSeq       atomic.Uint64
	listCalls   atomic.Int64
	tailsOpened atomic.Int64
	writes      atomic.Int64
	notConsumed atomic.Int64

	closeOnce sync.Once
	closeErr  error
}

// DefaultKeepaliveMinTime is Options.KeepaliveMinTime's default: the
// ping interval Google's front ends accept.
const DefaultKeepaliveMinTime = 30 * time.Second

// maxMsgSize is the largest gRPC message the server receives or sends: a
// 1 MB payload (or a 10 MB write batch, the real service's limit) fits.
const maxMsgSize = 16 << 20

// maxPageBytes bounds one list response or tail batch so that it stays
// well under maxMsgSize even with large entries.
const maxPageBytes = 8 << 20

// Start listens on opts.Addr and serves in a goroutine until Close, or
// until ctx is done (which closes the server too).
func Start(ctx context.Context, opts Options) (*Server, error) {
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = 1_000_000
	}
	if opts.MaxTailsPerProject <= 0 {
		opts.MaxTailsPerProject = 10
	}
	if opts.TailQueue <= 0 {
		opts.TailQueue = 10_000
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.KeepaliveMinTime <= 0 {
		opts.KeepaliveMinTime = DefaultKeepaliveMinTime
	}
	var lc net.ListenConfig
	lis, err := lc.Listen(ctx, "tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("logserver: listening on %s: %w", opts.Addr, err)
	}
	s := &Server{
		opts:         opts,
		lis:          lis,
		served:       make(chan struct{}),
		store:        store{max: opts.MaxEntries},
		tails:        make(map[*tail]struct{}),
		perProject:   make(map[string]int),
		tailsChanged: make(chan struct{}),
	}
	s.gs = grpc.NewServer(grpc.MaxRecvMsgSize(maxMsgSize), grpc.MaxSendMsgSize(maxMsgSize),
		// gRPC's own default (5 minutes) would close, with GOAWAY, the
		// connection of a client pinging as Google's front ends allow.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: opts.KeepaliveMinTime}))
	loggingpb.RegisterLoggingServiceV2Server(s.gs, s)
	go func() {
		defer close(s.served)
		if err := s.gs.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			s.serveErr = err
		}
	}()
	s.stopCtx = context.AfterFunc(ctx, func() { _ = s.Close() })
	return s, nil
}

// Addr is the host:port the server listens on.
func (s *Server) Addr() string { return s.lis.Addr().String() }

// ClientOptions are what the apiv2 client needs to talk to this server:
// its endpoint, no authentication and plaintext gRPC.
//
//	c, err := logging.NewClient(ctx, srv.ClientOptions()...)
func (s *Server) ClientOptions() []option.ClientOption {
	return []option.ClientOption{
		option.WithEndpoint(s.Addr()),
		option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())),
	}
}

// Close ends every tail stream (cleanly, as EndTails does), stops serving
// and waits until no goroutine of the server is left. A tail whose client
// does not read is cut off after a grace period of two seconds.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.stopCtx()
		s.tailMu.Lock()
		s.closed = true
		for t := range s.tails {
			t.finish()
		}
		s.tailMu.Unlock()
		done := make(chan struct{})
		go func() {
			s.gs.GracefulStop()
			close(done)
		}()
		timer := time.NewTimer(2 * time.Second)
		select {
		case <-done:
		case <-timer.C:
			s.gs.Stop()
			<-done
		}
		timer.Stop()
		<-s.served
		if s.serveErr != nil {
			s.closeErr = fmt.Errorf("logserver: serving: %w", s.serveErr)
		}
	})
	return s.closeErr
}

// Add inserts entries as WriteLogEntries would (defaults for insert_id,
// timestamp and receive_timestamp; duplicates dropped) and delivers them
// to matching tails. It panics on an entry that WriteLogEntries would
// reject (no valid log name, an invalid timestamp) or that gRPC cannot
// carry (strings with invalid UTF-8, which the real service never
// returns: use strings.ToValidUTF8), since that is a bug in the caller and
// storing it would break every later list call.
func (s *Server) Add(entries ...*loggingpb.LogEntry) {
	s.writes.Add(1)
	prepared := make([]*loggingpb.LogEntry, 0, len(entries))
	now := s.opts.Now()
	for i, e := range entries {
		pe, err := s.prepare(e, &loggingpb.WriteLogEntriesRequest{}, now)
		if err == nil {
			// Entries that came through gRPC were checked when decoded;
			// these were not.
			_, err = proto.Marshal(pe)
		}
		if err != nil {
			panic(fmt.Sprintf("logserver.Add: entry %d: %v", i, err))
		}
		prepared = append(prepared, pe)
	}
	s.commit(prepared)
}

// FailLists makes the next n ListLogEntries calls fail with code (for
// example codes.ResourceExhausted, as the real service's quota does),
// replacing what an earlier FailLists left. n = 0 cancels. Note
// that the apiv2 client itself retries Unavailable, Internal and
// DeadlineExceeded, so those codes are usually not seen by its caller.
func (s *Server) FailLists(n int, code codes.Code) {
	s.failMu.Lock()
	defer s.failMu.Unlock()
	s.failN, s.failCode = n, code
}

// EndTails ends every open TailLogEntries stream cleanly: queued entries
// are sent, then the stream ends with OK, which the client sees as io.EOF.
// New streams can be opened afterwards.
func (s *Server) EndTails() {
	s.tailMu.Lock()
	defer s.tailMu.Unlock()
	for t := range s.tails {
		t.finish()
	}
}

// EndTailsWithError ends every open TailLogEntries stream at once with the
// given gRPC code (queued entries are discarded), as the real service does
// when a session fails, e.g. codes.Unavailable or codes.Internal.
func (s *Server) EndTailsWithError(code codes.Code) {
	s.tailMu.Lock()
	defer s.tailMu.Unlock()
	for t := range s.tails {
		t.fail(status.Error(code, "logserver: tail ended by EndTailsWithError"))
	}
}

// WaitTails blocks until exactly n TailLogEntries streams are open (a
// stream counts once its first request has been accepted; only entries
// written after that reach it) or ctx is done.
func (s *Server) WaitTails(ctx context.Context, n int) error {
	for {
		s.tailMu.Lock()
		open, changed := len(s.tails), s.tailsChanged
		s.tailMu.Unlock()
		if open == n {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("logserver: waiting for %d open tails (%d open): %w", n, open, ctx.Err())
		case <-changed:
		}
	}
}

// FreezeTails makes every open TailLogEntries stream go silent for good,
// as a session stuck inside the service would: the stream stays open and
// healthy at the gRPC level, but sends nothing more (entries written from
// now on are not sent to it, and what it had queued is dropped). It ends
// when its client cancels it or the server closes; tails opened later
// work normally.
func (s *Server) FreezeTails() {
	s.tailMu.Lock()
	defer s.tailMu.Unlock()
	for t := range s.tails {
		t.freeze()
	}
}

// Suppress makes the next response of every open tail stream carry
// suppression info with reason and count (a response with no entries is
// sent if nothing else is pending).
func (s *Server) Suppress(reason loggingpb.TailLogEntriesResponse_SuppressionInfo_Reason, count int32) {
	s.tailMu.Lock()
	defer s.tailMu.Unlock()
	for t := range s.tails {
		t.suppress(reason, int64(count))
	}
}

// Stats returns the server's counters.
func (s *Server) Stats() Stats {
	s.mu.RLock()
	entries, evicted := s.store.len(), s.store.dropped
	s.mu.RUnlock()
	s.tailMu.Lock()
	open := len(s.tails)
	s.tailMu.Unlock()
	return Stats{
		ListCalls:   int(s.listCalls.Load()),
		TailsOpened: int(s.tailsOpened.Load()),
		TailsOpen:   open,
		Writes:      int(s.writes.Load()),
		Entries:     entries,
		Evicted:     int(evicted),
		NotConsumed: int(s.notConsumed.Load()),
	}
}

// ---- WriteLogEntries ----

// WriteLogEntries implements the RPC.
func (s *Server) WriteLogEntries(ctx context.Context, req *loggingpb.WriteLogEntriesRequest) (*loggingpb.WriteLogEntriesResponse, error) {
	s.writes.Add(1)
	if len(req.GetEntries()) == 0 {
		return nil, status.Error(codes.InvalidArgument, "entries: at least one log entry is required")
	}
	if req.GetLogName() != "" {
		if _, err := projectOfLogName(req.GetLogName()); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "log_name: %v", err)
		}
	}
	now := s.opts.Now()
	prepared := make([]*loggingpb.LogEntry, 0, len(req.GetEntries()))
	var firstErr error
	failed := 0
	for i, e := range req.GetEntries() {
		pe, err := s.prepare(e, req, now)
		if err != nil {
			failed++
			if firstErr == nil {
				firstErr = fmt.Errorf("entries[%d]: %w", i, err)
			}
			continue
		}
		prepared = append(prepared, pe)
	}
	if firstErr != nil && !req.GetPartialSuccess() {
		return nil, status.Error(codes.InvalidArgument, firstErr.Error())
	}
	if !req.GetDryRun() {
		s.commit(prepared)
	}
	if firstErr != nil {
		return nil, status.Errorf(codes.InvalidArgument, "%d of %d entries rejected; first: %v", failed, len(req.GetEntries()), firstErr)
	}
	return &loggingpb.WriteLogEntriesResponse{}, nil
}

// prepare validates one entry and returns a copy with the request's
// defaults and the service-assigned fields filled in.
func (s *Server) prepare(e *loggingpb.LogEntry, req *loggingpb.WriteLogEntriesRequest, now time.Time) (*loggingpb.LogEntry, error) {
	if e == nil {
		return nil, errors.New("nil entry")
	}
	c := cloneEntry(e)
	if c.LogName == "" {
		c.LogName = req.GetLogName()
	}
	if c.LogName == "" {
		return nil, errors.New("log_name: required (in the entry or the request)")
	}
	if _, err := projectOfLogName(c.LogName); err != nil {
		return nil, fmt.Errorf("log_name: %w", err)
	}
	if c.Resource == nil {
		c.Resource = req.GetResource()
	}
	if c.Resource == nil {
		c.Resource = &monitoredres.MonitoredResource{Type: "global"}
	}
	if len(req.GetLabels()) > 0 {
		labels := make(map[string]string, len(c.Labels)+len(req.GetLabels()))
		for k, v := range req.GetLabels() {
			labels[k] = v
		}
		for k, v := range c.Labels {
			labels[k] = v
		}
		c.Labels = labels
	}
	if c.Timestamp == nil {
		c.Timestamp = tsProto(now)
	} else if err := c.Timestamp.CheckValid(); err != nil {
		return nil, fmt.Errorf("timestamp: %w", err)
	}
	if c.InsertId == "" {
		// Zero-padded so that entries of one request without their own
		// insert_id sort in request order, as the API promises.
		c.InsertId = fmt.Sprintf("ls%016x", s.idSeq.Add(1))
	}
	c.ReceiveTimestamp = tsProto(now)
	return c, nil
}

// commit stores prepared entries and hands the new ones to the tails.
func (s *Server) commit(entries []*loggingpb.LogEntry) {
	if len(entries) == 0 {
		return
	}
	added := make([]*rec, 0, len(entries))
	s.mu.Lock()
	for _, e := range entries {
		p, _ := projectOfLogName(e.LogName)
		r := &rec{
			key:  key{t: ts{e.Timestamp.GetSeconds(), e.Timestamp.GetNanos()}, id: e.InsertId, project: p},
			e:    e,
			log:  e.LogName,
			size: proto.Size(e),
		}
		if s.store.insert(r) {
			added = append(added, r)
		}
	}
	s.mu.Unlock()
	if len(added) == 0 {
		return
	}
	s.tailMu.Lock()
	defer s.tailMu.Unlock()
	for t := range s.tails {
		for _, r := range added {
			t.offer(r)
		}
	}
}

// projectOfLogName returns P of "projects/P/logs/ID".
func projectOfLogName(name string) (string, error) {
	rest, ok := strings.CutPrefix(name, "projects/")
	if !ok {
		return "", fmt.Errorf("%q is not of the form projects/PROJECT/logs/LOG_ID", name)
	}
	p, id, ok := strings.Cut(rest, "/logs/")
	if !ok || p == "" || strings.Contains(p, "/") || id == "" {
		return "", fmt.Errorf("%q is not of the form projects/PROJECT/logs/LOG_ID", name)
	}
	if len(id) >= 512 {
		return "", fmt.Errorf("log id of %q is longer than 511 characters", name)
	}
	for _, c := range id {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '/' || c == '_' || c == '-' || c == '.' || c == '%':
		default:
			return "", fmt.Errorf("log id of %q has character %q (allowed: letters, digits, / _ - . and URL escapes)", name, c)
		}
	}
	return p, nil
}

// projectOfResource returns P of "projects/P" or of a log view
// "projects/P/locations/L/buckets/B/views/V".
func projectOfResource(name string) (string, error) {
	rest, ok := strings.CutPrefix(name, "projects/")
	if !ok {
		return "", fmt.Errorf("resource name %q: only projects/PROJECT is supported", name)
	}
	p, view, hasView := strings.Cut(rest, "/")
	if p == "" {
		return "", fmt.Errorf("resource name %q: empty project", name)
	}
	if hasView {
		parts := strings.Split(view, "/")
		if len(parts) != 6 || parts[0] != "locations" || parts[2] != "buckets" || parts[4] != "views" {
			return "", fmt.Errorf("resource name %q: only projects/PROJECT and log views are supported", name)
		}
	}
	return p, nil
}

func projectSet(names []string) (map[string]bool, error) {
	if len(names) == 0 {
		return nil, errors.New("resource_names: at least one is required")
	}
	if len(names) > 100 {
		return nil, errors.New("resource_names: at most 100 are allowed")
	}
	set := make(map[string]bool, len(names))
	for _, n := range names {
		p, err := projectOfResource(n)
		if err != nil {
			return nil, err
		}
		set[p] = true
	}
	return set, nil
}

// ---- ListLogs and DeleteLog (small, for completeness) ----

// ListLogs implements the RPC: the log names that have entries in the
// parent project, in one page.
func (s *Server) ListLogs(ctx context.Context, req *loggingpb.ListLogsRequest) (*loggingpb.ListLogsResponse, error) {
	p, err := projectOfResource(req.GetParent())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	seen := map[string]bool{}
	var names []string
	s.mu.RLock()
	for _, r := range s.store.live() {
		if r.project == p && !seen[r.log] {
			seen[r.log] = true
			names = append(names, r.log)
		}
	}
	s.mu.RUnlock()
	return &loggingpb.ListLogsResponse{LogNames: names}, nil
}
