package logview

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)

func ent(id string, sec int, text string) *Entry {
	return &Entry{
		InsertID: id,
		LogName:  "projects/p/logs/syslog",
		Time:     t0.Add(time.Duration(sec) * time.Second),
		Text:     text,
		Severity: Info,
	}
}

func ids(b *Buffer) string {
	var s []string
	for i := range b.Len() {
		s = append(s, b.At(i).InsertID)
	}
	return strings.Join(s, ",")
}

func TestBufferAppendAndMerge(t *testing.T) {
	b := NewBuffer(0)
	if b.Cap() != DefaultCap {
		t.Fatalf("cap = %d, want %d", b.Cap(), DefaultCap)
	}
	r := b.Add([]*Entry{ent("a", 1, ""), ent("c", 3, ""), ent("e", 5, "")})
	if r != (AddResult{Added: 3}) {
		t.Fatalf("first add = %+v", r)
	}
	// Out of order within the batch and older than held: merged.
	r = b.Add([]*Entry{ent("f", 6, ""), ent("b", 2, ""), ent("d", 4, ""), nil})
	if r != (AddResult{Added: 3}) {
		t.Fatalf("merge add = %+v", r)
	}
	if got := ids(b); got != "a,b,c,d,e,f" {
		t.Fatalf("order = %s", got)
	}
}

func TestBufferEqualTimesKeepArrivalOrder(t *testing.T) {
	b := NewBuffer(10)
	b.Add([]*Entry{ent("x1", 1, ""), ent("x2", 1, "")})
	b.Add([]*Entry{ent("y", 0, ""), ent("x3", 1, "")})
	if got := ids(b); got != "y,x1,x2,x3" {
		t.Fatalf("order = %s", got)
	}
}

func TestBufferDeduplicates(t *testing.T) {
	b := NewBuffer(10)
	b.Add([]*Entry{ent("a", 1, ""), ent("b", 2, ""), ent("c", 3, "")})
	// Same keys as new pointers (a gap fill overlapping the tail), one
	// repeated within the call, one new.
	r := b.Add([]*Entry{ent("b", 2, ""), ent("c", 3, ""), ent("d", 4, ""), ent("d", 4, "")})
	if r != (AddResult{Added: 1, Duplicates: 3}) {
		t.Fatalf("add = %+v", r)
	}
	if b.Duplicates() != 3 {
		t.Fatalf("Duplicates() = %d", b.Duplicates())
	}
	// Same insertId at another time or in another log is another entry.
	other := ent("a", 1, "")
	other.LogName = "projects/p/logs/other"
	r = b.Add([]*Entry{ent("a", 7, ""), other})
	if r != (AddResult{Added: 2}) {
		t.Fatalf("add = %+v", r)
	}
	// Entries without insertId are only duplicates if their content is the
	// same.
	r = b.Add([]*Entry{ent("", 8, "one"), ent("", 8, "two"), ent("", 8, "one")})
	if r != (AddResult{Added: 2, Duplicates: 1}) {
		t.Fatalf("id-less add = %+v", r)
	}
	if got := ids(b); got != "a,a,b,c,d,a,," {
		t.Fatalf("order = %q", got)
	}
}

func TestBufferEvictsOldest(t *testing.T) {
	b := NewBuffer(3)
	b.Add([]*Entry{ent("a", 1, ""), ent("b", 2, "")})
	r := b.Add([]*Entry{ent("c", 3, ""), ent("d", 4, ""), ent("e", 5, "")})
	if r != (AddResult{Added: 3, Evicted: 2}) {
		t.Fatalf("add = %+v", r)
	}
	if got := ids(b); got != "c,d,e" {
		t.Fatalf("held = %s", got)
	}
	// An entry older than everything kept is added and evicted at once.
	r = b.Add([]*Entry{ent("z", 0, "")})
	if r != (AddResult{Added: 1, Evicted: 1}) || ids(b) != "c,d,e" {
		t.Fatalf("old add = %+v, held %s", r, ids(b))
	}
	if b.Dropped() != 3 {
		t.Fatalf("Dropped = %d", b.Dropped())
	}
	// Many appends: the dead prefix is reclaimed and order holds.
	for i := 6; i < 1000; i++ {
		b.Add([]*Entry{ent(fmt.Sprint(i), i, "")})
	}
	if got := ids(b); got != "997,998,999" {
		t.Fatalf("held = %s", got)
	}
	if len(b.items) > 2*b.capacity+1 {
		t.Fatalf("backing slice grew to %d for cap %d", len(b.items), b.capacity)
	}
}

func TestBufferIndexOfAndSearch(t *testing.T) {
	b := NewBuffer(4)
	e := []*Entry{ent("a", 1, ""), ent("b", 2, ""), ent("b2", 2, ""), ent("c", 4, "")}
	b.Add(e)
	for i, x := range e {
		if got := b.IndexOf(x); got != i {
			t.Fatalf("IndexOf(%s) = %d, want %d", x.InsertID, got, i)
		}
	}
	if got := b.IndexOf(ent("b", 2, "")); got != -1 {
		t.Fatalf("IndexOf(equal copy) = %d, want -1 (pointer identity)", got)
	}
	b.Add([]*Entry{ent("d", 5, "")})
	if got := b.IndexOf(e[0]); got != -1 {
		t.Fatalf("IndexOf(evicted) = %d", got)
	}
	if got := b.IndexOf(e[3]); got != 2 {
		t.Fatalf("IndexOf(c) after evict = %d", got)
	}
	for _, c := range []struct {
		sec  int
		want int
	}{{0, 0}, {2, 0}, {3, 2}, {4, 2}, {5, 3}, {9, 4}} {
		if got := b.Search(t0.Add(time.Duration(c.sec) * time.Second)); got != c.want {
			t.Errorf("Search(+%ds) = %d, want %d", c.sec, got, c.want)
		}
	}
}

func TestBufferFind(t *testing.T) {
	b := NewBuffer(10)
	es := []*Entry{
		ent("0", 0, "GET /health 200"),
		ent("1", 1, "connection REFUSED"),
		ent("2", 2, "ok"),
		ent("3", 3, "Ünïcode ÄRGER"),
		ent("4", 4, "refused again"),
	}
	es[2].Node = "Web-17"
	es[2].Payload = `{"detail": "Refused by peer"}`
	es[4].Severity = Error
	b.Add(es)
	isErr := func(e *Entry) bool { return e.Severity >= Error }
	for _, c := range []struct {
		needle  string
		from    int
		forward bool
		keep    func(*Entry) bool
		want    int
	}{
		{"refused", 0, true, nil, 1},
		{"refused", 2, true, nil, 2}, // payload
		{"refused", 3, true, nil, 4},
		{"refused", 5, true, nil, -1},
		{"refused", 4, false, nil, 4},
		{"refused", 3, false, nil, 2},
		{"refused", 99, false, nil, 4},
		{"refused", -5, true, nil, 1},
		{"web-17", 0, true, nil, 2}, // node
		{"ärger", 0, true, nil, 3},
		{"refused", 0, true, isErr, 4},
		{"", 0, true, isErr, 4},
		{"nothing", 0, true, nil, -1},
	} {
		if got := b.Find(c.needle, c.from, c.forward, c.keep); got != c.want {
			t.Errorf("Find(%q, %d, %v) = %d, want %d", c.needle, c.from, c.forward, got, c.want)
		}
	}
	if got := b.CountMatches("REFUSED", nil); got != 3 {
		t.Errorf("CountMatches = %d, want 3", got)
	}
	if got := b.CountMatches("refused", isErr); got != 1 {
		t.Errorf("CountMatches(errors) = %d, want 1", got)
	}
}

func TestBufferHistogram(t *testing.T) {
	b := NewBuffer(100)
	var es []*Entry
	for s := range 10 {
		e := ent(fmt.Sprint(s), s, "")
		if s%3 == 0 {
			e.Severity = Critical
		}
		es = append(es, e)
	}
	b.Add(es)
	// [1s, 9s) in 4 buckets of 2s: {1,2} {3,4} {5,6} {7,8}; 0 and 9 outside.
	h := b.Histogram(t0.Add(time.Second), t0.Add(9*time.Second), 4)
	want := []Bucket{{2, 0}, {2, 1}, {2, 1}, {2, 0}}
	if fmt.Sprint(h) != fmt.Sprint(want) {
		t.Fatalf("histogram = %v, want %v", h, want)
	}
	if h := b.Histogram(t0, t0, 4); h != nil {
		t.Fatalf("empty range = %v", h)
	}
	if h := b.Histogram(t0, t0.Add(time.Hour), 0); h != nil {
		t.Fatalf("n=0 = %v", h)
	}
}

// TestBufferRandomAgainstModel adds random batches (overlapping, out of
// order, duplicated) and compares with a simple model: the newest cap
// distinct keys in time order.
func TestBufferRandomAgainstModel(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const capacity = 50
	b := NewBuffer(capacity)
	seen := map[string]bool{}
	for range 200 {
		var batch []*Entry
		for range r.IntN(20) {
			id := r.IntN(300)
			// The id fixes the time, as the service's key would.
			batch = append(batch, ent(fmt.Sprint(id), id/2, ""))
		}
		b.Add(batch)
		for _, e := range batch {
			seen[e.InsertID] = true
		}
	}
	// Model: all distinct ids, sorted by time; entries added after the
	// cap was reached may have been evicted even if older ones came later,
	// so compare only order and uniqueness plus the count.
	if b.Len() != min(len(seen), capacity) {
		t.Fatalf("Len = %d, want %d", b.Len(), min(len(seen), capacity))
	}
	got := map[string]bool{}
	for i := range b.Len() {
		e := b.At(i)
		if got[e.InsertID] {
			t.Fatalf("duplicate %s held", e.InsertID)
		}
		got[e.InsertID] = true
		if i > 0 && e.Time.Before(b.At(i-1).Time) {
			t.Fatalf("out of order at %d", i)
		}
	}
}

// synthEntries makes n realistic entries: access lines, JSON payloads and
// syslog lines, a few hundred bytes each, over n/100 seconds.
func synthEntries(n int) []*Entry {
	r := rand.New(rand.NewPCG(7, 7))
	out := make([]*Entry, n)
	for i := range out {
		node := fmt.Sprintf("web-%02d", i%40)
		var text, payload string
		switch i % 3 {
		case 0:
			text = fmt.Sprintf("GET /api/v1/orders/%d 200", r.IntN(1e6))
			payload = fmt.Sprintf("{\n  \"httpRequest\": {\n    \"requestMethod\": \"GET\",\n    \"requestUrl\": \"/api/v1/orders/%d\",\n    \"status\": 200,\n    \"latency\": \"0.%03ds\"\n  }\n}", r.IntN(1e6), r.IntN(1000))
		case 1:
			text = fmt.Sprintf("Order %d processed for Customer %d", r.IntN(1e6), r.IntN(1e4))
			payload = fmt.Sprintf("{\n  \"message\": %q,\n  \"component\": \"Checkout\",\n  \"traceId\": \"%016x\"\n}", text, r.Uint64())
		default:
			text = fmt.Sprintf("systemd[1]: Started Session %d of User deploy.", r.IntN(1e5))
			payload = fmt.Sprintf("%q", text)
		}
		out[i] = &Entry{
			InsertID:       fmt.Sprintf("%016x", r.Uint64()),
			Project:        "fleet-prod",
			LogName:        "projects/fleet-prod/logs/app",
			Time:           t0.Add(time.Duration(i) * 10 * time.Millisecond),
			Severity:       Severity(100 * (1 + r.IntN(5))),
			Node:           node,
			ResourceType:   "gce_instance",
			ResourceLabels: map[string]string{"instance_id": fmt.Sprint(1000 + i%40), "zone": "europe-west1-b"},
			Text:           text,
			Payload:        payload,
		}
	}
	return out
}

// BenchmarkBufferSearch100k: one full case-insensitive search (the worst
// case: a needle that matches nothing) across 100,000 entries. Goal < 50 ms.
func BenchmarkBufferSearch100k(b *testing.B) {
	buf := NewBuffer(100_000)
	buf.Add(synthEntries(100_000))
	b.ResetTimer()
	for b.Loop() {
		if buf.Find("No Such Thing", 0, true, nil) != -1 {
			b.Fatal("unexpected match")
		}
	}
}

// BenchmarkBufferCountMatches100k counts a common needle across 100,000
// entries with a severity filter ("match i of n").
func BenchmarkBufferCountMatches100k(b *testing.B) {
	buf := NewBuffer(100_000)
	buf.Add(synthEntries(100_000))
	keep := func(e *Entry) bool { return e.Severity >= Warning }
	b.ResetTimer()
	for b.Loop() {
		buf.CountMatches("customer", keep)
	}
}

// BenchmarkBufferAdd measures ingest in tail-sized batches of 100 into a
// full 100,000-entry Buffer (append and evict), reported per entry. Each
// batch is made of fresh copies stamped after the newest entry, as a tail
// delivers them; the copy is part of the measured cost.
func BenchmarkBufferAdd(b *testing.B) {
	es := synthEntries(100_000)
	buf := NewBuffer(100_000)
	buf.Add(es)
	next := es[len(es)-1].Time
	batch := make([]*Entry, 100)
	n := 0
	for b.Loop() {
		for k := range batch {
			c := *es[(n+k)%len(es)]
			next = next.Add(time.Millisecond)
			c.Time = next
			batch[k] = &c
		}
		buf.Add(batch)
		n += len(batch)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/entry")
}

// BenchmarkBufferMergeGapFill merges a 1,000-entry gap fill into the
// middle of a full 100,000-entry Buffer, half of it already held.
func BenchmarkBufferMergeGapFill(b *testing.B) {
	es := synthEntries(101_000)
	var held, fill []*Entry
	for i, e := range es {
		if i >= 50_000 && i < 52_000 && i%2 == 0 {
			fill = append(fill, e)
			continue
		}
		held = append(held, e)
		if i >= 50_000 && i < 52_000 {
			fill = append(fill, e)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		buf := NewBuffer(100_000)
		buf.Add(held)
		b.StartTimer()
		buf.Add(fill)
	}
}

// BenchmarkBufferMemory100k reports the heap a full 100,000-entry Buffer
// holds: entries themselves plus the Buffer's own index and lowered search
// copies.
func BenchmarkBufferMemory100k(b *testing.B) {
	for b.Loop() {
		b.StopTimer()
		runtime.GC()
		var before, mid, after runtime.MemStats
		runtime.ReadMemStats(&before)
		es := synthEntries(100_000)
		runtime.GC()
		runtime.ReadMemStats(&mid)
		buf := NewBuffer(100_000)
		b.StartTimer()
		buf.Add(es)
		b.StopTimer()
		runtime.GC()
		runtime.ReadMemStats(&after)
		entries := float64(mid.HeapAlloc - before.HeapAlloc)
		index := float64(after.HeapAlloc - mid.HeapAlloc)
		b.ReportMetric((entries+index)/float64(buf.Len()), "B/entry")
		b.ReportMetric(index/float64(buf.Len()), "buffer-B/entry")
		b.ReportMetric((entries+index)/(1<<20), "MB/100k")
		runtime.KeepAlive(buf)
		runtime.KeepAlive(es)
		b.StartTimer()
	}
}
