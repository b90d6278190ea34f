package deploy

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Scheduler turns each pass's due set into runs under the loop guards. It
// owns no goroutine and reads no clock: the caller gives it the time, the
// due set (Due) and the finished runs, and persists State after each call
// (the store keeps it in KV, so a new leader continues from it). Every
// method returns the Decisions it took, each a value to record and show.
type Scheduler struct {
	Guards Guards
	State  State
}

// NewScheduler returns a scheduler with the guards g and the persisted
// state st (a zero State for a fresh datacenter).
func NewScheduler(g Guards, st State) *Scheduler {
	s := &Scheduler{Guards: g, State: st}
	s.init()
	return s
}

func (s *Scheduler) init() {
	st := &s.State
	if st.Pending == nil {
		st.Pending = map[string]*Pending{}
	}
	if st.Running == nil {
		st.Running = map[string]Running{}
	}
	if st.Attempts == nil {
		st.Attempts = map[string]Attempt{}
	}
	if st.Holds == nil {
		st.Holds = map[string]Hold{}
	}
	if st.Due == nil {
		st.Due = map[string][]string{}
	}
	if st.LeftAt == nil {
		st.LeftAt = map[string]map[string]time.Time{}
	}
	if st.Flips == nil {
		st.Flips = map[string][]time.Time{}
	}
	if st.Skips == nil {
		st.Skips = map[string]string{}
	}
}

// Backoff is the wait after a node's failures-th failure of a stage:
// base·2^(failures-1), capped at Guards.BackoffMax.
func (g Guards) Backoff(failures int) time.Duration {
	d := g.BackoffBase
	for i := 1; i < failures && d < g.BackoffMax; i++ {
		d *= 2
	}
	return min(d, g.BackoffMax)
}

// Held reports the hold that keeps item from running, if any: the node's
// (every stage) or the node's stage's.
func (s *Scheduler) Held(item DueItem) (Hold, bool) {
	if h, ok := s.State.Holds[RecordKey(item.Incarnation, "")]; ok {
		return h, true
	}
	h, ok := s.State.Holds[item.Key()]
	return h, ok
}

// Plan is one reconcile pass at now over the due set: it detects
// oscillation, queues new due items (skipping held ones, those in backoff
// and those already running), closes the breaker after its cool-down, and
// launches the batches whose quiet period has ended as far as the guards
// allow. The Launched decisions carry the batches for the caller to run;
// it reports their ends to Finished.
func (s *Scheduler) Plan(now time.Time, due []DueItem) []Decision {
	s.init()
	var out []Decision
	out = append(out, s.closeBreaker(now)...)
	out = append(out, s.oscillation(now, due)...)
	out = append(out, s.queue(now, due)...)
	out = append(out, s.launch(now)...)
	return out
}

func (s *Scheduler) closeBreaker(now time.Time) []Decision {
	b := &s.State.Breaker
	if !b.Open || now.Before(b.Until) {
		return nil
	}
	// The window starts over: the runs that opened it must not reopen it
	// with the first run after the cool-down.
	*b = Breaker{}
	return []Decision{{At: now, Kind: KindBreakerClosed, Reason: fmt.Sprintf("cool-down of %s ended", s.Guards.BreakerCooldown)}}
}

// oscillation counts, per incarnation, the stages that come back into its
// due set within an hour of leaving it. A chain going through its stages
// once never comes back (base, roles, web each enter once), while a
// playbook that undoes its own trigger, or two stages undoing each other,
// brings the same stage back on every round: more than OscillationMax
// returns in an hour holds the node for every stage.
func (s *Scheduler) oscillation(now time.Time, due []DueItem) []Decision {
	st := &s.State
	cur := map[string][]string{}
	nodeOf := map[string]string{}
	for _, d := range due {
		cur[d.Incarnation] = append(cur[d.Incarnation], d.Stage)
		nodeOf[d.Incarnation] = d.Node
	}
	var out []Decision
	hour := now.Add(-time.Hour)
	for inc, prev := range st.Due {
		for _, stage := range prev {
			if !slices.Contains(cur[inc], stage) {
				if st.LeftAt[inc] == nil {
					st.LeftAt[inc] = map[string]time.Time{}
				}
				st.LeftAt[inc][stage] = now
			}
		}
	}
	incs := make([]string, 0, len(cur))
	for inc := range cur {
		incs = append(incs, inc)
	}
	slices.Sort(incs)
	for _, inc := range incs {
		flips := slices.DeleteFunc(st.Flips[inc], func(t time.Time) bool { return t.Before(hour) })
		for _, stage := range cur[inc] {
			if slices.Contains(st.Due[inc], stage) {
				continue
			}
			if left, ok := st.LeftAt[inc][stage]; ok && !left.Before(hour) {
				flips = append(flips, now)
			}
		}
		st.Flips[inc] = flips
		hk := RecordKey(inc, "")
		if _, held := st.Holds[hk]; !held && len(flips) > s.Guards.OscillationMax {
			h := Hold{Node: nodeOf[inc], Incarnation: inc, At: now,
				Reason: fmt.Sprintf("oscillating: due stages came back %d times in the last hour (max %d)", len(flips), s.Guards.OscillationMax)}
			st.Holds[hk] = h
			out = append(out, Decision{At: now, Kind: KindHeld, Node: h.Node, Incarnation: inc, Reason: h.Reason})
		}
	}
	// Forget what is more than an hour old, and incarnations with nothing
	// left: the state stays bounded by the fleet, not by its history.
	st.Due = cur
	for inc, left := range st.LeftAt {
		for stage, at := range left {
			if at.Before(hour) {
				delete(left, stage)
			}
		}
		if len(left) == 0 {
			delete(st.LeftAt, inc)
		}
	}
	for inc, fl := range st.Flips {
		if fl = slices.DeleteFunc(fl, func(t time.Time) bool { return t.Before(hour) }); len(fl) == 0 {
			delete(st.Flips, inc)
		} else {
			st.Flips[inc] = fl
		}
	}
	return out
}

func (s *Scheduler) running(key string) bool {
	for _, r := range s.State.Running {
		for _, it := range r.Items {
			if it.Key() == key {
				return true
			}
		}
	}
	return false
}

// queue brings the stages' Pending in line with the due set: new items
// join (a Due decision), items no longer due or now held leave.
func (s *Scheduler) queue(now time.Time, due []DueItem) []Decision {
	st := &s.State
	var out []Decision
	want := map[string]map[string]DueItem{}
	for _, d := range due {
		if _, held := s.Held(d); held {
			continue
		}
		if a, ok := st.Attempts[d.Key()]; ok && now.Before(a.NextAt) {
			continue // shown by Queue as in backoff; its Failed decision said until when
		}
		if s.running(d.Key()) {
			continue
		}
		if want[d.Stage] == nil {
			want[d.Stage] = map[string]DueItem{}
		}
		want[d.Stage][d.Key()] = d
	}
	for stage, p := range st.Pending {
		for k := range p.Items {
			if _, ok := want[stage][k]; !ok {
				delete(p.Items, k)
			}
		}
		if len(p.Items) == 0 {
			delete(st.Pending, stage)
			delete(st.Skips, stage)
		}
	}
	for _, d := range due {
		if _, ok := want[d.Stage][d.Key()]; !ok {
			continue
		}
		p := st.Pending[d.Stage]
		if p == nil {
			p = &Pending{FirstAt: now, Items: map[string]PendingItem{}}
			st.Pending[d.Stage] = p
		}
		if pi, ok := p.Items[d.Key()]; ok {
			pi.Item = d // inputs may have moved on (a new generation)
			p.Items[d.Key()] = pi
			continue
		}
		p.Items[d.Key()] = PendingItem{Item: d, Since: now}
		p.LastNewAt = now
		out = append(out, Decision{At: now, Kind: KindDue, Stage: d.Stage, Node: d.Node, Incarnation: d.Incarnation,
			Reason: "matches select, its after stages are applied, no successful record with the current inputs"})
	}
	return out
}

// readyAt is when a stage's pending items end their quiet period: quiet_min
// after the latest new one, but no later than quiet_max after the first, so
// a steady trickle of joins still launches.
func (s *Scheduler) readyAt(p *Pending) time.Time {
	if p.Formed {
		return p.FirstAt
	}
	t := p.LastNewAt.Add(s.Guards.QuietMin)
	if m := p.FirstAt.Add(s.Guards.QuietMax); m.Before(t) {
		t = m
	}
	return t
}

// blocked says why nothing may launch now and until when (zero: until an
// operator acts or a run ends); "" when a launch is allowed.
func (s *Scheduler) blocked(now time.Time) (string, time.Time) {
	st := &s.State
	switch {
	case st.Paused != "":
		return "paused: " + st.Paused, time.Time{}
	case st.Breaker.Open:
		return "circuit breaker open", st.Breaker.Until
	case len(st.Running) >= s.Guards.MaxParallelRuns:
		return fmt.Sprintf("max_parallel_runs (%d) reached", s.Guards.MaxParallelRuns), time.Time{}
	}
	st.Launches = slices.DeleteFunc(st.Launches, func(t time.Time) bool { return !t.After(now.Add(-time.Hour)) })
	if len(st.Launches) >= s.Guards.RunsPerHour {
		return fmt.Sprintf("runs_per_hour (%d) reached", s.Guards.RunsPerHour), st.Launches[0].Add(time.Hour)
	}
	return "", time.Time{}
}

func (s *Scheduler) launch(now time.Time) []Decision {
	st := &s.State
	var out []Decision
	stages := make([]string, 0, len(st.Pending))
	for stage := range st.Pending {
		stages = append(stages, stage)
	}
	// The stage waiting longest goes first, so a busy stage cannot starve
	// the others of parallel slots.
	slices.SortFunc(stages, func(a, b string) int {
		if c := st.Pending[a].FirstAt.Compare(st.Pending[b].FirstAt); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	for _, stage := range stages {
		p := st.Pending[stage]
		if now.Before(s.readyAt(p)) {
			continue
		}
		items := make([]PendingItem, 0, len(p.Items))
		for _, pi := range p.Items {
			items = append(items, pi)
		}
		slices.SortFunc(items, func(a, b PendingItem) int {
			if c := a.Since.Compare(b.Since); c != 0 {
				return c
			}
			return strings.Compare(a.Item.Key(), b.Item.Key())
		})
		if !p.Formed {
			p.Formed = true
			reason := fmt.Sprintf("no new node due for quiet_min %s", s.Guards.QuietMin)
			if p.FirstAt.Add(s.Guards.QuietMax).Before(p.LastNewAt.Add(s.Guards.QuietMin)) {
				reason = fmt.Sprintf("quiet_max %s since the first node became due", s.Guards.QuietMax)
			}
			n := (len(items) + s.Guards.BatchMax - 1) / s.Guards.BatchMax
			out = append(out, Decision{At: now, Kind: KindBatched, Stage: stage,
				Reason: fmt.Sprintf("%s: %d nodes in %d batches of at most %d", reason, len(items), n, s.Guards.BatchMax)})
		}
		for len(items) > 0 {
			if why, until := s.blocked(now); why != "" {
				if st.Skips[stage] != why {
					st.Skips[stage] = why
					out = append(out, Decision{At: now, Kind: KindSkipped, Stage: stage,
						Reason: fmt.Sprintf("%d nodes wait: %s", len(items), why), Until: until})
				}
				break
			}
			delete(st.Skips, stage)
			n := min(len(items), s.Guards.BatchMax)
			batch := make([]DueItem, n)
			for i, pi := range items[:n] {
				batch[i] = pi.Item
				delete(p.Items, pi.Item.Key())
			}
			items = items[n:]
			st.Seq++
			id := fmt.Sprintf("%s-%d", stage, st.Seq)
			st.Running[id] = Running{Stage: stage, StartedAt: now, Items: batch}
			st.Launches = append(st.Launches, now)
			out = append(out, Decision{At: now, Kind: KindLaunched, Stage: stage, RunID: id, Batch: batch,
				Reason: fmt.Sprintf("%d nodes", n)})
		}
		if len(p.Items) == 0 {
			delete(st.Pending, stage)
		}
	}
	return out
}

// Finished takes the end of run runID: outcomes per incarnation (an
// incarnation of the batch missing from it counts as failed: the run did
// not show it applied). It returns the records to store (successes and
// failures; cancelled nodes leave their record alone) and the decisions:
// succeeded, failed with the backoff's end, held after max_attempts, and
// the breaker opening when the share of failed runs among the last
// breaker_window reaches breaker_ratio. A run counts as failed when any
// of its nodes failed. An unknown runID (finished twice, or from before a
// state loss) changes nothing.
func (s *Scheduler) Finished(now time.Time, runID string, outcomes map[string]Outcome) ([]Record, []Decision) {
	s.init()
	st := &s.State
	run, ok := st.Running[runID]
	if !ok {
		return nil, nil
	}
	delete(st.Running, runID)
	var recs []Record
	var out []Decision
	failed, cancelled := false, true
	for _, it := range run.Items {
		o, ok := outcomes[it.Incarnation]
		if !ok {
			o = Failed
		}
		if o == Cancelled {
			continue
		}
		cancelled = false
		recs = append(recs, Record{Incarnation: it.Incarnation, Node: it.Node, Stage: it.Stage, Inputs: it.Inputs, Outcome: o, RunID: runID, At: now})
		d := Decision{At: now, Stage: it.Stage, Node: it.Node, Incarnation: it.Incarnation, RunID: runID}
		if o == Succeeded {
			delete(st.Attempts, it.Key())
			d.Kind, d.Reason = KindSucceeded, "run succeeded on the node"
			out = append(out, d)
			continue
		}
		failed = true
		a := st.Attempts[it.Key()]
		a.Failures++
		a.LastAt = now
		if a.Failures >= s.Guards.MaxAttempts {
			a.NextAt = time.Time{}
			st.Attempts[it.Key()] = a
			d.Kind, d.Reason = KindFailed, fmt.Sprintf("attempt %d of %d failed", a.Failures, s.Guards.MaxAttempts)
			out = append(out, d)
			h := Hold{Node: it.Node, Incarnation: it.Incarnation, Stage: it.Stage, At: now,
				Reason: fmt.Sprintf("failed %d times (max_attempts %d)", a.Failures, s.Guards.MaxAttempts)}
			st.Holds[it.Key()] = h
			out = append(out, Decision{At: now, Kind: KindHeld, Stage: it.Stage, Node: it.Node, Incarnation: it.Incarnation, RunID: runID, Reason: h.Reason})
			continue
		}
		wait := s.Guards.Backoff(a.Failures)
		a.NextAt = now.Add(wait)
		st.Attempts[it.Key()] = a
		d.Kind, d.Until = KindFailed, a.NextAt
		d.Reason = fmt.Sprintf("attempt %d of %d failed; retry after a backoff of %s", a.Failures, s.Guards.MaxAttempts, wait)
		out = append(out, d)
	}
	if cancelled {
		return recs, out
	}
	b := &st.Breaker
	b.Window = append(b.Window, failed)
	if extra := len(b.Window) - s.Guards.BreakerWindow; extra > 0 {
		b.Window = b.Window[extra:]
	}
	if !b.Open && len(b.Window) >= s.Guards.BreakerWindow {
		nf := 0
		for _, f := range b.Window {
			if f {
				nf++
			}
		}
		if float64(nf) >= s.Guards.BreakerRatio*float64(len(b.Window)) {
			b.Open, b.OpenedAt, b.Until = true, now, now.Add(s.Guards.BreakerCooldown)
			out = append(out, Decision{At: now, Kind: KindBreakerOpened, Until: b.Until,
				Reason: fmt.Sprintf("%d of the last %d runs failed (threshold %.0f%%)", nf, len(b.Window), s.Guards.BreakerRatio*100)})
		}
	}
	return recs, out
}

// Release lifts holds on an incarnation: stage "" lifts every hold of the
// node (an oscillation hold included), a stage only that stage's. A
// released stage forgets its attempts and the node its flips, so it starts
// afresh rather than being held again by its own history.
func (s *Scheduler) Release(now time.Time, incarnation, stage, reason string) []Decision {
	s.init()
	st := &s.State
	var out []Decision
	for k, h := range st.Holds {
		if h.Incarnation != incarnation || (stage != "" && h.Stage != stage) {
			continue
		}
		delete(st.Holds, k)
		delete(st.Attempts, k)
		out = append(out, Decision{At: now, Kind: KindReleased, Stage: h.Stage, Node: h.Node, Incarnation: incarnation,
			Reason: fmt.Sprintf("released (%s); was held: %s", reason, h.Reason)})
	}
	if len(out) > 0 {
		delete(st.Flips, incarnation)
		delete(st.LeftAt, incarnation)
	}
	slices.SortFunc(out, func(a, b Decision) int { return strings.Compare(a.Stage, b.Stage) })
	return out
}

// Forget drops what the scheduler remembers of an incarnation that is
// gone from the fleet (its holds, attempts and oscillation history), so
// the state stays bounded by the fleet, not by its history. A queued item
// of it leaves with the next Plan (it is no longer due); a running one is
// left to finish.
func (s *Scheduler) Forget(incarnation string) {
	s.init()
	st := &s.State
	prefix := incarnation + "|"
	for k := range st.Holds {
		if strings.HasPrefix(k, prefix) {
			delete(st.Holds, k)
		}
	}
	for k := range st.Attempts {
		if strings.HasPrefix(k, prefix) {
			delete(st.Attempts, k)
		}
	}
	delete(st.Due, incarnation)
	delete(st.LeftAt, incarnation)
	delete(st.Flips, incarnation)
}

// NextWake is the earliest moment after now at which a timer of the
// guards ends (a quiet period, a backoff, the breaker's cool-down, the
// hourly cap): the caller runs a pass then instead of waiting for its
// tick. Zero when nothing waits on time.
func (s *Scheduler) NextWake(now time.Time) time.Time {
	var next time.Time
	consider := func(t time.Time) {
		if t.After(now) && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	st := &s.State
	for _, p := range st.Pending {
		consider(s.readyAt(p))
	}
	for _, a := range st.Attempts {
		consider(a.NextAt)
	}
	if st.Breaker.Open {
		consider(st.Breaker.Until)
	}
	if len(st.Launches) >= s.Guards.RunsPerHour && len(st.Launches) > 0 {
		consider(st.Launches[0].Add(time.Hour))
	}
	return next
}

// Pause stops launching (running runs go on) until Resume.
func (s *Scheduler) Pause(now time.Time, reason string) []Decision {
	s.State.Paused = reason
	return []Decision{{At: now, Kind: KindPaused, Reason: reason}}
}

// Resume lets launching go on after Pause.
func (s *Scheduler) Resume(now time.Time, reason string) []Decision {
	s.State.Paused = ""
	return []Decision{{At: now, Kind: KindResumed, Reason: reason}}
}
