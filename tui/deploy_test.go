package tui

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleetdeck/fleetdeck/deploy"
)

// fakeDeploy is a Deployer for the console's own logic: a status and
// records the test sets, and the requests asked. The real store is
// tested in package deploy and end to end in deploy/e2e.
type fakeDeploy struct {
	mu    sync.Mutex
	st    deploy.Status
	recs  map[string][]deploy.Record
	asked []deploy.Request
}

func (f *fakeDeploy) Status(context.Context) (deploy.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st, nil
}

func (f *fakeDeploy) NodeRecords(_ context.Context, node string) ([]deploy.Record, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.recs[node], nil
}

func (f *fakeDeploy) Ask(_ context.Context, r deploy.Request) (deploy.Request, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := r.Check(); err != nil {
		return r, err
	}
	r.ID = "req-1"
	f.asked = append(f.asked, r)
	return r, nil
}

func (f *fakeDeploy) Who() string { return "alice@console" }

func newDeployFixture() *fakeDeploy {
	at := t0.Add(-time.Minute)
	return &fakeDeploy{
		st: deploy.Status{Datacenter: "dc1", Leader: &deploy.Holder{ID: "prov-a:42"}, State: "launching",
			Guards: deploy.GuardView{RunsLastHour: 3, RunsPerHour: 120, MaxAttempts: 3},
			Held: []deploy.Hold{{Node: "dc1/node-00001", Incarnation: "dc1/node-00001//i-1", Stage: "web", At: at,
				Reason: "failed 3 times (max_attempts 3) \x1b]52;c;cHduZWQ=\x07\x1b[31m"}},
			Backoff: []deploy.Backoff{{Node: "dc1/node-00002", Stage: "base", Failures: 1, Until: t0.Add(time.Minute)}},
			Running: []deploy.RunView{{Batch: "roles-7", Stage: "roles", Nodes: []string{"dc1/node-00003"}, Started: at}},
			Queue:   []deploy.Queued{{Stage: "base", Nodes: []string{"dc1/node-00004"}, Since: at, ReadyAt: t0.Add(5 * time.Second)}},
			Decisions: []deploy.Decision{
				{Seq: 1, At: at, Kind: deploy.KindLaunched, Stage: "base", Reason: "run r1 started on 1 of 1 nodes"},
				{Seq: 2, At: at.Add(time.Second), Kind: deploy.KindHeld, Stage: "web", Node: "dc1/node-00001", Reason: "failed 3 times"},
			}},
		recs: map[string][]deploy.Record{"dc1/node-00001": {
			{Node: "dc1/node-00001", Incarnation: "dc1/node-00001//i-00000001", Stage: "base", Outcome: deploy.Succeeded, RunID: "r1", At: at},
			{Node: "dc1/node-00001", Incarnation: "dc1/node-00001//i-00000001", Stage: "web", Outcome: deploy.Failed, RunID: "r2", At: at},
			{Node: "dc1/node-00001", Incarnation: "dc1/node-00001/old-id/", Stage: "base", Outcome: deploy.Succeeded, RunID: "r0", At: at},
		}},
	}
}

func TestProvisionerViewAndActions(t *testing.T) {
	fd := newDeployFixture()
	h := newHarnessWith(t, synthSnapshot(10), 160, 30, true, func(o *Options) { o.Deploy = fd })
	h.press(":")
	h.keys("provisioner")
	h.press("enter")
	h.mustContain("leader prov-a:42 · launching · runs 3/120 this hour",
		"held 1 · backoff 1 · queued 1 · running 1",
		"held", "dc1/node-00001", "failed 3 times (max_attempts 3)",
		"backoff dc1/node-00002", "failed 1 of 3 attempts",
		"running dc1/node-00003", "batch roles-7",
		"queued  dc1/node-00004", "quiet period")
	h.mustNotContain("cHduZWQ") // the hostile OSC 52 payload is gone, not shown
	// The held row is first: u asks a reason (prefilled), then asks.
	h.press("u")
	h.mustContain("release dc1/node-00001, reason: released from the console")
	h.press("enter")
	if len(fd.asked) != 1 || fd.asked[0].Kind != deploy.RequestRelease || fd.asked[0].Node != "dc1/node-00001" || fd.asked[0].Who != "alice@console" {
		t.Fatalf("asked %+v", fd.asked)
	}
	h.mustContain("release dc1/node-00001: asked; prov-a:42 takes it at its next pass")
	// p pauses, with a reason typed.
	h.press("p")
	h.keys("maintenance window")
	h.press("enter")
	if len(fd.asked) != 2 || fd.asked[1].Kind != deploy.RequestPause || fd.asked[1].Reason != "maintenance window" {
		t.Fatalf("asked %+v", fd.asked)
	}
	// An empty reason asks nothing.
	h.press("down", "R")
	h.mustContain("rerun base on dc1/node-00002, reason: ")
	h.press("enter")
	h.mustContain("nothing asked: a reason is required")
	if len(fd.asked) != 2 {
		t.Fatalf("asked %+v", fd.asked)
	}
	// d: the decisions, newest first.
	h.press("d")
	scr := h.mustContain("held", "failed 3 times", "launched", "run r1 started")
	if strings.Index(scr, "run r1 started") < strings.Index(scr, "failed 3 times") {
		t.Errorf("decisions not newest first:\n%s", scr)
	}
	// enter: the whole decision; n: its node.
	h.press("enter")
	h.mustContain("Decision 2", "kind      held", "node      dc1/node-00001", "Reason", "failed 3 times")
	h.press("n")
	h.mustContain("Node node-00001  dc dc1")
	h.press("esc", "esc")
	// Node detail: the node's stage records, the hold, older incarnations.
	h.press("esc", "home", "enter")
	h.mustContain("Provisioner stages", "base         succeeded", "run r1", "web          failed", "held (web): failed 3 times",
		"1 records of earlier incarnations")
}

func TestProvisionerViewReadOnly(t *testing.T) {
	fd := newDeployFixture()
	h := newHarnessWith(t, synthSnapshot(10), 160, 30, true, func(o *Options) { o.Deploy = fd; o.ReadOnly = true })
	h.press(":")
	h.keys("provisioner")
	h.press("enter")
	h.mustContain("dc1/node-00001")
	h.press("u", "p", "R")
	if len(fd.asked) != 0 {
		t.Fatalf("read-only console asked %+v", fd.asked)
	}
	h.mustNotContain("release dc1/node-00001, reason")
	h.press("?")
	h.mustNotContain("pause launching", "release the held node", "forgets its record")
}

// Without a deployment server the view says why and offers nothing.
func TestProvisionerViewOff(t *testing.T) {
	h := newHarnessWith(t, synthSnapshot(3), 120, 24, true, func(o *Options) { o.DeployOff = "the provisioner's state is not readable: ACL" })
	h.press(":")
	h.keys("pv")
	h.press("enter")
	h.mustContain("the provisioner's state is not readable: ACL")
}
