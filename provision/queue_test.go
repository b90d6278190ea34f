package provision_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fleetdeck/fleetdeck/provision"
)

type waitResult struct {
	lock *provision.HostLock
	err  error
}

func startWait(ctx context.Context, tk *provision.QueueTicket) <-chan waitResult {
	ch := make(chan waitResult, 1)
	go func() {
		l, err := tk.Wait(ctx)
		ch <- waitResult{l, err}
	}()
	return ch
}

func mustStart(t *testing.T, name string, ch <-chan waitResult) *provision.HostLock {
	t.Helper()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("%s: %v", name, r.err)
		}
		return r.lock
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not start", name)
		return nil
	}
}

func mustWait(t *testing.T, name string, ch <-chan waitResult) {
	t.Helper()
	select {
	case r := <-ch:
		t.Fatalf("%s started (%v) but should be queued", name, r.err)
	case <-time.After(300 * time.Millisecond):
	}
}

// waitEntry waits until the queue shows run id matching cond.
func waitEntry(t *testing.T, q *provision.RunQueue, id string, cond func(provision.QueueEntry) bool) provision.QueueEntry {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		ch := q.Changed()
		for _, e := range q.Entries() {
			if e.RunID == id && cond(e) {
				return e
			}
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("queue entry %s: condition not met: %+v", id, q.Entries())
		}
	}
}

func TestRunQueueCapAndOrder(t *testing.T) {
	a := lockAgent(t)
	m := provision.NewLockManager(consoleClient(t, a), provision.LockConfig{LockDelay: -1})
	q := provision.NewRunQueue(m, provision.QueueConfig{Cap: 2})
	ctx := context.Background()

	var tickets []*provision.QueueTicket
	for i, id := range []string{"r1", "r2", "r3", "r4"} {
		tk, pos := q.Enqueue(id, targets("dc1", "node-"+id))
		if pos != i+1 {
			t.Errorf("%s position %d, want %d", id, pos, i+1)
		}
		tickets = append(tickets, tk)
	}
	// r4 waits first: the order is the queue's, not the callers'.
	w4 := startWait(ctx, tickets[3])
	w1 := startWait(ctx, tickets[0])
	w2 := startWait(ctx, tickets[1])
	w3 := startWait(ctx, tickets[2])
	l1 := mustStart(t, "r1", w1)
	l2 := mustStart(t, "r2", w2)
	mustWait(t, "r3", w3)
	mustWait(t, "r4", w4)
	e := waitEntry(t, q, "r3", func(e provision.QueueEntry) bool { return e.Position == 1 })
	if !strings.Contains(e.Reason, "free slot") || !strings.Contains(e.Reason, "cap 2") {
		t.Errorf("r3 reason %q", e.Reason)
	}
	if p := tickets[3].Position(); p != 2 {
		t.Errorf("r4 position %d", p)
	}
	if l1 == nil || l2 == nil {
		t.Fatal("no locks")
	}
	if err := tickets[0].Done(ctx); err != nil {
		t.Fatal(err)
	}
	mustStart(t, "r3", w3)
	mustWait(t, "r4", w4)
	if err := tickets[1].Done(ctx); err != nil {
		t.Fatal(err)
	}
	mustStart(t, "r4", w4)
	for _, tk := range tickets {
		if err := tk.Done(ctx); err != nil {
			t.Error(err)
		}
	}
	if n := len(q.Entries()); n != 0 {
		t.Errorf("%d entries left", n)
	}
	if held, err := m.Held(ctx); err != nil || len(held) != 0 {
		t.Errorf("locks left: %v %v", held, err)
	}
}

func TestRunQueueBlockedByLocksSaysWho(t *testing.T) {
	a := lockAgent(t)
	other := provision.NewLockManager(consoleClient(t, a), provision.LockConfig{User: "bob", LockDelay: -1})
	m := provision.NewLockManager(consoleClient(t, a), provision.LockConfig{User: "alice", LockDelay: -1})
	q := provision.NewRunQueue(m, provision.QueueConfig{Cap: 4, Retry: 200 * time.Millisecond})
	ctx := context.Background()

	// Another console runs on web-1.
	held, err := other.Acquire(ctx, "run-bob", targets("dc1", "web-1"))
	if err != nil {
		t.Fatal(err)
	}
	t1, _ := q.Enqueue("r1", targets("dc1", "web-1", "web-2"))
	t2, _ := q.Enqueue("r2", targets("dc1", "web-3"))
	w1 := startWait(ctx, t1)
	w2 := startWait(ctx, t2)
	// r2 is not held up behind r1.
	mustStart(t, "r2", w2)
	e := waitEntry(t, q, "r1", func(e provision.QueueEntry) bool { return e.Reason != "" && e.State == provision.QueueWaiting })
	if !strings.Contains(e.Reason, "web-1.dc1 by bob@") || !strings.Contains(e.Reason, "run run-bob") {
		t.Errorf("r1 reason %q", e.Reason)
	}
	if t1.Reason() != e.Reason && !strings.Contains(t1.Reason(), "bob") {
		t.Errorf("ticket reason %q", t1.Reason())
	}
	mustWait(t, "r1", w1)

	// A third run on the same hosts gives up when its context ends.
	t3, _ := q.Enqueue("r3", targets("dc1", "web-1"))
	cctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	_, err = t3.Wait(cctx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("r3 Wait: %v", err)
	}
	for _, e := range q.Entries() {
		if e.RunID == "r3" {
			t.Error("r3 still queued after its context ended")
		}
	}

	// bob's run ends: r1 starts at its next retry.
	release(t, held)
	mustStart(t, "r1", w1)
	for _, tk := range []*provision.QueueTicket{t1, t2, t3} {
		if err := tk.Done(ctx); err != nil {
			t.Error(err)
		}
	}
	if _, err := t1.Wait(ctx); err == nil {
		t.Error("a used ticket waited again")
	}
}

// TestRunQueueLocalRunsExclude: two runs of the same console on the same
// host: the second waits for the first, and starts as soon as it is done.
func TestRunQueueLocalRunsExclude(t *testing.T) {
	a := lockAgent(t)
	m := provision.NewLockManager(consoleClient(t, a), provision.LockConfig{User: "alice", LockDelay: -1})
	// A long retry: the wake-up must come from Done, not from the timer.
	q := provision.NewRunQueue(m, provision.QueueConfig{Cap: 4, Retry: time.Minute})
	ctx := context.Background()
	t1, _ := q.Enqueue("r1", targets("dc1", "web-1"))
	t2, _ := q.Enqueue("r2", targets("dc1", "web-1", "web-2"))
	mustStart(t, "r1", startWait(ctx, t1))
	w2 := startWait(ctx, t2)
	waitEntry(t, q, "r2", func(e provision.QueueEntry) bool { return strings.Contains(e.Reason, "run r1") })
	if err := t1.Done(ctx); err != nil {
		t.Fatal(err)
	}
	mustStart(t, "r2", w2)
	if err := t2.Done(ctx); err != nil {
		t.Fatal(err)
	}
}
