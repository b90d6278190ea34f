package e2e

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

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

// Two instances: one leads, the other stands by and says who leads. The
// leader is SIGKILLed while a run is going: the standby leads within the
// documented time (≈ 3 × the session TTL of 10 s: Consul expires the
// session after 2 × TTL, then the lock-delay of one TTL) and runs only
// what was not applied — base and roles were, web was in flight.
func TestLeaderKilledMidRun(t *testing.T) {
	t.Parallel()
	f := newFixture(t, chainConfig)
	if err := os.WriteFile(filepath.Join(f.marks, "slow-web-app-01"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	procs := map[string]*proc{"a": f.start(t, "a", "--id", "a"), "b": f.start(t, "b", "--id", "b")}
	var leader string
	waitFor(t, 30*time.Second, "one leader", func() bool {
		if st := f.status(t); st.Leader != nil {
			leader = st.Leader.ID
		}
		return leader != ""
	})
	standby := map[string]string{"a": "b", "b": "a"}[leader]
	waitFor(t, 15*time.Second, "the standby naming the leader", func() bool {
		return regexp.MustCompile(`msg=standby .*leader=` + leader + `\b`).MatchString(procs[standby].log.String())
	})
	f.addAgent(t, "app-01")
	waitFor(t, 3*time.Minute, "web running on app-01", func() bool {
		st := f.status(t)
		return len(st.Running) == 1 && st.Running[0].Stage == "web"
	})
	before := f.records(t, "app-01")
	if before["base"].Outcome != deploy.Succeeded || before["roles"].Outcome != deploy.Succeeded {
		t.Fatalf("records before the kill: %+v", before)
	}
	if err := procs[leader].cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	var took time.Duration
	waitFor(t, 60*time.Second, "the standby leading", func() bool {
		st := f.status(t)
		if st.Leader != nil && st.Leader.ID == standby {
			took = time.Since(killed)
			return true
		}
		return false
	})
	t.Logf("failover after SIGKILL: %s", took.Round(100*time.Millisecond))
	if err := os.Remove(filepath.Join(f.marks, "slow-web-app-01")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Minute, "web applied by the new leader", func() bool {
		return f.records(t, "app-01")["web"].Outcome == deploy.Succeeded
	})
	after := f.records(t, "app-01")
	for _, s := range []string{"base", "roles"} {
		if after[s].RunID != before[s].RunID || !after[s].At.Equal(before[s].At) {
			t.Errorf("%s ran again: %+v, was %+v", s, after[s], before[s])
		}
	}
	if n := f.runs("app-01", "base"); n != 1 {
		t.Errorf("base ran %d times; want 1", n)
	}
	st := f.status(t)
	found := false
	for _, d := range st.Decisions {
		if d.Kind == deploy.KindStopped && d.Stage == "web" && strings.Contains(d.Reason, "previous leader") {
			found = true
		}
	}
	if !found {
		t.Errorf("no decision about the previous leader's web run: %+v", st.Decisions)
	}
}

// --dry-run decides and logs but launches nothing, writes nothing (no
// record, no desired roles, no lock); --once launches what is due now,
// waits for it and exits.
func TestDryRunAndOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t, chainConfig)
	f.addAgent(t, "app-01")
	out, err := f.run(t, "provisioner", "--dry-run", "--once")
	if err != nil {
		t.Fatalf("--dry-run --once: %v\n%s", err, out)
	}
	for _, want := range []string{"dry run: would set new node of group app", "dry run: would launch on 1 nodes", "stage=base"} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run output lacks %q:\n%s", want, out)
		}
	}
	if n := f.runs("app-01", "base"); n != 0 {
		t.Errorf("the dry run ran base %d times", n)
	}
	pairs, _, err := f.api.KV().List("fleetdeck/", nil)
	if err != nil || len(pairs) != 0 {
		t.Errorf("the dry run wrote to KV: %d keys, %v", len(pairs), err)
	}

	start := time.Now()
	out, err = f.run(t, "provisioner", "--once")
	if err != nil {
		t.Fatalf("--once: %v\n%s", err, out)
	}
	t.Logf("--once took %s:\n%s", time.Since(start).Round(time.Millisecond), out)
	recs := f.records(t, "app-01")
	if recs["base"].Outcome != deploy.Succeeded || len(recs) != 1 {
		t.Errorf("after --once: %+v; want base applied and nothing else yet", recs)
	}
	if h, _, err := f.api.KV().Get(deploy.DefaultPrefix+"leader", nil); err != nil || (h != nil && h.Session != "") {
		t.Errorf("--once left the lock held: %+v, %v", h, err)
	}
}

// The circuit breaker opens when the configured share of the last runs
// failed: nothing launches, the status says until when, PagerDuty gets a
// critical event.
func TestBreakerOpensAndAlerts(t *testing.T) {
	t.Parallel()
	pd := newReceiver(t, true)
	cfg := strings.Replace(chainConfig, "max_attempts = 2", fmt.Sprintf("max_attempts = 9\nbreaker_window = 2\nbreaker_ratio = 1.0\npagerduty_routing_key = \"rk\"\npagerduty_url = %q", pd.srv.URL), 1)
	f := newFixture(t, cfg)
	for _, n := range []string{"app-01", "app-02"} {
		if err := os.WriteFile(filepath.Join(f.marks, "fail-base-"+n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f.start(t, "a", "--id", "a")
	f.addAgent(t, "app-01")
	waitFor(t, 2*time.Minute, "the breaker open", func() bool { return f.status(t).Breaker.Open })
	st := f.status(t)
	if !strings.HasPrefix(st.State, "breaker open until ") {
		t.Errorf("state %q", st.State)
	}
	f.addAgent(t, "app-02") // due, but nothing may launch
	time.Sleep(6 * time.Second)
	st = f.status(t)
	if len(st.Running) != 0 || attempts(st, "base") != 2 {
		t.Errorf("while open: running %+v, %d failures (want 2)", st.Running, attempts(st, "base"))
	}
	queued := false
	for _, q := range st.Queue {
		queued = queued || (q.Stage == "base" && strings.Contains(q.Waiting, "circuit breaker open"))
	}
	if !queued {
		t.Errorf("queue %+v: want base waiting on the breaker", st.Queue)
	}
	waitFor(t, 30*time.Second, "the breaker's PagerDuty event", func() bool {
		for _, ev := range pd.got() {
			p, _ := ev["payload"].(map[string]any)
			if ev["dedup_key"] == "fleetdeck/dc1/breaker" && p["severity"] == "critical" {
				return true
			}
		}
		return false
	})
}

// Consul frozen (SIGSTOP) under the leader: it stops leading within half
// the session TTL and says why; thawed, it leads again and provisions.
func TestConsulFrozen(t *testing.T) {
	t.Parallel()
	f := newFixture(t, chainConfig)
	p := f.start(t, "a", "--id", "a")
	waitFor(t, 30*time.Second, "a leader", func() bool { return f.status(t).Leader != nil })
	thaw := f.server.Freeze(t)
	frozen := time.Now()
	waitFor(t, 30*time.Second, "the leader stopping", func() bool {
		return strings.Contains(p.log.String(), "stopped leading: leadership lost") || strings.Contains(p.log.String(), "msg=\"stopped leading:")
	})
	t.Logf("stopped leading %s after the freeze", time.Since(frozen).Round(100*time.Millisecond))
	if !strings.Contains(p.log.String(), "not renewed") {
		t.Errorf("the log does not say why:\n%s", p.log.String())
	}
	thaw()
	f.addAgent(t, "app-01")
	waitFor(t, 3*time.Minute, "app-01 provisioned after the thaw", func() bool {
		return f.records(t, "app-01")["web"].Outcome == deploy.Succeeded
	})
}

// 200 nodes join in a burst: the quiet period batches them into
// ceil(200/batch_max) runs, and every one is applied once.
func TestBurstIsBatched(t *testing.T) {
	t.Parallel()
	const nodes, batchMax = 200, 50
	f := newFixture(t, fmt.Sprintf(`
[provisioner]
quiet_min = "3s"
quiet_max = "20s"
batch_max = %d
[[provisioner.stage]]
name = "base"
select = "group:burst"
playbook = "base.yml"
`, batchMax))
	f.start(t, "a", "--id", "a")
	waitFor(t, 30*time.Second, "a leader", func() bool { return f.status(t).Leader != nil })
	start := time.Now()
	for i := range nodes {
		name := fmt.Sprintf("burst-%03d", i)
		_, err := f.api.Catalog().Register(&api.CatalogRegistration{Node: name, Address: fmt.Sprintf("127.0.%d.%d", 1+i/250, 1+i%250),
			NodeMeta: map[string]string{"asg": "burst", "instance-id": "i-" + name}}, nil)
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d nodes registered in %s", nodes, time.Since(start).Round(time.Millisecond))
	var st deploy.Status
	waitFor(t, 5*time.Minute, "every burst node applied", func() bool {
		pairs, _, err := f.api.KV().Keys(deploy.DefaultPrefix+"records/", "", nil)
		return err == nil && len(pairs) == nodes
	})
	t.Logf("all %d applied %s after the first registration", nodes, time.Since(start).Round(time.Millisecond))
	st = f.status(t)
	runs := 0
	for _, d := range st.Decisions {
		if d.Kind == deploy.KindLaunched {
			runs++
		}
	}
	t.Logf("%d runs launched", runs)
	if want := (nodes + batchMax - 1) / batchMax; runs > want {
		t.Errorf("%d runs launched; want at most %d", runs, want)
	}
	for i := range nodes {
		if n := f.runs(fmt.Sprintf("burst-%03d", i), "base"); n != 1 {
			t.Fatalf("burst-%03d ran base %d times", i, n)
		}
	}
}

// A stage whose select flaps — the node's role comes and goes, as when a
// playbook or a script keeps undoing it — is due, then not, then due: it
// never gets a quiet period, and after more than oscillation_max returns
// in an hour the node is held, alerting, with no run launched. (A
// playbook that toggles its own role cannot loop here: its successful
// record keeps its stage from being due again; the select is what can
// flap.)
func TestOscillatingNodeHeld(t *testing.T) {
	t.Parallel()
	f := newFixture(t, `
[provisioner]
quiet_min = "4s"
quiet_max = "60s"
oscillation_max = 4
[[provisioner.stage]]
name = "base"
select = "group:app"
playbook = "base.yml"
[[provisioner.stage]]
name = "web"
select = "role:flappy"
playbook = "web.yml"
after = ["base"]
`)
	f.start(t, "a", "--id", "a")
	a := f.addAgent(t, "app-01")
	waitFor(t, 2*time.Minute, "base applied", func() bool { return f.records(t, "app-01")["base"].Outcome == deploy.Succeeded })
	c, err := a.Client()
	if err != nil {
		t.Fatal(err)
	}
	flips := 0
	held := func() bool {
		for _, h := range f.status(t).Held {
			if h.Node == "dc1/app-01" && strings.Contains(h.Reason, "oscillating") {
				return true
			}
		}
		return false
	}
	for !held() {
		if flips > 30 {
			t.Fatalf("not held after %d flips", flips)
		}
		if err := c.Agent().ServiceRegister(&api.AgentServiceRegistration{ID: "flappy", Name: "flappy"}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(1500 * time.Millisecond)
		if err := c.Agent().ServiceDeregister("flappy"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(1500 * time.Millisecond)
		flips++
	}
	t.Logf("held as oscillating after %d flips", flips)
	// Steady now, but held: web does not run.
	if err := c.Agent().ServiceRegister(&api.AgentServiceRegistration{ID: "flappy", Name: "flappy"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(8 * time.Second)
	if n := f.runs("app-01", "web"); n != 0 {
		t.Errorf("web ran %d times while the node was held", n)
	}
	if out, err := f.run(t, "provisioner", "release", "dc1/app-01"); err != nil {
		t.Fatalf("release: %v: %s", err, out)
	}
	waitFor(t, time.Minute, "web applied after the release", func() bool { return f.runs("app-01", "web") == 1 })
}

// SIGTERM mid-run: nothing new launches, the run gets the grace period,
// is cancelled, the process exits 0 and says so; restarted, the
// provisioner re-runs only the cancelled stage, once.
func TestSigtermThenRestart(t *testing.T) {
	t.Parallel()
	f := newFixture(t, strings.Replace(chainConfig, `grace = "20s"`, `grace = "2s"`, 1))
	if err := os.WriteFile(filepath.Join(f.marks, "slow-web-app-01"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	p := f.start(t, "a", "--id", "a")
	f.addAgent(t, "app-01")
	waitFor(t, 3*time.Minute, "web running", func() bool {
		st := f.status(t)
		return len(st.Running) == 1 && st.Running[0].Stage == "web"
	})
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	select {
	case err := <-p.done:
		p.done <- err // for the cleanup
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(40 * time.Second):
		t.Fatal("still running 40 s after SIGTERM")
	}
	t.Logf("exited %s after SIGTERM", time.Since(sent).Round(100*time.Millisecond))
	for _, want := range []string{"stopping: waiting for runs to finish", "the grace period ended; cancelling runs", "stopped leading: shutdown"} {
		if !strings.Contains(p.log.String(), want) {
			t.Errorf("log lacks %q", want)
		}
	}
	if st := f.status(t); st.Leader != nil || len(st.Running) != 0 {
		t.Errorf("after the stop: leader %+v, running %+v", st.Leader, st.Running)
	}
	if err := os.Remove(filepath.Join(f.marks, "slow-web-app-01")); err != nil {
		t.Fatal(err)
	}
	f.start(t, "a2", "--id", "a2")
	waitFor(t, 2*time.Minute, "web applied after the restart", func() bool {
		return f.records(t, "app-01")["web"].Outcome == deploy.Succeeded
	})
	time.Sleep(3 * time.Second)
	if b, w := f.runs("app-01", "base"), f.runs("app-01", "web"); b != 1 || w != 1 {
		t.Errorf("base ran %d times, web %d; want once each", b, w)
	}
}

// Operators pause (a new node waits, and the status says why), resume
// (it converges) and rerun one stage of one node (only that stage runs
// again); a bad configuration exits 1 before anything starts.
func TestOperatorRequestsAndBadConfig(t *testing.T) {
	t.Parallel()
	f := newFixture(t, chainConfig)
	f.start(t, "a", "--id", "a")
	waitFor(t, 30*time.Second, "a leader", func() bool { return f.status(t).Leader != nil })
	if out, err := f.run(t, "provisioner", "--once"); err == nil || !strings.Contains(out, "a leads dc1 now") {
		t.Errorf("--once beside a leader: %v: %s", err, out)
	}
	if out, err := f.run(t, "provisioner", "pause"); err == nil || !strings.Contains(out, "pause needs a reason") {
		t.Errorf("pause without a reason: %v: %s", err, out)
	}
	if out, err := f.run(t, "provisioner", "pause", "--reason", "change window"); err != nil {
		t.Fatalf("pause: %v: %s", err, out)
	}
	waitFor(t, 30*time.Second, "paused", func() bool { return strings.HasPrefix(f.status(t).State, "paused: change window (") })
	f.addAgent(t, "app-01")
	waitFor(t, 30*time.Second, "app-01 waiting on the pause", func() bool {
		for _, q := range f.status(t).Queue {
			if q.Stage == "base" && strings.Contains(q.Waiting, "paused: change window") {
				return true
			}
		}
		return false
	})
	if n := f.runs("app-01", "base"); n != 0 {
		t.Fatalf("base ran %d times while paused", n)
	}
	out, err := f.run(t, "provisioner", "status")
	if err != nil || !strings.Contains(out, "paused: change window") || !strings.Contains(out, "queue (1)") {
		t.Errorf("status while paused: %v:\n%s", err, out)
	}
	if out, err := f.run(t, "provisioner", "resume", "--reason", "window over"); err != nil {
		t.Fatalf("resume: %v: %s", err, out)
	}
	waitFor(t, 3*time.Minute, "app-01 converged after the resume", func() bool {
		return f.records(t, "app-01")["web"].Outcome == deploy.Succeeded
	})
	if out, err := f.run(t, "provisioner", "rerun", "app-01", "--stage", "nope", "--reason", "x"); err == nil || !strings.Contains(out, `no stage "nope"`) {
		t.Errorf("rerun of an unknown stage: %v: %s", err, out)
	}
	if out, err := f.run(t, "provisioner", "rerun", "app-01", "--stage", "web", "--reason", "config drifted"); err != nil {
		t.Fatalf("rerun: %v: %s", err, out)
	}
	waitFor(t, 2*time.Minute, "web run again", func() bool { return f.runs("app-01", "web") == 2 })
	time.Sleep(3 * time.Second)
	if b, w := f.runs("app-01", "base"), f.runs("app-01", "web"); b != 1 || w != 2 {
		t.Errorf("after the rerun base ran %d times, web %d; want 1 and 2", b, w)
	}

	// Bad configurations: exit 1, a message naming the problem.
	for name, cfg := range map[string]string{
		"no stages":     "[provisioner]\nquiet_min = \"1s\"\n",
		"a cycle":       "[[provisioner.stage]]\nname = \"a\"\nplaybook = \"base.yml\"\nafter = [\"b\"]\n[[provisioner.stage]]\nname = \"b\"\nplaybook = \"web.yml\"\nafter = [\"a\"]\n",
		"missing":       "[[provisioner.stage]]\nname = \"a\"\nplaybook = \"nope.yml\"\n",
		"bad select":    "[[provisioner.stage]]\nname = \"a\"\nplaybook = \"base.yml\"\nselect = \"helth:critical\"\n",
		"unknown key":   "[provisioner]\nquiet = \"1s\"\n[[provisioner.stage]]\nname = \"a\"\nplaybook = \"base.yml\"\n",
		"bad guard":     "[provisioner]\nbatch_max = 0\n[[provisioner.stage]]\nname = \"a\"\nplaybook = \"base.yml\"\n",
		"bad alert url": "[provisioner]\nslack_webhook_url = \"hooks.slack.com/x\"\n[[provisioner.stage]]\nname = \"a\"\nplaybook = \"base.yml\"\n",
	} {
		want := map[string]string{"no stages": "no stages", "a cycle": "a → b → a", "missing": "nope.yml", "bad select": `unknown field "helth:"`,
			"unknown key": "provisioner.quiet", "bad guard": "batch_max", "bad alert url": "slack_webhook_url"}[name]
		path := filepath.Join(t.TempDir(), "bad.toml")
		base := fmt.Sprintf("[consul]\naddress = \"http://%s\"\n[ansible]\nplaybook_dir = %q\n", f.server.HTTPAddr(), f.pbDir)
		if err := os.WriteFile(path, []byte(base+cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(f.bin, "--config", path, "--state-dir", t.TempDir(), "provisioner")
		cmd.Env = f.env
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), want) {
			t.Errorf("%s: %v, want exit 1 naming %q:\n%s", name, err, want, out)
		}
	}
}
