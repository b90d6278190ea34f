package backoff

import (
	"testing"
	"time"
)

func TestBackoffGrowsWithJitterAndCaps(t *testing.T) {
	b := New(100*time.Millisecond, 2*time.Second)
	prevCeil := time.Duration(0)
	for i := range 10 {
		d := b.Next()
		ceil := min(100*time.Millisecond<<i, 2*time.Second)
		if d < ceil/2 || d > ceil {
			t.Fatalf("step %d: delay %v outside [%v, %v]", i, d, ceil/2, ceil)
		}
		if ceil < prevCeil {
			t.Fatalf("step %d: ceiling shrank", i)
		}
		prevCeil = ceil
	}
	b.Reset()
	if d := b.Next(); d > 100*time.Millisecond {
		t.Errorf("after reset the delay is %v, want ≤ 100ms", d)
	}
}

// The jitter is real: delays of one step are not all the same, and they
// cover both halves of the random half.
func TestBackoffJitterSpreads(t *testing.T) {
	seen := map[time.Duration]bool{}
	low, high := false, false
	for range 200 {
		b := New(time.Second, time.Second)
		d := b.Next()
		if d < 500*time.Millisecond || d > time.Second {
			t.Fatalf("delay %v outside [500ms, 1s]", d)
		}
		seen[d] = true
		low = low || d < 750*time.Millisecond
		high = high || d >= 750*time.Millisecond
	}
	if len(seen) < 100 || !low || !high {
		t.Errorf("200 delays: %d distinct, some in the lower quarter %v, in the upper %v", len(seen), low, high)
	}
}

// Edge cases that used to differ between the watcher's and the log
// view's copies: a long run of failures never overflows into a negative
// or zero delay, and a zero minimum (or one above the maximum) means the
// maximum.
func TestBackoffEdges(t *testing.T) {
	b := New(time.Hour, 24*time.Hour)
	for i := range 100 {
		if d := b.Next(); d < 30*time.Minute || d > 24*time.Hour {
			t.Fatalf("step %d: delay %v outside [30m, 24h]", i, d)
		}
	}
	for _, tc := range []struct{ min, max time.Duration }{{0, time.Second}, {2 * time.Second, time.Second}} {
		b := New(tc.min, tc.max)
		for range 5 {
			if d := b.Next(); d < tc.max/2 || d > tc.max {
				t.Errorf("New(%v, %v): delay %v outside [%v, %v]", tc.min, tc.max, d, tc.max/2, tc.max)
			}
		}
	}
}
