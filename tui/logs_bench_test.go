package tui

import (
	"context"
	"fmt"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/fleetdeck/fleetdeck/fleet"
	"github.com/fleetdeck/fleetdeck/logview"
)

// benchLogs is a colour console at 200x50 with the Logs view of one node
// open on a fake stream; batches are delivered with Update directly, as
// the runtime would deliver Next's message.
type benchLogs struct {
	m    *Model
	ls   *logview.Buffer
	ls0  *logsView
	next time.Time // time of the next generated entry
	seq  int
}

// benchEntries makes n realistic entries from at, 6 ms apart (100,000
// span ten minutes): access-log style text, a JSON payload, one in 50 an
// error.
func (bl *benchLogs) entries(n int) []*logview.Entry {
	out := make([]*logview.Entry, n)
	for i := range n {
		bl.seq++
		sev := logview.Info
		text := fmt.Sprintf("10.0.%d.%d - - \"GET /api/v1/items/%d HTTP/1.1\" 200 %d \"-\" \"curl/8.5.0\" rt=0.%03d",
			bl.seq%250, bl.seq%200, bl.seq, 512+bl.seq%4096, bl.seq%1000)
		if bl.seq%50 == 0 {
			sev = logview.Error
			text = fmt.Sprintf("upstream timed out (110: Connection timed out) while reading response header, request %d", bl.seq)
		}
		out[i] = &logview.Entry{
			InsertID:       fmt.Sprintf("bench-%09d", bl.seq),
			Project:        "proj",
			LogName:        "projects/proj/logs/nginx",
			Time:           bl.next,
			Received:       bl.next.Add(time.Second),
			Severity:       sev,
			Node:           "node-00007",
			ResourceType:   "gce_instance",
			ResourceLabels: map[string]string{"instance_id": "i-00000007", "zone": "zone-b"},
			Text:           text,
			Payload:        fmt.Sprintf("{\n  \"message\": %q,\n  \"latency\": \"0.%03ds\",\n  \"status\": 200\n}", text, bl.seq%1000),
		}
		bl.next = bl.next.Add(6 * time.Millisecond)
	}
	return out
}

// newBenchLogs opens the view and loads n entries in batches of 1,000.
func newBenchLogs(b *testing.B, n, capacity int) *benchLogs {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	snap := fleet.NewSnapshot(1, t0, synthNodes(100, t0.Add(-time.Hour)), connected(t0), nil)
	m := New(ctx, Options{Feed: fleet.NewPublisher(snap), Now: func() time.Time { return t0 }, Logs: &fakeLogs{}, LogsCap: capacity})
	m.Update(tea.WindowSizeMsg{Width: 200, Height: 50})
	_, cmd := m.Update(keyMsg("l"))
	m.Update(cmd())
	bl := &benchLogs{m: m, ls0: m.top().(*logsView), next: t0.Add(-5 * time.Minute)}
	bl.ls = bl.ls0.buf
	for n > 0 {
		k := min(n, 1000)
		bl.batch(k, logview.Live)
		n -= k
	}
	_ = m.View()
	return bl
}

// batch delivers k new entries as one Next result.
func (bl *benchLogs) batch(k int, ph logview.Phase) {
	bl.deliver(bl.entries(k), ph)
}

func (bl *benchLogs) deliver(es []*logview.Entry, ph logview.Phase) {
	ls := bl.ls0
	bl.m.Update(logsBatchMsg{ls: ls, gen: ls.gen, batch: logview.Batch{Entries: es, Status: logview.Status{Phase: ph, Tailed: bl.seq}}})
}

// BenchmarkLogsView100k is one frame of the Logs view following the tail
// of 100,000 entries: goal < 2 ms.
func BenchmarkLogsView100k(b *testing.B) {
	bl := newBenchLogs(b, 100_000, 0)
	b.ReportAllocs()
	for b.Loop() {
		_ = bl.m.View()
	}
}

// BenchmarkLogsView100kWrapSearch is a frame paused mid-buffer with wrap
// on and a search highlighted.
func BenchmarkLogsView100kWrapSearch(b *testing.B) {
	bl := newBenchLogs(b, 100_000, 0)
	bl.m.Update(keyMsg("w"))
	bl.m.Update(keyMsg("@"))
	for _, r := range "-2m" {
		bl.m.Update(keyMsg(string(r)))
	}
	bl.m.Update(keyMsg("enter"))
	bl.ls0.setLogsSearch("timed out")
	bl.ls0.refresh()
	_ = bl.m.View()
	b.ReportAllocs()
	for b.Loop() {
		_ = bl.m.View()
	}
}

// BenchmarkLogsCursorMove100k is a key press moving the cursor over
// 100,000 entries plus the frame it causes.
func BenchmarkLogsCursorMove100k(b *testing.B) {
	bl := newBenchLogs(b, 100_000, 0)
	down, up := keyMsg("j"), keyMsg("k")
	bl.m.Update(keyMsg("g"))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		k := down
		if i%2000 >= 1000 {
			k = up
		}
		i++
		bl.m.Update(k)
		_ = bl.m.View()
	}
}

// BenchmarkLogsBatch500At100k is one tail batch of 500 entries (5,000/s
// at 10 batches a second) taken into a full 100,000-entry view (each
// batch evicts 500) plus the frame it causes, following.
func BenchmarkLogsBatch500At100k(b *testing.B) {
	benchBatch(b, "")
}

// BenchmarkLogsBatch500At100kSearch is the same with a search active:
// its match count is kept up to date per batch.
func BenchmarkLogsBatch500At100kSearch(b *testing.B) {
	benchBatch(b, "timed out")
}

func benchBatch(b *testing.B, search string) {
	bl := newBenchLogs(b, 100_000, 100_000)
	if search != "" {
		bl.ls0.setLogsSearch(search)
		bl.m.Update(keyMsg("G"))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		es := bl.entries(500)
		b.StartTimer()
		bl.deliver(es, logview.Live)
		_ = bl.m.View()
	}
	b.StopTimer()
	if bl.ls.Dropped() == 0 {
		b.Fatal("the cap never evicted")
	}
	if search != "" && bl.ls0.matches != bl.ls.CountMatches(search, nil) {
		b.Fatalf("match count %d, full count %d", bl.ls0.matches, bl.ls.CountMatches(search, nil))
	}
}

// BenchmarkLogsKeyWhileTailing is a key press (cursor move, paused) plus
// its frame, each right after a 500-entry batch arrived into a full
// 100,000-entry view: what a key costs while 5,000 entries/s stream in.
func BenchmarkLogsKeyWhileTailing(b *testing.B) {
	bl := newBenchLogs(b, 100_000, 100_000)
	bl.m.Update(keyMsg("@"))
	for _, r := range "-1m" {
		bl.m.Update(keyMsg(string(r)))
	}
	bl.m.Update(keyMsg("enter"))
	down, up := keyMsg("j"), keyMsg("k")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		bl.batch(500, logview.Live)
		_ = bl.m.View()
		b.StartTimer()
		k := down
		if i%2 == 1 {
			k = up
		}
		bl.m.Update(k)
		_ = bl.m.View()
	}
}

// BenchmarkLogsTickHistogram100k is the once-a-second histogram refresh
// of a full view (a tick plus the frame).
func BenchmarkLogsTickHistogram100k(b *testing.B) {
	bl := newBenchLogs(b, 100_000, 0)
	b.ReportAllocs()
	for b.Loop() {
		bl.m.Update(tickMsg(t0))
		_ = bl.m.View()
	}
}

// BenchmarkLogsSearch100k applies a search across 100,000 entries (count
// the matches, move to the first) and renders: goal < 50 ms.
func BenchmarkLogsSearch100k(b *testing.B) {
	bl := newBenchLogs(b, 100_000, 0)
	needles := []string{"timed out", "items/4242", "rt=0.999"}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		bl.ls0.setLogsSearch(needles[i%len(needles)])
		i++
		bl.ls0.refresh()
		_ = bl.m.View()
	}
	if bl.ls0.matches == 0 {
		b.Fatal("no match")
	}
}
