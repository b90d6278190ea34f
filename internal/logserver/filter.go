package logserver

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"cloud.google.com/go/logging/apiv2/loggingpb"
	"google.golang.org/protobuf/types/known/structpb"
)

// MaxFilterLen is the longest filter the service accepts, like Cloud
// Logging's 20,000 characters.
const MaxFilterLen = 20000

// maxDepth bounds nesting (parentheses and NOT chains) so that a hostile
// filter cannot exhaust the stack of the recursive-descent parser.
const maxDepth = 100

// FilterError is a filter the parser rejects. Pos is the 1-based character
// position in the filter where the problem was found.
type FilterError struct {
	Pos int
	Msg string
}

func (e *FilterError) Error() string {
	return fmt.Sprintf("invalid filter: %s at position %d", e.Msg, e.Pos)
}

// Filter is a parsed Cloud Logging filter (the subset described in the
// package documentation). The zero Filter and a Filter parsed from an empty
// string match every entry. A Filter is immutable and safe for concurrent
// use.
type Filter struct {
	root node
	// hasTimestamp says whether any comparison restricts "timestamp"; the
	// list call applies its 24-hour default only when none does.
	hasTimestamp bool
	// lo and hi are the timestamp bounds implied by top-level AND clauses,
	// used only to narrow the scan (the full filter is always evaluated).
	lo, hi bound
}

// bound is an optional timestamp bound; inclusive says whether the bound
// itself matches.
type bound struct {
	set       bool
	t         ts
	inclusive bool
}

// ParseFilter parses a filter in the subset of the Logging query language
// that fleetdeck generates and that a user may type. Errors are
// *FilterError values naming the 1-based character position.
//
// Grammar (AND binds loosest, then OR, then NOT: `a AND b OR c` is
// `a AND (b OR c)`, `NOT a OR b` is `(NOT a) OR b`):
//
//	filter     = orExpr { ["AND"] orExpr }   // juxtaposition is AND
//	orExpr     = notExpr { "OR" notExpr }
//	notExpr    = ("NOT" | "-") notExpr | primary
//	primary    = "(" filter ")" | comparison | term
//	comparison = field op value
//	field      = name { "." (name | quoted) }   // labels."k8s.io/app"
//	op         = "=" | "!=" | "<" | "<=" | ">" | ">=" | ":" | "=~" | "!~"
//	value      = quoted | bareword | "*"        // field:* tests presence
//	           | "(" valueList ")"              // f=(a OR b) is f=a OR f=b
//	term       = quoted | bareword              // searches all text fields
//
// Keywords are upper case; a lower-case "and" is a search term, as in Cloud
// Logging. Quoted strings take the escapes \" \\ \/ \b \f \n \r \t
// and \uXXXX; any other escape is an error. A bare word runs to the next
// space, parenthesis or quote, so an unquoted RFC 3339 time works.
//
// Fields and how they compare:
//   - timestamp, receiveTimestamp: RFC 3339 (without a zone: UTC) or a
//     date; = != < <= > >=.
//   - severity: DEFAULT … EMERGENCY in any case, or a number; ':' is '='.
//   - logName, insertId, resource.type, textPayload, trace, spanId,
//     labels.KEY, resource.labels.KEY and httpRequest.requestMethod,
//     requestUrl, userAgent, remoteIp, serverIp, referer, protocol:
//     strings. '=' and '!=' are exact, ':' is a case-insensitive
//     substring, < > compare bytewise, =~ and !~ are RE2 regexps.
//   - httpRequest.status, requestSize, responseSize: numbers.
//   - jsonPayload.PATH: a string value compares as a string, a number
//     numerically when the filter value is a number, a boolean by name; a
//     list matches when an element does; jsonPayload:VALUE (or
//     jsonPayload.obj:VALUE) searches every value below.
//   - snake_case spellings (log_name, http_request.status, …) work too.
//
// A comparison on a field the entry lacks is false, for != too; NOT of it
// is true. A bare term matches when the log name, insert id, text payload,
// a JSON payload value, a label or resource label value, the resource
// type, or the request URL, user agent or status contains it, ignoring
// case. Anything else (functions such as SEARCH, other fields,
// protoPayload, comparing a whole map) is rejected.
func ParseFilter(src string) (*Filter, error) {
	if len(src) > MaxFilterLen {
		return nil, &FilterError{Pos: MaxFilterLen + 1, Msg: fmt.Sprintf("filter longer than %d characters", MaxFilterLen)}
	}
	if !utf8.ValidString(src) {
		return nil, &FilterError{Pos: invalidUTF8Pos(src), Msg: "invalid UTF-8"}
	}
	p := &parser{src: src}
	f := &Filter{}
	p.skipSpace()
	if p.eof() {
		return f, nil
	}
	root, err := p.parseAnd(0)
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if !p.eof() {
		return nil, p.errf(p.pos, "unexpected %q", p.snippet())
	}
	f.root = root
	f.hasTimestamp = mentionsTimestamp(root)
	f.lo, f.hi = timestampBounds(root)
	return f, nil
}

// Match reports whether e matches the filter.
func (f *Filter) Match(e *loggingpb.LogEntry) bool {
	if f == nil || f.root == nil {
		return true
	}
	return f.root.eval(e)
}

// HasTimestampRestriction reports whether the filter compares "timestamp"
// anywhere; when it does not, ListLogEntries only returns the last 24 hours.
func (f *Filter) HasTimestampRestriction() bool { return f != nil && f.hasTimestamp }

func invalidUTF8Pos(s string) int {
	n := 1
	for i, r := range s {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				return n
			}
		}
		n++
	}
	return n
}

// ---- AST ----

type node interface {
	eval(e *loggingpb.LogEntry) bool
}

type andNode struct{ kids []node }
type orNode struct{ kids []node }
type notNode struct{ kid node }

func (n *andNode) eval(e *loggingpb.LogEntry) bool {
	for _, k := range n.kids {
		if !k.eval(e) {
			return false
		}
	}
	return true
}

func (n *orNode) eval(e *loggingpb.LogEntry) bool {
	for _, k := range n.kids {
		if k.eval(e) {
			return true
		}
	}
	return false
}

func (n *notNode) eval(e *loggingpb.LogEntry) bool { return !n.kid.eval(e) }

type op uint8

const (
	opEq op = iota
	opNe
	opLt
	opLe
	opGt
	opGe
	opHas
	opRe
	opNotRe
)

var opNames = [...]string{"=", "!=", "<", "<=", ">", ">=", ":", "=~", "!~"}

func (o op) String() string { return opNames[o] }

type fieldKind uint8

const (
	fTimestamp fieldKind = iota
	fReceiveTimestamp
	fSeverity
	fString    // a fixed string field, see strField
	fMapKey    // labels.KEY or resource.labels.KEY
	fJSON      // jsonPayload.a.b
	fHTTPInt   // httpRequest.status and sizes
	fJSONWhole // jsonPayload with no path
)

// strField selects one fixed string field of an entry.
type strField uint8

const (
	sLogName strField = iota
	sInsertID
	sResourceType
	sTextPayload
	sTrace
	sSpanID
	sHTTPMethod
	sHTTPURL
	sHTTPUserAgent
	sHTTPRemoteIP
	sHTTPServerIP
	sHTTPReferer
	sHTTPProtocol
)

type field struct {
	kind   fieldKind
	str    strField
	inRes  bool     // fMapKey: resource.labels rather than labels
	key    string   // fMapKey: the label key
	path   []string // fJSON: the path below jsonPayload
	intSel int      // fHTTPInt: 0 status, 1 requestSize, 2 responseSize
	name   string   // as written, for messages
}

// cmpNode is one comparison `field op value`.
type cmpNode struct {
	f  field
	op op
	// exists is `field:*`.
	exists bool
	// Pre-parsed forms of the value, depending on the field kind.
	s     string // raw value
	lower string // lower-cased value for ':'
	t     ts
	n     float64
	isNum bool
	re    *regexp.Regexp
}

// globalNode is a bare term: it matches when any text field of the entry
// contains it, case-insensitively.
type globalNode struct{ lower string }

// ts is a timestamp as (seconds, nanos), comparable without allocation and
// without the int64-nanosecond range limit.
type ts struct {
	sec  int64
	nsec int32
}

func tsOf(t time.Time) ts { return ts{sec: t.Unix(), nsec: int32(t.Nanosecond())} }

func (a ts) cmp(b ts) int {
	switch {
	case a.sec < b.sec:
		return -1
	case a.sec > b.sec:
		return 1
	case a.nsec < b.nsec:
		return -1
	case a.nsec > b.nsec:
		return 1
	}
	return 0
}

func cmpResult(c int, o op) bool {
	switch o {
	case opEq, opHas:
		return c == 0
	case opNe:
		return c != 0
	case opLt:
		return c < 0
	case opLe:
		return c <= 0
	case opGt:
		return c > 0
	case opGe:
		return c >= 0
	}
	return false
}

func (n *cmpNode) eval(e *loggingpb.LogEntry) bool {
	switch n.f.kind {
	case fTimestamp, fReceiveTimestamp:
		p := e.GetTimestamp()
		if n.f.kind == fReceiveTimestamp {
			p = e.GetReceiveTimestamp()
		}
		if p == nil {
			return false
		}
		if n.exists {
			return true
		}
		return cmpResult(ts{p.GetSeconds(), p.GetNanos()}.cmp(n.t), n.op)
	case fSeverity:
		if n.exists {
			return true
		}
		return cmpResult(cmpFloat(float64(e.GetSeverity()), n.n), n.op)
	case fString:
		v, ok := stringField(e, n.f.str)
		if !ok {
			return false
		}
		return n.matchString(v)
	case fMapKey:
		m := e.GetLabels()
		if n.f.inRes {
			m = e.GetResource().GetLabels()
		}
		v, ok := m[n.f.key]
		if !ok {
			return false
		}
		return n.matchString(v)
	case fHTTPInt:
		h := e.GetHttpRequest()
		if h == nil {
			return false
		}
		if n.exists {
			return true
		}
		var v int64
		switch n.f.intSel {
		case 0:
			v = int64(h.GetStatus())
		case 1:
			v = h.GetRequestSize()
		default:
			v = h.GetResponseSize()
		}
		if n.op == opRe || n.op == opNotRe {
			return n.matchString(strconv.FormatInt(v, 10))
		}
		return cmpResult(cmpFloat(float64(v), n.n), n.op)
	case fJSON, fJSONWhole:
		js := e.GetJsonPayload()
		if js == nil {
			return false
		}
		if n.f.kind == fJSONWhole {
			if n.exists {
				return true
			}
			return n.matchValue(structpb.NewStructValue(js), 0)
		}
		v := lookupJSON(js, n.f.path)
		if v == nil {
			return false
		}
		if n.exists {
			return true
		}
		return n.matchValue(v, 0)
	}
	return false
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (n *cmpNode) matchString(v string) bool {
	if n.exists {
		return true
	}
	switch n.op {
	case opHas:
		return containsFold(v, n.lower)
	case opRe:
		return n.re.MatchString(v)
	case opNotRe:
		return !n.re.MatchString(v)
	}
	return cmpResult(strings.Compare(v, n.s), n.op)
}

// matchValue compares a JSON payload value: strings as strings, numbers
// numerically when the filter value is a number, booleans by name, lists
// when any element matches and, for ':', structs when any leaf matches.
func (n *cmpNode) matchValue(v *structpb.Value, depth int) bool {
	if depth > maxDepth {
		return false
	}
	switch k := v.GetKind().(type) {
	case *structpb.Value_StringValue:
		return n.matchString(k.StringValue)
	case *structpb.Value_NumberValue:
		switch {
		case n.op == opHas && n.isNum:
			return k.NumberValue == n.n
		case n.op == opHas || n.op == opRe || n.op == opNotRe:
			return n.matchString(formatNumber(k.NumberValue))
		case n.isNum:
			return cmpResult(cmpFloat(k.NumberValue, n.n), n.op)
		}
		return n.op == opNe
	case *structpb.Value_BoolValue:
		b := "false"
		if k.BoolValue {
			b = "true"
		}
		if n.op == opEq || n.op == opNe || n.op == opHas {
			eq := strings.EqualFold(b, n.s)
			if n.op == opNe {
				return !eq
			}
			return eq
		}
		return n.matchString(b)
	case *structpb.Value_NullValue:
		return (n.op == opEq || n.op == opHas) && strings.EqualFold(n.s, "null")
	case *structpb.Value_ListValue:
		for _, el := range k.ListValue.GetValues() {
			if n.matchValue(el, depth+1) {
				return true
			}
		}
		return false
	case *structpb.Value_StructValue:
		if n.op != opHas {
			return false
		}
		for _, el := range k.StructValue.GetFields() {
			if n.matchValue(el, depth+1) {
				return true
			}
		}
		return false
	}
	return false
}

func formatNumber(f float64) string {
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return strconv.FormatInt(int64(f), 10)
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

func lookupJSON(s *structpb.Struct, path []string) *structpb.Value {
	var v *structpb.Value
	for i, p := range path {
		if s == nil {
			return nil
		}
		v = s.GetFields()[p]
		if v == nil {
			return nil
		}
		if i < len(path)-1 {
			s = v.GetStructValue()
		}
	}
	return v
}

func stringField(e *loggingpb.LogEntry, f strField) (string, bool) {
	switch f {
	case sLogName:
		return e.GetLogName(), true
	case sInsertID:
		return e.GetInsertId(), true
	case sResourceType:
		if e.GetResource() == nil {
			return "", false
		}
		return e.GetResource().GetType(), true
	case sTextPayload:
		p, ok := e.GetPayload().(*loggingpb.LogEntry_TextPayload)
		if !ok {
			return "", false
		}
		return p.TextPayload, true
	case sTrace:
		return e.GetTrace(), e.GetTrace() != ""
	case sSpanID:
		return e.GetSpanId(), e.GetSpanId() != ""
	}
	h := e.GetHttpRequest()
	if h == nil {
		return "", false
	}
	switch f {
	case sHTTPMethod:
		return h.GetRequestMethod(), true
	case sHTTPURL:
		return h.GetRequestUrl(), true
	case sHTTPUserAgent:
		return h.GetUserAgent(), true
	case sHTTPRemoteIP:
		return h.GetRemoteIp(), true
	case sHTTPServerIP:
		return h.GetServerIp(), true
	case sHTTPReferer:
		return h.GetReferer(), true
	case sHTTPProtocol:
		return h.GetProtocol(), true
	}
	return "", false
}

// containsFold reports whether lowerNeedle (already lower-cased) occurs in
// s, ignoring case. The ASCII fast path avoids allocating for the common
// case.
func containsFold(s, lowerNeedle string) bool {
	if lowerNeedle == "" {
		return true
	}
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if !ascii {
		return strings.Contains(strings.ToLower(s), lowerNeedle)
	}
	n := len(lowerNeedle)
	first := lowerNeedle[0]
	for i := 0; i+n <= len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != first {
			continue
		}
		j := 1
		for ; j < n; j++ {
			d := s[i+j]
			if 'A' <= d && d <= 'Z' {
				d += 'a' - 'A'
			}
			if d != lowerNeedle[j] {
				break
			}
		}
		if j == n {
			return true
		}
	}
	return false
}

func (g *globalNode) eval(e *loggingpb.LogEntry) bool {
	if containsFold(e.GetLogName(), g.lower) || containsFold(e.GetInsertId(), g.lower) {
		return true
	}
	if p, ok := e.GetPayload().(*loggingpb.LogEntry_TextPayload); ok && containsFold(p.TextPayload, g.lower) {
		return true
	}
	if js := e.GetJsonPayload(); js != nil && jsonContains(js, g.lower, 0) {
		return true
	}
	for _, v := range e.GetLabels() {
		if containsFold(v, g.lower) {
			return true
		}
	}
	if r := e.GetResource(); r != nil {
		if containsFold(r.GetType(), g.lower) {
			return true
		}
		for _, v := range r.GetLabels() {
			if containsFold(v, g.lower) {
				return true
			}
		}
	}
	if h := e.GetHttpRequest(); h != nil {
		if containsFold(h.GetRequestUrl(), g.lower) || containsFold(h.GetUserAgent(), g.lower) ||
			containsFold(strconv.Itoa(int(h.GetStatus())), g.lower) {
			return true
		}
	}
	return false
}

func jsonContains(s *structpb.Struct, lower string, depth int) bool {
	if depth > maxDepth {
		return false
	}
	for _, v := range s.GetFields() {
		if valueContains(v, lower, depth+1) {
			return true
		}
	}
	return false
}

func valueContains(v *structpb.Value, lower string, depth int) bool {
	switch k := v.GetKind().(type) {
	case *structpb.Value_StringValue:
		return containsFold(k.StringValue, lower)
	case *structpb.Value_NumberValue:
		return containsFold(formatNumber(k.NumberValue), lower)
	case *structpb.Value_StructValue:
		return jsonContains(k.StructValue, lower, depth)
	case *structpb.Value_ListValue:
		for _, el := range k.ListValue.GetValues() {
			if valueContains(el, lower, depth+1) {
				return true
			}
		}
	}
	return false
}

// ---- analysis ----

func mentionsTimestamp(n node) bool {
	switch n := n.(type) {
	case *andNode:
		for _, k := range n.kids {
			if mentionsTimestamp(k) {
				return true
			}
		}
	case *orNode:
		for _, k := range n.kids {
			if mentionsTimestamp(k) {
				return true
			}
		}
	case *notNode:
		return mentionsTimestamp(n.kid)
	case *cmpNode:
		return n.f.kind == fTimestamp
	}
	return false
}

// timestampBounds derives [lo, hi] from comparisons on "timestamp" that are
// top-level conjuncts: every matching entry lies within them.
func timestampBounds(n node) (lo, hi bound) {
	var walk func(n node)
	walk = func(n node) {
		switch n := n.(type) {
		case *andNode:
			for _, k := range n.kids {
				walk(k)
			}
		case *orNode:
			if len(n.kids) == 1 {
				walk(n.kids[0])
			}
		case *cmpNode:
			if n.f.kind != fTimestamp || n.exists {
				return
			}
			switch n.op {
			case opGe, opGt:
				lo = tighterLo(lo, bound{set: true, t: n.t, inclusive: n.op == opGe})
			case opLe, opLt:
				hi = tighterHi(hi, bound{set: true, t: n.t, inclusive: n.op == opLe})
			case opEq:
				lo = tighterLo(lo, bound{set: true, t: n.t, inclusive: true})
				hi = tighterHi(hi, bound{set: true, t: n.t, inclusive: true})
			}
		}
	}
	walk(n)
	return lo, hi
}

func tighterLo(a, b bound) bound {
	if !a.set {
		return b
	}
	switch c := a.t.cmp(b.t); {
	case c < 0:
		return b
	case c == 0 && !b.inclusive:
		return b
	}
	return a
}

func tighterHi(a, b bound) bound {
	if !a.set {
		return b
	}
	switch c := a.t.cmp(b.t); {
	case c > 0:
		return b
	case c == 0 && !b.inclusive:
		return b
	}
	return a
}

// ---- parser ----

// parser is a recursive-descent parser that lexes on demand: what counts as
// one token depends on where the parser is (a value after an operator may
// contain ':' and '-', as in an unquoted RFC 3339 timestamp).
type parser struct {
	src string
	pos int
}

func (p *parser) eof() bool { return p.pos >= len(p.src) }

func (p *parser) errf(pos int, format string, args ...any) error {
	return &FilterError{Pos: utf8.RuneCountInString(p.src[:min(pos, len(p.src))]) + 1, Msg: fmt.Sprintf(format, args...)}
}

// snippet is a short piece of the input at the current position, for
// messages.
func (p *parser) snippet() string {
	s := p.src[p.pos:]
	if len(s) > 20 {
		s = s[:20]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
		s += "…"
	}
	return s
}

func (p *parser) skipSpace() {
	for p.pos < len(p.src) {
		switch p.src[p.pos] {
		case ' ', '\t', '\n', '\r', '\f', '\v':
			p.pos++
		default:
			return
		}
	}
}

// isDelim reports whether c ends a bare word.
func isDelim(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\r', '\f', '\v', '(', ')', '"':
		return true
	}
	return false
}

func isOpChar(c byte) bool {
	switch c {
	case '=', '!', '<', '>', ':':
		return true
	}
	return false
}

// keyword reports whether the keyword kw (AND, OR, NOT) starts at the
// current position as a whole word. Keywords are upper case only, as in the
// Logging query language.
func (p *parser) keyword(kw string) bool {
	if !strings.HasPrefix(p.src[p.pos:], kw) {
		return false
	}
	end := p.pos + len(kw)
	return end == len(p.src) || isDelim(p.src[end])
}

// atTermEnd reports whether the current position ends a conjunction: end of
// input or a closing parenthesis.
func (p *parser) atTermEnd() bool {
	return p.eof() || p.src[p.pos] == ')'
}

// parseAnd parses a sequence of OR-expressions joined by AND or by
// juxtaposition. AND binds loosest in this language.
func (p *parser) parseAnd(depth int) (node, error) {
	if depth > maxDepth {
		return nil, p.errf(p.pos, "expression nested too deeply")
	}
	var kids []node
	for {
		p.skipSpace()
		if p.atTermEnd() {
			break
		}
		if p.keyword("AND") {
			if len(kids) == 0 {
				return nil, p.errf(p.pos, "AND without a left operand")
			}
			p.pos += 3
			p.skipSpace()
			if p.atTermEnd() || p.keyword("AND") {
				return nil, p.errf(p.pos, "AND without a right operand")
			}
		}
		if p.keyword("OR") {
			return nil, p.errf(p.pos, "OR without a left operand")
		}
		n, err := p.parseOr(depth)
		if err != nil {
			return nil, err
		}
		kids = append(kids, n)
	}
	if len(kids) == 0 {
		return nil, p.errf(p.pos, "empty expression")
	}
	if len(kids) == 1 {
		return kids[0], nil
	}
	return &andNode{kids: kids}, nil
}

// parseOr parses NOT-expressions joined by OR, which binds tighter than AND.
func (p *parser) parseOr(depth int) (node, error) {
	first, err := p.parseNot(depth)
	if err != nil {
		return nil, err
	}
	kids := []node{first}
	for {
		save := p.pos
		p.skipSpace()
		if !p.keyword("OR") {
			p.pos = save
			break
		}
		p.pos += 2
		p.skipSpace()
		if p.atTermEnd() || p.keyword("AND") || p.keyword("OR") {
			return nil, p.errf(p.pos, "OR without a right operand")
		}
		n, err := p.parseNot(depth)
		if err != nil {
			return nil, err
		}
		kids = append(kids, n)
	}
	if len(kids) == 1 {
		return first, nil
	}
	return &orNode{kids: kids}, nil
}

// parseNot parses NOT x, -x or a primary expression. NOT binds tightest.
func (p *parser) parseNot(depth int) (node, error) {
	if depth > maxDepth {
		return nil, p.errf(p.pos, "expression nested too deeply")
	}
	p.skipSpace()
	if p.keyword("NOT") {
		p.pos += 3
		p.skipSpace()
		if p.atTermEnd() {
			return nil, p.errf(p.pos, "NOT without an operand")
		}
		n, err := p.parseNot(depth + 1)
		if err != nil {
			return nil, err
		}
		return &notNode{kid: n}, nil
	}
	if p.pos < len(p.src) && p.src[p.pos] == '-' {
		if p.pos+1 >= len(p.src) || isDelim(p.src[p.pos+1]) && p.src[p.pos+1] != '(' && p.src[p.pos+1] != '"' {
			return nil, p.errf(p.pos, "'-' must be followed directly by an expression")
		}
		p.pos++
		n, err := p.parseNot(depth + 1)
		if err != nil {
			return nil, err
		}
		return &notNode{kid: n}, nil
	}
	return p.parsePrimary(depth)
}

func (p *parser) parsePrimary(depth int) (node, error) {
	p.skipSpace()
	if p.eof() {
		return nil, p.errf(p.pos, "unexpected end of filter")
	}
	start := p.pos
	switch c := p.src[p.pos]; {
	case c == '(':
		p.pos++
		n, err := p.parseAnd(depth + 1)
		if err != nil {
			return nil, err
		}
		p.skipSpace()
		if p.eof() || p.src[p.pos] != ')' {
			return nil, p.errf(start, "unbalanced '('")
		}
		p.pos++
		return n, nil
	case c == ')':
		return nil, p.errf(p.pos, "unexpected ')'")
	case c == '"':
		s, err := p.quoted()
		if err != nil {
			return nil, err
		}
		save := p.pos
		p.skipSpace()
		if !p.eof() && isOpChar(p.src[p.pos]) {
			return nil, p.errf(start, "a field name cannot start with a quoted string")
		}
		p.pos = save
		return &globalNode{lower: strings.ToLower(s)}, nil
	case isOpChar(c):
		return nil, p.errf(p.pos, "operator %q without a field", p.peekOp())
	}
	// A field path (a.b."c d".e) or a bare search term.
	segs, raw, err := p.path()
	if err != nil {
		return nil, err
	}
	if !p.eof() && p.src[p.pos] == '(' {
		return nil, p.errf(start, "functions such as %s(...) are not supported", raw)
	}
	save := p.pos
	p.skipSpace()
	if p.eof() || !isOpChar(p.src[p.pos]) {
		p.pos = save
		if !strings.Contains(raw, "\"") {
			return &globalNode{lower: strings.ToLower(raw)}, nil
		}
		return nil, p.errf(start, "field %q needs an operator and a value", raw)
	}
	opPos := p.pos
	o, ok := p.op()
	if !ok {
		return nil, p.errf(opPos, "unknown operator %q", p.peekOp())
	}
	for _, seg := range segs {
		if seg == "" {
			return nil, p.errf(start, "empty field name in %q", raw)
		}
	}
	f, err := resolveField(segs, raw)
	if err != nil {
		return nil, p.errf(start, "%s", err.Error())
	}
	return p.parseRHS(f, o, depth)
}

func (p *parser) peekOp() string {
	end := p.pos
	for end < len(p.src) && isOpChar(p.src[end]) && end-p.pos < 3 {
		end++
	}
	return p.src[p.pos:end]
}

func (p *parser) op() (op, bool) {
	two := ""
	if p.pos+2 <= len(p.src) {
		two = p.src[p.pos : p.pos+2]
	}
	switch two {
	case "!=":
		p.pos += 2
		return opNe, true
	case "<=":
		p.pos += 2
		return opLe, true
	case ">=":
		p.pos += 2
		return opGe, true
	case "=~":
		p.pos += 2
		return opRe, true
	case "!~":
		p.pos += 2
		return opNotRe, true
	}
	switch p.src[p.pos] {
	case '=':
		p.pos++
		return opEq, true
	case '<':
		p.pos++
		return opLt, true
	case '>':
		p.pos++
		return opGt, true
	case ':':
		p.pos++
		return opHas, true
	}
	return 0, false
}

// path reads a dotted field path; segments may be double-quoted
// (labels."k8s.io/app"). raw is the text as written: when no operator
// follows, parsePrimary takes it as a search term instead. A trailing dot
// yields an empty last segment, which no field accepts.
func (p *parser) path() (segs []string, raw string, err error) {
	start := p.pos
	for {
		if !p.eof() && p.src[p.pos] == '"' {
			s, err := p.quoted()
			if err != nil {
				return nil, "", err
			}
			segs = append(segs, s)
		} else {
			b := p.pos
			for p.pos < len(p.src) && !isDelim(p.src[p.pos]) && !isOpChar(p.src[p.pos]) && p.src[p.pos] != '.' {
				p.pos++
			}
			segs = append(segs, p.src[b:p.pos])
		}
		if p.pos < len(p.src) && p.src[p.pos] == '.' {
			p.pos++
			continue
		}
		break
	}
	return segs, p.src[start:p.pos], nil
}

// quoted reads a double-quoted string with JSON-style escapes.
func (p *parser) quoted() (string, error) {
	start := p.pos
	p.pos++ // opening quote
	var b strings.Builder
	for {
		if p.eof() {
			return "", p.errf(start, "unterminated string")
		}
		c := p.src[p.pos]
		switch c {
		case '"':
			p.pos++
			return b.String(), nil
		case '\\':
			escPos := p.pos
			p.pos++
			if p.eof() {
				return "", p.errf(start, "unterminated string")
			}
			e := p.src[p.pos]
			p.pos++
			switch e {
			case '"', '\\', '/':
				b.WriteByte(e)
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			case 'b':
				b.WriteByte('\b')
			case 'f':
				b.WriteByte('\f')
			case 'u':
				r, err := p.hex4(escPos)
				if err != nil {
					return "", err
				}
				if 0xD800 <= r && r < 0xDC00 && strings.HasPrefix(p.src[p.pos:], `\u`) {
					save := p.pos
					p.pos += 2
					r2, err := p.hex4(save)
					if err != nil {
						return "", err
					}
					if 0xDC00 <= r2 && r2 < 0xE000 {
						r = 0x10000 + (r-0xD800)<<10 + (r2 - 0xDC00)
					} else {
						p.pos = save
					}
				}
				b.WriteRune(r)
			default:
				return "", p.errf(escPos, "unknown escape \\%c", e)
			}
		default:
			b.WriteByte(c)
			p.pos++
		}
	}
}

func (p *parser) hex4(escPos int) (rune, error) {
	if p.pos+4 > len(p.src) {
		return 0, p.errf(escPos, `\u needs four hex digits`)
	}
	v, err := strconv.ParseUint(p.src[p.pos:p.pos+4], 16, 32)
	if err != nil {
		return 0, p.errf(escPos, `\u needs four hex digits`)
	}
	p.pos += 4
	return rune(v), nil
}

// parseRHS parses the value after an operator: a quoted string, a bare
// word, '*' after ':' (field present), or a parenthesised value list with
// AND / OR / NOT that expands into one comparison per value.
func (p *parser) parseRHS(f field, o op, depth int) (node, error) {
	p.skipSpace()
	if p.eof() || p.src[p.pos] == ')' {
		return nil, p.errf(p.pos, "expected a value after %q", o.String())
	}
	if p.src[p.pos] == '(' {
		return p.parseValueAnd(f, o, depth+1)
	}
	return p.valueLeaf(f, o)
}

func (p *parser) valueLeaf(f field, o op) (node, error) {
	start := p.pos
	var v string
	quoted := false
	if p.src[p.pos] == '"' {
		s, err := p.quoted()
		if err != nil {
			return nil, err
		}
		v, quoted = s, true
	} else {
		for p.pos < len(p.src) && !isDelim(p.src[p.pos]) {
			p.pos++
		}
		v = p.src[start:p.pos]
		if v == "" {
			return nil, p.errf(start, "expected a value after %q", o.String())
		}
		if isOpChar(v[0]) || v[0] == '~' {
			return nil, p.errf(start, "unexpected %q after %q (quote the value if it is meant literally)", v[:1], o.String())
		}
	}
	c, err := newCmp(f, o, v, quoted)
	if err != nil {
		return nil, p.errf(start, "%s", err.Error())
	}
	return c, nil
}

// Value lists: field=(a OR b) and field=(a AND NOT b), same precedence as
// filters.
func (p *parser) parseValueAnd(f field, o op, depth int) (node, error) {
	if depth > maxDepth {
		return nil, p.errf(p.pos, "expression nested too deeply")
	}
	start := p.pos
	p.pos++ // '('
	var kids []node
	for {
		p.skipSpace()
		if p.eof() {
			return nil, p.errf(start, "unbalanced '('")
		}
		if p.src[p.pos] == ')' {
			p.pos++
			break
		}
		if p.keyword("AND") {
			if len(kids) == 0 {
				return nil, p.errf(p.pos, "AND without a left operand")
			}
			p.pos += 3
			p.skipSpace()
			if p.eof() || p.src[p.pos] == ')' || p.keyword("AND") {
				return nil, p.errf(p.pos, "AND without a right operand")
			}
		}
		n, err := p.parseValueOr(f, o, depth)
		if err != nil {
			return nil, err
		}
		kids = append(kids, n)
	}
	switch len(kids) {
	case 0:
		return nil, p.errf(start, "empty value list")
	case 1:
		return kids[0], nil
	}
	return &andNode{kids: kids}, nil
}

func (p *parser) parseValueOr(f field, o op, depth int) (node, error) {
	first, err := p.parseValueNot(f, o, depth)
	if err != nil {
		return nil, err
	}
	kids := []node{first}
	for {
		save := p.pos
		p.skipSpace()
		if !p.keyword("OR") {
			p.pos = save
			break
		}
		p.pos += 2
		n, err := p.parseValueNot(f, o, depth)
		if err != nil {
			return nil, err
		}
		kids = append(kids, n)
	}
	if len(kids) == 1 {
		return first, nil
	}
	return &orNode{kids: kids}, nil
}

func (p *parser) parseValueNot(f field, o op, depth int) (node, error) {
	if depth > maxDepth {
		return nil, p.errf(p.pos, "expression nested too deeply")
	}
	p.skipSpace()
	if p.eof() || p.src[p.pos] == ')' {
		return nil, p.errf(p.pos, "expected a value")
	}
	if p.keyword("NOT") {
		p.pos += 3
		n, err := p.parseValueNot(f, o, depth+1)
		if err != nil {
			return nil, err
		}
		return &notNode{kid: n}, nil
	}
	if p.keyword("AND") || p.keyword("OR") {
		return nil, p.errf(p.pos, "expected a value")
	}
	if p.src[p.pos] == '(' {
		return p.parseValueAnd(f, o, depth+1)
	}
	return p.valueLeaf(f, o)
}

// resolveField maps a path to a supported field.
func resolveField(segs []string, raw string) (field, error) {
	f := field{name: raw}
	head := segs[0]
	one := func(k fieldKind) (field, error) {
		if len(segs) != 1 {
			return f, fmt.Errorf("field %q has no subfields", head)
		}
		f.kind = k
		return f, nil
	}
	str := func(s strField) (field, error) {
		f.str = s
		return one(fString)
	}
	switch head {
	case "timestamp":
		return one(fTimestamp)
	case "receiveTimestamp", "receive_timestamp":
		return one(fReceiveTimestamp)
	case "severity":
		return one(fSeverity)
	case "logName", "log_name":
		return str(sLogName)
	case "insertId", "insert_id":
		return str(sInsertID)
	case "textPayload", "text_payload":
		return str(sTextPayload)
	case "trace":
		return str(sTrace)
	case "spanId", "span_id":
		return str(sSpanID)
	case "labels":
		if len(segs) != 2 {
			return f, fmt.Errorf("field %q: use labels.KEY", raw)
		}
		f.kind, f.key = fMapKey, segs[1]
		return f, nil
	case "resource":
		if len(segs) == 2 && segs[1] == "type" {
			f.kind, f.str = fString, sResourceType
			return f, nil
		}
		if len(segs) == 3 && segs[1] == "labels" {
			f.kind, f.inRes, f.key = fMapKey, true, segs[2]
			return f, nil
		}
		return f, fmt.Errorf("unsupported field %q (use resource.type or resource.labels.KEY)", raw)
	case "jsonPayload", "json_payload":
		if len(segs) == 1 {
			f.kind = fJSONWhole
			return f, nil
		}
		f.kind, f.path = fJSON, segs[1:]
		return f, nil
	case "httpRequest", "http_request":
		if len(segs) != 2 {
			return f, fmt.Errorf("unsupported field %q (use httpRequest.FIELD)", raw)
		}
		switch segs[1] {
		case "status":
			f.kind, f.intSel = fHTTPInt, 0
			return f, nil
		case "requestSize", "request_size":
			f.kind, f.intSel = fHTTPInt, 1
			return f, nil
		case "responseSize", "response_size":
			f.kind, f.intSel = fHTTPInt, 2
			return f, nil
		case "requestMethod", "request_method":
			f.kind, f.str = fString, sHTTPMethod
		case "requestUrl", "request_url":
			f.kind, f.str = fString, sHTTPURL
		case "userAgent", "user_agent":
			f.kind, f.str = fString, sHTTPUserAgent
		case "remoteIp", "remote_ip":
			f.kind, f.str = fString, sHTTPRemoteIP
		case "serverIp", "server_ip":
			f.kind, f.str = fString, sHTTPServerIP
		case "referer":
			f.kind, f.str = fString, sHTTPReferer
		case "protocol":
			f.kind, f.str = fString, sHTTPProtocol
		default:
			return f, fmt.Errorf("unsupported field %q", raw)
		}
		return f, nil
	}
	return f, fmt.Errorf("unsupported field %q", raw)
}

var severityNames = map[string]float64{
	"DEFAULT": 0, "DEBUG": 100, "INFO": 200, "NOTICE": 300, "WARNING": 400,
	"ERROR": 500, "CRITICAL": 600, "ALERT": 700, "EMERGENCY": 800,
}

// newCmp builds a comparison and pre-parses its value for the field's kind.
func newCmp(f field, o op, v string, quoted bool) (*cmpNode, error) {
	c := &cmpNode{f: f, op: o, s: v, lower: strings.ToLower(v)}
	if o == opHas && v == "*" && !quoted {
		c.exists = true
		return c, nil
	}
	if o == opRe || o == opNotRe {
		switch f.kind {
		case fTimestamp, fReceiveTimestamp, fSeverity:
			return nil, fmt.Errorf("operator %q is not supported for %s", o.String(), f.name)
		}
		re, err := regexp.Compile(v)
		if err != nil {
			return nil, fmt.Errorf("bad regular expression %q: %v", v, err)
		}
		c.re = re
		return c, nil
	}
	switch f.kind {
	case fTimestamp, fReceiveTimestamp:
		if o == opHas {
			return nil, fmt.Errorf("operator ':' is not supported for %s (use >=, <, =)", f.name)
		}
		t, err := parseTime(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %q is not an RFC 3339 timestamp", f.name, v)
		}
		c.t = tsOf(t)
	case fSeverity:
		if n, ok := severityNames[strings.ToUpper(v)]; ok {
			c.n = n
		} else if n, err := strconv.Atoi(v); err == nil {
			c.n = float64(n)
		} else {
			return nil, fmt.Errorf("severity: unknown level %q", v)
		}
		c.isNum = true
	case fHTTPInt:
		n, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: %q is not a number", f.name, v)
		}
		c.n, c.isNum = n, true
	case fJSON, fJSONWhole:
		if n, err := strconv.ParseFloat(v, 64); err == nil && !math.IsNaN(n) && !math.IsInf(n, 0) {
			c.n, c.isNum = n, true
		}
		if f.kind == fJSONWhole && o != opHas {
			return nil, fmt.Errorf("jsonPayload needs a field path for %q", o.String())
		}
	}
	return c, nil
}

func parseTime(v string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02T15:04:05.999999999", v); err == nil {
		return t, nil // no zone: UTC, as Cloud Logging assumes
	}
	return time.Parse(time.DateOnly, v)
}
