package notify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fleetdeck/fleetdeck/internal/termtext"
)

// DefaultPagerDutyURL is the Events API v2 endpoint.
const DefaultPagerDutyURL = "https://events.pagerduty.com/v2/enqueue"

// PagerDuty sends alerts as Events API v2 events: a trigger with the alert
// as payload, or a resolve when the alert is Resolved, both carrying the
// alert's key as dedup_key. PagerDuty answers 202 when it has the event,
// 400 for an invalid one, 429 when rate-limited and 5xx when it failed.
type PagerDuty struct {
	// URL is the endpoint; "" means DefaultPagerDutyURL.
	URL string
	// RoutingKey is the Events API v2 integration key of the service to
	// alert. It is a credential and never appears in errors.
	RoutingKey string
	Options
}

// NewPagerDuty returns a sender to the service with this integration key.
func NewPagerDuty(routingKey string, o Options) (*PagerDuty, error) {
	p := &PagerDuty{RoutingKey: routingKey, Options: o}
	if err := p.checkKey(); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *PagerDuty) checkKey() error {
	if p.RoutingKey == "" {
		return errors.New("pagerduty: routing key is empty")
	}
	if !termtext.IsPrintableASCII(p.RoutingKey) || strings.ContainsRune(p.RoutingKey, ' ') {
		// Usually a key pasted with its newline; say so without
		// printing it.
		return errors.New("pagerduty: routing key has spaces or unprintable characters")
	}
	return nil
}

// Limits PagerDuty documents for an event.
const (
	pdMaxSummary  = 1024 // payload.summary, characters
	pdMaxDedupKey = 255  // dedup_key, characters
)

type pdEvent struct {
	RoutingKey  string `json:"routing_key"`
	EventAction string `json:"event_action"`
	DedupKey    string `json:"dedup_key"`
	// Client names the monitoring tool; only used on a trigger.
	Client  string     `json:"client,omitempty"`
	Payload *pdPayload `json:"payload,omitempty"`
}

type pdPayload struct {
	Summary       string            `json:"summary"`
	Source        string            `json:"source"`
	Severity      string            `json:"severity"`
	Timestamp     string            `json:"timestamp,omitempty"`
	CustomDetails map[string]string `json:"custom_details,omitempty"`
}

// Send sends a as a trigger event, or a resolve event if a.Resolved.
func (p *PagerDuty) Send(ctx context.Context, a Alert) error {
	if err := a.check(); err != nil {
		return fmt.Errorf("pagerduty: alert %s: %w", printable(a.Key, 255), err)
	}
	if err := p.checkKey(); err != nil {
		return err
	}
	url := p.URL
	if url == "" {
		url = DefaultPagerDutyURL
	}
	if err := CheckURL(url); err != nil {
		return fmt.Errorf("pagerduty: endpoint %w", err)
	}
	body, err := json.Marshal(pdEventOf(p.RoutingKey, a))
	if err != nil {
		return fmt.Errorf("pagerduty: encoding alert %s: %w", printable(a.Key, 255), err)
	}
	if err := p.post(ctx, url, body, pdMessage); err != nil {
		return fmt.Errorf("pagerduty: sending alert %s: %w", printable(a.Key, 255), err)
	}
	return nil
}

// pdEventOf is a's event. A resolve carries no payload: PagerDuty needs
// only the routing key, the action and the dedup key to close the alert.
func pdEventOf(routingKey string, a Alert) pdEvent {
	ev := pdEvent{RoutingKey: routingKey, DedupKey: dedupKey(a.Key)}
	if a.Resolved {
		ev.EventAction = "resolve"
		return ev
	}
	ev.EventAction = "trigger"
	ev.Client = "fleetdeck"
	ev.Payload = &pdPayload{
		// The summary becomes the incident's title, SMS and phone
		// call: one printable line, within PagerDuty's limit.
		Summary:  printable(a.summary(), pdMaxSummary),
		Source:   printable(a.source(), 255),
		Severity: a.severity(),
	}
	if !a.At.IsZero() {
		ev.Payload.Timestamp = a.At.UTC().Format(time.RFC3339)
	}
	if len(a.Details) > 0 {
		// Shown as data, not text to parse: kept as given.
		ev.Payload.CustomDetails = a.Details
	}
	return ev
}

// dedupKey is key as PagerDuty's dedup_key, which is at most 255
// characters. A longer key (or one that is not valid UTF-8) keeps a
// readable prefix and ends in the SHA-256 of the whole key, so that two
// long keys with the same start stay two incidents and the same key always
// maps to the same dedup_key. Bytes are counted, never fewer than
// characters, so the limit holds however PagerDuty counts.
func dedupKey(key string) string {
	if len(key) <= pdMaxDedupKey && utf8.ValidString(key) {
		return key
	}
	sum := sha256.Sum256([]byte(key))
	suffix := "~" + hex.EncodeToString(sum[:])
	prefix := strings.ToValidUTF8(key, "\uFFFD")
	cut := pdMaxDedupKey - len(suffix)
	if len(prefix) > cut {
		cut = max(cut, 0)
		for cut > 0 && !utf8.RuneStart(prefix[cut]) {
			cut--
		}
		prefix = prefix[:cut]
	}
	return prefix + suffix
}

// pdMessage is PagerDuty's error answer ({"status", "message", "errors"})
// as one line; a body that is not that JSON is shown as text.
func pdMessage(b []byte) string {
	var r struct {
		Status  string   `json:"status"`
		Message string   `json:"message"`
		Errors  []string `json:"errors"`
	}
	if json.Unmarshal(b, &r) != nil || (r.Status == "" && r.Message == "") {
		return bodyMessage(b)
	}
	parts := make([]string, 0, 2)
	for _, s := range []string{r.Status, r.Message} {
		if s != "" {
			parts = append(parts, s)
		}
	}
	s := strings.Join(parts, ": ")
	if len(r.Errors) > 0 {
		s += " (" + strings.Join(r.Errors, "; ") + ")"
	}
	return printable(s, maxMessage)
}
