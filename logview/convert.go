package logview

import (
	"bytes"
	"encoding/json"
	"maps"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"cloud.google.com/go/logging/apiv2/loggingpb"
	ltype "google.golang.org/genproto/googleapis/logging/type"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
)

// convert turns an API entry into an Entry. project is the project the
// entry was read from when the log name does not say (it always does for
// entries the service returns). Strings are kept raw: rendering them
// safely is the console's job.
func convert(pe *loggingpb.LogEntry, project string) *Entry {
	e := &Entry{
		InsertID:     pe.GetInsertId(),
		LogName:      pe.GetLogName(),
		Project:      projectOf(pe.GetLogName(), project),
		Severity:     Severity(pe.GetSeverity()),
		ResourceType: pe.GetResource().GetType(),
	}
	if ts := pe.GetTimestamp(); ts != nil {
		e.Time = ts.AsTime()
	}
	if ts := pe.GetReceiveTimestamp(); ts != nil {
		e.Received = ts.AsTime()
	}
	if l := pe.GetResource().GetLabels(); len(l) > 0 {
		e.ResourceLabels = maps.Clone(l)
	}
	if l := pe.GetLabels(); len(l) > 0 {
		e.Labels = maps.Clone(l)
	}
	e.Text, e.Payload = textAndPayload(pe)
	e.Context = contextOf(pe)
	return e
}

// contextOf flattens the entry's trace, source location, operation and
// HTTP request into Entry.Context (nil when there is none).
func contextOf(pe *loggingpb.LogEntry) map[string]string {
	c := map[string]string{}
	set := func(k, v string) {
		if v != "" {
			c[k] = v
		}
	}
	set("trace", pe.GetTrace())
	set("spanId", pe.GetSpanId())
	if pe.GetTraceSampled() {
		c["traceSampled"] = "true"
	}
	if sl := pe.GetSourceLocation(); sl != nil {
		loc := sl.GetFile()
		if sl.GetLine() != 0 {
			loc += ":" + strconv.FormatInt(sl.GetLine(), 10)
		}
		if sl.GetFunction() != "" {
			loc += " " + sl.GetFunction()
		}
		set("sourceLocation", strings.TrimSpace(loc))
	}
	if op := pe.GetOperation(); op != nil {
		v := op.GetProducer() + "/" + op.GetId()
		if op.GetFirst() {
			v += " (first)"
		}
		if op.GetLast() {
			v += " (last)"
		}
		set("operation", v)
	}
	if hr := pe.GetHttpRequest(); hr != nil {
		set("httpRequest.method", hr.GetRequestMethod())
		set("httpRequest.url", hr.GetRequestUrl())
		if hr.GetStatus() != 0 {
			c["httpRequest.status"] = strconv.Itoa(int(hr.GetStatus()))
		}
		if l := hr.GetLatency(); l != nil {
			c["httpRequest.latency"] = l.AsDuration().String()
		}
		set("httpRequest.remoteIp", hr.GetRemoteIp())
		set("httpRequest.serverIp", hr.GetServerIp())
		set("httpRequest.userAgent", hr.GetUserAgent())
		set("httpRequest.referer", hr.GetReferer())
		set("httpRequest.protocol", hr.GetProtocol())
		if hr.GetResponseSize() != 0 {
			c["httpRequest.responseSize"] = strconv.FormatInt(hr.GetResponseSize(), 10)
		}
	}
	if len(c) == 0 {
		return nil
	}
	return c
}

// projectOf reads P from "projects/P/logs/..." and falls back to def.
func projectOf(logName, def string) string {
	if rest, ok := strings.CutPrefix(logName, "projects/"); ok {
		if p, _, ok := strings.Cut(rest, "/"); ok && p != "" {
			return p
		}
	}
	return def
}

// textAndPayload derives the one-line summary and the indented payload.
func textAndPayload(pe *loggingpb.LogEntry) (text, payload string) {
	var body any // the payload as plain Go values, for JSON
	hasBody := true
	switch p := pe.GetPayload().(type) {
	case *loggingpb.LogEntry_TextPayload:
		text = p.TextPayload
		body = p.TextPayload
	case *loggingpb.LogEntry_JsonPayload:
		m := p.JsonPayload.AsMap()
		body = m
		text = jsonSummary(p.JsonPayload)
	case *loggingpb.LogEntry_ProtoPayload:
		// Audit logs and the like: render with the types this binary
		// knows; unknown types fall back to their type URL.
		raw, err := protojson.Marshal(p.ProtoPayload)
		if err == nil {
			var v any
			if json.Unmarshal(raw, &v) == nil {
				body = v
			}
		}
		if body == nil {
			body = map[string]any{"@type": p.ProtoPayload.GetTypeUrl()}
		}
	default:
		hasBody = false
	}
	if h := pe.GetHttpRequest(); h != nil {
		if text == "" {
			text = httpLine(h)
		}
		// The request is part of what an engineer expands an access-log
		// line to see, so it joins the payload.
		hr := map[string]any{}
		if raw, err := protojson.Marshal(h); err == nil {
			_ = json.Unmarshal(raw, &hr)
		}
		obj := map[string]any{"httpRequest": hr}
		if hasBody {
			switch pe.GetPayload().(type) {
			case *loggingpb.LogEntry_TextPayload:
				obj["textPayload"] = body
			case *loggingpb.LogEntry_JsonPayload:
				obj["jsonPayload"] = body
			default:
				obj["protoPayload"] = body
			}
		}
		body, hasBody = obj, true
	}
	if !hasBody {
		return text, ""
	}
	if text == "" {
		text = compactJSON(body)
	}
	return text, indentJSON(body)
}

// jsonSummary picks a structured entry's message: "message", "msg" or
// "error" (strings as they are, other values as compact JSON); "" when
// none is present.
func jsonSummary(s *structpb.Struct) string {
	for _, k := range []string{"message", "msg", "error"} {
		v, ok := s.GetFields()[k]
		if !ok {
			continue
		}
		if str, ok := v.GetKind().(*structpb.Value_StringValue); ok {
			return str.StringValue
		}
		return compactJSON(v.AsInterface())
	}
	return ""
}

// httpLine is "GET /path 503" from an HTTP request.
func httpLine(h *ltype.HttpRequest) string {
	parts := make([]string, 0, 3)
	if h.GetRequestMethod() != "" {
		parts = append(parts, h.GetRequestMethod())
	}
	if h.GetRequestUrl() != "" {
		parts = append(parts, h.GetRequestUrl())
	}
	if h.GetStatus() != 0 {
		parts = append(parts, strconv.Itoa(int(h.GetStatus())))
	}
	return strings.Join(parts, " ")
}

func marshalJSON(v any, indent bool) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	// Payloads are shown and copied, not embedded in HTML.
	enc.SetEscapeHTML(false)
	if indent {
		enc.SetIndent("", "  ")
	}
	if err := enc.Encode(v); err != nil {
		return ""
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func compactJSON(v any) string { return marshalJSON(v, false) }
func indentJSON(v any) string  { return marshalJSON(v, true) }

// savedEntry is an Entry as Save writes it.
type savedEntry struct {
	InsertID       string            `json:"insertId"`
	Project        string            `json:"project"`
	LogName        string            `json:"logName"`
	Time           string            `json:"timestamp"`
	Received       string            `json:"receiveTimestamp,omitempty"`
	Severity       string            `json:"severity"`
	Node           string            `json:"node,omitempty"`
	ResourceType   string            `json:"resourceType,omitempty"`
	ResourceLabels map[string]string `json:"resourceLabels,omitempty"`
	Labels         map[string]string `json:"labels,omitempty"`
	Context        map[string]string `json:"context,omitempty"`
	Text           string            `json:"text"`
	// Payload is the payload as a JSON value (an object for JSON payloads,
	// a string for text ones), so that jq .payload.status works on the
	// file; see savedPayload.
	Payload json.RawMessage `json:"payload,omitempty"`
}

// savedPayload is an Entry's Payload as a JSON value: compacted when it is
// valid JSON (it always is when it came from convert), else the text as a
// JSON string, so a file is never malformed.
func savedPayload(p string) json.RawMessage {
	if p == "" {
		return nil
	}
	var b bytes.Buffer
	// Compact keeps string bytes as they are: only valid UTF-8 passes, so
	// the file never holds raw invalid bytes.
	if err := json.Compact(&b, []byte(p)); err == nil && utf8.Valid(b.Bytes()) {
		return b.Bytes()
	}
	q, _ := json.Marshal(p) // a string always marshals
	return q
}

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}
