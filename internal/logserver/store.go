package logserver

import (
	"sort"
	"strings"

	"cloud.google.com/go/logging/apiv2/loggingpb"
)

// key orders entries the way ListLogEntries returns them: by timestamp,
// then insert_id (as the API documents), then project so that the order is
// total. Two entries with equal keys are duplicates, as Cloud Logging
// treats entries of one project with the same timestamp and insert_id.
type key struct {
	t       ts
	id      string
	project string
}

func (a key) cmp(b key) int {
	if c := a.t.cmp(b.t); c != 0 {
		return c
	}
	if c := strings.Compare(a.id, b.id); c != 0 {
		return c
	}
	return strings.Compare(a.project, b.project)
}

type rec struct {
	key
	e *loggingpb.LogEntry
	// log is the log name, kept for DeleteLog and ListLogs.
	log string
	// size is the entry's encoded size, computed once: pages and tail
	// batches are bounded in bytes.
	size int
}

// store keeps entries sorted by key in one slice. Writes usually arrive in
// timestamp order and are appended; an out-of-order write is inserted with
// a copy. The oldest entries are dropped past max. head is the index of the
// first live entry: dropping from the front only advances it, and the
// slice is compacted once half of it is dead.
type store struct {
	recs    []*rec
	head    int
	max     int
	dropped int64
}

func (s *store) live() []*rec { return s.recs[s.head:] }

func (s *store) len() int { return len(s.recs) - s.head }

// insert adds r unless an entry with the same key exists; it reports
// whether r was added.
func (s *store) insert(r *rec) bool {
	live := s.live()
	n := len(live)
	if n == 0 || live[n-1].key.cmp(r.key) < 0 {
		s.recs = append(s.recs, r)
	} else {
		i := sort.Search(n, func(i int) bool { return live[i].key.cmp(r.key) >= 0 })
		if live[i].key.cmp(r.key) == 0 {
			return false
		}
		i += s.head
		s.recs = append(s.recs, nil)
		copy(s.recs[i+1:], s.recs[i:])
		s.recs[i] = r
	}
	for s.len() > s.max {
		s.recs[s.head] = nil // let the entry be collected
		s.head++
		s.dropped++
	}
	if s.head > 1024 && s.head > len(s.recs)/2 {
		n := copy(s.recs, s.recs[s.head:])
		clear(s.recs[n:])
		s.recs = s.recs[:n]
		s.head = 0
	}
	return true
}

// firstAtOrAfter returns the index in live() of the first entry whose
// timestamp is >= t (or > t when !inclusive).
func (s *store) firstAtOrAfter(t ts, inclusive bool) int {
	live := s.live()
	return sort.Search(len(live), func(i int) bool {
		c := live[i].t.cmp(t)
		return c > 0 || inclusive && c == 0
	})
}

// firstAfterKey returns the index of the first entry whose key is > k.
func (s *store) firstAfterKey(k key) int {
	live := s.live()
	return sort.Search(len(live), func(i int) bool { return live[i].key.cmp(k) > 0 })
}

// firstAtOrAfterKey returns the index of the first entry whose key is >= k.
func (s *store) firstAtOrAfterKey(k key) int {
	live := s.live()
	return sort.Search(len(live), func(i int) bool { return live[i].key.cmp(k) >= 0 })
}

// removeIf drops every entry for which drop returns true and returns how
// many were dropped.
func (s *store) removeIf(drop func(*rec) bool) int {
	live := s.live()
	out := s.recs[:0]
	n := 0
	for _, r := range live {
		if drop(r) {
			n++
			continue
		}
		out = append(out, r)
	}
	clear(s.recs[len(out):])
	s.recs = out
	s.head = 0
	return n
}
