package notify

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"
)

// heldAlert is what the deployment server sends for a held node.
func heldAlert() Alert {
	return Alert{
		Key:      "fleetdeck/dc1/held/dc1/web-7/base",
		Summary:  "dc1/web-7 held at stage base after 3 failed runs",
		Details:  map[string]string{"last_error": "exit status 2", "attempts": "3"},
		Severity: "critical",
		At:       time.Date(2026, 3, 1, 13, 0, 0, 0, time.FixedZone("CET", 3600)),
		Source:   "prov-1.dc1",
	}
}

// slackPayload decodes a webhook request and checks it is {"text": ...}
// and nothing else.
func slackPayload(t *testing.T, body []byte) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("payload %q is not JSON: %v", body, err)
	}
	text, ok := m["text"].(string)
	if !ok || len(m) != 1 {
		t.Fatalf("payload %s: want exactly a string \"text\"", body)
	}
	return text
}

func TestSlackPayload(t *testing.T) {
	r := newReceiver(t, reply{code: 200, body: "ok"})
	s, err := NewSlack(r.srv.URL+"/services/T000/B000/XXXX", fast)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), heldAlert()); err != nil {
		t.Fatalf("Send = %v", err)
	}
	want := "*CRITICAL*: dc1/web-7 held at stage base after 3 failed runs\n" +
		"• attempts: 3\n" +
		"• last_error: exit status 2\n" +
		"source prov-1.dc1 at 2026-03-01T12:00:00Z · key fleetdeck/dc1/held/dc1/web-7/base"
	if got := slackPayload(t, r.body(0)); got != want {
		t.Errorf("text:\n%s\nwant:\n%s", got, want)
	}
	if r.count() != 1 {
		t.Errorf("%d requests, want 1", r.count())
	}
}

func TestSlackResolvedAndDefaults(t *testing.T) {
	r := newReceiver(t, reply{code: 200, body: "ok"})
	s := &Slack{URL: r.srv.URL, Options: fast}
	a := Alert{Key: "fleetdeck/dc1/breaker", Resolved: true}
	if err := s.Send(context.Background(), a); err != nil {
		t.Fatalf("Send = %v", err)
	}
	// No summary: the key stands in; no source: "fleetdeck"; no time:
	// none shown.
	want := "resolved: fleetdeck/dc1/breaker\nsource fleetdeck · key fleetdeck/dc1/breaker"
	if got := slackPayload(t, r.body(0)); got != want {
		t.Errorf("text %q, want %q", got, want)
	}
	a = Alert{Key: "k", Summary: "breaker open"}
	if err := s.Send(context.Background(), a); err != nil {
		t.Fatalf("Send = %v", err)
	}
	if got := slackPayload(t, r.body(1)); !strings.HasPrefix(got, "*ERROR*: breaker open\n") {
		t.Errorf("text %q: want the default severity ERROR", got)
	}
}

// Node names and check output are untrusted: they must not ping the
// channel, make links, forge lines or carry terminal escapes.
func TestSlackEscapesHostileText(t *testing.T) {
	r := newReceiver(t, reply{code: 200, body: "ok"})
	s := &Slack{URL: r.srv.URL, Options: fast}
	a := Alert{
		Key:     "fleetdeck/dc1/held/<!everyone>/base",
		Summary: "node <!channel> held & <http://evil|click here>\nresolved: all fine \x1b[31mred",
		Details: map[string]string{"<!here>": "a > b && <@U0123>", "note": "line1\r\nline2"},
		Source:  "<https://evil.example|prov-1>",
	}
	if err := s.Send(context.Background(), a); err != nil {
		t.Fatalf("Send = %v", err)
	}
	text := slackPayload(t, r.body(0))
	if strings.ContainsAny(text, "<>\x1b\r") {
		t.Errorf("text %q has a raw <, >, ESC or CR", text)
	}
	for _, want := range []string{
		"node &lt;!channel&gt; held &amp; &lt;http://evil|click here&gt; resolved: all fine red",
		"\n• &lt;!here&gt;: a &gt; b &amp;&amp; &lt;@U0123&gt;\n",
		"\n• note: line1  line2\n",
		"source &lt;https://evil.example|prov-1&gt;",
		"key fleetdeck/dc1/held/&lt;!everyone&gt;/base",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("text %q lacks %q", text, want)
		}
	}
	// Headline, two details, source line: the summary's newline made no
	// line of its own.
	if lines := strings.Split(text, "\n"); len(lines) != 4 {
		t.Errorf("text has %d lines, want 4: %q", len(lines), lines)
	}
}

// Huge text is cut before it reaches Slack, and so is a flood of details.
func TestSlackTextBounded(t *testing.T) {
	details := map[string]string{}
	for i := range 50 {
		details[string(rune('a'+i%26))+strings.Repeat("x", i)] = strings.Repeat("v", 10000)
	}
	text := slackText(Alert{Key: "k", Summary: strings.Repeat("s", 5000), Details: details})
	lines := strings.Split(text, "\n")
	if n := len([]rune(lines[0])); n != len("*ERROR*: ")+slackMaxSummary {
		t.Errorf("headline is %d runes, want %d", n, len("*ERROR*: ")+slackMaxSummary)
	}
	// Headline, slackMaxDetails details, "… N more", source.
	if len(lines) != slackMaxDetails+3 {
		t.Fatalf("%d lines, want %d", len(lines), slackMaxDetails+3)
	}
	if got := lines[slackMaxDetails+1]; got != "• … 30 more" {
		t.Errorf("overflow line %q, want %q", got, "• … 30 more")
	}
	for _, l := range lines[1 : slackMaxDetails+1] {
		if n := len([]rune(l)); n > 4+slackMaxName+slackMaxValue {
			t.Errorf("detail line of %d runes", n)
		}
	}
}

// Slack's documented refusals are final: one request, and the error says
// which alert, the status and Slack's own words.
func TestSlackRefusalNotRetried(t *testing.T) {
	cases := []struct {
		code int
		body string
		want string
	}{
		{400, "invalid_payload", "400 Bad Request: invalid_payload"},
		{400, "no_text", "400 Bad Request: no_text"},
		{403, "action_prohibited", "403 Forbidden: action_prohibited"},
		{404, "channel_not_found", "404 Not Found: channel_not_found"},
		{410, "channel_is_archived", "410 Gone: channel_is_archived"},
		{400, "", "400 Bad Request"},
	}
	for _, tc := range cases {
		r := newReceiver(t, reply{code: tc.code, body: tc.body})
		s := &Slack{URL: r.srv.URL + "/services/T000/B000/SECRETTOKEN", Options: fast}
		err := s.Send(context.Background(), heldAlert())
		want := "slack: sending alert fleetdeck/dc1/held/dc1/web-7/base: " + tc.want
		if err == nil || err.Error() != want {
			t.Errorf("%d %s: Send = %v, want %q", tc.code, tc.body, err, want)
		}
		var se *StatusError
		if !errors.As(err, &se) || se.Code != tc.code || se.Message != tc.body {
			t.Errorf("%d %s: Send = %#v, want a *StatusError with code and message", tc.code, tc.body, err)
		}
		if n := r.count(); n != 1 {
			t.Errorf("%d %s: %d requests, want 1 (no retry)", tc.code, tc.body, n)
		}
	}
}

// A receiver's message is cut and made printable before it is put in an
// error that will be logged or shown in a terminal.
func TestSlackMessageSanitised(t *testing.T) {
	body := "  invalid_payload\x1b]0;pwned\x07 \x1b[2J\n" + strings.Repeat("z", 200<<10)
	r := newReceiver(t, reply{code: 400, body: body})
	s := &Slack{URL: r.srv.URL, Options: fast}
	err := s.Send(context.Background(), heldAlert())
	var se *StatusError
	if !errors.As(err, &se) {
		t.Fatalf("Send = %v, want a *StatusError", err)
	}
	if !strings.HasPrefix(se.Message, "invalid_payload") || strings.ContainsAny(se.Message, "\x1b\x07\n") {
		t.Errorf("message %q: want it trimmed, starting with invalid_payload, with no controls", se.Message)
	}
	if n := len([]rune(se.Message)); n != maxMessage || !strings.HasSuffix(se.Message, "…") {
		t.Errorf("message is %d runes, want %d ending in …", n, maxMessage)
	}
}

// 429 with Retry-After: 1 is waited for (the backoff alone is a few
// milliseconds), then the retry succeeds.
func TestSlackHonoursRetryAfter(t *testing.T) {
	r := newReceiver(t,
		reply{code: 429, body: "rate_limited", header: map[string]string{"Retry-After": "1"}},
		reply{code: 200, body: "ok"})
	s := &Slack{URL: r.srv.URL, Options: fast}
	start := time.Now()
	if err := s.Send(context.Background(), heldAlert()); err != nil {
		t.Fatalf("Send = %v", err)
	}
	if el := time.Since(start); el < 950*time.Millisecond || el > 5*time.Second {
		t.Errorf("Send took %v, want about the 1 s Retry-After", el)
	}
	if n := r.count(); n != 2 {
		t.Errorf("%d requests, want 2", n)
	}
	if string(r.body(0)) != string(r.body(1)) {
		t.Errorf("retry sent %s, first try %s: want the same message", r.body(1), r.body(0))
	}
}

// A Retry-After beyond MaxRetryAfter is waited for only that long.
func TestRetryAfterCapped(t *testing.T) {
	r := newReceiver(t,
		reply{code: 429, body: "rate_limited", header: map[string]string{"Retry-After": "3600"}},
		reply{code: 200, body: "ok"})
	o := fast
	o.MaxRetryAfter = 50 * time.Millisecond
	s := &Slack{URL: r.srv.URL, Options: o}
	start := time.Now()
	if err := s.Send(context.Background(), heldAlert()); err != nil {
		t.Fatalf("Send = %v", err)
	}
	if el := time.Since(start); el < 50*time.Millisecond || el > 3*time.Second {
		t.Errorf("Send took %v, want about the 50 ms cap", el)
	}
	if n := r.count(); n != 2 {
		t.Errorf("%d requests, want 2", n)
	}
}

// When the caller's deadline comes before the receiver allows a retry,
// Send gives up at once instead of sleeping into the deadline.
func TestRetryAfterPastDeadline(t *testing.T) {
	r := newReceiver(t, reply{code: 429, body: "rate_limited", header: map[string]string{"Retry-After": "20"}})
	s := &Slack{URL: r.srv.URL, Options: fast}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	start := time.Now()
	err := s.Send(ctx, heldAlert())
	if el := time.Since(start); el > time.Second {
		t.Errorf("Send took %v, want an immediate error", el)
	}
	if err == nil || !strings.Contains(err.Error(), "429 Too Many Requests: rate_limited") || !strings.Contains(err.Error(), "past the deadline") {
		t.Errorf("Send = %v, want the 429 and why it was not retried", err)
	}
	if n := r.count(); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

// 5xx is retried with backoff, up to Attempts; then the last answer is in
// the error.
func TestSlackRetries5xx(t *testing.T) {
	r := newReceiver(t, reply{code: 500, body: "rollup_error"}, reply{code: 502}, reply{code: 200, body: "ok"})
	s := &Slack{URL: r.srv.URL, Options: fast}
	if err := s.Send(context.Background(), heldAlert()); err != nil {
		t.Fatalf("Send = %v", err)
	}
	if n := r.count(); n != 3 {
		t.Errorf("%d requests, want 3", n)
	}

	r = newReceiver(t, reply{code: 503, body: "down"})
	o := fast
	o.Attempts = 4
	s = &Slack{URL: r.srv.URL, Options: o}
	err := s.Send(context.Background(), heldAlert())
	want := "slack: sending alert fleetdeck/dc1/held/dc1/web-7/base: attempt 4 of 4: 503 Service Unavailable: down"
	if err == nil || err.Error() != want {
		t.Errorf("Send = %v, want %q", err, want)
	}
	if n := r.count(); n != 4 {
		t.Errorf("%d requests, want 4", n)
	}
}

// A dropped connection is retried like a 5xx.
func TestSlackRetriesNetworkErrors(t *testing.T) {
	r := newReceiver(t, reply{drop: true}, reply{drop: true}, reply{code: 200, body: "ok"})
	s := &Slack{URL: r.srv.URL, Options: fast}
	if err := s.Send(context.Background(), heldAlert()); err != nil {
		t.Fatalf("Send = %v", err)
	}
	if n := r.count(); n != 3 {
		t.Errorf("%d requests, want 3", n)
	}
}

// A receiver that never answers: the caller's deadline ends the send, at
// once and without a retry.
func TestSlackHangingReceiverCallerDeadline(t *testing.T) {
	r := newReceiver(t, reply{hang: true})
	s := &Slack{URL: r.srv.URL, Options: fast}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := s.Send(ctx, heldAlert())
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("Send took %v, want about 200 ms", el)
	}
	if !errors.Is(err, context.DeadlineExceeded) || !strings.HasPrefix(err.Error(), "slack: sending alert ") {
		t.Errorf("Send = %v, want a wrapped deadline error", err)
	}
	if n := r.count(); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

// With no deadline from the caller, each attempt still has one.
func TestSlackHangingReceiverAttemptTimeout(t *testing.T) {
	r := newReceiver(t, reply{hang: true})
	o := fast
	o.Timeout = 100 * time.Millisecond
	o.Attempts = 2
	s := &Slack{URL: r.srv.URL, Options: o}
	start := time.Now()
	err := s.Send(context.Background(), heldAlert())
	if el := time.Since(start); el < 200*time.Millisecond || el > 3*time.Second {
		t.Errorf("Send took %v, want about 2 × 100 ms", el)
	}
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "attempt 2 of 2") {
		t.Errorf("Send = %v, want the second attempt's deadline error", err)
	}
	if n := r.count(); n != 2 {
		t.Errorf("%d requests, want 2", n)
	}
}

// Cancelling while a retry is pending ends the wait at once.
func TestSlackCancelDuringBackoff(t *testing.T) {
	r := newReceiver(t, reply{code: 500})
	o := fast
	o.MinBackoff, o.MaxBackoff = 30*time.Second, 30*time.Second
	s := &Slack{URL: r.srv.URL, Options: o}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-r.got
		time.Sleep(50 * time.Millisecond) // let Send start waiting
		cancel()
	}()
	start := time.Now()
	err := s.Send(ctx, heldAlert())
	<-done
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("Send took %v after cancel, want at once", el)
	}
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "500 Internal Server Error") {
		t.Errorf("Send = %v, want the 500 and the cancellation", err)
	}
	if n := r.count(); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

// The webhook URL is a credential: no error may contain its path, neither
// a refusal nor a network error.
func TestSlackErrorsHideWebhookURL(t *testing.T) {
	r := newReceiver(t, reply{code: 404, body: "no_service"})
	s := &Slack{URL: r.srv.URL + "/services/T000/B000/SECRETTOKEN", Options: fast}
	err := s.Send(context.Background(), heldAlert())
	if err == nil || strings.Contains(err.Error(), "SECRETTOKEN") {
		t.Errorf("refusal: Send = %v, want an error without the URL", err)
	}

	closed := httptest.NewServer(http.NotFoundHandler())
	url := closed.URL + "/services/T000/B000/SECRETTOKEN"
	host := strings.TrimPrefix(closed.URL, "http://")
	closed.Close()
	o := fast
	o.Attempts = 2
	s = &Slack{URL: url, Options: o}
	err = s.Send(context.Background(), heldAlert())
	if err == nil || strings.Contains(err.Error(), "SECRETTOKEN") {
		t.Errorf("network error: Send = %v, want an error without the URL path", err)
	}
	if err != nil && !strings.Contains(err.Error(), host) {
		t.Errorf("network error: Send = %v, want it to name the host %s", err, host)
	}

	if _, err := NewSlack("ftp://hooks.example/SECRETTOKEN", fast); err == nil || strings.Contains(err.Error(), "SECRETTOKEN") {
		t.Errorf("NewSlack(bad URL) = %v, want an error without the URL", err)
	}
}

// A redirect is not followed: following it would turn the POST into a GET
// whose 200 would look like a delivered alert.
func TestSlackRedirectNotFollowed(t *testing.T) {
	var elsewhere int
	mux := http.NewServeMux()
	mux.HandleFunc("/hook", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/elsewhere", http.StatusFound)
	})
	mux.HandleFunc("/elsewhere", func(w http.ResponseWriter, r *http.Request) {
		elsewhere++
		w.Write([]byte("ok"))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	s := &Slack{URL: srv.URL + "/hook", Options: fast}
	err := s.Send(context.Background(), heldAlert())
	var se *StatusError
	if !errors.As(err, &se) || se.Code != http.StatusFound {
		t.Errorf("Send = %v, want a 302 error", err)
	}
	if elsewhere != 0 {
		t.Errorf("the redirect was followed %d times", elsewhere)
	}
}

// A caller's own client is used.
func TestSlackUsesGivenClient(t *testing.T) {
	var seen []string
	o := fast
	o.HTTP = &http.Client{Transport: roundTripFunc(func(req *http.Request) (*http.Response, error) {
		seen = append(seen, req.URL.String())
		return textResponse(req, 200, "ok"), nil
	})}
	s, err := NewSlack("https://hooks.slack.com/services/T000/B000/XXXX", o)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), heldAlert()); err != nil {
		t.Fatalf("Send = %v", err)
	}
	if want := []string{"https://hooks.slack.com/services/T000/B000/XXXX"}; !reflect.DeepEqual(seen, want) {
		t.Errorf("requests %v, want %v", seen, want)
	}
}
