package tui

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
	"go.uber.org/goleak"

	"github.com/fleetdeck/fleetdeck/fleet"
	"github.com/fleetdeck/fleetdeck/provision"
)

func TestMain(m *testing.M) {
	// Runs are supervised by re-executing the test binary (see
	// e2e_manager_test.go): that process must become the supervisor.
	provision.SuperviseMain()
	goleak.VerifyTestMain(m)
}

// t0 is the fixed "now" of model tests.
var t0 = time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)

// clock is a settable time source for Options.Now.
type clock struct{ t time.Time }

func (c *clock) now() time.Time      { return c.t }
func (c *clock) add(d time.Duration) { c.t = c.t.Add(d) }

var testRoles = []string{"web", "api", "db", "cache", "queue", "search", "auth", "metrics"}
var testGroups = []string{"web-asg", "api-asg", "db-mig", "worker-mig"}

// synthNodes builds n nodes over two datacenters, 8 roles, 4 groups and 2
// zones, with a sprinkling of warning, critical and maintenance health.
func synthNodes(n int, changed time.Time) []*fleet.Node {
	nodes := make([]*fleet.Node, n)
	for i := range n {
		dc := "dc1"
		if i%3 == 2 {
			dc = "dc2"
		}
		g := testGroups[i%len(testGroups)]
		zone := "zone-a"
		if i%2 == 1 {
			zone = "zone-b"
		}
		role1, role2 := testRoles[i%len(testRoles)], testRoles[(i/8)%len(testRoles)]
		h := fleet.HealthPassing
		switch {
		case i%97 == 5:
			h = fleet.HealthMaintenance
		case i%50 == 7:
			h = fleet.HealthCritical
		case i%20 == 3:
			h = fleet.HealthWarning
		}
		node := &fleet.Node{
			Name:       fmt.Sprintf("node-%05d", i),
			Datacenter: dc,
			Address:    fmt.Sprintf("10.%d.%d.%d", i/65536, (i/256)%256, i%256),
			Meta: map[string]string{
				"asg": g, "zone": zone, "instance-id": fmt.Sprintf("i-%08x", i), "image": "img-2026-03",
				"env": []string{"prod", "staging"}[i%2],
			},
			Services: []fleet.Service{
				{ID: role1, Name: role1, Tags: []string{"v1"}, Port: 8000 + i%8},
				{ID: role2 + "-2", Name: role2, Tags: []string{"canary"}, Port: 9000},
			},
			Checks: []fleet.Check{
				{ID: "serfHealth", Name: "Serf Health Status", Status: fleet.HealthPassing, Output: "Agent alive and reachable"},
				{ID: "service:" + role1, Name: "http", Status: h, Output: "HTTP GET /health: 200 OK", ServiceID: role1, ServiceName: role1},
			},
			Health:     h,
			Group:      g,
			InstanceID: fmt.Sprintf("i-%08x", i),
			Zone:       zone,
			Image:      "img-2026-03",
			ChangedAt:  changed,
		}
		nodes[i] = node
	}
	return nodes
}

// connected returns connected states for dc1 and dc2 at time at.
func connected(at time.Time) []fleet.ConnState {
	return []fleet.ConnState{
		{Datacenter: "dc1", Status: fleet.Connected, LastSuccess: at, KnownLeader: true},
		{Datacenter: "dc2", Status: fleet.Connected, LastSuccess: at, KnownLeader: true},
	}
}

// synthSnapshot is a snapshot of n synthetic nodes taken at t0.
func synthSnapshot(n int) *fleet.Snapshot {
	return fleet.NewSnapshot(1, t0, synthNodes(n, t0.Add(-time.Hour)), connected(t0), nil)
}

// harness drives a Model through Update/View like Bubble Tea would.
type harness struct {
	t   *testing.T
	m   *Model
	clk *clock
	pub *fleet.Publisher
	w   int
	h   int
	// ctx is the console's context; msgs carries the messages of the
	// commands run with run.
	ctx    context.Context
	cancel context.CancelFunc
	msgs   chan tea.Msg
}

// newHarness returns a NO_COLOR model of size w x h showing snap.
func newHarness(t *testing.T, snap *fleet.Snapshot, w, h int) *harness {
	t.Helper()
	return newHarnessOpts(t, snap, w, h, true)
}

func newHarnessOpts(t *testing.T, snap *fleet.Snapshot, w, h int, noColor bool) *harness {
	t.Helper()
	return newHarnessWith(t, snap, w, h, noColor, nil)
}

// newHarnessWith is newHarnessOpts with more options set by opt.
func newHarnessWith(t *testing.T, snap *fleet.Snapshot, w, h int, noColor bool, opt func(*Options)) *harness {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	clk := &clock{t: t0}
	pub := fleet.NewPublisher(snap)
	o := Options{Feed: pub, NoColor: noColor, Now: clk.now}
	if opt != nil {
		opt(&o)
	}
	m := New(ctx, o)
	h0 := &harness{t: t, m: m, clk: clk, pub: pub, w: w, h: h, ctx: ctx, cancel: cancel, msgs: make(chan tea.Msg, 64)}
	h0.send(tea.WindowSizeMsg{Width: w, Height: h})
	return h0
}

// send delivers one message and returns the command Update produced.
func (h *harness) send(msg tea.Msg) tea.Cmd {
	h.t.Helper()
	m, cmd := h.m.Update(msg)
	if m != h.m {
		h.t.Fatalf("Update returned a different model")
	}
	return cmd
}

// publish delivers a new snapshot as the feed command would.
func (h *harness) publish(s *fleet.Snapshot) {
	h.t.Helper()
	h.pub.Publish(s)
	h.send(snapshotMsg{s})
}

// keyMsg builds the key press Bubble Tea v2 would deliver for name: a
// special key name ("enter", "esc", "up", ...) or literal text.
func keyMsg(name string) tea.KeyPressMsg {
	special := map[string]rune{
		"enter": tea.KeyEnter, "esc": tea.KeyEscape, "up": tea.KeyUp, "down": tea.KeyDown,
		"pgup": tea.KeyPgUp, "pgdown": tea.KeyPgDown, "home": tea.KeyHome, "end": tea.KeyEnd,
		"backspace": tea.KeyBackspace, "space": tea.KeySpace,
	}
	if r, ok := special[name]; ok {
		k := tea.KeyPressMsg{Code: r}
		if name == "space" {
			k.Text = " "
		}
		return k
	}
	if name == "ctrl+c" {
		return tea.KeyPressMsg{Code: 'c', Mod: tea.ModCtrl}
	}
	if name == "ctrl+s" {
		return tea.KeyPressMsg{Code: 's', Mod: tea.ModCtrl}
	}
	r := []rune(name)[0]
	return tea.KeyPressMsg{Code: r, Text: name}
}

// keys presses each key in turn. Multi-character strings are typed one
// rune at a time unless they name a special key.
func (h *harness) keys(ks ...string) {
	h.t.Helper()
	for _, k := range ks {
		if len([]rune(k)) > 1 && k != "enter" && k != "esc" && k != "up" && k != "down" &&
			k != "pgup" && k != "pgdown" && k != "home" && k != "end" && k != "backspace" && k != "space" && k != "ctrl+c" && k != "ctrl+s" {
			for _, r := range k {
				if r == ' ' {
					h.send(keyMsg("space"))
				} else {
					h.send(keyMsg(string(r)))
				}
			}
			continue
		}
		h.send(keyMsg(k))
	}
}

// screen renders the model and returns its text without the console's
// own styling sequences; it fails the test if any other escape remains or
// a line is wider than the terminal or there are too many lines.
func (h *harness) screen() string {
	h.t.Helper()
	v := h.m.View()
	if !v.AltScreen {
		h.t.Fatal("View must use the alt screen")
	}
	if v.MouseMode != tea.MouseModeNone {
		h.t.Fatal("View must not capture the mouse")
	}
	return checkScreen(h.t, h.m, v.Content, h.w, h.h)
}

// checkScreen strips m's own styles from content and asserts that no
// escape byte is left and that the layout fits w x h.
func checkScreen(t *testing.T, m *Model, content string, w, h int) string {
	t.Helper()
	// Styles are concatenations of single SGR sequences: strip those.
	var seqs []string
	for _, s := range m.st.all() {
		for _, part := range strings.SplitAfter(s, "m") {
			if part != "" {
				seqs = append(seqs, part)
			}
		}
	}
	plain := content
	for _, s := range seqs {
		plain = strings.ReplaceAll(plain, s, "")
	}
	// Composite prefixes are concatenations of the above; anything else
	// containing ESC came from data.
	if i := strings.IndexByte(plain, 0x1b); i >= 0 {
		t.Fatalf("escape sequence in rendered screen at %d: %q", i, plain[max(0, i-20):min(len(plain), i+40)])
	}
	for _, c := range plain {
		if c < 0x20 && c != '\n' || c == 0x7f || (c >= 0x80 && c <= 0x9f) {
			t.Fatalf("control character %U in rendered screen", c)
		}
		if (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069) || c == 0x200e || c == 0x200f || c == 0x061c {
			t.Fatalf("bidi control %U in rendered screen", c)
		}
	}
	lines := strings.Split(content, "\n")
	if len(lines) > h {
		t.Fatalf("screen has %d lines, terminal has %d", len(lines), h)
	}
	for i, l := range lines {
		if lw := ansi.StringWidth(l); lw > w {
			t.Fatalf("line %d is %d cells wide, terminal is %d: %q", i, lw, w, ansi.Strip(l))
		}
	}
	return plain
}

// rowNames returns the node/role/group names (first cell) of the visible
// table rows.
func (h *harness) rowNames() []string {
	h.t.Helper()
	var out []string
	for _, r := range h.table().visible() {
		out = append(out, r.cells[0])
	}
	return out
}

// table returns the table view on top, or fails.
func (h *harness) table() *tableView {
	h.t.Helper()
	t, ok := h.m.top().(*tableView)
	if !ok {
		h.t.Fatalf("top view is %s, not a table", h.m.top().title())
	}
	return t
}

// text returns the text view on top (node detail, help, failure), or
// fails.
func (h *harness) text() *textView {
	h.t.Helper()
	t, ok := h.m.top().(*textView)
	if !ok {
		h.t.Fatalf("top view is %s, not a text view", h.m.top().title())
	}
	return t
}

// entry returns the expanded log entry on top, or fails.
func (h *harness) entry() *entryView {
	h.t.Helper()
	e, ok := h.m.top().(*entryView)
	if !ok {
		h.t.Fatalf("top view is %s, not a log entry", h.m.top().title())
	}
	return e
}

// detailNode returns the node a node detail view on top shows.
func (h *harness) detailNode() string {
	h.t.Helper()
	v := h.text()
	if v.name != "node" {
		h.t.Fatalf("top view is %s, not a node detail", v.name)
	}
	name, _, _ := strings.Cut(strings.TrimPrefix(v.heading(), "Node "), " (")
	return name
}

// runView returns the run view on top, or fails.
func (h *harness) runView() *runView {
	h.t.Helper()
	r, ok := h.m.top().(*runView)
	if !ok {
		h.t.Fatalf("top view is %s, not a run view", h.m.top().title())
	}
	return r
}

// preview returns the preview on top, or fails.
func (h *harness) preview() *previewView {
	h.t.Helper()
	p, ok := h.m.top().(*previewView)
	if !ok {
		h.t.Fatalf("top view is %s, not a preview", h.m.top().title())
	}
	return p
}

// mustContain fails unless the screen contains every string.
func (h *harness) mustContain(subs ...string) string {
	h.t.Helper()
	s := h.screen()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			h.t.Fatalf("screen does not contain %q:\n%s", sub, s)
		}
	}
	return s
}

// mustNotContain fails if the screen contains any of the strings.
func (h *harness) mustNotContain(subs ...string) {
	h.t.Helper()
	s := h.screen()
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			h.t.Fatalf("screen contains %q:\n%s", sub, s)
		}
	}
}
