package provision_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
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
