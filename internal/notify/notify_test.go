package notify

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

// reply is one answer of a test receiver.
type reply struct {
	code   int
	body   string
	header map[string]string
	hang   bool // answer nothing until the client gives up
	drop   bool // close the connection without answering
}

// receiver is a local stand-in for Slack or PagerDuty: it records every
// request body and answers with its replies in turn, the last one
// repeating.
type receiver struct {
	t       *testing.T
	srv     *httptest.Server
	replies []reply

	mu     sync.Mutex
	bodies [][]byte
	got    chan struct{} // one value per request, if not full
}

func newReceiver(t *testing.T, replies ...reply) *receiver {
	t.Helper()
	r := &receiver{t: t, replies: replies, got: make(chan struct{}, 100)}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		r.t.Errorf("receiver: method %s, want POST", req.Method)
	}
	if ct := req.Header.Get("Content-Type"); ct != "application/json" {
		r.t.Errorf("receiver: Content-Type %q, want application/json", ct)
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		r.t.Errorf("receiver: reading body: %v", err)
	}
	r.mu.Lock()
	r.bodies = append(r.bodies, body)
	rep := r.replies[min(len(r.bodies), len(r.replies))-1]
	r.mu.Unlock()
	select {
	case r.got <- struct{}{}:
	default:
	}
	switch {
	case rep.hang:
		<-req.Context().Done()
		return
	case rep.drop:
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			r.t.Errorf("receiver: hijack: %v", err)
			return
		}
		conn.Close()
		return
	}
	for k, v := range rep.header {
		w.Header().Set(k, v)
	}
	w.WriteHeader(rep.code)
	io.WriteString(w, rep.body)
}

// count is how many requests arrived.
func (r *receiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.bodies)
}

// body is the i-th request's body.
func (r *receiver) body(i int) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	if i >= len(r.bodies) {
		r.t.Fatalf("receiver: no request %d (got %d)", i, len(r.bodies))
	}
	return r.bodies[i]
}

// fast are options whose backoff does not slow the tests down; only a
// receiver's Retry-After can make a test wait.
const fastBackoff = 4 * time.Millisecond

var fast = Options{MinBackoff: time.Millisecond, MaxBackoff: fastBackoff, Timeout: 5 * time.Second}

// roundTripFunc is a transport answering without a network.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// textResponse is a response of code with body.
func textResponse(req *http.Request, code int, body string) *http.Response {
	return &http.Response{
		StatusCode: code,
		Status:     http.StatusText(code),
		Header:     http.Header{},
		Body:       io.NopCloser(strings.NewReader(body)),
		Request:    req,
	}
}

func TestCheckURL(t *testing.T) {
	good := []string{
		"https://hooks.slack.com/services/T000/B000/XXXX",
		"http://127.0.0.1:8080/hook",
		"HTTPS://events.pagerduty.com/v2/enqueue",
	}
	for _, u := range good {
		if err := CheckURL(u); err != nil {
			t.Errorf("CheckURL(%q) = %v, want nil", u, err)
		}
	}
	bad := []struct{ in, want string }{
		{"", "empty"},
		{"   ", "empty"},
		{"hooks.slack.com/services/SECRET", "scheme"},
		{"/services/SECRET", "scheme"},
		{"ftp://example.com/SECRET", `scheme "ftp"`},
		{"https:SECRET", "no host"},
		{"https:///SECRET", "no host"},
		{"https://exa mple.com/SECRET", "not a valid URL"},
		{"https://example.com/\x7fSECRET", "not a valid URL"},
	}
	for _, tc := range bad {
		err := CheckURL(tc.in)
		if err == nil {
			t.Errorf("CheckURL(%q) = nil, want an error", tc.in)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("CheckURL(%q) = %q, want it to mention %q", tc.in, err, tc.want)
		}
		// The URL may be a webhook with its secret in the path.
		if strings.Contains(err.Error(), "SECRET") {
			t.Errorf("CheckURL(%q) = %q: the error repeats the URL", tc.in, err)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"-5", 0},
		{"7", 7 * time.Second},
		{" 30 ", 30 * time.Second},
		{"99999999999999", 24 * time.Hour},
		{"soon", 0},
		{"1.5", 0},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
	}
	for _, tc := range cases {
		if got := retryAfter(tc.in, now); got != tc.want {
			t.Errorf("retryAfter(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestCutRunes(t *testing.T) {
	cases := []struct {
		in   string
		n    int
		want string
	}{
		{"abc", 3, "abc"},
		{"abcd", 3, "ab…"},
		{"ééééé", 4, "ééé…"},
		{"a🙂b🙂c", 3, "a🙂…"},
		{"ab\xffcd", 10, "ab\uFFFDcd"},
		{"abc", 0, ""},
	}
	for _, tc := range cases {
		got := cutRunes(tc.in, tc.n)
		if got != tc.want {
			t.Errorf("cutRunes(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
		if !utf8.ValidString(got) || utf8.RuneCountInString(got) > tc.n {
			t.Errorf("cutRunes(%q, %d) = %q: invalid or too long", tc.in, tc.n, got)
		}
	}
}

// senderFunc adapts a function to Sender.
type senderFunc func(context.Context, Alert) error

func (f senderFunc) Send(ctx context.Context, a Alert) error { return f(ctx, a) }

// Multi sends to all at once: the first sender cannot finish until the
// second has been called, which a one-after-the-other Multi would never
// do; both errors come back joined, and a nil sender is skipped.
func TestMultiSendsConcurrentlyAndJoinsErrors(t *testing.T) {
	secondCalled := make(chan struct{})
	errA, errB := errors.New("receiver A down"), errors.New("receiver B down")
	var gotKeys sync.Map
	m := Multi{
		senderFunc(func(ctx context.Context, a Alert) error {
			gotKeys.Store("A", a.Key)
			select {
			case <-secondCalled:
				return errA
			case <-ctx.Done():
				return ctx.Err()
			}
		}),
		nil,
		senderFunc(func(ctx context.Context, a Alert) error {
			gotKeys.Store("B", a.Key)
			close(secondCalled)
			return errB
		}),
		senderFunc(func(context.Context, Alert) error { return nil }),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := m.Send(ctx, Alert{Key: "k1"})
	if !errors.Is(err, errA) || !errors.Is(err, errB) {
		t.Fatalf("Multi.Send = %v, want both receivers' errors", err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Multi.Send = %v: the senders ran one after the other", err)
	}
	for _, name := range []string{"A", "B"} {
		if k, _ := gotKeys.Load(name); k != "k1" {
			t.Errorf("sender %s got key %v, want k1", name, k)
		}
	}
	if err := (Multi{senderFunc(func(context.Context, Alert) error { return nil })}).Send(ctx, Alert{Key: "k"}); err != nil {
		t.Errorf("Multi.Send with all succeeding = %v, want nil", err)
	}
}

// Multi over the real senders: one receiver refuses, the other still gets
// the alert, and the error names the one that failed.
func TestMultiRealReceivers(t *testing.T) {
	slackRecv := newReceiver(t, reply{code: 200, body: "ok"})
	pdRecv := newReceiver(t, reply{code: 400, body: `{"status":"invalid event","message":"Event object is invalid"}`})
	m := Multi{
		&Slack{URL: slackRecv.srv.URL, Options: fast},
		&PagerDuty{URL: pdRecv.srv.URL, RoutingKey: "R0123456789abcdef0123456789abcde", Options: fast},
	}
	err := m.Send(context.Background(), Alert{Key: "fleetdeck/dc1/breaker", Summary: "breaker open"})
	if err == nil || !strings.HasPrefix(err.Error(), "pagerduty: sending alert fleetdeck/dc1/breaker: 400 Bad Request: invalid event") {
		t.Fatalf("Multi.Send = %v, want the PagerDuty refusal", err)
	}
	if strings.Contains(err.Error(), "slack") {
		t.Errorf("Multi.Send = %v: Slack succeeded and should not be in the error", err)
	}
	if slackRecv.count() != 1 || pdRecv.count() != 1 {
		t.Errorf("requests: slack %d, pagerduty %d, want 1 each", slackRecv.count(), pdRecv.count())
	}
}

// An alert no receiver would accept is refused before anything is sent.
func TestInvalidAlertNotSent(t *testing.T) {
	r := newReceiver(t, reply{code: 200, body: "ok"})
	senders := []Sender{
		&Slack{URL: r.srv.URL, Options: fast},
		&PagerDuty{URL: r.srv.URL, RoutingKey: "key", Options: fast},
	}
	for _, s := range senders {
		for _, a := range []Alert{{Key: " "}, {Key: "k", Severity: "fatal"}} {
			if err := s.Send(context.Background(), a); err == nil {
				t.Errorf("%T.Send(%+v) = nil, want an error", s, a)
			}
		}
	}
	if n := r.count(); n != 0 {
		t.Errorf("%d requests sent for invalid alerts, want 0", n)
	}
}
