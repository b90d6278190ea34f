package roles_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fleetdeck/fleetdeck/fleet"
	"github.com/fleetdeck/fleetdeck/provision"
	"github.com/fleetdeck/fleetdeck/roles"
)

func TestStateOf(t *testing.T) {
	cat, err := roles.Parse([]byte("[roles.web]\nport = 8080\ntags = [\"prod\", \"v1\"]\n[roles.db]\nport = 5432\n"), "roles.toml")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	web := fleet.Service{ID: "fleetdeck-web", Name: "web", Tags: []string{"v1", "prod"}, Port: 8080}
	db := fleet.Service{ID: "fleetdeck-db", Name: "db", Port: 5432}
	foreign := fleet.Service{ID: "consul", Name: "consul", Port: 8300}
	rec := func(gen uint64, maint bool, rs ...string) *roles.Desired {
		return &roles.Desired{Node: "n1", Datacenter: "dc1", Roles: rs, Generation: gen, Maintenance: roles.Maintenance{On: maint}}
	}
	run := func(gen uint64, st roles.RunStatus) roles.RunInfo {
		r := roles.RunInfo{ID: "r" + string(rune('0'+gen)), Status: st, Generation: gen}
		if st != roles.RunQueued && st != roles.RunRunning {
			r.Ended = now.Add(-time.Minute)
		}
		return r
	}
	for _, tc := range []struct {
		name     string
		d        *roles.Desired
		services []fleet.Service
		run      roles.RunInfo
		maint    bool
		now      time.Time
		want     roles.NodeState
		reason   string
	}{
		{name: "unmanaged", services: []fleet.Service{foreign},
			want: roles.NodeState{State: roles.StateUnmanaged}, reason: "no desired record"},
		{name: "unmanaged with managed services", services: []fleet.Service{web},
			want: roles.NodeState{State: roles.StateUnmanaged, Extra: []string{"web"}}, reason: "managed services present: web"},
		{name: "pending, never applied", d: rec(1, false, "web"), services: []fleet.Service{foreign},
			want: roles.NodeState{State: roles.StatePending, Missing: []string{"web"}}, reason: "generation 1 not applied yet; catalog: missing web"},
		{name: "pending, older run still running", d: rec(2, false, "web", "db"), services: []fleet.Service{web}, run: run(1, roles.RunRunning),
			want: roles.NodeState{State: roles.StatePending, Missing: []string{"db"}}, reason: "run r1 for generation 1 is running"},
		{name: "pending after an older generation failed", d: rec(2, false, "db"), services: []fleet.Service{web}, run: run(1, roles.RunFailed),
			want: roles.NodeState{State: roles.StatePending, Missing: []string{"db"}, Extra: []string{"web"}}, reason: "generation 2 not applied yet"},
		{name: "applying, queued", d: rec(2, false, "db"), services: []fleet.Service{web}, run: run(2, roles.RunQueued),
			want: roles.NodeState{State: roles.StateApplying, Missing: []string{"db"}, Extra: []string{"web"}, RunID: "r2"}, reason: "run r2 queued"},
		{name: "applying even when the catalog already matches", d: rec(2, false, "web"), services: []fleet.Service{web}, run: run(2, roles.RunRunning),
			want: roles.NodeState{State: roles.StateApplying, RunID: "r2"}, reason: "run r2 running"},
		{name: "converged", d: rec(3, false, "db", "web"), services: []fleet.Service{foreign, db, web}, run: run(3, roles.RunSucceeded), now: now,
			want: roles.NodeState{State: roles.StateConverged}, reason: "generation 3 in the catalog"},
		{name: "converged without a known run", d: rec(3, true, "web"), services: []fleet.Service{web}, maint: true,
			want: roles.NodeState{State: roles.StateConverged}},
		{name: "converged, no roles", d: rec(4, false), services: []fleet.Service{foreign}, run: run(4, roles.RunSucceeded),
			want: roles.NodeState{State: roles.StateConverged}},
		{name: "failed", d: rec(2, false, "db"), services: []fleet.Service{web}, run: roles.RunInfo{ID: "r2", Status: roles.RunFailed, Generation: 2, Reason: "consul validate failed"},
			want: roles.NodeState{State: roles.StateFailed, Missing: []string{"db"}, Extra: []string{"web"}, RunID: "r2"}, reason: "run r2 failed: consul validate failed; catalog: missing db; extra web"},
		{name: "cancelled", d: rec(2, false, "db"), services: nil, run: run(2, roles.RunCancelled),
			want: roles.NodeState{State: roles.StateFailed, Missing: []string{"db"}, RunID: "r2"}, reason: "run r2 cancelled"},
		{name: "failed run but the catalog shows the record", d: rec(2, false, "db"), services: []fleet.Service{db}, run: run(2, roles.RunFailed),
			want: roles.NodeState{State: roles.StateConverged}},
		{name: "drift: a file removed after success", d: rec(3, false, "db", "web"), services: []fleet.Service{web}, run: run(3, roles.RunSucceeded), now: now,
			want: roles.NodeState{State: roles.StateDrift, Missing: []string{"db"}, RunID: "r3"}, reason: "generation 3 was applied by run r3, but the catalog differs: missing db"},
		{name: "drift: tags changed by hand", d: rec(3, false, "web"), services: []fleet.Service{{ID: "fleetdeck-web", Name: "web", Tags: []string{"prod"}, Port: 8080}}, run: run(3, roles.RunSucceeded),
			want: roles.NodeState{State: roles.StateDrift, Differ: []string{"web"}, RunID: "r3"}, reason: "different web"},
		{name: "drift: port", d: rec(3, false, "db"), services: []fleet.Service{{ID: "fleetdeck-db", Name: "db", Port: 5433}}, run: run(3, roles.RunSucceeded),
			want: roles.NodeState{State: roles.StateDrift, Differ: []string{"db"}, RunID: "r3"}},
		{name: "drift: name", d: rec(3, false, "db"), services: []fleet.Service{{ID: "fleetdeck-db", Name: "postgres", Port: 5432}}, run: run(3, roles.RunSucceeded),
			want: roles.NodeState{State: roles.StateDrift, Differ: []string{"db"}, RunID: "r3"}},
		{name: "drift: an extra managed service", d: rec(3, false, "db"), services: []fleet.Service{db, {ID: "fleetdeck-cache", Name: "cache"}}, run: run(3, roles.RunSucceeded),
			want: roles.NodeState{State: roles.StateDrift, Extra: []string{"cache"}, RunID: "r3"}},
		{name: "drift: maintenance off by hand", d: rec(3, true, "db"), services: []fleet.Service{db}, run: run(3, roles.RunSucceeded),
			want: roles.NodeState{State: roles.StateDrift, MaintenanceDiffers: true, RunID: "r3"}, reason: "maintenance differs"},
		{name: "just succeeded, catalog not there yet", d: rec(3, false, "db"), services: nil,
			run: roles.RunInfo{ID: "r3", Status: roles.RunSucceeded, Generation: 3, Ended: now.Add(-2 * time.Second)}, now: now,
			want: roles.NodeState{State: roles.StateApplying, Missing: []string{"db"}, RunID: "r3"}, reason: "run r3 succeeded, waiting for the catalog"},
		{name: "succeeded past the settle time", d: rec(3, false, "db"), services: nil,
			run: roles.RunInfo{ID: "r3", Status: roles.RunSucceeded, Generation: 3, Ended: now.Add(-roles.SettleTime)}, now: now,
			want: roles.NodeState{State: roles.StateDrift, Missing: []string{"db"}, RunID: "r3"}},
		{name: "role gone from the catalog: name alone compared", d: rec(3, false, "old"), services: []fleet.Service{{ID: "fleetdeck-old", Name: "old", Tags: []string{"x"}}}, run: run(3, roles.RunSucceeded),
			want: roles.NodeState{State: roles.StateConverged}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := roles.StateOf(tc.d, tc.services, tc.run, tc.maint, cat, tc.now)
			if got.State != tc.want.State || got.RunID != tc.want.RunID || got.MaintenanceDiffers != tc.want.MaintenanceDiffers ||
				!slices.Equal(got.Missing, tc.want.Missing) || !slices.Equal(got.Extra, tc.want.Extra) || !slices.Equal(got.Differ, tc.want.Differ) {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
			if !strings.Contains(got.Reason, tc.reason) {
				t.Errorf("reason %q does not say %q", got.Reason, tc.reason)
			}
		})
	}
}

func TestRunStatusOfProvisionStatuses(t *testing.T) {
	for in, want := range map[string]roles.RunStatus{
		"queued": roles.RunQueued, "running": roles.RunRunning, "ok": roles.RunSucceeded, "cancelled": roles.RunCancelled,
		"failed": roles.RunFailed, "timed-out": roles.RunFailed, "interrupted": roles.RunFailed, "error": roles.RunFailed, "lock-lost": roles.RunFailed,
	} {
		if got := roles.RunStatusOf(in); got != want {
			t.Errorf("RunStatusOf(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRunLinks(t *testing.T) {
	meta := roles.RunLinks([]roles.Desired{{Node: "web-1", Datacenter: "dc1", Generation: 7}, {Node: "web-1", Datacenter: "dc2", Generation: 2}})
	if g := roles.LinkedGeneration(meta, "dc1", "web-1"); g != 7 {
		t.Errorf("dc1/web-1: %d", g)
	}
	if g := roles.LinkedGeneration(meta, "dc2", "web-1"); g != 2 {
		t.Errorf("dc2/web-1: %d", g)
	}
	if g := roles.LinkedGeneration(meta, "dc1", "web-2"); g != 0 {
		t.Errorf("a node the run does not cover: %d", g)
	}
	if g := roles.LinkedGeneration(nil, "dc1", "web-1"); g != 0 {
		t.Errorf("no metadata: %d", g)
	}
}

// A run links a record by generation and change: a run recorded for the
// same generation number of another lineage (the KV wiped, a demo whose
// history outlived its Consul) is not this record's run.
func TestLatestRunMatchesTheChange(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 18, 0, 0, 0, time.UTC)
	rec := roles.Desired{Node: "app-01", Datacenter: "dc1", Generation: 2, Change: "c0ffee"}
	meta := roles.RunLinks([]roles.Desired{rec})
	if v := meta["fleetdeck.roles/dc1/app-01"]; v != "2/c0ffee" {
		t.Fatalf("link value %q, want 2/c0ffee", v)
	}
	if g, c := roles.LinkedGeneration(meta, "dc1", "app-01"), roles.LinkedChange(meta, "dc1", "app-01"); g != 2 || c != "c0ffee" {
		t.Fatalf("read back generation %d change %q", g, c)
	}
	old := roles.RunLinks([]roles.Desired{{Node: "app-01", Datacenter: "dc1", Generation: 2, Change: "0ld"}})
	legacy := map[string]string{"fleetdeck.roles/dc1/app-01": "2"}
	runs := []provision.RunInfo{
		{ID: "other-lineage", Status: provision.RunOK, Started: t0.Add(time.Hour), Ended: t0.Add(time.Hour + time.Minute), Meta: old},
		{ID: "no-change-named", Status: provision.RunFailed, Started: t0.Add(2 * time.Hour), Meta: legacy},
		{ID: "ours", Status: provision.RunRunning, Started: t0, Meta: meta},
	}
	if r := roles.LatestRun(runs, &rec); r.ID != "ours" || r.Generation != 2 || r.Status != roles.RunRunning {
		t.Errorf("LatestRun = %+v, want run ours for generation 2", r)
	}
	// Without our run, the others count as an older generation's: the
	// record is Pending, never Converged or Failed on their account.
	r := roles.LatestRun(runs[:2], &rec)
	if r.Generation == 2 {
		t.Errorf("another lineage's run counted as generation 2: %+v", r)
	}
	// A record that names no change (written without a plan) matches by
	// generation alone.
	bare := rec
	bare.Change = ""
	if r := roles.LatestRun(runs, &bare); r.ID != "no-change-named" {
		t.Errorf("LatestRun without a change = %+v, want the latest run of generation 2", r)
	}
}
