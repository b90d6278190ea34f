package logserver_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	logging "cloud.google.com/go/logging/apiv2"
	"cloud.google.com/go/logging/apiv2/loggingpb"
	"go.uber.org/goleak"
	"google.golang.org/api/iterator"
	"google.golang.org/genproto/googleapis/api/monitoredres"
	ltype "google.golang.org/genproto/googleapis/logging/type"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/fleetdeck/fleetdeck/internal/logserver"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// base is a fixed clock for tests that need one: 2026-11-26 10:00 UTC.
var base = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)

func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

func entry(project, log string, at time.Time, sev ltype.LogSeverity, text string) *loggingpb.LogEntry {
	return &loggingpb.LogEntry{
		LogName:   "projects/" + project + "/logs/" + log,
		Resource:  &monitoredres.MonitoredResource{Type: "gce_instance", Labels: map[string]string{"instance_id": "1"}},
		Timestamp: timestamppb.New(at),
		Severity:  sev,
		Payload:   &loggingpb.LogEntry_TextPayload{TextPayload: text},
	}
}

// listAll reads every entry of a query through the client's iterator.
func listAll(t *testing.T, c *logging.Client, req *loggingpb.ListLogEntriesRequest) []*loggingpb.LogEntry {
	t.Helper()
	it := c.ListLogEntries(context.Background(), req)
	var out []*loggingpb.LogEntry
	for {
		e, err := it.Next()
		if errors.Is(err, iterator.Done) {
			return out
		}
		if err != nil {
			t.Fatalf("list %q: %v", req.GetFilter(), err)
		}
		out = append(out, e)
	}
}

func texts(es []*loggingpb.LogEntry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.GetTextPayload()
	}
	return out
}

func TestWriteListRoundTrip(t *testing.T) {
	srv, c := logserver.StartTest(t, logserver.Options{Now: fixedClock(base)})
	ctx := context.Background()
	_, err := c.WriteLogEntries(ctx, &loggingpb.WriteLogEntriesRequest{
		LogName:  "projects/p1/logs/syslog",
		Resource: &monitoredres.MonitoredResource{Type: "gce_instance", Labels: map[string]string{"instance_id": "42"}},
		Labels:   map[string]string{"env": "prod", "team": "core"},
		Entries: []*loggingpb.LogEntry{
			{Payload: &loggingpb.LogEntry_TextPayload{TextPayload: "first"}, Labels: map[string]string{"team": "edge"}},
			{Payload: &loggingpb.LogEntry_TextPayload{TextPayload: "second"}, Severity: ltype.LogSeverity_ERROR},
			{
				LogName:   "projects/p1/logs/app",
				Timestamp: timestamppb.New(base.Add(-time.Minute)),
				InsertId:  "mine",
				Payload: &loggingpb.LogEntry_JsonPayload{JsonPayload: &structpb.Struct{Fields: map[string]*structpb.Value{
					"message": structpb.NewStringValue("json"),
				}}},
			},
		},
	})
	if err != nil {
		t.Fatalf("WriteLogEntries: %v", err)
	}
	got := listAll(t, c, &loggingpb.ListLogEntriesRequest{ResourceNames: []string{"projects/p1"}})
	if len(got) != 3 {
		t.Fatalf("listed %d entries, want 3: %v", len(got), got)
	}
	// Oldest first: the entry with its own earlier timestamp, then the two
	// stamped "now" in request order (their generated insert ids sort so).
	if got[0].GetInsertId() != "mine" || got[0].GetJsonPayload().GetFields()["message"].GetStringValue() != "json" {
		t.Errorf("first entry = %v, want the json one with insert id mine", got[0])
	}
	if got[1].GetTextPayload() != "first" || got[2].GetTextPayload() != "second" {
		t.Errorf("order = %q, want first, second after the json entry", texts(got))
	}
	first := got[1]
	if first.GetLogName() != "projects/p1/logs/syslog" {
		t.Errorf("log name default not applied: %q", first.GetLogName())
	}
	if first.GetResource().GetLabels()["instance_id"] != "42" {
		t.Errorf("resource default not applied: %v", first.GetResource())
	}
	if l := first.GetLabels(); l["env"] != "prod" || l["team"] != "edge" {
		t.Errorf("labels = %v, want env=prod from the request and team=edge kept from the entry", l)
	}
	if first.GetInsertId() == "" || !first.GetTimestamp().AsTime().Equal(base) || !first.GetReceiveTimestamp().AsTime().Equal(base) {
		t.Errorf("service fields not filled: insert %q ts %v recv %v", first.GetInsertId(), first.GetTimestamp(), first.GetReceiveTimestamp())
	}
	if got[2].GetSeverity() != ltype.LogSeverity_ERROR {
		t.Errorf("severity = %v", got[2].GetSeverity())
	}
	// Another project sees nothing of p1's.
	if other := listAll(t, c, &loggingpb.ListLogEntriesRequest{ResourceNames: []string{"projects/p2"}}); len(other) != 0 {
		t.Errorf("project p2 lists %d entries of p1", len(other))
	}
	if st := srv.Stats(); st.Writes != 1 || st.Entries != 3 || st.ListCalls != 2 {
		t.Errorf("stats = %+v, want 1 write, 3 entries, 2 list calls", st)
	}
}

func TestWriteRejectsBadLogName(t *testing.T) {
	srv, c := logserver.StartTest(t, logserver.Options{})
	ctx := context.Background()
	for _, name := range []string{"", "syslog", "projects//logs/x", "projects/p/logs/", "organizations/1/logs/x", "projects/p/logs/a b"} {
		_, err := c.WriteLogEntries(ctx, &loggingpb.WriteLogEntriesRequest{
			Entries: []*loggingpb.LogEntry{{LogName: name, Payload: &loggingpb.LogEntry_TextPayload{TextPayload: "x"}}},
		})
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("log name %q: err = %v, want InvalidArgument", name, err)
		}
	}
	// partial_success writes the valid entries and still reports the bad one.
	_, err := c.WriteLogEntries(ctx, &loggingpb.WriteLogEntriesRequest{
		PartialSuccess: true,
		Entries: []*loggingpb.LogEntry{
			entry("p", "ok", base, 0, "good"),
			{LogName: "bad", Payload: &loggingpb.LogEntry_TextPayload{TextPayload: "bad"}},
		},
	})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("partial success err = %v, want InvalidArgument", err)
	}
	if n := srv.Stats().Entries; n != 1 {
		t.Errorf("stored %d entries after partial success, want 1", n)
	}
	// dry_run validates without storing.
	if _, err := c.WriteLogEntries(ctx, &loggingpb.WriteLogEntriesRequest{DryRun: true, Entries: []*loggingpb.LogEntry{entry("p", "ok", base, 0, "dry")}}); err != nil {
		t.Errorf("dry run: %v", err)
	}
	if n := srv.Stats().Entries; n != 1 {
		t.Errorf("dry run stored an entry: %d", n)
	}
}

func TestPagingStableTokens(t *testing.T) {
	srv, c := logserver.StartTest(t, logserver.Options{Now: fixedClock(base)})
	ctx := context.Background()
	const n = 250
	var es []*loggingpb.LogEntry
	for i := range n {
		// Pairs share a timestamp so the insert_id tiebreak matters.
		es = append(es, entry("p", "syslog", base.Add(-time.Hour+time.Duration(i/2)*time.Second), ltype.LogSeverity_INFO, fmt.Sprintf("e%03d", i)))
		es[i].InsertId = fmt.Sprintf("id%03d", i)
	}
	srv.Add(es...)
	req := &loggingpb.ListLogEntriesRequest{ResourceNames: []string{"projects/p"}, PageSize: 100}
	resp1, err := callList(ctx, c, req)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp1.GetEntries()) != 100 || resp1.GetNextPageToken() == "" {
		t.Fatalf("page 1: %d entries, token %q", len(resp1.GetEntries()), resp1.GetNextPageToken())
	}
	// Entries written between pages, before and after the cursor, neither
	// repeat nor skip anything already in the window.
	early := entry("p", "syslog", base.Add(-2*time.Hour), ltype.LogSeverity_INFO, "early")
	late := entry("p", "syslog", base.Add(-time.Minute), ltype.LogSeverity_INFO, "late")
	srv.Add(early, late)
	var got []string
	got = append(got, texts(resp1.GetEntries())...)
	tok := resp1.GetNextPageToken()
	pages := 1
	for tok != "" {
		r := &loggingpb.ListLogEntriesRequest{ResourceNames: req.ResourceNames, PageSize: 100, PageToken: tok}
		resp, err := callList(ctx, c, r)
		if err != nil {
			t.Fatalf("page %d: %v", pages+1, err)
		}
		got = append(got, texts(resp.GetEntries())...)
		tok = resp.GetNextPageToken()
		pages++
	}
	if pages != 3 {
		t.Errorf("%d pages, want 3", pages)
	}
	want := append(texts(es), "late")
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("paged entries differ:\n got %v\nwant %v", got, want)
	}
	// A token is bound to its query.
	_, err = callList(ctx, c, &loggingpb.ListLogEntriesRequest{ResourceNames: req.ResourceNames, Filter: "severity>=ERROR", PageToken: resp1.GetNextPageToken()})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("token with another filter: err = %v, want InvalidArgument", err)
	}
	_, err = callList(ctx, c, &loggingpb.ListLogEntriesRequest{ResourceNames: req.ResourceNames, OrderBy: "timestamp desc", PageToken: resp1.GetNextPageToken()})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("token with another order: err = %v, want InvalidArgument", err)
	}
	_, err = callList(ctx, c, &loggingpb.ListLogEntriesRequest{ResourceNames: req.ResourceNames, PageToken: "garbage!"})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("garbage token: err = %v, want InvalidArgument", err)
	}
	// An exactly full last page carries no token.
	resp, err := callList(ctx, c, &loggingpb.ListLogEntriesRequest{ResourceNames: req.ResourceNames, PageSize: 1000, Filter: `textPayload:"e0"`})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetEntries()) != 100 || resp.GetNextPageToken() != "" {
		t.Errorf("filtered page: %d entries, token %q; want 100 and none", len(resp.GetEntries()), resp.GetNextPageToken())
	}
}

// callList makes exactly one ListLogEntries call through the client and
// returns that page (the iterator's Next and Pager both skip empty pages).
func callList(ctx context.Context, c *logging.Client, req *loggingpb.ListLogEntriesRequest) (*loggingpb.ListLogEntriesResponse, error) {
	it := c.ListLogEntries(ctx, req)
	entries, next, err := it.InternalFetch(int(req.GetPageSize()), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	return &loggingpb.ListLogEntriesResponse{Entries: entries, NextPageToken: next}, nil
}

func TestPageSizeDefaultsAndClamp(t *testing.T) {
	srv, c := logserver.StartTest(t, logserver.Options{Now: fixedClock(base)})
	ctx := context.Background()
	var es []*loggingpb.LogEntry
	for i := range 1200 {
		es = append(es, entry("p", "syslog", base.Add(-time.Hour+time.Duration(i)*time.Millisecond), 0, fmt.Sprint(i)))
	}
	srv.Add(es...)
	for _, tc := range []struct {
		size int32
		want int
	}{{0, 50}, {7, 7}, {1000, 1000}, {5000, 1000}} {
		resp, err := callList(ctx, c, &loggingpb.ListLogEntriesRequest{ResourceNames: []string{"projects/p"}, PageSize: tc.size})
		if err != nil {
			t.Fatalf("page size %d: %v", tc.size, err)
		}
		if len(resp.GetEntries()) != tc.want {
			t.Errorf("page size %d gave %d entries, want %d", tc.size, len(resp.GetEntries()), tc.want)
		}
	}
	if _, err := callList(ctx, c, &loggingpb.ListLogEntriesRequest{ResourceNames: []string{"projects/p"}, PageSize: -1}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("negative page size: err = %v", err)
	}
	if _, err := callList(ctx, c, &loggingpb.ListLogEntriesRequest{}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("no resource names: err = %v", err)
	}
	if _, err := callList(ctx, c, &loggingpb.ListLogEntriesRequest{ResourceNames: []string{"projects/p"}, OrderBy: "severity"}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("order by severity: err = %v", err)
	}
}

func TestOrderDescAndMultipleProjects(t *testing.T) {
	srv, c := logserver.StartTest(t, logserver.Options{Now: fixedClock(base)})
	srv.Add(
		entry("a", "syslog", base.Add(-3*time.Minute), 0, "a1"),
		entry("b", "syslog", base.Add(-2*time.Minute), 0, "b1"),
		entry("a", "syslog", base.Add(-1*time.Minute), 0, "a2"),
		entry("c", "syslog", base.Add(-1*time.Minute), 0, "c1"),
	)
	got := listAll(t, c, &loggingpb.ListLogEntriesRequest{ResourceNames: []string{"projects/a", "projects/b"}, OrderBy: "timestamp desc", PageSize: 1})
	if strings.Join(texts(got), ",") != "a2,b1,a1" {
		t.Errorf("desc across a and b = %v, want a2,b1,a1", texts(got))
	}
	got = listAll(t, c, &loggingpb.ListLogEntriesRequest{ResourceNames: []string{"projects/a", "projects/b"}, OrderBy: "timestamp asc", PageSize: 2})
	if strings.Join(texts(got), ",") != "a1,b1,a2" {
		t.Errorf("asc across a and b = %v, want a1,b1,a2", texts(got))
	}
}

func TestDefault24Hours(t *testing.T) {
	srv, c := logserver.StartTest(t, logserver.Options{Now: fixedClock(base)})
	srv.Add(
		entry("p", "syslog", base.Add(-25*time.Hour), 0, "old"),
		entry("p", "syslog", base.Add(-23*time.Hour), 0, "recent"),
	)
	got := listAll(t, c, &loggingpb.ListLogEntriesRequest{ResourceNames: []string{"projects/p"}})
	if strings.Join(texts(got), ",") != "recent" {
		t.Errorf("no timestamp in filter: got %v, want only the last 24 h", texts(got))
	}
	got = listAll(t, c, &loggingpb.ListLogEntriesRequest{ResourceNames: []string{"projects/p"}, Filter: `severity>=DEFAULT`})
	if strings.Join(texts(got), ",") != "recent" {
		t.Errorf("filter without timestamp: got %v, want only the last 24 h", texts(got))
	}
	f := fmt.Sprintf(`timestamp>="%s"`, base.Add(-48*time.Hour).Format(time.RFC3339))
	got = listAll(t, c, &loggingpb.ListLogEntriesRequest{ResourceNames: []string{"projects/p"}, Filter: f})
	if strings.Join(texts(got), ",") != "old,recent" {
		t.Errorf("explicit timestamp bound: got %v, want both", texts(got))
	}
}

func TestFailLists(t *testing.T) {
	srv, c := logserver.StartTest(t, logserver.Options{Now: fixedClock(base)})
	srv.Add(entry("p", "syslog", base.Add(-time.Minute), 0, "x"))
	srv.FailLists(2, codes.ResourceExhausted)
	req := &loggingpb.ListLogEntriesRequest{ResourceNames: []string{"projects/p"}}
	for i := range 2 {
		_, err := c.ListLogEntries(context.Background(), req).Next()
		if status.Code(err) != codes.ResourceExhausted {
			t.Errorf("call %d: err = %v, want ResourceExhausted", i+1, err)
		}
	}
	if got := listAll(t, c, req); len(got) != 1 {
		t.Errorf("after the failures: %d entries, want 1", len(got))
	}
	if n := srv.Stats().ListCalls; n != 3 {
		t.Errorf("ListCalls = %d, want 3 (no retries of ResourceExhausted by the client)", n)
	}
}

func TestLargeEntryRoundTrip(t *testing.T) {
	srv, c := logserver.StartTest(t, logserver.Options{Now: fixedClock(base)})
	ctx := context.Background()
	big := strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB
	e := entry("p", "syslog", base.Add(-time.Second), ltype.LogSeverity_ERROR, big)
	if _, err := c.WriteLogEntries(ctx, &loggingpb.WriteLogEntriesRequest{Entries: []*loggingpb.LogEntry{e}}); err != nil {
		t.Fatalf("writing a 1 MiB entry: %v", err)
	}
	// Enough of them to pass the per-page byte budget: pages split, nothing lost.
	for range 9 {
		srv.Add(entry("p", "syslog", base.Add(-time.Second), ltype.LogSeverity_ERROR, big))
	}
	got := listAll(t, c, &loggingpb.ListLogEntriesRequest{ResourceNames: []string{"projects/p"}, PageSize: 1000})
	if len(got) != 10 {
		t.Fatalf("listed %d large entries, want 10", len(got))
	}
	for _, g := range got {
		if g.GetTextPayload() != big {
			t.Fatalf("payload changed: %d bytes", len(g.GetTextPayload()))
		}
	}
}

func TestTailReceivesNewEntriesAndEndTails(t *testing.T) {
	srv, c := logserver.StartTest(t, logserver.Options{})
	ctx := t.Context()
	srv.Add(entry("p", "syslog", time.Now(), ltype.LogSeverity_ERROR, "before the stream"))
	stream := openTail(t, ctx, c, "projects/p", `severity>=ERROR`)
	waitTails(t, srv, 1)
	srv.Add(
		entry("p", "syslog", time.Now(), ltype.LogSeverity_INFO, "info, filtered out"),
		entry("q", "syslog", time.Now(), ltype.LogSeverity_ERROR, "other project"),
		entry("p", "syslog", time.Now(), ltype.LogSeverity_ERROR, "boom"),
	)
	resp, err := stream.Recv()
	if err != nil {
		t.Fatalf("Recv: %v", err)
	}
	if got := texts(resp.GetEntries()); len(got) != 1 || got[0] != "boom" {
		t.Fatalf("tail got %v, want [boom]", got)
	}
	srv.EndTails()
	if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("after EndTails: err = %v, want io.EOF", err)
	}
	waitTails(t, srv, 0)
	// A fresh stream works.
	stream2 := openTail(t, ctx, c, "projects/p", "")
	waitTails(t, srv, 1)
	srv.Add(entry("p", "syslog", time.Now(), ltype.LogSeverity_INFO, "again"))
	resp, err = stream2.Recv()
	if err != nil {
		t.Fatalf("Recv on the new stream: %v", err)
	}
	if got := texts(resp.GetEntries()); len(got) != 1 || got[0] != "again" {
		t.Fatalf("new stream got %v, want [again]", got)
	}
	if st := srv.Stats(); st.TailsOpened != 2 || st.TailsOpen != 1 {
		t.Errorf("stats = %+v, want 2 opened, 1 open", st)
	}
}

func openTail(t *testing.T, ctx context.Context, c *logging.Client, resource, filter string) loggingpb.LoggingServiceV2_TailLogEntriesClient {
	t.Helper()
	stream, err := c.TailLogEntries(ctx)
	if err != nil {
		t.Fatalf("TailLogEntries: %v", err)
	}
	if err := stream.Send(&loggingpb.TailLogEntriesRequest{
		ResourceNames: []string{resource},
		Filter:        filter,
		BufferWindow:  durationpb.New(0),
	}); err != nil {
		t.Fatalf("sending the tail request: %v", err)
	}
	return stream
}

// waitTails waits until the server has n open tails: a stream's first
// request is processed asynchronously, and only entries written after it
// reach the stream.
func waitTails(t *testing.T, srv *logserver.Server, n int) {
	t.Helper()
	if err := srv.WaitTails(t.Context(), n); err != nil {
		t.Fatal(err)
	}
}
