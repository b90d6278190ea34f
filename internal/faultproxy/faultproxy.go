// Package faultproxy puts a real fault-injecting TCP proxy between a
// client and a server in fleetdeck's tests: Shopify's toxiproxy, run
// in-process as a library. The faults are real network behaviour — bytes
// that never arrive on an open connection, connections reset mid-stream,
// latency — not fakes of the client or the server.
package faultproxy

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Proxy forwards one loopback port to an upstream address and injects
// faults on demand. Its methods are safe for concurrent use.
type Proxy struct {
	p *toxiproxy.Proxy
}

// Start starts a proxy to upstream (host:port) on a free loopback port and
// stops it when tb ends.
func Start(tb testing.TB, upstream string) *Proxy {
	tb.Helper()
	p, err := New(upstream)
	if err != nil {
		tb.Fatalf("faultproxy: %v", err)
	}
	tb.Cleanup(p.Close)
	return p
}

// New starts a proxy to upstream on a free loopback port; Close stops it.
func New(upstream string) (*Proxy, error) {
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	p := toxiproxy.NewProxy(srv, "faultproxy", "127.0.0.1:0", upstream)
	if err := p.Start(); err != nil {
		return nil, fmt.Errorf("starting a proxy to %s: %w", upstream, err)
	}
	return &Proxy{p: p}, nil
}

// Addr is the proxy's listening address (host:port).
func (p *Proxy) Addr() string {
	p.p.Lock()
	defer p.p.Unlock()
	return p.p.Listen
}

// BlackHole makes the proxy swallow every byte in both directions while
// keeping every connection open, old and new: a frozen peer or a
// partitioned network as the client sees it. Bytes sent meanwhile are
// lost for good, so requests in flight never get an answer.
func (p *Proxy) BlackHole() error {
	if err := p.add(`{"name":"blackhole-up","type":"timeout","stream":"upstream","attributes":{"timeout":0}}`); err != nil {
		return err
	}
	return p.add(`{"name":"blackhole-down","type":"timeout","stream":"downstream","attributes":{"timeout":0}}`)
}

// Latency delays every chunk of the answers by d.
func (p *Proxy) Latency(d time.Duration) error {
	return p.add(fmt.Sprintf(`{"name":"latency","type":"latency","stream":"downstream","attributes":{"latency":%d}}`, d.Milliseconds()))
}

// ResetPeer resets every connection (TCP RST) as soon as data arrives on
// it: the server end of a connection going away mid-request.
func (p *Proxy) ResetPeer() error {
	return p.add(`{"name":"reset","type":"reset_peer","stream":"upstream","attributes":{"timeout":0}}`)
}

// Heal removes every fault. Connections that lost bytes stay broken: the
// client has to notice and reconnect, as after a real outage.
func (p *Proxy) Heal() {
	p.p.Toxics.ResetToxics(context.Background())
}

// Close stops the proxy and closes its connections.
func (p *Proxy) Close() { p.p.Stop() }

func (p *Proxy) add(spec string) error {
	if _, err := p.p.Toxics.AddToxicJson(strings.NewReader(spec)); err != nil {
		return fmt.Errorf("adding a fault to the proxy: %w", err)
	}
	return nil
}
