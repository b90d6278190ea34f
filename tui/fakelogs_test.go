package tui

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/fleetdeck/fleetdeck/fleet"
	"github.com/fleetdeck/fleetdeck/logview"
)

// fakeLogs is a logview.Opener for the console's pure-logic tests: it
// records each query and hands out streams the test feeds by hand. (The
// real Service is tested against the local Cloud Logging endpoint in
// package logview.)
type fakeLogs struct {
	mu      sync.Mutex
	queries []logview.Query
	streams []*fakeStream
	openErr error
	// seed is queued on every new stream.
	seed []logview.Batch
}

func (f *fakeLogs) Open(ctx context.Context, q logview.Query) (logview.Stream, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.openErr != nil {
		return nil, f.openErr
	}
	q.Nodes = append([]logview.NodeRef(nil), q.Nodes...)
	f.queries = append(f.queries, q)
	s := &fakeStream{batches: make(chan logview.Batch, 64), fin: make(chan logview.Status, 1), closed: make(chan struct{})}
	for _, b := range f.seed {
		s.batches <- b
	}
	f.streams = append(f.streams, s)
	return s, nil
}

// last returns the newest query and stream.
func (f *fakeLogs) last(t *testing.T) (logview.Query, *fakeStream) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.streams) == 0 {
		t.Fatal("no stream opened")
	}
	return f.queries[len(f.queries)-1], f.streams[len(f.streams)-1]
}

func (f *fakeLogs) opened() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.streams)
}

// fakeStream delivers the batches pushed into it.
type fakeStream struct {
	batches chan logview.Batch
	// fin ends the stream as a Done or Failed one ends: its status, then
	// io.EOF.
	fin    chan logview.Status
	closed chan struct{}
	once   sync.Once
	mu     sync.Mutex
	closes int
}

func (s *fakeStream) Next(ctx context.Context) (logview.Batch, error) {
	select {
	case b := <-s.batches:
		return b, nil
	case st := <-s.fin:
		return logview.Batch{Status: st}, io.EOF
	case <-ctx.Done():
		return logview.Batch{}, ctx.Err()
	case <-s.closed:
		return logview.Batch{}, logview.ErrClosed
	}
}

func (s *fakeStream) Close() {
	s.mu.Lock()
	s.closes++
	s.mu.Unlock()
	s.once.Do(func() { close(s.closed) })
}

func (s *fakeStream) isClosed() bool {
	select {
	case <-s.closed:
		return true
	default:
		return false
	}
}

// newLogsHarness returns a harness whose console has fake logs.
func newLogsHarness(t *testing.T, snap *fleet.Snapshot, w, h int, noColor bool, opt func(*Options)) (*harness, *fakeLogs) {
	t.Helper()
	fl := &fakeLogs{}
	hs := newHarnessWith(t, snap, w, h, noColor, func(o *Options) {
		o.Logs = fl
		if opt != nil {
			opt(o)
		}
	})
	return hs, fl
}

// run executes cmd as Bubble Tea would, each command (and each command of
// a batch) in its own goroutine; their messages arrive on h.msgs.
func (h *harness) run(cmd tea.Cmd) {
	if cmd == nil {
		return
	}
	go func() {
		msg := cmd()
		if b, ok := msg.(tea.BatchMsg); ok {
			for _, c := range b {
				h.run(c)
			}
			return
		}
		if msg == nil {
			return
		}
		select {
		case h.msgs <- msg:
		case <-h.ctx.Done():
		}
	}()
}

// hit sends keys and runs the commands they return in the background
// (messages arrive through await).
func (h *harness) hit(ks ...string) {
	h.t.Helper()
	for _, k := range ks {
		h.run(h.send(keyMsg(k)))
	}
}

// await delivers command messages to the model (running the commands they
// return) until one satisfies ok, which it returns. The deadline only
// guards against a test that waits for a message that never comes.
func (h *harness) await(what string, ok func(tea.Msg) bool) tea.Msg {
	h.t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		select {
		case msg := <-h.msgs:
			h.run(h.send(msg))
			if ok(msg) {
				return msg
			}
		case <-deadline.C:
			h.t.Fatalf("no %s arrived", what)
			return nil
		}
	}
}

// openLogs presses the log key and waits until the stream is open.
func (h *harness) openLogs(fl *fakeLogs) (logview.Query, *fakeStream) {
	h.t.Helper()
	n := fl.opened()
	h.hit("l")
	if h.m.top().title() != "logs" {
		h.t.Fatalf("log key did not open the Logs view; flash %q", h.m.flash)
	}
	h.awaitOpened()
	if fl.opened() != n+1 {
		h.t.Fatalf("opened %d streams, want %d", fl.opened(), n+1)
	}
	return fl.last(h.t)
}

func (h *harness) awaitOpened() {
	h.t.Helper()
	h.await("opened stream", func(msg tea.Msg) bool {
		o, ok := msg.(logsOpenedMsg)
		return ok && o.gen == o.ls.gen
	})
}

// feed pushes a batch into s and waits until the view has taken it.
func (h *harness) feed(s *fakeStream, entries []*logview.Entry, st logview.Status) {
	h.t.Helper()
	s.batches <- logview.Batch{Entries: entries, Status: st}
	h.await("batch", func(msg tea.Msg) bool {
		b, ok := msg.(logsBatchMsg)
		return ok && b.err == nil && b.gen == b.ls.gen
	})
}

// logs returns the Logs view (the view must be on the stack).
func (h *harness) logs() *logsView {
	h.t.Helper()
	for i := len(h.m.stack) - 1; i >= 0; i-- {
		if ls, ok := h.m.stack[i].(*logsView); ok {
			return ls
		}
	}
	h.t.Fatal("no Logs view on the stack")
	return nil
}

// selected returns the entry under the Logs view's cursor.
func (h *harness) selectedEntry() *logview.Entry {
	h.t.Helper()
	ls := h.logs()
	i := ls.selIndex()
	if i < 0 {
		h.t.Fatal("no entry selected")
	}
	return ls.buf.At(i)
}

// entries makes n entries for node starting at start, step apart, with
// text "<node> line <i>" and every sevEvery-th an ERROR (0: none).
func entries(node string, n int, start time.Time, step time.Duration, sevEvery int) []*logview.Entry {
	out := make([]*logview.Entry, n)
	for i := range n {
		sev := logview.Info
		if sevEvery > 0 && i%sevEvery == sevEvery-1 {
			sev = logview.Error
		}
		out[i] = &logview.Entry{
			InsertID:       fmt.Sprintf("%s-%d-%d", node, start.UnixNano(), i),
			Project:        "proj",
			LogName:        "projects/proj/logs/app",
			Time:           start.Add(time.Duration(i) * step),
			Received:       start.Add(time.Duration(i)*step + time.Second),
			Severity:       sev,
			Node:           node,
			ResourceType:   "gce_instance",
			ResourceLabels: map[string]string{"instance_id": "i-" + node},
			Labels:         map[string]string{"app": "web"},
			Text:           fmt.Sprintf("%s line %d", node, i),
			Payload:        fmt.Sprintf("{\n  \"message\": \"%s line %d\",\n  \"n\": %d\n}", node, i, i),
		}
	}
	return out
}

// screenLines returns the screen's lines.
func (h *harness) screenLines() []string {
	h.t.Helper()
	return strings.Split(h.screen(), "\n")
}

// incidentSnapshot is a snapshot of 40 nodes in which node-00007 went
// critical at t0-2m (and node-00003 went warning earlier, node-00007
// passing → warning before that).
func incidentSnapshot() *fleet.Snapshot {
	nodes := synthNodes(40, t0.Add(-time.Hour))
	ev := []fleet.Event{
		{Seq: 1, Time: t0.Add(-20 * time.Minute), Kind: fleet.HealthChanged, Datacenter: "dc1", Node: "node-00007",
			CheckName: "http", CheckID: "service:web", From: fleet.HealthPassing, To: fleet.HealthWarning},
		{Seq: 2, Time: t0.Add(-10 * time.Minute), Kind: fleet.HealthChanged, Datacenter: "dc1", Node: "node-00003",
			CheckName: "http", CheckID: "service:cache", From: fleet.HealthPassing, To: fleet.HealthWarning},
		{Seq: 3, Time: t0.Add(-2 * time.Minute), Kind: fleet.HealthChanged, Datacenter: "dc1", Node: "node-00007",
			CheckName: "http", CheckID: "service:web", From: fleet.HealthWarning, To: fleet.HealthCritical, Output: "connection refused"},
		{Seq: 4, Time: t0.Add(-time.Minute), Kind: fleet.HealthChanged, Datacenter: "dc1", Node: "node-00007",
			CheckName: "disk", CheckID: "disk", From: fleet.HealthPassing, To: fleet.HealthPassing},
		{Seq: 5, Time: t0.Add(-30 * time.Second), Kind: fleet.GroupSizeChanged, Group: "web-asg", Before: 10, After: 9},
	}
	return fleet.NewSnapshot(1, t0, nodes, connected(t0), ev)
}
