package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Slack posts alerts to a Slack incoming webhook: a JSON {"text": ...}
// message, answered by 200 "ok", a 4xx with a short error string
// (invalid_payload, no_text, channel_not_found, ...), or 429 with
// Retry-After when posting too fast.
type Slack struct {
	// URL is the webhook's address, https://hooks.slack.com/services/...;
	// it is a credential and never appears in errors.
	URL string
	Options
}

// NewSlack returns a sender to the webhook at url, after checking that
// url is an absolute http(s) URL.
func NewSlack(url string, o Options) (*Slack, error) {
	if err := CheckURL(url); err != nil {
		return nil, fmt.Errorf("slack: webhook %w", err)
	}
	return &Slack{URL: url, Options: o}, nil
}

// slackMessage is the webhook's payload. Only text: it is what
// notifications and the channel show, and needs no Block Kit to carry a
// few lines.
type slackMessage struct {
	Text string `json:"text"`
}

// Lengths that keep a message readable and well under Slack's limits
// whatever a node or a check puts in it, in runes.
const (
	slackMaxSummary = 1024
	slackMaxName    = 100
	slackMaxValue   = 500
	slackMaxDetails = 20
)

// Send posts a to the webhook.
func (s *Slack) Send(ctx context.Context, a Alert) error {
	if err := a.check(); err != nil {
		return fmt.Errorf("slack: alert %s: %w", printable(a.Key, 255), err)
	}
	if err := CheckURL(s.URL); err != nil {
		return fmt.Errorf("slack: webhook %w", err)
	}
	body, err := json.Marshal(slackMessage{Text: slackText(a)})
	if err != nil {
		return fmt.Errorf("slack: encoding alert %s: %w", printable(a.Key, 255), err)
	}
	if err := s.post(ctx, s.URL, body, bodyMessage); err != nil {
		return fmt.Errorf("slack: sending alert %s: %w", printable(a.Key, 255), err)
	}
	return nil
}

// slackText is a's message: a headline, a bullet per detail (sorted, so
// repeated alerts read the same), and a line saying where, when and which
// incident. Every piece of a's text is one printable line, escaped.
func slackText(a Alert) string {
	var b strings.Builder
	if a.Resolved {
		b.WriteString("resolved: ")
	} else {
		b.WriteString("*" + strings.ToUpper(a.severity()) + "*: ")
	}
	b.WriteString(slackField(a.summary(), slackMaxSummary))
	keys := make([]string, 0, len(a.Details))
	for k := range a.Details {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for i, k := range keys {
		if i == slackMaxDetails {
			fmt.Fprintf(&b, "\n• … %d more", len(keys)-i)
			break
		}
		b.WriteString("\n• " + slackField(k, slackMaxName) + ": " + slackField(a.Details[k], slackMaxValue))
	}
	b.WriteString("\nsource " + slackField(a.source(), slackMaxName))
	if !a.At.IsZero() {
		b.WriteString(" at " + a.At.UTC().Format(time.RFC3339))
	}
	b.WriteString(" · key " + slackField(a.Key, 255))
	return b.String()
}

// slackField makes untrusted text safe in a message: one printable line
// (a newline could forge a line of the message), cut to n runes, then &, <
// and > escaped as Slack documents for its control characters, so
// "<!channel>" or "<http://evil|x>" in a node name is shown, not obeyed.
// Escaping comes after cutting so an entity is never cut in half.
func slackField(s string, n int) string {
	return slackEscape(printable(s, n))
}

// slackEscape replaces Slack's three control characters with their HTML
// entities (and nothing else, as Slack asks).
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
