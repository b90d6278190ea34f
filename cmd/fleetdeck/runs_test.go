package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

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
		`(?m)^web-2\s+0\s+0\s+1\s+0\s+0\s+0\s+0$`, `ok: \[web-1\]`, `\[31mred`} {
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
