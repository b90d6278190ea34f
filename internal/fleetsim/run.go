package fleetsim

import (
	"container/heap"
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/fleetdeck/fleetdeck/internal/consul"
)

// RunOptions tunes Run. Zero fields take the demo defaults, chosen so that
// something visible happens every few seconds.
type RunOptions struct {
	// FlapEvery is the mean interval between check flaps (default 2s).
	FlapEvery time.Duration
	// FlapFor is how long a flapped check stays bad (default 6s; varied
	// ±50% per flap).
	FlapFor time.Duration
	// ScaleEvery is the interval between scale-out cycles (default 40s; the
	// first comes after a quarter of it).
	ScaleEvery time.Duration
	// ScaleStep is how many nodes a scale-out adds (default 3).
	ScaleStep int
	// ScaleHold is how long scaled-out nodes stay before scale-in removes
	// them (default 20s).
	ScaleHold time.Duration
	// HealEvery is the interval between auto-healing episodes (default 30s;
	// the first comes after half of it).
	HealEvery time.Duration
	// HealCriticalFor is how long a failing node stays critical before the
	// group terminates it (default 10s).
	HealCriticalFor time.Duration
	// ReplaceAfter is how long after termination the replacement joins
	// (default 3s).
	ReplaceAfter time.Duration
	// JoinSpacing separates the individual joins and leaves of a scaling
	// action (default 1s).
	JoinSpacing time.Duration
	// OnEvent, if set, is called synchronously from Run's goroutine after
	// each change has been written to Consul (or failed to be).
	OnEvent func(SimEvent)
}

func (o *RunOptions) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.FlapEvery, 2*time.Second)
	def(&o.FlapFor, 6*time.Second)
	def(&o.ScaleEvery, 40*time.Second)
	def(&o.ScaleHold, 20*time.Second)
	def(&o.HealEvery, 30*time.Second)
	def(&o.HealCriticalFor, 10*time.Second)
	def(&o.ReplaceAfter, 3*time.Second)
	def(&o.JoinSpacing, time.Second)
	if o.ScaleStep <= 0 {
		o.ScaleStep = 3
	}
}

// EventKind says what a SimEvent did.
type EventKind string

// Event kinds.
const (
	// NodeJoined: a node was registered (scale-out or replacement).
	NodeJoined EventKind = "node-joined"
	// NodeLeft: a node was deregistered (scale-in or auto-heal termination).
	NodeLeft EventKind = "node-left"
	// CheckChanged: a check's status or output changed.
	CheckChanged EventKind = "check-changed"
	// ScaleOut / ScaleIn: a group's desired size changed.
	ScaleOut EventKind = "scale-out"
	ScaleIn  EventKind = "scale-in"
	// Error: a write to Consul failed; the simulation carries on.
	Error EventKind = "error"
)

// SimEvent describes one thing Run did, for logs and for the future log
// simulator that writes matching log bursts.
type SimEvent struct {
	Time       time.Time
	Kind       EventKind
	Node       string
	Address    string
	Group      string
	Zone       string
	InstanceID string
	// CheckID, OldStatus, Status and Output are set for CheckChanged.
	CheckID   string
	OldStatus string
	Status    string
	Output    string
	// Reason says why, e.g. "flap", "auto-heal: unresponsive",
	// "scale-out", "replacement for ip-10-1-0-7".
	Reason string
	// Err is set for Error events.
	Err error
}

// String renders the event as a one-line log message.
func (e SimEvent) String() string {
	switch e.Kind {
	case CheckChanged:
		return fmt.Sprintf("%s %s %s: %s -> %s (%s): %s", e.Kind, e.Node, e.CheckID, e.OldStatus, e.Status, e.Reason, e.Output)
	case Error:
		return fmt.Sprintf("%s (%s): %v", e.Kind, e.Reason, e.Err)
	case ScaleOut, ScaleIn:
		return fmt.Sprintf("%s %s: %s", e.Kind, e.Group, e.Reason)
	}
	return fmt.Sprintf("%s %s (%s, %s, %s): %s", e.Kind, e.Node, e.Group, e.Zone, e.InstanceID, e.Reason)
}

// Run keeps the spec's fleet alive until ctx is done: checks flap and
// recover, scalable groups take turns scaling out and back in, and from time
// to time a node goes critical, is terminated and replaced by a fresh node
// in the same group. It assumes Load(ctx, c, spec) has registered the fleet.
// All choices come from spec.Seed; everything runs on the calling
// goroutine. Consul errors are reported as Error events and do not stop the
// simulation. Run returns nil when ctx is done, or an error for an invalid
// spec.
func Run(ctx context.Context, c *api.Client, spec Spec, opts RunOptions) error {
	opts.defaults()
	g, err := newGenerator(spec)
	if err != nil {
		return err
	}
	s := &sim{
		ctx: ctx, c: consul.New(c, consul.Options{}), dc: spec.Datacenter, opts: opts, gen: g,
		// A separate stream from the generator's keeps Run's choices
		// independent of how many nodes were generated.
		rng:  rand.New(rand.NewPCG(spec.Seed, 0x72756e)),
		busy: map[string]bool{},
	}
	for _, n := range g.initial() {
		s.add(n)
	}
	for i, gr := range spec.Groups {
		if gr.Scalable && gr.Name != "" {
			s.scalable = append(s.scalable, i)
		}
	}

	now := time.Now()
	s.now = now
	s.at(now.Add(s.jitter(opts.FlapEvery)), s.flap)
	if len(s.scalable) > 0 {
		s.at(now.Add(opts.ScaleEvery/4), s.scaleOut)
		s.at(now.Add(opts.HealEvery/2), s.heal)
	}

	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		next := s.queue[0]
		timer.Reset(time.Until(next.when))
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		heap.Pop(&s.queue)
		s.now = next.when
		next.fn()
	}
}

// sim is Run's state; only Run's goroutine touches it.
type sim struct {
	ctx  context.Context
	c    *consul.Client
	dc   string
	opts RunOptions
	gen  *generator
	rng  *rand.Rand

	live     []*Node // registration order, for deterministic picks
	busy     map[string]bool
	scalable []int // indexes of scalable groups in spec.Groups
	scaleIdx int
	queue    actionQueue
	seq      int
	// now is the scheduled time of the running action. Follow-up actions
	// are scheduled relative to it rather than to the wall clock, so the
	// order of actions (and so every random choice) depends only on the
	// seed, even when Consul is slow and actions run late.
	now time.Time
}

func (s *sim) add(n Node) { s.live = append(s.live, &n) }

func (s *sim) remove(name string) {
	for i, n := range s.live {
		if n.Name == name {
			s.live = append(s.live[:i], s.live[i+1:]...)
			return
		}
	}
}

func (s *sim) find(name string) *Node {
	for _, n := range s.live {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// at schedules fn. Actions with equal times run in scheduling order, which
// keeps the sequence deterministic.
func (s *sim) at(when time.Time, fn func()) {
	s.seq++
	heap.Push(&s.queue, action{when: when, seq: s.seq, fn: fn})
}

func (s *sim) after(d time.Duration, fn func()) { s.at(s.now.Add(d), fn) }

// jitter returns d varied by ±50%.
func (s *sim) jitter(d time.Duration) time.Duration {
	return d/2 + time.Duration(s.rng.Int64N(int64(d)+1))
}

func (s *sim) emit(e SimEvent) {
	if s.opts.OnEvent != nil {
		e.Time = time.Now()
		s.opts.OnEvent(e)
	}
}

func (s *sim) fail(reason string, err error) {
	if s.ctx.Err() != nil {
		return // shutting down: the write was cancelled, not failed
	}
	s.emit(SimEvent{Kind: Error, Reason: reason, Err: err})
}

func nodeEvent(kind EventKind, n *Node, reason string) SimEvent {
	return SimEvent{Kind: kind, Node: n.Name, Address: n.Address, Group: n.Group, Zone: n.Zone, InstanceID: n.Meta["instance-id"], Reason: reason}
}

// pick returns a random live node that is not busy, optionally only from
// scalable groups, or nil.
func (s *sim) pick(scalableOnly bool) *Node {
	var cands []*Node
	for _, n := range s.live {
		if s.busy[n.Name] || (scalableOnly && !s.isScalable(n.Group)) {
			continue
		}
		// Hostile nodes are never terminated, so they stay on screen for the
		// whole demo.
		if _, hostile := n.Meta[hostileMetaKey]; hostile && scalableOnly {
			continue
		}
		cands = append(cands, n)
	}
	if len(cands) == 0 {
		return nil
	}
	return cands[s.rng.IntN(len(cands))]
}

func (s *sim) isScalable(group string) bool {
	for _, gi := range s.scalable {
		if s.gen.spec.Groups[gi].Name == group {
			return true
		}
	}
	return false
}

// setChecks writes new status and output for some of a node's checks in one
// transaction and reports each change.
func (s *sim) setChecks(n *Node, changes map[string][2]string, reason string) bool {
	var ops api.TxnOps
	var events []SimEvent
	for i := range n.Checks {
		ch := &n.Checks[i]
		chg, ok := changes[ch.ID]
		if !ok {
			continue
		}
		e := nodeEvent(CheckChanged, n, reason)
		e.CheckID, e.OldStatus, e.Status, e.Output = ch.ID, ch.Status, chg[0], chg[1]
		updated := *ch
		updated.Status, updated.Output = chg[0], chg[1]
		ops = append(ops, checkOp(s.dc, n.Name, &updated))
		events = append(events, e)
	}
	if len(ops) == 0 {
		return false
	}
	if err := applyTxn(s.ctx, s.c, s.dc, ops, "updating checks on "+n.Name); err != nil {
		s.fail(reason, err)
		return false
	}
	for i := range n.Checks {
		if chg, ok := changes[n.Checks[i].ID]; ok {
			n.Checks[i].Status, n.Checks[i].Output = chg[0], chg[1]
		}
	}
	for _, e := range events {
		s.emit(e)
	}
	return true
}

func (s *sim) servicePort(n *Node, serviceID string) int {
	for _, sv := range n.Services {
		if sv.ID == serviceID {
			return sv.Port
		}
	}
	return 0
}

// flap turns one passing service check warning or critical for a while.
func (s *sim) flap() {
	defer s.after(s.jitter(s.opts.FlapEvery), s.flap)
	n := s.pick(false)
	if n == nil {
		return
	}
	var svcChecks []int
	for i, ch := range n.Checks {
		if ch.ServiceID != "" && ch.Status == "passing" {
			svcChecks = append(svcChecks, i)
		}
	}
	if len(svcChecks) == 0 {
		return
	}
	ch := n.Checks[svcChecks[s.rng.IntN(len(svcChecks))]]
	status := "warning"
	if s.rng.IntN(5) < 2 {
		status = "critical"
	}
	out := failingOutput(n.Address, ch, s.servicePort(n, ch.ServiceID), status, s.rng.IntN(1000))
	if !s.setChecks(n, map[string][2]string{ch.ID: {status, out}}, "flap") {
		return
	}
	s.busy[n.Name] = true
	name, id := n.Name, ch.ID
	s.after(s.jitter(s.opts.FlapFor), func() {
		delete(s.busy, name)
		n := s.find(name)
		if n == nil {
			return
		}
		svc := Service{Name: "", Port: s.servicePort(n, ch.ServiceID)}
		for _, sv := range n.Services {
			if sv.ID == ch.ServiceID {
				svc = sv
			}
		}
		s.setChecks(n, map[string][2]string{id: {"passing", passingOutput(n.Address, svc)}}, "recovered")
	})
}

// scaleOut adds ScaleStep nodes to the next scalable group, one every
// JoinSpacing, and schedules the matching scale-in.
func (s *sim) scaleOut() {
	defer s.after(s.opts.ScaleEvery, s.scaleOut)
	gi := s.scalable[s.scaleIdx%len(s.scalable)]
	s.scaleIdx++
	group := s.gen.spec.Groups[gi].Name
	s.emit(SimEvent{Kind: ScaleOut, Group: group, Reason: fmt.Sprintf("desired capacity +%d (CPU above target)", s.opts.ScaleStep)})
	var added []string
	for i := 0; i < s.opts.ScaleStep; i++ {
		n := s.gen.newNode(gi)
		added = append(added, n.Name)
		s.after(time.Duration(i)*s.opts.JoinSpacing, func() { s.join(n, "scale-out") })
	}
	s.after(s.opts.ScaleHold, func() {
		s.emit(SimEvent{Kind: ScaleIn, Group: group, Reason: fmt.Sprintf("desired capacity -%d (CPU below target)", len(added))})
		for i, name := range added {
			s.after(time.Duration(i)*s.opts.JoinSpacing, func() { s.leave(name, "scale-in") })
		}
	})
}

// join registers a new node. Joining nodes are busy until registered so
// they are never picked for flaps before they exist.
func (s *sim) join(n Node, reason string) {
	if err := register(s.ctx, s.c, s.dc, []Node{n}, 1); err != nil {
		s.fail(reason+": registering "+n.Name, err)
		return
	}
	s.add(n)
	s.emit(nodeEvent(NodeJoined, &n, reason))
}

// leave deregisters a node (if it is still there).
func (s *sim) leave(name, reason string) {
	n := s.find(name)
	if n == nil {
		return
	}
	if err := applyTxn(s.ctx, s.c, s.dc, api.TxnOps{deleteNodeOp(name)}, "deregistering "+name); err != nil {
		s.fail(reason, err)
		return
	}
	s.remove(name)
	delete(s.busy, name)
	s.emit(nodeEvent(NodeLeft, n, reason))
}

// heal plays the auto-healing story: a node becomes unresponsive (all its
// checks critical), stays so for HealCriticalFor, is terminated by its group
// and a fresh node with a new name and instance id replaces it.
func (s *sim) heal() {
	defer s.after(s.opts.HealEvery, s.heal)
	n := s.pick(true)
	if n == nil {
		return
	}
	changes := map[string][2]string{}
	for _, ch := range n.Checks {
		out := "Agent not live or unreachable"
		if ch.ServiceID != "" {
			out = fmt.Sprintf("dial tcp %s:%d: connect: no route to host", n.Address, s.servicePort(n, ch.ServiceID))
		}
		changes[ch.ID] = [2]string{"critical", out}
	}
	if !s.setChecks(n, changes, "auto-heal: instance unresponsive") {
		return
	}
	s.busy[n.Name] = true
	name, group := n.Name, n.Group
	gi := -1
	for i, gr := range s.gen.spec.Groups {
		if gr.Name == group {
			gi = i
		}
	}
	s.after(s.opts.HealCriticalFor, func() {
		s.leave(name, "auto-heal: terminated unhealthy instance")
		if gi < 0 {
			return
		}
		s.after(s.opts.ReplaceAfter, func() {
			s.join(s.gen.newNode(gi), "auto-heal: replacement for "+name)
		})
	})
}

// action is a scheduled step of the simulation.
type action struct {
	when time.Time
	seq  int
	fn   func()
}

// actionQueue is a min-heap of actions by time, then scheduling order.
type actionQueue []action

func (q actionQueue) Len() int { return len(q) }
func (q actionQueue) Less(i, j int) bool {
	if !q[i].when.Equal(q[j].when) {
		return q[i].when.Before(q[j].when)
	}
	return q[i].seq < q[j].seq
}
func (q actionQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *actionQueue) Push(x any)   { *q = append(*q, x.(action)) }
func (q *actionQueue) Pop() any {
	old := *q
	a := old[len(old)-1]
	*q = old[:len(old)-1]
	return a
}
