package fleetsim

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	logging "cloud.google.com/go/logging/apiv2"
	"cloud.google.com/go/logging/apiv2/loggingpb"
	"go.uber.org/goleak"
	"google.golang.org/api/iterator"
	ltype "google.golang.org/genproto/googleapis/logging/type"
	"google.golang.org/protobuf/proto"

	"github.com/fleetdeck/fleetdeck/internal/consulagent"
	"github.com/fleetdeck/fleetdeck/internal/logserver"
)

// The log simulator's tests run it against the local Cloud Logging
// endpoint through the real apiv2 client, with a hand-moved clock so that
// what is written depends only on the test's steps, never on timing.

const testProject = "logsim-test"

// clock is a test clock moved by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

// t0 is the tests' start: near the real now, because a list call without a
// timestamp clause only looks back 24 hours from the server's clock.
func t0() time.Time { return time.Now().UTC().Truncate(time.Minute) }

// runLogSim starts l.Run and stops it (checking its result) when the test
// ends.
func runLogSim(t *testing.T, l *LogSim) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

// waitThrough waits until l has written everything up to at. The deadline
// only turns a hang into a failure; nothing is asserted about speed.
func waitThrough(t *testing.T, l *LogSim, at time.Time) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for l.Stats().Through.Before(at) {
		if time.Now().After(deadline) {
			t.Fatalf("log simulator did not get through %v: %+v", at, l.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if s := l.Stats(); s.Failed > 0 {
		t.Fatalf("writes failed: %+v", s)
	}
}

func list(t *testing.T, c *logging.Client, filter string) []*loggingpb.LogEntry {
	t.Helper()
	it := c.ListLogEntries(context.Background(), &loggingpb.ListLogEntriesRequest{
		ResourceNames: []string{"projects/" + testProject}, Filter: filter, PageSize: 1000,
	})
	var out []*loggingpb.LogEntry
	for {
		e, err := it.Next()
		if errors.Is(err, iterator.Done) {
			return out
		}
		if err != nil {
			t.Fatalf("listing %q: %v", filter, err)
		}
		out = append(out, e)
	}
}

func since(t time.Time) string {
	return fmt.Sprintf(`timestamp>="%s"`, t.Add(-time.Hour).Format(time.RFC3339Nano))
}

// entryText is an entry's text, JSON or request line, for content checks.
func entryText(e *loggingpb.LogEntry) string {
	switch {
	case e.GetTextPayload() != "":
		return e.GetTextPayload()
	case e.GetJsonPayload() != nil:
		b, _ := e.GetJsonPayload().MarshalJSON()
		return string(b) + fmt.Sprint(e.GetJsonPayload().AsMap())
	}
	return ""
}

func newTestSim(t *testing.T, c *logging.Client, spec Spec, clk *clock, backfill time.Duration) *LogSim {
	t.Helper()
	l, err := NewLogSim(c, spec, LogOptions{Project: testProject, Backfill: backfill, FlushEvery: 5 * time.Millisecond, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func smallSpec(nodes int) Spec {
	s := DemoSpec()
	s.Nodes = nodes
	return s
}

func TestLogSimBackfillCoversEveryNode(t *testing.T) {
	_, c := logserver.StartTest(t, logserver.Options{})
	spec := DemoSpec()
	start := t0()
	clk := &clock{t: start}
	l := newTestSim(t, c, spec, clk, 10*time.Minute)
	runLogSim(t, l)
	waitThrough(t, l, start.Add(-ingestLag))

	nodes, _ := spec.Fleet()
	byIID := map[string]Node{}
	for _, n := range nodes {
		byIID[n.Meta["instance-id"]] = n
	}
	entries := list(t, c, since(start))
	perNode := map[string]int{}
	logsOf := map[string]map[string]bool{}
	from, to := start.Add(-10*time.Minute-ingestLag), start.Add(-ingestLag)
	for _, e := range entries {
		r := e.GetResource()
		n, ok := byIID[r.GetLabels()["instance_id"]]
		if !ok {
			t.Fatalf("entry for an unknown instance: %v", r)
		}
		if r.GetType() != "gce_instance" || r.GetLabels()["project_id"] != testProject || r.GetLabels()["zone"] != n.Zone {
			t.Errorf("%s: resource %v", n.Name, r)
		}
		if e.GetLabels()["hostname"] != n.Name {
			t.Errorf("%s: labels %v", n.Name, e.GetLabels())
		}
		log := strings.TrimPrefix(e.GetLogName(), "projects/"+testProject+"/logs/")
		if !slices.Contains([]string{logAccess, logNginxError, logApp, logSyslog}, log) {
			t.Errorf("%s: log name %q", n.Name, e.GetLogName())
		}
		if ts := e.GetTimestamp().AsTime(); ts.Before(from) || ts.After(to) {
			t.Errorf("%s: timestamp %v outside the backfill [%v, %v]", n.Name, ts, from, to)
		}
		// No incident happened: nobody says anything at ERROR or above,
		// so in the demo errors line up with incidents.
		if e.GetSeverity() >= ltype.LogSeverity_ERROR {
			t.Errorf("%s: %v entry without an incident: %q", n.Name, e.GetSeverity(), entryText(e))
		}
		perNode[n.Name]++
		if logsOf[n.Name] == nil {
			logsOf[n.Name] = map[string]bool{}
		}
		logsOf[n.Name][log] = true
	}
	for _, n := range nodes {
		if perNode[n.Name] == 0 {
			t.Errorf("node %s has no entries", n.Name)
		}
		var roles []string
		for _, s := range n.Services {
			roles = append(roles, s.Name)
		}
		if slices.Contains(roles, "web") && !logsOf[n.Name][logAccess] {
			t.Errorf("web node %s has no access log: %v", n.Name, logsOf[n.Name])
		}
		if !slices.Contains(roles, "web") && !slices.Contains(roles, "lb") && logsOf[n.Name][logAccess] {
			t.Errorf("node %s (%v) has an access log", n.Name, roles)
		}
	}
	// The background rate: 0.3 entries per node per second, a little more
	// on hostile nodes. The counts are deterministic for the seed.
	want := 0.3 * float64(len(nodes)) * 600
	if got := float64(len(entries)); got < 0.9*want || got > 1.1*want {
		t.Errorf("backfill wrote %v entries, want about %v", got, want)
	}
	if s := l.Stats(); s.Written != int64(len(entries)) {
		t.Errorf("Stats().Written = %d, listed %d", s.Written, len(entries))
	}
	t.Logf("%d entries for %d nodes", len(entries), len(nodes))
}

func TestLogSimCriticalCheckBurst(t *testing.T) {
	_, c := logserver.StartTest(t, logserver.Options{})
	spec := smallSpec(30)
	nodes, _ := spec.Fleet()
	var api, web *Node
	for i := range nodes {
		n := &nodes[i]
		if _, hostile := n.Meta[hostileMetaKey]; hostile {
			continue
		}
		switch n.Services[0].Name {
		case "api":
			api = cmpNode(api, n)
		case "web":
			web = cmpNode(web, n)
		}
	}
	start := t0()
	clk := &clock{t: start}
	l := newTestSim(t, c, spec, clk, -1)
	runLogSim(t, l)
	waitThrough(t, l, start.Add(-ingestLag)) // Run has read the clock

	bad := start.Add(10 * time.Second)
	good := start.Add(40 * time.Second)
	for _, n := range []*Node{api, web} {
		role := n.Services[0].Name
		l.Observe(SimEvent{Time: bad, Kind: CheckChanged, Node: n.Name, InstanceID: n.Meta["instance-id"], Zone: n.Zone, Group: n.Group,
			CheckID: "service:" + role, OldStatus: "passing", Status: "critical", Reason: "flap",
			Output: "HTTP GET http://" + n.Address + "/health: 503 Service Unavailable Output: upstream connect error"})
		l.Observe(SimEvent{Time: good, Kind: CheckChanged, Node: n.Name, InstanceID: n.Meta["instance-id"],
			CheckID: "service:" + role, OldStatus: "critical", Status: "passing", Reason: "recovered"})
	}
	end := start.Add(time.Minute)
	clk.Set(end.Add(ingestLag))
	waitThrough(t, l, end)

	errs := map[string][]*loggingpb.LogEntry{}
	for _, e := range list(t, c, since(start)+` AND severity>=ERROR`) {
		errs[e.GetLabels()["hostname"]] = append(errs[e.GetLabels()["hostname"]], e)
	}
	for _, n := range []*Node{api, web} {
		var before, after int
		for _, e := range errs[n.Name] {
			ts := e.GetTimestamp().AsTime()
			switch {
			case ts.Before(bad.Add(-10 * time.Second)):
				t.Errorf("%s: error %v long before the check changed at %v: %q", n.Name, ts, bad, entryText(e))
			case ts.Before(bad):
				before++
			case ts.After(good):
				t.Errorf("%s: error %v after the check passed again at %v: %q", n.Name, ts, good, entryText(e))
			default:
				after++
			}
		}
		if before < 5 || after < 5 {
			t.Errorf("%s: %d errors in the 10 s before the check went critical, %d while critical; want a burst before and errors after", n.Name, before, after)
		}
		delete(errs, n.Name)
	}
	for name, es := range errs {
		t.Errorf("node %s without an incident has %d errors, e.g. %q", name, len(es), entryText(es[0]))
	}
	// The web node's burst shows in its web server logs: 5xx responses
	// or upstream errors.
	webLogs := list(t, c, since(start)+fmt.Sprintf(` AND labels.hostname=%q AND severity>=ERROR AND (logName="projects/%s/logs/nginx-access" OR logName="projects/%s/logs/nginx-error")`, web.Name, testProject, testProject))
	if len(webLogs) == 0 {
		t.Errorf("web node %s: no nginx errors in its burst", web.Name)
	}
	for _, e := range webLogs {
		if hr := e.GetHttpRequest(); hr != nil && hr.GetStatus() < 500 {
			t.Errorf("web node %s: an ERROR access line with status %d", web.Name, hr.GetStatus())
		}
	}
	// The health check's own request is in the web server's log, with the
	// status the check reported, just before the change.
	probe := list(t, c, since(start)+fmt.Sprintf(` AND labels.hostname=%q AND httpRequest.requestUrl="/health" AND httpRequest.status=503`, web.Name))
	if !slices.ContainsFunc(probe, func(e *loggingpb.LogEntry) bool {
		ts := e.GetTimestamp().AsTime()
		return ts.Before(bad) && !ts.Before(bad.Add(-time.Second))
	}) {
		t.Errorf("web node %s: no 503 for GET /health in the second before %v: %v", web.Name, bad, probe)
	}
	// Recovery is logged around the moment the check passed.
	rec := list(t, c, since(start)+fmt.Sprintf(` AND labels.hostname=%q AND timestamp>=%q AND timestamp<=%q AND "dependency healthy again"`, api.Name, good.Add(-3*time.Second).Format(time.RFC3339Nano), good.Format(time.RFC3339Nano)))
	if len(rec) == 0 {
		t.Errorf("api node %s: no recovery lines when its check passed", api.Name)
	}
}

// cmpNode keeps the first node found.
func cmpNode(have, n *Node) *Node {
	if have != nil {
		return have
	}
	return n
}

func TestLogSimJoinAndLeave(t *testing.T) {
	_, c := logserver.StartTest(t, logserver.Options{})
	spec := smallSpec(12)
	nodes, _ := spec.Fleet()
	var gone *Node
	for i := range nodes {
		if nodes[i].Group == "web-asg" {
			gone = &nodes[i]
			break
		}
	}
	start := t0()
	clk := &clock{t: start}
	l := newTestSim(t, c, spec, clk, 5*time.Minute)
	runLogSim(t, l)
	waitThrough(t, l, start.Add(-ingestLag)) // Run has read the clock

	left := start.Add(20 * time.Second)
	joined := start.Add(25 * time.Second)
	l.Observe(SimEvent{Time: left, Kind: NodeLeft, Node: gone.Name, Group: gone.Group, Zone: gone.Zone, InstanceID: gone.Meta["instance-id"], Reason: "auto-heal: terminated unhealthy instance"})
	l.Observe(SimEvent{Time: joined, Kind: NodeJoined, Node: "ip-10-1-9-9", Address: "10.1.9.9", Group: "web-asg", Zone: "eu-west-1a", InstanceID: "i-0123456789abcdef0", Reason: "auto-heal: replacement for " + gone.Name})
	end := start.Add(10 * time.Minute)
	clk.Set(end.Add(ingestLag))
	waitThrough(t, l, end)

	old := list(t, c, since(start)+fmt.Sprintf(` AND resource.labels.instance_id=%q`, gone.Meta["instance-id"]))
	var last time.Time
	var terminated bool
	for _, e := range old {
		if ts := e.GetTimestamp().AsTime(); ts.After(last) {
			last = ts
		}
		terminated = terminated || strings.Contains(entryText(e), "terminated by autoscaler")
	}
	if last.After(left) {
		t.Errorf("node %s left at %v but logged until %v", gone.Name, left, last)
	}
	if !terminated {
		t.Errorf("node %s: no \"terminated by autoscaler\" line before it left", gone.Name)
	}

	fresh := list(t, c, since(start)+` AND resource.labels.instance_id="i-0123456789abcdef0"`)
	var boot, joinedLine, later, access int
	for _, e := range fresh {
		ts, text := e.GetTimestamp().AsTime(), entryText(e)
		if e.GetLabels()["hostname"] != "ip-10-1-9-9" || e.GetResource().GetLabels()["zone"] != "eu-west-1a" {
			t.Errorf("joined node's entry has labels %v, resource %v", e.GetLabels(), e.GetResource())
		}
		switch {
		case ts.After(joined):
			later++
		case strings.Contains(text, "cloud-init"):
			boot++
		case strings.Contains(text, "(LAN) joined"):
			joinedLine++
		}
		if strings.HasSuffix(e.GetLogName(), "/"+logAccess) {
			access++
		}
	}
	if boot == 0 || joinedLine == 0 || later < 20 || access == 0 {
		t.Errorf("joined node: %d cloud-init lines, %d join lines before it joined, %d entries after, %d access lines (it is a web node)", boot, joinedLine, later, access)
	}
}

func TestLogSimHostilePayloads(t *testing.T) {
	_, c := logserver.StartTest(t, logserver.Options{})
	spec := smallSpec(40)
	start := t0()
	clk := &clock{t: start}
	l := newTestSim(t, c, spec, clk, 12*time.Minute)
	runLogSim(t, l)
	waitThrough(t, l, start.Add(-ingestLag))

	nodes, _ := spec.Fleet()
	// What must show up somewhere in the hostile nodes' entries: these
	// substrings in a payload, and the flags below.
	substrings := map[string]string{
		"clear screen": "\x1b[2J", "OSC 52": "\x1b]52;c;", "bell": "\a", "CR LF": "\r\n",
		"C1 CSI": "\u009b", "bidi override": "\u202e", "replacement character": "\ufffd", "NUL": "\x00",
	}
	want := map[string]bool{"escape in a JSON key": false, "escape in a label": false, "long line": false, "owner label": false}
	for k := range substrings {
		want[k] = false
	}
	for _, n := range nodes {
		owner, ok := n.Meta[hostileMetaKey]
		if !ok {
			continue
		}
		for _, e := range list(t, c, since(start)+fmt.Sprintf(` AND labels.hostname=%q`, n.Name)) {
			text := entryText(e)
			if hr := e.GetHttpRequest(); hr != nil {
				text += hr.GetRequestUrl() + hr.GetUserAgent()
			}
			for k, sub := range substrings {
				if strings.Contains(text, sub) {
					want[k] = true
				}
			}
			if _, ok := e.GetJsonPayload().GetFields()["\x1b[31mkey"]; ok {
				want["escape in a JSON key"] = true
			}
			for k, v := range e.GetLabels() {
				if strings.Contains(k+v, "\x1b") && k != "owner" {
					want["escape in a label"] = true
				}
			}
			if e.GetLabels()["owner"] == owner {
				want["owner label"] = true
			}
			if len(e.GetTextPayload()) >= 1<<20 {
				want["long line"] = true
			}
		}
	}
	for k, seen := range want {
		if !seen {
			t.Errorf("hostile nodes never logged: %q", k)
		}
	}
}

func TestLogSimDeterministic(t *testing.T) {
	_, c := logserver.StartTest(t, logserver.Options{})
	start := t0()
	gen := func() []*loggingpb.LogEntry {
		l, err := NewLogSim(c, smallSpec(20), LogOptions{Project: testProject, Now: func() time.Time { return start }})
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range l.initial {
			l.addNode(newLogNode(l, n), start)
		}
		l.clock = start
		l.Observe(SimEvent{Time: start.Add(5 * time.Second), Kind: CheckChanged, Node: l.nodes[2].name, CheckID: NodeCheckID, Status: "critical", Reason: "auto-heal: instance unresponsive"})
		l.advance(start.Add(time.Minute))
		return l.pending
	}
	a, b := gen(), gen()
	if len(a) != len(b) {
		t.Fatalf("two runs wrote %d and %d entries", len(a), len(b))
	}
	for i := range a {
		if !proto.Equal(a[i], b[i]) {
			t.Fatalf("entry %d differs:\n%v\n%v", i, a[i], b[i])
		}
	}
}

func TestLogSimObserveNeverBlocks(t *testing.T) {
	_, c := logserver.StartTest(t, logserver.Options{})
	l, err := NewLogSim(c, smallSpec(5), LogOptions{Project: testProject})
	if err != nil {
		t.Fatal(err)
	}
	// Nobody runs l: Observe must keep a bounded queue and count the rest.
	for i := 0; i < maxQueuedEvents+100; i++ {
		l.Observe(SimEvent{Kind: CheckChanged, Node: "x", Status: "critical"})
	}
	l.Observe(SimEvent{Kind: ScaleOut, Group: "web-asg"}) // ignored: no node
	if s := l.Stats(); s.DroppedEvents != 100 {
		t.Errorf("DroppedEvents = %d, want 100", s.DroppedEvents)
	}
}

func TestLogSimRunStopsOnCancel(t *testing.T) {
	_, c := logserver.StartTest(t, logserver.Options{})
	// Open the client's connection first: its goroutines belong to the
	// client, not to Run.
	if _, err := c.WriteLogEntries(context.Background(), &loggingpb.WriteLogEntriesRequest{Entries: []*loggingpb.LogEntry{{
		LogName: "projects/" + testProject + "/logs/warmup", Payload: &loggingpb.LogEntry_TextPayload{TextPayload: "warm-up"},
	}}}); err != nil {
		t.Fatal(err)
	}
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	l, err := NewLogSim(c, DemoSpec(), LogOptions{Project: testProject})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	// Cancel in the middle of the backfill, once something was written.
	deadline := time.Now().Add(time.Minute)
	for l.Stats().Written == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run returned %v after cancel, want nil", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Run did not return after its context was cancelled")
	}
	if err := l.Run(context.Background()); err == nil {
		t.Error("a second Run was accepted")
	}
}

// TestLogSimFollowsRun wires the simulator to Run as the demo does and
// checks that the logs tell the story of the events: errors before every
// check that went critical, boot lines for every join, nothing after a
// leave.
func TestLogSimFollowsRun(t *testing.T) {
	a := consulagent.StartTest(t, consulagent.Options{})
	consul, err := a.Client()
	if err != nil {
		t.Fatal(err)
	}
	_, c := logserver.StartTest(t, logserver.Options{})
	spec := DemoSpec()
	spec.Nodes = 40
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := Load(ctx, consul, spec); err != nil {
		t.Fatalf("Load: %v", err)
	}
	// The simulator's clock runs 5 s behind the events' wall-clock times,
	// so each event has been observed long before the logs reach it even
	// when this machine stalls.
	l, err := NewLogSim(c, spec, LogOptions{Project: testProject, Backfill: time.Minute, FlushEvery: 20 * time.Millisecond,
		Now: func() time.Time { return time.Now().Add(-5 * time.Second) }})
	if err != nil {
		t.Fatal(err)
	}
	logCtx, stopLogs := context.WithCancel(ctx)
	logDone := make(chan error, 1)
	go func() { logDone <- l.Run(logCtx) }()
	defer func() {
		stopLogs()
		if err := <-logDone; err != nil {
			t.Errorf("LogSim.Run: %v", err)
		}
	}()

	var mu sync.Mutex
	var events []SimEvent
	runCtx, stopRun := context.WithTimeout(ctx, 4*time.Second)
	defer stopRun()
	err = Run(runCtx, consul, spec, RunOptions{
		FlapEvery: 100 * time.Millisecond, FlapFor: 600 * time.Millisecond,
		ScaleEvery: 2 * time.Second, ScaleStep: 2, ScaleHold: time.Second,
		HealEvery: 2 * time.Second, HealCriticalFor: 500 * time.Millisecond, ReplaceAfter: 200 * time.Millisecond,
		JoinSpacing: 100 * time.Millisecond,
		OnEvent: func(e SimEvent) {
			l.Observe(e)
			mu.Lock()
			defer mu.Unlock()
			events = append(events, e)
		},
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(events) == 0 {
		t.Fatal("Run made no events")
	}
	last := events[len(events)-1].Time
	waitThrough(t, l, last.Add(2*time.Second))

	byNode := map[string][]*loggingpb.LogEntry{}
	for _, e := range list(t, c, since(time.Now())) {
		byNode[e.GetLabels()["hostname"]] = append(byNode[e.GetLabels()["hostname"]], e)
	}
	count := func(node string, from, to time.Time, ok func(*loggingpb.LogEntry) bool) int {
		n := 0
		for _, e := range byNode[node] {
			if ts := e.GetTimestamp().AsTime(); !ts.Before(from) && ts.Before(to) && ok(e) {
				n++
			}
		}
		return n
	}
	isError := func(e *loggingpb.LogEntry) bool { return e.GetSeverity() >= ltype.LogSeverity_ERROR }
	everyEntry := func(*loggingpb.LogEntry) bool { return true }
	kinds := map[EventKind]int{}
	for _, ev := range events {
		kinds[ev.Kind]++
		switch {
		case ev.Kind == CheckChanged && ev.Status == "critical" && ev.OldStatus == "passing":
			if count(ev.Node, ev.Time.Add(-8*time.Second), ev.Time, isError) == 0 {
				t.Errorf("no errors on %s before its check %s went critical at %v", ev.Node, ev.CheckID, ev.Time)
			}
		case ev.Kind == NodeJoined:
			if count(ev.Node, ev.Time.Add(-time.Minute), ev.Time.Add(time.Millisecond), func(e *loggingpb.LogEntry) bool {
				return strings.Contains(e.GetTextPayload(), "cloud-init")
			}) == 0 {
				t.Errorf("no boot lines for %s, which joined at %v", ev.Node, ev.Time)
			}
		case ev.Kind == NodeLeft:
			if n := count(ev.Node, ev.Time.Add(time.Nanosecond), ev.Time.Add(time.Hour), everyEntry); n > 0 {
				t.Errorf("%s left at %v but wrote %d entries after", ev.Node, ev.Time, n)
			}
		}
	}
	t.Logf("events: %v; %d entries written", kinds, l.Stats().Written)
	if kinds[NodeJoined] == 0 || kinds[NodeLeft] == 0 || kinds[CheckChanged] == 0 {
		t.Errorf("too little happened to check the logs against: %v", kinds)
	}
}

// BenchmarkLogSimBackfill measures writing the demo's default 30-minute
// backfill (320 nodes) through the client to the local endpoint.
func BenchmarkLogSimBackfill(b *testing.B) {
	_, c := logserver.StartTest(b, logserver.Options{})
	for b.Loop() {
		start := time.Now()
		l, err := NewLogSim(c, DemoSpec(), LogOptions{Project: fmt.Sprintf("bench-%d", start.UnixNano()), Now: func() time.Time { return start }})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- l.Run(ctx) }()
		for l.Stats().Through.Before(start.Add(-ingestLag)) {
			time.Sleep(time.Millisecond)
		}
		cancel()
		<-done
		s := l.Stats()
		b.ReportMetric(float64(s.Written), "entries/op")
	}
}
