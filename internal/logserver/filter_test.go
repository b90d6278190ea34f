package logserver_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/logging/apiv2/loggingpb"
	"google.golang.org/genproto/googleapis/api/monitoredres"
	ltype "google.golang.org/genproto/googleapis/logging/type"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/fleetdeck/fleetdeck/internal/logserver"
)

// filterEntries is a small, varied set of entries; each filter case names
// which of them must match.
func filterEntries(t *testing.T) map[string]*loggingpb.LogEntry {
	t.Helper()
	js, err := structpb.NewStruct(map[string]any{
		"message":    "slow query",
		"latency_ms": 250,
		"user":       map[string]any{"name": "Ann"},
		"tags":       []any{"a", "b"},
		"ok":         true,
	})
	if err != nil {
		t.Fatal(err)
	}
	return map[string]*loggingpb.LogEntry{
		"web": {
			LogName:          "projects/p/logs/syslog",
			InsertId:         "id-web",
			Resource:         &monitoredres.MonitoredResource{Type: "gce_instance", Labels: map[string]string{"instance_id": "web-17"}},
			Labels:           map[string]string{"host": "web-17", "k8s.io/app": "nginx"},
			Severity:         ltype.LogSeverity_ERROR,
			Timestamp:        timestamppb.New(base),
			ReceiveTimestamp: timestamppb.New(base.Add(time.Second)),
			Payload:          &loggingpb.LogEntry_TextPayload{TextPayload: "GET /index.html 500 Internal Server Error"},
			HttpRequest:      &ltype.HttpRequest{Status: 500, RequestMethod: "GET", RequestUrl: "/index.html"},
		},
		"db": {
			LogName:   "projects/p/logs/app",
			InsertId:  "id-db",
			Resource:  &monitoredres.MonitoredResource{Type: "gce_instance", Labels: map[string]string{"instance_id": "db-1"}},
			Labels:    map[string]string{"host": "db-1"},
			Severity:  ltype.LogSeverity_INFO,
			Timestamp: timestamppb.New(base.Add(time.Minute)),
			Payload:   &loggingpb.LogEntry_JsonPayload{JsonPayload: js},
		},
		"k8s": {
			LogName:   "projects/p/logs/stdout",
			InsertId:  "id-k8s",
			Resource:  &monitoredres.MonitoredResource{Type: "k8s_container", Labels: map[string]string{"cluster_name": "c1"}},
			Severity:  ltype.LogSeverity_WARNING,
			Timestamp: timestamppb.New(base.Add(2 * time.Minute)),
			Payload:   &loggingpb.LogEntry_TextPayload{TextPayload: "warn: disk 91%"},
		},
		"hostile": {
			LogName:   "projects/p/logs/hostile%2Flog",
			InsertId:  "id-hostile",
			Resource:  &monitoredres.MonitoredResource{Type: "global"},
			Labels:    map[string]string{"host": "we\"ird\\name\nline\ttab"},
			Timestamp: timestamppb.New(base.Add(-time.Hour)),
			Payload:   &loggingpb.LogEntry_TextPayload{TextPayload: "line1\nline2 \"quoted\" \\back"},
		},
	}
}

var entryOrder = []string{"web", "db", "k8s", "hostile"}

func TestFilterMatches(t *testing.T) {
	es := filterEntries(t)
	cases := []struct {
		filter string
		want   string // comma-separated names, in entryOrder
	}{
		{``, "web,db,k8s,hostile"},
		{`   `, "web,db,k8s,hostile"},
		// severity: names in any case, numbers
		{`severity>=ERROR`, "web"},
		{`severity>=warning`, "web,k8s"},
		{`severity=400`, "k8s"},
		{`severity<INFO`, "hostile"},
		{`severity!=DEFAULT`, "web,db,k8s"},
		{`severity:WARNING`, "k8s"},
		// resource and labels
		{`resource.type="gce_instance"`, "web,db"},
		{`resource.type=gce_instance`, "web,db"},
		{`resource.labels.instance_id="web-17"`, "web"},
		{`labels.host="web-17" OR labels.host="db-1"`, "web,db"},
		{`labels."k8s.io/app"="nginx"`, "web"},
		{`labels.host!="web-17"`, "db,hostile"}, // a missing label compares false
		{`NOT labels.host="web-17"`, "db,k8s,hostile"},
		// precedence: OR binds tighter than AND; NOT tightest
		{`severity>=ERROR AND labels.host="nope" OR resource.type="k8s_container"`, ""},
		{`resource.type="k8s_container" OR labels.host="x" AND severity>=ERROR`, ""},
		{`severity>=ERROR labels.host="nope" OR resource.type="k8s_container"`, ""},
		{`NOT severity>=ERROR OR resource.type="k8s_container"`, "db,k8s,hostile"},
		{`NOT (severity>=ERROR OR resource.type="k8s_container")`, "db,hostile"},
		{`-severity>=ERROR`, "db,k8s,hostile"},
		{`-(resource.type="gce_instance")`, "k8s,hostile"},
		{`NOT NOT severity>=ERROR`, "web"},
		{`(severity>=ERROR OR severity=WARNING) AND resource.type="k8s_container"`, "k8s"},
		{`(resource.type="gce_instance") AND (severity>=ERROR)`, "web"},
		{`resource.type="gce_instance" severity>=ERROR`, "web"},
		{"severity>=ERROR\n\tAND\r\nresource.type=\"gce_instance\"", "web"},
		// strings: '=' exact, ':' case-insensitive substring, regexps
		{`textPayload:"internal server"`, "web"},
		{`textPayload="GET /index.html 500 Internal Server Error"`, "web"},
		{`textPayload="get /index.html 500 internal server error"`, ""},
		{`textPayload=~"^GET .* 500"`, "web"},
		{`textPayload!~"GET"`, "k8s,hostile"},
		{`logName="projects/p/logs/app"`, "db"},
		{`log_name="projects/p/logs/app"`, "db"},
		{`logName:syslog`, "web"},
		{`insertId="id-db"`, "db"},
		{`textPayload>"h"`, "k8s,hostile"},
		// hostile values: escapes for quotes, backslashes, newlines, tabs
		{`labels.host="we\"ird\\name\nline\ttab"`, "hostile"},
		{`labels.host="we\u0022ird\u005cname\u000aline\u0009tab"`, "hostile"},
		{`textPayload:"\"quoted\" \\back"`, "hostile"},
		{`textPayload:"line1\nline2"`, "hostile"},
		{"textPayload:\"line1\nline2\"", "hostile"}, // a raw newline inside quotes
		{`labels.host="we\"ird"`, ""},
		// jsonPayload
		{`jsonPayload.message="slow query"`, "db"},
		{`jsonPayload.latency_ms>200`, "db"},
		{`jsonPayload.latency_ms>300`, ""},
		{`jsonPayload.latency_ms=250`, "db"},
		{`jsonPayload.user.name="Ann"`, "db"},
		{`jsonPayload.user.name:ann`, "db"},
		{`jsonPayload.tags="b"`, "db"},
		{`jsonPayload.ok=true`, "db"},
		{`jsonPayload.latency_ms:*`, "db"},
		{`jsonPayload.missing:*`, ""},
		{`jsonPayload:"slow"`, "db"},
		{`json_payload."message":slow`, "db"},
		// httpRequest
		{`httpRequest.status>=500`, "web"},
		{`httpRequest.status=404`, ""},
		{`http_request.status=500`, "web"},
		{`httpRequest.requestMethod=GET`, "web"},
		// timestamps, quoted or not, with zones
		{`timestamp>="2026-11-26T10:00:00Z" AND timestamp<"2026-11-26T10:02:00Z"`, "web,db"},
		{`timestamp>=2026-11-26T10:01:00Z`, "db,k8s"},
		{`timestamp<2026-11-26T11:00:00+01:00`, "hostile"},
		{`timestamp="2026-11-26T10:00:00Z"`, "web"},
		{`timestamp>"2026-11-26T10:00:00.000000001Z"`, "db,k8s"},
		{`timestamp>="2026-11-26T10:00:00Z" OR severity<INFO`, "web,db,k8s,hostile"},
		{`receiveTimestamp>="2026-11-26T10:00:01Z"`, "web"},
		// value lists
		{`labels.host=("web-17" OR "db-1")`, "web,db"},
		{`severity=(ERROR OR WARNING)`, "web,k8s"},
		{`textPayload:("line1" AND "back")`, "hostile"},
		{`textPayload:("line1" "back")`, "hostile"},
		{`textPayload:(line1 AND NOT back)`, ""},
		// bare search terms
		{`slow`, "db"},
		{`"Internal Server"`, "web"},
		{`web-17`, "web"},
		{`91%`, "k8s"},
		{`slow OR 91%`, "db,k8s"},
		{`"line2 \"quoted\""`, "hostile"},
	}
	for _, tc := range cases {
		f, err := logserver.ParseFilter(tc.filter)
		if err != nil {
			t.Errorf("ParseFilter(%q): %v", tc.filter, err)
			continue
		}
		var got []string
		for _, name := range entryOrder {
			if f.Match(es[name]) {
				got = append(got, name)
			}
		}
		if strings.Join(got, ",") != tc.want {
			t.Errorf("filter %q matches %v, want [%s]", tc.filter, got, tc.want)
		}
	}
}

func TestFilterTimestampRestriction(t *testing.T) {
	for filter, want := range map[string]bool{
		``:                false,
		`severity>=ERROR`: false,
		`receiveTimestamp>="2026-11-26T10:00:00Z"`: false,
		`timestamp>="2026-11-26T10:00:00Z"`:        true,
		`severity>=ERROR OR timestamp<2026-11-26`:  true,
		`NOT timestamp<2026-11-26`:                 true,
	} {
		f, err := logserver.ParseFilter(filter)
		if err != nil {
			t.Fatalf("ParseFilter(%q): %v", filter, err)
		}
		if got := f.HasTimestampRestriction(); got != want {
			t.Errorf("HasTimestampRestriction(%q) = %v, want %v", filter, got, want)
		}
	}
}

func TestFilterErrors(t *testing.T) {
	cases := []struct {
		filter string
		pos    int
		msg    string
	}{
		{`severity>=`, 11, "expected a value"},
		{`(severity>=ERROR`, 1, "unbalanced '('"},
		{`severity>=ERROR)`, 16, "unexpected"},
		{`foo.bar="x"`, 1, "unsupported field"},
		{`textPayload="abc`, 13, "unterminated string"},
		{`textPayload="a\qb"`, 15, `unknown escape \q`},
		{`textPayload="a\u12"`, 15, "four hex digits"},
		{`severity=LOUD`, 10, "unknown level"},
		{`timestamp>="yesterday"`, 12, "RFC 3339"},
		{`timestamp:"2026"`, 11, "not supported"},
		{`AND severity>=ERROR`, 1, "AND without a left operand"},
		{`severity>=ERROR AND`, 20, "AND without a right operand"},
		{`severity>=ERROR AND AND x`, 21, "AND without a right operand"},
		{`severity>=ERROR OR`, 19, "OR without a right operand"},
		{`a OR OR b`, 6, "OR without a right operand"},
		{`OR a`, 1, "OR without a left operand"},
		{`NOT`, 4, "NOT without an operand"},
		{`labels="x"`, 1, "labels.KEY"},
		{`labels.a.b="x"`, 1, "labels.KEY"},
		{`textPayload==x`, 13, `unexpected "="`},
		{`textPayload=~"("`, 14, "regular expression"},
		{`- severity>=ERROR`, 1, "'-' must be followed"},
		{`jsonPayload="x"`, 13, "needs a field path"},
		{`httpRequest.status=abc`, 20, "not a number"},
		{`httpRequest:*`, 1, "unsupported field"},
		{`SEARCH("x")`, 1, "functions"},
		{`labels.="x"`, 1, "empty field name"},
		{`=x`, 1, "without a field"},
		{`a ! b`, 3, "unknown operator"},
		{`"x"="y"`, 1, "cannot start with a quoted string"},
		{`labels.host=()`, 13, "empty value list"},
		{`labels.host=("a" OR)`, 20, "expected a value"},
		{`ünïcode AND`, 12, "AND without a right operand"}, // positions count characters
		{strings.Repeat("(", 200) + "a" + strings.Repeat(")", 200), 102, "nested too deeply"},
		{strings.Repeat("NOT ", 200) + "a", 405, "nested too deeply"},
		{strings.Repeat("a", logserver.MaxFilterLen+1), logserver.MaxFilterLen + 1, "longer than"},
		{"textPayload=\"\xff\"", 14, "invalid UTF-8"},
	}
	for _, tc := range cases {
		_, err := logserver.ParseFilter(tc.filter)
		var fe *logserver.FilterError
		if !errors.As(err, &fe) {
			t.Errorf("ParseFilter(%.40q) = %v, want a FilterError", tc.filter, err)
			continue
		}
		if fe.Pos != tc.pos || !strings.Contains(fe.Msg, tc.msg) {
			t.Errorf("ParseFilter(%.40q): position %d %q, want position %d and %q", tc.filter, fe.Pos, fe.Msg, tc.pos, tc.msg)
		}
		if !strings.Contains(err.Error(), "position") {
			t.Errorf("error text %q does not name the position", err)
		}
	}
}

// TestFilterHostileRoundTrip builds filters the way fleetdeck does (every
// value escaped, every clause parenthesised) for node names full of
// quotes, backslashes and control characters, and checks each matches its
// own entry only.
func TestFilterHostileRoundTrip(t *testing.T) {
	names := []string{
		`plain`, `with "quotes"`, `back\slash`, `trailing\`, `"`, `\"`, "new\nline", "tab\tand\rcr",
		`) OR severity>=DEFAULT OR (`, `\u0022`, `ünïcödé ✓`, "nul\x00byte", `*`, ``,
	}
	for _, n := range names {
		f, err := logserver.ParseFilter(`(resource.type="gce_instance") AND (labels.host=` + quote(n) + `)`)
		if err != nil {
			t.Errorf("name %q: %v", n, err)
			continue
		}
		for _, other := range names {
			e := &loggingpb.LogEntry{
				Resource: &monitoredres.MonitoredResource{Type: "gce_instance"},
				Labels:   map[string]string{"host": other},
			}
			if got := f.Match(e); got != (other == n) {
				t.Errorf("filter for %q matches entry for %q: %v", n, other, got)
			}
		}
	}
}

// quote escapes like a careful client would: JSON-style escapes for quote,
// backslash and control characters.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20:
			b.WriteString(`\u00`)
			b.WriteByte("0123456789abcdef"[r>>4])
			b.WriteByte("0123456789abcdef"[r&15])
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
