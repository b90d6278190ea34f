// Package deploy is the deployment server's core: its leadership (one
// leader per datacenter through a Consul lock) and its state in that
// datacenter's KV store (stage records, holds, pause, breaker, decisions),
// so that a new leader continues exactly where the old one stopped.
package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/fleetdeck/fleetdeck/internal/consul"
)

// DefaultPrefix is where the deployment server keeps its state in each
// datacenter's KV store; the leader lock is DefaultPrefix + "leader".
const DefaultPrefix = "fleetdeck/provisioner/"

// The leadership numbers, as consul-esm hardened them (a stale leader
// must stop before another can lead):
//
//   - the session TTL is DefaultTTL (15 s); Consul never invalidates a
//     session before its TTL since the last renewal it received (in
//     practice it waits twice as long);
//   - the leader renews every TTL/5 (3 s), each attempt with a deadline no
//     later than the moment leadership counts as lost;
//   - leadership counts as lost (Lost is closed) when no renewal has
//     succeeded for TTL/2 (7.5 s) since it was sent, or at once when
//     Consul says the session is gone (destroyed, invalidated);
//   - the lock-delay is the TTL (15 s by default): after the
//     session is invalidated, Consul refuses the key to everyone for that
//     long.
//
// So if the last confirmed renewal was sent at s, the stale leader stops
// at s+TTL/2 at the latest, while the earliest another can acquire is
// s+TTL (invalidation) + TTL (lock-delay) = s+2·TTL: a margin of 1.5 TTL
// for a slow stop. A session destroyed behind the leader's back is seen
// at its next renewal (≤ TTL/5 later), well inside the lock-delay.
// A resignation releases the key (not an invalidation: no lock-delay),
// so the standby takes over at once.
const DefaultTTL = 15 * time.Second

// Holder is who holds the leader lock: the lock key's value.
type Holder struct {
	Host    string    `json:"host"`
	PID     int       `json:"pid"`
	Started time.Time `json:"started"`
	// ID tells instances on one host apart (tests run several electors
	// in one process); by default host:pid.
	ID string `json:"id"`
	// Session is the Consul session holding the lock (filled in by
	// Leader from the key, not stored).
	Session string `json:"-"`
}

// ElectConfig configures Elect.
type ElectConfig struct {
	Client *consul.Client
	// Datacenter whose leader to become; "" for the agent's own. The
	// session is created in it (on the agent's node there: "" — in
	// another datacenter, name a node of that datacenter in Node).
	Datacenter string
	Node       string
	// Prefix of the state (default DefaultPrefix); the lock is
	// Prefix+"leader".
	Prefix string
	// TTL of the session (Consul's minimum is 10 s; default DefaultTTL)
	// and LockDelay (default: the TTL; negative: none, for tests).
	TTL       time.Duration
	LockDelay time.Duration
	// ID identifies this instance in Holder (default host:pid).
	ID string
	// Poll is how often a standby retries while the key is free but
	// refused (a lock-delay); default 500 ms.
	Poll time.Duration
}

func (c *ElectConfig) defaults() error {
	if c.Client == nil {
		return errors.New("deploy: ElectConfig.Client is nil")
	}
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if !strings.HasSuffix(c.Prefix, "/") {
		c.Prefix += "/"
	}
	if c.TTL <= 0 {
		c.TTL = DefaultTTL
	}
	if c.TTL < 10*time.Second {
		return fmt.Errorf("deploy: session TTL %s is below Consul's minimum of 10s", c.TTL)
	}
	switch {
	case c.LockDelay == 0:
		// The lock-delay follows the TTL (a session_ttl of 10 s must
		// not keep a 15 s delay: the margin above is in TTLs).
		c.LockDelay = c.TTL
	case c.LockDelay < 0:
		c.LockDelay = time.Millisecond
	}
	if c.Poll <= 0 {
		c.Poll = 500 * time.Millisecond
	}
	return nil
}

func (c *ElectConfig) renewEvery() time.Duration { return c.TTL / 5 }
func (c *ElectConfig) lostAfter() time.Duration  { return c.TTL / 2 }

// LeaderKey is the lock key under prefix.
func LeaderKey(prefix string) string {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	return prefix + "leader"
}

// Leadership is this instance leading its datacenter.
type Leadership struct {
	cfg     ElectConfig
	q       consul.Query
	key     string
	session string
	holder  Holder

	stopCtx context.Context
	stop    context.CancelFunc
	done    chan struct{} // closed when the renewer returns

	lost     chan struct{}
	lostOnce sync.Once
	lostErr  error // written before lost is closed

	mu     sync.Mutex
	lastOK time.Time
}

// Elect blocks until this instance leads cfg.Datacenter or ctx ends.
// While waiting it keeps its session alive and watches the key with
// blocking queries (bounded to TTL/5 so renewals keep their pace).
func Elect(ctx context.Context, cfg ElectConfig) (*Leadership, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	h := Holder{Host: host, PID: os.Getpid(), ID: cfg.ID}
	if h.ID == "" {
		h.ID = fmt.Sprintf("%s:%d", host, h.PID)
	}
	q := consul.Query{Datacenter: cfg.Datacenter, Timeout: cfg.renewEvery()}
	key := LeaderKey(cfg.Prefix)
	var session string
	var sessionOK time.Time
	destroy := func() {
		if session == "" {
			return
		}
		// ctx may be over: destroying is cleanup with its own deadline.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.renewEvery())
		_ = cfg.Client.DestroySession(dctx, q, session)
		cancel()
		session = ""
	}
	var index uint64
	for {
		if err := ctx.Err(); err != nil {
			destroy()
			return nil, err
		}
		if session == "" {
			sent := time.Now()
			id, err := cfg.Client.CreateSession(ctx, q, consul.Session{Name: "fleetdeck provisioner leader " + h.ID, Node: cfg.Node, TTL: cfg.TTL, LockDelay: cfg.LockDelay})
			if err != nil {
				if !sleep(ctx, cfg.Poll) {
					return nil, ctx.Err()
				}
				continue
			}
			session, sessionOK = id, sent
		}
		// Acquiring is a fresh start: the renewal that counts is the one
		// just before it, so renew first when the session is older than
		// one renewal period.
		if time.Since(sessionOK) >= cfg.renewEvery() {
			sent := time.Now()
			gone, err := cfg.Client.RenewSession(ctx, q, session)
			switch {
			case err == nil && gone:
				session = ""
				continue
			case err == nil:
				sessionOK = sent
			}
		}
		if time.Since(sessionOK) < cfg.lostAfter() {
			h.Started = time.Now().UTC()
			value, _ := json.Marshal(h)
			sent := sessionOK
			ok, err := cfg.Client.KVAcquire(ctx, q, key, value, session)
			if err == nil && ok {
				return lead(cfg, q, key, session, h, sent), nil
			}
		}
		// Wait for the key to change (released, deleted) but no longer
		// than a renewal period; a free key refused for its lock-delay
		// is polled instead, a blocking query would not return.
		p, meta, err := cfg.Client.KVGet(ctx, key, consul.Query{Datacenter: cfg.Datacenter, WaitIndex: max(index, 1), WaitTime: cfg.renewEvery()})
		switch {
		case err != nil:
			if !sleep(ctx, cfg.Poll) {
				destroy()
				return nil, ctx.Err()
			}
		case p == nil || p.Session == "":
			index = consul.NextIndex(index, meta.LastIndex)
			if !sleep(ctx, cfg.Poll) {
				destroy()
				return nil, ctx.Err()
			}
		default:
			index = consul.NextIndex(index, meta.LastIndex)
		}
	}
}

// sleep waits d or until ctx ends; false when ctx ended.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func lead(cfg ElectConfig, q consul.Query, key, session string, h Holder, lastOK time.Time) *Leadership {
	stopCtx, stop := context.WithCancel(context.Background())
	h.Session = session
	l := &Leadership{cfg: cfg, q: q, key: key, session: session, holder: h, stopCtx: stopCtx, stop: stop,
		done: make(chan struct{}), lost: make(chan struct{}), lastOK: lastOK}
	go l.renew()
	return l
}

// Holder is who this leadership is (with its session).
func (l *Leadership) Holder() Holder { return l.holder }

// Session is the Consul session holding the lock: writes of the state
// can be fenced with it (Store.Fence), so a leader that lost the lock
// cannot write any more.
func (l *Leadership) Session() string { return l.session }

// Lost is closed when leadership ends: lost (Err says why: no renewal
// succeeded for TTL/2, or Consul says the session is gone) or resigned
// (Err is nil). Stop launching and cancel runs at once: after a loss
// another instance may lead from TTL + lock-delay after the last renewal.
func (l *Leadership) Lost() <-chan struct{} { return l.lost }

// Err says why leadership was lost (nil before Lost is closed or after a
// Resign).
func (l *Leadership) Err() error {
	select {
	case <-l.lost:
		return l.lostErr
	default:
		return nil
	}
}

// Expires is when the session may expire at the earliest (the last
// confirmed renewal plus the TTL): all work must be over by then.
func (l *Leadership) Expires() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastOK.Add(l.cfg.TTL)
}

func (l *Leadership) markLost(err error) {
	l.lostOnce.Do(func() {
		l.lostErr = err
		close(l.lost)
	})
}

// renew keeps the session alive until Resign. Each attempt has a deadline
// never past the moment leadership counts as lost, so a hung request (a
// frozen Consul) cannot hide the loss.
func (l *Leadership) renew() {
	defer close(l.done)
	cfg := l.cfg
	next := time.Now().Add(cfg.renewEvery())
	var lastErr error
	for {
		l.mu.Lock()
		lostAt := l.lastOK.Add(cfg.lostAfter())
		l.mu.Unlock()
		wait := min(time.Until(next), time.Until(lostAt))
		t := time.NewTimer(max(wait, 0))
		select {
		case <-l.stopCtx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if !time.Now().Before(lostAt) {
			err := fmt.Errorf("leader session not renewed for %s (half its TTL of %s)", cfg.lostAfter(), cfg.TTL)
			if lastErr != nil {
				err = fmt.Errorf("%w: %w", err, lastErr)
			}
			l.markLost(err)
			return
		}
		sent := time.Now()
		dl := sent.Add(cfg.renewEvery())
		if dl.After(lostAt) {
			dl = lostAt
		}
		ctx, cancel := context.WithDeadline(l.stopCtx, dl)
		gone, err := cfg.Client.RenewSession(ctx, consul.Query{Datacenter: cfg.Datacenter, Timeout: cfg.renewEvery()}, l.session)
		cancel()
		if l.stopCtx.Err() != nil {
			return
		}
		switch {
		case err == nil && gone:
			l.markLost(errors.New("leader session is gone (Consul no longer knows it: destroyed or invalidated)"))
			return
		case err == nil:
			l.mu.Lock()
			l.lastOK = sent
			l.mu.Unlock()
			lastErr = nil
			next = sent.Add(cfg.renewEvery())
		default:
			// Not lost until lostAt: try again soon.
			lastErr = err
			next = time.Now().Add(min(cfg.renewEvery(), time.Second))
		}
	}
}

// Resign gives leadership up: the renewer stops, the key is released (no
// lock-delay: a standby takes over at once) and the session destroyed.
// After a lost leadership it only cleans up.
func (l *Leadership) Resign(ctx context.Context) error {
	l.stop()
	<-l.done
	l.markLost(nil) // Lost also fires on a resignation: whoever waits on it stops
	q := consul.Query{Datacenter: l.cfg.Datacenter, Timeout: l.cfg.renewEvery()}
	_, relErr := l.cfg.Client.KVRelease(ctx, q, l.key, nil, l.session)
	desErr := l.cfg.Client.DestroySession(ctx, q, l.session)
	return errors.Join(relErr, desErr)
}

// Leader tells who leads datacenter dc (nil, nil: nobody) under prefix.
func Leader(ctx context.Context, c *consul.Client, dc, prefix string) (*Holder, error) {
	p, _, err := c.KVGet(ctx, LeaderKey(prefix), consul.Query{Datacenter: dc, Timeout: 10 * time.Second})
	if err != nil {
		return nil, err
	}
	if p == nil || p.Session == "" {
		return nil, nil
	}
	var h Holder
	if err := json.Unmarshal(p.Value, &h); err != nil {
		return nil, fmt.Errorf("leader key %s: %w", p.Key, err)
	}
	h.Session = p.Session
	return &h, nil
}
