package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fleetdeck/fleetdeck/deploy"
)

// A blank server joins: base, then roles (its group's default, web),
// then — once the agent reloads with the web service — the web stage,
// each once, in order, and the node converges.
func TestChainConverges(t *testing.T) {
	t.Parallel()
	f := newFixture(t, chainConfig)
	p := f.start(t, "a", "--id", "a")
	waitFor(t, 30*time.Second, "a leader", func() bool {
		st := f.status(t)
		return st.Leader != nil && st.Leader.ID == "a"
	})
	f.addAgent(t, "app-01")
	waitFor(t, 3*time.Minute, "base, roles and web applied on app-01", func() bool {
		recs := f.records(t, "app-01")
		for _, s := range []string{"base", "roles", "web"} {
			if recs[s].Outcome != deploy.Succeeded {
				return false
			}
		}
		return true
	})
	recs := f.records(t, "app-01")
	if !(recs["base"].At.Before(recs["roles"].At) && recs["roles"].At.Before(recs["web"].At)) {
		t.Errorf("stages out of order: base %s roles %s web %s", recs["base"].At, recs["roles"].At, recs["web"].At)
	}
	if !slices.Contains(f.services(t, "app-01"), "fleetdeck-web") {
		t.Errorf("app-01's services %v: want fleetdeck-web", f.services(t, "app-01"))
	}
	// Nothing runs again while nothing changes.
	time.Sleep(5 * time.Second)
	if b, w := f.runs("app-01", "base"), f.runs("app-01", "web"); b != 1 || w != 1 {
		t.Errorf("base ran %d times, web %d; want once each", b, w)
	}
	st := f.status(t)
	var kinds []deploy.Kind
	for _, d := range st.Decisions {
		kinds = append(kinds, d.Kind)
	}
	for _, k := range []deploy.Kind{deploy.KindLeader, deploy.KindDefaults, deploy.KindDue, deploy.KindBatched, deploy.KindLaunched, deploy.KindSucceeded} {
		if !slices.Contains(kinds, k) {
			t.Errorf("decisions %v: no %s", kinds, k)
		}
	}
	if testing.Verbose() {
		t.Logf("provisioner log:\n%s", p.log.String())
	}
}

// A stage that fails is retried after a backoff, held after max_attempts
// (alerting Slack and PagerDuty, with a dedup key per node and stage),
// runs no more while held, and runs again once released.
func TestFailingStageHeldThenReleased(t *testing.T) {
	t.Parallel()
	slack, pd := newReceiver(t, false), newReceiver(t, true)
	alerting := fmt.Sprintf("grace = \"20s\"\nslack_webhook_url = %q\npagerduty_routing_key = \"routing-key-1\"\npagerduty_url = %q", slack.srv.URL, pd.srv.URL)
	f := newFixture(t, strings.Replace(chainConfig, `grace = "20s"`, alerting, 1))
	if err := os.WriteFile(filepath.Join(f.marks, "fail-web-app-01"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	f.start(t, "a", "--id", "a")
	f.addAgent(t, "app-01")
	waitFor(t, 3*time.Minute, "app-01's web stage held", func() bool {
		return len(f.status(t).Held) == 1
	})
	st := f.status(t)
	h := st.Held[0]
	if h.Node != "dc1/app-01" || h.Stage != "web" || !strings.Contains(h.Reason, "failed 2 times") {
		t.Fatalf("held: %+v", h)
	}
	if n := f.runs("app-01", "web"); n != 0 {
		t.Errorf("web left %d marks; its runs all failed", n)
	}
	var fails []deploy.Decision
	for _, d := range st.Decisions {
		if d.Kind == deploy.KindFailed && d.Stage == "web" {
			fails = append(fails, d)
		}
	}
	if len(fails) != 2 || fails[0].Until.IsZero() || !strings.Contains(fails[0].Reason, "retry after a backoff of 1s") {
		t.Fatalf("failed decisions: %+v", fails)
	}
	// Held: no third attempt however long it waits.
	time.Sleep(4 * time.Second)
	if a := attempts(f.status(t), "web"); a != 2 {
		t.Errorf("%d failed attempts while held; want 2", a)
	}
	waitFor(t, 30*time.Second, "the held alerts", func() bool { return len(slack.got()) >= 1 && len(pd.got()) >= 1 })
	ev := pd.got()[0]
	if ev["routing_key"] != "routing-key-1" || ev["event_action"] != "trigger" || ev["dedup_key"] != "fleetdeck/dc1/held/dc1/app-01/web" {
		t.Errorf("PagerDuty event: %v", ev)
	}
	if text, _ := slack.got()[0]["text"].(string); !strings.Contains(text, "dc1/app-01 held (web)") {
		t.Errorf("Slack text: %q", text)
	}

	// The operator fixes the cause and releases the node.
	if err := os.Remove(filepath.Join(f.marks, "fail-web-app-01")); err != nil {
		t.Fatal(err)
	}
	out, err := f.run(t, "provisioner", "release", "app-01", "--reason", "fixed the web playbook")
	if err != nil || !strings.Contains(out, "a takes it at its next pass") {
		t.Fatalf("release: %v: %s", err, out)
	}
	waitFor(t, 2*time.Minute, "web applied after the release", func() bool {
		return f.records(t, "app-01")["web"].Outcome == deploy.Succeeded
	})
	if n := f.runs("app-01", "web"); n != 1 {
		t.Errorf("web ran %d times after the release; want 1", n)
	}
	if st := f.status(t); len(st.Held) != 0 || len(st.Requests) != 0 {
		t.Errorf("after release: held %+v, requests %+v", st.Held, st.Requests)
	}
	waitFor(t, 30*time.Second, "the resolve event", func() bool {
		for _, ev := range pd.got() {
			if ev["event_action"] == "resolve" && ev["dedup_key"] == "fleetdeck/dc1/held/dc1/app-01/web" {
				return true
			}
		}
		return false
	})
}

// attempts counts the failed decisions of a stage.
func attempts(st deploy.Status, stage string) int {
	n := 0
	for _, d := range st.Decisions {
		if d.Kind == deploy.KindFailed && d.Stage == stage {
			n++
		}
	}
	return n
}
