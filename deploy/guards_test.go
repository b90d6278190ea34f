package deploy

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fleetdeck/fleetdeck/fleet"
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func items(stage string, n int) []DueItem {
	var out []DueItem
	for i := range n {
		name := fmt.Sprintf("n%03d", i)
		out = append(out, DueItem{Node: "dc1/" + name, Name: name, Incarnation: "dc1/" + name + "/i", Stage: stage})
	}
	return out
}

func kinds(ds []Decision) map[Kind]int {
	m := map[Kind]int{}
	for _, d := range ds {
		m[d.Kind]++
	}
	return m
}

func launched(ds []Decision) []Decision {
	var out []Decision
	for _, d := range ds {
		if d.Kind == KindLaunched {
			out = append(out, d)
		}
	}
	return out
}

func find(t *testing.T, ds []Decision, k Kind) Decision {
	t.Helper()
	for _, d := range ds {
		if d.Kind == k {
			return d
		}
	}
	t.Fatalf("no %s decision in %+v", k, ds)
	return Decision{}
}

func all(run Running, o Outcome) map[string]Outcome {
	m := map[string]Outcome{}
	for _, it := range run.Items {
		m[it.Incarnation] = o
	}
	return m
}

func TestBackoff(t *testing.T) {
	g := DefaultGuards()
	for _, c := range []struct {
		n    int
		want time.Duration
	}{{1, 30 * time.Second}, {2, time.Minute}, {3, 2 * time.Minute}, {7, 30 * time.Minute}, {50, 30 * time.Minute}} {
		if got := g.Backoff(c.n); got != c.want {
			t.Errorf("Backoff(%d) = %s, want %s", c.n, got, c.want)
		}
	}
}

// TestQuietPeriod: a burst launches quiet_min after its last join; a steady
// trickle launches quiet_max after its first.
func TestQuietPeriod(t *testing.T) {
	cases := []struct {
		name     string
		joins    []time.Duration // when each of n000, n001, … becomes due
		launchAt time.Duration
		reason   string
	}{
		{"burst", []time.Duration{0, time.Second, 2 * time.Second}, 7 * time.Second, "quiet_min"},
		{"trickle", []time.Duration{0, 4 * time.Second, 8 * time.Second, 12 * time.Second, 16 * time.Second, 20 * time.Second, 24 * time.Second, 28 * time.Second}, 30 * time.Second, "quiet_max"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := NewScheduler(DefaultGuards(), State{})
			all := items("base", len(c.joins))
			for at := time.Duration(0); at <= 40*time.Second; at += time.Second {
				var due []DueItem
				for i, j := range c.joins {
					if j <= at {
						due = append(due, all[i])
					}
				}
				ds := s.Plan(t0.Add(at), due)
				if l := launched(ds); len(l) > 0 {
					if at != c.launchAt {
						t.Fatalf("launched at %s, want %s", at, c.launchAt)
					}
					if !strings.Contains(find(t, ds, KindBatched).Reason, c.reason) {
						t.Errorf("batched reason %q lacks %q", find(t, ds, KindBatched).Reason, c.reason)
					}
					return
				}
			}
			t.Fatal("never launched")
		})
	}
}

// TestBurstBatches: 200 nodes due at once run in ceil(200/batch_max) runs,
// never more than max_parallel_runs at a time.
func TestBurstBatches(t *testing.T) {
	for _, batchMax := range []int{50, 30, 200, 7} {
		t.Run(fmt.Sprint(batchMax), func(t *testing.T) {
			g := DefaultGuards()
			g.BatchMax = batchMax
			s := NewScheduler(g, State{})
			due := items("base", 200)
			applied := map[string]bool{}
			runs := 0
			now := t0
			for step := 0; step < 100 && len(applied) < 200; step++ {
				var left []DueItem
				for _, d := range due {
					if !applied[d.Key()] {
						left = append(left, d)
					}
				}
				ds := s.Plan(now, left)
				for _, l := range launched(ds) {
					runs++
					if len(l.Batch) > batchMax {
						t.Fatalf("batch of %d", len(l.Batch))
					}
				}
				if len(s.State.Running) > g.MaxParallelRuns {
					t.Fatalf("%d runs at once", len(s.State.Running))
				}
				// Finish one run per step, as runs end one by one.
				for id, r := range s.State.Running {
					recs, _ := s.Finished(now, id, all(r, Succeeded))
					for _, rec := range recs {
						applied[RecordKey(rec.Incarnation, rec.Stage)] = true
					}
					break
				}
				now = now.Add(time.Second)
			}
			if want := (200 + batchMax - 1) / batchMax; runs != want || len(applied) != 200 {
				t.Errorf("%d runs applied %d nodes, want %d runs for 200", runs, len(applied), want)
			}
		})
	}
}

// TestFailingStageHeld: a failing stage is retried after growing backoffs,
// then held until released; after release it is due again.
func TestFailingStageHeld(t *testing.T) {
	s := NewScheduler(DefaultGuards(), State{})
	due := items("web", 1)
	now := t0
	var waits []time.Duration
	for attempt := 1; attempt <= 3; attempt++ {
		var id string
		for i := 0; i < 4000 && id == ""; i++ {
			for _, l := range launched(s.Plan(now, due)) {
				id = l.RunID
			}
			if id == "" {
				now = now.Add(time.Second)
			}
		}
		if id == "" {
			t.Fatalf("attempt %d never launched", attempt)
		}
		_, ds := s.Finished(now, id, all(s.State.Running[id], Failed))
		f := find(t, ds, KindFailed)
		if attempt < 3 {
			waits = append(waits, f.Until.Sub(now))
			if k := kinds(ds); k[KindHeld] != 0 {
				t.Fatalf("held after attempt %d", attempt)
			}
			// Still in backoff just before Until: nothing queued.
			if ds := s.Plan(f.Until.Add(-time.Second), due); len(ds) != 0 {
				t.Fatalf("decisions during backoff: %+v", ds)
			}
			now = f.Until
			continue
		}
		h := find(t, ds, KindHeld)
		if !strings.Contains(h.Reason, "failed 3 times") || !h.Until.IsZero() {
			t.Errorf("held %+v", h)
		}
	}
	if waits[0] != 30*time.Second || waits[1] != time.Minute {
		t.Errorf("backoffs %v, want 30s 1m", waits)
	}
	// Held: nothing happens, however long.
	if ds := s.Plan(now.Add(24*time.Hour), due); len(ds) != 0 {
		t.Fatalf("decisions while held: %+v", ds)
	}
	if _, held := s.Held(due[0]); !held {
		t.Fatal("not held")
	}
	now = now.Add(25 * time.Hour)
	rel := s.Release(now, due[0].Incarnation, "web", "fixed the playbook")
	if k := kinds(rel); k[KindReleased] != 1 {
		t.Fatalf("release: %+v", rel)
	}
	if k := kinds(s.Plan(now, due)); k[KindDue] != 1 {
		t.Fatal("not due again after release")
	}
	if ds := s.Plan(now.Add(5*time.Second), due); len(launched(ds)) != 1 {
		t.Fatalf("not launched after release: %+v", ds)
	}
}

// toggleEvery returns n passes (a minute apart) where the web stage is
// due on every period-th pass only.
func toggleEvery(period, n int) []string {
	out := make([]string, n)
	for i := range out {
		if i%period == 0 {
			out[i] = "web"
		}
	}
	return out
}

// TestOscillation: a node whose stage keeps coming back into its due set
// (a playbook undoing its own trigger) is held after oscillation_max
// returns in an hour; one that goes through its chain once is not.
func TestOscillation(t *testing.T) {
	cases := []struct {
		name string
		sets []string // the node's due stages per pass, one pass a minute
		held bool
	}{
		{"chain once", []string{"base", "base", "roles", "web", "", "", ""}, false},
		{"toggling", []string{"web", "", "web", "", "web", "", "web", "", "web", "", "web"}, true},
		{"four returns allowed", []string{"web", "", "web", "", "web", "", "web", "", "web"}, false},
		{"slow toggling", toggleEvery(20, 200), false},
		{"fast toggling", toggleEvery(10, 80), true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := DefaultGuards()
			g.QuietMin, g.QuietMax = time.Hour, 2*time.Hour // nothing launches: only the due sets matter
			s := NewScheduler(g, State{})
			held := false
			for i, set := range c.sets {
				var due []DueItem
				for _, st := range strings.Fields(set) {
					due = append(due, items(st, 1)...)
				}
				for _, d := range s.Plan(t0.Add(time.Duration(i)*time.Minute), due) {
					if d.Kind == KindHeld {
						held = true
						if !strings.Contains(d.Reason, "oscillating") || d.Stage != "" {
							t.Errorf("held %+v", d)
						}
					}
				}
			}
			if held != c.held {
				t.Errorf("held %v, want %v", held, c.held)
			}
		})
	}
}

// TestBreaker: the breaker opens when the failed share of the last
// breaker_window runs reaches breaker_ratio, stops every launch with its
// until, and closes after the cool-down.
func TestBreaker(t *testing.T) {
	cases := []struct {
		name     string
		outcomes string // one run per character: f failed, s succeeded
		open     bool
	}{
		{"half failed", "sssssfffff", true},
		{"four of ten", "ssssssffff", false},
		{"window not full", "fffffffff", false},
		{"old failures slide out", "ffffsssssssssss", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := DefaultGuards()
			g.QuietMin, g.QuietMax = time.Second, time.Second
			s := NewScheduler(g, State{})
			now := t0
			opened := false
			for i, o := range c.outcomes {
				due := []DueItem{{Node: "dc1/x", Name: "x", Incarnation: fmt.Sprintf("dc1/x/%d", i), Stage: "base"}}
				s.Plan(now, due)
				now = now.Add(time.Second)
				l := launched(s.Plan(now, due))
				if len(l) != 1 {
					t.Fatalf("run %d not launched", i)
				}
				out := Succeeded
				if o == 'f' {
					out = Failed
				}
				_, ds := s.Finished(now, l[0].RunID, all(s.State.Running[l[0].RunID], out))
				if k := kinds(ds); k[KindBreakerOpened] > 0 {
					opened = true
					if i != len(c.outcomes)-1 {
						t.Fatalf("opened at run %d", i)
					}
					if d := find(t, ds, KindBreakerOpened); !d.Until.Equal(now.Add(10 * time.Minute)) {
						t.Errorf("until %s", d.Until)
					}
				}
			}
			if opened != c.open {
				t.Fatalf("opened %v, want %v", opened, c.open)
			}
			if !c.open {
				return
			}
			due := []DueItem{{Node: "dc1/y", Name: "y", Incarnation: "dc1/y/1", Stage: "base"}}
			s.Plan(now, due)
			ds := s.Plan(now.Add(2*time.Second), due)
			sk := find(t, ds, KindSkipped)
			if !strings.Contains(sk.Reason, "circuit breaker open") || !sk.Until.Equal(now.Add(10*time.Minute)) {
				t.Errorf("skipped %+v", sk)
			}
			if ds := s.Plan(now.Add(3*time.Second), due); len(ds) != 0 {
				t.Errorf("the same skip again: %+v", ds)
			}
			ds = s.Plan(now.Add(10*time.Minute), due)
			if k := kinds(ds); k[KindBreakerClosed] != 1 || k[KindLaunched] != 1 {
				t.Errorf("after cool-down: %+v", ds)
			}
		})
	}
}

// TestRunsPerHour: the fleet-wide cap holds launches until the oldest run
// of the hour is an hour old; Pause holds them until Resume.
func TestRunsPerHour(t *testing.T) {
	g := DefaultGuards()
	g.RunsPerHour, g.BatchMax, g.MaxParallelRuns = 2, 1, 10
	s := NewScheduler(g, State{})
	due := items("base", 3)
	s.Plan(t0, due)
	ds := s.Plan(t0.Add(5*time.Second), due)
	if len(launched(ds)) != 2 {
		t.Fatalf("launched %d, want 2", len(launched(ds)))
	}
	sk := find(t, ds, KindSkipped)
	if !strings.Contains(sk.Reason, "runs_per_hour (2)") || !sk.Until.Equal(t0.Add(5*time.Second+time.Hour)) {
		t.Errorf("skipped %+v", sk)
	}
	for id, r := range s.State.Running {
		s.Finished(t0.Add(10*time.Second), id, all(r, Succeeded))
	}
	s.Pause(t0.Add(time.Minute), "maintenance window")
	ds = s.Plan(t0.Add(2*time.Hour), due[2:])
	if sk := find(t, ds, KindSkipped); !strings.Contains(sk.Reason, "paused: maintenance window") {
		t.Errorf("skipped %+v", sk)
	}
	s.Resume(t0.Add(2*time.Hour), "done")
	if ds := s.Plan(t0.Add(2*time.Hour+time.Second), due[2:]); len(launched(ds)) != 1 {
		t.Errorf("after resume: %+v", ds)
	}
}

// TestChainPasses drives Due and the scheduler together over snapshots, as
// the server's passes do: a blank node goes base → roles → web, each stage
// launched once, and a replacement with the same name starts over.
func TestChainPasses(t *testing.T) {
	stages := chainStages()
	records := map[string]Record{}
	s := NewScheduler(DefaultGuards(), State{})
	now := t0
	var order []string
	pass := func(nodes []*fleet.Node) {
		for range 40 {
			due := Due(nodes, stages, records, func(*fleet.Node) uint64 { return 1 }, sum)
			for _, l := range launched(s.Plan(now, due)) {
				order = append(order, l.Batch[0].Name+"/"+l.Batch[0].Incarnation[len("dc1/n1/"):]+":"+l.Stage)
				recs, _ := s.Finished(now, l.RunID, all(s.State.Running[l.RunID], Succeeded))
				for _, r := range recs {
					records[RecordKey(r.Incarnation, r.Stage)] = r
				}
			}
			now = now.Add(time.Second)
		}
	}
	pass([]*fleet.Node{node("n1", "i-1")})
	pass([]*fleet.Node{node("n1", "i-1", "web")}) // the agent reloaded with its role
	pass([]*fleet.Node{node("n1", "i-1", "web")})
	pass([]*fleet.Node{node("n1", "i-2")})                                      // auto-healed: a new instance
	want := "n1//i-1:base n1//i-1:roles n1//i-1:web n1//i-2:base n1//i-2:roles" // no node ID: the instance id tells them apart
	if got := strings.Join(order, " "); got != want {
		t.Errorf("runs %q, want %q", got, want)
	}
}

// TestStateContinues: the state survives a JSON round trip mid-schedule (a
// new leader reads it from KV) and the new scheduler goes on where the old
// one stopped: the running run finishes, the rest launch, nothing twice.
func TestStateContinues(t *testing.T) {
	g := DefaultGuards()
	g.BatchMax, g.MaxParallelRuns = 10, 1
	s := NewScheduler(g, State{})
	due := items("base", 25)
	s.Plan(t0, due)
	ds := s.Plan(t0.Add(5*time.Second), due)
	if len(launched(ds)) != 1 {
		t.Fatalf("launched %d", len(launched(ds)))
	}
	id := launched(ds)[0].RunID
	b, err := json.Marshal(s.State)
	if err != nil {
		t.Fatal(err)
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	s2 := NewScheduler(g, st)
	seen := map[string]int{}
	for _, it := range launched(ds)[0].Batch {
		seen[it.Key()]++
	}
	recs, _ := s2.Finished(t0.Add(6*time.Second), id, all(s2.State.Running[id], Succeeded))
	if len(recs) != 10 {
		t.Fatalf("records %d", len(recs))
	}
	done := map[string]bool{}
	for _, r := range recs {
		done[RecordKey(r.Incarnation, r.Stage)] = true
	}
	now := t0.Add(7 * time.Second)
	for range 10 {
		var left []DueItem
		for _, d := range due {
			if !done[d.Key()] {
				left = append(left, d)
			}
		}
		for _, l := range launched(s2.Plan(now, left)) {
			for _, it := range l.Batch {
				seen[it.Key()]++
			}
			recs, _ := s2.Finished(now, l.RunID, all(s2.State.Running[l.RunID], Succeeded))
			for _, r := range recs {
				done[RecordKey(r.Incarnation, r.Stage)] = true
			}
		}
		now = now.Add(time.Second)
	}
	if len(done) != 25 || len(seen) != 25 {
		t.Fatalf("applied %d, launched %d distinct of 25", len(done), len(seen))
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("%s launched %d times", k, n)
		}
	}
}

// TestFinishedOutcomes: a node missing from a run's outcomes failed (the
// run did not show it applied); a cancelled run is no attempt and does not
// count for the breaker; an unknown run changes nothing.
func TestFinishedOutcomes(t *testing.T) {
	g := DefaultGuards()
	s := NewScheduler(g, State{})
	due := items("base", 3)
	s.Plan(t0, due)
	l := launched(s.Plan(t0.Add(5*time.Second), due))[0]
	recs, ds := s.Finished(t0.Add(6*time.Second), l.RunID, map[string]Outcome{due[0].Incarnation: Succeeded, due[1].Incarnation: Cancelled})
	if len(recs) != 2 || recs[0].Outcome != Succeeded || recs[1].Outcome != Failed || recs[1].Incarnation != due[2].Incarnation {
		t.Fatalf("records %+v", recs)
	}
	if k := kinds(ds); k[KindSucceeded] != 1 || k[KindFailed] != 1 {
		t.Errorf("decisions %+v", ds)
	}
	if _, ok := s.State.Attempts[due[1].Key()]; ok {
		t.Error("a cancelled node counted an attempt")
	}
	if r, d := s.Finished(t0.Add(7*time.Second), l.RunID, nil); r != nil || d != nil {
		t.Errorf("finished twice: %v %v", r, d)
	}
	s.Plan(t0.Add(8*time.Second), due[1:2])
	l = launched(s.Plan(t0.Add(14*time.Second), due[1:2]))[0]
	if _, ds := s.Finished(t0.Add(15*time.Second), l.RunID, map[string]Outcome{due[1].Incarnation: Cancelled}); len(ds) != 0 {
		t.Errorf("cancelled: %+v", ds)
	}
	if len(s.State.Breaker.Window) != 1 {
		t.Errorf("breaker window %v: the cancelled run counted", s.State.Breaker.Window)
	}
}

// Forget drops an incarnation's holds, attempts and oscillation history,
// and only its own.
func TestForgetIncarnation(t *testing.T) {
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	s := NewScheduler(DefaultGuards(), State{})
	for _, inc := range []string{"dc1/a//i-1", "dc1/a//i-10"} {
		s.State.Holds[RecordKey(inc, "base")] = Hold{Node: "dc1/a", Incarnation: inc, Stage: "base", At: now}
		s.State.Holds[RecordKey(inc, "")] = Hold{Node: "dc1/a", Incarnation: inc, At: now}
		s.State.Attempts[RecordKey(inc, "web")] = Attempt{Failures: 1}
		s.State.Due[inc] = []string{"web"}
		s.State.Flips[inc] = []time.Time{now}
		s.State.LeftAt[inc] = map[string]time.Time{"web": now}
	}
	s.Forget("dc1/a//i-1")
	if len(s.State.Holds) != 2 || len(s.State.Attempts) != 1 || len(s.State.Due) != 1 || len(s.State.Flips) != 1 || len(s.State.LeftAt) != 1 {
		t.Fatalf("after Forget: %+v", s.State)
	}
	if _, ok := s.State.Holds[RecordKey("dc1/a//i-10", "base")]; !ok {
		t.Fatal("forgot the other incarnation (a prefix of it)")
	}
}

// NextWake is the nearest end of a quiet period, a backoff or the
// breaker's cool-down; zero when nothing waits on time.
func TestNextWake(t *testing.T) {
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	g := DefaultGuards()
	s := NewScheduler(g, State{})
	if w := s.NextWake(now); !w.IsZero() {
		t.Fatalf("idle: %s", w)
	}
	s.Plan(now, items("base", 1))
	if w := s.NextWake(now); !w.Equal(now.Add(g.QuietMin)) {
		t.Fatalf("quiet period: wake %s, want %s", w, now.Add(g.QuietMin))
	}
	s.State.Attempts["x|web"] = Attempt{Failures: 1, NextAt: now.Add(time.Second)}
	if w := s.NextWake(now); !w.Equal(now.Add(time.Second)) {
		t.Fatalf("backoff: wake %s", w)
	}
	s.State.Breaker = Breaker{Open: true, Until: now.Add(500 * time.Millisecond)}
	if w := s.NextWake(now); !w.Equal(now.Add(500 * time.Millisecond)) {
		t.Fatalf("breaker: wake %s", w)
	}
}
