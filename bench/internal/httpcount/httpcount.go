// Package httpcount counts the HTTP requests a benchmark's client sends,
// for the "requests per change" and "requests per inventory" figures.
package httpcount

import (
	"net/http"
	"sync/atomic"
)

// Transport is an http.RoundTripper that counts requests and passes them
// to a clone of http.DefaultTransport.
type Transport struct {
	base http.RoundTripper
	n    atomic.Int64
}

// New returns a counting transport.
func New() *Transport {
	return &Transport{base: http.DefaultTransport.(*http.Transport).Clone()}
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(r *http.Request) (*http.Response, error) {
	t.n.Add(1)
	return t.base.RoundTrip(r)
}

// Count returns the requests sent so far.
func (t *Transport) Count() int64 { return t.n.Load() }
