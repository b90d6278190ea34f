package provision

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Defaults of a RunQueue.
const (
	DefaultRunCap     = 4
	DefaultQueueRetry = 3 * time.Second
)

// QueueConfig configures a RunQueue. Zero values take the defaults.
type QueueConfig struct {
	// Cap is how many runs may run at once; default 4.
	Cap int
	// Retry is how often a run whose hosts another console holds tries
	// again; default 3s. Runs ended in this process wake the queue at once.
	Retry time.Duration
}

// QueueState is where an entry of the queue is.
type QueueState string

// Queue states.
const (
	QueueWaiting QueueState = "queued"
	QueueLocking QueueState = "locking" // taking its hosts' locks
	QueueRunning QueueState = "running"
)

// QueueEntry is one run in RunQueue.Entries.
type QueueEntry struct {
	RunID    string
	State    QueueState
	Position int    // 1-based place among the queued runs; 0 once running
	Reason   string // why it waits: the cap, or who holds its hosts
	Enqueued time.Time
	Targets  int
}

// lockAcquirer is what the queue needs of a LockManager.
type lockAcquirer interface {
	Acquire(ctx context.Context, runID string, targets []RunTarget) (*HostLock, error)
}

// RunQueue caps the runs of this process that run at once and makes the
// rest wait visibly, in order. A run leaves the queue when a slot is free
// and it holds the locks of all its hosts; a run whose hosts are held by
// another run stays queued with that run named as the reason, and does not
// hold up the runs behind it whose hosts are free (so a long run on one
// role never blocks a run on another — at the price that a large run can
// wait while smaller ones keep taking some of its hosts).
//
// The cap is per process (one console, or one fleetdeck serving many SSH
// sessions); host exclusion is fleet-wide through the locks.
type RunQueue struct {
	locks lockAcquirer
	cfg   QueueConfig

	mu      sync.Mutex
	queued  []*queueEntry // FIFO
	running []*queueEntry
	slots   int           // running + locking
	changed chan struct{} // closed and replaced on every change
}

type queueEntry struct {
	QueueEntry
	targets []RunTarget
	waiting bool      // a Wait is active for it
	retryAt time.Time // lock-blocked until then
	lock    *HostLock
	done    bool
}

// QueueTicket is one run's place in a RunQueue.
type QueueTicket struct {
	q *RunQueue
	e *queueEntry
}

// NewRunQueue returns a queue that locks hosts with locks.
func NewRunQueue(locks *LockManager, cfg QueueConfig) *RunQueue {
	return newRunQueue(locks, cfg)
}

func newRunQueue(locks lockAcquirer, cfg QueueConfig) *RunQueue {
	if cfg.Cap <= 0 {
		cfg.Cap = DefaultRunCap
	}
	if cfg.Retry <= 0 {
		cfg.Retry = DefaultQueueRetry
	}
	return &RunQueue{locks: locks, cfg: cfg, changed: make(chan struct{})}
}

// Locks returns the LockManager the queue takes host locks with (nil for a
// queue over another lock acquirer).
func (q *RunQueue) Locks() *LockManager {
	lm, _ := q.locks.(*LockManager)
	return lm
}

// Enqueue puts a run at the end of the queue and returns its ticket and
// 1-based position. Call Wait on the ticket right away (runs behind it wait
// for it), and Done when the run has ended or is abandoned.
func (q *RunQueue) Enqueue(runID string, targets []RunTarget) (*QueueTicket, int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	e := &queueEntry{
		QueueEntry: QueueEntry{RunID: runID, State: QueueWaiting, Enqueued: time.Now(), Targets: len(targets)},
		targets:    slices.Clone(targets),
	}
	q.queued = append(q.queued, e)
	q.notifyLocked()
	return &QueueTicket{q: q, e: e}, len(q.queued)
}

// Changed returns a channel closed at the next change of the queue (for a
// view to redraw); take a new one after each.
func (q *RunQueue) Changed() <-chan struct{} {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.changed
}

// Entries lists the running runs, then the queued ones in order.
func (q *RunQueue) Entries() []QueueEntry {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := make([]QueueEntry, 0, len(q.running)+len(q.queued))
	for _, e := range q.running {
		out = append(out, e.QueueEntry)
	}
	for i, e := range q.queued {
		qe := e.QueueEntry
		qe.Position = i + 1
		out = append(out, qe)
	}
	return out
}

// Position is the ticket's 1-based place among queued runs, 0 once it is
// running or gone.
func (t *QueueTicket) Position() int {
	t.q.mu.Lock()
	defer t.q.mu.Unlock()
	return slices.Index(t.q.queued, t.e) + 1
}

// Reason says why the run is still queued ("" when it is not).
func (t *QueueTicket) Reason() string {
	t.q.mu.Lock()
	defer t.q.mu.Unlock()
	return t.e.Reason
}

// Wait blocks until the run may start: a slot is free and all its hosts
// are locked. It returns the lock, which Done releases. A conflict keeps
// the run queued (the reason names the holders) and is retried; any other
// lock error ends the wait and removes the run from the queue, as does the
// end of ctx.
func (t *QueueTicket) Wait(ctx context.Context) (*HostLock, error) {
	q, e := t.q, t.e
	q.mu.Lock()
	if e.done || e.waiting || e.State != QueueWaiting {
		q.mu.Unlock()
		return nil, fmt.Errorf("waiting for run %s: ticket already used", e.RunID)
	}
	e.waiting = true
	for {
		now := time.Now()
		if q.mayTryLocked(e, now) {
			e.State, e.waiting = QueueLocking, false
			q.slots++
			q.notifyLocked()
			q.mu.Unlock()

			lock, err := q.locks.Acquire(ctx, e.RunID, e.targets)

			q.mu.Lock()
			var lc *LockConflict
			switch {
			case e.done: // Done was called while it was locking
				q.slots--
				q.notifyLocked()
				q.mu.Unlock()
				if lock != nil {
					err = errors.Join(err, lock.Release(context.WithoutCancel(ctx)))
				}
				return nil, fmt.Errorf("waiting for run %s to start: removed from the queue (%v)", e.RunID, err)
			case err == nil:
				e.State, e.Reason, e.lock = QueueRunning, "", lock
				q.queued = slices.DeleteFunc(q.queued, func(x *queueEntry) bool { return x == e })
				q.running = append(q.running, e)
				q.notifyLocked()
				q.mu.Unlock()
				return lock, nil
			case errors.As(err, &lc) && ctx.Err() == nil:
				q.slots--
				e.State, e.waiting = QueueWaiting, true
				e.Reason = "waiting for hosts: " + lc.Error()
				e.retryAt = time.Now().Add(q.cfg.Retry)
				q.notifyLocked()
			default:
				q.slots--
				q.removeLocked(e)
				q.mu.Unlock()
				return nil, fmt.Errorf("waiting for run %s to start: %w", e.RunID, err)
			}
			continue
		}
		if !e.retryAt.After(now) {
			if r := fmt.Sprintf("waiting for a free slot: %d runs running (cap %d)", q.slots, q.cfg.Cap); r != e.Reason {
				e.Reason = r
				q.notifyLocked()
			}
		}
		changed := q.changed
		var retry <-chan time.Time
		var timer *time.Timer
		if e.retryAt.After(now) {
			timer = time.NewTimer(e.retryAt.Sub(now))
			retry = timer.C
		}
		q.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-changed:
		case <-retry:
		}
		if timer != nil {
			timer.Stop()
		}
		q.mu.Lock()
		if ctx.Err() != nil {
			q.removeLocked(e)
			q.mu.Unlock()
			return nil, fmt.Errorf("waiting for run %s to start: %w", e.RunID, ctx.Err())
		}
		if e.done {
			q.mu.Unlock()
			return nil, fmt.Errorf("waiting for run %s to start: removed from the queue", e.RunID)
		}
	}
}

// mayTryLocked reports whether e may try to lock now: a slot is free, it
// is not backing off after a conflict, and no earlier queued run that may
// try is ahead of it (FIFO among those not blocked by locks). An earlier
// run whose Wait has not been called yet still goes first: Enqueue and Wait
// belong together (preview and confirm before Enqueue).
func (q *RunQueue) mayTryLocked(e *queueEntry, now time.Time) bool {
	if q.slots >= q.cfg.Cap || e.retryAt.After(now) {
		return false
	}
	for _, x := range q.queued {
		if x == e {
			return true
		}
		if x.State == QueueWaiting && !x.retryAt.After(now) {
			return false
		}
	}
	return false
}

// Done ends the run's part in the queue: a running run releases its hosts
// and its slot, a queued one leaves the queue. It is idempotent.
func (t *QueueTicket) Done(ctx context.Context) error {
	q, e := t.q, t.e
	q.mu.Lock()
	if e.done {
		q.mu.Unlock()
		return nil
	}
	lock := e.lock
	running := e.State == QueueRunning
	q.removeLocked(e)
	if running {
		q.slots--
	}
	q.mu.Unlock()
	if lock == nil {
		return nil
	}
	err := lock.Release(ctx)
	// Our hosts are free now: runs that were waiting for them retry at
	// once instead of at their next retry time.
	q.mu.Lock()
	for _, x := range q.queued {
		x.retryAt = time.Time{}
	}
	q.notifyLocked()
	q.mu.Unlock()
	return err
}

// removeLocked takes e out of the queue and the running list.
func (q *RunQueue) removeLocked(e *queueEntry) {
	e.done, e.waiting = true, false
	q.queued = slices.DeleteFunc(q.queued, func(x *queueEntry) bool { return x == e })
	q.running = slices.DeleteFunc(q.running, func(x *queueEntry) bool { return x == e })
	q.notifyLocked()
}

func (q *RunQueue) notifyLocked() {
	close(q.changed)
	q.changed = make(chan struct{})
}
