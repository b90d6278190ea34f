// Package backoff is fleetdeck's one retry delay: exponential backoff with
// jitter, used by the Consul watcher (fleet) and by the Cloud Logging
// lists and tails (logview). It has no dependencies so that both can share
// it without either importing the other's client libraries.
package backoff

import (
	"math/rand/v2"
	"time"
)

// Backoff is exponential backoff with jitter between a minimum and a
// maximum delay. Not safe for concurrent use: each retrying loop keeps its
// own.
type Backoff struct {
	min, max time.Duration
	n        int
}

// New returns a backoff whose delays start at min and double up to max. A
// min that is not positive, or above max, gives max every time.
func New(min, max time.Duration) Backoff {
	return Backoff{min: min, max: max}
}

// Next returns the delay before the next retry and raises the step. The
// step's ceiling is min·2ⁿ capped at max; the delay is half that ceiling
// fixed and half random: many consoles (or views) that failed together
// spread out, and none ever retries at once.
func (b *Backoff) Next() time.Duration {
	d := b.min << min(b.n, 30)
	// d ≤ 0: a zero min, or a shift that overflowed.
	if d > b.max || d <= 0 {
		d = b.max
	} else {
		b.n++
	}
	return d/2 + rand.N(d/2+1)
}

// Reset starts over from min: call it after a success.
func (b *Backoff) Reset() { b.n = 0 }
