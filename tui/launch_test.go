package tui

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/fleetdeck/fleetdeck/provision"
)

// lastReq returns the last launch request the fake saw.
func (f *fakeProv) lastReq(t *testing.T) provision.LaunchRequest {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.reqs) == 0 {
		t.Fatal("no preview was requested")
	}
	return f.reqs[len(f.reqs)-1]
}

// form returns the launch form on top, or fails.
func (h *harness) form() *launchForm {
	h.t.Helper()
	f, ok := h.m.top().(*launchForm)
	if !ok {
		h.t.Fatalf("top view is %v, want the launch form", h.m.top().title())
	}
	return f
}

func TestLaunchFromNode(t *testing.T) {
	p := newFakeProv()
	h := newProvHarness(t, synthSnapshot(300), p, false, 120, 40)
	h.press("j", "r")
	f := h.form()
	if f.scope != provision.ScopeNode || !slices.Equal(f.targets, []string{"dc1/node-00001"}) || f.check {
		t.Fatalf("node launch: scope %s targets %v check %v", f.scope, f.targets, f.check)
	}
	h.mustContain("Run a playbook on node dc1/node-00001", "base.yml", "baseline packages and users", "[ ]  (--check")
	h.do(special("ctrl+s"))
	req := p.lastReq(t)
	if req.Playbook != "base.yml" || req.Scope != provision.ScopeNode || req.Subject != "dc1/node-00001" || req.Check {
		t.Fatalf("request = %+v", req)
	}
	if h.m.top().title() != "preview" {
		t.Fatalf("top = %v, want preview", h.m.top().title())
	}
	h.mustContain("Preview: nothing has run yet", "Hosts as ansible-playbook resolves them (1)", "node-00001",
		"[0]   ansible-playbook", "--limit", "ANSIBLE_HOST_PATTERN_MISMATCH=error", "enter launch")
}

func TestLaunchFromDetail(t *testing.T) {
	p := newFakeProv()
	h := newProvHarness(t, synthSnapshot(30), p, false, 120, 40)
	h.press("enter", "r")
	f := h.form()
	if f.scope != provision.ScopeNode || !slices.Equal(f.targets, []string{"dc1/node-00000"}) {
		t.Fatalf("detail launch: %s %v", f.scope, f.targets)
	}
	// esc closes the form and returns to the detail.
	h.press("esc")
	if h.m.top().title() != "node" {
		t.Fatalf("esc from the form: top %v", h.m.top().title())
	}
}

func TestLaunchFromMarkedRespectsScope(t *testing.T) {
	p := newFakeProv()
	h := newProvHarness(t, synthSnapshot(30), p, false, 120, 40)
	// Rows are dc1 first: node-00000, node-00001, node-00003, ...
	h.press("space", "space")
	h.m.marks["dc2/node-00002"] = true
	if got := h.m.Marked(); len(got) != 3 {
		t.Fatalf("marked %v", got)
	}
	h.press("r")
	f := h.form()
	want := []string{"dc1/node-00000", "dc1/node-00001", "dc2/node-00002"}
	if f.scope != provision.ScopeMarked || !slices.Equal(f.targets, want) || f.check || f.subject != "3 nodes" {
		t.Fatalf("marked launch: %s %q %v check %v", f.scope, f.subject, f.targets, f.check)
	}
	h.press("esc")
	h.keys(":dc dc1", "enter")
	h.press("r")
	if f := h.form(); !slices.Equal(f.targets, want[:2]) || !strings.Contains(f.subject, "1 more marked but not shown") {
		t.Fatalf("marked launch in :dc dc1 = %v %q", f.targets, f.subject)
	}
}

func TestLaunchFromRoleAndGroup(t *testing.T) {
	snap := synthSnapshot(300)
	p := newFakeProv()
	h := newProvHarness(t, snap, p, false, 120, 40)
	h.keys(":roles", "enter")
	// Roles sorted: api first.
	h.press("r")
	f := h.form()
	var want []string
	for _, n := range snap.Nodes {
		if n.HasRole("api") {
			want = append(want, n.Key())
		}
	}
	if f.scope != provision.ScopeRole || f.subject != "api" || !slices.Equal(f.targets, want) || !f.check {
		t.Fatalf("role launch: %s %q %d targets (want %d) check %v", f.scope, f.subject, len(f.targets), len(want), f.check)
	}
	h.mustContain("role-wide run: check mode is on by default", "[x]  (--check")
	h.press("esc")

	// The :dc scope narrows a role to its nodes in that datacenter.
	h.keys(":dc dc2", "enter", ":groups", "enter")
	h.press("r")
	f = h.form()
	want = want[:0]
	for _, n := range snap.Nodes {
		if n.Group == "api-asg" && n.Datacenter == "dc2" {
			want = append(want, n.Key())
		}
	}
	if f.scope != provision.ScopeGroup || f.subject != "api-asg" || !slices.Equal(f.targets, want) || !f.check {
		t.Fatalf("group launch: %s %q %v check %v", f.scope, f.subject, f.targets, f.check)
	}
	for _, k := range f.targets {
		if !strings.HasPrefix(k, "dc2/") {
			t.Fatalf("target %s outside :dc dc2", k)
		}
	}
}

func TestLaunchFormEditing(t *testing.T) {
	p := newFakeProv()
	h := newProvHarness(t, synthSnapshot(30), p, false, 120, 40)
	h.press("r")
	h.press("right")         // playbook: web.yml
	h.do(special("tab"))     // check
	h.press("space")         // check on
	h.do(special("tab"))     // diff
	h.press("space")         // diff on
	h.press("down", "space") // become on
	h.press("down")          // tags
	h.keys("web, deploy ,")  // comma list
	h.do(special("tab"))     // skip-tags
	h.keys("slow")           //
	h.do(special("tab"))     // extra vars
	h.keys("novalue")        // invalid
	h.press("enter")         //
	h.mustContain(`extra var "novalue" is not key=value`)
	h.send(keyMsg("backspace"))
	for range len("novalue") - 1 {
		h.send(keyMsg("backspace"))
	}
	h.keys("version=1.2")
	h.press("enter")
	h.keys("msg=two words")
	h.press("enter")
	h.mustContain(`"version=1.2"`, `"msg=two words"`)
	h.press("enter") // empty extra var input: next field (forks)
	h.keys("1x0")    // letters are ignored in forks
	f := h.form()
	if f.field != fForks || f.inputs[fForks].Value() != "10" {
		t.Fatalf("field %d forks %q", f.field, f.inputs[fForks].Value())
	}
	// shift+tab goes back; values stay.
	h.do(special("shift+tab"))
	if f.field != fExtraVars {
		t.Fatalf("shift+tab: field %d", f.field)
	}
	h.do(special("tab"))
	h.press("enter") // enter on the last field previews
	req := p.lastReq(t)
	want := provision.LaunchRequest{
		Playbook: "web.yml", Scope: provision.ScopeNode, Subject: "dc1/node-00000", Targets: []string{"dc1/node-00000"},
		Check: true, Diff: true, Become: true, Tags: []string{"web", "deploy"}, SkipTags: []string{"slow"},
		ExtraVars: []string{"version=1.2", "msg=two words"}, Forks: 10,
	}
	if !reqEqual(req, want) {
		t.Fatalf("request\n got %+v\nwant %+v", req, want)
	}
}

func reqEqual(a, b provision.LaunchRequest) bool {
	return a.Playbook == b.Playbook && a.Scope == b.Scope && a.Subject == b.Subject && slices.Equal(a.Targets, b.Targets) &&
		a.Check == b.Check && a.Diff == b.Diff && a.Become == b.Become && slices.Equal(a.Tags, b.Tags) &&
		slices.Equal(a.SkipTags, b.SkipTags) && slices.Equal(a.ExtraVars, b.ExtraVars) && a.Forks == b.Forks
}

func TestPreviewAliasesArgvWarningsSanitised(t *testing.T) {
	p := newFakeProv()
	p.aliases = map[string]string{"node-00000": "dc1/all"}
	p.warnings = []string{"host \x1b]52;c;cHduZWQ=\x07all got a safe alias"}
	p.extraArgv = []string{"--extra-vars", "motd=hi\tthere\u202e", ""}
	h := newProvHarness(t, synthSnapshot(30), p, false, 120, 60)
	h.press("r", "right", "right")
	h.do(special("tab"))
	h.do(special("tab"))
	h.do(special("tab"))
	h.do(special("tab"))
	h.do(special("tab"))
	h.do(special("tab"))
	h.keys("motd=hi\tthere\u202e")
	h.do(special("ctrl+s"))
	s := h.mustContain("node-00000  → node dc1/all", "Warnings (1)", "all got a safe alias",
		`"motd=hi\tthere\u202e"`, `[9]   ""`, `"motd=hi there"`, "/srv/playbooks/restart-service.yml")
	if strings.Contains(s, "cHduZWQ") {
		t.Fatal("OSC payload reached the screen")
	}
}

func TestTypedConfirmationGatesLaunch(t *testing.T) {
	p := newFakeProv()
	h := newProvHarness(t, synthSnapshot(300), p, false, 120, 40)
	h.keys(":roles", "enter")
	h.press("r")
	h.do(special("tab"))
	h.press("space") // check mode off: a real role-wide run
	h.do(special("ctrl+s"))
	if v := h.preview(); v.p.Confirm != "api" {
		t.Fatalf("preview asks for %q, want the role's name", v.p.Confirm)
	}
	h.mustContain(`type "api" then enter`, "REAL RUN")
	h.press("enter")
	h.mustContain(`type "api" exactly to launch`)
	h.keys("ap")
	h.press("enter")
	if len(p.launched) != 0 {
		t.Fatal("launched without the typed confirmation")
	}
	// Keys that would act elsewhere are text here.
	h.keys("q")
	h.press("backspace", "backspace")
	h.keys("pi")
	h.press("enter")
	if !slices.Equal(p.launched, []string{"plan-1"}) {
		t.Fatalf("launched %v", p.launched)
	}
	if v, ok := h.m.top().(*runView); !ok || v.id != "run-plan-1" {
		t.Fatalf("after launch top %v", h.m.top().title())
	}
	for _, sv := range h.m.stack {
		if sv.title() == "launch" || sv.title() == "preview" {
			t.Fatal("form or preview left on the stack after launch")
		}
	}
	h.mustContain("run run-plan-1 launched")
}

func TestLaunchErrorsShownFormKept(t *testing.T) {
	p := newFakeProv()
	p.previewErr = errors.New("ansible-playbook not found in PATH: install it with apt-get install --no-install-recommends ansible-core")
	h := newProvHarness(t, synthSnapshot(30), p, false, 120, 40)
	h.press("r", "right")
	h.do(special("tab"))
	h.press("space")
	h.do(special("ctrl+s"))
	f := h.form()
	if f.pbSel != 1 || !f.check || f.busy {
		t.Fatalf("form lost its values: sel %d check %v busy %v", f.pbSel, f.check, f.busy)
	}
	h.mustContain("ansible-playbook not found in PATH", "apt-get install")

	// The playbook directory missing: said in the form.
	p2 := newFakeProv()
	p2.pbErr = errors.New("playbook directory unusable: /srv/playbooks: no such file or directory")
	h2 := newProvHarness(t, synthSnapshot(30), p2, false, 120, 40)
	h2.press("r")
	h2.mustContain("playbook directory unusable: /srv/playbooks")
	h2.do(special("ctrl+s"))
	if len(p2.reqs) != 0 {
		t.Fatal("previewed without a playbook")
	}

	// A lock conflict at launch: shown on the preview, which stays; esc
	// discards it and returns to the form with its values.
	p.previewErr = nil
	p.launchErr = errors.New("hosts locked by run 20260304-0001 (alice@bastion, web.yml)")
	h.do(special("ctrl+s"))
	h.press("enter")
	if h.m.top().title() != "preview" {
		t.Fatalf("top %v after a failed launch", h.m.top().title())
	}
	h.mustContain("hosts locked by run 20260304-0001 (alice@bastion")
	h.press("esc")
	if !slices.Equal(p.discarded, []string{"plan-1"}) {
		t.Fatalf("discarded %v", p.discarded)
	}
	if f := h.form(); f.pbSel != 1 || !f.check {
		t.Fatal("form lost its values after the preview")
	}
}

func TestNoProvisionerSaysSo(t *testing.T) {
	h := newHarness(t, synthSnapshot(10), 120, 30)
	h.keys("r")
	h.mustContain("runs are not available")
	if h.m.top().title() != "nodes" {
		t.Fatal("r without a run manager opened something")
	}
	h.keys(":runs", "enter")
	h.mustContain("no run manager configured")
}
