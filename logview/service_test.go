package logview

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/logging/apiv2/loggingpb"
	"google.golang.org/genproto/googleapis/api/monitoredres"
	ltype "google.golang.org/genproto/googleapis/logging/type"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/fleetdeck/fleetdeck/internal/logserver"
)

// testEnv is a local Cloud Logging endpoint and a Service talking to it
// through the real apiv2 client.
type testEnv struct {
	srv *logserver.Server
	svc *Service
}

// newEnv starts a server and a Service for projects (default "p1"); mod
// adjusts the Config. Fast retries and settle keep the tests short; the
// logic is the same as with the defaults.
func newEnv(t *testing.T, opts logserver.Options, mod func(*Config)) *testEnv {
	t.Helper()
	ctx := context.Background()
	srv, err := logserver.Start(ctx, opts)
	if err != nil {
		t.Fatalf("logserver.Start: %v", err)
	}
	cfg := Config{
		Projects:      []string{"p1"},
		ClientOptions: srv.ClientOptions(),
		RetryMin:      10 * time.Millisecond,
		RetryMax:      100 * time.Millisecond,
		TailSettle:    50 * time.Millisecond,
		ListPerMinute: 6000,
	}
	if mod != nil {
		mod(&cfg)
	}
	svc, err := New(ctx, cfg)
	if err != nil {
		_ = srv.Close()
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := svc.Close(); err != nil {
			t.Errorf("Service.Close: %v", err)
		}
		if err := srv.Close(); err != nil {
			t.Errorf("logserver Close: %v", err)
		}
	})
	return &testEnv{srv: srv, svc: svc}
}

// logEntry makes an entry of instance id on gce_instance in project.
func logEntry(project, id, insertID string, at time.Time, sev ltype.LogSeverity, text string) *loggingpb.LogEntry {
	return &loggingpb.LogEntry{
		LogName:   "projects/" + project + "/logs/syslog",
		InsertId:  insertID,
		Resource:  &monitoredres.MonitoredResource{Type: "gce_instance", Labels: map[string]string{"instance_id": id}},
		Timestamp: timestamppb.New(at),
		Severity:  sev,
		Payload:   &loggingpb.LogEntry_TextPayload{TextPayload: text},
	}
}

// collector reads a Stream into a Buffer and remembers every entry
// delivered, to check that nothing came twice.
type collector struct {
	t         testing.TB
	s         Stream
	buf       *Buffer
	delivered map[string]int // InsertID -> times delivered
	last      Status
	statuses  []Status
	eof       bool
}

func collect(t testing.TB, s Stream) *collector {
	return &collector{t: t, s: s, buf: NewBuffer(0), delivered: map[string]int{}}
}

// until reads batches until cond holds. The deadline only keeps a broken
// test from hanging; nothing here is timed.
func (c *collector) until(what string, cond func(c *collector) bool) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for !cond(c) {
		if c.eof {
			c.t.Fatalf("stream ended while waiting for %s (status %+v)", what, c.last)
		}
		b, err := c.s.Next(ctx)
		switch {
		case errors.Is(err, io.EOF):
			c.eof = true
		case err != nil:
			c.t.Fatalf("Next while waiting for %s: %v (status %+v, %d entries)", what, err, c.last, c.buf.Len())
		}
		for _, e := range b.Entries {
			c.delivered[e.InsertID]++
		}
		c.buf.Add(b.Entries)
		c.last = b.Status
		c.statuses = append(c.statuses, b.Status)
	}
}

func (c *collector) ids() []string {
	var out []string
	for i := range c.buf.Len() {
		out = append(out, c.buf.At(i).InsertID)
	}
	return out
}

func (c *collector) checkOnce() {
	c.t.Helper()
	for id, n := range c.delivered {
		if n != 1 {
			c.t.Errorf("entry %s delivered %d times", id, n)
		}
	}
}

// waitFor polls a server-side condition (a tail registered). It is a
// wait, not a timed assertion: it only fails after a minute.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// tw is a window start safely in the past (windows that reach now go
// live).
var tw = time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)

func TestWindowReturnsExactlyTheRightEntries(t *testing.T) {
	env := newEnv(t, logserver.Options{}, nil)
	from, to := tw, tw.Add(10*time.Minute)
	ns := time.Nanosecond
	env.srv.Add(
		logEntry("p1", "101", "at-from", from, ltype.LogSeverity_WARNING, "first"),
		logEntry("p1", "101", "before-from", from.Add(-ns), ltype.LogSeverity_ERROR, "too early"),
		logEntry("p1", "102", "before-to", to.Add(-ns), ltype.LogSeverity_CRITICAL, "last"),
		logEntry("p1", "102", "at-to", to, ltype.LogSeverity_ERROR, "too late"),
		logEntry("p1", "101", "info", from.Add(time.Minute), ltype.LogSeverity_INFO, "below the floor"),
		logEntry("p1", "103", "other-node", from.Add(time.Minute), ltype.LogSeverity_ERROR, "not in the query"),
		logEntry("p2", "101", "other-project", from.Add(time.Minute), ltype.LogSeverity_ERROR, "not configured"),
		logEntry("p1", "102", "middle", from.Add(5*time.Minute), ltype.LogSeverity_ERROR, "middle"),
	)
	other := logEntry("p1", "101", "other-type", from.Add(time.Minute), ltype.LogSeverity_ERROR, "k8s")
	other.Resource.Type = "k8s_container"
	env.srv.Add(other)

	s, err := env.svc.Open(context.Background(), Query{
		Title:       "role web",
		Nodes:       []NodeRef{node("web-1", "101"), node("web-2", "102"), node("web-9", "")},
		From:        from,
		To:          to,
		MinSeverity: Warning,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := collect(t, s)
	c.until("the end of the window", func(c *collector) bool { return c.eof })

	if got, want := strings.Join(c.ids(), ","), "at-from,middle,before-to"; got != want {
		t.Fatalf("entries = %s, want %s", got, want)
	}
	nodes := []string{c.buf.At(0).Node, c.buf.At(1).Node, c.buf.At(2).Node}
	if fmt.Sprint(nodes) != "[web-1 web-2 web-2]" {
		t.Errorf("nodes = %v", nodes)
	}
	e := c.buf.At(0)
	if e.Project != "p1" || e.LogName != "projects/p1/logs/syslog" || e.Text != "first" ||
		e.Payload != `"first"` || e.Severity != Warning || !e.Time.Equal(from) || e.Received.IsZero() ||
		e.ResourceType != "gce_instance" || e.ResourceLabels["instance_id"] != "101" {
		t.Errorf("entry = %+v", e)
	}
	if c.last.Phase != Done || c.last.Err != nil || c.last.Listed != 3 || c.last.ListCalls != 1 {
		t.Errorf("status = %+v", c.last)
	}
	if fmt.Sprint(c.last.Unmapped) != "[web-9]" {
		t.Errorf("unmapped = %v", c.last.Unmapped)
	}
	c.checkOnce()
	if st := env.srv.Stats(); st.TailsOpened != 0 {
		t.Errorf("a past window opened %d tails", st.TailsOpened)
	}
}

func TestPagingOverManyEntries(t *testing.T) {
	// ScanLimit makes the server return short and empty pages with a
	// token, as Cloud Logging does on long scans.
	env := newEnv(t, logserver.Options{ScanLimit: 700}, nil)
	const n = 2500
	var es []*loggingpb.LogEntry
	for i := range n {
		es = append(es, logEntry("p1", "101", fmt.Sprintf("e%05d", i), tw.Add(time.Duration(i)*time.Millisecond), ltype.LogSeverity_INFO, "x"))
		// Noise the filter must skip, interleaved.
		es = append(es, logEntry("p1", "999", fmt.Sprintf("z%05d", i), tw.Add(time.Duration(i)*time.Millisecond), ltype.LogSeverity_INFO, "x"))
	}
	env.srv.Add(es...)
	s, err := env.svc.Open(context.Background(), Query{Nodes: []NodeRef{node("web-1", "101")}, From: tw, To: tw.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := collect(t, s)
	c.until("the end of the window", func(c *collector) bool { return c.eof })
	if c.buf.Len() != n || c.last.Listed != n {
		t.Fatalf("got %d entries (listed %d), want %d", c.buf.Len(), c.last.Listed, n)
	}
	for i := range n {
		if id := c.buf.At(i).InsertID; id != fmt.Sprintf("e%05d", i) {
			t.Fatalf("entry %d = %s", i, id)
		}
	}
	c.checkOnce()
	calls := env.srv.Stats().ListCalls
	if c.last.ListCalls != calls || calls < 3 {
		t.Errorf("status counts %d list calls, server %d; want >= 3 pages", c.last.ListCalls, calls)
	}
}

func TestBackoffOnResourceExhausted(t *testing.T) {
	env := newEnv(t, logserver.Options{}, nil)
	env.srv.Add(logEntry("p1", "101", "a", tw, ltype.LogSeverity_INFO, "hello"))
	env.srv.FailLists(3, codes.ResourceExhausted)
	s, err := env.svc.Open(context.Background(), Query{Nodes: []NodeRef{node("web-1", "101")}, From: tw, To: tw.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := collect(t, s)
	c.until("the end of the window", func(c *collector) bool { return c.eof })

	var backing []Status
	for _, st := range c.statuses {
		if st.Err != nil {
			backing = append(backing, st)
		}
	}
	if len(backing) == 0 {
		t.Fatal("no status showed the quota error")
	}
	for _, st := range backing {
		if st.Phase != Listing || st.RetryAt.IsZero() || !strings.Contains(st.Err.Error(), "ResourceExhausted") {
			t.Errorf("backing-off status = %+v", st)
		}
	}
	if c.last.Phase != Done || c.last.Err != nil || c.buf.Len() != 1 || c.last.ListCalls != 4 {
		t.Errorf("final status = %+v with %d entries", c.last, c.buf.Len())
	}
}

func TestPermissionDeniedFails(t *testing.T) {
	env := newEnv(t, logserver.Options{}, nil)
	env.srv.FailLists(1, codes.PermissionDenied)
	s, err := env.svc.Open(context.Background(), Query{Nodes: []NodeRef{node("web-1", "101")}, From: tw, To: tw.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := collect(t, s)
	c.until("the failure", func(c *collector) bool { return c.eof })
	if c.last.Phase != Failed || c.last.Err == nil ||
		!strings.Contains(c.last.Err.Error(), "roles/logging.viewer") || !strings.Contains(c.last.Err.Error(), "p1") {
		t.Fatalf("status = %+v", c.last)
	}
}

func TestFilterEscapingRoundTrip(t *testing.T) {
	// Node names and meta values are untrusted: quotes, backslashes,
	// filter syntax and control characters must come back exactly.
	hostile := []string{
		`a"b`,
		`back\slash\`,
		`x" OR resource.labels.instance_id:"`,
		"tab\tnew\nline\x1b[31m",
		`) OR (severity>=DEFAULT`,
	}
	m := Mapping{Field: `labels."compute.googleapis.com/resource_name"`, From: "name"}
	env := newEnv(t, logserver.Options{}, func(c *Config) { c.Mapping = m })
	var nodes []NodeRef
	for i, h := range hostile {
		e := logEntry("p1", "1", fmt.Sprintf("h%d", i), tw.Add(time.Duration(i)*time.Second), ltype.LogSeverity_INFO, h)
		e.Labels = map[string]string{"compute.googleapis.com/resource_name": h}
		env.srv.Add(e)
		nodes = append(nodes, NodeRef{Name: h})
	}
	// Near misses that a broken escape would let through.
	for i, v := range []string{`a\"b`, `ab`, `back\\slash\\`, "x", "tab"} {
		e := logEntry("p1", "1", fmt.Sprintf("miss%d", i), tw.Add(time.Second), ltype.LogSeverity_INFO, v)
		e.Labels = map[string]string{"compute.googleapis.com/resource_name": v}
		env.srv.Add(e)
	}
	s, err := env.svc.Open(context.Background(), Query{Nodes: nodes, From: tw, To: tw.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := collect(t, s)
	c.until("the end of the window", func(c *collector) bool { return c.eof })
	if c.last.Phase != Done {
		t.Fatalf("status = %+v", c.last)
	}
	if c.buf.Len() != len(hostile) {
		t.Fatalf("got %v, want %d entries", c.ids(), len(hostile))
	}
	for i, h := range hostile {
		e := c.buf.At(i)
		if e.InsertID != fmt.Sprintf("h%d", i) || e.Node != h || e.Text != h {
			t.Errorf("entry %d = %q node %q text %q, want node and text %q", i, e.InsertID, e.Node, e.Text, h)
		}
	}
}

func TestSplitFilterListsAllNodes(t *testing.T) {
	env := newEnv(t, logserver.Options{}, nil)
	// 1,500 nodes with long ids do not fit one 20,000-character filter.
	var nodes []NodeRef
	var es []*loggingpb.LogEntry
	for i := range 1500 {
		id := fmt.Sprintf("%030d", i)
		nodes = append(nodes, node(fmt.Sprintf("n%d", i), id))
		es = append(es, logEntry("p1", id, fmt.Sprintf("e%d", i), tw.Add(time.Duration(i)*time.Millisecond), ltype.LogSeverity_INFO, "x"))
	}
	env.srv.Add(es...)
	plan, err := BuildPlan(Query{Nodes: nodes}, env.svc.Mapping(), tw, tw.Add(time.Hour))
	if err != nil || len(plan.Filters) < 2 {
		t.Fatalf("plan: %d filters, %v", len(plan.Filters), err)
	}
	s, err := env.svc.Open(context.Background(), Query{Nodes: nodes, From: tw, To: tw.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := collect(t, s)
	c.until("the end of the window", func(c *collector) bool { return c.eof })
	if c.buf.Len() != 1500 || c.last.ListCalls != len(plan.Filters) {
		t.Fatalf("%d entries in %d list calls; want 1500 in %d", c.buf.Len(), c.last.ListCalls, len(plan.Filters))
	}
	for i := range 1500 {
		if e := c.buf.At(i); e.Node != fmt.Sprintf("n%d", i) {
			t.Fatalf("entry %d node %q", i, e.Node)
		}
	}
}

// liveQuery is a view of web-1 (101) that reaches now.
func liveQuery(now time.Time, min Severity, nodes ...NodeRef) Query {
	if len(nodes) == 0 {
		nodes = []NodeRef{node("web-1", "101")}
	}
	return Query{Nodes: nodes, From: now.Add(-time.Hour), MinSeverity: min}
}

func TestLiveTailReconnectAndGapFill(t *testing.T) {
	env := newEnv(t, logserver.Options{}, func(c *Config) {
		// Long enough that entries written right after the tail ended
		// are usually written while it is down.
		c.RetryMin, c.RetryMax = time.Second, time.Second
	})
	now := time.Now()
	env.srv.Add(logEntry("p1", "101", "old", now.Add(-30*time.Minute), ltype.LogSeverity_INFO, "before"))
	s, err := env.svc.Open(context.Background(), liveQuery(now, Default))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := collect(t, s)
	c.until("live", func(c *collector) bool { return c.last.Phase == Live && c.buf.Len() == 1 })
	waitFor(t, "the tail", func() bool { return env.srv.Stats().TailsOpen == 1 })

	// Live entries arrive through the tail.
	var a []*loggingpb.LogEntry
	for i := range 20 {
		a = append(a, logEntry("p1", "101", fmt.Sprintf("a%02d", i), time.Now(), ltype.LogSeverity_INFO, "live"))
	}
	a = append(a, logEntry("p1", "102", "not-mine", time.Now(), ltype.LogSeverity_ERROR, "other node"))
	env.srv.Add(a...)
	c.until("the tailed entries", func(c *collector) bool { return c.buf.Len() == 21 })
	if c.last.Tailed != 20 {
		t.Errorf("tailed = %d, want 20", c.last.Tailed)
	}
	callsBefore := c.last.ListCalls

	// The tail ends; entries written meanwhile come back with the gap fill.
	env.srv.EndTails()
	c.until("reconnecting", func(c *collector) bool { return c.last.Phase == Reconnecting })
	if c.last.Err == nil || c.last.RetryAt.IsZero() {
		t.Errorf("reconnecting status = %+v", c.last)
	}
	var b []*loggingpb.LogEntry
	for i := range 30 {
		b = append(b, logEntry("p1", "101", fmt.Sprintf("b%02d", i), time.Now(), ltype.LogSeverity_INFO, "gap"))
	}
	env.srv.Add(b...)
	c.until("the gap entries and live again", func(c *collector) bool { return c.buf.Len() == 51 && c.last.Phase == Live })
	if c.last.Err != nil || c.last.ListCalls <= callsBefore {
		t.Errorf("status after reconnect = %+v (list calls before %d)", c.last, callsBefore)
	}
	// The gap fill overlaps what the tail delivered: those are dropped
	// by the stream, not delivered twice.
	if c.last.Duplicates < 20 {
		t.Errorf("duplicates = %d, want the 20 tailed entries the gap fill saw again", c.last.Duplicates)
	}

	// And the new tail works.
	waitFor(t, "the new tail", func() bool { return env.srv.Stats().TailsOpen == 1 })
	env.srv.Add(logEntry("p1", "101", "c", time.Now(), ltype.LogSeverity_INFO, "after"))
	c.until("the entry after reconnecting", func(c *collector) bool { return c.buf.Len() == 52 })
	c.checkOnce()
	if c.buf.Duplicates() != 0 {
		t.Errorf("buffer saw %d duplicates; the stream should have dropped them", c.buf.Duplicates())
	}
	if st := env.srv.Stats(); st.TailsOpened != 2 {
		t.Errorf("tails opened = %d, want 2", st.TailsOpened)
	}
}

func TestOneTailSharedByStreams(t *testing.T) {
	env := newEnv(t, logserver.Options{}, nil)
	now := time.Now()
	s1, err := env.svc.Open(context.Background(), liveQuery(now, Default))
	if err != nil {
		t.Fatal(err)
	}
	defer s1.Close()
	s2, err := env.svc.Open(context.Background(), liveQuery(now, Error, node("web-1", "101"), node("web-2", "102")))
	if err != nil {
		t.Fatal(err)
	}
	c1, c2 := collect(t, s1), collect(t, s2)
	c1.until("live", func(c *collector) bool { return c.last.Phase == Live })
	c2.until("live", func(c *collector) bool { return c.last.Phase == Live })
	// Both views are served by one tail whose filter covers both.
	waitFor(t, "one tail with both views", func() bool {
		st := env.srv.Stats()
		return st.TailsOpen == 1
	})
	env.srv.Add(
		logEntry("p1", "101", "w1-info", time.Now(), ltype.LogSeverity_INFO, "i"),
		logEntry("p1", "101", "w1-err", time.Now(), ltype.LogSeverity_ERROR, "e"),
		logEntry("p1", "102", "w2-err", time.Now(), ltype.LogSeverity_ERROR, "e"),
		logEntry("p1", "102", "w2-info", time.Now(), ltype.LogSeverity_INFO, "i"),
		logEntry("p1", "103", "w3-err", time.Now(), ltype.LogSeverity_ERROR, "e"),
	)
	c1.until("view 1's entries", func(c *collector) bool { return c.buf.Len() == 2 })
	c2.until("view 2's entries", func(c *collector) bool { return c.buf.Len() == 2 })
	if got := strings.Join(c1.ids(), ","); got != "w1-info,w1-err" {
		t.Errorf("view 1 = %s", got)
	}
	if got := fmt.Sprint(slices.Sorted(slices.Values(c2.ids()))); got != "[w1-err w2-err]" {
		t.Errorf("view 2 = %s", got)
	}
	if st := env.srv.Stats(); st.TailsOpen != 1 {
		t.Errorf("%d tails open for two views", st.TailsOpen)
	}

	// Closing one view restarts the tail for the other alone.
	opened := env.srv.Stats().TailsOpened
	s2.Close()
	waitFor(t, "the restarted tail", func() bool {
		st := env.srv.Stats()
		return st.TailsOpened > opened && st.TailsOpen == 1
	})
	env.srv.Add(logEntry("p1", "101", "w1-later", time.Now(), ltype.LogSeverity_INFO, "i"))
	c1.until("view 1's later entry", func(c *collector) bool { return c.buf.Len() == 3 })
	c1.checkOnce()
	c2.checkOnce()
	if err := drain(s2); !errors.Is(err, ErrClosed) {
		t.Errorf("Next after Close = %v, want ErrClosed", err)
	}
}

func TestTailBroadenedBeyondFilterLimit(t *testing.T) {
	env := newEnv(t, logserver.Options{}, nil)
	now := time.Now()
	// Two views whose filters together exceed 20,000 characters: the
	// tail is broadened and entries are routed by node and severity.
	var n1, n2 []NodeRef
	for i := range 400 {
		n1 = append(n1, node(fmt.Sprintf("a%d", i), fmt.Sprintf("a%020d", i)))
		n2 = append(n2, node(fmt.Sprintf("b%d", i), fmt.Sprintf("b%020d", i)))
	}
	s1, err := env.svc.Open(context.Background(), liveQuery(now, Warning, n1...))
	if err != nil {
		t.Fatal(err)
	}
	defer s1.Close()
	s2, err := env.svc.Open(context.Background(), liveQuery(now, Error, n2...))
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	h := env.svc.hubs["p1"]
	set, _ := h.snapshot()
	if f := h.filterFor(set); f != `(resource.type="gce_instance") AND (severity>=WARNING)` {
		t.Fatalf("hub filter = %.200q", f)
	}
	c1, c2 := collect(t, s1), collect(t, s2)
	c1.until("live", func(c *collector) bool { return c.last.Phase == Live })
	c2.until("live", func(c *collector) bool { return c.last.Phase == Live })
	waitFor(t, "the tail", func() bool { return env.srv.Stats().TailsOpen == 1 })
	env.srv.Add(
		logEntry("p1", fmt.Sprintf("a%020d", 7), "a-warn", time.Now(), ltype.LogSeverity_WARNING, "w"),
		logEntry("p1", fmt.Sprintf("b%020d", 7), "b-warn", time.Now(), ltype.LogSeverity_WARNING, "w"),
		logEntry("p1", fmt.Sprintf("b%020d", 9), "b-err", time.Now(), ltype.LogSeverity_ERROR, "e"),
		logEntry("p1", "zzz", "nobody", time.Now(), ltype.LogSeverity_EMERGENCY, "e"),
	)
	c1.until("view 1", func(c *collector) bool { return c.buf.Len() == 1 })
	c2.until("view 2", func(c *collector) bool { return c.buf.Len() == 1 })
	if c1.buf.At(0).InsertID != "a-warn" || c1.buf.At(0).Node != "a7" {
		t.Errorf("view 1 got %+v", c1.buf.At(0))
	}
	if c2.buf.At(0).InsertID != "b-err" || c2.buf.At(0).Node != "b9" {
		t.Errorf("view 2 got %+v", c2.buf.At(0))
	}
}

func TestSuppressionCounted(t *testing.T) {
	env := newEnv(t, logserver.Options{}, nil)
	s, err := env.svc.Open(context.Background(), liveQuery(time.Now(), Default))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := collect(t, s)
	c.until("live", func(c *collector) bool { return c.last.Phase == Live })
	waitFor(t, "the tail", func() bool { return env.srv.Stats().TailsOpen == 1 })
	env.srv.Suppress(loggingpb.TailLogEntriesResponse_SuppressionInfo_RATE_LIMIT, 7)
	env.srv.Suppress(loggingpb.TailLogEntriesResponse_SuppressionInfo_NOT_CONSUMED, 3)
	c.until("suppression counts", func(c *collector) bool {
		return c.last.Suppressed["RATE_LIMIT"] == 7 && c.last.Suppressed["NOT_CONSUMED"] == 3
	})
}

func TestUnreadStreamIsBounded(t *testing.T) {
	env := newEnv(t, logserver.Options{}, func(c *Config) { c.Cap = 100 })
	var es []*loggingpb.LogEntry
	for i := range 250 {
		es = append(es, logEntry("p1", "101", fmt.Sprintf("e%03d", i), tw.Add(time.Duration(i)*time.Second), ltype.LogSeverity_INFO, "x"))
	}
	env.srv.Add(es...)
	s, err := env.svc.Open(context.Background(), Query{Nodes: []NodeRef{node("web-1", "101")}, From: tw, To: tw.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// Nobody reads until the list is over.
	waitFor(t, "the list", func() bool {
		st := s.(*stream)
		st.mu.Lock()
		defer st.mu.Unlock()
		return st.final
	})
	c := collect(t, s)
	c.until("the end", func(c *collector) bool { return c.eof })
	if c.buf.Len() != 100 || c.buf.At(0).InsertID != "e150" || c.last.Dropped != 150 || c.last.Listed != 250 {
		t.Fatalf("got %d entries from %s, status %+v", c.buf.Len(), c.buf.At(0).InsertID, c.last)
	}
}

func TestEntryConversion(t *testing.T) {
	js, _ := structpb.NewStruct(map[string]any{"msg": "disk <full>", "level": "error", "n": 3})
	jsErr, _ := structpb.NewStruct(map[string]any{"error": map[string]any{"code": 5}})
	jsNone, _ := structpb.NewStruct(map[string]any{"b": 1, "a": "x"})
	for _, c := range []struct {
		name          string
		e             *loggingpb.LogEntry
		text, payload string
	}{
		{"text", &loggingpb.LogEntry{Payload: &loggingpb.LogEntry_TextPayload{TextPayload: "raw \x1b[31m\n"}},
			"raw \x1b[31m\n", `"raw \u001b[31m\n"`},
		{"json msg", &loggingpb.LogEntry{Payload: &loggingpb.LogEntry_JsonPayload{JsonPayload: js}},
			"disk <full>", "{\n  \"level\": \"error\",\n  \"msg\": \"disk <full>\",\n  \"n\": 3\n}"},
		{"json error object", &loggingpb.LogEntry{Payload: &loggingpb.LogEntry_JsonPayload{JsonPayload: jsErr}},
			`{"code":5}`, "{\n  \"error\": {\n    \"code\": 5\n  }\n}"},
		{"json other", &loggingpb.LogEntry{Payload: &loggingpb.LogEntry_JsonPayload{JsonPayload: jsNone}},
			`{"a":"x","b":1}`, "{\n  \"a\": \"x\",\n  \"b\": 1\n}"},
		{"http", &loggingpb.LogEntry{HttpRequest: &ltype.HttpRequest{RequestMethod: "GET", RequestUrl: "/x?y=1", Status: 503}},
			"GET /x?y=1 503", "{\n  \"httpRequest\": {\n    \"requestMethod\": \"GET\",\n    \"requestUrl\": \"/x?y=1\",\n    \"status\": 503\n  }\n}"},
		{"empty", &loggingpb.LogEntry{}, "", ""},
	} {
		e := convert(c.e, "p")
		if e.Text != c.text || e.Payload != c.payload {
			t.Errorf("%s: text %q payload %q; want %q %q", c.name, e.Text, e.Payload, c.text, c.payload)
		}
		if e.Project != "p" {
			t.Errorf("%s: project %q", c.name, e.Project)
		}
	}
}

func TestSaveJSONLines(t *testing.T) {
	var b strings.Builder
	e := &Entry{InsertID: "i", Project: "p", LogName: "projects/p/logs/l", Time: tw, Severity: Error,
		Node: "web-1", Labels: map[string]string{"k": "v"}, Text: "a\x1b]52;c;x\x07", Payload: `"a"`}
	// A JSON payload is saved as a value (jq .payload.status works); a
	// payload that is not valid JSON, or not valid UTF-8, as a string.
	obj := &Entry{Time: tw, Severity: Info, Payload: "{\n  \"status\": 503,\n  \"msg\": \"upstream\"\n}"}
	bad := &Entry{Time: tw, Severity: Info, Payload: "{not json \x1b"}
	badUTF8 := &Entry{Time: tw, Severity: Info, Payload: "\"\xff\""}
	if err := Save(&b, []*Entry{e, nil, {Time: tw, Severity: 450}, obj, bad, badUTF8}); err != nil {
		t.Fatal(err)
	}
	want := `{"insertId":"i","project":"p","logName":"projects/p/logs/l","timestamp":"2026-11-01T10:00:00Z","severity":"ERROR","node":"web-1","labels":{"k":"v"},"text":"a\u001b]52;c;x\u0007","payload":"a"}
{"insertId":"","project":"","logName":"","timestamp":"2026-11-01T10:00:00Z","severity":"450","text":""}
{"insertId":"","project":"","logName":"","timestamp":"2026-11-01T10:00:00Z","severity":"INFO","text":"","payload":{"status":503,"msg":"upstream"}}
{"insertId":"","project":"","logName":"","timestamp":"2026-11-01T10:00:00Z","severity":"INFO","text":"","payload":"{not json \u001b"}
{"insertId":"","project":"","logName":"","timestamp":"2026-11-01T10:00:00Z","severity":"INFO","text":"","payload":"\"\ufffd\""}
`
	if b.String() != want {
		t.Fatalf("saved:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestNewValidates(t *testing.T) {
	ctx := context.Background()
	for _, cfg := range []Config{
		{},
		{Projects: []string{"a/b"}},
		{Projects: []string{"p"}, Insecure: true},
		{Projects: []string{"p"}, Mapping: Mapping{From: "bogus"}},
	} {
		if s, err := New(ctx, cfg); err == nil {
			_ = s.Close()
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
}

func TestCloseEndsEverything(t *testing.T) {
	env := newEnv(t, logserver.Options{}, nil)
	s, err := env.svc.Open(context.Background(), liveQuery(time.Now(), Default))
	if err != nil {
		t.Fatal(err)
	}
	c := collect(t, s)
	c.until("live", func(c *collector) bool { return c.last.Phase == Live })
	// A stream whose context ends closes itself.
	ctx, cancel := context.WithCancel(context.Background())
	s2, err := env.svc.Open(ctx, liveQuery(time.Now(), Default))
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := drain(s2); !errors.Is(err, ErrClosed) {
		t.Errorf("Next after the open context ended = %v", err)
	}
	if err := env.svc.Close(); err != nil {
		t.Fatal(err)
	}
	if err := drain(s); !errors.Is(err, ErrClosed) {
		t.Errorf("Next after Service.Close = %v", err)
	}
	if _, err := env.svc.Open(context.Background(), liveQuery(time.Now(), Default)); !errors.Is(err, ErrClosed) {
		t.Errorf("Open after Close = %v", err)
	}
	s.Close() // after the Service: harmless
	// goleak in TestMain checks that no goroutine is left.
}

// drain calls Next until it fails (batches already queued come first) and
// returns the error.
func drain(s Stream) error {
	for {
		if _, err := s.Next(context.Background()); err != nil {
			return err
		}
	}
}

func TestSeveralProjects(t *testing.T) {
	env := newEnv(t, logserver.Options{}, func(c *Config) {
		c.Projects = []string{"p1", "projects/p2"}
		// Five calls' burst, then one a minute: the test needs no more.
		c.ListPerMinute = 1
	})
	env.srv.Add(
		logEntry("p1", "101", "p1-a", tw, ltype.LogSeverity_INFO, "a"),
		logEntry("p2", "102", "p2-b", tw.Add(time.Second), ltype.LogSeverity_INFO, "b"),
		logEntry("p3", "101", "p3-c", tw.Add(time.Second), ltype.LogSeverity_INFO, "c"),
	)
	q := Query{Nodes: []NodeRef{node("web-1", "101"), node("web-2", "102")}, From: tw, To: tw.Add(time.Minute)}
	s, err := env.svc.Open(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := collect(t, s)
	c.until("the end", func(c *collector) bool { return c.eof })
	if got := strings.Join(c.ids(), ","); got != "p1-a,p2-b" || c.last.ListCalls != 1 {
		t.Fatalf("entries %s in %d calls", got, c.last.ListCalls)
	}
	if c.buf.At(1).Project != "p2" || c.buf.At(1).Node != "web-2" {
		t.Errorf("entry = %+v", c.buf.At(1))
	}
	// The one call took a token from each project's limiter.
	for _, p := range []string{"p1", "p2"} {
		if tok := env.svc.limiters[p].Tokens(); tok > listBurst-1+0.5 {
			t.Errorf("project %s limiter has %.2f tokens after a call, want about %d", p, tok, listBurst-1)
		}
	}

	// Live: one tail per project.
	l, err := env.svc.Open(context.Background(), liveQuery(time.Now(), Default, node("web-1", "101")))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	lc := collect(t, l)
	lc.until("live", func(c *collector) bool { return c.last.Phase == Live })
	waitFor(t, "a tail per project", func() bool { return env.srv.Stats().TailsOpen == 2 })
	env.srv.Add(
		logEntry("p1", "101", "live-p1", time.Now(), ltype.LogSeverity_INFO, "a"),
		logEntry("p2", "101", "live-p2", time.Now(), ltype.LogSeverity_INFO, "b"),
	)
	lc.until("both projects' entries", func(c *collector) bool { return c.buf.Len() == 2 })
	got := map[string]string{}
	for i := range lc.buf.Len() {
		got[lc.buf.At(i).InsertID] = lc.buf.At(i).Project
	}
	if got["live-p1"] != "p1" || got["live-p2"] != "p2" {
		t.Errorf("live entries = %v", got)
	}
	lc.checkOnce()
}

// BenchmarkConvert measures turning API entries into Entries (JSON
// payloads, the costliest common kind), the per-entry work of a tail.
func BenchmarkConvert(b *testing.B) {
	js, _ := structpb.NewStruct(map[string]any{
		"message": "order 123 processed", "component": "checkout", "latencyMs": 12.5,
		"user": map[string]any{"id": "u-1", "plan": "pro"},
	})
	pe := logEntry("p1", "101", "i", tw, ltype.LogSeverity_INFO, "")
	pe.Payload = &loggingpb.LogEntry_JsonPayload{JsonPayload: js}
	for b.Loop() {
		convert(pe, "p1")
	}
}

func TestLargeEntriesRoundTrip(t *testing.T) {
	env := newEnv(t, logserver.Options{}, nil)
	// 1 MB lines with escape sequences: stored raw (the console
	// sanitises); a page (8 MiB here) holds only some of them.
	line := strings.Repeat("\x1b[2J\x1b]52;c;AAAA\x07 ", 1<<20/18)
	var es []*loggingpb.LogEntry
	for i := range 10 {
		es = append(es, logEntry("p1", "101", fmt.Sprintf("big%02d", i), tw.Add(time.Duration(i)*time.Second), ltype.LogSeverity_ERROR, line))
	}
	env.srv.Add(es...)
	s, err := env.svc.Open(context.Background(), Query{Nodes: []NodeRef{node("web-1", "101")}, From: tw, To: tw.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := collect(t, s)
	c.until("the end", func(c *collector) bool { return c.eof })
	if c.buf.Len() != 10 || c.last.ListCalls < 2 {
		t.Fatalf("%d entries in %d calls", c.buf.Len(), c.last.ListCalls)
	}
	for i := range 10 {
		if c.buf.At(i).Text != line {
			t.Fatalf("entry %d text changed (%d bytes)", i, len(c.buf.At(i).Text))
		}
	}
}

// Waiting for the list-call budget shows in the Status, and clears once
// the calls go through.
func TestThrottleIsVisible(t *testing.T) {
	env := newEnv(t, logserver.Options{}, func(c *Config) {
		c.ListPerMinute = 60 // one call a second after a burst of listBurst
		c.PageSize = 1
	})
	for i := range listBurst + 2 {
		env.srv.Add(logEntry("p1", "101", fmt.Sprintf("e%d", i), tw.Add(time.Duration(i)*time.Second), ltype.LogSeverity_INFO, "x"))
	}
	s, err := env.svc.Open(context.Background(), Query{Nodes: []NodeRef{node("web-1", "101")}, From: tw, To: tw.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := collect(t, s)
	c.until("the end", func(c *collector) bool { return c.eof })
	throttled := false
	for _, st := range c.statuses {
		if errors.Is(st.Err, ErrThrottled) && !st.RetryAt.IsZero() && st.Phase == Listing {
			throttled = true
		}
	}
	if !throttled {
		t.Errorf("no status said the stream waited for the list-call budget: %+v", c.statuses)
	}
	if c.buf.Len() != listBurst+2 || c.last.Err != nil {
		t.Errorf("listed %d, final err %v", c.buf.Len(), c.last.Err)
	}
}

// An endpoint that cannot be reached is retried by logview, visibly, not
// silently by the client library for a minute.
func TestUnreachableEndpointIsVisible(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now: connection refused
	svc, err := New(context.Background(), Config{Projects: []string{"p1"}, Endpoint: addr, Insecure: true,
		RetryMin: 50 * time.Millisecond, RetryMax: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	s, err := svc.Open(context.Background(), Query{Nodes: []NodeRef{node("web-1", "101")}, From: tw, To: tw.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := collect(t, s)
	c.until("an error in the status", func(c *collector) bool { return c.last.Err != nil })
	if c.last.Phase != Listing || c.last.RetryAt.IsZero() || !strings.Contains(c.last.Err.Error(), "Unavailable") {
		t.Fatalf("status %+v", c.last)
	}
	t.Logf("shown: %v", c.last.Err)
}

// The tail's gap fill reaches back before a live view's From on purpose
// (it overlaps the tail); the view still gets nothing older than From.
func TestLiveViewGetsNothingBeforeFrom(t *testing.T) {
	env := newEnv(t, logserver.Options{}, nil)
	now := time.Now()
	env.srv.Add(logEntry("p1", "101", "before", now.Add(-5*time.Second), ltype.LogSeverity_INFO, "old"))
	s, err := env.svc.Open(context.Background(), Query{Nodes: []NodeRef{node("web-1", "101")}, From: now})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := collect(t, s)
	c.until("live", func(c *collector) bool { return c.last.Phase == Live })
	waitFor(t, "the tail", func() bool { return env.srv.Stats().TailsOpen == 1 })
	env.srv.Add(logEntry("p1", "101", "after", time.Now(), ltype.LogSeverity_INFO, "new"))
	c.until("the new entry", func(c *collector) bool { return c.delivered["after"] > 0 })
	if c.delivered["before"] > 0 {
		t.Fatalf("an entry before From was delivered: %v", c.ids())
	}
}

func TestEntryContext(t *testing.T) {
	pe := &loggingpb.LogEntry{
		Trace: "projects/p/traces/abc", SpanId: "0123", TraceSampled: true,
		SourceLocation: &loggingpb.LogEntrySourceLocation{File: "pool.go", Line: 42, Function: "db.(*Pool).Get"},
		Operation:      &loggingpb.LogEntryOperation{Producer: "deploy", Id: "op-7", Last: true},
		HttpRequest: &ltype.HttpRequest{RequestMethod: "POST", RequestUrl: "/pay", Status: 502,
			Latency: durationpb.New(1500 * time.Millisecond), RemoteIp: "203.0.113.9", ResponseSize: 512},
		Payload: &loggingpb.LogEntry_TextPayload{TextPayload: "upstream failed"},
	}
	got := convert(pe, "p").Context
	want := map[string]string{
		"trace": "projects/p/traces/abc", "spanId": "0123", "traceSampled": "true",
		"sourceLocation": "pool.go:42 db.(*Pool).Get", "operation": "deploy/op-7 (last)",
		"httpRequest.method": "POST", "httpRequest.url": "/pay", "httpRequest.status": "502",
		"httpRequest.latency": "1.5s", "httpRequest.remoteIp": "203.0.113.9", "httpRequest.responseSize": "512",
	}
	if !maps.Equal(got, want) {
		t.Fatalf("context %v\nwant %v", got, want)
	}
	if c := convert(&loggingpb.LogEntry{}, "p").Context; c != nil {
		t.Fatalf("empty entry has context %v", c)
	}
}
