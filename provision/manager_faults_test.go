package provision_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/fleetdeck/fleetdeck/fleet"
	"github.com/fleetdeck/fleetdeck/internal/consulagent"
	"github.com/fleetdeck/fleetdeck/provision"
)

// freeze SIGSTOPs a real Consul agent (see consulagent's Freeze).
func freeze(t *testing.T, a *consulagent.Agent) (thaw func()) {
	t.Helper()
	return a.Freeze(t)
}

// launch previews and launches playbook on the given node keys.
func (f *mgrFixture) launch(t *testing.T, playbook string, targets ...string) string {
	t.Helper()
	ctx := context.Background()
	p, err := f.m.Preview(ctx, provision.LaunchRequest{Playbook: playbook, Scope: provision.ScopeMarked,
		Subject: fmt.Sprintf("%d nodes", len(targets)), Targets: targets})
	if err != nil {
		t.Fatal(err)
	}
	// The user types what the preview asks for (nothing below 5 hosts).
	id, err := f.m.Launch(ctx, p.PlanID, p.Confirm)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func running(i provision.RunInfo) bool { return i.Status == provision.RunRunning }

// mgrGroupOf finds the process group of the run whose sleep carries
// marker.
func mgrGroupOf(t *testing.T, marker string) int {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		for pid, cl := range rtProcs(t, -1, marker) {
			if strings.HasPrefix(strings.SplitN(cl, " ", 2)[1], "sleep ") {
				if pg := procPgid(pid); pg > 0 {
					return pg
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no process runs %q", marker)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// procPgid is the process group of pid (0 if gone).
func procPgid(pid int) int {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	if len(f) < 3 {
		return 0
	}
	pg, _ := strconv.Atoi(f[2])
	return pg
}

// waitGroupGone waits (generously) until no live process of group pgid is
// left and returns when that was seen.
func waitGroupGone(t *testing.T, pgid int) time.Time {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if len(rtProcs(t, pgid, "")) == 0 {
			return time.Now()
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes of group %d still alive: %v", pgid, rtProcs(t, pgid, ""))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A frozen Consul (SIGSTOP of the real agent) cannot renew the lock: the
// run is cancelled and recorded lock-lost, its processes are gone, and the
// time from freezing to the group's end is measured against the TTL.
func TestManagerLockLostWhenConsulFrozen(t *testing.T) {
	f := newMgrFixture(t)
	id := f.launch(t, "slow.yml", "dc1/web-0")
	f.waitRun(t, id, time.Minute, running)
	pgid := mgrGroupOf(t, mgrSleepMarker())
	f.freeze(t)
	stopped := time.Now()
	gone := waitGroupGone(t, pgid)
	v := f.waitRun(t, id, time.Minute, ended)
	if v.Info.Status != provision.RunLockLost || !strings.Contains(v.Info.QueueReason, "not renewed") {
		t.Errorf("run ended %s (%q), want lock-lost for want of renewals", v.Info.Status, v.Info.QueueReason)
	}
	if !strings.Contains(strings.Join(v.Output, "\n"), "cancelling the run") {
		t.Errorf("the recorded output does not say why the run stopped:\n%s", strings.Join(v.Output, "\n"))
	}
	t.Logf("lock TTL 10s: SIGSTOP → process group gone %v (the last renewal was at most TTL/5 = 2s before the SIGSTOP)",
		gone.Sub(stopped).Round(time.Millisecond))
}

func (f *mgrFixture) freeze(t *testing.T) func() { return freeze(t, f.agent) }

// Quitting the console (Manager.Close) with Consul frozen returns after the
// cancel sequence and a bounded release, and records the run.
func TestManagerCloseReturnsWithConsulFrozen(t *testing.T) {
	f := newMgrFixture(t)
	id := f.launch(t, "slow.yml", "dc1/web-1")
	f.waitRun(t, id, time.Minute, running)
	pgid := mgrGroupOf(t, mgrSleepMarker())
	f.freeze(t)
	start := time.Now()
	closed := make(chan struct{})
	go func() { f.m.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(2 * time.Minute):
		t.Fatal("Close hangs with Consul frozen")
	}
	t.Logf("Close with Consul frozen took %v (cancel graces 1s+1s, release bound %v)",
		time.Since(start).Round(time.Millisecond), provision.DefaultLockReleaseTimeout)
	if left := rtProcs(t, pgid, ""); len(left) > 0 {
		t.Errorf("processes survived Close: %v", left)
	}
	rec, err := f.hist.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Status != provision.RunCancelled && rec.Status != provision.RunLockLost {
		t.Errorf("run recorded %s, want cancelled (or lock-lost)", rec.Status)
	}
}

// Preview warns when the inventory comes from a snapshot that is not the
// fleet as it is: Consul gone (the real agent killed).
func TestManagerPreviewWarnsWhenConsulIsDown(t *testing.T) {
	f := newMgrFixture(t)
	ctx := context.Background()
	p, err := f.m.Preview(ctx, provision.LaunchRequest{Playbook: "hello.yml", Scope: provision.ScopeNode, Subject: "dc1/web-0",
		Targets: []string{"dc1/web-0"}, Check: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range p.Warnings {
		if strings.Contains(w, "datacenter dc1") {
			t.Errorf("warning while connected: %q", w)
		}
	}
	f.m.Discard(p.PlanID)
	if err := f.agent.Kill(); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for s := f.feed.Current(); s.Status().Status == fleet.Connected; {
		if s, err = f.feed.Next(wctx, s.Version); err != nil {
			t.Fatalf("the watcher did not notice Consul is gone: %v", err)
		}
	}
	p, err = f.m.Preview(ctx, provision.LaunchRequest{Playbook: "hello.yml", Scope: provision.ScopeNode, Subject: "dc1/web-0",
		Targets: []string{"dc1/web-0"}, Check: true})
	if err != nil {
		t.Fatal(err)
	}
	defer f.m.Discard(p.PlanID)
	if !slicesContainsSub(p.Warnings, "datacenter dc1 is ") {
		t.Errorf("no warning about dc1: %q", p.Warnings)
	}
}

// Preview warns when Consul left nodes out for the token's ACLs.
func TestManagerPreviewWarnsWhenACLsFilter(t *testing.T) {
	const acl = `acl { enabled = true
  default_policy = "deny"
  tokens { initial_management = "root" } }`
	// The watcher's token may read web-0 and web-1 only; the fixture's
	// other clients (registration, locks) use the management token.
	f := newMgrFixture(t, func(o *mgrOptions) {
		o.agent = consulagent.Options{ExtraHCL: acl, Token: "root"}
		o.waitNode = "web-1"
		o.watchToken = func(root *api.Client) string {
			pol, _, err := root.ACL().PolicyCreate(&api.ACLPolicy{Name: "two-nodes",
				Rules: `node "web-0" { policy = "read" }
node "web-1" { policy = "read" }
service_prefix "" { policy = "read" }`}, nil)
			if err != nil {
				t.Fatalf("creating ACL policy: %v", err)
			}
			tok, _, err := root.ACL().TokenCreate(&api.ACLToken{Policies: []*api.ACLTokenPolicyLink{{ID: pol.ID}}}, nil)
			if err != nil {
				t.Fatalf("creating ACL token: %v", err)
			}
			return tok.SecretID
		}
	})
	wctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var err error
	for s := f.feed.Current(); !s.Status().FilteredByACL; {
		if s, err = f.feed.Next(wctx, s.Version); err != nil {
			t.Fatalf("the watcher never saw ACL filtering: %v", err)
		}
	}
	p, err := f.m.Preview(context.Background(), provision.LaunchRequest{Playbook: "hello.yml", Scope: provision.ScopeNode,
		Subject: "dc1/web-0", Targets: []string{"dc1/web-0"}, Check: true})
	if err != nil {
		t.Fatal(err)
	}
	defer f.m.Discard(p.PlanID)
	if !slicesContainsSub(p.Warnings, "datacenter dc1: Consul left out results") {
		t.Errorf("no ACL warning: %q", p.Warnings)
	}
}

func slicesContainsSub(xs []string, sub string) bool {
	for _, x := range xs {
		if strings.Contains(x, sub) {
			return true
		}
	}
	return false
}

// A run on hosts of two WAN-joined datacenters holds one session in each,
// each node's lock in its own datacenter's KV; Locks lists both, and a
// datacenter that does not answer (SIGSTOP) does not hide the other.
func TestManagerLocksAcrossDatacenters(t *testing.T) {
	f := newMgrFixture(t, func(o *mgrOptions) { o.wan = true })
	ctx := context.Background()
	id := f.launch(t, "slow.yml", "dc1/web-0", "dc2/web-0")
	f.waitRun(t, id, time.Minute, running)
	locks, err := f.m.Locks(ctx)
	if err != nil || len(locks) != 2 {
		t.Fatalf("Locks = %+v, %v", locks, err)
	}
	if locks[0].Target.Datacenter != "dc1" || locks[1].Target.Datacenter != "dc2" || locks[0].Target.Node != "web-0" ||
		locks[0].Holder.RunID != id || locks[1].Holder.RunID != id || locks[0].Holder.Session == locks[1].Holder.Session {
		t.Errorf("locks %+v", locks)
	}
	// The dc2 lock is in dc2's KV store, not in dc1's.
	c2, err := f.agent2.Client()
	if err != nil {
		t.Fatal(err)
	}
	if kv, _, err := c2.KV().Get("fdtest/locks/dc2/web-0", nil); err != nil || kv == nil || kv.Session != locks[1].Holder.Session {
		t.Errorf("dc2's KV: %+v %v", kv, err)
	}
	if kv, _, err := f.client.KV().Get("fdtest/locks/dc2/web-0", nil); err != nil || kv != nil {
		t.Errorf("dc1's KV holds dc2's lock: %+v %v", kv, err)
	}
	// Its session lives in dc2, on a dc2 server node, without checks.
	se, _, err := c2.Session().Info(locks[1].Holder.Session, nil)
	if err != nil || se == nil || se.Node != "consul-dc2" || len(se.NodeChecks) != 0 || len(se.ServiceChecks) != 0 {
		t.Errorf("dc2 session %+v %v", se, err)
	}

	// dc2 frozen: dc1's locks still listed, the error names dc2.
	freeze(t, f.agent2)
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	locks, err = f.m.Locks(lctx)
	cancel()
	if err == nil || !strings.Contains(err.Error(), "dc2") || len(locks) != 1 || locks[0].Target.Datacenter != "dc1" {
		t.Errorf("with dc2 frozen: %+v, %v", locks, err)
	}
	// And the run, which cannot renew its dc2 session, stops.
	if v := f.waitRun(t, id, time.Minute, ended); v.Info.Status != provision.RunLockLost || !strings.Contains(v.Info.QueueReason, "dc2") {
		t.Errorf("run ended %s (%q), want lock-lost in dc2", v.Info.Status, v.Info.QueueReason)
	}
}

// The console side stays small on noisy runs: a 50 MB output line is cut
// in memory (with a marker), and a long loop's events are all applied and
// recorded while only a window of them is held. Peak Go heap is measured.
func TestManagerMemoryBoundedOnNoisyRuns(t *testing.T) {
	// More events than the run's event window (shrunk here to keep the
	// test short); FLEETDECK_TEST_LOOP_EVENTS=20000 measures with the
	// default window. FLEETDECK_TEST_LINE_BYTES changes the long line.
	events, window := 1500, 500
	if n, err := strconv.Atoi(os.Getenv("FLEETDECK_TEST_LOOP_EVENTS")); err == nil && n > 0 {
		events, window = n, 0
	}
	lineBytes := 50_000_000
	if n, err := strconv.Atoi(os.Getenv("FLEETDECK_TEST_LINE_BYTES")); err == nil && n > 0 {
		lineBytes = n
	}
	f := newMgrFixture(t, func(o *mgrOptions) {
		o.runner = func(c *provision.RunnerConfig) { c.EventWindow = window }
		o.playbooks["bigline.yml"] = fmt.Sprintf(`- hosts: all
  connection: local
  gather_facts: false
  tasks:
    - name: one long line
      debug:
        msg: "{{ 'x' * %d }}"
`, lineBytes)
		o.playbooks["loop.yml"] = fmt.Sprintf(`- hosts: all
  connection: local
  gather_facts: false
  tasks:
    - name: loop
      debug:
        msg: "{{ item }}"
      loop: "{{ range(%d) | list }}"
`, events)
	})
	// Two figures: the peak of the Go heap (HeapAlloc, garbage included,
	// so it depends on when the GC runs) and the peak of the live heap (what
	// the last GC found reachable): what the console holds on to.
	measure := func(playbook string) (*provision.RunView, uint64) {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		base := ms.HeapAlloc
		live := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		metrics.Read(live)
		liveBase := live[0].Value.Uint64()
		var peak, livePeak atomic.Uint64
		stop := make(chan struct{})
		sampled := make(chan struct{})
		go func() {
			defer close(sampled)
			t := time.NewTicker(10 * time.Millisecond)
			defer t.Stop()
			for {
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				peak.Store(max(peak.Load(), ms.HeapAlloc))
				s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
				metrics.Read(s)
				livePeak.Store(max(livePeak.Load(), s[0].Value.Uint64()))
				select {
				case <-stop:
					return
				case <-t.C:
				}
			}
		}()
		start := time.Now()
		id := f.launch(t, playbook, "dc1/web-0")
		v := f.waitRun(t, id, 10*time.Minute, ended)
		close(stop)
		<-sampled
		growth := uint64(0)
		if p := livePeak.Load(); p > liveBase {
			growth = p - liveBase
		}
		mib := func(b uint64) float64 { return float64(b) / (1 << 20) }
		t.Logf("%s: %v; Go heap %.1f MiB before, peak %.1f MiB; live heap %.1f MiB before, peak %.1f MiB (+%.1f MiB)",
			playbook, time.Since(start).Round(time.Millisecond), mib(base), mib(peak.Load()), mib(liveBase), mib(livePeak.Load()), mib(growth))
		return v, growth
	}

	v, growth := measure("bigline.yml")
	if v.Info.Status != provision.RunOK {
		t.Errorf("bigline ended %s", v.Info.Status)
	}
	var cut string
	for _, l := range v.Output {
		if strings.Contains(l, "… [line cut: ") {
			cut = l
		}
	}
	if cut == "" || len(cut) > provision.OutputLineMax+64 {
		t.Errorf("no cut line of at most %d bytes in the run view (%d lines)", provision.OutputLineMax, len(v.Output))
	}
	if growth > 32<<20 {
		t.Errorf("the console's live heap grew by %d MiB for one %d-byte line", growth>>20, lineBytes)
	}

	v, _ = measure("loop.yml")
	if v.Info.Status != provision.RunOK {
		t.Errorf("loop ended %s", v.Info.Status)
	}
	rec, err := f.hist.Get(context.Background(), v.Info.ID)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(rec.Dir, "events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	lines := 0
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 4<<20)
	for sc.Scan() {
		if _, err := provision.ParseRunEvent(sc.Bytes()); err == nil {
			lines++
		}
	}
	if lines < events || v.State.Applied != lines || rec.EventCount != lines {
		t.Errorf("events: %d in events.jsonl (loop of %d), %d applied to the board, %d in history", lines, events, v.State.Applied, rec.EventCount)
	}
}

// Prune at start: old final runs go with their directories, a crash's
// leftover extra-vars file goes, and nothing a live console may use is
// touched.
func TestManagerPrune(t *testing.T) {
	rtNeed(t, "ansible-playbook")
	ctx := context.Background()
	dir := t.TempDir()
	runsDir := filepath.Join(dir, "runs")
	books := filepath.Join(dir, "pb")
	for _, d := range []string{runsDir, books} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	hist, err := provision.OpenHistory(ctx, provision.HistoryConfig{Path: filepath.Join(dir, "history.db")})
	if err != nil {
		t.Fatal(err)
	}
	self := hist.Owner()
	// A console that is gone: a real process that has exited.
	gone := deadPid(t)
	dead := provision.RunOwner{Hostname: self.Hostname, PID: gone, BootID: self.BootID}

	mkdir := func(name string, owner provision.RunOwner, extraVars bool) string {
		d := filepath.Join(runsDir, name)
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "owner.json"), fmt.Appendf(nil, `{"hostname":%q,"pid":%d,"boot_id":%q,"start_time":%d}`,
			owner.Hostname, owner.PID, owner.BootID, owner.StartTime), 0o600); err != nil {
			t.Fatal(err)
		}
		if extraVars {
			if err := os.WriteFile(filepath.Join(d, provision.RunExtraVarsFile), []byte(`{"db_password":{"__ansible_unsafe":"hunter2"}}`), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		return d
	}
	// Run 0's record names a directory fleetdeck did not make: it must
	// never be removed.
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "keep"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var finals []provision.RunRecord
	for i := range 5 {
		d := mkdir(fmt.Sprintf("final-%d", i), self, false)
		if i == 0 {
			d = outside
		}
		r, err := hist.Create(ctx, provision.RunRecord{Status: provision.RunRunning, Dir: d,
			Targets: []provision.RunTarget{{Host: "web-1", Node: "web-1", Datacenter: "dc1"}}})
		if err != nil {
			t.Fatal(err)
		}
		if err := hist.AppendEvents(ctx, r.ID, []byte(`{"event":"runner_on_ok"}`)); err != nil {
			t.Fatal(err)
		}
		if err := hist.Finish(ctx, r.ID, provision.RunResult{Status: provision.RunOK}); err != nil {
			t.Fatal(err)
		}
		finals = append(finals, r)
	}
	crashedDir := mkdir("crashed", dead, true)
	crashed, err := hist.Create(ctx, provision.RunRecord{Status: provision.RunRunning, Owner: dead, Dir: crashedDir})
	if err != nil {
		t.Fatal(err)
	}
	liveDir := mkdir("live", self, true)
	live, err := hist.Create(ctx, provision.RunRecord{Status: provision.RunRunning, Dir: liveDir})
	if err != nil {
		t.Fatal(err)
	}
	orphanDead := mkdir("preview-of-a-dead-console", dead, true)
	orphanLive := mkdir("preview-of-this-console", self, true)

	// The start of a console: interrupted runs first, then the manager.
	if _, err := hist.RecoverInterrupted(ctx); err != nil {
		t.Fatal(err)
	}
	cat, err := provision.NewPlaybookCatalog(books)
	if err != nil {
		t.Fatal(err)
	}
	runner, err := provision.NewRunner(provision.RunnerConfig{Catalog: cat, RunsDir: runsDir})
	if err != nil {
		t.Fatal(err)
	}
	cfg := api.DefaultConfig()
	cfg.Address = "127.0.0.1:1" // never asked: pruning does not touch Consul
	client, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m, err := provision.NewManager(provision.ManagerConfig{Feed: fleet.NewPublisher(nil), Runner: runner, History: hist,
		Queue: provision.NewRunQueue(provision.NewLockManager(client, provision.LockConfig{}), provision.QueueConfig{}), KeepRuns: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := m.Prune(ctx); err != nil {
		t.Fatal(err)
	}

	exists := func(p string) bool { _, err := os.Lstat(p); return err == nil }
	// Newest 3 kept: live, crashed (now interrupted), final-4.
	for i, r := range finals {
		_, err := hist.Get(ctx, r.ID)
		if kept := i == 4; kept != (err == nil) {
			t.Errorf("final run %d: kept %v, err %v", i, kept, err)
		}
		if i > 0 && i < 4 && exists(filepath.Join(runsDir, fmt.Sprintf("final-%d", i))) {
			t.Errorf("the directory of pruned run %d is still there", i)
		}
		if i > 0 && i < 4 {
			if page, err := hist.List(ctx, provision.ListOptions{Host: "web-1"}); err != nil || len(page.Runs) != 1 {
				t.Errorf("host index after pruning: %d runs, %v", len(page.Runs), err)
			}
		}
	}
	if !exists(filepath.Join(outside, "keep")) {
		t.Error("a directory outside the runs directory was removed")
	}
	for _, id := range []string{crashed.ID, live.ID} {
		if _, err := hist.Get(ctx, id); err != nil {
			t.Errorf("run %s pruned: %v", id, err)
		}
	}
	if exists(filepath.Join(crashedDir, provision.RunExtraVarsFile)) {
		t.Error("the crashed run's extra-vars file survived the start")
	}
	if !exists(crashedDir) {
		t.Error("the crashed run's directory was removed (its record is kept)")
	}
	if !exists(filepath.Join(liveDir, provision.RunExtraVarsFile)) || !exists(filepath.Join(orphanLive, provision.RunExtraVarsFile)) {
		t.Error("a live console's extra-vars file was removed")
	}
	if exists(orphanDead) {
		t.Error("a dead console's preview directory survived")
	}
}

// deadPid runs a real process to its end and returns its pid, which then
// names a console that is gone.
func deadPid(t *testing.T) int {
	t.Helper()
	p, err := os.StartProcess("/bin/true", []string{"true"}, &os.ProcAttr{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	return p.Pid
}

const envConsoleChild = "FLEETDECK_TEST_CONSOLE_CHILD"

// TestConsoleChild is the console of TestRunDiesWithItsConsole: it launches
// a real run through a Manager, says so, and waits to be killed. Without
// the env it does nothing.
func TestConsoleChild(t *testing.T) {
	cfg := os.Getenv(envConsoleChild)
	if cfg == "" {
		return
	}
	addr, rest, _ := strings.Cut(cfg, "|")
	dir, marker, _ := strings.Cut(rest, "|")
	ccfg := api.DefaultConfig()
	ccfg.Address, ccfg.Scheme, ccfg.Token, ccfg.TokenFile = addr, "http", "", ""
	c, err := api.NewClient(ccfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	w := fleet.NewWatcher(c, fleet.Config{})
	go func() { _ = w.Run(ctx) }()
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for s := w.Current(); s.Node("dc1", "web-0") == nil; {
		if s, err = w.Next(wctx, s.Version); err != nil {
			t.Fatal(err)
		}
	}
	books := filepath.Join(dir, "pb")
	if err := os.MkdirAll(books, 0o700); err != nil {
		t.Fatal(err)
	}
	pb := "- hosts: all\n  connection: local\n  gather_facts: false\n  tasks:\n    - name: sleep\n      command: sleep " + marker + "\n"
	if err := os.WriteFile(filepath.Join(books, "slow.yml"), []byte(pb), 0o600); err != nil {
		t.Fatal(err)
	}
	cat, err := provision.NewPlaybookCatalog(books)
	if err != nil {
		t.Fatal(err)
	}
	runner, err := provision.NewRunner(provision.RunnerConfig{Catalog: cat, RunsDir: filepath.Join(dir, "runs"),
		Env: []string{"ANSIBLE_PYTHON_INTERPRETER=auto_silent"}})
	if err != nil {
		t.Fatal(err)
	}
	hist, err := provision.OpenHistory(ctx, provision.HistoryConfig{Path: filepath.Join(dir, "history.db")})
	if err != nil {
		t.Fatal(err)
	}
	locks := provision.NewLockManager(c, provision.LockConfig{Prefix: "fdtest", TTL: 10 * time.Second, LockDelay: -1, User: "doomed"})
	m, err := provision.NewManager(provision.ManagerConfig{Feed: w, Runner: runner, History: hist,
		Queue: provision.NewRunQueue(locks, provision.QueueConfig{})})
	if err != nil {
		t.Fatal(err)
	}
	p, err := m.Preview(ctx, provision.LaunchRequest{Playbook: "slow.yml", Scope: provision.ScopeNode, Subject: "dc1/web-0", Targets: []string{"dc1/web-0"}})
	if err != nil {
		t.Fatal(err)
	}
	id, err := m.Launch(ctx, p.PlanID, "")
	if err != nil {
		t.Fatal(err)
	}
	var v uint64
	for {
		view, err := m.Run(ctx, id)
		if err == nil && view.Info.Status == provision.RunRunning {
			break
		}
		if err == nil && view.Info.Status.Final() {
			t.Fatalf("run ended %s: %s", view.Info.Status, view.Info.QueueReason)
		}
		if v, err = m.Next(wctx, v); err != nil {
			t.Fatal(err)
		}
	}
	fmt.Printf("RUNNING %s\n", id)
	time.Sleep(time.Hour)
}

// SIGKILL of a console mid-run: its ansible-playbook and every process of
// the run's group are gone within seconds (the supervisor notices the
// console's death), no second run can lock the host while any of them
// lives, and the next start records the run as interrupted, ended when its
// console died.
func TestRunDiesWithItsConsole(t *testing.T) {
	rtNeed(t, "ansible-playbook")
	a := lockAgent(t)
	c := consoleClient(t, a)
	if _, err := c.Catalog().Register(&api.CatalogRegistration{Node: "web-0", Address: "10.9.0.1"}, nil); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	marker := fmt.Sprintf("300.%d", os.Getpid()%100000+11)
	child, line := startChildConsole(t, "TestConsoleChild", envConsoleChild+"="+a.HTTPAddr()+"|"+dir+"|"+marker)
	id, ok := strings.CutPrefix(strings.TrimSpace(line), "RUNNING ")
	if !ok {
		_ = child.Process.Kill()
		_ = child.Wait()
		t.Fatalf("child: %q", line)
	}
	pgid := mgrGroupOf(t, "sleep "+marker)
	if procs := rtProcs(t, pgid, ""); len(procs) < 3 {
		t.Errorf("the run's group %d: %v, want the supervisor, ansible-playbook and the sleep", pgid, procs)
	}

	killed := time.Now()
	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()

	second := provision.NewLockManager(c, provision.LockConfig{Prefix: "fdtest", TTL: 10 * time.Second, LockDelay: -1, User: "second"})
	ctx := context.Background()
	var goneAt time.Time
	deadline := time.Now().Add(90 * time.Second)
	for {
		if goneAt.IsZero() && len(rtProcs(t, pgid, "")) == 0 {
			goneAt = time.Now()
		}
		l, err := second.Acquire(ctx, "second-run", targets("dc1", "web-0"))
		if err == nil {
			if left := rtProcs(t, pgid, ""); len(left) > 0 {
				t.Fatalf("a second run locked web-0 while the first run's processes live: %v", left)
			}
			t.Logf("after SIGKILL of the console: its run's group gone in %v, web-0 lockable again after %v",
				goneAt.Sub(killed).Round(time.Millisecond), time.Since(killed).Round(time.Millisecond))
			release(t, l)
			break
		}
		var lc *provision.LockConflict
		if !errors.As(err, &lc) {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("web-0 never freed after the console died: %v (group alive: %v)", err, rtProcs(t, pgid, ""))
		}
		time.Sleep(200 * time.Millisecond)
	}

	// The next start.
	h, err := provision.OpenHistory(ctx, provision.HistoryConfig{Path: filepath.Join(dir, "history.db")})
	if err != nil {
		t.Fatal(err)
	}
	ids, err := h.RecoverInterrupted(ctx)
	if err != nil || len(ids) != 1 || ids[0] != id {
		t.Fatalf("recovered %v (%v), want [%s]", ids, err, id)
	}
	rec, err := h.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(rec.Dir, provision.RunConsoleDiedFile))
	if err != nil {
		t.Fatalf("the supervisor did not record the death: %v", err)
	}
	died, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	if rec.Status != provision.RunInterrupted || !rec.Ended.Equal(died) {
		t.Errorf("recorded %s ended %v, want interrupted at the console's death %v", rec.Status, rec.Ended, died)
	}
	if died.Before(killed.Add(-time.Second)) || died.After(goneAt) {
		t.Errorf("death recorded at %v: the console was killed at %v, its run gone at %v", died, killed, goneAt)
	}
}
