package tui

import (
	"errors"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/fleetdeck/fleetdeck/fleet"
	"github.com/fleetdeck/fleetdeck/logview"
)

// hostileStrings are what an attacker who can register a node could put
// in its name, meta, tags or check output.
func hostileStrings() []string {
	return []string{
		"title\x1b]0;pwned\x07",
		"clear\x1b[2J\x1b[H",
		"csi\x1b[31;1mred\x1b[0m\x1b[?1049l",
		"clip\x1b]52;c;Y3VybCBodHRwOi8vZXZpbCB8IHNo\x07",
		"clip-st\x1b]52;c;eA==\x1b\\",
		"c1\u009b2J\u009d0;x\u009c",
		"rtl\u202egnp.exe",
		"iso\u2067late\u2069",
		"bell\x07bs\x08del\x7f",
		"emoji-🔥🚀👩\u200d💻",
		"cjk-节点服务器東京リージョン",
		"zalgo-\u0301\u0302e\u0301\u0302\u0303",
		strings.Repeat("L", 500),
		strings.Repeat("界", 500),
		"tab\tnew\nline\rcr",
		"\xff\xfeinvalid",
	}
}

// hostileSnapshot builds nodes whose every Consul-sourced string is hostile.
func hostileSnapshot() *fleet.Snapshot {
	hs := hostileStrings()
	var nodes []*fleet.Node
	var events []fleet.Event
	for i, s := range hs {
		other := hs[(i+3)%len(hs)]
		n := &fleet.Node{
			Name:       s,
			Datacenter: "dc1",
			Address:    other,
			Meta:       map[string]string{s: other, "asg": s, "evil\x1b[2J": "v\x1b]0;x\x07"},
			Services: []fleet.Service{{ID: s, Name: s, Tags: []string{other, s}, Port: 80},
				{ID: "web", Name: "web", Tags: []string{"\x1b[5m"}}},
			Checks:     []fleet.Check{{ID: s, Name: other, Status: fleet.HealthCritical, Output: s + "\n" + other + "\n" + strings.Repeat("out ", 200), ServiceID: s, ServiceName: s}},
			Health:     fleet.HealthCritical,
			Group:      s,
			InstanceID: other,
			Zone:       s,
			Image:      other,
			ChangedAt:  t0.Add(time.Second),
		}
		nodes = append(nodes, n)
		events = append(events, fleet.Event{
			Seq: uint64(i + 1), Time: t0, Kind: fleet.HealthChanged, Datacenter: "dc1", Node: s, Group: s,
			CheckID: s, CheckName: other, From: fleet.HealthPassing, To: fleet.HealthCritical, Output: other,
		}, fleet.Event{
			Seq: uint64(100 + i), Time: t0, Kind: fleet.RolesChanged, Datacenter: "dc1", Node: s,
			OldRoles: []string{s}, NewRoles: []string{other},
		})
	}
	conn := []fleet.ConnState{{Datacenter: "dc1", Status: fleet.Degraded, LastError: "GET \x1b]0;pwned\x07 \u202eboom", LastSuccess: t0}}
	return fleet.NewSnapshot(1, t0, nodes, conn, events)
}

// TestHostileInputRendersSafely renders every view over hostile data, in
// colour and without, small and large, with the cursor on every row, and
// checks (in checkScreen) that no escape sequence or control other than
// the console's own styling gets through and that no line is wider than
// the terminal.
func TestHostileInputRendersSafely(t *testing.T) {
	snap := hostileSnapshot()
	for _, size := range [][2]int{{80, 24}, {200, 50}, {40, 10}} {
		for _, noColor := range []bool{true, false} {
			h := newHarnessOpts(t, snap, size[0], size[1], noColor)
			h.clk.add(time.Second) // inside the changed highlight
			for _, cmd := range []string{":nodes", ":roles", ":groups", ":events"} {
				h.keys(cmd, "enter")
				n := len(h.table().rows)
				if n == 0 {
					t.Fatalf("%s: no rows", cmd)
				}
				for i := 0; i < n; i++ {
					h.screen()
					// Open whatever the row leads to and render it too.
					h.keys("enter")
					h.screen()
					// The prompt starts with the drilled-down filter.
					h.keys("/")
					h.screen()
					h.keys("esc", "G")
					h.screen()
					if len(h.m.stack) > 1 {
						h.keys("esc")
					}
					h.keys("j")
				}
				h.keys("s", "S")
				h.screen()
			}
			// Typing and pasting hostile text into the prompt.
			h.keys(":nodes", "enter", "/")
			h.send(tea.PasteMsg{Content: "\x1b]52;c;eA==\x07" + strings.Repeat("界", 100)})
			h.screen()
			h.keys("esc", "?")
			h.screen()
		}
	}
}

func TestHostileNamesStillFilterable(t *testing.T) {
	h := newHarness(t, hostileSnapshot(), 120, 40)
	h.keys("/", "name:节点", "enter")
	if n := len(h.table().rows); n != 1 {
		t.Fatalf("CJK search matched %d", n)
	}
	h.keys("esc", "/", "rtlgnp name:rtl", "enter")
	if n := len(h.table().rows); n != 1 {
		t.Fatalf("search through stripped RTL override matched %d", n)
	}
	s := h.mustContain("rtlgnp.exe")
	if strings.Contains(s, "pwned") {
		t.Fatal("OSC payload shown")
	}
	// A 500-character name is cut to its column with an ellipsis.
	h.keys("esc", "/", "name:LLLLLLLLLL", "enter")
	h.mustContain("LLLL…")
	h.keys("enter")
	h.mustContain("Node LLLL", "…")
}

// hostileEntries are log entries whose every string is hostile, for the
// nodes of hostileSnapshot: escape sequences, a 1 MB line, invalid UTF-8,
// newlines, wide and right-to-left text.
func hostileEntries(at time.Time) []*logview.Entry {
	hs := hostileStrings()
	hs = append(hs, strings.Repeat("\x1b[31mM", 1<<20/6), "a\nb\r\nc\x00d", "\xc3\x28\xa0\xa1\xe2\x28\xa1")
	var out []*logview.Entry
	for i, s := range hs {
		other := hs[(i+5)%len(hs)]
		out = append(out, &logview.Entry{
			InsertID:       s,
			Project:        other,
			LogName:        "projects/p/logs/" + s,
			Time:           at.Add(time.Duration(i) * time.Second),
			Received:       at.Add(time.Duration(i) * time.Second),
			Severity:       logview.Severity(i % 9 * 100),
			Node:           hostileStrings()[i%len(hostileStrings())],
			ResourceType:   other,
			ResourceLabels: map[string]string{s: other},
			Labels:         map[string]string{other: s, "k\x1b[2J": "v\x1b]0;x\x07"},
			Text:           s + " " + other,
			Payload:        "{\n  \"message\": \"" + s + "\",\n  \"other\": \"" + other + "\"\n}",
		})
	}
	return out
}

// TestHostileLogsRenderSafely renders the Logs view of a role whose
// nodes and entries are hostile, in every mode, and every entry expanded.
func TestHostileLogsRenderSafely(t *testing.T) {
	for _, size := range [][2]int{{80, 24}, {200, 50}, {40, 10}} {
		for _, noColor := range []bool{true, false} {
			h, fl := newLogsHarness(t, hostileSnapshot(), size[0], size[1], noColor, nil)
			h.keys(":roles", "enter", "/", "role:web", "enter")
			q, s := h.openLogs(fl)
			if len(q.Nodes) < 2 {
				t.Fatalf("role web has %d nodes", len(q.Nodes))
			}
			es := hostileEntries(q.Incident.Add(-10 * time.Second))
			h.feed(s, es, logview.Status{Phase: logview.Reconnecting, Err: errors.New("tail \x1b]0;pwned\x07 ended"),
				RetryAt: t0.Add(time.Second), Suppressed: map[string]int64{"\x1b[2Jreason": 3}, Unmapped: []string{"\u202eevil"}})
			h.screen()
			for _, keys := range [][]string{{"w"}, {"t"}, {"t"}, {"t"}, {"w"}, {"v"}, {"v", "v", "v"}} {
				h.keys(keys...)
				h.screen()
			}
			// A hostile search, typed and pasted.
			h.keys("/")
			h.send(tea.PasteMsg{Content: "\x1b[31mM"})
			h.screen()
			h.keys("enter", "n", "N")
			h.screen()
			h.keys("g")
			for range es {
				h.keys("enter")
				h.screen()
				h.keys("G")
				h.screen()
				if cmd := h.send(keyMsg("y")); cmd != nil {
					if text, _ := entryJSON(h.entry().entry); strings.ContainsAny(text, "\x1b\x07\x7f") {
						t.Fatalf("copy holds control bytes: %q", text[:min(len(text), 200)])
					}
				}
				h.keys("esc", "j")
				h.screen()
			}
			h.keys("@", "\x1b[2J", "enter")
			h.screen()
		}
	}
}
