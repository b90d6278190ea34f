package deploy_test

import (
	"context"
	"testing"
	"time"

	"github.com/fleetdeck/fleetdeck/deploy"
	"github.com/fleetdeck/fleetdeck/internal/consul"
	"github.com/fleetdeck/fleetdeck/internal/consulagent"
)

// These tests run against a real Consul agent (skipped without one unless
// FLEETDECK_REQUIRE_CONSUL=1), with real faults: a destroyed session and
// a SIGSTOPped agent.

func startConsul(t *testing.T) (*consulagent.Agent, *consul.Client) {
	t.Helper()
	a := consulagent.StartTest(t, consulagent.Options{})
	c, err := a.Client()
	if err != nil {
		t.Fatal(err)
	}
	return a, consul.New(c, consul.Options{})
}

// testTTL is Consul's minimum, to keep the failovers short.
const testTTL = 10 * time.Second

func electConfig(c *consul.Client, id string) deploy.ElectConfig {
	return deploy.ElectConfig{Client: c, ID: id, TTL: testTTL, LockDelay: testTTL, Poll: 100 * time.Millisecond}
}

type elected struct {
	l   *deploy.Leadership
	err error
	at  time.Time
}

// electAsync runs Elect in the background; the result arrives on the
// channel. The test's cleanup cancels it and resigns what it won.
func electAsync(t *testing.T, cfg deploy.ElectConfig) <-chan elected {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	out := make(chan elected, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		l, err := deploy.Elect(ctx, cfg)
		out <- elected{l, err, time.Now()}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return out
}

func mustElect(t *testing.T, cfg deploy.ElectConfig) *deploy.Leadership {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := deploy.Elect(ctx, cfg)
	if err != nil {
		t.Fatalf("%s: Elect: %v", cfg.ID, err)
	}
	t.Cleanup(func() { _ = l.Resign(context.Background()) })
	return l
}

func waitLeader(t *testing.T, ch <-chan elected, within time.Duration) elected {
	t.Helper()
	select {
	case e := <-ch:
		if e.err != nil {
			t.Fatalf("Elect: %v", e.err)
		}
		t.Cleanup(func() { _ = e.l.Resign(context.Background()) })
		return e
	case <-time.After(within):
		t.Fatalf("no leader within %s", within)
	}
	return elected{}
}

func assertLeader(t *testing.T, c *consul.Client, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h, err := deploy.Leader(ctx, c, "", "")
	if err != nil || h == nil || h.ID != id || h.PID == 0 || h.Host == "" || h.Started.IsZero() || h.Session == "" {
		t.Fatalf("Leader: %+v, %v; want %s", h, err, id)
	}
}

// Two electors: exactly one leads, the other waits and sees who leads;
// the leader resigns and the other takes over at once (no lock-delay).
func TestOneLeaderAndResignation(t *testing.T) {
	t.Parallel()
	_, c := startConsul(t)
	a := mustElect(t, electConfig(c, "a"))
	bCh := electAsync(t, electConfig(c, "b"))
	select {
	case e := <-bCh:
		t.Fatalf("b leads too while a leads: %+v", e)
	case <-time.After(2 * time.Second):
	}
	assertLeader(t, c, "a")
	resigned := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Resign(ctx); err != nil {
		t.Fatalf("Resign: %v", err)
	}
	select {
	case <-a.Lost():
		if a.Err() != nil {
			t.Errorf("a resignation reports a loss: %v", a.Err())
		}
	default:
		t.Error("Lost is not closed after Resign")
	}
	b := waitLeader(t, bCh, 5*time.Second)
	t.Logf("failover after a resignation: %s", b.at.Sub(resigned))
	assertLeader(t, c, "b")
}

// The leader's session is destroyed (its process gone, an operator):
// Lost fires at its next renewal, before the lock-delay lets the other
// lead, and the other leads after it.
func TestSessionDestroyedFailover(t *testing.T) {
	t.Parallel()
	_, c := startConsul(t)
	a := mustElect(t, electConfig(c, "a"))
	bCh := electAsync(t, electConfig(c, "b"))
	time.Sleep(500 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	destroyed := time.Now()
	if err := c.DestroySession(ctx, consul.Query{}, a.Session()); err != nil {
		t.Fatal(err)
	}
	var lostAt time.Time
	select {
	case <-a.Lost():
		lostAt = time.Now()
	case <-time.After(testTTL / 2):
		t.Fatal("Lost did not fire within TTL/2 of the session's destruction")
	}
	if a.Err() == nil {
		t.Error("Err is nil after a loss")
	}
	b := waitLeader(t, bCh, 2*testTTL)
	if !lostAt.Before(b.at) {
		t.Errorf("b led at %s, before a saw the loss at %s", b.at, lostAt)
	}
	t.Logf("session destroyed: a lost after %s, b leads after %s (lock-delay %s); %v",
		lostAt.Sub(destroyed), b.at.Sub(destroyed), testTTL, a.Err())
	assertLeader(t, c, "b")
}

// Consul frozen (SIGSTOP) under the leader: no renewal succeeds, Lost
// fires at TTL/2, well before the session could expire; once Consul is
// back, the stale leader cleans up and the other leads.
func TestFrozenConsulLosesLeadershipBeforeTTL(t *testing.T) {
	t.Parallel()
	ag, c := startConsul(t)
	a := mustElect(t, electConfig(c, "a"))
	bCh := electAsync(t, electConfig(c, "b"))
	time.Sleep(500 * time.Millisecond)
	frozen := time.Now()
	thaw := ag.Freeze(t)
	var lostAt time.Time
	select {
	case <-a.Lost():
		lostAt = time.Now()
	case <-time.After(testTTL):
		thaw()
		t.Fatal("Lost did not fire within the TTL of a frozen Consul")
	}
	if d := lostAt.Sub(frozen); d > testTTL/2+testTTL/5 {
		t.Errorf("Lost fired %s after the freeze; want ≤ TTL/2 after the last renewal", d)
	}
	select {
	case e := <-bCh:
		t.Fatalf("b leads while Consul is frozen: %+v", e)
	default:
	}
	thaw()
	thawed := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := a.Resign(ctx); err != nil {
		t.Logf("Resign after the loss: %v", err)
	}
	b := waitLeader(t, bCh, 2*testTTL)
	t.Logf("frozen Consul: a lost after %s (%v); after the thaw and a's cleanup b leads in %s",
		lostAt.Sub(frozen), a.Err(), b.at.Sub(thawed))
	assertLeader(t, c, "b")
}
