package tui

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"
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
	f, err := checkFilter(filter)
	if err != nil {
		return err
	}
	for _, t := range f.terms {
		switch {
		case t.field != fieldHealth:
		case t.neg && (t.failing || t.health == fleet.HealthCritical), !t.neg && !t.failing && t.health != fleet.HealthCritical:
			return fmt.Errorf("the health term of %q never matches a node that turns critical, and only those alert", filter)
		}
	}
	return nil
}

// checkFilter parses a filter written in a config file, where a typo must
// be an error rather than free text that silently matches nothing.
func checkFilter(filter string) (filterExpr, error) {
	if strings.Count(filter, `"`)%2 != 0 {
		return filterExpr{}, errors.New(`unbalanced " (quote values with spaces: role:"my svc")`)
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
			return filterExpr{}, fmt.Errorf("unknown field %q in %q (known: role, health, group, dc, zone, name, meta, tag; other text is searched as is)", field+":", tok)
		}
	}
	f := parseFilter(filter)
	if f.problem != "" {
		return filterExpr{}, errors.New(f.problem)
	}
	for _, t := range f.terms {
		if t.field == fieldMeta && t.key == "" {
			return filterExpr{}, errors.New("a meta: term needs a key (meta:key or meta:key=value)")
		}
	}
	return f, nil
}

// NodeSelector is a filter compiled for code outside the console: the
// deployment server's stage selects are the console's filter language.
type NodeSelector struct {
	f filterExpr
}

// CompileSelector compiles a stage's select. Besides CheckAlertFilter's
// typos it refuses state: and drift terms: a node's desired-state state
// is the console's view, not part of the node the server matches.
func CompileSelector(text string) (*NodeSelector, error) {
	f, err := checkFilter(text)
	if err != nil {
		return nil, err
	}
	for _, t := range f.terms {
		if t.field == fieldState {
			return nil, errors.New("state: and drift are not known to a stage's select (use role:, group:, tag:, meta:, …)")
		}
	}
	return &NodeSelector{f: f}, nil
}

// Match reports whether n matches the selector (an empty one matches
// every node).
func (s *NodeSelector) Match(n *fleet.Node) bool {
	return s.f.empty() || s.f.matchNode(nodeRow(n))
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

// unseenText is the header's count of unseen alerts ("" for none): past
// the alerts kept, "500+", since :alerts cannot list more.
func (a *alerting) unseenText() string {
	switch n := a.unseen(); {
	case n == 0:
		return ""
	case n > len(a.list):
		return strconv.Itoa(len(a.list)) + "+"
	default:
		return strconv.Itoa(n)
	}
}

// detectAlerts records the alerts snap brings over old (the snapshot the
// console showed before) and returns the command that notifies the
// terminal (nil when there is nothing to say).
//
// A node alerts when it is critical in snap and its current critical
// spell began after the last snapshot the console saw: the journal's new
// events are replayed backwards from the node as snap has it, burst by
// burst (the watcher stamps the events of one published snapshot with one
// time), to find where the node last went from not critical to critical.
// Replaying the journal rather than comparing old with snap is what makes
// a node that recovered and went critical again between two snapshots the
// console saw (it skips snapshots when it is slow) alert again; a node
// critical in old and still critical in snap without a recovery in
// between does not alert twice; a node that went critical and recovered
// before snap does not alert (it is fine by the time anyone looks).
func (s *shared) detectAlerts(old, snap *fleet.Snapshot) tea.Cmd {
	a := &s.alerts
	if !a.on || snap == nil || snap.Version == 0 {
		return nil
	}
	if !a.started {
		// The first snapshot the console shows (the feed's current one
		// when it started, or the first one it receives) is history: the
		// console was not watching when its events happened.
		a.started = true
		if old == nil || old.Version == 0 {
			a.lastSeq = lastSeq(snap)
			return nil
		}
		a.lastSeq = lastSeq(old)
	}
	evs := snap.Events
	evs = evs[sort.Search(len(evs), func(i int) bool { return evs[i].Seq > a.lastSeq }):]
	if len(evs) == 0 {
		return nil
	}
	// The journal is bounded: when more events came since old than it
	// keeps (a fleet-wide outage does that), the first ones are gone.
	gap := evs[0].Seq > a.lastSeq+1
	a.lastSeq = evs[len(evs)-1].Seq

	// Each node's new events, oldest first, for the nodes with an event
	// into critical (no other node can have turned critical).
	byNode := map[string][]*fleet.Event{}
	var order []string
	for i := range evs {
		e := &evs[i]
		if e.Node == "" {
			continue
		}
		key := e.Datacenter + "/" + e.Node
		if _, ok := byNode[key]; !ok {
			order = append(order, key)
			byNode[key] = nil
		}
		byNode[key] = append(byNode[key], e)
	}
	var batch []*alert
	alerted := map[string]bool{}
	add := func(n *fleet.Node, e *fleet.Event) {
		if !a.filter.empty() && !a.filter.matchNode(s.rowOf(n)) {
			return
		}
		alerted[n.Datacenter+"/"+n.Name] = true
		al := &alert{ev: *e}
		al.ev.Last = nil
		batch = append(batch, al)
	}
	for _, key := range order {
		nevs := byNode[key]
		if !slices.ContainsFunc(nevs, intoCritical) {
			continue
		}
		n := snap.Node(nevs[0].Datacenter, nevs[0].Node)
		if e := turnedCritical(n, nevs); e != nil {
			add(n, e)
		}
	}
	if gap {
		// The replay cannot see a node whose spell began in the events
		// that were dropped: every node critical now that was not in old
		// (and not newly seen: a datacenter's first load is not news)
		// alerts, with its newest event into critical when one is left.
		for _, n := range snap.Nodes {
			if n.Health != fleet.HealthCritical || alerted[n.Datacenter+"/"+n.Name] {
				continue
			}
			if o := old.Node(n.Datacenter, n.Name); o == nil || o.Health == fleet.HealthCritical {
				continue
			}
			add(n, droppedAlertEvent(n, byNode[n.Datacenter+"/"+n.Name], snap.Time))
		}
		// Those whose spell began in the dropped events came first.
		slices.SortStableFunc(batch, func(x, y *alert) int { return cmp.Compare(x.ev.Seq, y.ev.Seq) })
	}
	if len(batch) == 0 {
		return nil
	}
	for _, al := range batch {
		a.lastID++
		al.id = a.lastID
	}
	a.list = append(a.list, batch...)
	if over := len(a.list) - maxAlerts; over > 0 {
		clear(a.list[:over])
		a.list = a.list[over:]
	}
	s.invalidate(alertsName)
	notes := make([]limNote, len(batch))
	for i, al := range batch {
		notes[i] = limNote{key: al.ev.Datacenter + "/" + al.ev.Node, name: al.ev.Node, text: alertNote(&al.ev)}
	}
	if body, ok := a.lim.offer(s.now(), notes); ok {
		return notifyCmd(body)
	}
	return nil
}

// lastSeq is the newest event's number in snap's journal (0: none).
func lastSeq(snap *fleet.Snapshot) uint64 {
	if len(snap.Events) == 0 {
		return 0
	}
	return snap.Events[len(snap.Events)-1].Seq
}

// intoCritical reports whether e takes a check (or a joining node) into
// critical: only such an event can make a node turn critical. A node
// whose maintenance ends while a check is still critical does not alert:
// its critical check was there all along, explained by the maintenance.
func intoCritical(e *fleet.Event) bool {
	return e.To == fleet.HealthCritical && (e.Kind == fleet.HealthChanged || e.Kind == fleet.NodeJoined)
}

// turnedCritical returns the event with which node n (as the snapshot has
// it; nil if it is gone) turned critical for the last time in evs (its
// events, oldest first), or nil: it is not critical now, or it was
// critical before evs and stayed so. It undoes the events burst by burst
// from n's checks: each event says what its check's status was before.
func turnedCritical(n *fleet.Node, evs []*fleet.Event) *fleet.Event {
	if n == nil || n.Health != fleet.HealthCritical {
		return nil
	}
	status := make(map[string]fleet.Health, len(n.Checks))
	for _, c := range n.Checks {
		status[c.ID] = c.Status
	}
	present, after := true, n.Health
	for end := len(evs); end > 0; {
		start := end - 1
		for start > 0 && evs[start-1].Time.Equal(evs[end-1].Time) {
			start--
		}
		for i := end - 1; i >= start; i-- {
			switch e := evs[i]; e.Kind {
			case fleet.NodeJoined:
				present = false
				clear(status)
			case fleet.NodeLeft:
				present = true
				clear(status)
				if e.Last != nil {
					for _, c := range e.Last.Checks {
						status[c.ID] = c.Status
					}
				}
			case fleet.HealthChanged:
				status[e.CheckID] = e.From
			}
		}
		before := fleet.HealthPassing
		if present {
			// A node's health is its worst check (maintenance worst).
			for _, h := range status {
				before = max(before, h)
			}
		}
		if after == fleet.HealthCritical && before != fleet.HealthCritical {
			if i := slices.IndexFunc(evs[start:end], intoCritical); i >= 0 {
				return evs[start+i]
			}
			return nil
		}
		after, end = before, start
	}
	return nil
}

// droppedAlertEvent is the event an alert for node n stands on when the
// journal dropped the event that turned it critical: its newest event
// into critical among evs, or one made from its first critical check.
func droppedAlertEvent(n *fleet.Node, evs []*fleet.Event, at time.Time) *fleet.Event {
	for i := len(evs) - 1; i >= 0; i-- {
		if intoCritical(evs[i]) {
			return evs[i]
		}
	}
	e := &fleet.Event{Time: at, Kind: fleet.HealthChanged, Datacenter: n.Datacenter, Node: n.Name, Group: n.Group,
		To: fleet.HealthCritical}
	for _, c := range n.Checks {
		if c.Status == fleet.HealthCritical {
			e.CheckID, e.CheckName, e.Output = c.ID, c.Name, c.Output
			break
		}
	}
	return e
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
	// held counts the alerts held back since the last notification; nodes
	// counts them per node (dc/name), named keeps the first few nodes in
	// order, so a flapping node is named once, with its count.
	held  int
	nodes map[string]int
	named []limNote
}

// limNote is one alert as the limiter sees it: its node (key dc/name and
// name) and its notification text.
type limNote struct{ key, name, text string }

// heldNames is how many held-back nodes a notification names.
const heldNames = 3

// offer returns the notification for a batch of alerts, or false when it
// must wait: then they are held back.
func (l *alertLimiter) offer(now time.Time, notes []limNote) (string, bool) {
	if len(notes) == 0 {
		return "", false
	}
	if !l.last.IsZero() && now.Sub(l.last) < l.every {
		l.hold(notes)
		return "", false
	}
	body := notes[0].text
	l.hold(notes[1:])
	if l.held > 0 {
		body += " (+" + strconv.Itoa(l.held) + " more: " + l.namesText() + ")"
	}
	l.reset(now)
	return body, true
}

// flush returns a summary of the alerts held back once every has passed
// since the last notification.
func (l *alertLimiter) flush(now time.Time) (string, bool) {
	if l.held == 0 || now.Sub(l.last) < l.every {
		return "", false
	}
	body := pluralWord(len(l.nodes), "more node", "more nodes") + " turned critical: " + l.namesText()
	l.reset(now)
	return body, true
}

// reset starts a new interval at now with nothing held.
func (l *alertLimiter) reset(now time.Time) {
	l.last, l.held, l.nodes, l.named = now, 0, nil, nil
}

// hold counts notes as held back, keeping the first few nodes.
func (l *alertLimiter) hold(notes []limNote) {
	for _, n := range notes {
		if l.nodes == nil {
			l.nodes = map[string]int{}
		}
		l.held++
		l.nodes[n.key]++
		if l.nodes[n.key] == 1 && len(l.named) < heldNames {
			l.named = append(l.named, n)
		}
	}
}

// namesText lists the held-back nodes, "×n" after one that alerted n
// times, with … when there are more nodes.
func (l *alertLimiter) namesText() string {
	var b strings.Builder
	for i, n := range l.named {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(n.name)
		if c := l.nodes[n.key]; c > 1 {
			b.WriteString(" ×" + strconv.Itoa(c))
		}
	}
	if len(l.nodes) > len(l.named) {
		b.WriteString(", …")
	}
	return b.String()
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
