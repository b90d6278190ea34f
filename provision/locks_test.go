package provision_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/fleetdeck/fleetdeck/internal/consulagent"
	"github.com/fleetdeck/fleetdeck/provision"
)

// lockAgent starts a Consul agent and waits until its own node is in the
// catalog: sessions are tied to it.
func lockAgent(t *testing.T) *consulagent.Agent {
	t.Helper()
	a := consulagent.StartTest(t, consulagent.Options{})
	c := consoleClient(t, a)
	deadline := time.Now().Add(30 * time.Second)
	for {
		n, _, err := c.Catalog().Node(a.NodeName(), nil)
		if err == nil && n != nil && n.Node != nil {
			return a
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent node %s not registered: %v", a.NodeName(), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// consoleClient is a separate api client, as a second console would have.
func consoleClient(t *testing.T, a *consulagent.Agent) *api.Client {
	t.Helper()
	c, err := a.Client()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func targets(dc string, nodes ...string) []provision.RunTarget {
	out := make([]provision.RunTarget, 0, len(nodes))
	for _, n := range nodes {
		out = append(out, provision.RunTarget{Host: n, Node: n, Datacenter: dc})
	}
	return out
}

func release(t *testing.T, l *provision.HostLock) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := l.Release(ctx); err != nil {
		t.Errorf("Release: %v", err)
	}
}

// lockSession returns the session holding key ("" if none or no key).
func lockSession(t *testing.T, c *api.Client, key string) string {
	t.Helper()
	kv, _, err := c.KV().Get(key, nil)
	if err != nil {
		t.Fatal(err)
	}
	if kv == nil {
		return ""
	}
	return kv.Session
}

func TestLockContentionBetweenTwoConsoles(t *testing.T) {
	a := lockAgent(t)
	c1, c2 := consoleClient(t, a), consoleClient(t, a)
	ctx := context.Background()
	alice := provision.NewLockManager(c1, provision.LockConfig{User: "alice", LockDelay: -1})
	bob := provision.NewLockManager(c2, provision.LockConfig{User: "bob", LockDelay: -1})

	l1, err := alice.Acquire(ctx, "run-A", targets("dc1", "web-1", "web-2"))
	if err != nil {
		t.Fatal(err)
	}
	// The lock value names the holder.
	kv, _, err := c2.KV().Get("fleetdeck/locks/dc1/web-2", nil)
	if err != nil || kv == nil {
		t.Fatalf("lock key: %v %v", kv, err)
	}
	var holder provision.LockHolder
	if err := json.Unmarshal(kv.Value, &holder); err != nil {
		t.Fatal(err)
	}
	if holder.User != "alice" || holder.RunID != "run-A" || holder.PID != os.Getpid() || holder.Host == "" || holder.Since.IsZero() || kv.Session != l1.Session() {
		t.Errorf("holder %+v session %s", holder, kv.Session)
	}
	se, _, err := c2.Session().Info(l1.Session(), nil)
	if err != nil || se == nil || se.Behavior != api.SessionBehaviorDelete || se.TTL != "15s" {
		t.Fatalf("session %+v %v", se, err)
	}

	// Partial overlap: bob gets a conflict naming alice and nothing at all.
	_, err = bob.Acquire(ctx, "run-B", targets("dc1", "web-2", "web-3", "db-1"))
	var lc *provision.LockConflict
	if !errors.As(err, &lc) {
		t.Fatalf("overlapping acquire: %v, want a LockConflict", err)
	}
	if len(lc.Held) != 1 || lc.Held[0].Target.Node != "web-2" || lc.Held[0].Holder.User != "alice" || lc.Held[0].Holder.RunID != "run-A" {
		t.Errorf("conflict %+v", lc.Held)
	}
	if msg := err.Error(); !strings.Contains(msg, "web-2.dc1 by alice@") || !strings.Contains(msg, "run run-A") {
		t.Errorf("conflict message %q", msg)
	}
	for _, n := range []string{"web-3", "db-1"} {
		if s := lockSession(t, c1, "fleetdeck/locks/dc1/"+n); s != "" {
			t.Errorf("%s is held (%s) after a failed acquire", n, s)
		}
	}
	// bob's failed session is gone too.
	sessions, _, err := c1.Session().List(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(sessions) != 1 || sessions[0].ID != l1.Session() {
		t.Errorf("sessions after the failed acquire: %d", len(sessions))
	}
	// Held lists alice's hosts.
	held, err := bob.Held(ctx)
	if err != nil || len(held) != 2 {
		t.Errorf("Held: %+v %v", held, err)
	}

	// Alice releases: bob gets them right away (no lock-delay after a
	// clean release, even with Consul's default 15s).
	release(t, l1)
	if s := lockSession(t, c1, "fleetdeck/locks/dc1/web-1"); s != "" {
		t.Errorf("web-1 still held after Release")
	}
	strict := provision.NewLockManager(c2, provision.LockConfig{User: "bob"})
	l2, err := strict.Acquire(ctx, "run-B", targets("dc1", "web-2", "web-3", "db-1", "web-3"))
	if err != nil {
		t.Fatalf("acquire after release: %v", err)
	}
	if got := len(l2.Targets()); got != 3 {
		t.Errorf("duplicates not merged: %d targets", got)
	}
	release(t, l2)
	release(t, l2) // idempotent
	keys, _, err := c1.KV().Keys("fleetdeck/locks/", "", nil)
	if err != nil || len(keys) != 0 {
		t.Errorf("keys left after release: %v %v", keys, err)
	}
}

// TestLockManyHostsAllOrNothing: more hosts than one transaction takes;
// a conflict in a later batch releases the earlier ones.
func TestLockManyHostsAllOrNothing(t *testing.T) {
	a := lockAgent(t)
	c1, c2 := consoleClient(t, a), consoleClient(t, a)
	ctx := context.Background()
	var nodes []string
	for i := range 150 {
		nodes = append(nodes, fmt.Sprintf("n%03d", i))
	}
	m1 := provision.NewLockManager(c1, provision.LockConfig{User: "alice", Prefix: "/team-a/"})
	m2 := provision.NewLockManager(c2, provision.LockConfig{User: "bob", Prefix: "team-a"})
	blocker, err := m1.Acquire(ctx, "run-A", targets("dc1", "n140"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = m2.Acquire(ctx, "run-B", targets("dc1", nodes...))
	var lc *provision.LockConflict
	if !errors.As(err, &lc) || len(lc.Held) != 1 || lc.Held[0].Target.Node != "n140" {
		t.Fatalf("acquire: %v", err)
	}
	keys, _, err := c1.KV().Keys("team-a/locks/dc1/", "", nil)
	if err != nil || len(keys) != 1 {
		t.Fatalf("after a late conflict, keys %v (%v), want only n140", keys, err)
	}
	release(t, blocker)
	l, err := m2.Acquire(ctx, "run-B", targets("dc1", nodes...))
	if err != nil {
		t.Fatal(err)
	}
	held, err := m1.Held(ctx)
	if err != nil || len(held) != 150 || held[0].Holder.User != "bob" {
		t.Errorf("held %d %v", len(held), err)
	}
	release(t, l)
	if held, _ := m1.Held(ctx); len(held) != 0 {
		t.Errorf("held after release: %d", len(held))
	}
}

// TestLockLostWhenSessionInvalidated: a session destroyed behind the
// console's back (an operator, a failed agent) closes Lost.
func TestLockLostWhenSessionInvalidated(t *testing.T) {
	a := lockAgent(t)
	c := consoleClient(t, a)
	m := provision.NewLockManager(c, provision.LockConfig{TTL: 10 * time.Second, LockDelay: -1})
	l, err := m.Acquire(context.Background(), "run-A", targets("dc1", "web-1"))
	if err != nil {
		t.Fatal(err)
	}
	if l.Err() != nil {
		t.Fatal("lost at once")
	}
	if _, err := c.Session().Destroy(l.Session(), nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-l.Lost():
		if l.Err() == nil {
			t.Error("Lost closed without Err")
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Lost not closed after the session was destroyed")
	}
	release(t, l)
}

const envLockChild = "FLEETDECK_TEST_LOCK_CHILD"

// TestLockChild is the child of TestLockDeadConsoleFreedByTTL: a console
// that takes a lock and is then killed. Without the env it does nothing.
func TestLockChild(t *testing.T) {
	addr := os.Getenv(envLockChild)
	if addr == "" {
		return
	}
	cfg := api.DefaultConfig()
	cfg.Address, cfg.Scheme, cfg.Token, cfg.TokenFile = addr, "http", "", ""
	c, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m := provision.NewLockManager(c, provision.LockConfig{User: "crashy", TTL: 10 * time.Second, LockDelay: -1})
	if _, err := m.Acquire(context.Background(), "run-dead", targets("dc1", "web-1", "web-2")); err != nil {
		t.Fatal(err)
	}
	fmt.Println("LOCKED")
	time.Sleep(time.Hour)
}

func TestLockDeadConsoleFreedByTTL(t *testing.T) {
	a := lockAgent(t)
	c := consoleClient(t, a)
	child, line := startChildConsole(t, "TestLockChild", envLockChild+"="+a.HTTPAddr())
	if strings.TrimSpace(line) != "LOCKED" {
		_ = child.Process.Kill()
		_ = child.Wait()
		t.Fatalf("child: %q", line)
	}
	// The console dies without releasing anything.
	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()
	killed := time.Now()

	m := provision.NewLockManager(c, provision.LockConfig{User: "rescuer"})
	ctx := context.Background()
	_, err := m.Acquire(ctx, "run-next", targets("dc1", "web-2"))
	var lc *provision.LockConflict
	if !errors.As(err, &lc) || lc.Held[0].Holder.User != "crashy" || lc.Held[0].Holder.PID != child.Process.Pid {
		t.Fatalf("right after the kill: %v, want a conflict naming the dead console", err)
	}
	// Consul invalidates the session within 2×TTL and deletes its keys.
	deadline := time.Now().Add(45 * time.Second)
	for {
		l, err := m.Acquire(ctx, "run-next", targets("dc1", "web-1", "web-2"))
		if err == nil {
			t.Logf("hosts free %v after the holder died", time.Since(killed).Round(time.Second))
			release(t, l)
			return
		}
		if !errors.As(err, &lc) {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("dead console's lock not released by its session TTL: %v", err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// wanAgents starts two WAN-joined datacenters, dc1 and dc2, each a real
// Consul server agent.
func wanAgents(t *testing.T) (dc1, dc2 *consulagent.Agent) {
	t.Helper()
	dc1 = lockAgent(t)
	dc2 = consulagent.StartTest(t, consulagent.Options{Datacenter: "dc2", JoinWAN: []string{dc1.SerfWANAddr()}})
	return dc1, dc2
}

// Two consoles on agents of different datacenters lock the same host: the
// lock lives in the host's own datacenter, so exactly one of them wins —
// every time. A run on both datacenters holds a session in each, all or
// none.
func TestLockPerDatacenterAcrossWAN(t *testing.T) {
	dc1, dc2 := wanAgents(t)
	c1, c2 := consoleClient(t, dc1), consoleClient(t, dc2)
	ctx := context.Background()
	alice := provision.NewLockManager(c1, provision.LockConfig{User: "alice", LockDelay: -1, TTL: 10 * time.Second})
	bob := provision.NewLockManager(c2, provision.LockConfig{User: "bob", LockDelay: -1, TTL: 10 * time.Second})

	both := append(targets("dc1", "web-1"), targets("dc2", "web-1")...)
	l, err := alice.Acquire(ctx, "run-A", both)
	if err != nil {
		t.Fatal(err)
	}
	sessions := l.Sessions()
	if len(sessions) != 2 || sessions["dc1"] == "" || sessions["dc2"] == "" {
		t.Fatalf("sessions %v, want one in dc1 and one in dc2", sessions)
	}
	// dc2's lock is in dc2's KV under the dc2 session, which lives in dc2
	// on a dc2 node and has no checks; dc1's KV does not have it.
	if s := lockSession(t, c2, "fleetdeck/locks/dc2/web-1"); s != sessions["dc2"] {
		t.Errorf("dc2 key held by %q, want %s", s, sessions["dc2"])
	}
	if s := lockSession(t, c1, "fleetdeck/locks/dc2/web-1"); s != "" {
		t.Errorf("dc1's KV holds dc2's lock (%s)", s)
	}
	if s := lockSession(t, c1, "fleetdeck/locks/dc1/web-1"); s != sessions["dc1"] {
		t.Errorf("dc1 key held by %q", s)
	}
	se, _, err := c2.Session().Info(sessions["dc2"], nil)
	if err != nil || se == nil || se.Node != dc2.NodeName() || len(se.NodeChecks) != 0 || se.TTL != "10s" || se.Behavior != api.SessionBehaviorDelete {
		t.Errorf("dc2 session %+v (%v)", se, err)
	}
	se, _, err = c1.Session().Info(sessions["dc1"], nil)
	if err != nil || se == nil || se.Node != dc1.NodeName() || len(se.NodeChecks) != 0 {
		t.Errorf("dc1 session %+v (%v)", se, err)
	}

	// Bob, on dc2's agent, sees alice's dc2 lock.
	_, err = bob.Acquire(ctx, "run-B", targets("dc2", "web-1"))
	var lc *provision.LockConflict
	if !errors.As(err, &lc) || len(lc.Held) != 1 || lc.Held[0].Holder.User != "alice" {
		t.Fatalf("bob on dc2: %v, want a conflict naming alice", err)
	}
	// All or none: bob's free dc1 host is released when dc2's conflicts.
	_, err = bob.Acquire(ctx, "run-B", append(targets("dc1", "web-9"), targets("dc2", "web-1")...))
	if !errors.As(err, &lc) {
		t.Fatalf("bob on dc1+dc2: %v, want a conflict", err)
	}
	if s := lockSession(t, c1, "fleetdeck/locks/dc1/web-9"); s != "" {
		t.Errorf("dc1/web-9 still held after the failed acquire")
	}
	for _, c := range []*api.Client{c1, c2} {
		list, _, err := c.Session().List(nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range list {
			if strings.Contains(s.Name, "run-B") {
				t.Errorf("bob's failed session %s is left", s.ID)
			}
		}
	}
	held, err := bob.Held(ctx, "dc1", "dc2")
	if err != nil || len(held) != 2 || held[0].Target != (provision.RunTarget{Node: "web-1", Datacenter: "dc1"}) || held[1].Target.Datacenter != "dc2" {
		t.Errorf("Held(dc1, dc2) = %+v, %v", held, err)
	}
	release(t, l)
	for _, c := range []*api.Client{c1, c2} {
		if keys, _, err := c.KV().Keys("fleetdeck/locks/", "", nil); err != nil || len(keys) != 0 {
			t.Errorf("keys left after release: %v %v", keys, err)
		}
	}

	// The race: both consoles at once, one host of dc2, several rounds.
	for round := range 5 {
		type res struct {
			l   *provision.HostLock
			err error
		}
		ch := make(chan res, 2)
		for _, m := range []*provision.LockManager{alice, bob} {
			go func() {
				l, err := m.Acquire(ctx, fmt.Sprintf("race-%d", round), targets("dc2", "db-1"))
				ch <- res{l, err}
			}()
		}
		var won []*provision.HostLock
		for range 2 {
			r := <-ch
			if r.err == nil {
				won = append(won, r.l)
			} else if !errors.As(r.err, &lc) {
				t.Fatalf("round %d: %v", round, r.err)
			}
		}
		if len(won) != 1 {
			t.Fatalf("round %d: %d consoles hold dc2/db-1", round, len(won))
		}
		release(t, won[0])
	}
}

// A frozen Consul (SIGSTOP of the real agent) stops renewals: the lock is
// lost after half its TTL, well before Consul could expire it, and
// releasing it returns within its bound although Consul never answers;
// so does a release against a Consul that refuses connections.
func TestLockLostAndReleasedWhenConsulFrozenOrGone(t *testing.T) {
	a := lockAgent(t)
	c := consoleClient(t, a)
	ctx := context.Background()
	m := provision.NewLockManager(c, provision.LockConfig{TTL: 10 * time.Second, LockDelay: -1})
	l, err := m.Acquire(ctx, "run-A", targets("dc1", "web-1"))
	if err != nil {
		t.Fatal(err)
	}
	thaw := freeze(t, a)
	stopped := time.Now()
	select {
	case <-l.Lost():
	case <-time.After(time.Minute):
		t.Fatal("the lock was not lost with Consul frozen")
	}
	lost := time.Now()
	if err := l.Err(); err == nil || !strings.Contains(err.Error(), "not renewed") {
		t.Errorf("Err = %v", err)
	}
	if exp := l.Expires(); !lost.Before(exp) {
		t.Errorf("lost at %v, after the session may expire (%v)", lost, exp)
	}
	t.Logf("TTL 10s: SIGSTOP → lost %v; then %v left before the TTL since the last renewal ran out",
		lost.Sub(stopped).Round(time.Millisecond), time.Until(l.Expires()).Round(time.Millisecond))
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- l.Release(ctx) }()
	select {
	case err := <-done:
		t.Logf("Release with Consul frozen: %v (%v)", time.Since(start).Round(time.Millisecond), err)
	case <-time.After(time.Minute):
		t.Fatal("Release hangs with Consul frozen")
	}
	thaw()

	// Refused connections: the agent is gone.
	l, err = m.Acquire(ctx, "run-B", targets("dc1", "web-2"))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Kill(); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	go func() { done <- l.Release(ctx) }()
	select {
	case err := <-done:
		if err == nil {
			t.Error("Release against a dead Consul reported success")
		}
		t.Logf("Release with Consul refusing connections: %v (%v)", time.Since(start).Round(time.Millisecond), err)
	case <-time.After(time.Minute):
		t.Fatal("Release hangs with Consul gone")
	}
}

// Lock loss → run killed, measured against the TTL: a run whose task
// ignores SIGINT and SIGTERM (so only SIGKILL ends it) loses its lock to a
// frozen Consul and is cancelled by the lock's deadline with the default
// graces (5s + 3s), which CancelBy cuts short. FLEETDECK_TEST_LOCKLOSS_TRIALS
// repeats it for the figures.
func TestLockLostRunKilledBeforeTTL(t *testing.T) {
	trials := 1
	if n, err := strconv.Atoi(os.Getenv("FLEETDECK_TEST_LOCKLOSS_TRIALS")); err == nil && n > 0 {
		trials = n
	}
	marker := fmt.Sprintf("302.%d", os.Getpid()%100000+1)
	stubborn := `- hosts: all
  gather_facts: false
  tasks:
    - name: resists INT and TERM
      shell: trap '' INT TERM; sleep ` + marker + `
`
	r := rtRunner(t, map[string]string{"stubborn.yml": stubborn}, func(c *provision.RunnerConfig) {
		c.CancelGrace, c.TermGrace = 0, 0 // the defaults: 5s and 3s
	})
	inv := rtInventory(t, rtHost{name: "s1"}, rtHost{name: "s2"})
	const ttl = 10 * time.Second
	for trial := range trials {
		a := lockAgent(t)
		m := provision.NewLockManager(consoleClient(t, a), provision.LockConfig{TTL: ttl, LockDelay: -1})
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		l, err := m.Acquire(ctx, "run", targets("dc1", "s1", "s2"))
		if err != nil {
			t.Fatal(err)
		}
		plan, err := r.Preview(ctx, provision.RunSpec{Playbook: "stubborn", Inventory: inv})
		if err != nil {
			t.Fatal(err)
		}
		run, err := r.Start(ctx, plan)
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(time.Minute)
		for len(rtProcs(t, run.Pid(), "sleep "+marker)) < 2 {
			if time.Now().After(deadline) {
				t.Fatal("the sleeps did not start")
			}
			time.Sleep(50 * time.Millisecond)
		}
		thaw := freeze(t, a)
		<-l.Lost()
		lost := time.Now()
		expires := l.Expires()
		run.CancelBy(expires) // what the Manager does
		gone := waitGroupGone(t, run.Pid())
		res, err := run.Wait(ctx)
		if err != nil || !res.End.Canceled {
			t.Errorf("end %+v, %v", res.End, err)
		}
		last := expires.Add(-ttl) // the last renewal Consul confirmed
		t.Logf("trial %d, TTL %v: last renewal → lost %v, → group gone %v; %v before the TTL ran out (Consul expires at 2×TTL)",
			trial+1, ttl, lost.Sub(last).Round(time.Millisecond), gone.Sub(last).Round(time.Millisecond), expires.Sub(gone).Round(time.Millisecond))
		// Consul never expires a session before twice its TTL: by then
		// the run must be gone, however loaded the machine.
		if !gone.Before(last.Add(2 * ttl)) {
			t.Errorf("the run's processes outlived the session (gone %v after the last renewal)", gone.Sub(last))
		}
		thaw()
		release(t, l)
		cancel()
	}
}

// A conflict names every host another run holds, not only those of the
// transaction batch (64 keys) that stopped the acquire.
func TestLockConflictNamesEveryHeldHost(t *testing.T) {
	a := lockAgent(t)
	c := consoleClient(t, a)
	ctx := context.Background()
	var held, want []string
	for i := range 96 {
		held = append(held, fmt.Sprintf("h-%03d", i))
	}
	want = append([]string{"a-free"}, held...)
	alice := provision.NewLockManager(c, provision.LockConfig{User: "alice"})
	l, err := alice.Acquire(ctx, "run-A", targets("dc1", held...))
	if err != nil {
		t.Fatal(err)
	}
	defer release(t, l)
	bob := provision.NewLockManager(c, provision.LockConfig{User: "bob", LockDelay: -1})
	_, err = bob.Acquire(ctx, "run-B", targets("dc1", want...))
	var lc *provision.LockConflict
	if !errors.As(err, &lc) {
		t.Fatalf("acquire over held hosts: %v, want a LockConflict", err)
	}
	if len(lc.Held) != 96 {
		t.Errorf("the conflict names %d held hosts, want 96", len(lc.Held))
	}
	if msg := err.Error(); !strings.HasPrefix(msg, "96 hosts locked by other runs") {
		t.Errorf("conflict message %q", msg)
	}
	if s := lockSession(t, c, "fleetdeck/locks/dc1/a-free"); s != "" {
		t.Errorf("a-free is held (%s) after a failed acquire", s)
	}
}
