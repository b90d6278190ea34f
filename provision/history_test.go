package provision_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/fleetdeck/fleetdeck/provision"
)

func openHistory(t *testing.T, cfg provision.HistoryConfig) *provision.History {
	t.Helper()
	if cfg.Path == "" {
		cfg.Path = filepath.Join(t.TempDir(), "state", "history.db")
	}
	h, err := provision.OpenHistory(context.Background(), cfg)
	if err != nil {
		t.Fatalf("OpenHistory: %v", err)
	}
	return h
}

func intp(i int) *int { return &i }

func TestHistoryRecordLifecycle(t *testing.T) {
	ctx := context.Background()
	h := openHistory(t, provision.HistoryConfig{})
	if fi, err := os.Stat(filepath.Dir(h.Path())); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("state dir: %v %v, want mode 0700", fi, err)
	}
	inv := []byte(`{"all": {"hosts": ["web-1", "web-2"]}}`)
	r, err := h.Create(ctx, provision.RunRecord{
		Argv:           []string{"ansible-playbook", "-i", "inv.json", "--limit", "web-1,web-2", "site.yml"},
		Playbook:       "site.yml",
		PlaybookSHA256: "abc123",
		Check:          true, Diff: true, Forks: 7, Become: true,
		Tags:      []string{"app"},
		ExtraVars: map[string]string{"version": "1.2"},
		Targets: []provision.RunTarget{
			{Host: "web-1", Node: "web-1", Datacenter: "dc1"},
			{Host: "web-2", Node: "web-2", Datacenter: "dc1"},
		},
		Inventory: inv,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.ID) != 26 || r.Status != provision.RunQueued || r.User == "" || r.Owner.PID != os.Getpid() {
		t.Fatalf("created record: %+v", r)
	}
	if err := h.SetStatus(ctx, r.ID, provision.RunQueued, "waiting for hosts: web-1 by bob"); err != nil {
		t.Fatal(err)
	}
	if err := h.SetStatus(ctx, r.ID, provision.RunRunning, ""); err != nil {
		t.Fatal(err)
	}
	evs := [][]byte{
		[]byte(`{"event":"playbook_on_start"}` + "\n"),
		[]byte(`{"event":"runner_on_ok","host":"web-1"}`),
		[]byte(`not json`),
	}
	if err := h.AppendEvents(ctx, r.ID, evs[:2]...); err != nil {
		t.Fatal(err)
	}
	if err := h.AppendEvents(ctx, r.ID, evs[2]); err != nil {
		t.Fatal(err)
	}
	if err := h.AppendOutput(ctx, r.ID, []byte("PLAY [all]\n")); err != nil {
		t.Fatal(err)
	}
	if err := h.AppendOutput(ctx, r.ID, []byte("ok: [web-1]\n")); err != nil {
		t.Fatal(err)
	}
	recap := map[string]provision.HostRecap{"web-1": {OK: 3, Changed: 1}, "web-2": {Failed: 1, Rescued: 1}}
	if err := h.Finish(ctx, r.ID, provision.RunResult{Status: provision.RunFailed, ExitCode: intp(2), Recap: recap}); err != nil {
		t.Fatal(err)
	}
	if err := h.Finish(ctx, r.ID, provision.RunResult{Status: provision.RunOK}); !errors.Is(err, provision.ErrRunFinal) {
		t.Fatalf("second Finish: %v, want ErrRunFinal", err)
	}
	if err := h.SetStatus(ctx, r.ID, provision.RunRunning, ""); !errors.Is(err, provision.ErrRunFinal) {
		t.Fatalf("SetStatus after Finish: %v, want ErrRunFinal", err)
	}

	// A fresh History on the same file: what was written is on disk.
	got, err := openHistory(t, provision.HistoryConfig{Path: h.Path()}).Get(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != provision.RunFailed || got.ExitCode == nil || *got.ExitCode != 2 || got.Started.IsZero() || got.Ended.IsZero() {
		t.Errorf("status/exit/times: %+v", got)
	}
	if !slices.Equal(got.Argv, r.Argv) || got.TargetCount != 2 || len(got.Targets) != 2 || got.Targets[1].Node != "web-2" {
		t.Errorf("argv/targets: %q %+v", got.Argv, got.Targets)
	}
	if got.Recap["web-2"] != recap["web-2"] || got.Recap["web-1"] != recap["web-1"] {
		t.Errorf("recap: %+v", got.Recap)
	}
	if string(got.Inventory) != string(inv) {
		t.Errorf("inventory: %s", got.Inventory)
	}
	if got.Output != "PLAY [all]\nok: [web-1]\n" || got.OutputBytes != int64(len(got.Output)) || got.OutputTruncated {
		t.Errorf("output: %q (%d bytes, truncated %v)", got.Output, got.OutputBytes, got.OutputTruncated)
	}
	wantEvents := []string{`{"event":"playbook_on_start"}`, `{"event":"runner_on_ok","host":"web-1"}`, `{"fleetdeck_invalid_event":"not json"}`}
	if got.EventCount != 3 || len(got.Events) != 3 {
		t.Fatalf("events: %d stored, %q", got.EventCount, got.Events)
	}
	for i, ev := range got.Events {
		if string(ev) != wantEvents[i] {
			t.Errorf("event %d: %s, want %s", i, ev, wantEvents[i])
		}
	}
	if !got.Check || !got.Diff || got.Forks != 7 || !got.Become || got.Tags[0] != "app" || got.PlaybookSHA256 != "abc123" {
		t.Errorf("options: %+v", got)
	}
	// The export form is JSON with the inventory inline.
	data, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"inventory":{"all":{"hosts":["web-1","web-2"]}}`) {
		t.Errorf("exported inventory not inline JSON: %s", data)
	}
	var back provision.RunRecord
	if err := json.Unmarshal(data, &back); err != nil || string(back.Inventory) != `{"all":{"hosts":["web-1","web-2"]}}` || len(back.Events) != 3 {
		t.Errorf("round trip: %v %s", err, back.Inventory)
	}

	if _, err := h.Get(ctx, "01NOSUCHRUN0000000000000000"); !errors.Is(err, provision.ErrRunNotFound) {
		t.Errorf("Get unknown: %v", err)
	}
}

func TestHistoryRedactsSecrets(t *testing.T) {
	ctx := context.Background()
	h := openHistory(t, provision.HistoryConfig{})
	pem := "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----"
	r, err := h.Create(ctx, provision.RunRecord{
		ExtraVars: map[string]string{
			"db_password":         "hunter2",
			"ansible_become_pass": "s3cret",
			"API_TOKEN":           "tok",
			"aws_secret_key":      "AKIA",
			"version":             "1.2",
			"cert_blob":           pem,
			"settings":            `{"name":"app","auth":{"user":"u","pass":"p"},"list":[{"token":"t"}]}`,
		},
		Argv: []string{"ansible-playbook", "-e", "version=1.2 db_password='hunter 2' region=eu",
			"--extra-vars", `{"vault_token":"tok","x":1}`, "-eapi_key=zzz", "--extra-vars=password=p1", "-e", "@vars.yml", "site.yml"},
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := h.Get(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"db_password": "<redacted>", "ansible_become_pass": "<redacted>", "API_TOKEN": "<redacted>",
		"aws_secret_key": "<redacted>", "version": "1.2", "cert_blob": "<redacted>",
		"settings": `{"auth":"<redacted>","list":[{"token":"<redacted>"}],"name":"app"}`,
	}
	for k, v := range want {
		if got.ExtraVars[k] != v {
			t.Errorf("extra var %s = %q, want %q", k, got.ExtraVars[k], v)
		}
	}
	wantArgv := []string{"ansible-playbook", "-e", "version=1.2 db_password=<redacted> region=eu",
		"--extra-vars", `{"vault_token":"<redacted>","x":1}`, "-eapi_key=<redacted>", "--extra-vars=password=<redacted>", "-e", "@vars.yml", "site.yml"}
	if !slices.Equal(got.Argv, wantArgv) {
		t.Errorf("argv:\n got %q\nwant %q", got.Argv, wantArgv)
	}
	// Nothing secret reached the file.
	data, err := os.ReadFile(h.Path())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"hunter", "s3cret", "AKIA", "zzz", "p1", "OPENSSH"} {
		if strings.Contains(string(data), s) {
			t.Errorf("%q is in the history file", s)
		}
	}
}

func TestHistoryBoundsOutputAndEvents(t *testing.T) {
	ctx := context.Background()
	h := openHistory(t, provision.HistoryConfig{MaxOutputBytes: 10, MaxEventBytes: 40})
	r, err := h.Create(ctx, provision.RunRecord{Status: provision.RunRunning})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"0123456", "789abc", "def"} {
		if err := h.AppendOutput(ctx, r.ID, []byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		if err := h.AppendEvents(ctx, r.ID, fmt.Appendf(nil, `{"event":"e%d"}`, i)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := h.Get(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.OutputTruncated || got.OutputBytes != 16 || !strings.HasPrefix(got.Output, "0123456789") ||
		!strings.Contains(got.Output, "output truncated: kept the first 10 bytes, dropped 6") {
		t.Errorf("output: %q bytes=%d truncated=%v", got.Output, got.OutputBytes, got.OutputTruncated)
	}
	// Each event is 14 bytes: two fit in 40.
	if got.EventCount != 2 || got.EventsDropped != 3 || len(got.Events) != 2 || string(got.Events[1]) != `{"event":"e1"}` {
		t.Errorf("events: count %d dropped %d %q", got.EventCount, got.EventsDropped, got.Events)
	}
}

func TestHistoryListNewestFirstPagedAndFiltered(t *testing.T) {
	ctx := context.Background()
	h := openHistory(t, provision.HistoryConfig{})
	var ids []string
	for i := range 7 {
		r, err := h.Create(ctx, provision.RunRecord{
			Playbook: fmt.Sprintf("p%d.yml", i),
			Targets:  []provision.RunTarget{{Host: fmt.Sprintf("h%d", i%2), Node: fmt.Sprintf("node-%d", i%2), Datacenter: "dc1"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
		st := provision.RunOK
		if i%3 == 0 {
			st = provision.RunFailed
		}
		if err := h.Finish(ctx, r.ID, provision.RunResult{Status: st, ExitCode: intp(0)}); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.IsSorted(ids) {
		t.Fatalf("ids not increasing: %v", ids)
	}
	pageIDs := func(p provision.RunPage) []string {
		var out []string
		for _, r := range p.Runs {
			if r.Events != nil || r.Targets != nil || r.Argv != nil {
				t.Errorf("List returned heavy fields for %s", r.ID)
			}
			out = append(out, r.ID)
		}
		return out
	}
	// Pages of 3, newest first.
	var all []string
	opts := provision.ListOptions{Limit: 3}
	for n := 0; ; n++ {
		p, err := h.List(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, pageIDs(p)...)
		if p.Next == "" {
			break
		}
		if n > 5 {
			t.Fatal("paging does not end")
		}
		opts.Before = p.Next
	}
	want := slices.Clone(ids)
	slices.Reverse(want)
	if !slices.Equal(all, want) {
		t.Errorf("paged list %v, want %v", all, want)
	}
	// By status.
	p, err := h.List(ctx, provision.ListOptions{Status: []provision.RunStatus{provision.RunFailed}})
	if err != nil {
		t.Fatal(err)
	}
	if got := pageIDs(p); !slices.Equal(got, []string{ids[6], ids[3], ids[0]}) {
		t.Errorf("failed runs %v", got)
	}
	// By host (Ansible name or node), with paging.
	p, err = h.List(ctx, provision.ListOptions{Host: "node-1", Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if got := pageIDs(p); !slices.Equal(got, []string{ids[5], ids[3]}) || p.Next != ids[3] {
		t.Errorf("node-1 page 1: %v next %s", got, p.Next)
	}
	p, err = h.List(ctx, provision.ListOptions{Host: "h1", Limit: 2, Before: p.Next})
	if err != nil {
		t.Fatal(err)
	}
	if got := pageIDs(p); !slices.Equal(got, []string{ids[1]}) || p.Next != "" {
		t.Errorf("h1 page 2: %v next %q", got, p.Next)
	}
	// Since.
	r3, err := h.Get(ctx, ids[4])
	if err != nil {
		t.Fatal(err)
	}
	p, err = h.List(ctx, provision.ListOptions{Since: r3.Created})
	if err != nil {
		t.Fatal(err)
	}
	if got := pageIDs(p); !slices.Equal(got, []string{ids[6], ids[5], ids[4]}) {
		t.Errorf("since: %v", got)
	}
}

// TestHistoryBusyFile: a process holding the file (bbolt's exclusive
// lock) makes an operation wait at most OpenTimeout and then say so.
func TestHistoryBusyFile(t *testing.T) {
	h := openHistory(t, provision.HistoryConfig{OpenTimeout: 200 * time.Millisecond})
	db, err := bolt.Open(h.Path(), 0o600, nil) // another "console" holding it
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = h.Create(context.Background(), provision.RunRecord{})
	if err == nil || !strings.Contains(err.Error(), "is busy") {
		t.Fatalf("Create on a held file: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("waited %v", d)
	}
	// Released: it works again.
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Create(context.Background(), provision.RunRecord{}); err != nil {
		t.Fatal(err)
	}
}

const envCrashChild = "FLEETDECK_TEST_HISTORY_CRASH_CHILD"

// TestHistoryCrashChild is the child of TestHistoryRecoverInterrupted: it
// records a running run with events, says so, and waits to be killed. In
// a normal test run (no env) it does nothing.
func TestHistoryCrashChild(t *testing.T) {
	path := os.Getenv(envCrashChild)
	if path == "" {
		return
	}
	ctx := context.Background()
	h, err := provision.OpenHistory(ctx, provision.HistoryConfig{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	r, err := h.Create(ctx, provision.RunRecord{Status: provision.RunRunning, Playbook: "crash.yml",
		Targets: []provision.RunTarget{{Host: "web-1", Node: "web-1", Datacenter: "dc1"}}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := h.AppendEvents(ctx, r.ID, fmt.Appendf(nil, `{"event":"runner_on_ok","n":%d}`, i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.AppendOutput(ctx, r.ID, []byte("TASK [one]\n")); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("RUNNING %s\n", r.ID)
	// Mid-run: keep appending until killed.
	for i := 3; ; i++ {
		time.Sleep(20 * time.Millisecond)
		if err := h.AppendEvents(ctx, r.ID, fmt.Appendf(nil, `{"event":"runner_on_ok","n":%d}`, i)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestHistoryRecoverInterrupted(t *testing.T) {
	ctx := context.Background()
	h := openHistory(t, provision.HistoryConfig{})

	// A run of this (live) process: never interrupted.
	mine, err := h.Create(ctx, provision.RunRecord{Status: provision.RunRunning})
	if err != nil {
		t.Fatal(err)
	}
	// A live process on this machine other than us (a second console).
	other := exec.Command("sleep", "60")
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = other.Process.Kill(); _ = other.Wait() })
	self := h.Owner()
	alive, err := h.Create(ctx, provision.RunRecord{Status: provision.RunQueued,
		Owner: provision.RunOwner{Hostname: self.Hostname, PID: other.Process.Pid, BootID: self.BootID}})
	if err != nil {
		t.Fatal(err)
	}
	// A console from before a reboot, whose pid happens to be ours now.
	rebooted, err := h.Create(ctx, provision.RunRecord{Status: provision.RunRunning,
		Owner: provision.RunOwner{Hostname: self.Hostname, PID: os.Getpid(), BootID: "an-earlier-boot", StartTime: 1}})
	if err != nil {
		t.Fatal(err)
	}
	// Another machine's run: cannot be judged from here.
	remote, err := h.Create(ctx, provision.RunRecord{Status: provision.RunRunning,
		Owner: provision.RunOwner{Hostname: "elsewhere", PID: 1}})
	if err != nil {
		t.Fatal(err)
	}

	// A console that crashes mid-run.
	child, line := startChildConsole(t, "TestHistoryCrashChild", envCrashChild+"="+h.Path())
	if !strings.HasPrefix(line, "RUNNING ") {
		_ = child.Process.Kill()
		_ = child.Wait()
		t.Fatalf("child: %q", line)
	}
	crashed := strings.TrimSpace(strings.TrimPrefix(line, "RUNNING "))
	seenRunning := time.Now()
	time.Sleep(150 * time.Millisecond) // let it append a few more
	// While it lives, its run is not interrupted.
	ids, err := h.RecoverInterrupted(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids, []string{rebooted.ID}) {
		t.Fatalf("with the child alive: recovered %v, want only the run from before the reboot %s", ids, rebooted.ID)
	}
	killedAt := time.Now()
	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()

	// "Next start": a new History on the same file.
	h2 := openHistory(t, provision.HistoryConfig{Path: h.Path()})
	ids, err = h2.RecoverInterrupted(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids, []string{crashed}) {
		t.Errorf("recovered %v, want [%s]", ids, crashed)
	}
	got, err := h2.Get(ctx, crashed)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != provision.RunInterrupted || got.Ended.IsZero() || !strings.Contains(got.Reason, "was running") {
		t.Errorf("crashed run: status %s reason %q", got.Status, got.Reason)
	}
	// Without a supervisor's record, the end is the record's last change
	// (the child's last append), not when the crash was noticed.
	if got.Ended.Before(seenRunning) || got.Ended.After(killedAt) {
		t.Errorf("crashed run ended %v: it was seen running at %v and killed at %v", got.Ended, seenRunning, killedAt)
	}
	if got.EventCount < 3 || len(got.Events) != got.EventCount || got.Output != "TASK [one]\n" || got.Playbook != "crash.yml" {
		t.Errorf("crashed run lost data: %d events (%d stored), output %q", got.EventCount, len(got.Events), got.Output)
	}
	for i, ev := range got.Events {
		if want := fmt.Sprintf(`{"event":"runner_on_ok","n":%d}`, i); string(ev) != want {
			t.Errorf("event %d = %s, want %s", i, ev, want)
		}
	}
	for _, id := range []string{mine.ID, alive.ID, remote.ID} {
		r, err := h2.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status.Final() {
			t.Errorf("run %s of a live or remote owner became %s", id, r.Status)
		}
	}
	// Once the second console is gone, its queued run is interrupted too.
	_ = other.Process.Kill()
	_ = other.Wait()
	ids, err = h2.RecoverInterrupted(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids, []string{alive.ID}) {
		t.Errorf("after the other console ended: recovered %v, want [%s]", ids, alive.ID)
	}
}

// Prune removes final records past the count or the age, everything of
// them, and never a live one.
func TestHistoryPrune(t *testing.T) {
	ctx := context.Background()
	h := openHistory(t, provision.HistoryConfig{})
	var ids []string
	for i := range 4 {
		r, err := h.Create(ctx, provision.RunRecord{Status: provision.RunRunning, Playbook: "p.yml",
			Targets: []provision.RunTarget{{Host: fmt.Sprintf("h%d", i), Node: fmt.Sprintf("n%d", i), Datacenter: "dc1"}}})
		if err != nil {
			t.Fatal(err)
		}
		if err := h.AppendEvents(ctx, r.ID, []byte(`{"event":"runner_on_ok"}`)); err != nil {
			t.Fatal(err)
		}
		if err := h.AppendOutput(ctx, r.ID, []byte("out\n")); err != nil {
			t.Fatal(err)
		}
		if i < 3 {
			if err := h.Finish(ctx, r.ID, provision.RunResult{Status: provision.RunOK}); err != nil {
				t.Fatal(err)
			}
		}
		ids = append(ids, r.ID)
	}
	// Count: keep the newest 2 (the live one counts).
	pruned, err := h.Prune(ctx, provision.PruneOptions{Keep: 2})
	if err != nil || len(pruned) != 2 || pruned[0].ID != ids[1] || pruned[1].ID != ids[0] {
		t.Fatalf("pruned %+v, %v; want runs 1 and 0", pruned, err)
	}
	for i, id := range ids {
		_, err := h.Get(ctx, id)
		if gone := i < 2; gone != errors.Is(err, provision.ErrRunNotFound) {
			t.Errorf("run %d: %v", i, err)
		}
	}
	if page, err := h.List(ctx, provision.ListOptions{Host: "h0"}); err != nil || len(page.Runs) != 0 {
		t.Errorf("host index keeps a pruned run: %+v %v", page.Runs, err)
	}
	// Age: everything final is older than a day, a day from now; the live
	// run stays.
	pruned, err = h.Prune(ctx, provision.PruneOptions{MaxAge: time.Hour, Now: time.Now().Add(24 * time.Hour)})
	if err != nil || len(pruned) != 1 || pruned[0].ID != ids[2] {
		t.Fatalf("pruned by age %+v, %v; want run 2", pruned, err)
	}
	if got, err := h.Get(ctx, ids[3]); err != nil || got.Status != provision.RunRunning || got.Output != "out\n" {
		t.Errorf("the live run: %+v %v", got, err)
	}
	// A new record after pruning still works (buckets intact).
	if _, err := h.Create(ctx, provision.RunRecord{Status: provision.RunQueued}); err != nil {
		t.Fatal(err)
	}
}
