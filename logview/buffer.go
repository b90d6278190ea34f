package logview

import (
	"slices"
	"sort"
	"strings"
	"time"
)

// DefaultCap is the number of entries a Buffer keeps when no capacity is
// given: enough for a busy role over a 10-minute window, small enough that
// a view stays well under a few hundred MB.
const DefaultCap = 100_000

// AddResult says what one Buffer.Add did.
type AddResult struct {
	// Added is how many entries were stored (some may have been evicted
	// again in the same call if they were older than everything kept).
	Added int
	// Duplicates is how many were dropped as already held (or repeated in
	// the same call).
	Duplicates int
	// Evicted is how many entries the cap pushed out.
	Evicted int
}

// Bucket is one slot of Buffer.Histogram.
type Bucket struct {
	Total  int
	Errors int // entries with Severity >= Error
}

// item is one held entry and its search text.
type item struct {
	e *Entry
	// lower holds Text, Node and Payload lowered for case-insensitive
	// search. strings.ToLower returns its argument when there is nothing
	// to lower, so already-lowercase fields (most payloads' keys, node
	// names) cost no extra memory.
	text, node, payload string
	// unix is e.Time in nanoseconds: comparing int64s keeps the binary
	// searches and the merge out of time.Time's wall/monotonic logic.
	unix int64
}

// Buffer keeps a view's entries in timestamp order, de-duplicated and
// bounded: beyond its capacity the oldest entries are evicted. It is not
// safe for concurrent use; the console owns one per Logs view and feeds it
// from Stream batches on its own goroutine.
type Buffer struct {
	capacity int
	// items[off:] are the held entries, oldest first. Evicting advances
	// off; the dead prefix is reclaimed when it grows past half the slice,
	// so eviction stays amortised O(1) without a ring's index arithmetic.
	items      []item
	off        int
	dropped    int
	duplicates int
}

// NewBuffer returns an empty Buffer that keeps at most capacity entries
// (DefaultCap when capacity <= 0).
func NewBuffer(capacity int) *Buffer {
	if capacity <= 0 {
		capacity = DefaultCap
	}
	return &Buffer{capacity: capacity}
}

// Cap is the most entries the Buffer keeps.
func (b *Buffer) Cap() int { return b.capacity }

// Len is the number of entries held.
func (b *Buffer) Len() int { return len(b.items) - b.off }

// At returns the i-th held entry, 0 being the oldest. It panics when i is
// out of range, like a slice.
func (b *Buffer) At(i int) *Entry { return b.items[b.off+i].e }

// Dropped is the total number of entries evicted by the cap since the
// Buffer was made.
func (b *Buffer) Dropped() int { return b.dropped }

// Duplicates is the total number of entries Add dropped as already held.
func (b *Buffer) Duplicates() int { return b.duplicates }

func (b *Buffer) held() []item { return b.items[b.off:] }

// sameEntry is the de-duplication rule: Cloud Logging identifies an entry
// by its log name, insertId and timestamp. An entry without insertId (not
// produced by the service, but possible from a hostile or odd writer) is
// only a duplicate of one with the same text and payload, so that distinct
// id-less lines at the same instant are not collapsed.
func sameEntry(a, b *Entry) bool {
	if a == b {
		return true
	}
	if a.InsertID != b.InsertID || a.LogName != b.LogName || !a.Time.Equal(b.Time) {
		return false
	}
	if a.InsertID == "" {
		return a.Text == b.Text && a.Payload == b.Payload
	}
	return true
}

// firstAtOrAfter returns the index in items of the first item with
// unix >= t.
func firstAtOrAfter(items []item, t int64) int {
	return sort.Search(len(items), func(i int) bool { return items[i].unix >= t })
}

// holds reports whether an entry equal to e (same key) is held.
func holds(items []item, e *Entry, unix int64) bool {
	for i := firstAtOrAfter(items, unix); i < len(items) && items[i].unix == unix; i++ {
		if sameEntry(items[i].e, e) {
			return true
		}
	}
	return false
}

func newItem(e *Entry) item {
	return item{
		e:       e,
		text:    strings.ToLower(e.Text),
		node:    strings.ToLower(e.Node),
		payload: strings.ToLower(e.Payload),
		unix:    e.Time.UnixNano(),
	}
}

// Add merges entries into the Buffer in timestamp order. Entries already
// held (same LogName, InsertID and Time) and repeats within entries are
// dropped and counted; nil entries are ignored. When the Buffer exceeds its
// capacity the oldest entries are evicted. The Buffer keeps the pointers:
// callers must not modify an entry after adding it.
//
// The common case — a page or tail batch newer than everything held — is an
// append; older entries (a gap fill after a reconnect) are merged in one
// pass.
func (b *Buffer) Add(entries []*Entry) AddResult {
	var res AddResult
	if len(entries) == 0 {
		return res
	}
	fresh := make([]item, 0, len(entries))
	for _, e := range entries {
		if e != nil {
			fresh = append(fresh, newItem(e))
		}
	}
	// Stable, so that entries with equal timestamps keep their arrival
	// order (the service's order for same-instant lines).
	if !slices.IsSortedFunc(fresh, cmpItem) {
		slices.SortStableFunc(fresh, cmpItem)
	}

	held := b.held()
	var lastHeld int64
	if len(held) > 0 {
		lastHeld = held[len(held)-1].unix
	}
	// kept reuses fresh's array: it never grows past the item being read.
	kept := fresh[:0]
	for _, it := range fresh {
		dup := false
		// Repeats within this call: equal keys have equal times, so a
		// repeat sits among the last kept items with the same time.
		for j := len(kept) - 1; j >= 0 && kept[j].unix == it.unix; j-- {
			if sameEntry(kept[j].e, it.e) {
				dup = true
				break
			}
		}
		if !dup && len(held) > 0 && it.unix <= lastHeld {
			dup = holds(held, it.e, it.unix)
		}
		if dup {
			res.Duplicates++
			continue
		}
		kept = append(kept, it)
	}
	b.duplicates += res.Duplicates
	res.Added = len(kept)
	if len(kept) == 0 {
		return res
	}

	if len(held) == 0 || kept[0].unix >= lastHeld {
		b.items = append(b.items, kept...)
	} else {
		b.items = mergeItems(held, kept)
		b.off = 0
	}

	if over := b.Len() - b.capacity; over > 0 {
		// Clear the evicted slots so their entries can be collected.
		clear(b.items[b.off : b.off+over])
		b.off += over
		b.dropped += over
		res.Evicted = over
	}
	if b.off > 0 && b.off >= len(b.items)/2 {
		n := copy(b.items, b.items[b.off:])
		clear(b.items[n:])
		b.items = b.items[:n]
		b.off = 0
	}
	return res
}

func cmpItem(a, b item) int {
	switch {
	case a.unix < b.unix:
		return -1
	case a.unix > b.unix:
		return 1
	}
	return 0
}

// mergeItems merges two time-ordered runs into a new slice; on equal times
// the held entry comes first so a view's existing order does not shuffle.
func mergeItems(held, fresh []item) []item {
	out := make([]item, 0, len(held)+len(fresh))
	i, j := 0, 0
	for i < len(held) && j < len(fresh) {
		if fresh[j].unix < held[i].unix {
			out = append(out, fresh[j])
			j++
		} else {
			out = append(out, held[i])
			i++
		}
	}
	out = append(out, held[i:]...)
	return append(out, fresh[j:]...)
}

// IndexOf returns the index of e (the same pointer) or -1 when e is no
// longer held (evicted). A paused view keeps its place by remembering the
// entry at its top rather than an index that shifts as entries arrive.
func (b *Buffer) IndexOf(e *Entry) int {
	if e == nil {
		return -1
	}
	held := b.held()
	unix := e.Time.UnixNano()
	for i := firstAtOrAfter(held, unix); i < len(held) && held[i].unix == unix; i++ {
		if held[i].e == e {
			return i
		}
	}
	return -1
}

// Search returns the index of the first entry with Time >= t, or Len()
// when there is none: the target of "jump to time" and of the incident
// marker.
func (b *Buffer) Search(t time.Time) int {
	return firstAtOrAfter(b.held(), t.UnixNano())
}

// matches reports whether it contains the lowered needle in its text, node
// or payload.
func (it *item) matches(lowNeedle string) bool {
	return strings.Contains(it.text, lowNeedle) ||
		strings.Contains(it.node, lowNeedle) ||
		strings.Contains(it.payload, lowNeedle)
}

// Find returns the index of the first entry at or after from (forward) or
// at or before from (backward) whose Text, Node or Payload contains needle,
// ignoring case, and that keep accepts (nil keeps all); -1 when there is
// none. It does not wrap around: the caller decides whether to start again
// from the other end. An empty needle matches every kept entry, so
// Find("", i+1, true, isError) is "next error".
func (b *Buffer) Find(needle string, from int, forward bool, keep func(*Entry) bool) int {
	held := b.held()
	low := strings.ToLower(needle)
	if forward {
		for i := max(from, 0); i < len(held); i++ {
			if (keep == nil || keep(held[i].e)) && held[i].matches(low) {
				return i
			}
		}
		return -1
	}
	for i := min(from, len(held)-1); i >= 0; i-- {
		if (keep == nil || keep(held[i].e)) && held[i].matches(low) {
			return i
		}
	}
	return -1
}

// CountMatches counts the entries Find would stop at for needle and keep
// ("match 3 of 41").
func (b *Buffer) CountMatches(needle string, keep func(*Entry) bool) int {
	low := strings.ToLower(needle)
	n := 0
	held := b.held()
	for i := range held {
		if (keep == nil || keep(held[i].e)) && held[i].matches(low) {
			n++
		}
	}
	return n
}

// Histogram splits [from, to) into n equal buckets and counts the held
// entries in each, and among them those at Error or above. It returns nil
// when n <= 0 or the range is empty.
func (b *Buffer) Histogram(from, to time.Time, n int) []Bucket {
	if n <= 0 || !to.After(from) {
		return nil
	}
	out := make([]Bucket, n)
	lo, hi := from.UnixNano(), to.UnixNano()
	span := hi - lo
	held := b.held()
	for i := firstAtOrAfter(held, lo); i < len(held) && held[i].unix < hi; i++ {
		// Multiply in float to avoid int64 overflow for long ranges with
		// many buckets; the bucket index is clamped against rounding.
		k := int(float64(held[i].unix-lo) / float64(span) * float64(n))
		k = min(max(k, 0), n-1)
		out[k].Total++
		if held[i].e.Severity >= Error {
			out[k].Errors++
		}
	}
	return out
}
