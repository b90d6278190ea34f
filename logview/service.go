package logview

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	logging "cloud.google.com/go/logging/apiv2"
	"cloud.google.com/go/logging/apiv2/loggingpb"
	"github.com/googleapis/gax-go/v2"
	"golang.org/x/time/rate"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	gbackoff "google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	"github.com/fleetdeck/fleetdeck/internal/backoff"
)

// Config defaults.
const (
	DefaultListPerMinute = 30
	DefaultPageSize      = 1000
	DefaultRetryMin      = time.Second
	DefaultRetryMax      = 30 * time.Second
	DefaultTailSettle    = 2 * time.Second
	// DefaultTailCheck and DefaultCheckTimeout: a tail silent for 20 s is
	// checked with one list call (3 a minute per quiet project, a tenth
	// of the default budget) that must answer within 10 s, so a dead tail
	// is called stalled about 30 s after its last sign of life.
	DefaultTailCheck    = 20 * time.Second
	DefaultCheckTimeout = 10 * time.Second
	// DefaultKeepaliveTime is the gRPC keepalive ping interval while a
	// call (the tail) is open and nothing is read: Google's front ends
	// answer pings more frequent than every 30 s with GOAWAY
	// "too_many_pings" and close the connection. DefaultKeepaliveTimeout
	// is how long an unanswered ping may wait before the connection is
	// closed as dead.
	DefaultKeepaliveTime    = 30 * time.Second
	DefaultKeepaliveTimeout = 10 * time.Second
	// minKeepaliveTime is gRPC's floor for the ping interval (it raises a
	// smaller one, with a warning in its log).
	minKeepaliveTime = 10 * time.Second
	// reconnectMax caps gRPC's own backoff between connection attempts
	// (120 s by default): once the path works again, the connection, and
	// so the tail, comes back within seconds rather than minutes. An
	// attempt is a TCP and TLS handshake, cheap every 5 s.
	reconnectMax = 5 * time.Second
	// listBurst lets a view's first pages (or a split filter's several
	// list calls) go out at once before the per-minute rate applies.
	listBurst = 5
	// gapOverlap is how far before the last entry a tail delivered the gap
	// fill starts, for entries that were in flight when the tail ended.
	gapOverlap = 10 * time.Second
	// missLag is how long after Cloud Logging received an entry a working
	// tail must have delivered it: its 2 s buffer window, list latency
	// and a clock a few seconds off, with room to spare. A liveness check
	// only counts entries at least this old.
	missLag = 10 * time.Second
)

// ErrClosed is returned by Stream.Next after the Stream or its Service
// was closed.
var ErrClosed = errors.New("logview: stream closed")

// Config configures a Service.
type Config struct {
	// Projects are the Cloud Logging projects to read (at least one):
	// project ids, or "projects/ID".
	Projects []string
	// Endpoint overrides the service address ("host:port"), for a local
	// endpoint; "" is Google's.
	Endpoint string
	// Insecure uses plaintext gRPC and no authentication: only for a
	// local Endpoint, which it requires.
	Insecure bool
	// ClientOptions are passed to the client after those derived from the
	// fields above (tests pass the local server's).
	ClientOptions []option.ClientOption
	// Mapping finds nodes in the logs (see Mapping for its defaults).
	Mapping Mapping
	// ListPerMinute is the most list calls per minute per project
	// (default 30, half of Cloud Logging's read quota, so that a
	// colleague's console or gcloud still gets through).
	ListPerMinute int
	// PageSize is the list page size (default and maximum 1000).
	PageSize int
	// Cap bounds the entries waiting for one Stream's reader and is the
	// Buffer capacity the console should use (default DefaultCap).
	Cap int
	// RetryMin and RetryMax bound the exponential backoff after quota
	// errors and tail failures (defaults 1 s and 30 s); a stalled tail
	// retries at most every 5 s.
	RetryMin, RetryMax time.Duration
	// TailSettle is how long after (re)starting a tail the gap-filling list
	// call waits, unless the tail answers sooner: a tail only delivers
	// entries once the service has registered it, and the gap fill must
	// run after that to leave no hole (default 2 s).
	TailSettle time.Duration
	// TailCheck is how long a project's tail may deliver nothing before
	// its hub checks that it still works (default 20 s); CheckTimeout
	// bounds that check's list call, the start of a tail and a connection
	// attempt (default 10 s). A tail that fails the check is stalled: see
	// the hub for the rule.
	TailCheck, CheckTimeout time.Duration
	// KeepaliveTime and KeepaliveTimeout are the connection's gRPC
	// keepalive: while a call is open and nothing arrives for
	// KeepaliveTime, the client pings, and it closes the connection when
	// the ping is not answered within KeepaliveTimeout (defaults 30 s, the
	// least Google's front ends accept, and 10 s). gRPC's minimum, 10 s,
	// applies to KeepaliveTime.
	KeepaliveTime, KeepaliveTimeout time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Service reads Cloud Logging for the console: one apiv2 client, one list
// rate limiter per project and one tail hub per project shared by all open
// Streams. It is safe for concurrent use.
type Service struct {
	cfg      Config
	client   *logging.Client
	field    fieldPath
	limiters map[string]*rate.Limiter

	// ctx ends when the Service is closed; every goroutine derives from it.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	closed  bool
	hubs    map[string]*hub
	streams map[*stream]struct{}
}

var _ Opener = (*Service)(nil)

// New validates cfg and makes the client. Without Insecure or
// ClientOptions the client uses Application Default Credentials; it fails
// here when there are none.
func New(ctx context.Context, cfg Config) (*Service, error) {
	if len(cfg.Projects) == 0 {
		return nil, errors.New("logview: no project configured")
	}
	projects := make([]string, 0, len(cfg.Projects))
	for _, p := range cfg.Projects {
		p = strings.TrimPrefix(strings.TrimSpace(p), "projects/")
		if p == "" || strings.ContainsAny(p, "/ \t\n\"\\") {
			return nil, fmt.Errorf("logview: invalid project %q", p)
		}
		projects = append(projects, p)
	}
	cfg.Projects = projects
	if err := cfg.Mapping.Validate(); err != nil {
		return nil, err
	}
	cfg.Mapping = cfg.Mapping.withDefaults()
	if cfg.ListPerMinute <= 0 {
		cfg.ListPerMinute = DefaultListPerMinute
	}
	if cfg.PageSize <= 0 || cfg.PageSize > DefaultPageSize {
		cfg.PageSize = DefaultPageSize
	}
	if cfg.Cap <= 0 {
		cfg.Cap = DefaultCap
	}
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = DefaultRetryMin
	}
	if cfg.RetryMax < cfg.RetryMin {
		cfg.RetryMax = max(DefaultRetryMax, cfg.RetryMin)
	}
	if cfg.TailSettle <= 0 {
		cfg.TailSettle = DefaultTailSettle
	}
	if cfg.TailCheck <= 0 {
		cfg.TailCheck = DefaultTailCheck
	}
	if cfg.CheckTimeout <= 0 {
		cfg.CheckTimeout = DefaultCheckTimeout
	}
	if cfg.KeepaliveTime <= 0 {
		cfg.KeepaliveTime = DefaultKeepaliveTime
	}
	cfg.KeepaliveTime = max(cfg.KeepaliveTime, minKeepaliveTime)
	if cfg.KeepaliveTimeout <= 0 {
		cfg.KeepaliveTimeout = DefaultKeepaliveTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Insecure && cfg.Endpoint == "" {
		return nil, errors.New("logview: insecure needs a local endpoint")
	}

	opts := []option.ClientOption{
		// Without keepalive a connection whose path died silently (a
		// NAT or firewall dropping it, a peer gone without a reset) keeps
		// the tail "open" forever: pings notice it. Only while a call is
		// open: an idle connection needs no checking and Google's front
		// ends do not welcome pings on one.
		option.WithGRPCDialOption(grpc.WithKeepaliveParams(keepalive.ClientParameters{
			Time: cfg.KeepaliveTime, Timeout: cfg.KeepaliveTimeout,
		})),
		option.WithGRPCDialOption(grpc.WithConnectParams(grpc.ConnectParams{
			Backoff: gbackoff.Config{
				BaseDelay: time.Second, Multiplier: 1.6, Jitter: 0.2, MaxDelay: reconnectMax,
			},
			MinConnectTimeout: cfg.CheckTimeout,
		})),
	}
	if cfg.Endpoint != "" {
		opts = append(opts, option.WithEndpoint(cfg.Endpoint))
	}
	if cfg.Insecure {
		opts = append(opts, option.WithoutAuthentication(),
			option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	}
	opts = append(opts, cfg.ClientOptions...)
	client, err := logging.NewClient(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("logview: connecting to Cloud Logging: %w", err)
	}

	fp, _ := parseField(cfg.Mapping.Field) // validated above
	s := &Service{
		cfg:      cfg,
		client:   client,
		field:    fp,
		limiters: map[string]*rate.Limiter{},
		hubs:     map[string]*hub{},
		streams:  map[*stream]struct{}{},
	}
	for _, p := range projects {
		s.limiters[p] = rate.NewLimiter(rate.Limit(float64(cfg.ListPerMinute)/60), listBurst)
	}
	// The Service outlives New's ctx (which may only bound the dial).
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// Cap is the Buffer capacity views should use.
func (s *Service) Cap() int { return s.cfg.Cap }

// Mapping is the Service's mapping with defaults filled in.
func (s *Service) Mapping() Mapping { return s.cfg.Mapping }

// Close stops every Stream and tail and closes the client. It waits for
// all of the Service's goroutines to end.
func (s *Service) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	streams := make([]*stream, 0, len(s.streams))
	for st := range s.streams {
		streams = append(streams, st)
	}
	s.mu.Unlock()

	s.cancel()
	for _, st := range streams {
		st.markClosed()
	}
	s.wg.Wait()
	if err := s.client.Close(); err != nil {
		return fmt.Errorf("logview: closing the Cloud Logging client: %w", err)
	}
	return nil
}

// entryValue reads the mapping field from an entry of the mapped resource
// type.
func (s *Service) entryValue(e *loggingpb.LogEntry) (string, bool) {
	if rt := s.cfg.Mapping.ResourceType; rt != "" && e.GetResource().GetType() != rt {
		return "", false
	}
	return s.field.lookup(e)
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// retryable reports whether a list error is worth retrying after a
// backoff. RESOURCE_EXHAUSTED is the quota (the library never retries it);
// the transient codes have already been retried by the library for up to
// a minute, and keep being retried here more slowly. Everything else (a
// bad filter, a missing permission, an unknown project) will not get
// better by asking again.
func retryable(err error) bool {
	switch status.Code(err) {
	case codes.ResourceExhausted, codes.Unavailable, codes.Aborted, codes.Internal, codes.DeadlineExceeded:
		return true
	}
	return false
}

// describe wraps a list or tail error with what was being done and, for
// the common configuration mistakes, what to check.
func describe(err error, what string, projects []string) error {
	hint := ""
	switch status.Code(err) {
	case codes.PermissionDenied:
		hint = " (the account needs roles/logging.viewer on the project)"
	case codes.Unauthenticated:
		hint = " (check Application Default Credentials: gcloud auth application-default login)"
	case codes.NotFound:
		hint = " (check the project id)"
	case codes.ResourceExhausted:
		hint = " (quota; backing off)"
	}
	return fmt.Errorf("%s in %s%s: %w", what, strings.Join(projects, ", "), hint, err)
}

// listHooks are told what a list operation does.
type listHooks struct {
	// page receives each page's entries (possibly none).
	page func([]*loggingpb.LogEntry)
	// call is told of each list call made.
	call func()
	// retry is told of a retryable error and when the next attempt is;
	// ok() that a call succeeded afterwards.
	retry func(err error, at time.Time)
	ok    func()
}

// ErrThrottled is the Status.Err of a stream that waits for its projects'
// list-call budget (ListPerMinute) before the next page.
var ErrThrottled = errors.New("waiting for the list-call budget")

// throttleShown is the shortest wait for the budget worth showing.
const throttleShown = 500 * time.Millisecond

// noLibraryRetry turns off the client library's own retries of list calls
// (UNAVAILABLE, INTERNAL, DEADLINE_EXCEEDED for up to 60 s): list retries
// them itself, with the error and the next attempt visible in the Status,
// instead of a silent minute and then "deadline exceeded" when the
// endpoint cannot be reached.
var noLibraryRetry = gax.WithRetry(func() gax.Retryer { return nil })

// reserve takes one list call from each project's limiter and returns how
// long to wait before making it.
func (s *Service) reserve(projects []string) time.Duration {
	var d time.Duration
	for _, p := range projects {
		d = max(d, s.limiters[p].Reserve().Delay())
	}
	return d
}

// listRequest is a list call's request: filter over projects, oldest
// first, full pages.
func (s *Service) listRequest(projects []string, filter string) *loggingpb.ListLogEntriesRequest {
	names := make([]string, len(projects))
	for i, p := range projects {
		names[i] = "projects/" + p
	}
	return &loggingpb.ListLogEntriesRequest{
		ResourceNames: names,
		Filter:        filter,
		OrderBy:       "timestamp asc",
		PageSize:      int32(s.cfg.PageSize),
	}
}

// list runs one list operation: filter over projects, oldest first, page
// by page until the last page. Before each call it takes a token from
// every project's limiter (one call reads all the projects). Retryable
// errors back off and retry the same page; others are returned, wrapped.
func (s *Service) list(ctx context.Context, projects []string, filter string, h listHooks) error {
	req := s.listRequest(projects, filter)
	bo := backoff.New(s.cfg.RetryMin, s.cfg.RetryMax)
	token := ""
	failing := false
	for {
		if d := s.reserve(projects); d > 0 {
			// Waiting for the list-call budget can take many seconds on a
			// wide window: say so, or the view looks hung.
			failing = true
			if h.retry != nil && d > throttleShown {
				h.retry(ErrThrottled, s.cfg.Now().Add(d))
			}
			if err := sleep(ctx, d); err != nil {
				return err
			}
		}
		if h.call != nil {
			h.call()
		}
		// InternalFetch is exactly one ListLogEntries call, which is what
		// the limiter counts; the iterator's Next and the Pager may make
		// several calls per page and drop a partial page on error.
		it := s.client.ListLogEntries(ctx, req, noLibraryRetry)
		entries, next, err := it.InternalFetch(s.cfg.PageSize, token)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if !retryable(err) {
				return describe(err, "listing log entries", projects)
			}
			d := bo.Next()
			failing = true
			if h.retry != nil {
				h.retry(describe(err, "listing log entries", projects), s.cfg.Now().Add(d))
			}
			if err := sleep(ctx, d); err != nil {
				return err
			}
			continue
		}
		bo.Reset()
		if failing && h.ok != nil {
			h.ok()
		}
		failing = false
		if h.page != nil {
			h.page(entries)
		}
		if next == "" {
			return nil
		}
		token = next
	}
}

// Open starts a Stream for q: it lists the window and, when the window
// reaches now, continues live. ctx bounds the Stream's life: when it is
// done the Stream closes, as if Close were called. Open itself does not
// block on the network.
func (s *Service) Open(ctx context.Context, q Query) (Stream, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	st, err := newStream(s, q)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	s.streams[st] = struct{}{}
	var hubs []*hub
	if st.live {
		for _, p := range s.cfg.Projects {
			h := s.hubs[p]
			if h == nil {
				h = newHub(s, p)
				s.hubs[p] = h
				s.wg.Add(1)
				go func() {
					defer s.wg.Done()
					h.run(s.ctx)
				}()
			}
			hubs = append(hubs, h)
		}
	}
	st.hubs = hubs
	s.wg.Add(1)
	s.mu.Unlock()

	// Register before listing: the tail then covers what arrives while
	// the window is being listed (held until the list is done).
	for _, h := range hubs {
		h.register(st)
	}
	go func() {
		defer s.wg.Done()
		st.run()
	}()
	stop := context.AfterFunc(ctx, st.Close)
	st.mu.Lock()
	st.stopAfter = stop
	st.mu.Unlock()
	return st, nil
}

// forget removes a closed stream from the Service.
func (s *Service) forget(st *stream) {
	s.mu.Lock()
	delete(s.streams, st)
	s.mu.Unlock()
}
