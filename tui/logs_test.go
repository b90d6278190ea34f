package tui

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/fleetdeck/fleetdeck/fleet"
	"github.com/fleetdeck/fleetdeck/logview"
)

// inc is the incident of incidentSnapshot: node-00007 went critical.
var inc = t0.Add(-2 * time.Minute)

// openOnNode filters the nodes view to name and opens its logs.
func openOnNode(h *harness, fl *fakeLogs, name string) (logview.Query, *fakeStream) {
	h.t.Helper()
	h.keys("/", "name:"+name, "enter")
	return h.openLogs(fl)
}

func TestLogsFromNodeUseItsLastTransition(t *testing.T) {
	h, fl := newLogsHarness(t, incidentSnapshot(), 80, 24, true, nil)
	q, _ := openOnNode(h, fl, "node-00007")
	if q.Title != "node node-00007" || len(q.Nodes) != 1 || q.Nodes[0].Name != "node-00007" {
		t.Fatalf("query = %+v", q)
	}
	if q.Nodes[0].Meta["instance-id"] != "i-00000007" || q.Nodes[0].Address == "" {
		t.Fatalf("node ref lacks meta/address: %+v", q.Nodes[0])
	}
	// The latest transition to warning or critical, not the later
	// passing → passing one.
	if !q.Incident.Equal(inc) || !q.From.Equal(inc.Add(-5*time.Minute)) || !q.To.Equal(inc.Add(5*time.Minute)) {
		t.Fatalf("window %v..%v around %v, want ±5m around %v", q.From, q.To, q.Incident, inc)
	}
	if q.MinSeverity != logview.Default {
		t.Fatalf("server-side floor %v: the floor is client-side", q.MinSeverity)
	}
	h.mustContain("Logs node node-00007 · ±5m around 09:58:00", "◌ listing the window", "nodes › logs")

	// A node without a transition: the window is around now, following.
	h.keys("esc", "esc", "/", "name:node-00001", "enter")
	q, _ = h.openLogs(fl)
	if !q.Incident.Equal(t0) || !q.To.Equal(t0.Add(5*time.Minute)) {
		t.Fatalf("no-incident window %v..%v around %v", q.From, q.To, q.Incident)
	}
	if !h.logs().follow {
		t.Fatal("a view opened at now must follow")
	}
}

func TestLogsWindowOptions(t *testing.T) {
	h, fl := newLogsHarness(t, incidentSnapshot(), 80, 24, true, func(o *Options) {
		o.LogsBefore, o.LogsAfter, o.LogsCap = 10*time.Minute, time.Minute, 50
	})
	q, s := openOnNode(h, fl, "node-00007")
	if !q.From.Equal(inc.Add(-10*time.Minute)) || !q.To.Equal(inc.Add(time.Minute)) {
		t.Fatalf("window %v..%v", q.From, q.To)
	}
	h.mustContain("-10m/+1m around 09:58:00")
	h.feed(s, entries("node-00007", 80, inc.Add(-time.Minute), time.Second, 0), logview.Status{Phase: logview.Live, Listed: 80})
	if n := h.logs().buf.Len(); n != 50 {
		t.Fatalf("buffer holds %d, cap 50", n)
	}
	h.mustContain("dropped 30 (cap 50)", "listed 80")
	// The window ended a minute ago and the view is live: it says so.
	h.mustContain("● live past 09:59:00")
}

func TestLogsFromDetailEventsRolesGroups(t *testing.T) {
	h, fl := newLogsHarness(t, incidentSnapshot(), 100, 30, true, nil)
	// Node detail.
	h.keys("/", "name:node-00007", "enter", "enter")
	if h.m.top().title() != "node" {
		t.Fatal("not in the detail view")
	}
	q, _ := h.openLogs(fl)
	if q.Title != "node node-00007" || !q.Incident.Equal(inc) {
		t.Fatalf("detail: %q at %v", q.Title, q.Incident)
	}
	h.keys("esc")
	if h.m.top().title() != "node" {
		t.Fatal("esc must return to the detail view")
	}

	// Events: the selected event's node and time (newest first: the group
	// event, then node-00007's passing one at t0-1m).
	h.keys(":events", "enter", "j")
	q, _ = h.openLogs(fl)
	if q.Title != "node node-00007" || !q.Incident.Equal(t0.Add(-time.Minute)) {
		t.Fatalf("event: %q at %v", q.Title, q.Incident)
	}
	h.keys("esc", "j", "j")
	q, _ = h.openLogs(fl)
	if q.Title != "node node-00003" || !q.Incident.Equal(t0.Add(-10*time.Minute)) {
		t.Fatalf("event: %q at %v", q.Title, q.Incident)
	}
	// A group event: the group's nodes at the event's time.
	h.keys("esc", "g")
	q, _ = h.openLogs(fl)
	if q.Title != "group web-asg" || len(q.Nodes) != 10 || !q.Incident.Equal(t0.Add(-30*time.Second)) {
		t.Fatalf("group event: %q, %d nodes at %v", q.Title, len(q.Nodes), q.Incident)
	}

	// Roles: every node of the role at once, the incident the latest
	// transition among them.
	h.keys(":roles", "enter", "/", "web", "enter")
	q, _ = h.openLogs(fl)
	var names []string
	for _, n := range q.Nodes {
		names = append(names, n.Name)
	}
	if q.Title != "role web" || len(q.Nodes) < 5 || !strings.Contains(strings.Join(names, ","), "node-00007") {
		t.Fatalf("role: %q %v", q.Title, names)
	}
	if !q.Incident.Equal(inc) {
		t.Fatalf("role incident %v, want node-00007's %v", q.Incident, inc)
	}

	// Groups.
	h.keys(":groups", "enter", "/", "api-asg", "enter")
	q, _ = h.openLogs(fl)
	if q.Title != "group api-asg" || len(q.Nodes) != 10 {
		t.Fatalf("group: %q %d nodes", q.Title, len(q.Nodes))
	}
}

func TestLogsOff(t *testing.T) {
	h := newHarnessWith(t, incidentSnapshot(), 80, 24, true, func(o *Options) { o.LogsOff = "set --log-project" })
	h.keys("l")
	if h.m.top().title() != "nodes" {
		t.Fatal("log key opened a view without an opener")
	}
	h.mustContain("logs are off: set --log-project")
}

func TestLogsOpenError(t *testing.T) {
	h, fl := newLogsHarness(t, incidentSnapshot(), 80, 24, true, nil)
	fl.openErr = errors.New("permission denied\x1b[2J")
	h.hit("l")
	h.await("open error", func(msg tea.Msg) bool { _, ok := msg.(logsOpenedMsg); return ok })
	h.mustContain("✖ opening the logs: permission denied")
}

// newIncidentLogs opens node-00007's logs and lists 600 entries a second
// apart from inc-5m (errors every 7th), with the window listed.
func newIncidentLogs(t *testing.T, w, hgt int, noColor bool) (*harness, *fakeLogs, *fakeStream) {
	t.Helper()
	h, fl := newLogsHarness(t, incidentSnapshot(), w, hgt, noColor, nil)
	_, s := openOnNode(h, fl, "node-00007")
	es := entries("node-00007", 600, inc.Add(-5*time.Minute), time.Second, 50)
	h.feed(s, es[:300], logview.Status{Phase: logview.Listing, Listed: 300})
	h.feed(s, es[300:], logview.Status{Phase: logview.Live, Listed: 600})
	return h, fl, s
}

func TestLogsIncidentMarkerAndInitialPosition(t *testing.T) {
	h, _, _ := newIncidentLogs(t, 80, 24, true)
	ls := h.logs()
	if ls.follow {
		t.Fatal("a view opened for an incident starts at the incident, paused")
	}
	// The cursor is on the first entry at the incident (line 300).
	if e := h.selectedEntry(); !e.Time.Equal(inc) {
		t.Fatalf("cursor at %v, want the incident %v", e.Time, inc)
	}
	lines := h.screenLines()
	mk := -1
	for i, l := range lines {
		if strings.Contains(l, "──── incident 09:58:00.000 UTC · node-00007 warning → critical: check http") {
			mk = i
		}
	}
	if mk < 0 {
		t.Fatalf("no incident marker:\n%s", strings.Join(lines, "\n"))
	}
	if !strings.Contains(lines[mk-1], "node-00007 line 299") || !strings.HasPrefix(lines[mk+1], ">09:58:00.000 INFO node-00007 line 300") {
		t.Fatalf("marker not between lines 299 and 300:\n%s", strings.Join(lines, "\n"))
	}
	// A third of the screen of context above.
	if mk < 5 || mk > 12 {
		t.Fatalf("incident at screen line %d", mk)
	}
	h.mustContain("● live", "listed 600", "301/600 PAUSED")
	// Moving away and back with i.
	h.keys("g")
	h.mustNotContain("──── incident")
	h.keys("i")
	if e := h.selectedEntry(); !e.Time.Equal(inc) {
		t.Fatalf("i went to %v", e.Time)
	}
}

func TestLogsFollowPauseAndNew(t *testing.T) {
	h, fl := newLogsHarness(t, incidentSnapshot(), 80, 24, true, nil)
	_, s := openOnNode(h, fl, "node-00001") // no incident: follows
	h.feed(s, entries("node-00001", 100, t0.Add(-3*time.Minute), time.Second, 0), logview.Status{Phase: logview.Live, Listed: 100})
	// The newest entry at the bottom, above the "opened" marker (the
	// view was opened after it).
	lines := h.screenLines()
	if !strings.HasPrefix(lines[len(lines)-3], ">09:58:39.000 INFO node-00001 line 99") ||
		!strings.HasPrefix(lines[len(lines)-2], "──── opened 10:00:00.000 UTC ───") {
		t.Fatalf("following: the newest entry is not at the bottom:\n%s", strings.Join(lines, "\n"))
	}
	h.mustContain("100/100 FOLLOW")

	// Pause: new entries are received and counted, the screen stays.
	h.keys("p")
	before := h.screen()
	h.feed(s, entries("node-00001", 10, t0.Add(time.Second), time.Millisecond, 0), logview.Status{Phase: logview.Live, Listed: 100, Tailed: 10})
	if h.logs().buf.Len() != 110 {
		t.Fatal("paused view must keep receiving")
	}
	after := h.mustContain("PAUSED 10 new", "tailed 10")
	if body(before) != body(after) {
		t.Fatalf("paused screen moved:\n%s\n----\n%s", before, after)
	}
	// Follow again: the newest at the bottom, the count gone.
	h.keys("p")
	lines = h.screenLines()
	if !strings.HasPrefix(lines[len(lines)-2], ">10:00:01.009 INFO node-00001 line 9") || !strings.Contains(h.screen(), "110/110 FOLLOW") {
		t.Fatalf("follow did not catch up:\n%s", strings.Join(lines, "\n"))
	}
	// Moving up pauses; G follows.
	h.keys("k")
	h.mustContain("109/110 PAUSED")
	h.keys("G")
	h.mustContain("110/110 FOLLOW")
}

// body returns the stream part of a screen (without the header lines and
// the footer, which show counts).
func body(screen string) string {
	lines := strings.Split(screen, "\n")
	return strings.Join(lines[5:len(lines)-1], "\n")
}

func TestLogsSearch(t *testing.T) {
	h, _, s := newIncidentLogs(t, 80, 24, false)
	// 6 entries mention a timeout, before and after the cursor.
	var special []*logview.Entry
	for i, at := range []int{-200, -100, 10, 20, 100, 150} {
		e := entries("node-00007", 1, inc.Add(time.Duration(at)*time.Second+time.Millisecond), 0, 0)[0]
		e.InsertID = "timeout-" + string(rune('a'+i))
		e.Text = "upstream TimeOut after 30s"
		special = append(special, e)
	}
	h.feed(s, special, logview.Status{Phase: logview.Live, Listed: 606})
	h.keys("/", "timeout", "enter")
	ls := h.logs()
	if ls.matches != 6 {
		t.Fatalf("matches = %d, want 6", ls.matches)
	}
	sel := h.selectedEntry()
	if sel.InsertID != "timeout-c" {
		t.Fatalf("search went to %s, want the first match after the cursor", sel.InsertID)
	}
	raw := h.m.View().Content
	if !strings.Contains(raw, sgrMatch+"TimeOut"+sgrReset) {
		t.Fatal("match not highlighted")
	}
	// The cursor is on the third of six matches.
	h.mustContain("/timeout 3/6")
	for i, want := range []string{"timeout-d", "timeout-e", "timeout-f", "timeout-a"} {
		h.keys("n")
		if got := h.selectedEntry().InsertID; got != want {
			t.Fatalf("n went to %s, want %s", got, want)
		}
		// The footer says which match the cursor is on, and when n wrapped.
		rank := []string{"4/6", "5/6", "6/6", "1/6"}[i]
		h.mustContain("/timeout " + rank)
		if want == "timeout-a" {
			h.mustContain("search wrapped to the top")
		} else {
			h.mustNotContain("wrapped")
		}
	}
	h.keys("N", "N")
	if got := h.selectedEntry().InsertID; got != "timeout-e" {
		t.Fatalf("N N went to %s", got)
	}
	h.mustContain("/timeout 5/6", "search wrapped to the bottom")
	// Moved off the match: the count, not a rank.
	h.keys("k")
	h.clearFlashForTest()
	h.mustContain("/timeout 6 matches")
	// New matching entries are counted as they arrive.
	more := entries("node-00007", 3, t0.Add(time.Second), time.Second, 0)
	for _, e := range more {
		e.Text += " timeout"
	}
	h.feed(s, more, logview.Status{Phase: logview.Live, Tailed: 3})
	if ls.matches != 9 {
		t.Fatalf("matches after tail = %d, want 9", ls.matches)
	}
	// No match.
	h.keys("/", "no-such-text", "enter")
	h.mustContain("/no-such-text 0 matches")
	h.keys("n")
	h.mustContain("no match for no-such-text")
	h.mustNotContain("PAUSED") // the message took the footer
}

// TestLogsMatchCountUnderEviction checks the incremental match count
// against a full count while the cap evicts and a gap fill merges.
func TestLogsMatchCountUnderEviction(t *testing.T) {
	h, fl := newLogsHarness(t, incidentSnapshot(), 80, 24, true, func(o *Options) { o.LogsCap = 100 })
	_, s := openOnNode(h, fl, "node-00001")
	h.keys("/", "line 1", "enter")
	ls := h.logs()
	for b := range 8 {
		es := entries("node-00001", 37, t0.Add(time.Duration(b*37)*time.Second), time.Second, 0)
		for i, e := range es {
			e.Text = strings.Replace(e.Text, "line ", "line "+string(rune('0'+(b+i)%3)), 1)
		}
		if b == 5 {
			// A gap fill: older entries merged in.
			es = entries("node-00001", 20, t0.Add(130*time.Second+time.Millisecond), time.Second, 0)
		}
		h.feed(s, es, logview.Status{Phase: logview.Live})
		if want := ls.buf.CountMatches(ls.search, nil); ls.matches != want {
			t.Fatalf("batch %d: matches = %d, full count %d", b, ls.matches, want)
		}
	}
	if ls.buf.Dropped() == 0 {
		t.Fatal("the cap never evicted")
	}
	// With a floor the count follows it.
	h.keys("v", "v", "v")
	if want := ls.buf.CountMatches(ls.search, ls.keepFunc()); ls.matches != want {
		t.Fatalf("with floor: matches = %d, full count %d", ls.matches, want)
	}
}

func TestLogsSeverityFloor(t *testing.T) {
	h, _, _ := newIncidentLogs(t, 80, 24, true)
	h.mustContain("all levels")
	h.keys("v")
	h.mustContain("≥INFO")
	h.keys("v")
	h.mustContain("≥WARN")
	h.keys("v")
	s := h.mustContain("≥ERR")
	for _, l := range strings.Split(body(s), "\n") {
		if strings.Contains(l, "INFO") {
			t.Fatalf("INFO line under ≥ERR: %q", l)
		}
	}
	if e := h.selectedEntry(); e.Severity < logview.Error {
		t.Fatalf("cursor on a hidden entry %v", e.Severity)
	}
	// Moving skips the hidden entries.
	h.keys("j")
	if e := h.selectedEntry(); e.Severity < logview.Error {
		t.Fatal("moved onto a hidden entry")
	}
	// The footer's position counts what the floor shows.
	ls := h.logs()
	shown, pos := 0, 0
	for i := range ls.buf.Len() {
		if e := ls.buf.At(i); e.Severity >= logview.Error {
			shown++
			if e == h.selectedEntry() {
				pos = shown
			}
		}
	}
	h.mustContain(fmt.Sprintf("logs %d/%d ", pos, shown))
	h.keys("v")
	h.mustContain("all levels")
}

func TestLogsNextError(t *testing.T) {
	h, _, _ := newIncidentLogs(t, 80, 24, true)
	start := h.logs().selIndex()
	h.keys("e")
	e := h.selectedEntry()
	if e.Severity < logview.Error || h.logs().selIndex() <= start {
		t.Fatalf("e went to %v at %d", e.Severity, h.logs().selIndex())
	}
	i := h.logs().selIndex()
	h.keys("E")
	if h.selectedEntry().Severity < logview.Error || h.logs().selIndex() >= i {
		t.Fatal("E did not go to the previous error")
	}
}

func TestLogsLookbackKeysReopen(t *testing.T) {
	h, fl, s0 := newIncidentLogs(t, 80, 24, true)
	cases := []struct {
		key string
		d   time.Duration
	}{{"1", time.Minute}, {"2", 5 * time.Minute}, {"3", 15 * time.Minute}, {"4", 30 * time.Minute},
		{"5", time.Hour}, {"6", 3 * time.Hour}, {"7", 6 * time.Hour}, {"8", 12 * time.Hour}, {"9", 24 * time.Hour}}
	prev := s0
	for _, c := range cases {
		h.hit(c.key)
		h.awaitOpened()
		q, s := fl.last(t)
		if !q.From.Equal(inc.Add(-c.d)) || !q.To.Equal(inc.Add(c.d)) || !q.Incident.Equal(inc) {
			t.Fatalf("key %s: window %v..%v", c.key, q.From, q.To)
		}
		if !prev.isClosed() {
			t.Fatalf("key %s: the previous stream was not closed", c.key)
		}
		if h.logs().buf.Len() != 0 {
			t.Fatal("a new window starts with a new buffer")
		}
		prev = s
	}
	h.mustContain("±24h around 09:58:00")
	h.hit("1")
	h.awaitOpened()
	_, s := fl.last(t)
	// The cursor keeps its moment: paused at the incident, it seeks it in
	// the new window.
	h.feed(s, entries("node-00007", 120, inc.Add(-time.Minute), time.Second, 0), logview.Status{Phase: logview.Done, Listed: 120})
	if e := h.selectedEntry(); !e.Time.Equal(inc) {
		t.Fatalf("after re-open the cursor is at %v", e.Time)
	}
	h.mustContain("■ window listed")
	// 0: live from now.
	h.hit("0")
	h.awaitOpened()
	q, _ := fl.last(t)
	if !q.From.Equal(t0) || !q.To.IsZero() {
		t.Fatalf("0: window %v..%v", q.From, q.To)
	}
	if !h.logs().follow {
		t.Fatal("live from now follows")
	}
	h.mustContain("live from 10:00:00")
}

func TestLogsJumpToTime(t *testing.T) {
	h, _, _ := newIncidentLogs(t, 80, 24, true)
	jump := func(text string, want time.Time) {
		t.Helper()
		h.keys("@")
		h.mustContain("jump to (10:02, 10:02:13, RFC3339, -5m, now):")
		h.keys(text, "enter")
		if e := h.selectedEntry(); !e.Time.Equal(want) {
			t.Fatalf("@%s: cursor at %v, want %v", text, e.Time, want)
		}
	}
	jump("09:56", t0.Add(-4*time.Minute))
	jump("09:59:30", t0.Add(-30*time.Second))
	jump("2026-03-04T09:55:10Z", t0.Add(-4*time.Minute-50*time.Second))
	jump("-1m", inc.Add(-time.Minute))
	jump("+90s", inc.Add(90*time.Second))
	h.keys("@", "bogus", "enter")
	h.mustContain("not a time: bogus")
	// Outside the window: the nearest entry, and a hint.
	h.keys("@", "11:00", "enter")
	h.mustContain("outside the window")
	if e := h.selectedEntry(); !e.Time.Equal(inc.Add(299 * time.Second)) {
		t.Fatalf("jump past the end went to %v", e.Time)
	}
}

func TestParseJumpTime(t *testing.T) {
	incident := time.Date(2026, 3, 4, 23, 58, 0, 0, time.UTC)
	cases := map[string]time.Time{
		"23:59":                     time.Date(2026, 3, 4, 23, 59, 0, 0, time.UTC),
		"00:01:30":                  time.Date(2026, 3, 5, 0, 1, 30, 0, time.UTC), // across midnight
		"00:01:30.25":               time.Date(2026, 3, 5, 0, 1, 30, 250e6, time.UTC),
		"2026-03-04T10:00:00+01:00": time.Date(2026, 3, 4, 9, 0, 0, 0, time.UTC),
		"2026-03-04 10:00:00":       time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC),
		"-5m":                       incident.Add(-5 * time.Minute),
		"now":                       t0,
	}
	for in, want := range cases {
		got, err := parseJumpTime(in, incident, t0, time.UTC)
		if err != nil || !got.Equal(want) {
			t.Errorf("%q: %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "25:00", "-5x", "yesterday"} {
		if _, err := parseJumpTime(bad, incident, t0, time.UTC); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestLogsWrap(t *testing.T) {
	h, _, s := newIncidentLogs(t, 80, 24, true)
	long := entries("node-00007", 1, inc.Add(500*time.Millisecond), 0, 0)[0]
	long.InsertID = "long"
	long.Text = "begin " + strings.Repeat("lorem ipsum ", 30) + "end\nsecond line of a stack trace"
	h.feed(s, []*logview.Entry{long}, logview.Status{Phase: logview.Live})
	h.keys("j") // onto the long entry (after the incident's)
	if h.selectedEntry() != long {
		t.Fatal("cursor not on the long entry")
	}
	s1 := h.mustContain(">09:58:00.500 INFO begin lorem", "…")
	if strings.Contains(s1, "second line") {
		t.Fatal("unwrapped entry showed its second line")
	}
	h.keys("w")
	// The line break inside the entry is marked: a forged line after it
	// cannot pass for an entry of its own.
	h.mustContain("· wrap", "↵ second line of a stack trace", "end")
	lines := h.screenLines()
	var cont int
	for _, l := range lines {
		if strings.HasPrefix(l, strings.Repeat(" ", 19)) && strings.Contains(l, "lorem") {
			cont++
		}
	}
	if cont < 2 {
		t.Fatalf("wrapped continuation lines = %d:\n%s", cont, strings.Join(lines, "\n"))
	}
	h.keys("w")
	h.mustNotContain("second line")
}

func TestLogsTimeModes(t *testing.T) {
	h, _, _ := newIncidentLogs(t, 80, 24, true)
	h.mustContain(">09:58:00.000 INFO", " UTC ")
	h.keys("t")
	local := inc.Local().Format("15:04:05.000")
	h.mustContain(">"+local+" INFO", " local ")
	h.keys("t")
	h.mustContain(">+00:00:00.000 INFO", "-00:00:02.000 INFO", " relative ", "-5m ", " +5m")
	h.keys("t")
	h.mustContain(">09:58:00.000 INFO")
	if relStamp(-(26*time.Hour + 3*time.Minute + 4*time.Second + 5*time.Millisecond)) != "-26:03:04.005" {
		t.Fatal(relStamp(-(26*time.Hour + 3*time.Minute + 4*time.Second + 5*time.Millisecond)))
	}
}

func TestLogsHistogram(t *testing.T) {
	for _, noColor := range []bool{true, false} {
		h, _, _ := newIncidentLogs(t, 80, 24, noColor)
		lines := h.screenLines()
		hl := lines[3]
		if !strings.HasPrefix(hl, "  09:53:00 ") || !strings.Contains(hl, " 10:03:00  errors 12") {
			t.Fatalf("histogram line %q", hl)
		}
		raw := strings.Split(h.m.View().Content, "\n")[3]
		if noColor {
			// Errors are a glyph, not a colour.
			if !strings.Contains(hl, "!") {
				t.Fatalf("no error glyph without colour: %q", hl)
			}
		} else if !strings.Contains(raw, sgrBoldRed+"█"+sgrReset) {
			t.Fatalf("error buckets not red: %q", raw)
		}
		// All entries are in the first 10 minutes, none in the future.
		if !strings.Contains(hl, " 10:03:00") {
			t.Fatal(hl)
		}
	}
	// Quiet buckets have no bar and no error glyph.
	h, fl := newLogsHarness(t, incidentSnapshot(), 80, 24, true, nil)
	_, s := openOnNode(h, fl, "node-00007")
	h.feed(s, entries("node-00007", 5, inc.Add(-5*time.Minute), time.Second, 0), logview.Status{Phase: logview.Live})
	hl := h.screenLines()[3]
	if strings.Contains(hl, "!") || !strings.Contains(hl, "█") || !strings.Contains(hl, "errors 0") {
		t.Fatalf("quiet histogram %q", hl)
	}
}

func TestLogsStatusLine(t *testing.T) {
	h, fl := newLogsHarness(t, incidentSnapshot(), 160, 30, true, nil)
	_, s := openOnNode(h, fl, "node-00007")
	h.feed(s, nil, logview.Status{Phase: logview.Reconnecting, Err: errors.New("tail ended\x1b]0;x\x07"), RetryAt: t0.Add(3 * time.Second),
		Listed: 10, Tailed: 5, Duplicates: 2, Suppressed: map[string]int64{"RATE_LIMIT": 4, "NOT_CONSUMED": 1}})
	h.mustContain("▲ reconnecting · retry in 3s · tail ended · listed 10 · tailed 5 · dup 2 · dropped 0 (cap 100000) · suppressed 5 (NOT_CONSUMED 1, RATE_LIMIT 4)")
	// Backing off on a quota error while listing is visible too.
	h.feed(s, nil, logview.Status{Phase: logview.Listing, Err: errors.New("quota exceeded (RESOURCE_EXHAUSTED)"), RetryAt: t0.Add(8 * time.Second)})
	h.mustContain("◌ listing the window… · retry in 8s · quota exceeded (RESOURCE_EXHAUSTED)")
	h.feed(s, nil, logview.Status{Phase: logview.Failed, Err: errors.New("permission denied")})
	h.mustContain("✖ failed: permission denied", "no entries in this window")
}

// A stalled tail says so where "live" was, with the age of its last sign
// of life and the next retry before the reason, so that an 80-column
// terminal cuts the reason, not them.
func TestLogsStatusStalled(t *testing.T) {
	h, fl := newLogsHarness(t, incidentSnapshot(), 80, 24, true, nil)
	_, s := openOnNode(h, fl, "node-00007")
	h.feed(s, entries("node-00007", 5, inc, time.Second, 0), logview.Status{Phase: logview.Live, Listed: 5})
	h.mustContain("● live")
	reason := errors.New("the live tail in proj was silent for 30s and a check failed: \x1b]0;x\x07 deadline exceeded")
	h.feed(s, nil, logview.Status{Phase: logview.Stalled, Err: reason, LastSign: t0.Add(-12 * time.Second),
		RetryAt: t0.Add(3 * time.Second), Listed: 5})
	var line string
	for _, l := range h.screenLines() {
		if strings.Contains(l, "stalled") {
			line = l
		}
		if w := cellWidth(l); w > 80 {
			t.Errorf("line wider than the terminal (%d): %q", w, l)
		}
	}
	if !strings.HasPrefix(line, "  ▲ stalled · last answer 12s ago · retry in 3s · the live tail") {
		t.Fatalf("status line %q", line)
	}
	t.Logf("at 80 columns: %q", line)
	h.mustNotContain("● live", "\x1b]0;x")
	// So does a tail that ended with an error.
	h.feed(s, nil, logview.Status{Phase: logview.Reconnecting, RetryAt: t0.Add(5 * time.Second), Listed: 5,
		Err: errors.New("tailing log entries in proj: rpc error: code = Unavailable desc = connection reset by peer")})
	h.mustContain("  ▲ reconnecting · retry in 5s · tailing log entries in proj: rpc error: code =…")
	// The attempt is under way once the retry time has passed.
	h.feed(s, nil, logview.Status{Phase: logview.Stalled, Err: reason, LastSign: t0.Add(-42 * time.Second),
		RetryAt: t0.Add(-time.Second), Listed: 5})
	h.mustContain("▲ stalled · last answer 42s ago · retrying · the live")
	// A wide terminal shows the reason, sanitised.
	h.w, h.h = 160, 30
	h.send(tea.WindowSizeMsg{Width: 160, Height: 30})
	h.mustContain("retrying · the live tail in proj was silent for 30s and a check failed:  deadline exceeded")
	// Live again by itself.
	h.feed(s, nil, logview.Status{Phase: logview.Live, Listed: 5})
	h.mustContain("● live")
	h.mustNotContain("stalled")
}

func TestLogsExpandEntry(t *testing.T) {
	h, _, s := newIncidentLogs(t, 80, 24, true)
	h.selectedEntry().Context = map[string]string{"trace": "projects/p/traces/abc", "httpRequest.status": "503"}
	h.selectedEntry().Labels = map[string]string{"app": "web", "xff": "\x1b[2J203.0.113.9"}
	h.keys("enter")
	if h.m.top().title() != "entry" {
		t.Fatal("enter did not expand the entry")
	}
	h.mustContain("Log entry · INFO · node-00007", "insertId", "node-00007-", "projects/proj/logs/app", "gce_instance",
		"instance_id = i-node-00007", "Labels (2)", "app = web", "Payload", "2026-03-04T09:58:00Z",
		"Context", "httpRequest.status = 503", "trace = projects/p/traces/abc",
		// A hostile label value is shown escaped, not silently cleaned.
		`xff = "\x1b[2J203.0.113.9"`)
	h.keys("G")
	h.mustContain(`"message": "node-00007 line 300"`)
	// The stream goes on underneath.
	h.feed(s, entries("node-00007", 2, t0.Add(time.Second), time.Second, 0), logview.Status{Phase: logview.Live})
	// A long payload scrolls.
	h.keys("esc")
	big := entries("node-00007", 1, inc.Add(time.Millisecond), 0, 0)[0]
	big.InsertID = "big"
	var p strings.Builder
	p.WriteString("{\n")
	for i := range 200 {
		p.WriteString("  \"k" + strings.Repeat("x", i%7) + "\": 1,\n")
	}
	p.WriteString("  \"last\": true\n}")
	big.Payload = p.String()
	h.feed(s, []*logview.Entry{big}, logview.Status{Phase: logview.Live})
	h.keys("j")
	if h.selectedEntry() != big {
		t.Fatal("not on the big entry")
	}
	h.keys("enter")
	h.mustNotContain(`"last": true`)
	h.keys("G")
	h.mustContain(`"last": true`, "y copies this entry")
	if h.m.top().title() != "entry" {
		t.Fatal("G left the entry")
	}
	h.keys("esc")
	if h.m.top().title() != "logs" {
		t.Fatal("esc from the entry must return to the stream")
	}
}

func TestLogsCopyOSC52(t *testing.T) {
	h, _, s := newIncidentLogs(t, 80, 24, true)
	evil := entries("node-00007", 1, inc.Add(time.Millisecond), 0, 0)[0]
	evil.InsertID = "evil"
	evil.Text = "x\x1b]52;c;ZXZpbA==\x07"
	evil.Payload = "\"rm -rf /\x1b[2J\\n\u009b31m\x7f\xff\""
	h.feed(s, []*logview.Entry{evil}, logview.Status{Phase: logview.Live})
	h.keys("j")
	cmd := h.send(keyMsg("y"))
	if cmd == nil {
		t.Fatal("y returned no command")
	}
	msg := cmd()
	want, _ := entryJSON(evil)
	if msg != tea.SetClipboard(want)() {
		t.Fatalf("y did not set the clipboard to the entry: %#v", msg)
	}
	for _, bad := range []string{"\x1b", "\x07", "\x7f", "\u009b", "\xff"} {
		if strings.Contains(want, bad) {
			t.Fatalf("copied text holds %q: %q", bad, want)
		}
	}
	var back map[string]any
	if err := json.Unmarshal([]byte(want), &back); err != nil {
		t.Fatalf("copy is not JSON: %v\n%s", err, want)
	}
	if back["insertId"] != "evil" || back["severity"] != "INFO" || back["node"] != "node-00007" ||
		!strings.Contains(back["payload"].(string), "rm -rf /\x1b[2J") {
		t.Fatalf("copied %v", back)
	}
	h.mustContain("copied the entry")
	// From the expanded entry too, and a JSON payload stays JSON.
	h.keys("k", "enter")
	msg = h.send(keyMsg("y"))()
	want, _ = entryJSON(h.entry().entry)
	if msg != tea.SetClipboard(want)() || !strings.Contains(want, `"message": "node-00007 line 300"`) {
		t.Fatalf("y in the expanded entry: %q", want)
	}
	// A huge payload is cut.
	huge := &logview.Entry{Time: inc, Payload: strings.Repeat("a", 1<<20)}
	text, cut := entryJSON(huge)
	if !cut || len(text) > copyMax+1024 {
		t.Fatalf("1 MB payload copied as %d bytes (cut %v)", len(text), cut)
	}
}

func TestLogsSave(t *testing.T) {
	var gotTitle string
	var got []*logview.Entry
	fl := &fakeLogs{}
	h := newHarnessWith(t, incidentSnapshot(), 80, 24, true, func(o *Options) {
		o.Logs = fl
		o.SaveLogs = func(title string, es []*logview.Entry) (string, error) {
			gotTitle, got = title, es
			return "/tmp/fleetdeck-logs-node-00007.jsonl", nil
		}
	})
	_, s := openOnNode(h, fl, "node-00007")
	h.feed(s, entries("node-00007", 70, inc, time.Second, 7), logview.Status{Phase: logview.Live})
	h.keys("v", "v", "v") // ≥ERR: 10 entries shown
	h.hit("ctrl+s")
	h.await("saved", func(msg tea.Msg) bool { _, ok := msg.(logsSavedMsg); return ok })
	if gotTitle != "node node-00007" || len(got) != 10 {
		t.Fatalf("SaveLogs(%q, %d entries)", gotTitle, len(got))
	}
	for _, e := range got {
		if e.Severity < logview.Error {
			t.Fatal("saved an entry the view hides")
		}
	}
	h.mustContain("saved 10 entries to /tmp/fleetdeck-logs-node-00007.jsonl")

	// A failing save says why; no SaveLogs says it is off.
	h2, fl2 := newLogsHarness(t, incidentSnapshot(), 80, 24, true, func(o *Options) {
		o.SaveLogs = func(string, []*logview.Entry) (string, error) { return "", errors.New("disk full") }
	})
	_, s2 := openOnNode(h2, fl2, "node-00007")
	h2.feed(s2, entries("node-00007", 3, inc, time.Second, 0), logview.Status{Phase: logview.Live})
	h2.hit("ctrl+s")
	h2.await("save error", func(msg tea.Msg) bool { _, ok := msg.(logsSavedMsg); return ok })
	h2.mustContain("saving logs: disk full")
	h3, fl3 := newLogsHarness(t, incidentSnapshot(), 80, 24, true, nil)
	openOnNode(h3, fl3, "node-00007")
	h3.keys("ctrl+s")
	h3.mustContain("saving logs is off")
}

func TestLogsEscClosesStream(t *testing.T) {
	h, fl, s := newIncidentLogs(t, 80, 24, true)
	h.keys("esc")
	if h.m.top().title() != "nodes" {
		t.Fatalf("esc went to %v", h.m.top().title())
	}
	if !s.isClosed() {
		t.Fatal("esc did not close the stream")
	}
	// The Next in flight ends with the view's context; its message is
	// ignored and nothing waits on the stream any more.
	h.await("last Next", func(msg tea.Msg) bool { b, ok := msg.(logsBatchMsg); return ok && b.err != nil })
	s.mu.Lock()
	closes := s.closes
	s.mu.Unlock()
	if closes != 1 {
		t.Fatalf("Close called %d times", closes)
	}

	// A ":" view command closes it too, as does the console's end.
	_, s2 := h.openLogs(fl)
	h.keys(":events", "enter")
	if !s2.isClosed() {
		t.Fatal(":events did not close the stream")
	}
}

// TestLogsClosedWithConsole checks that a stream still open when the
// console's context ends is closed (the AfterFunc), and that a stream
// opened for a view already gone is closed as well.
func TestLogsClosedWithConsole(t *testing.T) {
	h, fl, s := newIncidentLogs(t, 80, 24, true)
	// Re-open, then leave before the open message is handled.
	h.hit("1")
	h.keys("esc")
	h.await("open of the closed view", func(msg tea.Msg) bool { _, ok := msg.(logsOpenedMsg); return ok })
	_, s2 := fl.last(t)
	if !s.isClosed() {
		t.Fatal("old stream open")
	}
	waitClosed(t, s2)
	// A view left open when the console ends.
	_, s3 := h.openLogs(fl)
	h.cancel()
	waitClosed(t, s3)
}

// waitClosed waits until s is closed; the deadline only guards against a
// stream that is never closed.
func waitClosed(t *testing.T, s *fakeStream) {
	t.Helper()
	select {
	case <-s.closed:
	case <-time.After(10 * time.Second):
		t.Fatal("stream never closed")
	}
}

func TestLogsStreamEnds(t *testing.T) {
	h, fl := newLogsHarness(t, incidentSnapshot(), 100, 24, true, nil)
	_, s := openOnNode(h, fl, "node-00007")
	h.feed(s, entries("node-00007", 10, inc, time.Second, 0), logview.Status{Phase: logview.Listing, Listed: 10})
	// The final status comes with io.EOF: shown, and Next is not called
	// again.
	s.fin <- logview.Status{Phase: logview.Done, Listed: 10, Unmapped: []string{"gone\x1b[2J"}}
	msg := <-h.msgs
	if b, ok := msg.(logsBatchMsg); !ok || !errors.Is(b.err, io.EOF) {
		t.Fatalf("got %#v", msg)
	}
	if cmd := h.send(msg); cmd != nil {
		t.Fatal("the view read on after the stream's end")
	}
	h.mustContain("■ window listed · 1 of 1 nodes unmapped: gone · listed 10")

	// A stream closed under the view (the Service shut down) says so.
	h.keys("esc")
	_, s2 := h.openLogs(fl)
	s2.Close()
	h.await("closed", func(msg tea.Msg) bool { b, ok := msg.(logsBatchMsg); return ok && b.err != nil })
	h.mustContain("✖ the log stream was closed")

	// All nodes unmapped: the empty view says why.
	h.keys("esc")
	_, s3 := h.openLogs(fl)
	h.feed(s3, nil, logview.Status{Phase: logview.Live, Unmapped: []string{"node-00007"}})
	h.mustContain("no node here has a log mapping")
}

// TestLogsListedThenTail checks the hand-over from listing to the tail
// when the phase change comes in a batch of its own: the cursor stays at
// the incident and the tail's entries count as new.
func TestLogsListedThenTail(t *testing.T) {
	h, fl := newLogsHarness(t, incidentSnapshot(), 80, 24, true, nil)
	_, s := openOnNode(h, fl, "node-00007")
	h.feed(s, entries("node-00007", 400, inc.Add(-5*time.Minute), time.Second, 0), logview.Status{Phase: logview.Listing, Listed: 400})
	h.feed(s, nil, logview.Status{Phase: logview.Live, Listed: 400})
	h.feed(s, entries("node-00007", 5, t0, time.Second, 0), logview.Status{Phase: logview.Live, Listed: 400, Tailed: 5})
	if e := h.selectedEntry(); !e.Time.Equal(inc) {
		t.Fatalf("the tail moved the cursor to %v", e.Time)
	}
	h.mustContain("301/405 PAUSED 5 new")
}

// An auto-healed node has left the catalog by the time someone looks at
// its incident: its logs are still found through the node as last seen.
func TestLogsForADepartedNode(t *testing.T) {
	nodes := synthNodes(40, t0.Add(-time.Hour))
	gone := nodes[len(nodes)-1]
	nodes = nodes[:len(nodes)-1]
	ev := []fleet.Event{
		{Seq: 1, Time: t0.Add(-3 * time.Minute), Kind: fleet.HealthChanged, Datacenter: gone.Datacenter, Node: gone.Name,
			CheckName: "http", CheckID: "service:web", From: fleet.HealthPassing, To: fleet.HealthCritical},
		{Seq: 2, Time: t0.Add(-40 * time.Second), Kind: fleet.NodeLeft, Datacenter: gone.Datacenter, Node: gone.Name, Last: gone},
	}
	h, fl := newLogsHarness(t, fleet.NewSnapshot(1, t0, nodes, connected(t0), ev), 100, 30, true, nil)
	want := gone.Meta["instance-id"]
	if want == "" {
		t.Fatal("synthetic node without an instance id")
	}
	h.keys(":events", "enter")
	for i, incident := range []time.Time{t0.Add(-40 * time.Second), t0.Add(-3 * time.Minute)} {
		if i > 0 {
			h.keys("esc", "j")
		}
		q, _ := h.openLogs(fl)
		if len(q.Nodes) != 1 || q.Nodes[0].Name != gone.Name || q.Nodes[0].Meta["instance-id"] != want {
			t.Fatalf("event %d: query nodes = %+v, want %s with instance-id %s", i, q.Nodes, gone.Name, want)
		}
		if !q.Incident.Equal(incident) {
			t.Fatalf("event %d: incident %v, want %v", i, q.Incident, incident)
		}
	}
}

// Keys of the tables (faults) do nothing in the Logs view or an expanded
// entry: they must not change the view behind.
func TestLogsKeysDoNotLeakToTheViewBehind(t *testing.T) {
	h, fl := newLogsHarness(t, incidentSnapshot(), 120, 30, true, nil)
	nodes := h.table()
	h.keys("f")
	if !nodes.faults {
		t.Fatal("f did not turn faults on in the nodes view")
	}
	_, s := h.openLogs(fl)
	h.feed(s, entries("node-00007", 5, inc, time.Second, 0), logview.Status{Phase: logview.Live, Listed: 5})
	h.keys("f")
	if !nodes.faults {
		t.Fatal("f in the Logs view changed the nodes view's faults toggle")
	}
	h.mustNotContain("[faults]")
	h.keys("enter", "f")
	if !nodes.faults || h.m.top().title() != "entry" {
		t.Fatalf("f in the entry: faults %v, top %v", nodes.faults, h.m.top().title())
	}
	h.mustContain("y copy", "esc back")
	h.mustNotContain("f faults", "r run")
	h.keys("esc", "esc")
	h.mustContain("[faults]")
}

// A silence inside the window is marked, so that it is not mistaken for
// entries not read or scrolled past; so is one between the window's start
// and its first entry once the window is listed.
func TestLogsMarksSilence(t *testing.T) {
	h, fl := newLogsHarness(t, incidentSnapshot(), 100, 40, true, nil)
	_, s := openOnNode(h, fl, "node-00007")
	before := entries("node-00007", 10, inc.Add(-4*time.Minute-40*time.Second), time.Second, 0) // 09:53:20…09:53:29
	after := entries("node-00007", 10, inc.Add(time.Minute), time.Second, 0)                    // 09:59:00…
	h.feed(s, append(before, after...), logview.Status{Phase: logview.Live, Listed: 20})
	lines := h.screenLines()
	at := -1
	for i, l := range lines {
		if strings.Contains(l, "···· no entries between 09:53:29 and 09:59:00") {
			at = i
		}
	}
	if at < 1 || !strings.HasPrefix(lines[at-1], "──── incident 09:58:00.000 UTC") || !strings.HasPrefix(lines[at+1], ">09:59:00.000 INFO") {
		t.Fatalf("silence not marked between the incident marker and the cursor's entry:\n%s", strings.Join(lines, "\n"))
	}
	if strings.Contains(strings.Join(lines, "\n"), "no entries between 09:53:00") {
		t.Fatal("20 s after the window's start marked as a silence")
	}

	// The window's start: marked once listed, not while listing.
	h.keys("esc")
	_, s2 := h.openLogs(fl)
	h.keys("g")
	h.feed(s2, entries("node-00007", 5, inc.Add(-2*time.Minute), time.Second, 0), logview.Status{Phase: logview.Listing, Listed: 5})
	h.mustNotContain("no entries between 09:53:00")
	h.feed(s2, nil, logview.Status{Phase: logview.Live, Listed: 5})
	h.mustContain("···· no entries between 09:53:00 and 09:56:00")
}

// The view opens on the incident marker, where i goes, also when the
// entries after the incident arrive with the tail after the window was
// listed.
func TestLogsOpensOnTheIncidentWhenItsEntriesComeWithTheTail(t *testing.T) {
	h, fl := newLogsHarness(t, incidentSnapshot(), 100, 30, true, nil)
	_, s := openOnNode(h, fl, "node-00007")
	h.feed(s, entries("node-00007", 60, inc.Add(-time.Minute), time.Second, 0), logview.Status{Phase: logview.Listing, Listed: 60})
	h.feed(s, nil, logview.Status{Phase: logview.Live, Listed: 60})
	// Nothing at or after the incident yet: the cursor is on the last
	// entry, the marker below it.
	if e := h.selectedEntry(); !e.Time.Equal(inc.Add(-time.Second)) {
		t.Fatalf("cursor at %v", e.Time)
	}
	tail := entries("node-00007", 5, inc.Add(500*time.Millisecond), time.Second, 0)
	h.feed(s, tail, logview.Status{Phase: logview.Live, Listed: 60, Tailed: 5})
	if e := h.selectedEntry(); e != tail[0] {
		t.Fatalf("cursor at %v, want the first entry after the incident %v", e.Time, tail[0].Time)
	}
	lines := h.screenLines()
	for i, l := range lines {
		if strings.HasPrefix(l, ">") && !strings.HasPrefix(lines[i-1], "──── incident") {
			t.Fatalf("the cursor is not right under the incident marker:\n%s", strings.Join(lines, "\n"))
		}
	}
	h.mustContain("61/65 PAUSED")
	h.mustNotContain("new")
	// i goes to the same place.
	h.keys("g", "i")
	if e := h.selectedEntry(); e != tail[0] {
		t.Fatalf("i went to %v", e.Time)
	}
	// From now on what arrives is new.
	h.feed(s, entries("node-00007", 2, t0, time.Second, 0), logview.Status{Phase: logview.Live, Tailed: 7})
	h.mustContain("PAUSED 2 new")
}

// A window that spans days labels its histogram's axis with dates.
func TestLogsWideWindowAxisShowsDates(t *testing.T) {
	h, fl := newLogsHarness(t, incidentSnapshot(), 100, 30, true, nil)
	_, s := openOnNode(h, fl, "node-00007")
	h.feed(s, entries("node-00007", 5, inc, time.Second, 0), logview.Status{Phase: logview.Live})
	if hl := h.screenLines()[3]; !strings.HasPrefix(hl, "  09:53:00 ") {
		t.Fatalf("±5m axis %q", hl)
	}
	h.hit("9")
	h.awaitOpened()
	_, s = fl.last(t)
	h.feed(s, entries("node-00007", 5, inc, time.Hour, 0), logview.Status{Phase: logview.Live})
	if hl := h.screenLines()[3]; !strings.HasPrefix(hl, "  Mar 03 09:58 ") || !strings.Contains(hl, " Mar 05 09:58  errors 0") {
		t.Fatalf("±24h axis %q", hl)
	}
	h.hit("8") // ±12h crosses midnight too
	h.awaitOpened()
	if hl := h.screenLines()[3]; !strings.HasPrefix(hl, "  Mar 03 21:58 ") || !strings.Contains(hl, " Mar 04 21:58  errors 0") {
		t.Fatalf("±12h axis %q", hl)
	}
}
