package tui

import (
	"context"
	"fmt"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/fleetdeck/fleetdeck/fleet"
	"github.com/fleetdeck/fleetdeck/provision"
)

// benchRunEvents returns n events over hosts: per host a task start and
// a result in turn over a list of tasks, one host in 50 failing, the
// last events leaving tasks in flight.
func benchRunEvents(hosts []string, n int) []provision.RunEvent {
	evs := make([]provision.RunEvent, 0, n)
	seq := int64(0)
	add := func(ev provision.RunEvent) {
		seq++
		ev.Seq, ev.Time = seq, t0.Add(time.Duration(seq)*time.Millisecond)
		evs = append(evs, ev)
	}
	add(provision.RunEvent{Event: provision.EventPlaybookStart, Playbook: "site.yml"})
	add(provision.RunEvent{Event: provision.EventPlayStart, Play: "all"})
	for t := 0; len(evs) < n; t++ {
		task, uuid := fmt.Sprintf("task number %d", t), fmt.Sprintf("uuid-%d", t)
		add(provision.RunEvent{Event: provision.EventTaskStart, Task: task, TaskUUID: uuid, Play: "all"})
		for i, h := range hosts {
			if len(evs) >= n {
				break
			}
			add(provision.RunEvent{Event: provision.EventRunnerStart, Host: h, Task: task, TaskUUID: uuid})
			if len(evs) >= n {
				break
			}
			ev := provision.RunEvent{Event: provision.EventRunnerOK, Host: h, Task: task, TaskUUID: uuid, Changed: i%7 == 0}
			if i%50 == 3 {
				ev.Event = provision.EventRunnerFailed
				ev.Result = &provision.EventResult{Msg: "failed", Stderr: "boom"}
			}
			add(ev)
		}
	}
	return evs
}

// benchRunModel returns a colour model at 200x50 showing run "bench".
func benchRunModel(b *testing.B) (*Model, *runView) {
	b.Helper()
	snap := fleet.NewSnapshot(1, t0, synthNodes(100, t0.Add(-time.Hour)), connected(t0), nil)
	m := New(context.Background(), Options{Feed: fleet.NewPublisher(snap), Now: func() time.Time { return t0 }, Provisioner: newFakeProv()})
	m.Update(tea.WindowSizeMsg{Width: 200, Height: 50})
	v := newRunView(m.shared, "bench")
	m.push(v)
	return m, v
}

func benchOutput(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("ok: [node-%05d] => task number %d", i%2000, i/2000)
	}
	return out
}

// BenchmarkRunView10kEvents is one frame of the run view showing a board
// of 2,000 hosts after 10,000 events (caches warm, as while watching).
func BenchmarkRunView10kEvents(b *testing.B) {
	hosts := hostNames(2000)
	st := runState(hosts, benchRunEvents(hosts, 10000))
	m, rs := benchRunModel(b)
	m.Update(runMsg{id: rs.id, rv: &provision.RunView{Info: provision.RunInfo{ID: "bench", Status: provision.RunRunning, Started: t0}, State: st, Output: benchOutput(5000)}})
	_ = m.View()
	b.ReportAllocs()
	for b.Loop() {
		_ = m.View()
	}
}

// BenchmarkRunViewApply10kEvents applies a batch of 10,000 events to a
// 2,000-host board with provision.RunState.Apply (the manager's side),
// hands the board to the console as a fetch would, and renders one
// frame. events/s is what the console absorbs, reducer included.
func BenchmarkRunViewApply10kEvents(b *testing.B) {
	hosts := hostNames(2000)
	evs := benchRunEvents(hosts, 10000)
	out := benchOutput(5000)
	m, rs := benchRunModel(b)
	b.ReportAllocs()
	start := time.Now()
	for b.Loop() {
		st := provision.NewRunState(hosts)
		for _, ev := range evs {
			st.Apply(ev)
		}
		m.Update(runMsg{id: rs.id, rv: &provision.RunView{Info: provision.RunInfo{ID: "bench", Status: provision.RunRunning, Started: t0}, State: st, Output: out}})
		_ = m.View()
	}
	if b.N > 0 {
		per := time.Since(start) / time.Duration(b.N)
		b.ReportMetric(float64(len(evs))/per.Seconds(), "events/s")
	}
}

// BenchmarkRunViewKey is a cursor move on a 2,000-host board plus the
// frame it causes: what a key costs while a run streams.
func BenchmarkRunViewKey(b *testing.B) {
	hosts := hostNames(2000)
	st := runState(hosts, benchRunEvents(hosts, 10000))
	m, rs := benchRunModel(b)
	m.Update(runMsg{id: rs.id, rv: &provision.RunView{Info: provision.RunInfo{ID: "bench", Status: provision.RunRunning, Started: t0}, State: st}})
	_ = m.View()
	down, up := keyMsg("j"), keyMsg("k")
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		k := down
		if i%2000 >= 1000 {
			k = up
		}
		i++
		m.Update(k)
		_ = m.View()
	}
}
