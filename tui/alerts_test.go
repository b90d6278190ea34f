package tui

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	tea "charm.land/bubbletea/v2"

	"github.com/fleetdeck/fleetdeck/fleet"
)

// note is a limiter note for node name in dc1.
func note(name string) limNote {
	return limNote{key: "dc1/" + name, name: name, text: name + " (dc1) critical: http"}
}

func notes(names ...string) []limNote {
	out := make([]limNote, len(names))
	for i, n := range names {
		out[i] = note(n)
	}
	return out
}

func TestAlertLimiter(t *testing.T) {
	l := alertLimiter{every: 5 * time.Second}
	if _, ok := l.flush(t0); ok {
		t.Fatal("nothing held: flush must say nothing")
	}
	if _, ok := l.offer(t0, nil); ok {
		t.Fatal("no alert: nothing to say")
	}
	// The first notification passes, naming the others of its batch.
	body, ok := l.offer(t0, notes("a", "b"))
	if !ok || body != "a (dc1) critical: http (+1 more: b)" {
		t.Fatalf("first offer = %q, %v", body, ok)
	}
	// Within the interval: held and counted, nothing written.
	for i, n := range []string{"c", "d", "e", "f"} {
		if body, ok := l.offer(t0.Add(time.Duration(i+1)*time.Second), notes(n)); ok {
			t.Fatalf("offer within 5s passed: %q", body)
		}
	}
	if _, ok := l.flush(t0.Add(4 * time.Second)); ok {
		t.Fatal("flush before the interval is up")
	}
	// The next one after the interval names the held ones (the first
	// three, then …).
	body, ok = l.offer(t0.Add(5*time.Second), notes("g"))
	if !ok || body != "g (dc1) critical: http (+4 more: c, d, e, …)" {
		t.Fatalf("offer after the interval = %q, %v", body, ok)
	}
	// Held ones are summarised by flush once the interval is up, and
	// only once.
	l.offer(t0.Add(6*time.Second), notes("h", "i"))
	if _, ok := l.flush(t0.Add(9 * time.Second)); ok {
		t.Fatal("flush before the interval is up")
	}
	body, ok = l.flush(t0.Add(10 * time.Second))
	if !ok || body != "2 more nodes turned critical: h, i" {
		t.Fatalf("flush = %q, %v", body, ok)
	}
	if body, ok := l.flush(t0.Add(20 * time.Second)); ok {
		t.Fatalf("second flush with nothing held: %q", body)
	}
	// The flush counts as a notification: the next alert waits.
	if _, ok := l.offer(t0.Add(11*time.Second), notes("j")); ok {
		t.Fatal("an alert 1s after a summary passed")
	}
}

// TestAlertLimiterFlapping: one node flapping under the limit is named
// once, with how many times it turned critical, not once per alert.
func TestAlertLimiterFlapping(t *testing.T) {
	l := alertLimiter{every: 5 * time.Second}
	if _, ok := l.offer(t0, notes("web-1")); !ok {
		t.Fatal("first alert held")
	}
	for i := 1; i <= 4; i++ {
		l.offer(t0.Add(time.Duration(i)*time.Second), notes("web-1"))
	}
	l.offer(t0.Add(4500*time.Millisecond), notes("db-1"))
	body, ok := l.flush(t0.Add(5 * time.Second))
	if !ok || body != "2 more nodes turned critical: web-1 ×4, db-1" {
		t.Fatalf("flush = %q, %v", body, ok)
	}
}

func TestCheckAlertFilter(t *testing.T) {
	for _, tc := range []struct {
		filter string
		ok     bool
	}{
		{DefaultAlertFilter, true},
		{"", true},
		{"role:web health:critical", true},
		{"group:x", true},
		{"dc:dc2 zone:zone-a", true},
		{"health:failing", true},
		{"!health:passing", true},
		{"meta:env=prod", true},
		{`role:"my svc"`, true},
		{"web", true},
		{"fe80::1", true}, // an IPv6 address is text, not field fe80
		{"helth:critical", false},
		{"Role:web rol:web", false},
		{"health:passing", false},
		{"health:warning", false},
		{"health:maintenance", false},
		{"!health:critical", false},
		{"!health:failing", false},
		{"health:nonsense", false},
		{"meta:", false},
		{`role:"web`, false},
		{`"unbalanced`, false},
	} {
		err := CheckAlertFilter(tc.filter)
		if (err == nil) != tc.ok {
			t.Errorf("CheckAlertFilter(%q) = %v, want ok=%v", tc.filter, err, tc.ok)
		}
	}
}

// checkNotify asserts that seq is exactly BEL, one BEL-terminated OSC 9
// and one OSC 777 notify with 3 fields, and that no other control byte
// (C0, DEL, C1 in UTF-8 or raw) is in it. It returns the texts.
func checkNotify(t *testing.T, seq string) (osc9, title, body string) {
	t.Helper()
	rest, ok := strings.CutPrefix(seq, "\a\x1b]9;")
	if !ok {
		t.Fatalf("sequence does not start with BEL OSC 9: %q", seq)
	}
	osc9, rest, ok = strings.Cut(rest, "\a")
	if !ok {
		t.Fatalf("OSC 9 not terminated by BEL: %q", seq)
	}
	rest, ok = strings.CutPrefix(rest, "\x1b]777;")
	if !ok {
		t.Fatalf("no OSC 777 right after OSC 9: %q", seq)
	}
	o777, ok := strings.CutSuffix(rest, "\a")
	if !ok {
		t.Fatalf("OSC 777 not terminated by BEL at the end: %q", seq)
	}
	fields := strings.Split(o777, ";")
	if len(fields) != 3 || fields[0] != "notify" {
		t.Fatalf("OSC 777 has fields %q, want notify;title;body", fields)
	}
	for _, part := range []string{osc9, o777} {
		if !utf8.ValidString(part) {
			t.Fatalf("invalid UTF-8 in %q", part)
		}
		for _, r := range part {
			if r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f) ||
				(r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) || r == 0x200e || r == 0x200f || r == 0x061c {
				t.Fatalf("control %U inside the notification: %q", r, part)
			}
		}
	}
	// Exactly the control bytes of the frame itself.
	if n := strings.Count(seq, "\a"); n != 3 {
		t.Fatalf("%d BEL in %q, want 3", n, seq)
	}
	if n := strings.Count(seq, "\x1b"); n != 2 {
		t.Fatalf("%d ESC in %q, want 2", n, seq)
	}
	return osc9, fields[1], fields[2]
}

func TestNotifySequenceHostile(t *testing.T) {
	hostile := "web-1\a\x1b]0;pwned\a\x1b]52;c;ZXZpbA==\x1b\\ ok;rm -rf /\x1b[2J\u009c\u009dX\u009c\xc2\x9c" +
		"\x9c\x9d\u202eevil\u202c\u2066\r\nline2\u2028\x7f\x08end"
	seq := notifySequence(notifyTitle, hostile)
	osc9, title, body := checkNotify(t, seq)
	if title != "fleetdeck" {
		t.Fatalf("title %q", title)
	}
	if !strings.HasPrefix(osc9, "fleetdeck: web-1") || !strings.HasSuffix(osc9, "end") {
		t.Fatalf("OSC 9 text %q", osc9)
	}
	if !strings.HasPrefix(body, "web-1") || !strings.Contains(body, "ok,rm -rf /") || !strings.Contains(body, "line2") {
		t.Fatalf("OSC 777 body %q", body)
	}
	for _, bad := range []string{"pwned", "ZXZpbA", "[2J", "52;"} {
		if strings.Contains(seq, bad) {
			t.Errorf("%q from the text is in the sequence: %q", bad, seq)
		}
	}
	// The semicolon became a comma in both (OSC 777 reads ; as a field
	// separator; OSC 9 gets the same text).
	if strings.Count(osc9, ";") != 0 {
		t.Fatalf("; in OSC 9 text: %q", osc9)
	}
}

func TestNotifyTextLong(t *testing.T) {
	// 3-byte runes, so a byte cut at notifyMax falls inside one.
	long := strings.Repeat("界", 200) + "\x1b]0;x\a"
	got := notifyText(long)
	if len(got) > notifyMax || !utf8.ValidString(got) || !strings.HasSuffix(got, ellipsis) {
		t.Fatalf("cut text: %d bytes, valid %v, %q", len(got), utf8.ValidString(got), got[max(0, len(got)-12):])
	}
	if strings.TrimSuffix(got, ellipsis) != strings.Repeat("界", (notifyMax-len(ellipsis))/3) {
		t.Fatalf("cut at the wrong place: %d bytes", len(got))
	}
	for _, n := range []int{notifyMax - 1, notifyMax, notifyMax + 1} {
		s := strings.Repeat("a", n)
		got := notifyText(s)
		if n <= notifyMax && got != s || n > notifyMax && len(got) > notifyMax {
			t.Fatalf("%d bytes → %d bytes", n, len(got))
		}
	}
	checkNotify(t, notifySequence(notifyTitle, strings.Repeat("é;\u202e", 300)))
	// Raw bytes that are not UTF-8 (0x9c alone is an 8-bit ST to some
	// terminals) come out as U+FFFD, never as themselves.
	if got := notifyText("a\x9cb\x9dc"); bytes.IndexByte([]byte(got), 0x9c) >= 0 || bytes.IndexByte([]byte(got), 0x9d) >= 0 || got != "a\ufffdb\ufffdc" {
		t.Fatalf("raw C1 bytes: %q", got)
	}
}

// alertFleet is a fleet the tests change check by check, journaling the
// events as the watcher does (one time per published snapshot), and
// publishes to a console whose alerts are on.
type alertFleet struct {
	t       *testing.T
	h       *harness
	nodes   []*fleet.Node
	events  []fleet.Event
	seq     uint64
	version uint64
}

// newAlertFleet returns a console at w x h over 12 synthetic nodes, with
// alerts configured by opts. The console has no feed: the test delivers
// each snapshot itself (as harness.publish does), so that the commands a
// snapshot returns never block and their messages can be read directly.
func newAlertFleet(t *testing.T, opts AlertOptions, w, hgt int, opt func(*Options)) *alertFleet {
	t.Helper()
	f := &alertFleet{t: t, nodes: synthNodes(12, t0.Add(-time.Hour))}
	f.h = newHarnessWith(t, nil, w, hgt, true, func(o *Options) {
		o.Feed, o.Alerts = nil, opts
		if opt != nil {
			opt(o)
		}
	})
	return f
}

// node returns the node named name, or fails.
func (f *alertFleet) node(name string) (int, *fleet.Node) {
	f.t.Helper()
	for i, n := range f.nodes {
		if n.Name == name {
			return i, n
		}
	}
	f.t.Fatalf("no node %s", name)
	return 0, nil
}

// set changes node name's check id to status st with output out, as the
// next published snapshot will have it, and journals the transition.
func (f *alertFleet) set(name, id string, st fleet.Health, out string) {
	f.t.Helper()
	i, old := f.node(name)
	n := *old
	n.Checks = slices.Clone(old.Checks)
	from := fleet.HealthPassing
	j := slices.IndexFunc(n.Checks, func(c fleet.Check) bool { return c.ID == id })
	if j < 0 {
		n.Checks = append(n.Checks, fleet.Check{ID: id, Name: id})
		j = len(n.Checks) - 1
	} else {
		from = n.Checks[j].Status
	}
	n.Checks[j].Status, n.Checks[j].Output = st, out
	n.Health = fleet.HealthPassing
	for _, c := range n.Checks {
		n.Health = max(n.Health, c.Status)
	}
	n.ChangedAt = f.h.clk.t
	f.nodes[i] = &n
	f.journal(fleet.Event{Kind: fleet.HealthChanged, Datacenter: n.Datacenter, Node: n.Name, Group: n.Group,
		CheckID: id, CheckName: n.Checks[j].Name, From: from, To: st, Output: out})
}

// journal records e at the clock's time.
func (f *alertFleet) journal(e fleet.Event) {
	f.seq++
	e.Seq, e.Time = f.seq, f.h.clk.t
	f.events = append(f.events, e)
}

// burst ends a burst of changes without publishing it: the watcher
// published a snapshot the console did not see (it skips to the newest).
func (f *alertFleet) burst() { f.h.clk.add(time.Second) }

// publish delivers the fleet as a new snapshot (journal included) and
// returns what the console wrote to the terminal for it, then moves the
// clock a second on.
func (f *alertFleet) publish() []string {
	f.t.Helper()
	return f.publishJournal(f.events)
}

// publishJournal is publish with the journal evs (a bounded journal that
// dropped some).
func (f *alertFleet) publishJournal(evs []fleet.Event) []string {
	f.t.Helper()
	f.version++
	now := f.h.clk.t
	snap := fleet.NewSnapshot(f.version, now, slices.Clone(f.nodes), connected(now), slices.Clone(evs))
	raw := rawWrites(f.t, f.h.send(snapshotMsg{snap}))
	f.h.clk.add(time.Second)
	return raw
}

// rawWrites runs cmd (which must not block) and the commands of its
// batches, and returns the strings their tea.Raw messages write.
func rawWrites(t *testing.T, cmd tea.Cmd) []string {
	t.Helper()
	if cmd == nil {
		return nil
	}
	switch msg := cmd().(type) {
	case tea.RawMsg:
		s, ok := msg.Msg.(string)
		if !ok {
			t.Fatalf("raw message of type %T", msg.Msg)
		}
		return []string{s}
	case tea.BatchMsg:
		var out []string
		for _, c := range msg {
			out = append(out, rawWrites(t, c)...)
		}
		return out
	}
	return nil
}

// wantNotify fails unless raw is exactly one notification with body.
func wantNotify(t *testing.T, raw []string, body string) {
	t.Helper()
	if len(raw) != 1 || raw[0] != notifySequence(notifyTitle, body) {
		t.Fatalf("wrote %q, want one notification %q", raw, body)
	}
	checkNotify(t, raw[0])
}

// wantNothing fails if anything was written.
func wantNothing(t *testing.T, raw []string, why string) {
	t.Helper()
	if len(raw) != 0 {
		t.Fatalf("%s: wrote %q", why, raw)
	}
}

// header is the console's first line.
func (f *alertFleet) header() string {
	f.t.Helper()
	return strings.SplitN(f.h.screen(), "\n", 2)[0]
}

var alertsOn = AlertOptions{Enabled: true, Filter: DefaultAlertFilter}

func TestAlertsFirstSnapshotIsHistory(t *testing.T) {
	f := newAlertFleet(t, alertsOn, 120, 30, nil)
	// The journal of the first snapshot happened before the console
	// looked: no alert, however critical.
	f.set("node-00001", "service:api", fleet.HealthCritical, "connection refused")
	wantNothing(t, f.publish(), "first snapshot")
	if s := f.header(); strings.Contains(s, "alerts") {
		t.Fatalf("counter after the first snapshot: %q", s)
	}
	f.set("node-00004", "service:cache", fleet.HealthCritical, "timeout")
	wantNotify(t, f.publish(), "node-00004 (dc1) critical: service:cache: timeout")
	if s := f.header(); !strings.Contains(s, "alerts 1") {
		t.Fatalf("header %q", s)
	}
}

// TestAlertsFeedCurrentIsHistory: the feed's snapshot when the console
// starts is its first (history); the first one it receives from the feed
// is news.
func TestAlertsFeedCurrentIsHistory(t *testing.T) {
	nodes := synthNodes(12, t0.Add(-time.Hour))
	ev := func(seq uint64, name string) fleet.Event {
		return fleet.Event{Seq: seq, Time: t0.Add(time.Duration(seq) * time.Second), Kind: fleet.HealthChanged, Datacenter: "dc1", Node: name,
			CheckID: "service:x", CheckName: "x", From: fleet.HealthPassing, To: fleet.HealthCritical, Output: "down"}
	}
	crit := func(i int) {
		n := *nodes[i]
		n.Checks = append(slices.Clone(n.Checks), fleet.Check{ID: "service:x", Name: "x", Status: fleet.HealthCritical, Output: "down"})
		n.Health = fleet.HealthCritical
		nodes[i] = &n
	}
	crit(1)
	first := fleet.NewSnapshot(3, t0, slices.Clone(nodes), connected(t0), []fleet.Event{ev(1, "node-00001")})
	h := newHarnessWith(t, first, 120, 30, true, func(o *Options) { o.Alerts = alertsOn })
	crit(4)
	next := fleet.NewSnapshot(4, t0, slices.Clone(nodes), connected(t0), []fleet.Event{ev(1, "node-00001"), ev(2, "node-00004")})
	h.pub.Publish(next)
	// The console's commands include the feed's blocking wait: run them
	// in the background and wait for the notification.
	h.run(h.send(snapshotMsg{next}))
	msg := h.await("notification", func(m tea.Msg) bool { _, ok := m.(tea.RawMsg); return ok }).(tea.RawMsg)
	if msg.Msg != notifySequence(notifyTitle, "node-00004 (dc1) critical: x: down") {
		t.Fatalf("wrote %q", msg.Msg)
	}
	if len(h.m.alerts.list) != 1 || h.m.alerts.list[0].ev.Node != "node-00004" {
		t.Fatalf("alerts %v", h.m.alerts.list)
	}
}

func TestAlertsOncePerCriticalSpell(t *testing.T) {
	f := newAlertFleet(t, alertsOn, 120, 30, nil)
	wantNothing(t, f.publish(), "first snapshot")

	f.set("node-00001", "service:api", fleet.HealthCritical, "connection refused")
	wantNotify(t, f.publish(), "node-00001 (dc1) critical: http: connection refused")

	// A second check failing on a node already critical: not a new alert.
	f.set("node-00001", "serfHealth", fleet.HealthCritical, "agent unreachable")
	wantNothing(t, f.publish(), "second check on a critical node")
	// Nor one check recovering while the other still fails.
	f.set("node-00001", "service:api", fleet.HealthPassing, "")
	wantNothing(t, f.publish(), "one of two critical checks recovered")
	if n := len(f.h.m.alerts.list); n != 1 {
		t.Fatalf("%d alerts, want 1", n)
	}

	// Recovered, then critical again: a new spell, a new alert (6 s
	// later: past the rate limit).
	f.set("node-00001", "serfHealth", fleet.HealthPassing, "")
	wantNothing(t, f.publish(), "recovery")
	f.h.clk.add(5 * time.Second)
	f.set("node-00001", "service:api", fleet.HealthCritical, "503")
	wantNotify(t, f.publish(), "node-00001 (dc1) critical: http: 503")

	// The same between two snapshots the console saw: it recovered and
	// went critical again in snapshots it skipped. The old snapshot and
	// the new both say critical; the journal says it is a new spell.
	f.h.clk.add(5 * time.Second)
	f.set("node-00001", "service:api", fleet.HealthPassing, "")
	f.burst()
	f.set("node-00001", "service:api", fleet.HealthCritical, "503 again")
	wantNotify(t, f.publish(), "node-00001 (dc1) critical: http: 503 again")

	// Went critical and recovered before the snapshot: nothing to see.
	f.h.clk.add(5 * time.Second)
	f.set("node-00004", "service:cache", fleet.HealthCritical, "blip")
	f.burst()
	f.set("node-00004", "service:cache", fleet.HealthPassing, "")
	wantNothing(t, f.publish(), "recovered before the snapshot")

	// Warning is not critical; maintenance explains a critical check.
	f.set("node-00006", "service:search", fleet.HealthWarning, "slow")
	f.set("node-00005", "service:auth", fleet.HealthCritical, "down for maintenance")
	wantNothing(t, f.publish(), "warning, or critical in maintenance")
	if n := len(f.h.m.alerts.list); n != 3 {
		t.Fatalf("%d alerts, want 3", n)
	}
	if s := f.header(); !strings.Contains(s, "alerts 3") {
		t.Fatalf("header %q", s)
	}
}

func TestAlertsJoinedCritical(t *testing.T) {
	f := newAlertFleet(t, alertsOn, 120, 30, nil)
	f.publish()
	n := *f.nodes[0]
	n.Name, n.Health = "node-new", fleet.HealthCritical
	n.Checks = []fleet.Check{{ID: "serfHealth", Name: "Serf Health Status", Status: fleet.HealthCritical}}
	f.nodes = append(f.nodes, &n)
	f.journal(fleet.Event{Kind: fleet.NodeJoined, Datacenter: "dc1", Node: "node-new", To: fleet.HealthCritical})
	wantNotify(t, f.publish(), "node-new (dc1) critical: joined critical")
}

func TestAlertsFilter(t *testing.T) {
	f := newAlertFleet(t, AlertOptions{Enabled: true, Filter: "dc:dc2 health:critical"}, 120, 30, nil)
	f.publish()
	f.set("node-00001", "service:api", fleet.HealthCritical, "down") // dc1
	wantNothing(t, f.publish(), "a node the filter does not match")
	f.set("node-00002", "service:db", fleet.HealthCritical, "down") // dc2
	wantNotify(t, f.publish(), "node-00002 (dc2) critical: http: down")
	if n := len(f.h.m.alerts.list); n != 1 {
		t.Fatalf("%d alerts, want 1", n)
	}
}

func TestAlertsDisabled(t *testing.T) {
	f := newAlertFleet(t, AlertOptions{Enabled: false, Filter: DefaultAlertFilter}, 120, 30, nil)
	f.publish()
	for _, name := range []string{"node-00001", "node-00002", "node-00004"} {
		f.set(name, "serfHealth", fleet.HealthCritical, "down")
		wantNothing(t, f.publish(), "alerts off")
	}
	f.h.clk.add(time.Minute)
	wantNothing(t, rawWrites(t, f.h.m.flushAlerts()), "alerts off, flush")
	if s := f.header(); strings.Contains(s, "alerts") || !strings.Contains(s, "critical 4") {
		t.Fatalf("header %q", s)
	}
	f.h.keys(":alerts", "enter")
	f.h.mustContain("alerts are off in this console")
}

// TestAlertsRateLimitedFlush: alerts within 5 s are held and counted, and
// the tick's flush summarises them once the time is up.
func TestAlertsRateLimitedFlush(t *testing.T) {
	f := newAlertFleet(t, alertsOn, 120, 30, nil)
	f.publish()
	f.set("node-00001", "service:api", fleet.HealthCritical, "down")
	f.set("node-00004", "service:cache", fleet.HealthCritical, "down")
	wantNotify(t, f.publish(), "node-00001 (dc1) critical: http: down (+1 more: node-00004)")
	f.set("node-00002", "service:db", fleet.HealthCritical, "down")
	wantNothing(t, f.publish(), "within 5s")
	wantNothing(t, rawWrites(t, f.h.m.flushAlerts()), "flush within 5s")
	if s := f.header(); !strings.Contains(s, "alerts 3") {
		t.Fatalf("held alerts are counted: %q", s)
	}
	f.h.clk.add(3 * time.Second)
	wantNotify(t, rawWrites(t, f.h.m.flushAlerts()), "1 more node turned critical: node-00002")
	wantNothing(t, rawWrites(t, f.h.m.flushAlerts()), "second flush")
}

// TestAlertsJournalGap: more events than the journal keeps came between
// two snapshots; a node critical now that was not before alerts even
// though its event is gone, a node critical before does not.
func TestAlertsJournalGap(t *testing.T) {
	f := newAlertFleet(t, alertsOn, 120, 30, nil)
	f.publish()
	f.set("node-00001", "service:api", fleet.HealthCritical, "down")
	f.publish()
	f.h.clk.add(10 * time.Second)
	f.set("node-00001", "serfHealth", fleet.HealthCritical, "down too")
	f.set("node-00004", "service:cache", fleet.HealthCritical, "dropped")
	f.set("node-00006", "service:search", fleet.HealthWarning, "slow")
	// The journal kept only the last event (node-00006's warning).
	wantNotify(t, f.publishJournal(f.events[len(f.events)-1:]), "node-00004 (dc1) critical: service:cache: dropped")
	if n := len(f.h.m.alerts.list); n != 2 {
		t.Fatalf("%d alerts, want 2", n)
	}
}

func TestAlertsViewAndCounter(t *testing.T) {
	f, fl := (*alertFleet)(nil), (*fakeLogs)(nil)
	f = newAlertFleet(t, alertsOn, 80, 24, func(o *Options) {
		fl = &fakeLogs{}
		o.Logs = fl
	})
	f.publish()
	f.set("node-00001", "service:api", fleet.HealthCritical, "first\x1b]0;pwned\a")
	f.publish()
	f.set("node-00004", "service:cache", fleet.HealthCritical, "second")
	f.publish()
	// :dc scope: a dc2 alert counts and lists while the console looks at
	// dc1.
	f.h.keys(":dc dc1", "enter")
	f.set("node-00002", "service:db", fleet.HealthCritical, "third")
	f.publish()
	// 80 columns: the counter stays.
	if s := f.header(); !strings.Contains(s, "alerts 3") {
		t.Fatalf("header at 80 columns: %q", s)
	}
	f.h.keys(":alerts", "enter")
	if got := f.h.rowNames(); len(got) != 3 || got[0] != f.h.table().rows[0].cells[0] {
		t.Fatalf("rows %q", got)
	}
	var names []string
	for _, r := range f.h.table().visible() {
		names = append(names, r.cells[acNode])
	}
	if !slices.Equal(names, []string{"node-00002", "node-00004", "node-00001"}) {
		t.Fatalf(":alerts lists %q, want newest first", names)
	}
	s := f.h.mustContain("passing → critical: check http: first", "dc2")
	if strings.Contains(s, "pwned") {
		t.Fatal("check output not sanitised in the view")
	}
	if s := f.header(); strings.Contains(s, "alerts") {
		t.Fatalf("counter after opening :alerts: %q", s)
	}
	// An alert while the view is on top is seen at once.
	f.set("node-00008", "service:api", fleet.HealthCritical, "fourth")
	f.publish()
	if s := f.header(); strings.Contains(s, "alerts") {
		t.Fatalf("counter while :alerts is on top: %q", s)
	}
	if n := len(f.h.table().visible()); n != 4 {
		t.Fatalf("%d rows, want 4", n)
	}
	// enter opens the node's detail (of another datacenter than the
	// scope's); l its logs around the alert.
	// The cursor stays on its row when one comes in above it: go to
	// the second row, node-00002.
	f.h.keys("home", "down", "enter")
	if got := f.h.detailNode(); got != "node-00002" {
		t.Fatalf("enter opened %q", got)
	}
	f.h.keys("esc")
	q, _ := f.h.openLogs(fl)
	if q.Title != "node node-00002" || !q.Incident.Equal(f.h.m.alerts.list[2].ev.Time) {
		t.Fatalf("logs query %+v", q)
	}
	// Reopening lists only what came since.
	f.h.keys("esc", ":nodes", "enter")
	f.set("node-00010", "service:db", fleet.HealthCritical, "fifth")
	f.publish()
	if s := f.header(); !strings.Contains(s, "alerts 1") {
		t.Fatalf("header %q", s)
	}
	f.h.keys(":alerts", "enter")
	if got := f.h.rowNames(); len(got) != 1 {
		t.Fatalf("reopened :alerts lists %q", got)
	}
}

func TestAlertsCap(t *testing.T) {
	f := newAlertFleet(t, alertsOn, 120, 30, nil)
	f.publish()
	// 600 spells of one node (each 6 s apart): 500 kept.
	for i := range maxAlerts + 100 {
		f.set("node-00001", "service:api", fleet.HealthCritical, fmt.Sprint("spell ", i))
		f.publish()
		f.set("node-00001", "service:api", fleet.HealthPassing, "")
		f.publish()
	}
	a := &f.h.m.alerts
	if len(a.list) != maxAlerts || a.unseen() != maxAlerts+100 {
		t.Fatalf("kept %d, unseen %d", len(a.list), a.unseen())
	}
	if s := f.header(); !strings.Contains(s, "alerts 500+") {
		t.Fatalf("header %q", s)
	}
	f.h.keys(":alerts", "enter")
	tv := f.h.table()
	if tv.total != maxAlerts {
		t.Fatalf("%d rows", tv.total)
	}
	if got := tv.rows[0].cells[acWhat]; !strings.HasSuffix(got, "spell 599") {
		t.Fatalf("newest row %q", got)
	}
	if got := tv.rows[len(tv.rows)-1].cells[acWhat]; !strings.HasSuffix(got, "spell 100") {
		t.Fatalf("oldest row %q", got)
	}
}
