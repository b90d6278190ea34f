package logview

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/logging/apiv2/loggingpb"
	ltype "google.golang.org/genproto/googleapis/logging/type"

	"github.com/fleetdeck/fleetdeck/internal/faultproxy"
	"github.com/fleetdeck/fleetdeck/internal/logserver"
)

// proxiedEnv is a local Cloud Logging endpoint reached through a real
// fault-injecting TCP proxy: the Service's client (the real apiv2 client,
// over real sockets) talks to the proxy, the test writes to the server
// directly, so entries keep arriving while the path is faulty.
type proxiedEnv struct {
	srv   *logserver.Server
	proxy *faultproxy.Proxy
	svc   *Service
}

func newProxiedEnv(t testing.TB, opts logserver.Options, mod func(*Config)) *proxiedEnv {
	t.Helper()
	ctx := context.Background()
	srv, err := logserver.Start(ctx, opts)
	if err != nil {
		t.Fatalf("logserver.Start: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("logserver Close: %v", err)
		}
	})
	px := faultproxy.Start(t, srv.Addr())
	cfg := Config{
		Projects:      []string{"p1"},
		Endpoint:      px.Addr(),
		Insecure:      true,
		RetryMin:      100 * time.Millisecond,
		RetryMax:      time.Second,
		TailSettle:    50 * time.Millisecond,
		ListPerMinute: 6000,
	}
	if mod != nil {
		mod(&cfg)
	}
	svc, err := New(ctx, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	// Registered after the proxy's cleanup, so it runs first: the
	// Service closes its connections before the proxy goes.
	t.Cleanup(func() {
		if err := svc.Close(); err != nil {
			t.Errorf("Service.Close: %v", err)
		}
	})
	return &proxiedEnv{srv: srv, proxy: px, svc: svc}
}

// writeN writes n entries of instance 101 named prefix00, prefix01, …
// straight to the server (not through the proxy).
func writeN(srv *logserver.Server, prefix string, n int) {
	var es []*loggingpb.LogEntry
	for i := range n {
		es = append(es, logEntry("p1", "101", fmt.Sprintf("%s%02d", prefix, i), time.Now(), ltype.LogSeverity_INFO, prefix))
	}
	srv.Add(es...)
}

// seenPhase reports whether any status the collector received had phase p.
func (c *collector) seenPhase(p Phase) bool {
	for _, s := range c.statuses {
		if s.Phase == p {
			return true
		}
	}
	return false
}

// openLive opens a live view of instance 101 and waits until it is Live
// with its tail registered at the server.
func openLive(t testing.TB, svc *Service, srv *logserver.Server) *collector {
	t.Helper()
	s, err := svc.Open(context.Background(), liveQuery(time.Now(), Default))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	c := collect(t, s)
	c.until("live", func(c *collector) bool { return c.last.Phase == Live })
	waitFor(t, "the tail", func() bool { return srv.Stats().TailsOpen == 1 })
	return c
}

// The clauses a gap fill or a check adds fit in the room the hub leaves.
func TestCheckFilterFits(t *testing.T) {
	f := strings.Repeat("x", MaxFilterLen-hubFilterRoom)
	at := time.Date(2026, 12, 31, 23, 59, 59, 999999999, time.UTC)
	if n := len(checkFilter(f, at, at, at)); n > MaxFilterLen {
		t.Errorf("check filter is %d characters, limit %d", n, MaxFilterLen)
	}
}

// A path that dies silently (every byte swallowed, nothing closed) leaves
// the tail "open" and quiet. The watchdog's check gets no answer, the
// view says Stalled with the last sign of life, and once the path works
// again the view is Live by itself, with what was written meanwhile
// delivered exactly once. The connection that was open stays dead after
// the path heals, as when a NAT lost its state: attempts over it fail
// until keepalive drops it (here gRPC's minimum, 10 s, to keep the test
// short).
func TestBlackHoledTailStallsAndRecovers(t *testing.T) {
	env := newProxiedEnv(t, logserver.Options{KeepaliveMinTime: 10 * time.Second}, func(c *Config) {
		c.TailCheck, c.CheckTimeout = time.Second, 2*time.Second
		c.KeepaliveTime, c.KeepaliveTimeout = 10*time.Second, 2*time.Second
	})
	c := openLive(t, env.svc, env.srv)
	writeN(env.srv, "a", 5)
	c.until("the tailed entries", func(c *collector) bool { return c.buf.Len() == 5 })

	env.proxy.BlackHole(t)
	faultAt := time.Now()
	writeN(env.srv, "b", 5) // lost to the black hole
	c.until("stalled", func(c *collector) bool { return c.last.Phase == Stalled })
	stalledAt := time.Now()
	st := c.last
	if st.LastSign.IsZero() || st.LastSign.After(faultAt) {
		t.Errorf("last sign of life %v, want before the fault at %v", st.LastSign, faultAt)
	}
	if st.Err == nil || st.RetryAt.IsZero() {
		t.Errorf("stalled status %+v: want the reason and the next retry", st)
	}
	t.Logf("stalled: %v", st.Err)
	writeN(env.srv, "c", 5) // written while stalled

	env.proxy.Heal(t)
	healAt := time.Now()
	c.until("live again with every entry", func(c *collector) bool { return c.last.Phase == Live && c.buf.Len() == 15 })
	liveAt := time.Now()
	writeN(env.srv, "d", 5)
	c.until("the new tail's entries", func(c *collector) bool { return c.buf.Len() == 20 })
	c.checkOnce()
	if c.buf.Duplicates() != 0 {
		t.Errorf("buffer saw %d duplicates; the stream should have dropped them", c.buf.Duplicates())
	}
	// Between the fault and recovery the view never claimed Live.
	var sawStall bool
	for _, s := range c.statuses {
		if s.Phase == Stalled {
			sawStall = true
		}
		if sawStall && s.Phase == Live && c.buf.Len() < 15 {
			t.Fatalf("live again before the gap was filled: %+v", s)
		}
	}
	t.Logf("measured (TailCheck 1s, CheckTimeout 2s, keepalive 10s/2s): fault → stalled %v, heal → live %v",
		stalledAt.Sub(faultAt).Round(10*time.Millisecond), liveAt.Sub(healAt).Round(10*time.Millisecond))
}

// A connection reset (TCP RST) ends the tail with an error: the hub
// reconnects, with backoff while the path keeps resetting, and the gap
// fill delivers what was written meanwhile, once.
func TestResetTailReconnects(t *testing.T) {
	env := newProxiedEnv(t, logserver.Options{}, nil)
	c := openLive(t, env.svc, env.srv)
	opened := env.srv.Stats().TailsOpened

	env.proxy.ResetPeer()
	c.until("the tail down", func(c *collector) bool { return c.last.Phase == Reconnecting || c.last.Phase == Stalled })
	// Written while every new connection is reset too.
	writeN(env.srv, "a", 5)
	if c.last.Err == nil {
		t.Errorf("status after the reset %+v: want the error", c.last)
	}
	t.Logf("after the reset: %v %v", c.last.Phase, c.last.Err)
	writeN(env.srv, "b", 5)

	env.proxy.Heal(t)
	c.until("live again with every entry", func(c *collector) bool { return c.last.Phase == Live && c.buf.Len() == 10 })
	waitFor(t, "a new tail", func() bool { return env.srv.Stats().TailsOpened > opened && env.srv.Stats().TailsOpen == 1 })
	writeN(env.srv, "c", 5)
	c.until("the new tail's entries", func(c *collector) bool { return c.buf.Len() == 15 })
	c.checkOnce()
}

// A quiet but healthy tail is checked, and passes: it stays Live, with
// the same tail, and loses nothing.
func TestQuietTailStaysLive(t *testing.T) {
	env := newProxiedEnv(t, logserver.Options{}, func(c *Config) {
		c.TailCheck, c.CheckTimeout = 300*time.Millisecond, 5*time.Second
	})
	c := openLive(t, env.svc, env.srv)
	calls := c.last.ListCalls
	// Several checks pass while nothing is written.
	c.until("checks", func(c *collector) bool { return c.last.ListCalls >= calls+5 })
	writeN(env.srv, "a", 3)
	c.until("the entries", func(c *collector) bool { return c.buf.Len() == 3 })
	c.until("more checks", func(c *collector) bool { return c.last.ListCalls >= calls+10 })
	if c.seenPhase(Stalled) || c.seenPhase(Reconnecting) {
		t.Fatalf("a healthy quiet tail left Live: %+v", c.statuses)
	}
	if st := env.srv.Stats(); st.TailsOpened != 1 {
		t.Errorf("tails opened = %d, want 1 (no restart)", st.TailsOpened)
	}
	c.checkOnce()
}

// A tail that the service stopped serving while the connection stays
// healthy (a stuck session) is found by a check once what it missed is
// old enough that a working tail would have sent it: the check delivers
// those entries itself, the tail is stalled and replaced.
func TestStuckTailFoundByCheck(t *testing.T) {
	env := newProxiedEnv(t, logserver.Options{}, func(c *Config) {
		c.TailCheck, c.CheckTimeout = 500*time.Millisecond, 5*time.Second
	})
	c := openLive(t, env.svc, env.srv)
	env.srv.FreezeTails()
	writeN(env.srv, "m", 4)
	c.until("stalled", func(c *collector) bool { return c.last.Phase == Stalled })
	if c.last.Err == nil || !strings.Contains(c.last.Err.Error(), "missed 4 entries") {
		t.Errorf("stalled status %+v: want the missed entries named", c.last)
	}
	if c.buf.Len() != 4 {
		t.Errorf("%d entries when stalled, want the 4 the check found", c.buf.Len())
	}
	c.until("live again", func(c *collector) bool { return c.last.Phase == Live })
	if st := env.srv.Stats(); st.TailsOpened < 2 {
		t.Errorf("tails opened = %d: the stuck tail was not replaced", st.TailsOpened)
	}
	writeN(env.srv, "n", 3)
	c.until("the new tail's entries", func(c *collector) bool { return c.buf.Len() == 7 })
	c.checkOnce()
}

// Keepalive: the client pings a quiet tail's connection no more often
// than the server allows (no GOAWAY "too_many_pings", the tail is never
// restarted), and a path that dies silently is noticed by the pings
// alone (the watchdog is off here): the view says Stalled, then Live
// again once the path works, with nothing lost. gRPC's minimum interval,
// 10 s, and a server enforcing it keep this test short; the defaults
// are 30 s, what Google's front ends enforce.
func TestKeepaliveNoticesDeadPath(t *testing.T) {
	env := newProxiedEnv(t, logserver.Options{KeepaliveMinTime: 10 * time.Second}, func(c *Config) {
		c.KeepaliveTime, c.KeepaliveTimeout = 10*time.Second, 2*time.Second
		c.TailCheck, c.CheckTimeout = time.Hour, 3*time.Second
	})
	c := openLive(t, env.svc, env.srv)
	// Quiet for four ping intervals: a server enforcing the interval
	// would have closed the connection after its third bad ping.
	quiet := time.Now().Add(45 * time.Second)
	waitFor(t, "the quiet period", func() bool { return time.Now().After(quiet) })
	writeN(env.srv, "a", 3)
	c.until("the entries", func(c *collector) bool { return c.buf.Len() == 3 })
	if st := env.srv.Stats(); st.TailsOpened != 1 || c.seenPhase(Stalled) || c.seenPhase(Reconnecting) {
		t.Fatalf("the quiet tail was disturbed (tails opened %d): %+v", st.TailsOpened, c.statuses)
	}

	env.proxy.BlackHole(t)
	faultAt := time.Now()
	writeN(env.srv, "b", 3)
	c.until("stalled", func(c *collector) bool { return c.last.Phase == Stalled })
	stalledAt := time.Now()
	if c.last.Err == nil || !strings.Contains(c.last.Err.Error(), "keepalive") {
		t.Errorf("stalled status %+v: want keepalive named", c.last)
	}
	env.proxy.Heal(t)
	healAt := time.Now()
	c.until("live again with every entry", func(c *collector) bool { return c.last.Phase == Live && c.buf.Len() == 6 })
	liveAt := time.Now()
	c.checkOnce()
	t.Logf("measured (keepalive 10s/2s, watchdog off): fault → stalled %v, heal → live %v",
		stalledAt.Sub(faultAt).Round(10*time.Millisecond), liveAt.Sub(healAt).Round(10*time.Millisecond))
}

// BenchmarkTailStall measures, with the default settings (TailCheck 20 s,
// CheckTimeout 10 s, keepalive 30 s / 10 s, retries 1 s → 5 s when stalled), how long
// after a path dies silently a live view's Status says Stalled, and how
// long after the path works again it says Live with the gap filled. The
// connection open during the fault stays dead (a NAT that lost its
// state), so recovery also waits for keepalive to drop it. outage=stall
// heals as soon as the view says Stalled; outage=2m after two minutes.
// Minutes per run: go test -run '^$' -bench TailStall -benchtime 1x ./logview/
func BenchmarkTailStall(b *testing.B) {
	for _, outage := range []time.Duration{0, 2 * time.Minute} {
		name := "outage=stall"
		if outage > 0 {
			name = "outage=" + outage.String()
		}
		b.Run(name, func(b *testing.B) {
			var stall, live time.Duration
			for b.Loop() {
				env := newProxiedEnv(b, logserver.Options{}, func(c *Config) {
					c.RetryMin, c.RetryMax, c.TailSettle, c.ListPerMinute = 0, 0, 0, 0
				})
				c := openLive(b, env.svc, env.srv)
				writeN(env.srv, "a", 5)
				c.until("the tailed entries", func(c *collector) bool { return c.buf.Len() == 5 })
				env.proxy.BlackHole(b)
				faultAt := time.Now()
				writeN(env.srv, "b", 5)
				c.until("stalled", func(c *collector) bool { return c.last.Phase == Stalled })
				stall = time.Since(faultAt)
				time.Sleep(outage - time.Since(faultAt))
				env.proxy.Heal(b)
				healAt := time.Now()
				c.until("live with the gap filled", func(c *collector) bool { return c.last.Phase == Live && c.buf.Len() == 10 })
				live = time.Since(healAt)
				c.checkOnce()
				b.Logf("%s: fault → stalled %v (%v), heal → live %v", name, stall.Round(100*time.Millisecond), c.statuses[len(c.statuses)-1].Phase, live.Round(100*time.Millisecond))
			}
			b.ReportMetric(stall.Seconds(), "s-to-stalled")
			b.ReportMetric(live.Seconds(), "s-to-live")
		})
	}
}
