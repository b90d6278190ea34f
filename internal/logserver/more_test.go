package logserver_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	logging "cloud.google.com/go/logging/apiv2"
	"cloud.google.com/go/logging/apiv2/loggingpb"
	"google.golang.org/api/iterator"
	"google.golang.org/genproto/googleapis/api/monitoredres"
	ltype "google.golang.org/genproto/googleapis/logging/type"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/fleetdeck/fleetdeck/internal/logserver"
)

func TestSuppress(t *testing.T) {
	srv, c := logserver.StartTest(t, logserver.Options{})
	stream := openTail(t, t.Context(), c, "projects/p", "")
	waitTails(t, srv, 1)
	srv.Suppress(loggingpb.TailLogEntriesResponse_SuppressionInfo_RATE_LIMIT, 7)
	resp, err := stream.Recv()
	if err != nil {
		t.Fatalf("Recv: %v", err)
	}
	si := resp.GetSuppressionInfo()
	if len(resp.GetEntries()) != 0 || len(si) != 1 ||
		si[0].GetReason() != loggingpb.TailLogEntriesResponse_SuppressionInfo_RATE_LIMIT || si[0].GetSuppressedCount() != 7 {
		t.Fatalf("response = %v, want only RATE_LIMIT 7", resp)
	}
	// Reported once: the next response carries entries only.
	srv.Add(entry("p", "syslog", time.Now(), 0, "after"))
	resp, err = stream.Recv()
	if err != nil {
		t.Fatalf("Recv: %v", err)
	}
	if len(resp.GetSuppressionInfo()) != 0 || len(resp.GetEntries()) != 1 {
		t.Fatalf("second response = %v, want one entry and no suppression info", resp)
	}
}

func TestTailSlowConsumerIsReportedNotBlocking(t *testing.T) {
	srv, c := logserver.StartTest(t, logserver.Options{TailQueue: 2})
	stream := openTail(t, t.Context(), c, "projects/p", "")
	waitTails(t, srv, 1)
	// 60 MiB for a client that does not read: far more than gRPC's flow
	// control lets through, so the queue overflows. Add must not block.
	big := strings.Repeat("x", 1<<20)
	const n = 60
	for i := range n {
		srv.Add(entry("p", "syslog", time.Now(), 0, fmt.Sprint(i, big)))
	}
	// Every entry is either delivered or counted as NOT_CONSUMED.
	received, dropped := 0, 0
	for received+dropped < n {
		resp, err := stream.Recv()
		if err != nil {
			t.Fatalf("Recv after %d received, %d dropped: %v", received, dropped, err)
		}
		received += len(resp.GetEntries())
		for _, si := range resp.GetSuppressionInfo() {
			if si.GetReason() != loggingpb.TailLogEntriesResponse_SuppressionInfo_NOT_CONSUMED {
				t.Errorf("suppression reason %v", si.GetReason())
			}
			dropped += int(si.GetSuppressedCount())
		}
	}
	if received+dropped != n || dropped == 0 {
		t.Errorf("received %d, dropped %d; want a total of %d with some dropped", received, dropped, n)
	}
	if got := srv.Stats().NotConsumed; got != dropped {
		t.Errorf("Stats.NotConsumed = %d, stream reported %d", got, dropped)
	}
}

func TestMaxTailsPerProject(t *testing.T) {
	srv, c := logserver.StartTest(t, logserver.Options{MaxTailsPerProject: 3})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var first context.CancelFunc
	for i := range 3 {
		sctx, scancel := context.WithCancel(ctx)
		defer scancel()
		if i == 0 {
			first = scancel
		}
		openTail(t, sctx, c, "projects/p", "")
	}
	waitTails(t, srv, 3)
	over := openTail(t, ctx, c, "projects/p", "")
	if _, err := over.Recv(); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("fourth tail: err = %v, want ResourceExhausted", err)
	}
	// Other projects have their own budget; a tail naming p and q counts
	// against both.
	openTail(t, ctx, c, "projects/q", "")
	waitTails(t, srv, 4)
	both, err := c.TailLogEntries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := both.Send(&loggingpb.TailLogEntriesRequest{ResourceNames: []string{"projects/q", "projects/p"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := both.Recv(); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("tail on p and q: err = %v, want ResourceExhausted", err)
	}
	// Closing one frees its slot.
	first()
	waitTails(t, srv, 3)
	again := openTail(t, ctx, c, "projects/p", "")
	waitTails(t, srv, 4)
	srv.Add(entry("p", "syslog", time.Now(), 0, "hello"))
	resp, err := again.Recv()
	if err != nil || len(resp.GetEntries()) != 1 {
		t.Fatalf("tail after a slot was freed: %v, %v", resp, err)
	}
}

func TestTailRejectsBadRequests(t *testing.T) {
	_, c := logserver.StartTest(t, logserver.Options{})
	for _, req := range []*loggingpb.TailLogEntriesRequest{
		{},
		{ResourceNames: []string{"organizations/1"}},
		{ResourceNames: []string{"projects/p"}, Filter: "severity>="},
		{ResourceNames: []string{"projects/p"}, BufferWindow: durationpb.New(61 * time.Second)},
		{ResourceNames: []string{"projects/p"}, BufferWindow: durationpb.New(-time.Second)},
	} {
		stream, err := c.TailLogEntries(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if err := stream.Send(req); err != nil {
			t.Fatal(err)
		}
		if _, err := stream.Recv(); status.Code(err) != codes.InvalidArgument {
			t.Errorf("tail %v: err = %v, want InvalidArgument", req, err)
		}
	}
}

func TestTailBatchesAreOrderedAndComplete(t *testing.T) {
	srv, c := logserver.StartTest(t, logserver.Options{})
	stream := openTail(t, t.Context(), c, "projects/p", `labels.keep="yes"`)
	waitTails(t, srv, 1)
	now := time.Now()
	const n = 5000
	var want []string
	for i := range n {
		// Written in reverse time order within each write call.
		e := entry("p", "syslog", now.Add(-time.Duration(i)*time.Millisecond), 0, fmt.Sprint(i))
		e.Labels = map[string]string{"keep": []string{"yes", "no"}[i%2]}
		if i%2 == 0 {
			want = append(want, fmt.Sprint(i))
		}
		srv.Add(e)
	}
	var got []string
	for len(got) < len(want) {
		resp, err := stream.Recv()
		if err != nil {
			t.Fatalf("Recv: %v", err)
		}
		if len(resp.GetEntries()) > 1000 {
			t.Errorf("batch of %d entries, want at most 1000", len(resp.GetEntries()))
		}
		if !slices.IsSortedFunc(resp.GetEntries(), func(a, b *loggingpb.LogEntry) int {
			return a.GetTimestamp().AsTime().Compare(b.GetTimestamp().AsTime())
		}) {
			t.Errorf("batch not ordered by timestamp")
		}
		got = append(got, texts(resp.GetEntries())...)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("tail delivered %d entries, want %d (the matching ones, once each)", len(got), len(want))
	}
}

func TestCloseEndsTailsCleanly(t *testing.T) {
	srv, err := logserver.Start(context.Background(), logserver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := logging.NewClient(context.Background(), srv.ClientOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	reading := openTail(t, t.Context(), c, "projects/p", "")
	// A second tail whose client never reads, with more queued than flow
	// control lets through: Close must not hang on it.
	stuck := openTail(t, t.Context(), c, "projects/q", "")
	waitTails(t, srv, 2)
	big := strings.Repeat("y", 1<<20)
	for range 40 {
		srv.Add(entry("q", "syslog", time.Now(), 0, big))
	}
	if err := srv.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := reading.Recv(); !errors.Is(err, io.EOF) && status.Code(err) != codes.Unavailable {
		t.Errorf("reading tail after Close: err = %v, want io.EOF or Unavailable", err)
	}
	for {
		if _, err := stuck.Recv(); err != nil {
			break
		}
	}
	if _, err := net.Dial("tcp", srv.Addr()); err == nil {
		t.Errorf("server still accepts connections after Close")
	}
	if err := srv.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestStartContextCancelCloses(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := logserver.Start(ctx, logserver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	// Close waits for the shutdown that the cancellation started.
	if err := srv.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if conn, err := net.Dial("tcp", srv.Addr()); err == nil {
		conn.Close()
		t.Errorf("server still accepts connections after its context was cancelled")
	}
}

func TestStartBadAddress(t *testing.T) {
	if _, err := logserver.Start(context.Background(), logserver.Options{Addr: "256.0.0.1:bad"}); err == nil {
		t.Fatal("Start on a bad address succeeded")
	}
}

func TestOutOfOrderInsertsAndEviction(t *testing.T) {
	srv, c := logserver.StartTest(t, logserver.Options{MaxEntries: 100, Now: fixedClock(base)})
	rng := rand.New(rand.NewPCG(1, 2))
	perm := rng.Perm(150)
	for _, i := range perm {
		e := entry("p", "syslog", base.Add(-time.Hour+time.Duration(i)*time.Second), 0, fmt.Sprintf("%03d", i))
		e.InsertId = fmt.Sprintf("%03d", i)
		srv.Add(e)
	}
	// Duplicates (same project, timestamp and insert id) are dropped.
	dup := entry("p", "syslog", base.Add(-time.Hour+149*time.Second), 0, "duplicate")
	dup.InsertId = "149"
	srv.Add(dup)
	st := srv.Stats()
	if st.Entries != 100 {
		t.Errorf("Entries = %d, want 100", st.Entries)
	}
	got := listAll(t, c, &loggingpb.ListLogEntriesRequest{ResourceNames: []string{"projects/p"}, PageSize: 1000})
	if len(got) != 100 {
		t.Fatalf("listed %d, want 100", len(got))
	}
	// The 100 newest survive, in order. (Which of the older ones were
	// evicted depends on arrival order; none of the newest 50 can be.)
	if !slices.IsSortedFunc(got, func(a, b *loggingpb.LogEntry) int { return strings.Compare(a.GetInsertId(), b.GetInsertId()) }) {
		t.Errorf("not sorted: %v", texts(got))
	}
	for i := 100; i < 150; i++ {
		if !slices.ContainsFunc(got, func(e *loggingpb.LogEntry) bool { return e.GetInsertId() == fmt.Sprintf("%03d", i) }) {
			t.Errorf("entry %03d evicted", i)
		}
	}
	if slices.ContainsFunc(got, func(e *loggingpb.LogEntry) bool { return e.GetTextPayload() == "duplicate" }) {
		t.Errorf("duplicate stored")
	}
	if st.Evicted != 50 {
		t.Errorf("Evicted = %d, want 50", st.Evicted)
	}
}

// TestListMatchesBruteForce compares list results (which narrow the scan
// with binary search on timestamp bounds) against evaluating the filter on
// every entry, for many filters, both orders and several page sizes.
func TestListMatchesBruteForce(t *testing.T) {
	srv, c := logserver.StartTest(t, logserver.Options{Now: fixedClock(base)})
	rng := rand.New(rand.NewPCG(7, 8))
	var all []*loggingpb.LogEntry
	sevs := []ltype.LogSeverity{ltype.LogSeverity_DEBUG, ltype.LogSeverity_INFO, ltype.LogSeverity_WARNING, ltype.LogSeverity_ERROR}
	for i := range 2000 {
		// Ten-second granularity gives many equal timestamps.
		at := base.Add(-2*time.Hour + time.Duration(rng.IntN(720))*10*time.Second)
		proj := []string{"p", "q"}[rng.IntN(2)]
		e := entry(proj, "syslog", at, sevs[rng.IntN(4)], fmt.Sprint("line ", i))
		e.Resource = &monitoredres.MonitoredResource{Type: "gce_instance", Labels: map[string]string{"instance_id": fmt.Sprint(rng.IntN(5))}}
		all = append(all, e)
	}
	srv.Add(all...)
	stored := listAll(t, c, &loggingpb.ListLogEntriesRequest{ResourceNames: []string{"projects/p", "projects/q"}, PageSize: 1000})
	if len(stored) != len(all) {
		t.Fatalf("stored %d, want %d", len(stored), len(all))
	}
	at := func(d time.Duration) string { return base.Add(d).Format(time.RFC3339) }
	filters := []string{
		``,
		fmt.Sprintf(`timestamp>="%s" AND timestamp<"%s"`, at(-time.Hour), at(-50*time.Minute)),
		fmt.Sprintf(`timestamp>"%s" timestamp<="%s" severity>=WARNING`, at(-time.Hour), at(-50*time.Minute)),
		fmt.Sprintf(`timestamp="%s"`, at(-time.Hour)),
		fmt.Sprintf(`timestamp>="%s" OR severity=ERROR`, at(-10*time.Minute)),
		fmt.Sprintf(`NOT timestamp<"%s"`, at(-30*time.Minute)),
		fmt.Sprintf(`(timestamp>="%s") AND (resource.labels.instance_id="3" OR resource.labels.instance_id="4")`, at(-90*time.Minute)),
		fmt.Sprintf(`timestamp>="%s" AND timestamp<"%s"`, at(-10*time.Minute), at(-20*time.Minute)),
	}
	for _, f := range filters {
		pf, err := logserver.ParseFilter(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, projects := range [][]string{{"projects/p"}, {"projects/p", "projects/q"}} {
			var want []string
			for _, e := range stored {
				proj := strings.Split(e.GetLogName(), "/")[1]
				if slices.Contains(projects, "projects/"+proj) && pf.Match(e) {
					want = append(want, e.GetInsertId())
				}
			}
			for _, desc := range []bool{false, true} {
				order := "timestamp asc"
				w := want
				if desc {
					order = "timestamp desc"
					w = slices.Clone(want)
					slices.Reverse(w)
				}
				for _, size := range []int32{97, 1000} {
					got := listAll(t, c, &loggingpb.ListLogEntriesRequest{ResourceNames: projects, Filter: f, OrderBy: order, PageSize: size})
					ids := make([]string, len(got))
					for i, e := range got {
						ids[i] = e.GetInsertId()
					}
					if !slices.Equal(ids, w) {
						t.Errorf("filter %q %v %s size %d: %d entries, want %d", f, projects, order, size, len(ids), len(w))
					}
				}
			}
		}
	}
}

func TestScanLimitPartialPages(t *testing.T) {
	srv, c := logserver.StartTest(t, logserver.Options{ScanLimit: 10, Now: fixedClock(base)})
	for i := range 100 {
		e := entry("p", "syslog", base.Add(-time.Hour+time.Duration(i)*time.Second), 0, fmt.Sprint(i))
		if i == 95 {
			e.Severity = ltype.LogSeverity_ERROR
		}
		srv.Add(e)
	}
	req := &loggingpb.ListLogEntriesRequest{ResourceNames: []string{"projects/p"}, Filter: "severity>=ERROR"}
	resp, err := callList(context.Background(), c, req)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetEntries()) != 0 || resp.GetNextPageToken() == "" {
		t.Fatalf("first page: %d entries, token %q; want an empty page with a token", len(resp.GetEntries()), resp.GetNextPageToken())
	}
	before := srv.Stats().ListCalls
	got := listAll(t, c, req)
	if len(got) != 1 || got[0].GetTextPayload() != "95" {
		t.Fatalf("iterator over partial pages: %v", texts(got))
	}
	if calls := srv.Stats().ListCalls - before; calls != 10 {
		t.Errorf("%d list calls to scan 100 entries 10 at a time, want 10", calls)
	}
}

func TestListLogsAndDeleteLog(t *testing.T) {
	srv, c := logserver.StartTest(t, logserver.Options{Now: fixedClock(base)})
	ctx := context.Background()
	srv.Add(
		entry("p", "syslog", base.Add(-time.Minute), 0, "a"),
		entry("p", "app", base.Add(-time.Minute), 0, "b"),
		entry("q", "other", base.Add(-time.Minute), 0, "c"),
	)
	it := c.ListLogs(ctx, &loggingpb.ListLogsRequest{Parent: "projects/p"})
	var logs []string
	for {
		name, err := it.Next()
		if err != nil {
			break
		}
		logs = append(logs, name)
	}
	slices.Sort(logs)
	if strings.Join(logs, ",") != "projects/p/logs/app,projects/p/logs/syslog" {
		t.Errorf("ListLogs = %v", logs)
	}
	if err := c.DeleteLog(ctx, &loggingpb.DeleteLogRequest{LogName: "projects/p/logs/app"}); err != nil {
		t.Fatalf("DeleteLog: %v", err)
	}
	if got := listAll(t, c, &loggingpb.ListLogEntriesRequest{ResourceNames: []string{"projects/p"}}); len(got) != 1 || got[0].GetTextPayload() != "a" {
		t.Errorf("after DeleteLog: %v", texts(got))
	}
	if err := c.DeleteLog(ctx, &loggingpb.DeleteLogRequest{LogName: "projects/p/logs/app"}); status.Code(err) != codes.NotFound {
		t.Errorf("deleting again: err = %v, want NotFound", err)
	}
}

// BenchmarkList10MinOf100k lists a 10-minute window (about 8,300 entries)
// out of 100,000 entries spread over two hours, through the real client,
// 1000 entries a page.
func BenchmarkList10MinOf100k(b *testing.B) {
	benchList(b, func(from, to time.Time) string {
		return fmt.Sprintf(`(timestamp>="%s") AND (timestamp<"%s") AND (resource.type="gce_instance")`,
			from.Format(time.RFC3339Nano), to.Format(time.RFC3339Nano))
	})
}

// BenchmarkListErrorsOf100k is the same query without timestamp
// bounds (severity>=ERROR over the last 24 hours): a full scan, for
// comparison.
func BenchmarkListErrorsOf100k(b *testing.B) {
	benchList(b, func(from, to time.Time) string { return `severity>=ERROR` })
}

func benchList(b *testing.B, filter func(from, to time.Time) string) {
	now := time.Now()
	srv, err := logserver.Start(context.Background(), logserver.Options{Now: func() time.Time { return now }})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	c, err := logging.NewClient(context.Background(), srv.ClientOptions()...)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	const n = 100_000
	span := 2 * time.Hour
	first := now.Add(-span)
	batch := make([]*loggingpb.LogEntry, 0, 1000)
	for i := range n {
		e := entry("p", "syslog", first.Add(time.Duration(i)*span/n), ltype.LogSeverity_INFO, fmt.Sprintf("GET /api/v1/items/%d 200 %dms", i, i%300))
		if i%97 == 0 {
			e.Severity = ltype.LogSeverity_ERROR
		}
		e.Resource.Labels["instance_id"] = fmt.Sprint(i % 50)
		batch = append(batch, e)
		if len(batch) == cap(batch) {
			srv.Add(batch...)
			batch = batch[:0]
		}
	}
	from := first.Add(time.Hour)
	req := &loggingpb.ListLogEntriesRequest{ResourceNames: []string{"projects/p"}, Filter: filter(from, from.Add(10*time.Minute)), PageSize: 1000}
	b.ResetTimer()
	count := 0
	for b.Loop() {
		it := c.ListLogEntries(context.Background(), req)
		count = 0
		for {
			_, err := it.Next()
			if errors.Is(err, iterator.Done) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			count++
		}
	}
	b.ReportMetric(float64(count), "entries/op")
}

// BenchmarkListServerSide10MinOf100k is BenchmarkList10MinOf100k without
// gRPC and the client: the server's own cost of answering the pages.
func BenchmarkListServerSide10MinOf100k(b *testing.B) {
	now := time.Now()
	srv, err := logserver.Start(context.Background(), logserver.Options{Now: func() time.Time { return now }})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	const n = 100_000
	span := 2 * time.Hour
	first := now.Add(-span)
	for i := range n {
		e := entry("p", "syslog", first.Add(time.Duration(i)*span/n), ltype.LogSeverity_INFO, fmt.Sprintf("GET /api/v1/items/%d 200", i))
		e.Resource.Labels["instance_id"] = fmt.Sprint(i % 50)
		srv.Add(e)
	}
	from := first.Add(time.Hour)
	filter := fmt.Sprintf(`(timestamp>="%s") AND (timestamp<"%s") AND (resource.type="gce_instance")`,
		from.Format(time.RFC3339Nano), from.Add(10*time.Minute).Format(time.RFC3339Nano))
	ctx := context.Background()
	count := 0
	for b.Loop() {
		count = 0
		tok := ""
		for {
			resp, err := srv.ListLogEntries(ctx, &loggingpb.ListLogEntriesRequest{
				ResourceNames: []string{"projects/p"}, Filter: filter, PageSize: 1000, PageToken: tok,
			})
			if err != nil {
				b.Fatal(err)
			}
			count += len(resp.GetEntries())
			if tok = resp.GetNextPageToken(); tok == "" {
				break
			}
		}
	}
	b.ReportMetric(float64(count), "entries/op")
}

func TestEndTailsWithError(t *testing.T) {
	srv, c := logserver.StartTest(t, logserver.Options{})
	stream := openTail(t, t.Context(), c, "projects/p", "")
	waitTails(t, srv, 1)
	srv.EndTailsWithError(codes.Internal)
	if _, err := stream.Recv(); status.Code(err) != codes.Internal {
		t.Fatalf("Recv: err = %v, want Internal", err)
	}
	waitTails(t, srv, 0)
	ctx, cancel := context.WithTimeout(t.Context(), time.Millisecond)
	defer cancel()
	if err := srv.WaitTails(ctx, 5); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitTails for tails that never open: %v", err)
	}
}

// A frozen tail stays open and sends nothing more; a tail opened later
// works.
func TestFreezeTails(t *testing.T) {
	srv, c := logserver.StartTest(t, logserver.Options{})
	actx, cancelA := context.WithCancel(t.Context())
	defer cancelA()
	frozen := openTail(t, actx, c, "projects/p", "")
	waitTails(t, srv, 1)
	srv.FreezeTails()
	fresh := openTail(t, t.Context(), c, "projects/p", "")
	waitTails(t, srv, 2)
	srv.Add(entry("p", "syslog", time.Now(), ltype.LogSeverity_INFO, "after the freeze"))
	resp, err := fresh.Recv()
	if err != nil || len(resp.GetEntries()) != 1 {
		t.Fatalf("the tail opened after the freeze: %v, %v", resp, err)
	}
	// The entry was offered to both tails when Add returned; the frozen
	// one dropped it, so the first thing it reports is its cancellation.
	cancelA()
	if resp, err := frozen.Recv(); status.Code(err) != codes.Canceled {
		t.Fatalf("frozen tail: %v, %v; want only its cancellation", resp, err)
	}
	waitTails(t, srv, 1)
}

func TestAddRejectsWhatGRPCCannotCarry(t *testing.T) {
	srv, c := logserver.StartTest(t, logserver.Options{Now: fixedClock(base)})
	for name, e := range map[string]*loggingpb.LogEntry{
		"invalid UTF-8": entry("p", "syslog", base, 0, "bad \xff byte"),
		"no log name":   {Payload: &loggingpb.LogEntry_TextPayload{TextPayload: "x"}},
		"bad timestamp": {LogName: "projects/p/logs/x", Timestamp: &timestamppb.Timestamp{Seconds: 1 << 62}},
	} {
		func() {
			defer func() {
				if r := recover(); r == nil {
					t.Errorf("%s: Add did not panic", name)
				}
			}()
			srv.Add(e)
		}()
	}
	// Nothing was stored, and listing still works.
	srv.Add(entry("p", "syslog", base.Add(-time.Second), 0, "ok \u00ff"))
	if got := listAll(t, c, &loggingpb.ListLogEntriesRequest{ResourceNames: []string{"projects/p"}}); len(got) != 1 || got[0].GetTextPayload() != "ok \u00ff" {
		t.Errorf("after rejected adds: %v", texts(got))
	}
}
