// Package logview reads a fleet's logs from Google Cloud Logging: it turns a
// node, a role or a group plus an incident moment into a window query,
// lists that window politely (one rate limiter per project, backoff on
// RESOURCE_EXHAUSTED), carries on as a live tail when the window reaches
// now (one shared tail stream per project, reconnected with the gap filled
// by one list call, and called stalled rather than live when keepalive or
// a check of a quiet tail finds it dead), and keeps what it received in a
// bounded, de-duplicated, time-ordered Buffer that the console renders and
// searches.
//
// Everything an entry carries is untrusted: logview never renders, it only
// stores the raw strings; the console sanitises them before they reach the
// terminal.
package logview

import (
	"context"
	"time"
)

// Severity mirrors google.logging.type.LogSeverity: the numbers are the
// API's, so a floor compares with >= like the filter language does.
type Severity int32

// Severities, as the API numbers them.
const (
	Default   Severity = 0
	Debug     Severity = 100
	Info      Severity = 200
	Notice    Severity = 300
	Warning   Severity = 400
	Error     Severity = 500
	Critical  Severity = 600
	Alert     Severity = 700
	Emergency Severity = 800
)

// Entry is one log entry as fleetdeck keeps it. All strings are raw, as
// received.
type Entry struct {
	// InsertID de-duplicates: the same entry seen by a list and by the
	// tail has the same InsertID (together with LogName and Time).
	InsertID string
	// Project is the project the entry was read from.
	Project string
	// LogName is the full log name ("projects/p/logs/syslog").
	LogName string
	// Time is the entry's timestamp (when the event happened); Received is
	// when Cloud Logging received it.
	Time     time.Time
	Received time.Time
	Severity Severity
	// Node is the fleet node the entry was matched to through the
	// Mapping ("" when it matches none of the query's nodes).
	Node string
	// ResourceType and ResourceLabels are the monitored resource.
	ResourceType   string
	ResourceLabels map[string]string
	// Labels are the entry's user labels.
	Labels map[string]string
	// Context holds the entry's other metadata, flattened, when present:
	// "trace", "spanId", "traceSampled", "sourceLocation" (file:line
	// function), "operation" (producer/id, first/last), and
	// "httpRequest.<field>" (method, url, status, latency, remoteIp, …).
	Context map[string]string
	// Text is the one-line summary shown in the stream: the text payload,
	// a JSON payload's "message" (or "msg", "error"), or the HTTP request
	// line; raw, possibly multi-line and hostile.
	Text string
	// Payload is the whole payload rendered as indented JSON (text
	// payloads as a JSON string), for the expanded view and for copying.
	Payload string
}

// Query says which entries a view wants.
type Query struct {
	// Title names the view's subject, e.g. "node web-17" or "role web".
	Title string
	// Nodes are the nodes whose logs are wanted (one for a node view, all
	// members for a role or group). Their Meta feeds the Mapping.
	Nodes []NodeRef
	// From and To bound the window. A To at or after now (or zero) means
	// the view continues as a live tail after the listed window.
	From, To time.Time
	// Incident is the moment the view was opened for (marked in the
	// stream); zero when there is none.
	Incident time.Time
	// MinSeverity is the severity floor (Default lists everything).
	MinSeverity Severity
}

// NodeRef is what the Mapping needs to know about a node.
type NodeRef struct {
	Name    string
	Address string
	Meta    map[string]string
}

// Phase is what a Stream is doing.
type Phase uint8

// Stream phases.
const (
	// Listing: reading the window's pages (and, for a view that goes
	// live, the short gap between the window and the tail's start).
	Listing Phase = iota
	// Live: the window is listed and the tail delivers new entries.
	Live
	// Reconnecting: the tail ended or failed; the next attempt comes after
	// a backoff and a list call fills the gap.
	Reconnecting
	// Stalled: the tail was found dead although it had not ended: a
	// liveness check failed or found entries the tail had not delivered,
	// gRPC keepalive gave up on its connection, or a new tail got no
	// answer. LastSign says when it last worked; it reconnects like
	// Reconnecting (RetryAt) and is Live again once a new tail and its
	// gap fill work.
	Stalled
	// Done: the window did not reach now; everything was listed.
	Done
	// Failed: the stream gave up (bad filter, permission denied); Err says
	// why.
	Failed
)

// Status is a Stream's state as the console shows it.
type Status struct {
	Phase Phase
	// Err is the last error (a quota error while backing off, a dropped
	// tail), nil when all is well. It stays set in Failed.
	Err error
	// RetryAt is when the next attempt is made while backing off.
	RetryAt time.Time
	// LastSign, in Stalled, is the last time the tail was known to work:
	// its last answer, a liveness check that passed, or the gap fill
	// after its start (the oldest of the projects' when several stall).
	LastSign time.Time
	// Listed counts entries received from list calls, Tailed from the
	// tail; Duplicates those dropped as already seen.
	Listed, Tailed, Duplicates int
	// Suppressed counts entries the service reported as suppressed in the
	// tail (rate limited or not consumed), by reason.
	Suppressed map[string]int64
	// ListCalls counts list calls made for this stream (its window pages
	// and the gap fills of the tails it shares).
	ListCalls int
	// Dropped counts entries discarded because more than the Service's
	// Cap were waiting for Next (the oldest go first).
	Dropped int
	// Unmapped names the query's nodes that have no mapping value (no
	// instance id) and are therefore not in the view.
	Unmapped []string
}

// Batch is what Stream.Next returns: new entries in timestamp order, and
// the stream's status after them. Entries may be older than entries
// returned earlier (a gap fill after a reconnect); Buffer.Add merges them.
type Batch struct {
	Entries []*Entry
	Status  Status
}

// Stream delivers one view's entries. Next blocks until there is something
// new (entries or a status change) or ctx is done; entries that arrive
// while nobody calls Next are batched, up to the Service's cap. Once a
// stream is Done or Failed and its last batch was returned, Next returns
// io.EOF (with the final Status); after Close (or the Service's Close) it
// returns ErrClosed. Close stops the stream and releases its share of the
// tail.
type Stream interface {
	Next(ctx context.Context) (Batch, error)
	Close()
}

// Opener opens streams; Service implements it. The console depends on
// this interface only.
type Opener interface {
	Open(ctx context.Context, q Query) (Stream, error)
}
