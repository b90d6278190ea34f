package provision

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

// A line longer than OutputLineMax is cut in the live tail, at a UTF-8
// boundary, with a marker counting the bytes left out — however the text
// is split into chunks; the line after it is whole.
func TestManagerCutsLongOutputLines(t *testing.T) {
	m := &Manager{cfg: ManagerConfig{OutputLines: 10}, changed: make(chan struct{})}
	r := &mgrRun{}
	long := "start " + strings.Repeat("é", 100<<10) // 200 KiB + 6
	m.noteOutput(r, long[:7])                       // ends inside an "é"
	for i := 7; i < len(long); i += 32 << 10 {
		m.noteOutput(r, long[i:min(i+32<<10, len(long))])
		if len(r.partial) > OutputLineMax {
			t.Fatalf("the partial line holds %d bytes", len(r.partial))
		}
	}
	m.noteOutput(r, "\nnext line\npart")
	if len(r.out) != 2 || r.out[1] != "next line" || r.partial != "part" {
		t.Fatalf("lines %d, second %q, partial %q", len(r.out), r.out[1], r.partial)
	}
	first := r.out[0]
	kept, marker, ok := strings.Cut(first, "… [line cut: ")
	if !ok || !utf8.ValidString(kept) || len(kept) > OutputLineMax || !strings.HasPrefix(kept, "start é") {
		t.Fatalf("cut line: %d bytes kept, valid %v, marker %v", len(kept), utf8.ValidString(kept), ok)
	}
	if want := fmt.Sprintf("%d bytes]", len(long)-len(kept)); marker != want {
		t.Errorf("marker %q, want %q", marker, want)
	}
	if got := cutLine(long); got != first {
		t.Errorf("cutLine differs from the live cut")
	}
}

// The live tail is bounded in bytes as well as in lines.
func TestManagerOutputTailIsBoundedInBytes(t *testing.T) {
	m := &Manager{cfg: ManagerConfig{OutputLines: 5000}, changed: make(chan struct{})}
	r := &mgrRun{}
	line := strings.Repeat("y", 60<<10) + "\n"
	for range 400 { // 24 MiB
		m.noteOutput(r, line)
	}
	size := 0
	for _, l := range r.out {
		size += len(l)
	}
	if size != r.outSize || size > mgrOutputTailBytes || len(r.out) == 0 || r.dropped+len(r.out) != 400 {
		t.Errorf("tail: %d lines, %d bytes (counted %d), %d dropped", len(r.out), size, r.outSize, r.dropped)
	}
}
