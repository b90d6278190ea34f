package deploy

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Status is what `fleetdeck provisioner status` and the console's
// Provisioner view show of one datacenter: read from its KV, so it is the
// same from any machine, leader or not.
type Status struct {
	Datacenter string `json:"datacenter"`
	// Leader is nil when nobody leads.
	Leader *Holder `json:"leader"`
	// State is "launching", "paused: …" or "breaker open: …".
	State   string    `json:"state"`
	Paused  string    `json:"paused,omitempty"`
	Breaker Breaker   `json:"breaker"`
	Guards  GuardView `json:"guards"`
	Queue   []Queued  `json:"queue"`
	Running []RunView `json:"running"`
	Held    []Hold    `json:"held"`
	Backoff []Backoff `json:"backoff"`
	// Requests are operators' requests the leader has not taken yet.
	Requests  []Request  `json:"requests"`
	Decisions []Decision `json:"decisions"` // newest last
}

// GuardView is the guards with durations as text.
type GuardView struct {
	QuietMin, QuietMax, BackoffBase, BackoffMax, BreakerCooldown string
	BatchMax, MaxParallelRuns, MaxAttempts, OscillationMax       int
	RunsPerHour, BreakerWindow                                   int
	BreakerRatio                                                 float64
	// RunsLastHour counts launches within the last hour.
	RunsLastHour int
}

// Queued is one stage's due nodes waiting.
type Queued struct {
	Stage string    `json:"stage"`
	Nodes []string  `json:"nodes"`
	Since time.Time `json:"since"`
	// ReadyAt is when the quiet period ends (zero: ended); Waiting why
	// the formed batches wait (a guard), from the last skip decision.
	ReadyAt time.Time `json:"ready_at,omitzero"`
	Waiting string    `json:"waiting,omitempty"`
}

// RunView is a running run.
type RunView struct {
	Batch   string    `json:"batch"`
	Stage   string    `json:"stage"`
	Nodes   []string  `json:"nodes"`
	Started time.Time `json:"started"`
}

// Backoff is a node's stage waiting after failures.
type Backoff struct {
	Node     string    `json:"node"`
	Stage    string    `json:"stage"`
	Failures int       `json:"failures"`
	Until    time.Time `json:"until"`
}

// StatusOf builds the status from what Load read, the guards and the
// leader, at now. At most last decisions are kept (0: all read).
func StatusOf(dc string, l *Loaded, g Guards, leader *Holder, now time.Time, last int) Status {
	if l.State.Guards != nil {
		g = *l.State.Guards
	}
	sched := NewScheduler(g, l.State)
	st := sched.State
	s := Status{Datacenter: dc, Leader: leader, Paused: st.Paused, Breaker: st.Breaker}
	switch {
	case st.Paused != "":
		s.State = "paused: " + st.Paused
	case st.Breaker.Open:
		s.State = fmt.Sprintf("breaker open until %s", st.Breaker.Until.Format(time.RFC3339))
	default:
		s.State = "launching"
	}
	if leader == nil {
		// Nothing launches whatever the state says.
		if s.State == "launching" {
			s.State = "no leader: nothing launches"
		} else {
			s.State = "no leader: nothing launches; " + s.State
		}
	}
	n := 0
	for _, t := range st.Launches {
		if t.After(now.Add(-time.Hour)) {
			n++
		}
	}
	s.Guards = GuardView{QuietMin: g.QuietMin.String(), QuietMax: g.QuietMax.String(), BackoffBase: g.BackoffBase.String(),
		BackoffMax: g.BackoffMax.String(), BreakerCooldown: g.BreakerCooldown.String(), BatchMax: g.BatchMax,
		MaxParallelRuns: g.MaxParallelRuns, MaxAttempts: g.MaxAttempts, OscillationMax: g.OscillationMax,
		RunsPerHour: g.RunsPerHour, BreakerWindow: g.BreakerWindow, BreakerRatio: g.BreakerRatio, RunsLastHour: n}
	for _, stage := range slices.Sorted(maps.Keys(st.Pending)) {
		p := st.Pending[stage]
		q := Queued{Stage: stage, Since: p.FirstAt, Waiting: st.Skips[stage]}
		if r := sched.readyAt(p); r.After(now) {
			q.ReadyAt = r
		}
		for _, it := range p.Items {
			q.Nodes = append(q.Nodes, it.Item.Node)
		}
		slices.Sort(q.Nodes)
		s.Queue = append(s.Queue, q)
	}
	for _, id := range slices.Sorted(maps.Keys(st.Running)) {
		r := st.Running[id]
		v := RunView{Batch: id, Stage: r.Stage, Started: r.StartedAt}
		for _, it := range r.Items {
			v.Nodes = append(v.Nodes, it.Node)
		}
		s.Running = append(s.Running, v)
	}
	for _, h := range st.Holds {
		s.Held = append(s.Held, h)
	}
	slices.SortFunc(s.Held, func(a, b Hold) int { return cmp.Or(strings.Compare(a.Node, b.Node), strings.Compare(a.Stage, b.Stage)) })
	for key, a := range st.Attempts {
		if a.NextAt.IsZero() || !a.NextAt.After(now) {
			continue
		}
		inc, stage, _ := strings.Cut(key, "|")
		node := inc
		if parts := strings.Split(inc, "/"); len(parts) >= 2 {
			node = parts[0] + "/" + parts[1]
		}
		s.Backoff = append(s.Backoff, Backoff{Node: node, Stage: stage, Failures: a.Failures, Until: a.NextAt})
	}
	slices.SortFunc(s.Backoff, func(a, b Backoff) int { return a.Until.Compare(b.Until) })
	s.Requests = l.Requests
	s.Decisions = l.Decisions
	if last > 0 && len(s.Decisions) > last {
		s.Decisions = s.Decisions[len(s.Decisions)-last:]
	}
	return s
}

// ReadStatus reads a datacenter's status in four small reads (the
// records are not among them), whatever the fleet's size.
func ReadStatus(ctx context.Context, s *Store, dc string, g Guards, last int) (Status, error) {
	l, err := s.LoadStatus(ctx)
	if err != nil {
		return Status{}, err
	}
	h, err := Leader(ctx, s.c, s.dc, s.prefix)
	if err != nil {
		return Status{}, fmt.Errorf("reading the leader: %w", err)
	}
	return StatusOf(dc, l, g, h, time.Now().UTC(), last), nil
}
