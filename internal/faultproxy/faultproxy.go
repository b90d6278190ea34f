// Package faultproxy puts a real fault-injecting TCP proxy (Shopify's
// toxiproxy, in-process) between a client and a server in tests: traffic
// goes through real sockets, and a test can black-hole the connections
// (bytes are swallowed, nothing is closed, as when a network path dies
// silently), reset them (TCP RST), and heal the path again.
//
// Heal models the path coming back after an outage in which a NAT or
// firewall lost its state: connections opened since work, those that
// were open during the fault stay dead (silent, never closed) and the
// client must notice that itself. To get that, clients connect to a small
// relay that hands each new connection to the toxiproxy instance of the
// moment; Heal starts a clean instance for new connections and leaves the
// faulty one to the connections it has. (Removing a timeout toxic from a
// live connection would also leave a goroutine of toxiproxy v2.5.0 blocked
// for good.) Resets are made by the relay, on its client side: toxiproxy's
// reset_peer toxic leaves a goroutine blocked for good whenever the server
// sends again after the reset, which a gRPC server always does.
//
// It is for tests only: importing it pulls toxiproxy and its metrics
// into the binary.
package faultproxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/rs/zerolog"
)

// Proxy is a running proxy. Its methods are safe for concurrent use.
type Proxy struct {
	srv      *toxiproxy.ApiServer
	upstream string
	ln       net.Listener
	wg       sync.WaitGroup

	mu sync.Mutex
	// cur is the toxiproxy instance new connections go through; all are
	// every instance started, stopped when the test ends.
	cur *toxiproxy.Proxy
	all []*toxiproxy.Proxy
	// conns are the relay's open connections: true for the client side.
	conns map[net.Conn]bool
	// resetting: ResetPeer is in force.
	resetting bool
	closed    bool
}

// Start listens on a free loopback port and forwards every connection to
// upstream ("host:port") until the test ends.
func Start(tb testing.TB, upstream string) *Proxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("fault proxy: listening: %v", err)
	}
	x := &Proxy{
		srv:      toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop()),
		upstream: upstream,
		ln:       ln,
		conns:    map[net.Conn]bool{},
	}
	if err := x.fresh(); err != nil {
		_ = ln.Close()
		tb.Fatalf("fault proxy: starting toxiproxy to %s: %v", upstream, err)
	}
	x.wg.Add(1)
	go x.accept()
	tb.Cleanup(x.close)
	return x
}

// fresh starts a toxiproxy instance without toxics for new connections.
func (x *Proxy) fresh() error {
	p := toxiproxy.NewProxy(x.srv, "faultproxy", "127.0.0.1:0", x.upstream)
	if err := p.Start(); err != nil {
		return err
	}
	x.mu.Lock()
	x.cur = p
	x.all = append(x.all, p)
	x.mu.Unlock()
	return nil
}

// close stops the relay and every toxiproxy instance, and waits for the
// relay's goroutines (toxiproxy's end once their connections close).
func (x *Proxy) close() {
	_ = x.ln.Close()
	x.mu.Lock()
	x.closed = true
	for c := range x.conns {
		_ = c.Close()
	}
	all := x.all
	x.mu.Unlock()
	x.wg.Wait()
	for _, p := range all {
		p.Stop()
	}
}

// Addr is the address clients connect to instead of upstream.
func (x *Proxy) Addr() string { return x.ln.Addr().String() }

// BlackHole makes the proxy swallow every byte in both directions, on the
// open connections and on new ones (which are accepted and then hear
// nothing), without closing anything: a dead path that neither side is
// told about.
func (x *Proxy) BlackHole(tb testing.TB) {
	tb.Helper()
	for _, dir := range []string{"upstream", "downstream"} {
		x.add(tb, "blackhole_"+dir, "timeout", dir, `{"timeout":0}`)
	}
}

// ResetPeer resets (TCP RST) every open connection at once, and every new
// one as soon as it is accepted, until Heal.
func (x *Proxy) ResetPeer() {
	x.mu.Lock()
	x.resetting = true
	var clients []net.Conn
	for c, client := range x.conns {
		if client {
			clients = append(clients, c)
		}
	}
	x.mu.Unlock()
	for _, c := range clients {
		resetClose(c)
	}
}

// Heal ends the fault for new connections; those open during it stay as
// the fault left them (see the package comment).
func (x *Proxy) Heal(tb testing.TB) {
	tb.Helper()
	if err := x.fresh(); err != nil {
		tb.Fatalf("fault proxy: starting a clean toxiproxy: %v", err)
	}
	x.mu.Lock()
	x.resetting = false
	x.mu.Unlock()
}

func (x *Proxy) add(tb testing.TB, name, typ, stream, attrs string) {
	tb.Helper()
	js := fmt.Sprintf(`{"name":%q,"type":%q,"stream":%q,"toxicity":1,"attributes":%s}`, name, typ, stream, attrs)
	x.mu.Lock()
	defer x.mu.Unlock()
	if _, err := x.cur.Toxics.AddToxicJson(strings.NewReader(js)); err != nil {
		tb.Fatalf("fault proxy: adding the %s toxic: %v", typ, err)
	}
}

// track registers an open connection (client: the client side); it
// reports false, and closes c, once the proxy is closing or, for a new
// client connection, while ResetPeer is in force (with a reset).
func (x *Proxy) track(c net.Conn, client bool) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	switch {
	case x.closed:
		_ = c.Close()
		return false
	case client && x.resetting:
		resetClose(c)
		return false
	}
	x.conns[c] = client
	return true
}

func (x *Proxy) untrack(c net.Conn) {
	x.mu.Lock()
	delete(x.conns, c)
	x.mu.Unlock()
	_ = c.Close()
}

// accept hands each client connection to the toxiproxy instance of the
// moment.
func (x *Proxy) accept() {
	defer x.wg.Done()
	for {
		c, err := x.ln.Accept()
		if err != nil {
			return // closed
		}
		if !x.track(c, true) {
			continue
		}
		x.mu.Lock()
		cur := x.cur
		x.mu.Unlock()
		cur.Lock()
		addr := cur.Listen
		cur.Unlock()
		x.wg.Add(1)
		go x.relay(c, addr)
	}
}

// relay pipes c to the toxiproxy at addr until either side ends. A reset
// on one side is passed on as a reset (no lingering).
func (x *Proxy) relay(c net.Conn, addr string) {
	defer x.wg.Done()
	defer x.untrack(c)
	up, err := net.Dial("tcp", addr)
	if err != nil {
		resetClose(c)
		return
	}
	if !x.track(up, false) {
		return
	}
	defer x.untrack(up)
	done := make(chan error, 2)
	pipe := func(dst, src net.Conn) {
		_, err := io.Copy(dst, src)
		done <- err
	}
	go pipe(up, c)
	go pipe(c, up)
	err = <-done
	if err != nil && !errors.Is(err, net.ErrClosed) {
		resetClose(c)
		resetClose(up)
	}
	_ = c.Close()
	_ = up.Close()
	<-done
}

// resetClose closes c with a TCP reset rather than a clean end.
func resetClose(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

// Latency delays every chunk of the answers by d, on the connections made
// from now on and those open (until Heal, which leaves them slow).
func (x *Proxy) Latency(tb testing.TB, d time.Duration) {
	tb.Helper()
	x.add(tb, "latency_downstream", "latency", "downstream", fmt.Sprintf(`{"latency":%d}`, d.Milliseconds()))
}
