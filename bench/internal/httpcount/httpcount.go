// Package httpcount counts the HTTP requests a benchmark's client sends,
// for the "requests per change" and "requests per inventory" figures.
package httpcount

import (
	"net/http"
	"sync/atomic"
)

// probePath is the watcher's liveness probe (every couple of seconds per
// datacenter, whatever the fleet does): counted apart so that "requests
// per change" counts what a change costs.
const probePath = "/v1/status/leader"

// Transport is an http.RoundTripper that counts requests and passes them
// to a clone of http.DefaultTransport.
type Transport struct {
	base   http.RoundTripper
	n      atomic.Int64
	probes atomic.Int64
}

// New returns a counting transport.
func New() *Transport {
	return &Transport{base: http.DefaultTransport.(*http.Transport).Clone()}
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Path == probePath {
		t.probes.Add(1)
	} else {
		t.n.Add(1)
	}
	return t.base.RoundTrip(r)
}

// Count returns the requests sent so far, liveness probes excepted.
func (t *Transport) Count() int64 { return t.n.Load() }

// Probes returns the liveness probes sent so far.
func (t *Transport) Probes() int64 { return t.probes.Load() }
