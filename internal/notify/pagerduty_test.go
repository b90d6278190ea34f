package notify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

const testRoutingKey = "R0123456789abcdef0123456789abcde"

// pdAccepted is PagerDuty's documented answer to an accepted event.
func pdAccepted(dedup string) reply {
	return reply{code: 202, body: `{"status":"success","message":"Event processed","dedup_key":"` + dedup + `"}`}
}

// pdEventJSON decodes a request body as generic JSON, so a comparison
// also catches fields that should not be there.
func pdEventJSON(t *testing.T, body []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("event %q is not JSON: %v", body, err)
	}
	return m
}

func newTestPagerDuty(t *testing.T, r *receiver) *PagerDuty {
	t.Helper()
	p, err := NewPagerDuty(testRoutingKey, fast)
	if err != nil {
		t.Fatal(err)
	}
	p.URL = r.srv.URL + "/v2/enqueue"
	return p
}

func TestPagerDutyTrigger(t *testing.T) {
	r := newReceiver(t, pdAccepted("fleetdeck/dc1/held/dc1/web-7/base"))
	p := newTestPagerDuty(t, r)
	if err := p.Send(context.Background(), heldAlert()); err != nil {
		t.Fatalf("Send = %v", err)
	}
	want := map[string]any{
		"routing_key":  testRoutingKey,
		"event_action": "trigger",
		"dedup_key":    "fleetdeck/dc1/held/dc1/web-7/base",
		"client":       "fleetdeck",
		"payload": map[string]any{
			"summary":   "dc1/web-7 held at stage base after 3 failed runs",
			"source":    "prov-1.dc1",
			"severity":  "critical",
			"timestamp": "2026-03-01T12:00:00Z",
			"custom_details": map[string]any{
				"attempts":   "3",
				"last_error": "exit status 2",
			},
		},
	}
	if got := pdEventJSON(t, r.body(0)); !reflect.DeepEqual(got, want) {
		t.Errorf("event:\n%v\nwant:\n%v", got, want)
	}
	if r.count() != 1 {
		t.Errorf("%d requests, want 1", r.count())
	}
}

// The defaults: severity error, source fleetdeck, the key as summary, no
// timestamp and no custom_details when there are none.
func TestPagerDutyTriggerDefaults(t *testing.T) {
	r := newReceiver(t, pdAccepted("fleetdeck/dc1/breaker"))
	p := newTestPagerDuty(t, r)
	if err := p.Send(context.Background(), Alert{Key: "fleetdeck/dc1/breaker"}); err != nil {
		t.Fatalf("Send = %v", err)
	}
	want := map[string]any{
		"routing_key":  testRoutingKey,
		"event_action": "trigger",
		"dedup_key":    "fleetdeck/dc1/breaker",
		"client":       "fleetdeck",
		"payload": map[string]any{
			"summary":  "fleetdeck/dc1/breaker",
			"source":   "fleetdeck",
			"severity": "error",
		},
	}
	if got := pdEventJSON(t, r.body(0)); !reflect.DeepEqual(got, want) {
		t.Errorf("event:\n%v\nwant:\n%v", got, want)
	}
}

// A resolved alert is a resolve event for the same dedup key, and only
// that: the Events API needs no payload to resolve.
func TestPagerDutyResolve(t *testing.T) {
	r := newReceiver(t, pdAccepted("fleetdeck/dc1/held/dc1/web-7/base"))
	p := newTestPagerDuty(t, r)
	a := heldAlert()
	a.Resolved = true
	if err := p.Send(context.Background(), a); err != nil {
		t.Fatalf("Send = %v", err)
	}
	want := map[string]any{
		"routing_key":  testRoutingKey,
		"event_action": "resolve",
		"dedup_key":    "fleetdeck/dc1/held/dc1/web-7/base",
	}
	if got := pdEventJSON(t, r.body(0)); !reflect.DeepEqual(got, want) {
		t.Errorf("event %v, want %v", got, want)
	}
}

// The summary is one printable line of at most 1024 characters, cut on a
// character boundary.
func TestPagerDutyLongSummary(t *testing.T) {
	r := newReceiver(t, pdAccepted("k"))
	p := newTestPagerDuty(t, r)
	summary := "held: " + strings.Repeat("é🙂", 1500) + "\nsecond line"
	if err := p.Send(context.Background(), Alert{Key: "k", Summary: summary}); err != nil {
		t.Fatalf("Send = %v", err)
	}
	got := pdEventJSON(t, r.body(0))["payload"].(map[string]any)["summary"].(string)
	if n := utf8.RuneCountInString(got); n != 1024 {
		t.Errorf("summary is %d characters, want 1024", n)
	}
	if !utf8.ValidString(got) || !strings.HasSuffix(got, "…") {
		t.Errorf("summary does not end in … or is not valid UTF-8: ...%q", got[len(got)-20:])
	}
	if want := []rune(summary)[:1023]; !strings.HasPrefix(got, string(want)) {
		t.Errorf("summary is not the start of the alert's summary")
	}
}

func TestDedupKey(t *testing.T) {
	short := "fleetdeck/dc1/held/dc1/web-7/base"
	if got := dedupKey(short); got != short {
		t.Errorf("dedupKey(%q) = %q, want it unchanged", short, got)
	}
	exact := strings.Repeat("k", 255)
	if got := dedupKey(exact); got != exact {
		t.Errorf("a 255-character key was changed")
	}
	hash := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
	cases := []string{
		"fleetdeck/dc1/held/" + strings.Repeat("n", 300) + "/base",
		"fleetdeck/dc1/held/" + strings.Repeat("é", 200) + "/base", // 200 characters, 400 bytes
		"fleetdeck/dc1/held/" + strings.Repeat("🙂", 100),
	}
	for _, key := range cases {
		got := dedupKey(key)
		if len(got) > 255 || !utf8.ValidString(got) {
			t.Errorf("dedupKey(%d bytes) = %d bytes (valid UTF-8 %v), want ≤ 255", len(key), len(got), utf8.ValidString(got))
		}
		if !strings.HasSuffix(got, "~"+hash(key)) {
			t.Errorf("dedupKey(%q...) = %q: want the key's SHA-256 at the end", key[:30], got)
		}
		prefix := strings.TrimSuffix(got, "~"+hash(key))
		if len(prefix) < 180 || !strings.HasPrefix(key, prefix) {
			t.Errorf("dedupKey: prefix %q is not a long start of the key", prefix)
		}
		if dedupKey(key) != got {
			t.Errorf("dedupKey is not stable")
		}
	}
	// Two long keys with the same start stay two incidents.
	a, b := strings.Repeat("x", 400)+"/dc1/web-7", strings.Repeat("x", 400)+"/dc1/web-8"
	if dedupKey(a) == dedupKey(b) {
		t.Errorf("two long keys with the same prefix share the dedup key %q", dedupKey(a))
	}
	// Invalid UTF-8 cannot be sent as is (JSON would change it).
	if got := dedupKey("node-\xff"); !utf8.ValidString(got) || got == "node-\xff" {
		t.Errorf("dedupKey(invalid UTF-8) = %q", got)
	}
}

// A long key reaches PagerDuty shortened, and a resolve for it uses the
// same shortened key as the trigger did.
func TestPagerDutyLongDedupKey(t *testing.T) {
	r := newReceiver(t, pdAccepted("x"))
	p := newTestPagerDuty(t, r)
	a := Alert{Key: "fleetdeck/dc1/held/" + strings.Repeat("web", 120) + "/base", Summary: "held"}
	if err := p.Send(context.Background(), a); err != nil {
		t.Fatalf("Send = %v", err)
	}
	a.Resolved = true
	if err := p.Send(context.Background(), a); err != nil {
		t.Fatalf("Send = %v", err)
	}
	trigger, resolve := pdEventJSON(t, r.body(0)), pdEventJSON(t, r.body(1))
	k := trigger["dedup_key"].(string)
	if len(k) > 255 || k != dedupKey(a.Key) {
		t.Errorf("dedup_key %q (%d bytes), want dedupKey of the alert's key", k, len(k))
	}
	if resolve["event_action"] != "resolve" || resolve["dedup_key"] != k {
		t.Errorf("resolve %v: want the trigger's dedup_key %q", resolve, k)
	}
}

// PagerDuty's 400 is final; its status, message and errors are in the
// error, the routing key is not.
func TestPagerDutyInvalidEventNotRetried(t *testing.T) {
	r := newReceiver(t, reply{code: 400, body: `{"status":"invalid event","message":"Event object is invalid","errors":["Length of 'routing_key' is incorrect (should be 32 characters)"]}`})
	p := newTestPagerDuty(t, r)
	err := p.Send(context.Background(), heldAlert())
	want := "pagerduty: sending alert fleetdeck/dc1/held/dc1/web-7/base: 400 Bad Request: invalid event: Event object is invalid (Length of 'routing_key' is incorrect (should be 32 characters))"
	if err == nil || err.Error() != want {
		t.Errorf("Send = %v\nwant %s", err, want)
	}
	var se *StatusError
	if !errors.As(err, &se) || se.Code != 400 {
		t.Errorf("Send = %v, want a *StatusError 400", err)
	}
	if err != nil && strings.Contains(err.Error(), testRoutingKey) {
		t.Errorf("the error contains the routing key")
	}
	if n := r.count(); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}

	// A body that is not PagerDuty's JSON is shown as text.
	r = newReceiver(t, reply{code: 400, body: "<html>bad request</html>\n"})
	p = newTestPagerDuty(t, r)
	err = p.Send(context.Background(), heldAlert())
	if !errors.As(err, &se) || se.Message != "<html>bad request</html>" {
		t.Errorf("Send = %v, want the body as the message", err)
	}
}

// 429 and 5xx are retried (PagerDuty: "retry after some time"), each
// attempt carrying the same event.
func TestPagerDutyRetries(t *testing.T) {
	r := newReceiver(t,
		reply{code: 429, body: `{"status":"throttled","message":"Too many requests"}`},
		reply{code: 500, body: `{"status":"error","message":"internal"}`},
		pdAccepted("fleetdeck/dc1/held/dc1/web-7/base"))
	p := newTestPagerDuty(t, r)
	if err := p.Send(context.Background(), heldAlert()); err != nil {
		t.Fatalf("Send = %v", err)
	}
	if n := r.count(); n != 3 {
		t.Fatalf("%d requests, want 3", n)
	}
	for i := 1; i < 3; i++ {
		if string(r.body(i)) != string(r.body(0)) {
			t.Errorf("attempt %d sent %s, the first %s", i+1, r.body(i), r.body(0))
		}
	}

	r = newReceiver(t, reply{code: 429, body: `{"status":"throttled","message":"Too many requests"}`})
	p = newTestPagerDuty(t, r)
	err := p.Send(context.Background(), heldAlert())
	want := "pagerduty: sending alert fleetdeck/dc1/held/dc1/web-7/base: attempt 3 of 3: 429 Too Many Requests: throttled: Too many requests"
	if err == nil || err.Error() != want {
		t.Errorf("Send = %v\nwant %s", err, want)
	}
	if n := r.count(); n != 3 {
		t.Errorf("%d requests, want 3", n)
	}
}

// With no URL the documented endpoint is used.
func TestPagerDutyDefaultURL(t *testing.T) {
	var seen []string
	o := fast
	o.HTTP = &http.Client{Transport: roundTripFunc(func(req *http.Request) (*http.Response, error) {
		seen = append(seen, req.Method+" "+req.URL.String())
		return textResponse(req, 202, `{"status":"success","message":"Event processed","dedup_key":"k"}`), nil
	})}
	p, err := NewPagerDuty(testRoutingKey, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Send(context.Background(), Alert{Key: "k"}); err != nil {
		t.Fatalf("Send = %v", err)
	}
	if want := []string{"POST https://events.pagerduty.com/v2/enqueue"}; !reflect.DeepEqual(seen, want) {
		t.Errorf("requests %v, want %v", seen, want)
	}
}

func TestNewPagerDutyChecksKey(t *testing.T) {
	for _, key := range []string{"", testRoutingKey + "\n", "R0123 456"} {
		p, err := NewPagerDuty(key, Options{})
		if err == nil || p != nil {
			t.Errorf("NewPagerDuty(%q) = %v, %v, want an error", key, p, err)
			continue
		}
		if key != "" && strings.Contains(err.Error(), strings.TrimSpace(key)) {
			t.Errorf("NewPagerDuty error %q repeats the key", err)
		}
	}
	// A zero PagerDuty with no key is refused at Send, not sent.
	r := newReceiver(t, pdAccepted("k"))
	p := &PagerDuty{URL: r.srv.URL, Options: fast}
	if err := p.Send(context.Background(), Alert{Key: "k"}); err == nil {
		t.Errorf("Send with no routing key = nil, want an error")
	}
	if r.count() != 0 {
		t.Errorf("an event without a routing key was sent")
	}
}
