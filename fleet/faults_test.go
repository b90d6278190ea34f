package fleet_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-cleanhttp"

	"github.com/fleetdeck/fleetdeck/fleet"
	"github.com/fleetdeck/fleetdeck/internal/consulagent"
	"github.com/fleetdeck/fleetdeck/internal/faultproxy"
	"github.com/fleetdeck/fleetdeck/internal/fleetsim"
)

// These tests put real faults between the watcher and a real Consul:
// signals to the agent process, a fault-injecting TCP proxy (toxiproxy),
// an HTTP proxy answering 429 and 500, Consul's own connection limit. They
// assert what the snapshots say, with generous deadlines; the times are
// logged, not asserted (docs/benchmarks.md has the measured figures).

// clientVia returns a client for addr with a transport of its own, closed
// with the test (goleak), and counting the connections it holds open.
func clientVia(t *testing.T, addr string) (*api.Client, *connCounter) {
	t.Helper()
	tr := cleanhttp.DefaultPooledTransport()
	cc := &connCounter{}
	dial := tr.DialContext
	tr.DialContext = func(ctx context.Context, network, address string) (net.Conn, error) {
		c, err := dial(ctx, network, address)
		if err != nil {
			return nil, err
		}
		return cc.track(c), nil
	}
	t.Cleanup(tr.CloseIdleConnections)
	cfg := api.DefaultConfig()
	cfg.Address = addr
	cfg.Token = ""
	cfg.TokenFile = ""
	cfg.HttpClient = &http.Client{Transport: tr}
	c, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c, cc
}

// connCounter counts open connections and remembers the most at once.
type connCounter struct {
	open, peak atomic.Int64
}

func (cc *connCounter) track(c net.Conn) net.Conn {
	n := cc.open.Add(1)
	for {
		p := cc.peak.Load()
		if n <= p || cc.peak.CompareAndSwap(p, n) {
			break
		}
	}
	return &countedConn{Conn: c, cc: cc}
}

type countedConn struct {
	net.Conn
	cc   *connCounter
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() { c.cc.open.Add(-1) })
	return c.Conn.Close()
}

// signal sends sig to the agent's process and, for SIGSTOP, makes sure it
// is continued when the test ends, whatever happens.
func signalAgent(t *testing.T, a *consulagent.Agent, sig syscall.Signal) {
	t.Helper()
	if sig == syscall.SIGSTOP {
		a.Freeze(t)
		return
	}
	if err := syscall.Kill(a.Pid(), sig); err != nil {
		t.Fatalf("signal %v to Consul (pid %d): %v", sig, a.Pid(), err)
	}
}

func statusIs(st fleet.ConnStatus) func(*fleet.Snapshot) bool {
	return func(s *fleet.Snapshot) bool { return s.Status().Status == st }
}

// A frozen Consul (SIGSTOP) answers nothing and refuses nothing: the
// watcher must call it unresponsive within seconds, keep the last data,
// and come back by itself when it is continued — with watches that work,
// not just a probe that answers.
func TestWatcherCallsAFrozenConsulUnresponsiveAndRecovers(t *testing.T) {
	a := startAgent(t, consulagent.Options{})
	c := client(t, a)
	register(t, c, "web-1", "10.0.0.1", nil, svcDef{id: "web", name: "web"})
	w := fleet.NewWatcher(c, fleet.Config{})
	runWatcher(t, w)
	waitFor(t, w, 30*time.Second, "initial load", func(s *fleet.Snapshot) bool { return s.Complete() })

	signalAgent(t, a, syscall.SIGSTOP)
	frozen := time.Now()
	s := waitFor(t, w, 30*time.Second, "unresponsive", statusIs(fleet.Unresponsive))
	t.Logf("SIGSTOP → unresponsive in %v", time.Since(frozen).Round(10*time.Millisecond))
	if s.Node("dc1", "web-1") == nil {
		t.Errorf("the last known nodes were dropped while Consul was frozen")
	}
	if st := s.Status(); st.LastSuccess.IsZero() || !strings.Contains(st.LastError, "no answer") {
		t.Errorf("unresponsive state does not say since when or why: %+v", st)
	}

	signalAgent(t, a, syscall.SIGCONT)
	resumed := time.Now()
	waitFor(t, w, 30*time.Second, "connected again", statusIs(fleet.Connected))
	t.Logf("SIGCONT → connected in %v", time.Since(resumed).Round(10*time.Millisecond))
	register(t, c, "web-2", "10.0.0.2", nil, svcDef{id: "web", name: "web"})
	changed := time.Now()
	waitFor(t, w, 30*time.Second, "a change after the freeze", func(s *fleet.Snapshot) bool {
		n := s.Node("dc1", "web-2")
		return n != nil && n.HasRole("web")
	})
	t.Logf("change after SIGCONT on screen in %v", time.Since(changed).Round(10*time.Millisecond))
}

// A black-holed connection keeps requests open forever. After the network
// heals, blocking queries stuck on dead connections would go on waiting
// for minutes (their wait time): the watcher restarts them as soon as
// Consul answers again, so a change made after the heal shows at once.
func TestWatcherRecoversFromABlackHoleWithoutWaitingOutBlockingQueries(t *testing.T) {
	a := startAgent(t, consulagent.Options{})
	direct := client(t, a)
	register(t, direct, "db-1", "10.0.1.1", nil, svcDef{id: "db", name: "db"})
	px := faultproxy.Start(t, a.HTTPAddr())
	c, _ := clientVia(t, px.Addr())
	// The default 5-minute wait: a change after the heal must not depend
	// on a blocking query ending by itself.
	w := fleet.NewWatcher(c, fleet.Config{})
	runWatcher(t, w)
	waitFor(t, w, 30*time.Second, "initial load", func(s *fleet.Snapshot) bool { return s.Complete() })

	px.BlackHole(t)
	start := time.Now()
	waitFor(t, w, 30*time.Second, "unresponsive", statusIs(fleet.Unresponsive))
	t.Logf("black hole → unresponsive in %v", time.Since(start).Round(10*time.Millisecond))
	// Changes made during the outage must show after it too.
	setCheck(t, direct, "db-1", "10.0.1.1", "pg", api.HealthCritical, "down during the outage")

	px.Heal(t)
	healed := time.Now()
	waitFor(t, w, 30*time.Second, "connected", statusIs(fleet.Connected))
	t.Logf("heal → connected in %v", time.Since(healed).Round(10*time.Millisecond))
	waitFor(t, w, 30*time.Second, "the change made during the outage", func(s *fleet.Snapshot) bool {
		n := s.Node("dc1", "db-1")
		return n != nil && n.Health == fleet.HealthCritical
	})
	register(t, direct, "db-2", "10.0.1.2", nil, svcDef{id: "db", name: "db"})
	changed := time.Now()
	waitFor(t, w, 30*time.Second, "a change after the heal", func(s *fleet.Snapshot) bool {
		n := s.Node("dc1", "db-2")
		return n != nil && n.HasRole("db")
	})
	t.Logf("change after heal on screen in %v", time.Since(changed).Round(10*time.Millisecond))
}

// Connections reset mid-request are errors Consul's side gave: degraded,
// with the error, and back once they stop. Latency alone is not a fault.
func TestWatcherUnderResetsAndLatency(t *testing.T) {
	a := startAgent(t, consulagent.Options{})
	direct := client(t, a)
	register(t, direct, "app-1", "10.0.2.1", nil, svcDef{id: "app", name: "app"})
	px := faultproxy.Start(t, a.HTTPAddr())
	c, _ := clientVia(t, px.Addr())
	w := fleet.NewWatcher(c, fleet.Config{BackoffMin: 100 * time.Millisecond, BackoffMax: 2 * time.Second})
	runWatcher(t, w)
	waitFor(t, w, 30*time.Second, "initial load", func(s *fleet.Snapshot) bool { return s.Complete() })

	px.ResetPeer()
	s := waitFor(t, w, 30*time.Second, "degraded", statusIs(fleet.Degraded))
	if st := s.Status(); st.LastError == "" || st.NextRetry.IsZero() {
		t.Errorf("degraded without an error or a retry time: %+v", st)
	}
	px.Heal(t)
	waitFor(t, w, 30*time.Second, "connected", statusIs(fleet.Connected))

	px.Latency(t, 800*time.Millisecond)
	register(t, direct, "app-2", "10.0.2.2", nil, svcDef{id: "app", name: "app"})
	s = waitFor(t, w, 30*time.Second, "a change through a slow link", func(s *fleet.Snapshot) bool {
		return s.Node("dc1", "app-2") != nil
	})
	if st := s.Status().Status; st != fleet.Connected {
		t.Errorf("a slow but answering Consul is %v, want connected", st)
	}
	px.Heal(t)
}

// statusProxy is an HTTP reverse proxy in front of Consul that answers
// every request with a fixed status while failWith is set.
type statusProxy struct {
	failWith atomic.Int32
	// prefix, when set, answers prefixCode to requests whose path starts
	// with it, whatever failWith says; refused counts them.
	prefix     atomic.Value
	prefixCode atomic.Int32
	refused    atomic.Int64
	srv        *http.Server
	ln         net.Listener
}

// failPrefix makes the proxy answer code to every request under prefix.
func (p *statusProxy) failPrefix(prefix string, code int) {
	p.prefixCode.Store(int32(code))
	p.prefix.Store(prefix)
}

func startStatusProxy(t *testing.T, upstream string) *statusProxy {
	t.Helper()
	u, err := url.Parse("http://" + upstream)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	tr := cleanhttp.DefaultPooledTransport()
	rp.Transport = tr
	p := &statusProxy{}
	p.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if pre, _ := p.prefix.Load().(string); pre != "" && strings.HasPrefix(r.URL.Path, pre) {
			p.refused.Add(1)
			http.Error(w, "not here", int(p.prefixCode.Load()))
			return
		}
		if code := int(p.failWith.Load()); code != 0 {
			http.Error(w, fmt.Sprintf("injected %d", code), code)
			return
		}
		rp.ServeHTTP(w, r)
	})}
	p.ln, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.srv.Serve(p.ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = p.srv.Shutdown(ctx)
		_ = p.srv.Close()
		tr.CloseIdleConnections()
	})
	return p
}

// 429 (Consul's connection limit, or a proxy's rate limit) and 500 are
// answers: degraded with a clear error, and connected again once they
// stop.
func TestWatcherReportsHTTP429And500AndRecovers(t *testing.T) {
	a := startAgent(t, consulagent.Options{})
	direct := client(t, a)
	register(t, direct, "api-1", "10.0.3.1", nil, svcDef{id: "api", name: "api"})
	px := startStatusProxy(t, a.HTTPAddr())
	c, _ := clientVia(t, px.ln.Addr().String())
	w := fleet.NewWatcher(c, fleet.Config{BackoffMin: 100 * time.Millisecond, BackoffMax: time.Second})
	runWatcher(t, w)
	waitFor(t, w, 30*time.Second, "initial load", func(s *fleet.Snapshot) bool { return s.Complete() })

	for _, code := range []int{http.StatusTooManyRequests, http.StatusInternalServerError} {
		px.failWith.Store(int32(code))
		s := waitFor(t, w, 30*time.Second, fmt.Sprintf("degraded by %d", code), statusIs(fleet.Degraded))
		msg := s.Status().LastError
		if !strings.Contains(msg, fmt.Sprint(code)) {
			t.Errorf("HTTP %d: error does not say so: %q", code, msg)
		}
		if code == http.StatusTooManyRequests && !strings.Contains(msg, "limiting connections") {
			t.Errorf("HTTP 429: error does not explain it: %q", msg)
		}
		if s.Node("dc1", "api-1") == nil {
			t.Errorf("HTTP %d: the last known nodes were dropped", code)
		}
		px.failWith.Store(0)
		waitFor(t, w, 30*time.Second, "connected", statusIs(fleet.Connected))
	}
	register(t, direct, "api-2", "10.0.3.2", nil, svcDef{id: "api", name: "api"})
	waitFor(t, w, 30*time.Second, "a change after the errors", func(s *fleet.Snapshot) bool { return s.Node("dc1", "api-2") != nil })
}

// With 500 services and Consul's per-client limit at 50 connections, one
// blocking query per service would be refused (429). The watcher stays
// within its budget, loads every service, and still follows changes of
// services with and without a watch of their own.
func TestWatcherStaysWithinItsConnectionBudgetAt500Services(t *testing.T) {
	bothPaths(t, testWatcherStaysWithinItsConnectionBudgetAt500Services)
}

func testWatcherStaysWithinItsConnectionBudgetAt500Services(t *testing.T, cfg fleet.Config) {
	a := startAgent(t, consulagent.Options{ExtraHCL: `limits { http_max_conns_per_client = 50 }`})
	direct := client(t, a)
	spec := fleetsim.ScaleSpec(1000)
	spec.Services, spec.ServicesPerNode, spec.ChecksPerNode = 500, 3, 2
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := fleetsim.Load(ctx, direct, spec); err != nil {
		t.Fatalf("loading the fleet: %v", err)
	}
	c, conns := clientVia(t, a.HTTPAddr())
	w := fleet.NewWatcher(c, cfg)
	runWatcher(t, w)
	var degraded atomic.Value
	watchCtx, stopWatch := context.WithCancel(context.Background())
	var seen sync.WaitGroup
	seen.Go(func() {
		s := w.Current()
		for {
			if st := s.Status(); st.Status == fleet.Degraded {
				degraded.Store(st.LastError)
			}
			next, err := w.Next(watchCtx, s.Version)
			if err != nil {
				return
			}
			s = next
		}
	})
	defer func() { stopWatch(); seen.Wait() }()
	start := time.Now()
	s := waitFor(t, w, 2*time.Minute, "500 services loaded", func(s *fleet.Snapshot) bool { return s.Complete() })
	t.Logf("complete in %v, %d nodes, %d roles, peak %d connections", time.Since(start).Round(time.Millisecond), len(s.Nodes), len(s.Roles()), conns.peak.Load())
	if got := len(s.Roles()); got != 501 { // + consul
		t.Errorf("%d roles, want 501", got)
	}

	// A service far down the list has no watch of its own at first: the
	// sweep finds its new instance. The second change finds it watched.
	for i, node := range []string{"extra-1", "extra-2"} {
		register(t, direct, node, fmt.Sprintf("10.9.0.%d", i+1), nil, svcDef{id: "svc-499", name: "svc-499"})
		changed := time.Now()
		waitFor(t, w, 30*time.Second, node+" in svc-499", func(s *fleet.Snapshot) bool {
			n := s.Node("dc1", node)
			return n != nil && n.HasRole("svc-499")
		})
		t.Logf("change %d of a swept service on screen in %v", i+1, time.Since(changed).Round(time.Millisecond))
	}
	if msg, _ := degraded.Load().(string); msg != "" {
		t.Errorf("the watcher was degraded at some point: %s", msg)
	}
	// The budget (32) plus the occasional datacenter list read.
	if peak := conns.peak.Load(); peak > 33 {
		t.Errorf("peak %d connections to Consul, want at most 33", peak)
	}
}

// Consul restarted with an empty catalog: a service that is gone must not
// keep the console degraded with the error its watch got while Consul was
// down.
func TestWatcherIsNotStuckOnAServiceThatIsGoneAfterARestart(t *testing.T) {
	a := startAgent(t, consulagent.Options{})
	c := client(t, a)
	register(t, c, "old-1", "10.0.4.1", nil, svcDef{id: "gone", name: "gone"})
	w := fleet.NewWatcher(c, fleet.Config{BackoffMin: 100 * time.Millisecond, BackoffMax: time.Second})
	runWatcher(t, w)
	waitFor(t, w, 30*time.Second, "initial load", func(s *fleet.Snapshot) bool { return s.Node("dc1", "old-1") != nil && s.Complete() })

	if err := a.Kill(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, w, 30*time.Second, "degraded", func(s *fleet.Snapshot) bool {
		return s.Status().Status == fleet.Degraded && strings.Contains(s.Status().LastError, "")
	})
	// Let every watch, the "gone" one included, fail at least once.
	time.Sleep(2 * time.Second)
	restartCtx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := a.Restart(restartCtx); err != nil {
		t.Fatalf("restarting Consul: %v", err)
	}
	c = client(t, a)
	register(t, c, "new-1", "10.0.4.2", nil, svcDef{id: "other", name: "other"})
	s := waitFor(t, w, 30*time.Second, "connected to the new catalog", func(s *fleet.Snapshot) bool {
		return s.Status().Status == fleet.Connected && s.Node("dc1", "new-1") != nil
	})
	if s.Node("dc1", "old-1") != nil {
		t.Errorf("old-1 is still shown after the restart")
	}
}

// Emptying the catalog: every node must leave as one "left" event, never
// first "roles X → -" because the per-service watches answered before the
// (much larger) node list.
func TestWatcherEmptiedCatalogJournalsLeavesNotRoleChanges(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: deregisters 2,000 nodes")
	}
	a := startAgent(t, consulagent.Options{})
	c := client(t, a)
	spec := fleetsim.ScaleSpec(2000)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := fleetsim.Load(ctx, c, spec); err != nil {
		t.Fatalf("loading the fleet: %v", err)
	}
	nodes, err := spec.Fleet()
	if err != nil {
		t.Fatal(err)
	}
	w := fleet.NewWatcher(c, fleet.Config{})
	runWatcher(t, w)
	waitFor(t, w, 2*time.Minute, "initial load", func(s *fleet.Snapshot) bool { return s.Complete() })

	// Deregister in transactions of 64 nodes, 4 at a time: as fast as a
	// script emptying the catalog goes.
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for i := 0; i < len(nodes); i += 64 {
		var ops api.TxnOps
		for _, n := range nodes[i:min(i+64, len(nodes))] {
			ops = append(ops, &api.TxnOp{Node: &api.NodeTxnOp{Verb: api.NodeDelete, Node: api.Node{Node: n.Name}}})
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if ok, resp, _, err := c.Txn().Txn(ops, nil); err != nil || !ok {
				t.Errorf("deregistering: %v %+v", err, resp)
			}
		})
	}
	wg.Wait()
	s := waitFor(t, w, 2*time.Minute, "every node gone", func(s *fleet.Snapshot) bool { return len(s.Nodes) == 1 })
	var left, roles int
	for _, e := range s.Events {
		switch e.Kind {
		case fleet.NodeLeft:
			left++
		case fleet.RolesChanged:
			roles++
		}
	}
	if left != len(nodes) || roles != 0 {
		t.Errorf("journal has %d left and %d roles events, want %d and 0", left, roles, len(nodes))
	}
}

// A check that returns to passing must not be journaled with the output it
// had while failing.
func TestWatcherJournalsARecoveryWithoutTheFailingOutput(t *testing.T) {
	a := startAgent(t, consulagent.Options{})
	c := client(t, a)
	register(t, c, "cache-1", "10.0.5.1", nil, svcDef{id: "redis", name: "redis"})
	setCheck(t, c, "cache-1", "10.0.5.1", "mem", api.HealthPassing, "memory ok")
	w := fleet.NewWatcher(c, fleet.Config{})
	runWatcher(t, w)
	waitFor(t, w, 30*time.Second, "initial load", func(s *fleet.Snapshot) bool { return s.Complete() })

	setCheck(t, c, "cache-1", "10.0.5.1", "mem", api.HealthCritical, "OOM: 99% used")
	waitFor(t, w, 30*time.Second, "critical", func(s *fleet.Snapshot) bool {
		return hasEvent(s, fleet.HealthChanged, "cache-1", func(e fleet.Event) bool { return e.To == fleet.HealthCritical })
	})
	setCheck(t, c, "cache-1", "10.0.5.1", "mem", api.HealthPassing, "memory ok again")
	s := waitFor(t, w, 30*time.Second, "recovered", func(s *fleet.Snapshot) bool {
		return hasEvent(s, fleet.HealthChanged, "cache-1", func(e fleet.Event) bool { return e.To == fleet.HealthPassing })
	})
	for _, e := range s.Events {
		if e.Kind == fleet.HealthChanged && e.To == fleet.HealthPassing && e.Output != "" && e.Output != "memory ok again" {
			t.Errorf("the recovery is journaled with a stale output (%q): %+v", e.Output, e)
		}
	}
	// What the check says now follows, from one read of the node's checks.
	waitFor(t, w, 30*time.Second, "the recovered check's new output", func(s *fleet.Snapshot) bool {
		for _, ch := range s.Node("dc1", "cache-1").Checks {
			if ch.ID == "mem" {
				return ch.Status == fleet.HealthPassing && ch.Output == "memory ok again"
			}
		}
		return false
	})
}

// The first rows must not wait for the roles: through a slow link, a
// snapshot with every node and roles still pending comes first, and no
// snapshot ever claims an empty, complete fleet while loading.
func TestWatcherPublishesNodesBeforeRoles(t *testing.T) {
	bothPaths(t, testWatcherPublishesNodesBeforeRoles)
}

func testWatcherPublishesNodesBeforeRoles(t *testing.T, cfg fleet.Config) {
	a := startAgent(t, consulagent.Options{})
	direct := client(t, a)
	for i := range 20 {
		register(t, direct, fmt.Sprintf("n-%02d", i), fmt.Sprintf("10.0.6.%d", i+1), nil,
			svcDef{id: fmt.Sprintf("s%d", i%10), name: fmt.Sprintf("s%d", i%10)})
	}
	px := faultproxy.Start(t, a.HTTPAddr())
	px.Latency(t, 400*time.Millisecond)
	c, _ := clientVia(t, px.Addr())
	w := fleet.NewWatcher(c, cfg)
	var snaps []*fleet.Snapshot
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s := w.Current()
		for !s.Complete() {
			snaps = append(snaps, s)
			next, err := w.Next(ctx, s.Version)
			if err != nil {
				return
			}
			s = next
		}
		snaps = append(snaps, s)
	}()
	runWatcher(t, w)
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("no complete snapshot within a minute")
	}
	cancel()
	var firstRows *fleet.Snapshot
	for _, s := range snaps {
		if len(s.Nodes) == 0 && s.Complete() {
			t.Errorf("snapshot v%d claims a complete, empty fleet", s.Version)
		}
		if firstRows == nil && len(s.Nodes) > 0 {
			firstRows = s
		}
	}
	if firstRows == nil {
		t.Fatal("no snapshot had nodes")
	}
	if len(firstRows.Nodes) != 21 || !slices.Contains(firstRows.Loading(), "roles") {
		t.Errorf("first snapshot with rows: %d nodes, loading %v; want all 21 and roles pending", len(firstRows.Nodes), firstRows.Loading())
	}
	last := snaps[len(snaps)-1]
	if n := last.Node("dc1", "n-03"); n == nil || !n.HasRole("s3") {
		t.Errorf("complete snapshot lacks roles: %+v", n)
	}
}

// The bootstrap read is Consul's internal UI endpoint: when it is refused
// (a proxy that only lets the public API through, another Consul version),
// the watcher reads service by service and loads the same fleet.
func TestWatcherFallsBackWhenTheBootstrapReadFails(t *testing.T) {
	a := startAgent(t, consulagent.Options{})
	direct := client(t, a)
	for i := range 6 {
		register(t, direct, fmt.Sprintf("m-%d", i), fmt.Sprintf("10.0.7.%d", i+1), nil,
			svcDef{id: "mq", name: "mq", tags: []string{"v2"}, port: 5672})
	}
	setCheck(t, direct, "m-2", "10.0.7.3", "amqp", api.HealthCritical, "connection refused")
	px := startStatusProxy(t, a.HTTPAddr())
	px.failPrefix("/v1/internal/", http.StatusNotFound)
	c, _ := clientVia(t, px.ln.Addr().String())
	w := fleet.NewWatcher(c, fleet.Config{})
	runWatcher(t, w)
	s := waitFor(t, w, 30*time.Second, "complete", func(s *fleet.Snapshot) bool { return s.Complete() })
	for i := range 6 {
		n := s.Node("dc1", fmt.Sprintf("m-%d", i))
		if n == nil || !n.HasRole("mq") || n.Services[0].Port != 5672 || !slices.Equal(n.Tags(), []string{"v2"}) {
			t.Fatalf("node m-%d after the fallback: %+v", i, n)
		}
	}
	if n := s.Node("dc1", "m-2"); n.Health != fleet.HealthCritical {
		t.Errorf("m-2 health %v, want critical", n.Health)
	}
	if st := s.Status(); st.Status != fleet.Connected {
		t.Errorf("a refused bootstrap read shows as %v (%s): the public reads worked", st.Status, st.LastError)
	}
	if px.refused.Load() == 0 {
		t.Errorf("the bootstrap read was never tried")
	}
}

// A freeze that catches a sweep in flight: when Consul answers again, the
// epoch's kick cancels the sweep's requests. That is not an error of the
// swept services — the console must come back to connected, not stay
// degraded with "context canceled" until those services next change.
func TestWatcherSweepCaughtByAFreezeIsNotAnError(t *testing.T) {
	a := startAgent(t, consulagent.Options{})
	direct := client(t, a)
	spec := fleetsim.ScaleSpec(600)
	spec.Services, spec.ServicesPerNode, spec.ChecksPerNode = 600, 2, 1
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := fleetsim.Load(ctx, direct, spec); err != nil {
		t.Fatalf("loading the fleet: %v", err)
	}
	c, _ := clientVia(t, a.HTTPAddr())
	w := fleet.NewWatcher(c, fleet.Config{})
	runWatcher(t, w)
	waitFor(t, w, time.Minute, "complete", func(s *fleet.Snapshot) bool { return s.Complete() })

	for round := range 3 {
		// A service-list change sets off a sweep of ~575 services; freeze
		// Consul while it runs.
		register(t, direct, fmt.Sprintf("extra-%d", round), fmt.Sprintf("10.8.0.%d", round+1), nil, svcDef{id: "svc-599", name: "svc-599"})
		time.Sleep(150 * time.Millisecond)
		signalAgent(t, a, syscall.SIGSTOP)
		waitFor(t, w, 30*time.Second, "unresponsive", statusIs(fleet.Unresponsive))
		signalAgent(t, a, syscall.SIGCONT)
		waitFor(t, w, 30*time.Second, "connected", statusIs(fleet.Connected))
		// Connected must hold: a kicked sweep is asked again, quietly.
		deadline := time.Now().Add(8 * time.Second)
		s := w.Current()
		for time.Now().Before(deadline) {
			if st := s.Status(); st.Status == fleet.Degraded {
				t.Fatalf("round %d: degraded after the freeze ended: %s", round, st.LastError)
			}
			nctx, ncancel := context.WithDeadline(context.Background(), deadline)
			next, err := w.Next(nctx, s.Version)
			ncancel()
			if err != nil {
				break
			}
			s = next
		}
		if n := w.Current().Node("dc1", fmt.Sprintf("extra-%d", round)); n == nil || !n.HasRole("svc-599") {
			t.Errorf("round %d: the change made before the freeze is not shown: %+v", round, n)
		}
	}
}

// A bootstrap read caught by an outage is asked again when Consul answers,
// rather than given up for the one read per service (twice Consul's work,
// and minutes on a loaded machine at 10,000 nodes).
func TestWatcherBootstrapCaughtByAnOutageIsAskedAgain(t *testing.T) {
	a := startAgent(t, consulagent.Options{})
	direct := client(t, a)
	for i := range 5 {
		register(t, direct, fmt.Sprintf("b-%d", i), fmt.Sprintf("10.0.9.%d", i+1), nil, svcDef{id: "b", name: "b"})
	}
	px := faultproxy.Start(t, a.HTTPAddr())
	px.BlackHole(t) // every request, the bootstrap read included, hangs
	tr := cleanhttp.DefaultPooledTransport()
	t.Cleanup(tr.CloseIdleConnections)
	fr := &firstReads{base: tr}
	cfg := api.DefaultConfig()
	cfg.Address, cfg.Token, cfg.TokenFile = px.Addr(), "", ""
	cfg.HttpClient = &http.Client{Transport: fr}
	c, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// The datacenter named: its reads, the bootstrap among them, start at
	// once (with none named they wait for the datacenter list, which a
	// second test case below covers).
	w := fleet.NewWatcher(c, fleet.Config{Datacenters: []string{"dc1"}})
	runWatcher(t, w)
	waitFor(t, w, 30*time.Second, "unresponsive", statusIs(fleet.Unresponsive))
	px.Heal(t)
	waitFor(t, w, 30*time.Second, "complete after the outage", func(s *fleet.Snapshot) bool {
		n := s.Node("dc1", "b-4")
		return s.Complete() && n != nil && n.HasRole("b")
	})
	if n := fr.n.Load(); n > 0 {
		t.Errorf("%d services were read one by one: the bootstrap read was given up instead of asked again", n)
	}
}

// A Consul silent from the start — even the datacenter list unanswered —
// is called unresponsive, and the console comes up once it answers.
func TestWatcherSilentFromTheStart(t *testing.T) {
	a := startAgent(t, consulagent.Options{})
	register(t, client(t, a), "s-1", "10.0.10.1", nil, svcDef{id: "s", name: "s"})
	px := faultproxy.Start(t, a.HTTPAddr())
	px.BlackHole(t)
	c, _ := clientVia(t, px.Addr())
	w := fleet.NewWatcher(c, fleet.Config{})
	runWatcher(t, w)
	start := time.Now()
	s := waitFor(t, w, 30*time.Second, "unresponsive", statusIs(fleet.Unresponsive))
	t.Logf("silent from the start → unresponsive in %v", time.Since(start).Round(10*time.Millisecond))
	if st := s.Status(); !strings.Contains(st.LastError, "no answer") {
		t.Errorf("unresponsive without saying why: %+v", st)
	}
	px.Heal(t)
	healed := time.Now()
	waitFor(t, w, 30*time.Second, "complete after the heal", func(s *fleet.Snapshot) bool { return s.Complete() && s.Node("dc1", "s-1") != nil })
	t.Logf("heal → complete in %v", time.Since(healed).Round(10*time.Millisecond))
}
