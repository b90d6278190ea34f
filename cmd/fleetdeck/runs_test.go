package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/fleetdeck/fleetdeck/provision"
)

// runFleetdeck runs the command tree with args and returns its output.
func runFleetdeck(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

func TestRunsListShowExport(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	h, err := provision.OpenHistory(ctx, provision.HistoryConfig{Path: filepath.Join(dir, "history.db")})
	if err != nil {
		t.Fatal(err)
	}
	first, err := h.Create(ctx, provision.RunRecord{
		Playbook: "base.yml", Status: provision.RunRunning,
		Targets:   []provision.RunTarget{{Host: "web-1", Node: "web-1", Datacenter: "dc1"}, {Host: "web-2", Node: "web-2", Datacenter: "dc1"}},
		ExtraVars: map[string]string{"db_password": "hunter2", "version": "3"},
		Inventory: []byte(`{"all":{"hosts":["web-1","web-2"]}}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.AppendEvents(ctx, first.ID, []byte(`{"event":"runner_on_ok","host":"web-1"}`)); err != nil {
		t.Fatal(err)
	}
	if err := h.AppendOutput(ctx, first.ID, []byte("ok: [web-1]\n\x1b[31mred\x1b[0m\n")); err != nil {
		t.Fatal(err)
	}
	code := 2
	if err := h.Finish(ctx, first.ID, provision.RunResult{Status: provision.RunFailed, ExitCode: &code,
		Recap: map[string]provision.HostRecap{"web-1": {OK: 2, Changed: 1}, "web-2": {Failed: 1}}}); err != nil {
		t.Fatal(err)
	}
	second, err := h.Create(ctx, provision.RunRecord{Playbook: "web.yml", Status: provision.RunRunning,
		Targets: []provision.RunTarget{{Host: "db-1", Node: "db-1", Datacenter: "dc1"}}})
	if err != nil {
		t.Fatal(err)
	}

	out, err := runFleetdeck(t, "runs", "--state-dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "ID") {
		t.Fatalf("list:\n%s", out)
	}
	// Newest first; our own running run stays running.
	if f := strings.Fields(lines[1]); f[0] != second.ID || f[4] != "web.yml" || f[5] != "1" || f[6] != "running" || f[7] != "-" {
		t.Errorf("row 1: %q", f)
	}
	if f := strings.Fields(lines[2]); f[0] != first.ID || f[4] != "base.yml" || f[5] != "2" || f[6] != "failed" || f[7] != "2" {
		t.Errorf("row 2: %q", f)
	}
	out, err = runFleetdeck(t, "runs", "--state-dir", dir, "--status", "failed", "--host", "web-2")
	if err != nil || strings.Count(out, "\n") != 2 || !strings.Contains(out, first.ID) {
		t.Errorf("filtered list (%v):\n%s", err, out)
	}

	out, err = runFleetdeck(t, "runs", "show", "--state-dir", dir, first.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`(?m)^status\s+failed$`, `(?m)^exit code\s+2$`, `db_password=<redacted> version=3`, `2: web-1, web-2`,
		`(?m)^web-2\s+0\s+0\s+1\s+0\s+0\s+0\s+0$`, `ok: \[web-1\]`, `(?m)^red$`} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("show lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\x1b") || strings.Contains(out, "hunter2") {
		t.Errorf("show printed an escape or a secret:\n%q", out)
	}
	if _, err := runFleetdeck(t, "runs", "show", "--state-dir", dir, "01NOPE"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("show unknown: %v", err)
	}

	out, err = runFleetdeck(t, "runs", "export", "--state-dir", dir, "--since", "1h")
	if err != nil {
		t.Fatal(err)
	}
	var recs []provision.RunRecord
	if err := json.Unmarshal([]byte(out), &recs); err != nil {
		t.Fatalf("export is not a JSON array: %v\n%s", err, out)
	}
	if len(recs) != 2 || recs[0].ID != first.ID || recs[1].ID != second.ID {
		t.Fatalf("export order/records: %+v", recs)
	}
	r := recs[0]
	if len(r.Events) != 1 || r.Recap["web-1"].Changed != 1 || r.ExtraVars["db_password"] != "<redacted>" ||
		!strings.Contains(r.Output, "ok: [web-1]") || string(r.Inventory) != `{"all":{"hosts":["web-1","web-2"]}}` {
		t.Errorf("exported record: %+v", r)
	}
	out, err = runFleetdeck(t, "runs", "export", "--state-dir", dir, "--since", time.Now().Add(time.Hour).Format(time.RFC3339))
	if err != nil || strings.TrimSpace(out) != "[\n]" {
		t.Errorf("export of nothing: %v %q", err, out)
	}
	if _, err := runFleetdeck(t, "runs", "export", "--state-dir", dir, "--since", "yesterday"); err == nil {
		t.Error("bad --since accepted")
	}

	// A run that lost its host locks is listed and filtered by its status.
	lost, err := h.Create(ctx, provision.RunRecord{Playbook: "web.yml", Status: provision.RunRunning})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Finish(ctx, lost.ID, provision.RunResult{Status: provision.RunLockLost, Reason: "cancelled: the host locks were lost"}); err != nil {
		t.Fatal(err)
	}
	out, err = runFleetdeck(t, "runs", "--state-dir", dir, "--status", "lock-lost")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); err != nil || len(lines) != 2 || !strings.HasPrefix(lines[1], lost.ID) ||
		strings.Fields(lines[1])[6] != "lock-lost" {
		t.Errorf("--status lock-lost (%v):\n%s", err, out)
	}
}

func TestRunsParseSince(t *testing.T) {
	now := time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"":                     {},
		"36h":                  now.Add(-36 * time.Hour),
		"7d":                   now.AddDate(0, 0, -7),
		"2025-03-01T00:00:00Z": time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC),
		"2025-03-01":           time.Date(2025, 3, 1, 0, 0, 0, 0, time.Local),
	} {
		got, err := runsParseSince(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("%q: %v %v, want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"-3h", "x", "3 days"} {
		if _, err := runsParseSince(bad, now); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// inertText fails when s holds anything a terminal acts on or that
// reorders a line: controls other than the line break, DEL, C1, bidi
// controls, line and paragraph separators, invalid UTF-8.
func inertText(t *testing.T, what, s string) {
	t.Helper()
	if !utf8.ValidString(s) {
		t.Errorf("%s: invalid UTF-8 written:\n%q", what, s)
	}
	for i, r := range s {
		if (unicode.IsControl(r) && r != '\n') || unicode.Is(unicode.Bidi_Control, r) || r == 0x2028 || r == 0x2029 {
			t.Errorf("%s: U+%04X written at byte %d:\n%q", what, r, i, s)
			return
		}
	}
}

// hostileRecord is a run whose every field holds terminal escapes, C1
// controls, DEL and bidi overrides, as a playbook, a Consul node name or a
// task's output can.
func hostileRecord(t *testing.T, h *provision.History) (provision.RunRecord, []byte) {
	t.Helper()
	ctx := context.Background()
	rec, err := h.Create(ctx, provision.RunRecord{
		Status: provision.RunRunning, User: "mallory\x1b[2J", Playbook: "evil\u202eslm.yml\x1b]0;pwned\x07",
		Scope: "role", Subject: "web\u202e\u009b2J",
		Targets:   []provision.RunTarget{{Host: "web-\x1b[31m1", Node: "web-\x1b[31m1", Datacenter: "dc1"}},
		ExtraVars: map[string]string{"version": "3\x1b]52;c;Y3VybA==\x07"},
		Argv:      []string{"ansible-playbook", "--limit=web-\x1b[31m1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	// The callback plugin writes non-ASCII raw (ensure_ascii=False): C1
	// and bidi controls arrive as UTF-8, DEL as a raw byte.
	event := []byte("{\"event\":\"runner_on_ok\",\"host\":\"web-1\",\"res\":{\"stdout\":\"a\u202eb\u009b2J\x7fc\\u001b[2J\"}}")
	if err := h.AppendEvents(ctx, rec.ID, event); err != nil {
		t.Fatal(err)
	}
	if err := h.AppendOutput(ctx, rec.ID, []byte("ok: [web-1]\r\n\x1b]52;c;Y3VybA==\x07evil\u202etxt.exe\n\u009b2J\x7fdone\n")); err != nil {
		t.Fatal(err)
	}
	code := 0
	if err := h.Finish(ctx, rec.ID, provision.RunResult{Status: provision.RunOK, ExitCode: &code, Reason: "why\x1b[2J",
		Recap: map[string]provision.HostRecap{"web-\x1b[31m1": {OK: 1}}}); err != nil {
		t.Fatal(err)
	}
	return rec, event
}

// Every CLI output of a run's record writes nothing a terminal acts on:
// text is sanitised, JSON escapes and still decodes to the record.
func TestRunsOutputsAreInertOnTheTerminal(t *testing.T) {
	dir := t.TempDir()
	h, err := provision.OpenHistory(context.Background(), provision.HistoryConfig{Path: filepath.Join(dir, "history.db")})
	if err != nil {
		t.Fatal(err)
	}
	rec, event := hostileRecord(t, h)

	out, err := runFleetdeck(t, "runs", "--state-dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	inertText(t, "runs", out)
	if !strings.Contains(out, "evilslm.yml") || !strings.Contains(out, "mallory") {
		t.Errorf("list lost the visible text:\n%s", out)
	}

	out, err = runFleetdeck(t, "runs", "show", "--state-dir", dir, "--events", rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	inertText(t, "runs show --events", out)
	for _, want := range []string{"(?m)^scope +role web$", "(?m)^reason +why$", "(?m)^who +mallory ", "(?m)^eviltxt.exe$", "(?m)^done$", "version=3\n"} {
		if !regexp.MustCompile(want).MatchString(out) && !strings.Contains(out, want) {
			t.Errorf("show lacks %s:\n%s", want, out)
		}
	}
	_, evs, ok := strings.Cut(out, "\nEVENTS\n")
	if !ok {
		t.Fatalf("no events section:\n%s", out)
	}
	var got, want map[string]any
	if err := json.Unmarshal([]byte(strings.TrimSpace(evs)), &got); err != nil {
		t.Fatalf("event line is not JSON: %v\n%q", err, evs)
	}
	if err := json.Unmarshal(event, &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("event line decodes to %v, recorded %v", got, want)
	}

	checkJSON := func(what, out string, into any) {
		t.Helper()
		inertText(t, what, out)
		if err := json.Unmarshal([]byte(out), into); err != nil {
			t.Fatalf("%s: not JSON: %v\n%s", what, err, out)
		}
	}
	full, err := h.Get(context.Background(), rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	same := func(what string, r provision.RunRecord) {
		t.Helper()
		if r.Playbook != full.Playbook || r.Subject != full.Subject || r.Output != full.Output || r.Reason != full.Reason ||
			r.User != full.User || !reflect.DeepEqual(r.Targets, full.Targets) || !reflect.DeepEqual(r.ExtraVars, full.ExtraVars) ||
			!reflect.DeepEqual(r.Recap, full.Recap) || len(r.Events) != 1 {
			t.Errorf("%s does not round-trip:\n got %+v\nwant %+v", what, r, full)
		}
		var ev map[string]any
		if err := json.Unmarshal(r.Events[0], &ev); err != nil || !reflect.DeepEqual(ev, want) {
			t.Errorf("%s: event decodes to %v (%v)", what, ev, err)
		}
	}
	out, err = runFleetdeck(t, "runs", "show", "--state-dir", dir, "--json", rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	var one provision.RunRecord
	checkJSON("runs show --json", out, &one)
	same("runs show --json", one)
	// The exact escapes, so the form is fixed and checked, not just the
	// absence of raw bytes.
	for _, esc := range []string{`evil\u202eslm.yml\u001b]0;pwned\u0007`, `web\u202e\u009b2J`, `b\u009b2J\u007fc`} {
		if !strings.Contains(out, esc) {
			t.Errorf("runs show --json lacks %s:\n%s", esc, out)
		}
	}

	out, err = runFleetdeck(t, "runs", "export", "--state-dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	var all []provision.RunRecord
	checkJSON("runs export", out, &all)
	if len(all) != 1 {
		t.Fatalf("export has %d records", len(all))
	}
	same("runs export", all[0])
}

// `runs show` takes any prefix of an id that no other run shares, in any
// case; a shared one lists the candidates.
func TestRunsShowByIDPrefix(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	h, err := provision.OpenHistory(ctx, provision.HistoryConfig{Path: filepath.Join(dir, "history.db")})
	if err != nil {
		t.Fatal(err)
	}
	out, err := runFleetdeck(t, "runs", "--state-dir", dir)
	if err != nil || out != "no runs yet in "+filepath.Join(dir, "history.db")+"\n" {
		t.Errorf("empty history (%v): %q", err, out)
	}
	a, err := h.Create(ctx, provision.RunRecord{Playbook: "a.yml", Scope: "group", Subject: "web-asg"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := h.Create(ctx, provision.RunRecord{Playbook: "b.yml", Scope: "node", Subject: "dc1/web-1"})
	if err != nil {
		t.Fatal(err)
	}
	common := 0
	for common < len(a.ID) && a.ID[common] == b.ID[common] {
		common++
	}
	if common == 0 {
		t.Fatalf("ids %s and %s share no prefix: ids must sort by time", a.ID, b.ID)
	}
	_, err = runFleetdeck(t, "runs", "show", "--state-dir", dir, a.ID[:common])
	if err == nil || !strings.Contains(err.Error(), "ambiguous: 2 runs") || !strings.Contains(err.Error(), a.ID) ||
		!strings.Contains(err.Error(), b.ID) || !strings.Contains(err.Error(), "group web-asg") || strings.Index(err.Error(), b.ID) > strings.Index(err.Error(), a.ID) {
		t.Errorf("shared prefix: %v", err)
	}
	out, err = runFleetdeck(t, "runs", "show", "--state-dir", dir, strings.ToLower(a.ID[:common+1]))
	if err != nil || !regexp.MustCompile(`(?m)^id +`+a.ID+`$`).MatchString(out) || !regexp.MustCompile(`(?m)^scope +group web-asg$`).MatchString(out) {
		t.Errorf("unique prefix (%v):\n%s", err, out)
	}
	out, err = runFleetdeck(t, "runs", "show", "--state-dir", dir, b.ID)
	if err != nil || !regexp.MustCompile(`(?m)^scope +node dc1/web-1$`).MatchString(out) {
		t.Errorf("whole id (%v):\n%s", err, out)
	}
	if _, err := runFleetdeck(t, "runs", "show", "--state-dir", dir, "ZZZ"); !errors.Is(err, provision.ErrRunNotFound) {
		t.Errorf("unknown prefix: %v", err)
	}
	out, err = runFleetdeck(t, "runs", "--state-dir", dir, "--status", "failed", "--host", "db-9")
	if err != nil || out != "no runs match --status failed --host db-9 in "+filepath.Join(dir, "history.db")+"\n" {
		t.Errorf("nothing matches (%v): %q", err, out)
	}
}

// A command's error reaches the terminal sanitised, line breaks kept: it
// can quote a Consul answer or a run record.
func TestErrorsArePrintedSanitised(t *testing.T) {
	var b bytes.Buffer
	printError(&b, errors.New("reading node web\x1b]0;pwned\x07-1 in dc\u202e1: HTTP 500\ncandidates:\n  \u009b2Jrun"))
	if want := "fleetdeck: reading node web-1 in dc1: HTTP 500\ncandidates:\n  run\n"; b.String() != want {
		t.Errorf("printed %q, want %q", b.String(), want)
	}
}
