package provision_test

import (
	"context"
	"errors"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/fleetdeck/fleetdeck/provision"
)

// addNode registers one more node and waits until the fleet shows it.
func (f *mgrFixture) addNode(t *testing.T, name, addr string) {
	t.Helper()
	reg := &api.CatalogRegistration{Node: name, Address: addr, NodeMeta: map[string]string{"asg": "web-asg"},
		Service: &api.AgentService{ID: "web", Service: "web", Port: 80}}
	if _, err := f.client.Catalog().Register(reg, nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for s := f.feed.Current(); s.Node("dc1", name) == nil; {
		var err error
		if s, err = f.feed.Next(ctx, s.Version); err != nil {
			t.Fatalf("waiting for %s in the fleet: %v", name, err)
		}
	}
}

// A caller without any console — this test — cannot launch past a typed
// confirmation: Launch itself asks for the role or group name of a wide
// run and for the host count of 5 hosts or more, outside check mode,
// whatever the caller does to the Preview it was given.
func TestManagerLaunchEnforcesTypedConfirmations(t *testing.T) {
	f := newMgrFixture(t)
	f.addNode(t, "web-4", "10.7.0.5")
	ctx := context.Background()
	all := []string{"dc1/web-0", "dc1/web-1", "dc1/web-2", "dc1/web-3", "dc1/web-4"}

	// A group-wide run: the group's name.
	p, err := f.m.Preview(ctx, provision.LaunchRequest{Playbook: "hello.yml", Scope: provision.ScopeGroup, Subject: "web-asg", Targets: all,
		ExtraVars: []string{"version=1.2", "db_password=hunter2", "api_token=abc"}})
	if err != nil {
		t.Fatal(err)
	}
	if p.Confirm != "web-asg" {
		t.Fatalf("confirm = %q", p.Confirm)
	}
	// The values typed are shown, secrets redacted.
	if !slices.Equal(p.ExtraVars, []string{"version=1.2", "db_password=<redacted>", "api_token=<redacted>"}) {
		t.Errorf("preview extra vars = %q", p.ExtraVars)
	}
	// Changing the Preview changes nothing: the manager keeps its own.
	p.Confirm, p.Request.Scope, p.Request.Check = "", provision.ScopeNode, true
	for _, typed := range []string{"", "web", "web-asg ", "5"} {
		_, err := f.m.Launch(ctx, p.PlanID, typed)
		if !errors.Is(err, provision.ErrConfirmation) || !strings.Contains(err.Error(), `type "web-asg" exactly`) ||
			!strings.Contains(err.Error(), "whole group web-asg") {
			t.Errorf("launch typing %q: %v", typed, err)
		}
	}
	if runs, _ := f.m.Runs(ctx); len(runs) != 0 {
		t.Fatalf("a refused launch ran something: %+v", runs)
	}
	// Refused, the preview stays open: the right text launches it.
	id, err := f.m.Launch(ctx, p.PlanID, "web-asg")
	if err != nil {
		t.Fatalf("launch with the group's name: %v", err)
	}
	v := f.waitRun(t, id, 2*time.Minute, ended)
	if v.Info.Scope != provision.ScopeGroup || v.Info.Hosts != 5 {
		t.Errorf("launched %+v", v.Info)
	}

	// Five marked nodes: the host count.
	p, err = f.m.Preview(ctx, provision.LaunchRequest{Playbook: "hello.yml", Scope: provision.ScopeMarked, Subject: "5 nodes", Targets: all})
	if err != nil {
		t.Fatal(err)
	}
	if p.Confirm != "5" {
		t.Fatalf("confirm = %q, want the host count", p.Confirm)
	}
	if _, err := f.m.Launch(ctx, p.PlanID, ""); !errors.Is(err, provision.ErrConfirmation) || !strings.Contains(err.Error(), `type "5" exactly`) ||
		!strings.Contains(err.Error(), "changes 5 hosts") {
		t.Errorf("launch of 5 hosts without the count: %v", err)
	}
	if _, err := f.m.Launch(ctx, p.PlanID, "4"); !errors.Is(err, provision.ErrConfirmation) || !strings.Contains(err.Error(), `"4" was typed`) {
		t.Errorf("launch of 5 hosts typing 4: %v", err)
	}
	f.m.Discard(p.PlanID)
	if _, err := f.m.Launch(ctx, p.PlanID, "5"); err == nil || errors.Is(err, provision.ErrConfirmation) {
		t.Errorf("launch of a discarded preview: %v", err)
	}

	// Check mode changes nothing: no confirmation, whatever is typed.
	p, err = f.m.Preview(ctx, provision.LaunchRequest{Playbook: "hello.yml", Scope: provision.ScopeGroup, Subject: "web-asg", Targets: all, Check: true})
	if err != nil {
		t.Fatal(err)
	}
	if p.Confirm != "" {
		t.Errorf("check mode asks to type %q", p.Confirm)
	}
	id, err = f.m.Launch(ctx, p.PlanID, "anything")
	if err != nil {
		t.Fatalf("check-mode launch: %v", err)
	}
	f.waitRun(t, id, 2*time.Minute, ended)

	// Four hosts outside check mode, not wide: nothing to type.
	p, err = f.m.Preview(ctx, provision.LaunchRequest{Playbook: "hello.yml", Scope: provision.ScopeMarked, Subject: "4 nodes", Targets: all[:4]})
	if err != nil {
		t.Fatal(err)
	}
	if p.Confirm != "" {
		t.Errorf("4 hosts ask to type %q", p.Confirm)
	}
	f.m.Discard(p.PlanID)

	// A wide run must name what it is wide over.
	if _, err := f.m.Preview(ctx, provision.LaunchRequest{Playbook: "hello.yml", Scope: provision.ScopeRole, Targets: all}); !errors.Is(err, provision.ErrRunSpec) {
		t.Errorf("a role-wide run without a role: %v", err)
	}
}

// A read-only manager previews, launches, cancels and re-runs nothing,
// whoever asks; it still lists runs and playbooks.
func TestManagerReadOnlyRefusesChanges(t *testing.T) {
	f := newMgrFixture(t, func(o *mgrOptions) { o.manager = func(c *provision.ManagerConfig) { c.ReadOnly = true } })
	ctx := context.Background()
	rec, err := f.hist.Create(ctx, provision.RunRecord{Playbook: "hello.yml",
		Targets: []provision.RunTarget{{Host: "web-0", Node: "web-0", Datacenter: "dc1"}}})
	if err != nil {
		t.Fatal(err)
	}
	code := 2
	if err := f.hist.Finish(ctx, rec.ID, provision.RunResult{Status: provision.RunFailed, ExitCode: &code,
		Recap: map[string]provision.HostRecap{"web-0": {Failed: 1}}}); err != nil {
		t.Fatal(err)
	}
	_, err = f.m.Preview(ctx, provision.LaunchRequest{Playbook: "hello.yml", Scope: provision.ScopeNode, Subject: "dc1/web-0", Targets: []string{"dc1/web-0"}})
	if !errors.Is(err, provision.ErrReadOnly) {
		t.Errorf("preview: %v", err)
	}
	if _, err := f.m.Launch(ctx, "any-plan", ""); !errors.Is(err, provision.ErrReadOnly) {
		t.Errorf("launch: %v", err)
	}
	if err := f.m.Cancel(ctx, rec.ID); !errors.Is(err, provision.ErrReadOnly) {
		t.Errorf("cancel: %v", err)
	}
	for _, only := range []bool{false, true} {
		if _, err := f.m.Rerun(ctx, rec.ID, only); !errors.Is(err, provision.ErrReadOnly) {
			t.Errorf("rerun (only failed %v): %v", only, err)
		}
	}
	if runs, err := f.m.Runs(ctx); err != nil || len(runs) != 1 {
		t.Errorf("runs: %v %v", runs, err)
	}
	if books, err := f.m.Playbooks(ctx); err != nil || len(books) == 0 {
		t.Errorf("playbooks: %v %v", books, err)
	}
	if entries, err := os.ReadDir(f.runs); err == nil && len(entries) > 0 {
		t.Errorf("a read-only manager prepared run directories: %v", entries)
	}
}

// tasksInFlight is true once n hosts of a run have a task running (the
// run is past ansible-playbook's start-up).
func tasksInFlight(n int) func(provision.RunInfo) bool {
	return func(i provision.RunInfo) bool { return i.Counts[provision.HostRunning] == n }
}

// hookLog records OnRunFinished calls.
type hookLog struct {
	mu    sync.Mutex
	calls map[string][]provision.RunInfo
	order []string
	err   []string
}

// OnRunFinished is called exactly once per run that reaches a final
// status, after the end is recorded and the host locks released: a run
// that ends, one cancelled while running, one cancelled while queued, one
// that lost its locks, and those Close cancels. A run of a console that
// died, marked interrupted at recovery, is not this manager's run: no
// hook. Along the way: the runs list counts hosts as the board does,
// hosts never started read not run, and F after a cancel re-runs the
// hosts that did not finish.
func TestManagerRunFinishedHooksOncePerRun(t *testing.T) {
	f := newMgrFixture(t)
	ctx := context.Background()
	log := &hookLog{calls: map[string][]provision.RunInfo{}}
	f.m.OnRunFinished(func(info provision.RunInfo) {
		// The end is in history, and the run holds no lock any more.
		rec, err := f.hist.Get(context.Background(), info.ID)
		held, lerr := f.m.Locks(context.Background())
		log.mu.Lock()
		defer log.mu.Unlock()
		log.calls[info.ID] = append(log.calls[info.ID], info)
		log.order = append(log.order, info.ID)
		if err != nil || rec.Status != info.Status || !rec.Status.Final() {
			log.err = append(log.err, "history of "+info.ID+": "+string(rec.Status)+" vs "+string(info.Status))
		}
		if lerr == nil {
			for _, h := range held {
				if h.Holder.RunID == info.ID {
					log.err = append(log.err, "run "+info.ID+" still holds "+h.Target.Node)
				}
			}
		}
	})
	var second []string
	unsubscribe := f.m.OnRunFinished(func(info provision.RunInfo) {
		log.mu.Lock()
		second = append(second, info.ID)
		log.mu.Unlock()
	})

	// 1. A run that ends by itself.
	okID := f.launch(t, "hello.yml", "dc1/web-0")
	okView := f.waitRun(t, okID, 2*time.Minute, ended)

	// 2. A run cancelled while it runs, on two hosts.
	cancelled := f.launch(t, "slow.yml", "dc1/web-1", "dc1/web-2")
	f.waitRun(t, cancelled, time.Minute, tasksInFlight(2))
	// 3. A run queued behind it on the same host, cancelled while queued.
	queued := f.launch(t, "slow.yml", "dc1/web-1")
	f.waitRun(t, queued, 30*time.Second, func(i provision.RunInfo) bool {
		return i.Status == provision.RunQueued && strings.Contains(i.QueueReason, cancelled)
	})
	if err := f.m.Cancel(ctx, queued); err != nil {
		t.Fatal(err)
	}
	qView := f.waitRun(t, queued, time.Minute, ended)
	if err := f.m.Cancel(ctx, cancelled); err != nil {
		t.Fatal(err)
	}
	cView := f.waitRun(t, cancelled, time.Minute, ended)
	unsubscribe()
	unsubscribe() // harmless

	// 4. A run whose lock session Consul invalidates.
	lost := f.launch(t, "slow.yml", "dc1/web-3")
	f.waitRun(t, lost, time.Minute, tasksInFlight(1))
	sessions, _, err := f.client.Session().List(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sessions {
		if _, err := f.client.Session().Destroy(s.ID, nil); err != nil {
			t.Fatal(err)
		}
	}
	lView := f.waitRun(t, lost, time.Minute, ended)

	// 5. A run Close cancels.
	closed := f.launch(t, "slow.yml", "dc1/web-0")
	f.waitRun(t, closed, time.Minute, running)

	// 6. A run of a console that died, recovered as interrupted.
	dead, err := f.hist.Create(ctx, provision.RunRecord{Playbook: "hello.yml", Status: provision.RunRunning,
		Owner:   provision.RunOwner{Hostname: f.hist.Owner().Hostname, PID: deadPid(t), BootID: f.hist.Owner().BootID},
		Targets: []provision.RunTarget{{Host: "web-2", Node: "web-2", Datacenter: "dc1"}}})
	if err != nil {
		t.Fatal(err)
	}
	if ids, err := f.hist.RecoverInterrupted(ctx); err != nil || !slices.Contains(ids, dead.ID) {
		t.Fatalf("recovery: %v %v", ids, err)
	}
	f.m.Close() // waits for every run of the manager, hooks included

	want := map[string]provision.RunStatus{okID: provision.RunOK, cancelled: provision.RunCancelled, queued: provision.RunCancelled,
		lost: provision.RunLockLost, closed: provision.RunCancelled}
	log.mu.Lock()
	defer log.mu.Unlock()
	for id, st := range want {
		calls := log.calls[id]
		if len(calls) != 1 {
			t.Errorf("run %s: %d hook calls, want 1", id, len(calls))
			continue
		}
		in := calls[0]
		n := 0
		for _, c := range in.Counts {
			n += c
		}
		if in.Status != st || in.Live || in.Ended.IsZero() || n != in.Hosts {
			t.Errorf("run %s: hook got %+v, want status %s and a count per host", id, in, st)
		}
	}
	if len(log.calls) != len(want) {
		t.Errorf("hooks called for %d runs, want %d (none for the recovered run %s): %v", len(log.calls), len(want), dead.ID, log.order)
	}
	if len(log.err) > 0 {
		t.Errorf("hooks saw: %q", log.err)
	}
	if !slices.Equal(second, []string{okID, queued, cancelled}) {
		t.Errorf("the unsubscribed hook was called for %v, want the first three runs", second)
	}

	// The runs list counts what the board shows: hosts never started read
	// not run, hosts cut off mid-task interrupted.
	for _, c := range []struct {
		id   string
		view *provision.RunView
		want map[provision.HostStatus]int
	}{
		{okID, okView, map[provision.HostStatus]int{provision.HostChanged: 1}},
		{queued, qView, map[provision.HostStatus]int{provision.HostNotRun: 1}},
		{cancelled, cView, map[provision.HostStatus]int{provision.HostInterrupted: 2}},
		{lost, lView, map[provision.HostStatus]int{provision.HostInterrupted: 1}},
	} {
		if got := c.view.State.StatusCounts(); !maps.Equal(got, c.want) {
			t.Errorf("run %s board %v, want %v", c.id, got, c.want)
		}
		if !maps.Equal(c.view.Info.Counts, c.want) || !maps.Equal(log.calls[c.id][0].Counts, c.want) {
			t.Errorf("run %s: info counts %v, hook %v, want %v", c.id, c.view.Info.Counts, log.calls[c.id][0].Counts, c.want)
		}
	}
	runs, err := f.m.Runs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range runs {
		if w, ok := want[r.ID]; ok && (r.Status != w || r.Counts == nil) {
			t.Errorf("listed %+v", r)
		}
		if r.ID == queued && !maps.Equal(r.Counts, map[provision.HostStatus]int{provision.HostNotRun: 1}) {
			t.Errorf("the run cancelled while queued is listed with %v", r.Counts)
		}
	}
}

// F after a cancel offers the hosts that did not finish, and says so; an
// all-ok run has nothing to re-run.
func TestManagerRerunAfterCancel(t *testing.T) {
	f := newMgrFixture(t)
	ctx := context.Background()
	id := f.launch(t, "slow.yml", "dc1/web-1", "dc1/web-2")
	f.waitRun(t, id, time.Minute, running)
	if _, err := f.m.Rerun(ctx, id, true); err == nil || !strings.Contains(err.Error(), "still running") {
		t.Errorf("re-running the unfinished hosts of a live run: %v", err)
	}
	if err := f.m.Cancel(ctx, id); err != nil {
		t.Fatal(err)
	}
	f.waitRun(t, id, time.Minute, ended)
	p, err := f.m.Rerun(ctx, id, true)
	if err != nil {
		t.Fatalf("F after a cancel: %v", err)
	}
	if !slices.Equal(p.Hosts, []string{"web-1", "web-2"}) || p.Request.Subject != "the 2 hosts of run "+id+" that did not finish" {
		t.Errorf("re-run of the unfinished hosts: %v %q", p.Hosts, p.Request.Subject)
	}
	f.m.Discard(p.PlanID)

	okID := f.launch(t, "hello.yml", "dc1/web-0")
	f.waitRun(t, okID, 2*time.Minute, ended)
	if _, err := f.m.Rerun(ctx, okID, true); err == nil || !strings.Contains(err.Error(), "every host finished without failing") {
		t.Errorf("F on an all-ok run: %v", err)
	}
	p, err = f.m.Rerun(ctx, okID, false)
	if err != nil || p.Request.Subject != "the 1 host of run "+okID {
		t.Errorf("re-run of a 1-host run: %v %+v", err, p)
	}
	if p != nil {
		f.m.Discard(p.PlanID)
	}
}
