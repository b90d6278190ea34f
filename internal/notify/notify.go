// Package notify tells the on-call team about the deployment server's
// alerts: a node held after failing (or oscillating) at a stage, and the
// circuit breaker opening when too many recent runs failed. Two receivers
// are supported, a Slack incoming webhook and the PagerDuty Events API v2,
// and Multi sends to several at once.
//
// Every alert carries a key naming the incident, e.g.
// "fleetdeck/dc1/held/dc1/web-7/base" for node dc1/web-7 held at stage
// base, so a repeated alert for the same node and stage lands on the same
// PagerDuty incident instead of paging again, and the alert that the
// condition ended (Resolved) closes it.
//
// Sending is bounded: each request has a deadline, a response body is read
// only up to a limit, and a failed request is retried a few times (on 429,
// 5xx and network errors, as both receivers document) with backoff, never
// past the caller's context. Node names, check output and other text in an
// alert may come from anyone who can register a node, so it is reduced to
// one printable line and, for Slack, escaped so it cannot form mentions or
// links. Errors never contain the webhook URL or the routing key: both are
// credentials.
package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/fleetdeck/fleetdeck/internal/backoff"
	"github.com/fleetdeck/fleetdeck/internal/termtext"
)

// Alert is one thing to tell the on-call team.
type Alert struct {
	// Key names the incident: alerts with the same key are the same
	// incident (PagerDuty's dedup_key). Required.
	Key string
	// Summary is one line saying what happened; the key stands in when it
	// is empty.
	Summary string
	// Details are shown with the alert (PagerDuty custom_details).
	Details map[string]string
	// Severity is critical, error, warning or info; "" means error.
	Severity string
	// Resolved says the condition ended: PagerDuty resolves the incident,
	// Slack says "resolved: ...".
	Resolved bool
	// At is when the condition was seen; zero leaves it to the receiver.
	At time.Time
	// Source is where it was seen, e.g. the provisioner's host; "" means
	// "fleetdeck".
	Source string
}

// Sender delivers alerts to one receiver (or several, for Multi).
type Sender interface {
	Send(ctx context.Context, a Alert) error
}

// Severities, as PagerDuty names them (Slack shows the same words).
const (
	SeverityCritical = "critical"
	SeverityError    = "error"
	SeverityWarning  = "warning"
	SeverityInfo     = "info"
)

// defaultSource names the sender when an alert has no Source: PagerDuty
// requires one on a trigger.
const defaultSource = "fleetdeck"

// severity returns a's severity with the default applied.
func (a Alert) severity() string {
	if a.Severity == "" {
		return SeverityError
	}
	return a.Severity
}

// source returns a's source with the default applied.
func (a Alert) source() string {
	if strings.TrimSpace(a.Source) == "" {
		return defaultSource
	}
	return a.Source
}

// summary returns a's summary, or its key when there is none: both
// receivers reject an event with no text.
func (a Alert) summary() string {
	if strings.TrimSpace(a.Summary) == "" {
		return a.Key
	}
	return a.Summary
}

// check rejects an alert no receiver would accept, before anything is
// sent: a receiver's 400 is not retried, so the alert would be lost anyway,
// and later than necessary.
func (a Alert) check() error {
	if strings.TrimSpace(a.Key) == "" {
		return errors.New("alert has no key")
	}
	switch a.severity() {
	case SeverityCritical, SeverityError, SeverityWarning, SeverityInfo:
		return nil
	}
	return fmt.Errorf("severity %q: want critical, error, warning or info", printable(a.Severity, 40))
}

// Multi sends each alert to every sender in it, at the same time so that
// a slow or failing receiver does not delay the others. Nil senders are
// skipped.
type Multi []Sender

// Send sends a to every sender and returns their errors joined (nil if all
// succeeded). It returns when all have finished.
func (m Multi) Send(ctx context.Context, a Alert) error {
	errs := make([]error, len(m))
	var wg sync.WaitGroup
	for i, s := range m {
		if s == nil {
			continue
		}
		wg.Go(func() { errs[i] = s.Send(ctx, a) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// CheckURL reports whether raw is an absolute http or https URL, as a
// receiver's address must be; callers use it to reject configuration early.
// The error does not repeat the URL: a Slack webhook URL is a secret.
func CheckURL(raw string) error {
	if strings.TrimSpace(raw) == "" {
		return errors.New("URL is empty")
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error repeats the URL; keep only its reason.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("not a valid URL: %v", err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("URL scheme %q: want http or https", printable(u.Scheme, 20))
	case u.Opaque != "" || u.Host == "":
		return errors.New("URL has no host: want an absolute URL like https://host/path")
	}
	return nil
}

// Options are how a receiver's client sends. The zero value is usable.
type Options struct {
	// HTTP is the client to send with; nil means one on
	// http.DefaultTransport that does not follow redirects. A client that
	// follows them would turn a redirected POST into a GET whose 200 looks
	// like a delivered alert.
	HTTP *http.Client
	// Timeout bounds each attempt (request and response body), whatever
	// the caller's context allows; 0 means 10 s.
	Timeout time.Duration
	// Attempts is how many times a request is tried in all; 0 means 3.
	Attempts int
	// MinBackoff and MaxBackoff bound the exponential backoff (with
	// jitter) between attempts; 0 means 500 ms and 8 s.
	MinBackoff, MaxBackoff time.Duration
	// MaxRetryAfter caps how long a receiver's Retry-After is honoured;
	// 0 means 30 s. A longer request is waited for only that long.
	MaxRetryAfter time.Duration
}

// Defaults for Options' zero fields.
const (
	defaultTimeout       = 10 * time.Second
	defaultAttempts      = 3
	defaultMinBackoff    = 500 * time.Millisecond
	defaultMaxBackoff    = 8 * time.Second
	defaultMaxRetryAfter = 30 * time.Second
)

// maxResponse is how much of a response body is read: enough for any
// receiver's error message, and a misbehaving endpoint cannot make the
// server read without end.
const maxResponse = 64 << 10

// maxMessage is the longest receiver message kept in an error, in runes.
const maxMessage = 300

func orDuration(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

func (o Options) client() *http.Client {
	if o.HTTP != nil {
		return o.HTTP
	}
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func (o Options) attempts() int {
	if o.Attempts <= 0 {
		return defaultAttempts
	}
	return o.Attempts
}

// StatusError is a receiver's answer other than success: its HTTP status
// and its message (trimmed, printable, short).
type StatusError struct {
	Code    int
	Message string
}

func (e *StatusError) Error() string {
	s := strconv.Itoa(e.Code)
	if t := http.StatusText(e.Code); t != "" {
		s += " " + t
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// post POSTs body as JSON to url until the receiver accepts it (2xx), the
// attempts run out, the receiver refuses it for good (a status other than
// 429 or 5xx), or ctx ends. message turns a refusal's body into text for
// the error. Retrying a POST may deliver an alert twice; both receivers
// deduplicate (PagerDuty by key) or tolerate that better than a lost alert.
func (o Options) post(ctx context.Context, url string, body []byte, message func([]byte) string) error {
	client := o.client()
	bo := backoff.New(orDuration(o.MinBackoff, defaultMinBackoff), orDuration(o.MaxBackoff, defaultMaxBackoff))
	n := o.attempts()
	for i := 1; ; i++ {
		retryAfter, retry, err := o.attempt(ctx, client, url, body, message)
		if err == nil {
			return nil
		}
		// Saying which attempt matters only once there were retries.
		if i > 1 {
			err = fmt.Errorf("attempt %d of %d: %w", i, n, err)
		}
		// ctx's own end (not an attempt's timeout) means no more tries.
		if !retry || i >= n || ctx.Err() != nil {
			return err
		}
		wait := bo.Next()
		if retryAfter > 0 {
			wait = max(wait, min(retryAfter, orDuration(o.MaxRetryAfter, defaultMaxRetryAfter)))
		}
		// Waiting only to be cut off by the deadline would delay the
		// error and tell nothing new.
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return fmt.Errorf("%w; not retrying: the next attempt (in %v) would be past the deadline", err, wait.Round(time.Millisecond))
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w; stopped waiting to retry: %w", err, ctx.Err())
		case <-t.C:
		}
	}
}

// attempt makes one request. It returns whether the failure may be retried
// and, for a 429 or 5xx, the receiver's Retry-After (0 when absent).
func (o Options) attempt(ctx context.Context, client *http.Client, url string, body []byte, message func([]byte) string) (time.Duration, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, orDuration(o.Timeout, defaultTimeout))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, false, redact(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "fleetdeck-notify")
	resp, err := client.Do(req)
	if err != nil {
		// Network errors and attempt timeouts: the receivers say retry.
		return 0, true, redact(err)
	}
	defer resp.Body.Close()
	// Read (within the attempt's deadline) before closing so that a
	// reused connection is left clean, and so the message is at hand.
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	code := resp.StatusCode
	if code >= 200 && code < 300 {
		return 0, false, nil
	}
	serr := &StatusError{Code: code, Message: message(b)}
	if code == http.StatusTooManyRequests || code >= 500 {
		return retryAfter(resp.Header.Get("Retry-After"), time.Now()), true, serr
	}
	return 0, false, serr
}

// retryAfter parses a Retry-After header: delay-seconds or an HTTP date.
// Anything else, or a time already past, gives 0.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		// Anything beyond a day is capped later anyway; keep the
		// multiplication from overflowing.
		return time.Duration(min(secs, 86400)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// redact removes the URL from a client error, keeping the scheme and host:
// a Slack webhook's path is its secret, and url.Error prints it whole.
func redact(err error) error {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return err
	}
	where := "receiver"
	if u, perr := url.Parse(ue.URL); perr == nil && u.Host != "" {
		where = u.Scheme + "://" + u.Host
	}
	return fmt.Errorf("%s %s: %w", ue.Op, where, ue.Err)
}

// printable reduces untrusted text to one printable line of at most n
// runes, for messages and errors.
func printable(s string, n int) string {
	return cutRunes(strings.TrimSpace(termtext.Sanitize(s)), n)
}

// bodyMessage is a receiver's plain-text answer as an error message.
func bodyMessage(b []byte) string {
	return printable(string(b), maxMessage)
}

// ellipsis marks text that was cut.
const ellipsis = "…"

// cutRunes cuts s to at most n runes, the last being an ellipsis when
// something was cut. Invalid UTF-8 becomes U+FFFD so the result is always
// valid.
func cutRunes(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	if n <= 0 {
		return ""
	}
	i, count := 0, 0
	for i < len(s) && count < n-1 {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
		count++
	}
	return s[:i] + ellipsis
}
