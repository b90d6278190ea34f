package tui

import (
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/fleetdeck/fleetdeck/logview"
	"github.com/fleetdeck/fleetdeck/roles"
)

// liveKeyClashes returns the keys that more than one live action of a
// registry is bound to (only one of them could ever run: match takes the
// first), as "key: first / second".
func liveKeyClashes(a *keyActions) []string {
	if a == nil {
		return nil
	}
	seen := map[string]string{}
	var out []string
	for i := range a.list {
		x := &a.list[i]
		if !x.live() {
			continue
		}
		for _, k := range x.keys {
			name := x.keyLabel() + " " + x.short + " " + x.desc
			if prev, ok := seen[k]; ok {
				out = append(out, k+": "+prev+" / "+name)
				continue
			}
			seen[k] = name
		}
	}
	return out
}

// TestNoKeyBoundTwice walks every view and modal screen the console has —
// the six tables, node detail, help, Logs and a log entry, the run view
// in each pane, failure detail, the launch form, the preview, and the
// overlays (prompts, the copy menu, a y/n question) — in a normal and a
// read-only console, and checks after every key that no key is bound to
// two live actions of the component that has the keys.
func TestNoKeyBoundTwice(t *testing.T) {
	for _, ro := range []bool{false, true} {
		p := newFakeProv()
		seedRuns(p)
		fr := newFakeRoles(t)
		d := roles.Desired{Node: "node-00000", Datacenter: "dc1", Roles: []string{"api"}, Generation: 1, When: t0, Who: "a@b", Reason: "r"}
		fr.records["dc1/node-00000"], fr.hist["dc1/node-00000"] = d, []roles.Desired{d}
		h := newRolesHarness(t, synthSnapshot(10), p, fr, ro, 160, 40)
		h.m.logs = &fakeLogs{seed: []logview.Batch{{Entries: entries("node-00000", 5, t0, 1e9, 10), Status: logview.Status{Phase: logview.Live, Listed: 5}}}}
		seen := map[string]bool{}
		check := func(step string) {
			t.Helper()
			c := h.m.top()
			keys := c.keys()
			name := c.title()
			if h.m.overlay != nil {
				keys, name = h.m.overlay.keys(), h.m.overlay.title()
			}
			if rs, ok := c.(*runView); ok && h.m.overlay == nil {
				name += "/" + paneName(rs.pane)
			}
			seen[name] = true
			if clashes := liveKeyClashes(keys); len(clashes) > 0 {
				t.Errorf("read-only %v, %s (after %s): keys bound twice: %q", ro, name, step, clashes)
			}
		}
		check("start")
		for _, step := range [][]string{
			{"y"}, {"esc"}, {"/"}, {"esc"}, {":"}, {"esc"}, {"@"}, {"esc"},
			{"space"}, {"enter"}, {"y"}, {"esc"}, {"?"}, {"esc"}, {"l"}, {"enter"}, {"esc"}, {"esc"}, {"esc"},
			{"r"}, {"ctrl+s"}, {"esc"}, {"esc"},
			{":roles", "enter"}, {"enter"}, {":groups", "enter"}, {":events", "enter"}, {":alerts", "enter"}, {":locks", "enter"},
			{":runs", "enter"}, {"down"}, {"down"}, {"enter"}, {"enter"}, {"esc"}, {"tab"}, {"tab"}, {"esc"}, {"up"}, {"enter"}, {"c"}, {"n"},
			// Roles: the form (each line), its preview, maintenance, the
			// history and a revert.
			{":nodes", "enter"}, {"o"}, {"?"}, {"esc"}, {"+"}, {"down"}, {"space"}, {"tab"}, {"tab"}, {"tab"}, {"tab"}, {"r"},
			{"ctrl+s"}, {"?"}, {"esc"}, {"esc"}, {"esc"},
			{"m"}, {"esc"}, {"enter"}, {"h"}, {"?"}, {"esc"}, {"enter"}, {"esc"}, {"esc"}, {"esc"},
			{"ctrl+c"}, {"n"},
		} {
			for _, k := range step {
				if k == "tab" || k == "ctrl+s" || k == "shift+tab" {
					h.do(special(k))
				} else if len(k) > 1 && strings.HasPrefix(k, ":") {
					h.keys(k)
				} else {
					h.press(k)
				}
				check(strings.Join(step, " "))
			}
		}
		var got []string
		for n := range seen {
			got = append(got, n)
		}
		sort.Strings(got)
		want := []string{"nodes", "copy", "prompt", "node", "help", "logs", "entry", "roles", "groups", "events", "alerts", "locks", "runs",
			"run/hosts", "run/tasks", "run/output", "failure", "history"}
		if !ro {
			want = append(want, "launch", "preview", "question", "assign", "change", "maint", "revert")
		}
		for _, w := range want {
			if !slices.Contains(got, w) {
				t.Errorf("read-only %v: the walk never reached %q (reached %q)", ro, w, got)
			}
		}
	}
}

// TestLiveKeyClashesFinds: the check sees a clash between live actions,
// and none between actions that are never live together.
func TestLiveKeyClashesFinds(t *testing.T) {
	on, off := func() bool { return true }, func() bool { return false }
	a := &keyActions{list: []action{{keys: []string{"y"}, short: "copy"}, {keys: []string{"x", "y"}, short: "other"}}}
	if got := liveKeyClashes(a); len(got) != 1 || !strings.HasPrefix(got[0], "y: ") {
		t.Fatalf("clashes %q, want one on y", got)
	}
	b := &keyActions{list: []action{{keys: []string{"c"}, when: on}, {keys: []string{"c"}, when: off}}}
	if got := liveKeyClashes(b); len(got) != 0 {
		t.Fatalf("clashes %q between exclusive actions", got)
	}
}
