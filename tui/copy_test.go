package tui

import (
	"context"
	"encoding/base64"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fleetdeck/fleetdeck/fleet"
	"github.com/fleetdeck/fleetdeck/provision"
)

// osc52 matches a clipboard write as a terminal receives it: ESC ] 52 ;
// c ; base64, ended by BEL or ST.
var osc52 = regexp.MustCompile(`\x1b\]52;c;([A-Za-z0-9+/=]*)(?:\x07|\x1b\\)`)

// clipboardWrites decodes every OSC 52 clipboard write in raw, in order.
func clipboardWrites(t *testing.T, raw []byte) []string {
	t.Helper()
	var out []string
	for _, m := range osc52.FindAllSubmatch(raw, -1) {
		b, err := base64.StdEncoding.DecodeString(string(m[1]))
		if err != nil {
			t.Fatalf("OSC 52 payload %q: %v", m[1], err)
		}
		out = append(out, string(b))
	}
	return out
}

// waitClipboard waits until the program has written n clipboard writes,
// and returns them.
func (term *terminal) waitClipboard(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		w := clipboardWrites(t, term.rawBytes())
		if len(w) >= n {
			return w
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d clipboard writes, want %d: %q", len(w), n, w)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// copyNodes are three nodes: a plain one, one with a hostile name, one
// without an instance id.
func copyNodes(now time.Time) []*fleet.Node {
	nodes := synthNodes(3, now.Add(-time.Hour))
	for i, n := range nodes {
		n.Datacenter = "dc1"
		n.InstanceID = "i-0000000" + string(rune('a'+i))
	}
	nodes[1].Name = "node-00001\nrm -rf ~\x1b]52;c;ZXZpbA==\x07\u202eexe.txt"
	nodes[2].InstanceID = ""
	return nodes
}

// TestEndToEndCopy: y then n, y, a or i puts the node's name, address or
// instance id on the clipboard — the bytes the terminal gets (an
// emulator's screen would swallow OSC 52).
func TestEndToEndCopy(t *testing.T) {
	for _, ro := range []bool{false, true} {
		ctx, cancel := context.WithCancel(context.Background())
		now := time.Now()
		nodes := copyNodes(now)
		pub := fleet.NewPublisher(fleet.NewSnapshot(1, now, nodes, connected(now), nil))
		term, done := runProgramSize(ctx, New(ctx, Options{Feed: pub, NoColor: true, ReadOnly: ro}), 160, 30)
		term.waitFor(t, "node-00000", "nodes 1/3")
		if len(clipboardWrites(t, term.rawBytes())) != 0 {
			t.Fatal("clipboard written before any y")
		}
		n0 := nodes[0]
		want := []string{}
		for _, c := range []struct{ key, value, flash string }{
			{"a", n0.Address, "copied the address " + n0.Address},
			{"n", n0.Name, "copied the name " + n0.Name},
			{"y", n0.Name, "copied the name " + n0.Name},
			{"i", n0.InstanceID, "copied the instance id " + n0.InstanceID},
		} {
			term.emu.SendText("y")
			term.waitFor(t, "copy from node-00000:  n/y name  a address  i instance  esc cancel")
			term.emu.SendText(c.key)
			want = append(want, c.value)
			if got := term.waitClipboard(t, len(want)); !slices.Equal(got, want) {
				t.Fatalf("read-only %v: y %s: clipboard writes %q, want %q", ro, c.key, got, want)
			}
			term.waitFor(t, c.flash)
		}

		// Any other key closes the menu and copies nothing; the key after
		// is the view's again.
		term.emu.SendText("y")
		term.waitFor(t, "copy from node-00000:")
		term.emu.SendText("z")
		term.waitFor(t, "copied nothing (y then n, a or i)")
		term.emu.SendText("y")
		term.waitFor(t, "copy from node-00000:")
		// q cancels it too: j then moves the cursor (in the menu it would
		// have closed it instead). (esc is tested in TestCopyMenuKeys: on
		// a terminal, esc and j sent together read as alt+j.)
		term.emu.SendText("q")
		term.emu.SendText("j")
		term.waitFor(t, "nodes 2/3")

		// A hostile name: the payload is the sanitised name, one line, no
		// escape sequence, no bidi override.
		term.emu.SendText("y")
		term.waitFor(t, "copy from "+sanitize(nodes[1].Name)+":")
		term.emu.SendText("n")
		want = append(want, sanitize(nodes[1].Name))
		got := term.waitClipboard(t, len(want))
		if !slices.Equal(got, want) {
			t.Fatalf("hostile name: clipboard writes %q, want %q", got, want)
		}
		if v := got[len(got)-1]; strings.ContainsAny(v, "\n\x1b\x07\u202e") || !strings.HasPrefix(v, "node-00001") {
			t.Fatalf("hostile name copied as %q", v)
		}
		if strings.Contains(string(term.rawBytes()), base64.StdEncoding.EncodeToString([]byte(nodes[1].Name))) {
			t.Fatal("the raw hostile name was written as a clipboard payload")
		}
		term.waitFor(t, "control characters removed")

		// No instance id: nothing copied, and the footer says so.
		term.emu.SendText("j")
		term.waitFor(t, "nodes 3/3")
		term.emu.SendText("y")
		term.waitFor(t, "copy from node-00002:")
		term.emu.SendText("i")
		term.waitFor(t, "node node-00002 has no instance id: nothing copied")
		// A copy after it is the next write: none was made for i.
		term.emu.SendText("y")
		term.waitFor(t, "copy from node-00002:")
		term.emu.SendText("a")
		want = append(want, nodes[2].Address)
		if got := term.waitClipboard(t, len(want)); !slices.Equal(got, want) {
			t.Fatalf("after a node without instance id: clipboard writes %q, want %q", got, want)
		}
		term.quit(t, done, cancel)
	}
}

// TestCopyMenuKeys drives the model directly: esc cancels the menu
// without a message, any other key closes it saying nothing was copied,
// and neither returns a command (no clipboard write).
func TestCopyMenuKeys(t *testing.T) {
	h := newHarness(t, synthSnapshot(3), 160, 30)
	h.keys("y")
	h.mustContain("copy from node-00000:")
	if cmd := h.send(keyMsg("esc")); cmd != nil {
		t.Fatal("esc in the copy menu returned a command")
	}
	if h.m.overlay != nil {
		t.Fatal("esc did not close the copy menu")
	}
	h.mustNotContain("copy from node-00000:", "copied nothing")
	h.keys("y")
	if cmd := h.send(keyMsg("z")); cmd != nil || h.m.overlay != nil {
		t.Fatal("z in the copy menu copied or left it open")
	}
	h.mustContain("copied nothing (y then n, a or i)")
	h.keys("j")
	if h.table().cursor != 1 {
		t.Fatalf("j after the menu closed: cursor %d", h.table().cursor)
	}
}

// TestRunBoardHostCopyAndSSH: a host row of the run board that is a node
// of the fleet has y and x as a node row has; the task and output panes,
// and a host that is no node (an alias), do not.
func TestRunBoardHostCopyAndSSH(t *testing.T) {
	for _, ro := range []bool{false, true} {
		p := newFakeProv()
		seedRuns(p)
		alias := "fd_weird_0123abcd"
		p.views["r1"].State.HostOrder = append(p.views["r1"].State.HostOrder, alias)
		p.views["r1"].State.Hosts[alias] = &provision.HostState{Name: alias, Status: provision.HostOK}
		h := newProvHarness(t, synthSnapshot(10), p, ro, 200, 30)
		h.do(h.m.openRun("r1")())
		rs := h.runView()
		if rs.acts.has("y") != true || rs.acts.has("x") == ro {
			t.Fatalf("read-only %v: host row: y %v x %v", ro, rs.acts.has("y"), rs.acts.has("x"))
		}
		s := h.mustContain("y copy")
		if strings.Contains(s, "x ssh") == ro {
			t.Fatalf("read-only %v: footer and x ssh:\n%s", ro, s)
		}
		// node-00002 is in dc2: the board's host name resolves across
		// datacenters.
		h.press("down", "down", "y")
		h.mustContain("copy from node-00002:")
		if cmd := h.send(keyMsg("a")); cmd == nil {
			t.Fatal("y a on a host row copied nothing")
		}
		h.mustContain("copied the address 10.0.0.2")
		if !ro {
			if cmd := h.send(keyMsg("x")); cmd == nil {
				t.Fatal("x on a host row started nothing")
			}
		}
		// The alias row (last): no node, no y or x.
		h.press("end")
		if rs.acts.has("y") || rs.acts.has("x") {
			t.Fatalf("read-only %v: y/x live on a host that is no node", ro)
		}
		h.press("home")
		h.do(special("tab"))
		if rs.acts.has("y") || rs.acts.has("x") {
			t.Fatalf("read-only %v: y/x live in the tasks pane", ro)
		}
	}
}

func TestHostNode(t *testing.T) {
	now := time.Now()
	nodes := synthNodes(6, now) // node-00002 and node-00005 are in dc2
	twin := *nodes[0]
	twin.Datacenter = "dc2"
	nodes = append(nodes, &twin)
	gone := &fleet.Node{Name: "gone-1", Datacenter: "dc1", Address: "10.9.9.9"}
	snap := fleet.NewSnapshot(1, now, nodes, connected(now), []fleet.Event{
		{Seq: 1, Time: now, Kind: fleet.NodeLeft, Datacenter: "dc1", Node: "gone-1", Last: gone},
	})
	h := newHarness(t, snap, 120, 30)
	s := h.m.shared
	for _, c := range []struct {
		host, key string
	}{
		{"node-00001", "dc1/node-00001"},
		{"node-00002", "dc2/node-00002"},
		{"node-00000.node.dc1.consul", "dc1/node-00000"},
		{"node-00000.node.dc2.consul", "dc2/node-00000"},
		{"node-00000", ""}, // in two datacenters: ambiguous
		{"gone-1", "dc1/gone-1"},
		{"fd_node_0123abcd", ""},
		{"node-00001.node.dc9.consul", ""},
		{"nope", ""},
	} {
		n := s.hostNode(c.host)
		got := ""
		if n != nil {
			got = n.Key()
		}
		if got != c.key {
			t.Errorf("hostNode(%q) = %q, want %q", c.host, got, c.key)
		}
	}
}
