package tui

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	tea "charm.land/bubbletea/v2"

	"github.com/fleetdeck/fleetdeck/fleet"
)

// Alerts in the terminal. When the journal says a node turned critical (a
// HealthChanged or NodeJoined event into critical) and the node, as the
// snapshot now has it, is critical, was not critical in the previous
// snapshot the console saw, and matches the [alerts] filter, the console
// records an alert: it rings the bell and asks the terminal for a desktop
// notification (OSC 9, and OSC 777 for the terminals that read that one),
// counts it as unseen in the header, and lists it in the :alerts view.
//
// A fleet-wide outage must not flood the terminal: at most one
// notification per alertEvery. Alerts that come meanwhile are counted and
// named (the first few) in the next one, or in a summary once the time is
// up. The header counter and the view get every alert.
//
// The notification's text comes from Consul (node and check names, check
// output): it is sanitised and stripped of every control character, so
// nothing in it can end the sequence and start another.

// AlertOptions configures alerts (Options.Alerts).
type AlertOptions struct {
	// Enabled turns alerts on.
	Enabled bool
	// Filter chooses which nodes alert, in the filter language (see
	// filter.go; "" = every node). Check it with CheckAlertFilter first:
	// New does not fail.
	Filter string
}

// DefaultAlertFilter is the [alerts] filter when none is set.
const DefaultAlertFilter = "health:critical"

// alertEvery is the shortest time between two notifications.
const alertEvery = 5 * time.Second

// maxAlerts is how many alerts the console keeps (the oldest go first).
const maxAlerts = 500

// notifyMax is the longest notification text, in bytes.
const notifyMax = 240

// CheckAlertFilter fails on an [alerts] filter that would not do what it
// says: an unbalanced quote, an unknown field ("helth:critical" would
// silently be free text that matches nothing), an unknown health, a meta
// term without a key, or health terms that no node turning critical can
// match.
func CheckAlertFilter(filter string) error {
	if strings.Count(filter, `"`)%2 != 0 {
		return errors.New(`unbalanced " (quote values with spaces: role:"my svc")`)
	}
	for _, tok := range tokenize(filter) {
		term := strings.TrimPrefix(tok, "!")
		field, _, ok := strings.Cut(term, ":")
		if !ok || field == "" {
			continue
		}
		if _, known := filterFieldByName(strings.ToLower(field)); !known {
			if _, err := netip.ParseAddr(term); err == nil {
				continue // an IPv6 address searched as text
			}
			return fmt.Errorf("unknown field %q in %q (known: role, health, group, dc, zone, name, meta, tag; other text is searched as is)", field+":", tok)
		}
	}
	f := parseFilter(filter)
	if f.problem != "" {
		return errors.New(f.problem)
	}
	for _, t := range f.terms {
		switch {
		case t.field == fieldMeta && t.key == "":
			return errors.New("a meta: term needs a key (meta:key or meta:key=value)")
		case t.field != fieldHealth:
		case t.neg && (t.failing || t.health == fleet.HealthCritical), !t.neg && !t.failing && t.health != fleet.HealthCritical:
			return fmt.Errorf("the health term of %q never matches a node that turns critical, and only those alert", filter)
		}
	}
	return nil
}

// alert is one node turning critical.
type alert struct {
	id uint64
	ev fleet.Event
	// row is the alert's row in the :alerts view, built once.
	row *row
}

// alerting is the console's alert state.
type alerting struct {
	on         bool
	filter     filterExpr
	filterText string
	// started is set once the first snapshot with data is seen: the
	// journal's events before it are not alerts (the console was not
	// watching).
	started bool
	lastSeq uint64
	// list holds the alerts kept, oldest first; lastID is the newest
	// alert's id, seen the newest seen (ids count from 1).
	list   []*alert
	lastID uint64
	seen   uint64
	// seenAt is when alerts were last seen (the :alerts view on top;
	// the console's start before that).
	seenAt time.Time
	// from is the newest alert seen when the :alerts view was opened (it
	// lists the alerts after it), since when that was.
	from  uint64
	since time.Time
	lim   alertLimiter
}

// newAlerting returns the alert state for opts.
func newAlerting(opts AlertOptions, now time.Time) alerting {
	return alerting{on: opts.Enabled, filter: parseFilter(opts.Filter), filterText: opts.Filter,
		seenAt: now, since: now, lim: alertLimiter{every: alertEvery}}
}

// unseen counts the alerts not seen yet.
func (a *alerting) unseen() int { return int(a.lastID - a.seen) }

// detectAlerts records the alerts snap brings over old and returns the
// command that notifies the terminal (nil when there is nothing to say).
func (s *shared) detectAlerts(old, snap *fleet.Snapshot) tea.Cmd {
	a := &s.alerts
	if !a.on || snap == nil || snap.Version == 0 {
		return nil
	}
	if !a.started {
		a.started = true
		for i := range snap.Events {
			a.lastSeq = max(a.lastSeq, snap.Events[i].Seq)
		}
		return nil
	}
	var batch []*alert
	done := map[string]bool{}
	for i := range snap.Events {
		e := &snap.Events[i]
		if e.Seq <= a.lastSeq {
			continue
		}
		a.lastSeq = e.Seq
		if e.To != fleet.HealthCritical || (e.Kind != fleet.HealthChanged && e.Kind != fleet.NodeJoined) {
			continue
		}
		key := e.Datacenter + "/" + e.Node
		if done[key] {
			continue
		}
		n := snap.Node(e.Datacenter, e.Node)
		if n == nil || n.Health != fleet.HealthCritical {
			continue // recovered since, or in maintenance (it explains the check)
		}
		if o := old.Node(e.Datacenter, e.Node); o != nil && o.Health == fleet.HealthCritical {
			continue // another check of a node already critical
		}
		if !a.filter.empty() && !a.filter.matchNode(s.rowOf(n)) {
			continue
		}
		done[key] = true
		a.lastID++
		al := &alert{id: a.lastID, ev: *e}
		al.ev.Last = nil
		batch = append(batch, al)
	}
	if len(batch) == 0 {
		return nil
	}
	a.list = append(a.list, batch...)
	if over := len(a.list) - maxAlerts; over > 0 {
		clear(a.list[:over])
		a.list = a.list[over:]
	}
	s.invalidate(alertsName)
	notes := make([]string, len(batch))
	for i, al := range batch {
		notes[i] = alertNote(&al.ev)
	}
	if body, ok := a.lim.offer(s.now(), notes); ok {
		return notifyCmd(body)
	}
	return nil
}

// flushAlerts sends the summary of the alerts held back, once the time
// between notifications is up (the console's tick calls it).
func (s *shared) flushAlerts() tea.Cmd {
	if !s.alerts.on {
		return nil
	}
	if body, ok := s.alerts.lim.flush(s.now()); ok {
		return notifyCmd(body)
	}
	return nil
}

// rowOf returns node n's row, from the row cache when the node has one.
func (s *shared) rowOf(n *fleet.Node) *row {
	if r, ok := s.nodeCache[n]; ok {
		return r
	}
	r := nodeRow(n)
	s.nodeCache[n] = r
	return r
}

// alertNote describes an alert in a notification: node, datacenter and
// the check, raw (notifyText cleans it).
func alertNote(e *fleet.Event) string {
	t := e.Node + " (" + e.Datacenter + ") critical"
	if e.Kind == fleet.NodeJoined {
		return t + ": joined critical"
	}
	if e.CheckName != "" || e.CheckID != "" {
		t += ": " + cmp.Or(e.CheckName, e.CheckID)
	}
	if out := strings.TrimSpace(e.Output); out != "" {
		t += ": " + out
	}
	return t
}

// alertLimiter lets one notification through per every; what comes in
// between is held back and counted.
type alertLimiter struct {
	every time.Duration
	last  time.Time
	// held counts the alerts held back since the last notification;
	// names keeps the first few.
	held  int
	names []string
}

// heldNames is how many held-back alerts a notification names.
const heldNames = 3

// offer returns the notification for a batch of alerts (their notes), or
// false when it must wait: then they are held back.
func (l *alertLimiter) offer(now time.Time, notes []string) (string, bool) {
	if len(notes) == 0 {
		return "", false
	}
	if !l.last.IsZero() && now.Sub(l.last) < l.every {
		l.hold(notes)
		return "", false
	}
	body := notes[0]
	l.hold(notes[1:])
	if l.held > 0 {
		body += " (+" + strconv.Itoa(l.held) + " more: " + l.namesText() + ")"
	}
	l.last, l.held, l.names = now, 0, nil
	return body, true
}

// flush returns a summary of the alerts held back once every has passed
// since the last notification.
func (l *alertLimiter) flush(now time.Time) (string, bool) {
	if l.held == 0 || now.Sub(l.last) < l.every {
		return "", false
	}
	body := pluralWord(l.held, "more node", "more nodes") + " turned critical: " + l.namesText()
	l.last, l.held, l.names = now, 0, nil
	return body, true
}

// hold counts notes as held back, keeping the first few node names.
func (l *alertLimiter) hold(notes []string) {
	for _, n := range notes {
		l.held++
		if len(l.names) < heldNames {
			name, _, _ := strings.Cut(n, " (")
			l.names = append(l.names, name)
		}
	}
}

// namesText lists the held-back names, with … when there are more.
func (l *alertLimiter) namesText() string {
	t := strings.Join(l.names, ", ")
	if l.held > len(l.names) {
		t += ", …"
	}
	return t
}

// notifyTitle is the notification's title.
const notifyTitle = "fleetdeck"

// notifyCmd writes the bell and the notification to the terminal.
func notifyCmd(body string) tea.Cmd {
	return tea.Raw(notifySequence(notifyTitle, body))
}

// notifySequence is what an alert writes: BEL, OSC 9 (iTerm2, Windows
// Terminal, kitty, WezTerm…) and OSC 777 notify (rxvt, foot, Ghostty,
// WezTerm…), each terminated by BEL, with title and body made inert.
func notifySequence(title, body string) string {
	t, b := notifyText(title), notifyText(body)
	return "\a" + "\x1b]9;" + t + ": " + b + "\a" + "\x1b]777;notify;" + t + ";" + b + "\a"
}

// notifyText makes s safe inside an OSC string: sanitised (no escape
// sequence, no C0 or C1 control, no bidi control, one line), ";" (OSC
// 777's field separator) turned into ",", and cut to notifyMax bytes on a
// character boundary.
func notifyText(s string) string {
	s = strings.ReplaceAll(sanitize(s), ";", ",")
	if len(s) <= notifyMax {
		return s
	}
	cut := notifyMax - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}
