package provision

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A run holds a bounded window of events: a consumer that falls behind it
// skips ahead, while the run's board has every event applied and the event
// log has every line for a consumer that must see them all.
func TestRunEventWindowIsBoundedAndTheLogComplete(t *testing.T) {
	dir := t.TempDir()
	evFile, err := os.Create(filepath.Join(dir, "events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	const window, total = 100, 5000
	r := &Run{Dir: dir, wake: make(chan struct{}), done: make(chan struct{}), state: NewRunState(nil),
		evFile: evFile, evBuf: bufio.NewWriterSize(evFile, 64<<10), evWindow: window}
	readDone := make(chan struct{})
	go func() { r.readEvents(pr); close(readDone) }()
	maxHeld := 0
	w := bufio.NewWriter(pw)
	for i := range total {
		b, _ := json.Marshal(RunEvent{Seq: int64(i + 1), Event: EventItemOK, Host: "h1", Time: time.Now()})
		w.Write(append(b, '\n'))
		if i%500 == 0 {
			w.Flush()
			r.mu.Lock()
			maxHeld = max(maxHeld, len(r.events))
			r.mu.Unlock()
		}
	}
	// A broken plugin's line: longer than runEventLineMax, no newline yet.
	w.WriteString(`{"event":"runner_on_ok","res":{"msg":"` + strings.Repeat("x", 3<<20))
	w.WriteString("\"}}\n")
	w.Flush()
	pw.Close()
	<-readDone
	close(r.done)
	evFile.Close()

	if maxHeld > 2*window || len(r.events) > 2*window {
		t.Errorf("held up to %d events (now %d), window %d", maxHeld, len(r.events), window)
	}
	if r.state.Applied != total || r.state.LastSeq != total {
		t.Errorf("board: %d events applied, last seq %d; want %d", r.state.Applied, r.state.LastSeq, total)
	}
	if r.badLines != 1 {
		t.Errorf("bad lines %d, want the cut one", r.badLines)
	}
	ctx := context.Background()
	batch, next, err := r.Events(ctx, 0)
	if err != nil || next != total || len(batch) == 0 || next-len(batch) == 0 || batch[len(batch)-1].Seq != total {
		t.Errorf("a consumer behind the window: %d events up to %d (%v), want a skip to the window", len(batch), next, err)
	}
	// The log has every line, in order, the cut one as a marker.
	var off int64
	lines, seq := 0, int64(0)
	for {
		data, n, err := r.EventLog(ctx, off)
		for line := range bytes.Lines(data) {
			lines++
			if len(line) > runEventLineMax {
				t.Fatalf("a line of %d bytes in the log", len(line))
			}
			if ev, err := ParseRunEvent(line); err == nil {
				if ev.Seq != seq+1 {
					t.Fatalf("event %d after %d", ev.Seq, seq)
				}
				seq = ev.Seq
			} else if !strings.Contains(string(line), "event line cut") {
				t.Errorf("unexpected line %.80q", line)
			}
		}
		off = n
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if lines != total+1 || seq != total {
		t.Errorf("event log: %d lines, last seq %d; want %d lines", lines, seq, total+1)
	}
}
