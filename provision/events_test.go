package provision

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"testing"
	"time"
)

// evSynthetic makes a run's worth of events: hosts × tasks, each host
// starting and finishing each task, with some changed, skipped and failed.
func evSynthetic(hosts, tasks int) []RunEvent {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var evs []RunEvent
	seq := int64(0)
	add := func(ev RunEvent) {
		seq++
		ev.Seq = seq
		ev.Time = t0.Add(time.Duration(seq) * time.Millisecond)
		evs = append(evs, ev)
	}
	add(RunEvent{Event: EventPlaybookStart, Playbook: "bench.yml"})
	add(RunEvent{Event: EventPlayStart, Play: "all"})
	failed := map[int]bool{}
	for ti := 0; ti < tasks; ti++ {
		uuid := fmt.Sprintf("task-%d", ti)
		name := fmt.Sprintf("task %d", ti)
		add(RunEvent{Event: EventTaskStart, Task: name, TaskUUID: uuid, Action: "command"})
		for h := 0; h < hosts; h++ {
			if failed[h] {
				continue
			}
			host := fmt.Sprintf("host-%05d", h)
			add(RunEvent{Event: EventRunnerStart, Host: host, Task: name, TaskUUID: uuid, Action: "command"})
			switch {
			case h%97 == 0 && ti == tasks/2:
				failed[h] = true
				add(RunEvent{Event: EventRunnerFailed, Host: host, Task: name, TaskUUID: uuid, Action: "command",
					Result: &EventResult{Msg: "non-zero return code", Stderr: "boom", RC: new(int)}})
			case h%5 == 0:
				add(RunEvent{Event: EventRunnerSkipped, Host: host, Task: name, TaskUUID: uuid})
			default:
				add(RunEvent{Event: EventRunnerOK, Host: host, Task: name, TaskUUID: uuid, Changed: h%3 == 0,
					Result: &EventResult{Stdout: "ok"}})
			}
		}
	}
	return evs
}

func TestRunStateReducer(t *testing.T) {
	evs := evSynthetic(200, 6)
	s := NewRunState([]string{"host-00000", "host-00001", "never-ran"})
	for _, ev := range evs {
		s.Apply(ev)
	}
	if got := s.Hosts["host-00000"].Status; got != HostFailed {
		t.Errorf("host 0 = %s, want failed", got)
	}
	if got := s.Hosts["host-00003"].Status; got != HostChanged {
		t.Errorf("host 3 = %s, want changed", got)
	}
	if got := s.Hosts["host-00001"].Status; got != HostOK {
		t.Errorf("host 1 = %s, want ok", got)
	}
	if got := s.Hosts["host-00005"].Status; got != HostSkipped {
		t.Errorf("host 5 = %s, want skipped", got)
	}
	if s.HostOrder[2] != "never-ran" || s.Hosts["never-ran"].Status != HostPending {
		t.Errorf("seeded host: %v %+v", s.HostOrder[:3], s.Hosts["never-ran"])
	}
	if len(s.Tasks) != 6 || s.Tasks[3].Counts.Failures != 3 {
		t.Errorf("tasks %d, task 3 counts %+v", len(s.Tasks), s.Tasks[3].Counts)
	}
	// Running, then interrupted when the run ends mid-task.
	s.Apply(RunEvent{Seq: 1 << 40, Event: EventRunnerStart, Host: "host-00001", Task: "late", TaskUUID: "late"})
	if s.Hosts["host-00001"].Status != HostRunning || s.Hosts["host-00001"].Task != "late" {
		t.Errorf("running host = %+v", s.Hosts["host-00001"])
	}
	// A replayed (duplicate) event changes nothing.
	before := *s.Hosts["host-00003"]
	s.Apply(evs[len(evs)-1])
	if *s.Hosts["host-00003"] != before {
		t.Error("duplicate event was applied")
	}
	s.Apply(RunEvent{Seq: 1<<40 + 1, Event: EventRunEnd, End: &RunEnd{ExitCode: 99, Outcome: OutcomeCanceled, Canceled: true}})
	if s.Hosts["host-00001"].Status != HostInterrupted {
		t.Errorf("in-flight host after end = %s", s.Hosts["host-00001"].Status)
	}
	if s.Hosts["never-ran"].Status != HostNotRun {
		t.Errorf("a host no task reached reads %s once the run has ended, want not run", s.Hosts["never-ran"].Status)
	}
	got := s.HostsWith(HostFailed, HostUnreachable)
	if len(got) != 3 || !sort.StringsAreSorted(got) {
		t.Errorf("failed hosts = %v", got)
	}
}

func TestRunStateRecapIsAuthoritative(t *testing.T) {
	s := NewRunState([]string{"a", "b"})
	s.Apply(RunEvent{Seq: 1, Event: EventRunnerStart, Host: "a", Task: "t", TaskUUID: "u"})
	s.Apply(RunEvent{Seq: 2, Event: EventRunnerFailed, Host: "a", Task: "t", TaskUUID: "u", Result: &EventResult{Msg: "x"}})
	if s.Hosts["a"].Status != HostFailed {
		t.Fatalf("a = %s", s.Hosts["a"].Status)
	}
	// The block's rescue handled it: the recap says rescued, not failed.
	s.Apply(RunEvent{Seq: 3, Event: EventStats, Stats: map[string]HostStats{"a": {OK: 1, Rescued: 1}}})
	// b was previewed but is not in the recap: no task reached it.
	if s.Hosts["a"].Status != HostOK || s.Hosts["b"].Status != HostNotRun {
		t.Errorf("after recap a = %s, b = %s", s.Hosts["a"].Status, s.Hosts["b"].Status)
	}
	if s.Hosts["a"].LastFailure == nil || s.Hosts["a"].LastFailure.Result.Msg != "x" {
		t.Error("the rescued failure's detail was lost")
	}
}

// The board counts results as Ansible's recap counts them, while the run
// goes on: an ignored failure is ok and ignored (and changed if it
// changed), a rescued failure is rescued, an ignored unreachable is ok and
// ignored; a host reads changed only after a result that changed.
func TestRunStateCountsAsTheRecap(t *testing.T) {
	s := NewRunState([]string{"ign", "resc", "unr", "fail", "plain"})
	seq := int64(0)
	apply := func(host string, kind EventKind, mod func(*RunEvent)) {
		seq++
		s.Apply(RunEvent{Seq: seq, Event: EventRunnerStart, Host: host, Task: "t", TaskUUID: fmt.Sprint("u", seq)})
		ev := RunEvent{Seq: seq + 1, Event: kind, Host: host, Task: "t", TaskUUID: fmt.Sprint("u", seq)}
		if mod != nil {
			mod(&ev)
		}
		seq++
		s.Apply(ev)
	}
	apply("ign", EventRunnerFailed, func(e *RunEvent) { e.IgnoreErrors = true })
	apply("resc", EventRunnerFailed, func(e *RunEvent) { e.Rescued, e.Changed = true, true })
	apply("unr", EventRunnerUnreach, func(e *RunEvent) { e.IgnoreErrors = true })
	apply("fail", EventRunnerFailed, func(e *RunEvent) { e.Changed = true })
	apply("plain", EventRunnerOK, nil)
	want := map[string]struct {
		c  HostStats
		st HostStatus
	}{
		"ign":   {HostStats{OK: 1, Ignored: 1}, HostOK},
		"resc":  {HostStats{Rescued: 1}, HostOK},
		"unr":   {HostStats{OK: 1, Ignored: 1}, HostOK},
		"fail":  {HostStats{Failures: 1}, HostFailed},
		"plain": {HostStats{OK: 1}, HostOK},
	}
	for h, w := range want {
		if got := s.Hosts[h]; got.Counts != w.c || got.Status != w.st {
			t.Errorf("%s: %+v %s, want %+v %s", h, got.Counts, got.Status, w.c, w.st)
		}
	}
	// Only a change makes a host read changed: an ignored failure that
	// changed something.
	apply("ign", EventRunnerFailed, func(e *RunEvent) { e.IgnoreErrors, e.Changed = true, true })
	if got := s.Hosts["ign"]; got.Status != HostChanged || got.Counts != (HostStats{OK: 2, Changed: 1, Ignored: 2}) {
		t.Errorf("ign after an ignored change: %+v %s", got.Counts, got.Status)
	}
	for _, h := range []string{"resc", "unr", "plain"} {
		if s.Hosts[h].Status == HostChanged {
			t.Errorf("%s reads changed without a changed result", h)
		}
	}
}

func TestParseRunEventRejectsGarbage(t *testing.T) {
	for _, line := range []string{"", "{}", "not json", `{"seq":1}`} {
		if _, err := ParseRunEvent([]byte(line)); err == nil {
			t.Errorf("%q parsed", line)
		}
	}
	ev, err := ParseRunEvent([]byte(`{"event":"runner_on_failed","seq":7,"time":"2026-11-26T01:43:02.571718+00:00","host":"h","ignore_errors":true,"res":{"msg":"m","rc":2}}`))
	if err != nil || ev.Seq != 7 || !ev.IgnoreErrors || *ev.Result.RC != 2 || ev.Time.IsZero() {
		t.Errorf("ev %+v err %v", ev, err)
	}
}

// BenchmarkRunStateApply measures the reducer alone: events per second a
// board absorbs.
func BenchmarkRunStateApply(b *testing.B) {
	evs := evSynthetic(1000, 10) // ~20k events
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for b.Loop() {
		s := NewRunState(nil)
		for _, ev := range evs {
			s.Apply(ev)
		}
		n += len(evs)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkRunEventPipeline measures the whole live path short of Ansible:
// JSON lines written into a pipe, decoded and recorded by Run.readEvents,
// batched, and taken by a consumer that applies each batch to its own
// board and then "renders" for renderDelay (a frame's worth of work). It
// reports events/s and the batch latency (line written → consumer has it).
func BenchmarkRunEventPipeline(b *testing.B) {
	for _, render := range []time.Duration{0, 2 * time.Millisecond, 16 * time.Millisecond} {
		b.Run("render="+render.String(), func(b *testing.B) {
			evs := evSynthetic(1000, 10)
			lines := make([][]byte, len(evs))
			for i, ev := range evs {
				l, _ := json.Marshal(ev)
				lines[i] = append(l, '\n')
			}
			var total int
			var lat, maxLat time.Duration
			var batches int
			for b.Loop() {
				pr, pw, err := os.Pipe()
				if err != nil {
					b.Fatal(err)
				}
				r := &Run{wake: make(chan struct{}), done: make(chan struct{}), state: NewRunState(nil),
					evBuf: bufio.NewWriter(io.Discard), evWindow: DefaultEventWindow}
				readDone := make(chan struct{})
				go func() { r.readEvents(pr); close(readDone) }()
				sent := make([]time.Time, len(lines))
				go func() {
					w := bufio.NewWriterSize(pw, 4096)
					for i, l := range lines {
						sent[i] = time.Now()
						w.Write(l)
						if i%64 == 63 {
							w.Flush()
						}
					}
					w.Flush()
					pw.Close()
				}()
				board := NewRunState(nil)
				from := 0
				ctx := context.Background()
				for from < len(lines) {
					batch, next, err := r.Events(ctx, from)
					if err != nil {
						b.Fatal(err)
					}
					now := time.Now()
					// Latency of the oldest event in the batch.
					if d := now.Sub(sent[from]); d > 0 {
						lat += d
						if d > maxLat {
							maxLat = d
						}
					}
					batches++
					for _, ev := range batch {
						board.Apply(ev)
					}
					from = next
					if render > 0 {
						time.Sleep(render)
					}
				}
				<-readDone
				pr.Close()
				close(r.done)
				total += len(lines)
			}
			b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64(total)/float64(batches), "events/batch")
			b.ReportMetric(float64(lat.Microseconds())/float64(batches), "µs-batch-latency")
			b.ReportMetric(float64(maxLat.Microseconds()), "µs-max-latency")
		})
	}
}
