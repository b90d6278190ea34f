package consul

import (
	"testing"
	"time"
)

func TestNextIndex(t *testing.T) {
	for _, tc := range []struct{ prev, got, want uint64 }{
		{0, 0, 1},    // never block on index 0 forever: use 1
		{0, 42, 42},  // first answer
		{42, 42, 42}, // timeout, no change
		{42, 50, 50}, // change
		{50, 7, 0},   // went backwards: start over non-blocking
		{50, 0, 0},   // reset to nothing
		{1, 1000, 1000},
	} {
		if got := NextIndex(tc.prev, tc.got); got != tc.want {
			t.Errorf("NextIndex(%d, %d) = %d, want %d", tc.prev, tc.got, got, tc.want)
		}
	}
}

// Every request has a deadline: the one given, else a blocking query's
// wait plus Consul's jitter plus the margin, else ReadTimeout.
func TestQueryDeadlines(t *testing.T) {
	for _, tc := range []struct {
		name string
		q    Query
		want time.Duration
	}{
		{"read", Query{}, ReadTimeout},
		{"first read of a blocking watch (index 0)", Query{WaitTime: 5 * time.Minute}, ReadTimeout},
		{"blocking", Query{WaitIndex: 7, WaitTime: 160 * time.Second}, 160*time.Second + 10*time.Second + BlockingMargin},
		{"blocking with Consul's default wait", Query{WaitIndex: 7}, 5*time.Minute + 5*time.Minute/16 + BlockingMargin},
		{"explicit", Query{WaitIndex: 7, WaitTime: time.Minute, Timeout: 2 * time.Second}, 2 * time.Second},
	} {
		if got := tc.q.deadline(); got != tc.want {
			t.Errorf("%s: deadline %v, want %v", tc.name, got, tc.want)
		}
	}
}
