package tui

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fleetdeck/fleetdeck/fleet"
)

// headerCounts draws the first header line: product, read-only marker and
// the health tally of the nodes in scope. Counts are labelled with words,
// so they read the same without colour.
func (s *shared) headerCounts() string {
	st := &s.st
	c := s.scope.Counts
	// Each item has a full and a compact text; a narrow terminal gets the
	// compact ones, and then loses items from the end — never the marks
	// that say what the counts are worth (RO, last known) or the counts.
	type item struct{ style, full, short string }
	var items []item
	add := func(style, full, short string) { items = append(items, item{style, full, short}) }
	// The product name goes first when space is short: the counts matter
	// more, and the user knows what they are looking at.
	add(st.title, "fleetdeck", "")
	if s.ro {
		add(st.bad, "RO", "RO")
	}
	// While Consul is not answering, the counts are what it last said.
	if cs := s.snap.Status(); (cs.Status == fleet.Unresponsive || cs.Status == fleet.Degraded) && !cs.LastSuccess.IsZero() {
		add(st.warn, "last known:", "last known:")
	}
	n := strconv.Itoa(c.Nodes)
	if c.Nodes == 0 && slices.Contains(s.snap.Loading(), "nodes") {
		// Not "nodes 0": nothing is known yet.
		add(st.dim, "nodes loading…", "nodes loading…")
	} else {
		add("", "nodes "+n, "nodes "+n)
	}
	switch {
	case c.Nodes == 0 && slices.Contains(s.snap.Loading(), "nodes"):
	case s.healthLoading():
		// Health not read yet counts as passing in the tally: say nothing
		// rather than something false.
		add(st.dim, "health loading…", "health loading…")
	default:
		add(st.ok, "passing "+strconv.Itoa(c.Passing), "pass "+strconv.Itoa(c.Passing))
		add(nonZero(c.Warning, st.warn), "warning "+strconv.Itoa(c.Warning), "warn "+strconv.Itoa(c.Warning))
		add(nonZero(c.Critical, st.bad), "critical "+strconv.Itoa(c.Critical), "crit "+strconv.Itoa(c.Critical))
		add(nonZero(c.Maintenance, st.healthStyle(fleet.HealthMaintenance)), "maint "+strconv.Itoa(c.Maintenance), "maint "+strconv.Itoa(c.Maintenance))
	}
	if t := s.alerts.unseenText(); t != "" {
		// Unseen alerts of every datacenter, whatever the :dc scope: the
		// bell rang for them, and an engineer looking at dc1 must still
		// see that dc2 has news (:alerts lists every datacenter's). It
		// comes right after the counts, so a narrow terminal keeps it.
		add(st.bad, "alerts "+t, "alerts "+t)
	}
	if running, queued := s.liveRuns(); running+queued > 0 {
		add(st.title, "runs "+strconv.Itoa(running)+" running "+strconv.Itoa(queued)+" queued",
			"runs "+strconv.Itoa(running)+"+"+strconv.Itoa(queued)+"q")
	}
	if n := s.tracking(); n > 0 {
		// Nodes of applied role changes not yet converged or failed,
		// whatever view is on top.
		add(st.warn, "roles applying "+strconv.Itoa(n), "applying "+strconv.Itoa(n))
	}
	if len(s.marks) > 0 {
		add(st.title, "marked "+strconv.Itoa(len(s.marks)), "marked "+strconv.Itoa(len(s.marks)))
	}
	if s.dc != "" {
		add(st.title, "dc "+s.dc, "dc "+s.dc)
	} else if len(s.snap.Datacenters) > 1 {
		add("", "dcs "+strconv.Itoa(len(s.snap.Datacenters)), "dcs "+strconv.Itoa(len(s.snap.Datacenters)))
	}
	width := func(short bool, gap int) int {
		w, n := 0, 0
		for _, it := range items {
			t := it.full
			if short {
				t = it.short
			}
			if t == "" {
				continue
			}
			if n > 0 {
				w += gap
			}
			w += cellWidth(t)
			n++
		}
		return w
	}
	short, gap := false, 2
	if width(false, 2) > s.width {
		short = true
		if width(true, 2) > s.width {
			gap = 1
		}
		for len(items) > 1 && width(true, gap) > s.width {
			items = items[:len(items)-1]
		}
	}
	var b strings.Builder
	w := 0
	for _, it := range items {
		t := it.full
		if short {
			t = it.short
		}
		if t == "" {
			continue
		}
		if w > 0 {
			b.WriteString(strings.Repeat(" ", gap))
			w += gap
		}
		b.WriteString(st.render(it.style, t))
		w += cellWidth(t)
	}
	if s.note != "" && !short && w+2+cellWidth(s.note) <= s.width {
		b.WriteString("  " + st.render(st.dim, s.note))
	}
	return b.String()
}

// nonZero returns style when n > 0, so zero counts stay plain.
func nonZero(n int, style string) string {
	if n > 0 {
		return style
	}
	return ""
}

// healthLoading reports whether some datacenter's health has not been
// read yet.
func (s *shared) healthLoading() bool {
	for _, c := range s.snap.Conn {
		if c.Loading("health") {
			return true
		}
	}
	return false
}

// headerConn draws the second header line: the connection state and the
// age of the data, always visible because a console that silently shows
// old data during an incident is worse than none. What a narrow terminal
// must not lose comes first: the state, then how old the data is and when
// the next try is, then what is still loading, then the error text.
func (s *shared) headerConn(now time.Time) string {
	st := &s.st
	cs := s.snap.Status()
	var style, text string
	switch cs.Status {
	case fleet.Connecting:
		style, text = st.warn, "● connecting to Consul…"
	case fleet.Connected:
		style, text = st.ok, "● connected"
		text += " · data age " + s.dataAge(now)
	case fleet.Stale:
		style = st.warn
		text = "▲ STALE" + dcLabel(cs.Datacenter, s.snap) + ": last contact with leader " + compactDuration(cs.LastContact)
		if cs.KnownLeader {
			text += ", leader known"
		} else {
			text += ", no known leader"
		}
		text += " · data age " + s.dataAge(now)
	case fleet.Unresponsive:
		style = st.bad
		text = "✖ UNRESPONSIVE" + dcLabel(cs.Datacenter, s.snap)
		if cs.LastSuccess.IsZero() {
			text += " · Consul has not answered yet"
		} else {
			text += " · last answer " + ago(now, cs.LastSuccess) + " ago · showing last known data"
		}
	case fleet.Degraded:
		style = st.bad
		text = "✖ DEGRADED" + dcLabel(cs.Datacenter, s.snap)
		if !cs.NextRetry.IsZero() {
			if d := cs.NextRetry.Sub(now); d > 0 {
				text += " · retry in " + strconv.Itoa(int((d+time.Second-1)/time.Second)) + "s"
			} else {
				text += " · retrying"
			}
		}
		if cs.LastSuccess.IsZero() {
			text += " · never connected"
		} else {
			// The last snapshot stays on screen; say how old it is.
			text += " · last ok " + ago(now, cs.LastSuccess) + " ago"
		}
		if cs.LastError != "" {
			text += ": " + sanitize(cs.LastError)
		} else {
			text += ": requests failing"
		}
	default:
		style, text = st.warn, "● "+cs.Status.String()
	}
	if loading := s.snap.Loading(); len(loading) > 0 && (cs.Status == fleet.Connected || cs.Status == fleet.Stale) {
		text += " · loading " + strings.Join(loading, ", ") + "…"
	}
	acl := s.aclWarning()
	full := acl + text
	line := fitLine(full, s.width)
	if acl != "" && cellWidth(acl) < s.width {
		return st.render(st.warn, acl) + st.render(style, line[len(acl):])
	}
	return st.render(style, line)
}

// aclWarning says, first on the connection line, when ACLs hide part of
// the fleet, and how.
func (s *shared) aclWarning() string {
	var anon, health, filtered bool
	for _, c := range s.snap.Conn {
		anon = anon || c.AnonymousEmpty
		health = health || c.HealthIncomplete
		filtered = filtered || c.FilteredByACL
	}
	switch {
	case anon:
		return "⚠ ACL: no token, and Consul shows nothing without one: set CONSUL_HTTP_TOKEN or --token-file · "
	case health:
		return "⚠ ACL: health incomplete, the token cannot read every check · "
	case filtered:
		return "⚠ ACL filtered results: fleet incomplete · "
	}
	return ""
}

// dcLabel names the datacenter in a status line when there are several.
func dcLabel(dc string, s *fleet.Snapshot) string {
	if dc == "" || len(s.Datacenters) < 2 {
		return ""
	}
	return " " + sanitize(dc)
}

// dataAge is how old the shown data may be: the time since Consul last
// answered (a probe asks every couple of seconds, so on a quiet fleet this
// stays small while the answers keep coming) plus how far the answering
// server was behind the leader.
func (s *shared) dataAge(now time.Time) string {
	cs := s.snap.Status()
	if cs.LastSuccess.IsZero() {
		return "n/a"
	}
	return compactDuration(now.Sub(cs.LastSuccess) + cs.LastContact)
}
