package tui

import (
	"slices"
	"strconv"
	"strings"

	"github.com/fleetdeck/fleetdeck/fleet"
)

// The filter language typed after "/":
//
//	web-1              free text: substring of any column (case-insensitive)
//	role:web           runs the service "web"          (exact, case-insensitive)
//	health:critical    health is critical (passing, warning, critical,
//	                   maintenance/maint; "failing" = anything not passing)
//	group:web-asg      autoscaling group               (exact)
//	dc:dc1             datacenter                      (exact)
//	zone:eu-west-1a    zone                            (exact)
//	name:web           node name contains              (substring)
//	meta:key=value     node meta key has value; meta:key = key is present
//	tag:canary         some service has the tag        (exact)
//	state:drift        desired-state state: pending, applying, converged,
//	                   failed, drift, unmanaged (no desired record)
//	drift              the same as state:drift
//	!term              negates any term
//
// Terms are separated by spaces and ANDed; a value with spaces can be
// quoted: role:"my svc". An unknown field ("foo:bar") is free text, so an
// IPv6 address still searches as typed.

// filterField names what a term tests.
type filterField uint8

const (
	fieldText filterField = iota
	fieldRole
	fieldHealth
	fieldGroup
	fieldDC
	fieldZone
	fieldName
	fieldMeta
	fieldTag
	fieldState
)

// filterFields maps the field prefixes to fields. Built by a function so
// that no package-level mutable map exists.
func filterFieldByName(name string) (filterField, bool) {
	switch name {
	case "role", "service":
		return fieldRole, true
	case "health", "status":
		return fieldHealth, true
	case "group", "asg", "mig":
		return fieldGroup, true
	case "dc", "datacenter":
		return fieldDC, true
	case "zone":
		return fieldZone, true
	case "name", "node":
		return fieldName, true
	case "meta":
		return fieldMeta, true
	case "tag":
		return fieldTag, true
	case "state":
		return fieldState, true
	}
	return fieldText, false
}

// filterTerm is one parsed term. value is lowercased (except meta values,
// which compare exactly on the key and case-insensitively on the value).
type filterTerm struct {
	field  filterField
	neg    bool
	value  string
	key    string       // meta key
	hasVal bool         // meta term had "=value"
	health fleet.Health // for fieldHealth
	// failing matches any health but passing (health:failing).
	failing bool
}

// filterExpr is a parsed filter: all terms must match.
type filterExpr struct {
	terms []filterTerm
	// problem explains a term that can match nothing (an unknown health),
	// shown when the view comes out empty.
	problem string
}

// empty reports whether the filter matches everything.
func (f filterExpr) empty() bool { return len(f.terms) == 0 }

// parseFilter parses the filter language. It never fails: anything it does
// not understand is searched as free text, because a filter that silently
// rejects input is worse during an incident than one that matches nothing.
func parseFilter(s string) filterExpr {
	var f filterExpr
	for _, tok := range tokenize(s) {
		t := filterTerm{}
		if strings.HasPrefix(tok, "!") && len(tok) > 1 {
			t.neg = true
			tok = tok[1:]
		}
		t.value = strings.ToLower(tok)
		if t.value == "drift" {
			// The term for nodes whose catalog left their desired
			// state (name:drift finds names).
			t.field = fieldState
		}
		if i := strings.IndexByte(tok, ':'); i > 0 {
			if field, ok := filterFieldByName(strings.ToLower(tok[:i])); ok {
				t.field = field
				raw := tok[i+1:]
				t.value = strings.ToLower(raw)
				switch field {
				case fieldHealth:
					switch t.value {
					case "failing", "faults", "fault", "!passing":
						t.failing = true
					case "maint":
						t.health = fleet.HealthMaintenance
					default:
						h, ok := fleet.ParseHealth(t.value)
						if !ok {
							// Unknown health: match nothing (or everything
							// when negated) rather than guess, and say why.
							t.health = fleet.Health(255)
							f.problem = "unknown health " + strconv.Quote(raw) + " (passing, warning, critical, maint or failing)"
						} else {
							t.health = h
						}
					}
				case fieldState:
					if !validStateTerm(t.value) {
						f.problem = "unknown state " + strconv.Quote(raw) + " (pending, applying, converged, failed, drift or unmanaged)"
					}
				case fieldMeta:
					if k, v, ok := strings.Cut(raw, "="); ok {
						t.key, t.value, t.hasVal = k, strings.ToLower(v), true
					} else {
						t.key, t.value = raw, ""
					}
				}
			}
		}
		if t.field == fieldText && t.value == "" {
			continue
		}
		f.terms = append(f.terms, t)
	}
	// Terms are ANDed, so their order is free: test the cheap exact
	// comparisons before substring searches and map lookups, so most rows
	// are rejected early.
	slices.SortStableFunc(f.terms, func(a, b filterTerm) int { return termCost(a.field) - termCost(b.field) })
	return f
}

// termCost ranks fields by how expensive their test is.
func termCost(f filterField) int {
	switch f {
	case fieldHealth:
		return 0
	case fieldDC, fieldGroup, fieldZone:
		return 1
	case fieldRole, fieldTag:
		return 2
	case fieldName, fieldState:
		return 3
	case fieldMeta:
		return 4
	}
	return 5 // free text scans the whole search string
}

// tokenize splits s on spaces, keeping double-quoted runs together (the
// quotes are removed).
func tokenize(s string) []string {
	var out []string
	var b strings.Builder
	inQuote := false
	for _, r := range s {
		switch {
		case r == '"':
			inQuote = !inQuote
		case r == ' ' && !inQuote:
			if b.Len() > 0 {
				out = append(out, b.String())
				b.Reset()
			}
		default:
			b.WriteRune(r)
		}
	}
	if b.Len() > 0 {
		out = append(out, b.String())
	}
	return out
}

// quoteTerm renders field:value so that parseFilter reads it back as one
// term, quoting values with spaces or quotes.
func quoteTerm(field, value string) string {
	if strings.ContainsAny(value, " \"") || value == "" {
		// tokenize has no escapes: a value cannot contain a quote.
		return field + `:"` + strings.ReplaceAll(value, `"`, "") + `"`
	}
	return field + ":" + value
}

// matchNode reports whether the node of row r passes every term.
func (f filterExpr) matchNode(r *row) bool {
	for i := range f.terms {
		t := &f.terms[i]
		if t.matchNode(r) == t.neg {
			return false
		}
	}
	return true
}

// matchNode tests one term against a node row, ignoring negation. Only
// meta terms reach into the node itself.
func (t *filterTerm) matchNode(r *row) bool {
	r.filterKeys()
	k := &r.keys
	switch t.field {
	case fieldText:
		return strings.Contains(r.search, t.value)
	case fieldRole:
		return slices.Contains(k.roles, t.value)
	case fieldHealth:
		return t.matchHealth(r.health)
	case fieldGroup:
		return k.group == t.value
	case fieldDC:
		return k.dc == t.value
	case fieldZone:
		return k.zone == t.value
	case fieldName:
		return strings.Contains(k.name, t.value)
	case fieldMeta:
		v, ok := r.node.Meta[t.key]
		if !ok || !t.hasVal {
			return ok
		}
		return strings.EqualFold(v, t.value)
	case fieldTag:
		return slices.Contains(k.tags, t.value)
	case fieldState:
		return r.state == t.value || (r.state == "" && t.value == "unmanaged")
	}
	return false
}

// validStateTerm reports whether v names a desired-state state.
func validStateTerm(v string) bool {
	switch v {
	case "pending", "applying", "converged", "failed", "drift", "unmanaged":
		return true
	}
	return false
}

// matchHealth tests a health term against h.
func (t *filterTerm) matchHealth(h fleet.Health) bool {
	if t.failing {
		return h != fleet.HealthPassing
	}
	return h == t.health
}

// matchSummary applies the filter to a row of the roles, groups or events
// view: free text searches the row's text, health terms test its health,
// and the field terms that name the row's own kind test its name. Terms
// about fields the row does not have match nothing (so a negated one
// matches everything).
func (f filterExpr) matchSummary(r *row, nameField filterField) bool {
	for i := range f.terms {
		t := &f.terms[i]
		var ok bool
		switch t.field {
		case fieldText:
			ok = strings.Contains(r.search, t.value)
		case fieldHealth:
			ok = t.matchHealth(r.health)
		case nameField, fieldName:
			ok = containsFold(r.name, t.value)
		case fieldDC:
			ok = strings.EqualFold(r.dc, t.value)
		case fieldGroup:
			ok = strings.EqualFold(r.group, t.value)
		}
		if ok == t.neg {
			return false
		}
	}
	return true
}

// containsFold reports whether s contains lower (already lowercased),
// case-insensitively, without allocating for ASCII s.
func containsFold(s, lower string) bool {
	if isPrintableASCII(s) {
		n := len(lower)
		for i := 0; i+n <= len(s); i++ {
			if asciiEqualFold(s[i:i+n], lower) {
				return true
			}
		}
		return false
	}
	return strings.Contains(strings.ToLower(s), lower)
}

// asciiEqualFold compares ASCII a with lowercased b.
func asciiEqualFold(a, b string) bool {
	for i := 0; i < len(a); i++ {
		c := a[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != b[i] {
			return false
		}
	}
	return true
}
