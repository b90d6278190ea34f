package fleet

import (
	"context"
	"sync"
	"time"
)

// Feed is what consumers of the live fleet (the console, SSH sessions)
// need: the current snapshot, and a way to wait for a newer one. Waiting
// returns only the newest snapshot, so a slow reader skips intermediate
// versions instead of queueing them.
type Feed interface {
	// Current returns the latest snapshot; never nil.
	Current() *Snapshot
	// Next blocks until a snapshot with a Version greater than after is
	// published, and returns the newest one, or ctx's error.
	Next(ctx context.Context, after uint64) (*Snapshot, error)
}

// Publisher is a Feed that holds the latest snapshot and wakes waiters when
// a new one is published. The Watcher publishes through one; tests and
// other producers can use it directly. The zero value is not usable: use
// NewPublisher.
type Publisher struct {
	mu      sync.Mutex // guards cur and changed
	cur     *Snapshot
	changed chan struct{}
}

// NewPublisher returns a Publisher holding initial (an empty snapshot when
// initial is nil).
func NewPublisher(initial *Snapshot) *Publisher {
	if initial == nil {
		initial = NewSnapshot(0, time.Time{}, nil, nil, nil)
	}
	return &Publisher{cur: initial, changed: make(chan struct{})}
}

// Publish makes s the current snapshot and wakes every waiter.
func (p *Publisher) Publish(s *Snapshot) {
	p.mu.Lock()
	p.cur = s
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
}

// Current implements Feed.
func (p *Publisher) Current() *Snapshot {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cur
}

// Next implements Feed.
func (p *Publisher) Next(ctx context.Context, after uint64) (*Snapshot, error) {
	for {
		p.mu.Lock()
		cur, ch := p.cur, p.changed
		p.mu.Unlock()
		if cur.Version > after {
			return cur, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}
