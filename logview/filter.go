package logview

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"cloud.google.com/go/logging/apiv2/loggingpb"
	"google.golang.org/protobuf/types/known/structpb"
)

// MaxFilterLen is Cloud Logging's limit on a filter's length (characters;
// logview counts bytes, which is never fewer).
const MaxFilterLen = 20_000

// Mapping defaults.
const (
	DefaultResourceType = "gce_instance"
	DefaultField        = "resource.labels.instance_id"
	DefaultFrom         = "meta:instance-id"
)

// Mapping says how a fleet node is found in Cloud Logging: entries of
// ResourceType whose Field equals the node's value taken From its name,
// address or a meta key.
//
// The zero Mapping is the default (gce_instance, resource.labels.instance_id
// from meta "instance-id"). When Field is left empty it and ResourceType
// default together; a Mapping that sets its own Field with an empty
// ResourceType matches any resource type (e.g. a "hostname" user label
// written by agents on any platform).
type Mapping struct {
	// ResourceType restricts entries to one monitored resource type; ""
	// means any (see above for the default).
	ResourceType string
	// Field is the entry field holding the node's value:
	// resource.labels.KEY, labels.KEY or jsonPayload.PATH. A key with dots
	// or slashes is written quoted, e.g.
	// labels."compute.googleapis.com/resource_name".
	Field string
	// From is where the node's value comes from: "meta:KEY" (a Consul
	// node meta key), "name" or "address".
	From string
}

// fieldPath is a parsed Mapping.Field.
type fieldPath struct {
	root string   // "resource.labels", "labels" or "jsonPayload"
	path []string // the key (one element) or the JSON path
}

// withDefaults fills in the defaults documented on Mapping.
func (m Mapping) withDefaults() Mapping {
	if m.Field == "" {
		m.Field = DefaultField
		if m.ResourceType == "" {
			m.ResourceType = DefaultResourceType
		}
	}
	if m.From == "" {
		m.From = DefaultFrom
	}
	return m
}

// Validate reports a Mapping that cannot be used: an unsupported or
// malformed Field or From, or values that cannot be written in a filter.
func (m Mapping) Validate() error {
	m = m.withDefaults()
	if _, err := parseField(m.Field); err != nil {
		return fmt.Errorf("logview: mapping field: %w", err)
	}
	switch {
	case m.From == "name", m.From == "address":
	case strings.HasPrefix(m.From, "meta:") && len(m.From) > len("meta:"):
	default:
		return fmt.Errorf("logview: mapping from %q: want \"meta:KEY\", \"name\" or \"address\"", m.From)
	}
	if !utf8.ValidString(m.ResourceType) {
		return errors.New("logview: mapping resource type is not valid UTF-8")
	}
	return nil
}

// Value returns the node's value for the mapping (its instance id, say),
// and false when the node has none (an empty value counts as none: it
// would match every entry without the label).
func (m Mapping) Value(n NodeRef) (string, bool) {
	m = m.withDefaults()
	var v string
	switch {
	case m.From == "name":
		v = n.Name
	case m.From == "address":
		v = n.Address
	case strings.HasPrefix(m.From, "meta:"):
		v = n.Meta[strings.TrimPrefix(m.From, "meta:")]
	}
	return v, v != ""
}

// Describe names what the mapping reads from a node, for messages such as
// "3 nodes have no instance-id".
func (m Mapping) Describe() string {
	m = m.withDefaults()
	if k, ok := strings.CutPrefix(m.From, "meta:"); ok {
		return k
	}
	return m.From
}

// parseField parses a field path: dot-separated segments, each plain
// ([A-Za-z0-9_-]) or double-quoted with backslash escapes.
func parseField(s string) (fieldPath, error) {
	var segs []string
	rest := s
	for {
		if rest == "" {
			return fieldPath{}, fmt.Errorf("%q: empty segment", s)
		}
		var seg string
		if rest[0] == '"' {
			var err error
			seg, rest, err = unquotePrefix(rest)
			if err != nil {
				return fieldPath{}, fmt.Errorf("%q: %w", s, err)
			}
		} else {
			i := 0
			for i < len(rest) && isPlain(rest[i]) {
				i++
			}
			seg, rest = rest[:i], rest[i:]
		}
		if seg == "" {
			return fieldPath{}, fmt.Errorf("%q: empty segment", s)
		}
		segs = append(segs, seg)
		if rest == "" {
			break
		}
		if rest[0] != '.' {
			return fieldPath{}, fmt.Errorf("%q: unexpected %q", s, rest[:1])
		}
		rest = rest[1:]
	}
	switch {
	case len(segs) == 3 && segs[0] == "resource" && segs[1] == "labels":
		return fieldPath{root: "resource.labels", path: segs[2:]}, nil
	case len(segs) == 2 && segs[0] == "labels":
		return fieldPath{root: "labels", path: segs[1:]}, nil
	case len(segs) >= 2 && segs[0] == "jsonPayload":
		return fieldPath{root: "jsonPayload", path: segs[1:]}, nil
	}
	return fieldPath{}, fmt.Errorf("%q: want resource.labels.KEY, labels.KEY or jsonPayload.PATH", s)
}

// unquotePrefix reads one double-quoted segment from the start of s and
// returns it unescaped and what follows.
func unquotePrefix(s string) (string, string, error) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; c {
		case '"':
			return b.String(), s[i+1:], nil
		case '\\':
			if i+1 >= len(s) {
				return "", "", errors.New("unterminated quoted segment")
			}
			i++
			switch s[i] {
			case '"', '\\':
				b.WriteByte(s[i])
			default:
				return "", "", fmt.Errorf("unsupported escape \\%c in a field name", s[i])
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", "", errors.New("unterminated quoted segment")
}

func isPlain(c byte) bool {
	return c == '_' || c == '-' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

// String writes the path in filter syntax: segments that are not plain
// identifiers (dots, slashes, spaces) are quoted.
func (f fieldPath) String() string {
	var b strings.Builder
	b.WriteString(f.root)
	for _, s := range f.path {
		b.WriteByte('.')
		plain := s != ""
		for i := 0; i < len(s); i++ {
			if !isPlain(s[i]) {
				plain = false
				break
			}
		}
		if plain {
			b.WriteString(s)
		} else {
			b.WriteString(quote(s))
		}
	}
	return b.String()
}

// lookup reads the field from an entry: a label, a resource label, or a
// JSON payload string (numbers and booleans are not node values).
func (f fieldPath) lookup(e *loggingpb.LogEntry) (string, bool) {
	switch f.root {
	case "resource.labels":
		v, ok := e.GetResource().GetLabels()[f.path[0]]
		return v, ok && v != ""
	case "labels":
		v, ok := e.GetLabels()[f.path[0]]
		return v, ok && v != ""
	case "jsonPayload":
		s := e.GetJsonPayload()
		var v *structpb.Value
		for _, p := range f.path {
			if s == nil {
				return "", false
			}
			v = s.GetFields()[p]
			s = v.GetStructValue()
		}
		str, ok := v.GetKind().(*structpb.Value_StringValue)
		if !ok || str.StringValue == "" {
			return "", false
		}
		return str.StringValue, true
	}
	return "", false
}

// quote writes s as a filter string literal: double-quoted, with
// backslash, quote and control characters escaped (JSON style), so that no
// value can end the string or inject a clause. s must be valid UTF-8.
func quote(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if r < 0x20 || r == 0x7f || (0x80 <= r && r < 0xa0) || r == 0x2028 || r == 0x2029 {
				fmt.Fprintf(&b, `\u%04x`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}

// severityName is the filter keyword for a severity.
func severityName(s Severity) (string, bool) {
	switch s {
	case Default:
		return "DEFAULT", true
	case Debug:
		return "DEBUG", true
	case Info:
		return "INFO", true
	case Notice:
		return "NOTICE", true
	case Warning:
		return "WARNING", true
	case Error:
		return "ERROR", true
	case Critical:
		return "CRITICAL", true
	case Alert:
		return "ALERT", true
	case Emergency:
		return "EMERGENCY", true
	}
	return "", false
}

// String names the severity as the API does ("WARNING"), or its number.
func (s Severity) String() string {
	if n, ok := severityName(s); ok {
		return n
	}
	return fmt.Sprint(int32(s))
}

// timeLiteral is a timestamp as the filter language wants it.
func timeLiteral(t time.Time) string {
	return quote(t.UTC().Format(time.RFC3339Nano))
}

// Plan is the filters for one query and the nodes that could not be put in
// them.
type Plan struct {
	// Filters are the list filters; their results together are the
	// query's. More than one when the node clause exceeds MaxFilterLen.
	Filters []string
	// Unmapped are the names of nodes without a mapping value (no
	// instance id) or whose value cannot be written in a filter (invalid
	// UTF-8, longer than a filter). The console says "3 nodes have no
	// instance-id".
	Unmapped []string
	// values maps each mapping value to the names of the nodes that have
	// it, for routing entries back to nodes.
	values map[string][]string
}

// NodesFor returns the node names whose mapping value is v.
func (p *Plan) NodesFor(v string) []string { return p.values[v] }

// Filters builds the list filters for q over [from, to): every clause
// parenthesised, every value quoted and escaped, the node clause split
// across several filters when one would exceed MaxFilterLen. A zero from or
// to leaves that bound out (a tail has none). Nodes without a mapping value
// are left out; Plan reports them. It fails when the mapping is invalid or
// no node can be queried.
func Filters(q Query, m Mapping, from, to time.Time) ([]string, error) {
	p, err := BuildPlan(q, m, from, to)
	return p.Filters, err
}

// BuildPlan is Filters with the unmapped nodes and the value-to-node index.
func BuildPlan(q Query, m Mapping, from, to time.Time) (Plan, error) {
	if err := m.Validate(); err != nil {
		return Plan{}, err
	}
	m = m.withDefaults()
	fp, _ := parseField(m.Field)
	field := fp.String()

	prefix, err := commonClauses(m, q.MinSeverity, from, to)
	if err != nil {
		return Plan{}, err
	}

	p := Plan{values: map[string][]string{}}
	var terms []string // one `field="value"` per distinct value, in node order
	for _, n := range q.Nodes {
		v, ok := m.Value(n)
		if ok && !utf8.ValidString(v) {
			ok = false
		}
		var term string
		if ok {
			term = field + "=" + quote(v)
			// The term must fit alongside the prefix in one filter.
			if len(prefix)+len(" AND ()")+len(term) > MaxFilterLen {
				ok = false
			}
		}
		if !ok {
			p.Unmapped = append(p.Unmapped, n.Name)
			continue
		}
		if _, seen := p.values[v]; !seen {
			terms = append(terms, term)
		}
		p.values[v] = append(p.values[v], n.Name)
	}
	if len(terms) == 0 {
		if len(q.Nodes) == 0 {
			return p, errors.New("logview: query has no nodes")
		}
		return p, fmt.Errorf("logview: none of the %d nodes has a value for %s", len(q.Nodes), m.Describe())
	}

	// Pack terms greedily into filters of at most MaxFilterLen bytes.
	var cur []string
	size := 0
	flush := func() {
		p.Filters = append(p.Filters, joinClauses(prefix, "("+strings.Join(cur, " OR ")+")"))
		cur, size = nil, 0
	}
	base := len(prefix) + len(" AND ()")
	for _, t := range terms {
		add := len(t)
		if len(cur) > 0 {
			add += len(" OR ")
		}
		if len(cur) > 0 && base+size+add > MaxFilterLen {
			flush()
			add = len(t)
		}
		cur = append(cur, t)
		size += add
	}
	flush()
	return p, nil
}

// commonClauses is the AND of the clauses every filter of a query shares:
// resource type, time window and severity floor, each parenthesised.
func commonClauses(m Mapping, min Severity, from, to time.Time) (string, error) {
	var cl []string
	if m.ResourceType != "" {
		cl = append(cl, "(resource.type="+quote(m.ResourceType)+")")
	}
	if !from.IsZero() {
		cl = append(cl, "(timestamp>="+timeLiteral(from)+")")
	}
	if !to.IsZero() {
		cl = append(cl, "(timestamp<"+timeLiteral(to)+")")
	}
	if min != Default {
		name, ok := severityName(min)
		if !ok {
			return "", fmt.Errorf("logview: unknown severity %d", int32(min))
		}
		cl = append(cl, "(severity>="+name+")")
	}
	return strings.Join(cl, " AND "), nil
}

func joinClauses(prefix, clause string) string {
	if prefix == "" {
		return clause
	}
	return prefix + " AND " + clause
}

// EntryValue reads the mapping's field from an entry: the value to look
// up in a Plan to find the entry's node.
func (m Mapping) EntryValue(e *loggingpb.LogEntry) (string, bool) {
	m = m.withDefaults()
	fp, err := parseField(m.Field)
	if err != nil {
		return "", false
	}
	if m.ResourceType != "" && e.GetResource().GetType() != m.ResourceType {
		return "", false
	}
	return fp.lookup(e)
}

// orFilters joins filters into one that matches what any of them does, or
// reports false when the result would exceed MaxFilterLen.
func orFilters(fs []string) (string, bool) {
	fs = slices.Compact(slices.Sorted(slices.Values(fs)))
	if len(fs) == 1 {
		return fs[0], len(fs[0]) <= MaxFilterLen
	}
	var b strings.Builder
	for i, f := range fs {
		if i > 0 {
			b.WriteString(" OR ")
		}
		b.WriteString("(" + f + ")")
		if b.Len() > MaxFilterLen {
			return "", false
		}
	}
	return b.String(), true
}
