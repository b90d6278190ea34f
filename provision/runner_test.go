package provision_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fleetdeck/fleetdeck/internal/sshtest"
	"github.com/fleetdeck/fleetdeck/provision"
)

// rtNeed returns the path of a tool the test needs. Absent, the test skips —
// unless FLEETDECK_REQUIRE_CONSUL=1 (the project's test command), where a
// missing tool is a failure: sshtest.Need, the one place that rule lives.
func rtNeed(t testing.TB, name string) string {
	t.Helper()
	return sshtest.Need(t, name)
}

// rtHost is one host of a hand-built inventory.
type rtHost struct {
	name   string
	groups []string
	vars   map[string]any
}

// rtInventory builds dynamic-inventory JSON (what `fleetdeck inventory
// --list` prints). Hosts get ansible_connection=local unless vars say
// otherwise.
func rtInventory(t testing.TB, hosts ...rtHost) []byte {
	t.Helper()
	top := map[string]any{}
	groups := map[string][]string{}
	hostvars := map[string]any{}
	for _, h := range hosts {
		vars := map[string]any{"ansible_connection": "local", "ansible_python_interpreter": "/usr/bin/python3"}
		for k, v := range h.vars {
			vars[k] = v
		}
		hostvars[h.name] = vars
		gs := h.groups
		if len(gs) == 0 {
			gs = []string{"ungrouped"}
		}
		for _, g := range gs {
			groups[g] = append(groups[g], h.name)
		}
	}
	for g, hs := range groups {
		top[g] = map[string]any{"hosts": hs}
	}
	top["_meta"] = map[string]any{"hostvars": hostvars}
	b, err := json.Marshal(top)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rtRunner makes a catalog from the given playbooks and a runner over it.
func rtRunner(t testing.TB, playbooks map[string]string, mod func(*provision.RunnerConfig)) *provision.Runner {
	t.Helper()
	rtNeed(t, "ansible-playbook")
	dir := t.TempDir()
	for name, body := range playbooks {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cat, err := provision.NewPlaybookCatalog(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg := provision.RunnerConfig{Catalog: cat, RunsDir: filepath.Join(t.TempDir(), "runs"), CancelGrace: 3 * time.Second, TermGrace: 2 * time.Second}
	if mod != nil {
		mod(&cfg)
	}
	r, err := provision.NewRunner(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// rtRun previews and runs spec to the end.
func rtRun(t testing.TB, r *provision.Runner, spec provision.RunSpec) (*provision.RunPlan, provision.RunReport) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	plan, err := r.Preview(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	run, err := r.Start(ctx, plan)
	if err != nil {
		t.Fatal(err)
	}
	res, err := run.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if t.Failed() || testing.Verbose() {
		out, _ := os.ReadFile(res.OutputPath)
		t.Logf("output:\n%s", out)
	}
	return plan, res
}

const rtMixedPlaybook = `# A mixed run: ok, changed, skipped, failed.
- name: mixed
  hosts: all
  gather_facts: false
  tasks:
    - name: say hello
      debug:
        msg: "hello {{ inventory_hostname }}"
    - name: change something
      command: echo changed
    - name: only on some
      debug:
        msg: skipped elsewhere
      when: inventory_hostname == "h1"
    - name: fail on the marked host
      fail:
        msg: "simulated failure on {{ inventory_hostname }}"
      when: fail_me | default(false)
    - name: loop
      debug:
        msg: "{{ item }}"
      loop: [a, b]
`

func TestRunLocalEventsStatesAndReplay(t *testing.T) {
	r := rtRunner(t, map[string]string{"mixed.yml": rtMixedPlaybook}, nil)
	inv := rtInventory(t,
		rtHost{name: "h1", groups: []string{"web"}},
		rtHost{name: "h2", groups: []string{"web"}},
		rtHost{name: "h3", groups: []string{"db"}, vars: map[string]any{"fail_me": true}},
		rtHost{name: "h4", groups: []string{"db"}},
	)
	plan, res := rtRun(t, r, provision.RunSpec{Playbook: "mixed", Inventory: inv, Limit: []string{"h1", "h2", "h3"}})

	if got := strings.Join(plan.Hosts, ","); got != "h1,h2,h3" {
		t.Errorf("preview hosts = %s, want h1,h2,h3 (h4 is outside the limit)", got)
	}
	if res.End.ExitCode != 2 || res.End.Outcome != provision.OutcomeFailed {
		t.Errorf("end = %+v, want exit 2 / failed", res.End)
	}
	st := res.State
	want := map[string]provision.HostStatus{"h1": provision.HostChanged, "h2": provision.HostChanged, "h3": provision.HostFailed}
	for h, w := range want {
		if got := st.Hosts[h].Status; got != w {
			t.Errorf("host %s status = %s, want %s", h, got, w)
		}
	}
	if _, ok := st.Hosts["h4"]; ok {
		t.Error("h4 appears on the board although it was not targeted")
	}
	if f := st.Hosts["h3"].LastFailure; f == nil || f.Task != "fail on the marked host" || f.Result.Msg != "simulated failure on h3" {
		t.Errorf("h3 failure detail = %+v", f)
	}
	if rc := st.Recap["h1"]; rc.OK != 4 || rc.Changed != 1 || rc.Skipped != 1 {
		t.Errorf("recap h1 = %+v, want ok=4 changed=1 skipped=1", rc)
	}
	if rc := st.Recap["h3"]; rc.Failures != 1 {
		t.Errorf("recap h3 = %+v, want 1 failure", rc)
	}
	var names []string
	for _, task := range st.Tasks {
		names = append(names, task.Name)
	}
	if got := strings.Join(names, "|"); got != "say hello|change something|only on some|fail on the marked host|loop" {
		t.Errorf("task list = %s", got)
	}
	if c := st.Tasks[3].Counts; c.Failures != 1 || c.Skipped != 2 {
		t.Errorf("fail task counts = %+v", c)
	}
	if st.End == nil || st.End.Outcome != provision.OutcomeFailed {
		t.Errorf("state end = %+v", st.End)
	}
	if res.PlaybookSHA256 != plan.Playbook.SHA256 || len(res.PlaybookSHA256) != 64 {
		t.Errorf("checksum %q vs catalog %q", res.PlaybookSHA256, plan.Playbook.SHA256)
	}
	out, err := os.ReadFile(res.OutputPath)
	if err != nil || !bytes.Contains(out, []byte("PLAY RECAP")) {
		t.Errorf("output.log lacks the human recap (err %v)", err)
	}

	// Every AWX event kind of a plain run shows up.
	kinds := map[provision.EventKind]int{}
	replay := provision.NewRunState(plan.Hosts)
	f, err := os.Open(res.EventsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<24)
	var lastSeq int64
	for sc.Scan() {
		ev, err := provision.ParseRunEvent(sc.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		if ev.Seq <= lastSeq {
			t.Errorf("seq %d after %d", ev.Seq, lastSeq)
		}
		lastSeq = ev.Seq
		kinds[ev.Event]++
		replay.Apply(ev)
	}
	for _, k := range []provision.EventKind{provision.EventPlaybookStart, provision.EventPlayStart, provision.EventTaskStart,
		provision.EventRunnerStart, provision.EventRunnerOK, provision.EventRunnerFailed, provision.EventRunnerSkipped,
		provision.EventItemOK, provision.EventStats, provision.EventRunEnd} {
		if kinds[k] == 0 {
			t.Errorf("no %s event (kinds: %v)", k, kinds)
		}
	}
	// History replays the file to the same board.
	for _, h := range []string{"h1", "h2", "h3"} {
		if replay.Hosts[h].Status != st.Hosts[h].Status || replay.Hosts[h].Counts != st.Hosts[h].Counts {
			t.Errorf("replayed %s = %+v, live %+v", h, replay.Hosts[h], st.Hosts[h])
		}
	}
}

func TestRunEventsStreamInBatches(t *testing.T) {
	r := rtRunner(t, map[string]string{"mixed.yml": rtMixedPlaybook}, nil)
	inv := rtInventory(t, rtHost{name: "a1"}, rtHost{name: "a2"})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	plan, err := r.Preview(ctx, provision.RunSpec{Playbook: "mixed.yml", Inventory: inv})
	if err != nil {
		t.Fatal(err)
	}
	run, err := r.Start(ctx, plan)
	if err != nil {
		t.Fatal(err)
	}
	// Two independent consumers see the same stream.
	board := provision.NewRunState(plan.Hosts)
	from, batches, total := 0, 0, 0
	for {
		batch, next, err := run.Events(ctx, from)
		if err != nil {
			if err.Error() != "EOF" {
				t.Fatal(err)
			}
			break
		}
		batches++
		total += len(batch)
		for _, ev := range batch {
			board.Apply(ev)
		}
		from = next
	}
	all, _, err := run.Events(ctx, 0)
	if err != nil || len(all) != total {
		t.Fatalf("second cursor got %d events (err %v), first %d", len(all), err, total)
	}
	res, err := run.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if board.End == nil || board.Hosts["a1"].Status != provision.HostChanged {
		t.Errorf("streamed board: end %+v a1 %+v", board.End, board.Hosts["a1"])
	}
	if res.End.Outcome != provision.OutcomeOK {
		t.Errorf("outcome %s", res.End.Outcome)
	}
	var outBuf bytes.Buffer
	var off int64
	for {
		data, next, err := run.Output(ctx, off)
		if err != nil {
			break
		}
		outBuf.Write(data)
		off = next
	}
	if !strings.Contains(outBuf.String(), "PLAY RECAP") {
		t.Errorf("output stream lacks the recap:\n%s", outBuf.String())
	}
	t.Logf("%d events in %d batches", total, batches)
}

func TestRunCheckModeChangesNothing(t *testing.T) {
	target := filepath.Join(t.TempDir(), "made-by-ansible")
	pb := fmt.Sprintf(`- hosts: all
  gather_facts: false
  tasks:
    - name: write a file
      copy:
        content: "hello\n"
        dest: %q
`, target+"-{{ inventory_hostname }}")
	r := rtRunner(t, map[string]string{"write.yml": pb}, nil)
	inv := rtInventory(t, rtHost{name: "c1"}, rtHost{name: "c2"})
	plan, res := rtRun(t, r, provision.RunSpec{Playbook: "write", Inventory: inv, Check: true, Diff: true})
	if !contains(plan.Argv, "--check") || !contains(plan.Argv, "--diff") {
		t.Errorf("argv %q lacks --check/--diff", plan.Argv)
	}
	if !res.State.Check || !res.State.Diff {
		t.Error("playbook_on_start did not report check/diff")
	}
	if res.State.Hosts["c1"].Status != provision.HostChanged {
		t.Errorf("c1 = %s, want changed (would change)", res.State.Hosts["c1"].Status)
	}
	if _, err := os.Stat(target + "-c1"); !os.IsNotExist(err) {
		t.Errorf("check mode wrote %s (stat err %v)", target+"-c1", err)
	}
	var diff string
	f, _ := os.ReadFile(res.EventsPath)
	for _, line := range bytes.Split(f, []byte("\n")) {
		if ev, err := provision.ParseRunEvent(line); err == nil && ev.Event == provision.EventRunnerOK && ev.Result != nil {
			diff = ev.Result.Diff
		}
	}
	if !strings.Contains(diff, "+hello") {
		t.Errorf("diff in event = %q, want +hello", diff)
	}
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// rtProcs lists processes (pid → cmdline) in process group pgid, or whose
// command line contains marker.
func rtProcs(t testing.TB, pgid int, marker string) map[int]string {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]string{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp …; comm may contain spaces and ")".
		rest := stat[bytes.LastIndexByte(stat, ')')+1:]
		fields := strings.Fields(string(rest))
		// Zombies are dead already; they linger only until init reaps
		// the orphans of a killed group.
		if len(fields) < 3 || fields[0] == "Z" {
			continue
		}
		pg, _ := strconv.Atoi(fields[2])
		cmd, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		cl := strings.ReplaceAll(string(cmd), "\x00", " ")
		if pg == pgid || (marker != "" && strings.Contains(cl, marker)) {
			out[pid] = fields[0] + " " + cl
		}
	}
	return out
}

// rtSleepPlaybook sleeps for a marker duration, so /proc tells its sleeps
// from any other.
func rtSleepPlaybook(marker string) string {
	return `- hosts: all
  gather_facts: false
  tasks:
    - name: long task
      command: sleep ` + marker + `
`
}

func TestRunCancelLeavesNoProcesses(t *testing.T) {
	marker := fmt.Sprintf("300.%d", os.Getpid()%100000+1)
	r := rtRunner(t, map[string]string{"sleep.yml": rtSleepPlaybook(marker)}, nil)
	inv := rtInventory(t, rtHost{name: "s1"}, rtHost{name: "s2"}, rtHost{name: "s3"})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	plan, err := r.Preview(ctx, provision.RunSpec{Playbook: "sleep", Inventory: inv, Forks: 5})
	if err != nil {
		t.Fatal(err)
	}
	run, err := r.Start(ctx, plan)
	if err != nil {
		t.Fatal(err)
	}
	// Wait until every host's sleep is running.
	deadline := time.Now().Add(60 * time.Second)
	for {
		n := 0
		for _, cl := range rtProcs(t, -1, "sleep "+marker) {
			if strings.HasPrefix(strings.SplitN(cl, " ", 2)[1], "sleep ") {
				n++
			}
		}
		if n >= 3 {
			break
		}
		if time.Now().After(deadline) {
			run.Cancel()
			run.Wait(ctx)
			t.Fatalf("only %d sleeps started", n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	before := rtProcs(t, run.Pid(), "")
	if len(before) < 4 {
		t.Errorf("expected ansible-playbook, workers and sleeps in group %d, found %v", run.Pid(), before)
	}
	start := time.Now()
	run.Cancel()
	res, err := run.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cancel took %v, end %+v", time.Since(start).Round(time.Millisecond), res.End)
	if res.End.Outcome != provision.OutcomeCanceled || !res.End.Canceled {
		t.Errorf("end = %+v, want canceled", res.End)
	}
	if left := rtProcs(t, run.Pid(), "sleep "+marker); len(left) > 0 {
		t.Errorf("processes survived the cancel: %v", left)
	}
	for _, h := range []string{"s1", "s2", "s3"} {
		if st := res.State.Hosts[h].Status; st != provision.HostInterrupted {
			t.Errorf("%s = %s, want interrupted", h, st)
		}
	}
}

func TestRunTimeout(t *testing.T) {
	marker := fmt.Sprintf("301.%d", os.Getpid()%100000+1)
	r := rtRunner(t, map[string]string{"sleep.yml": rtSleepPlaybook(marker)}, func(c *provision.RunnerConfig) {
		c.CancelGrace = time.Second
	})
	inv := rtInventory(t, rtHost{name: "t1"}, rtHost{name: "t2"})
	start := time.Now()
	_, res := rtRun(t, r, provision.RunSpec{Playbook: "sleep", Inventory: inv, Timeout: 4 * time.Second})
	if res.End.Outcome != provision.OutcomeTimedOut || !res.End.TimedOut {
		t.Errorf("end = %+v, want timed_out", res.End)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("timeout took %v", d)
	}
	if left := rtProcs(t, -1, "sleep "+marker); len(left) > 0 {
		t.Errorf("processes survived the timeout: %v", left)
	}
}

func TestRunHostileValuesStayInert(t *testing.T) {
	dir := t.TempDir()
	pwnHost := filepath.Join(dir, "pwned-hostvar")
	pwnGroup := filepath.Join(dir, "pwned-groupvar")
	pwnExtra := filepath.Join(dir, "pwned-extravar")
	evil := func(p string) string { return "{{ lookup('pipe','touch " + p + "') }}" }
	pb := `- hosts: all
  gather_facts: false
  tasks:
    - name: use the values
      command: echo "{{ node_meta }} {{ group_note }} {{ note }}"
    - name: print them
      debug:
        msg: "{{ node_meta }}"
`
	r := rtRunner(t, map[string]string{"hostile.yml": pb}, nil)
	// Hand-built like fleetdeck's inventory: Consul values as
	// {"__ansible_unsafe": …}.
	inv := fmt.Sprintf(`{"web": {"hosts": ["evil1"], "vars": {"group_note": {"__ansible_unsafe": %q}}},
 "_meta": {"hostvars": {"evil1": {"ansible_connection": "local", "ansible_python_interpreter": "/usr/bin/python3",
   "node_meta": {"__ansible_unsafe": %q}}}}}`, evil(pwnGroup), evil(pwnHost))
	_, res := rtRun(t, r, provision.RunSpec{Playbook: "hostile", Inventory: []byte(inv),
		ExtraVars: []string{"note=" + evil(pwnExtra)}, Limit: []string{"evil1"}})
	if res.End.Outcome != provision.OutcomeOK {
		t.Errorf("outcome %s", res.End.Outcome)
	}
	for _, p := range []string{pwnHost, pwnGroup, pwnExtra} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s exists: a value was templated", p)
		}
	}
	var stdout string
	for _, f := range res.State.Failures {
		t.Errorf("unexpected failure %+v", f)
	}
	b, _ := os.ReadFile(res.EventsPath)
	for _, line := range bytes.Split(b, []byte("\n")) {
		if ev, err := provision.ParseRunEvent(line); err == nil && ev.Action == "command" && ev.Result != nil {
			stdout = ev.Result.Stdout
		}
	}
	if !strings.Contains(stdout, "lookup('pipe','touch "+pwnHost) || !strings.Contains(stdout, pwnExtra) {
		t.Errorf("the literal values did not reach the task: %q", stdout)
	}
}

func TestRunRejectsUntargetableLimitsAndBadSettings(t *testing.T) {
	r := rtRunner(t, map[string]string{"mixed.yml": rtMixedPlaybook}, nil)
	inv := rtInventory(t, rtHost{name: "h1", groups: []string{"web"}}, rtHost{name: "web2", groups: []string{"web2"}},
		rtHost{name: "all"}, rtHost{name: "a,b"})
	ctx := context.Background()
	for _, lim := range []string{"@/etc/passwd", "@h1", "all", "localhost", "ungrouped", "h*", "h1,web2", "a,b", "h1:web2",
		"!h1", "&h1", "~h.*", "h[0]", " h1", "h1\n", "-h1", "web", "web2", "nosuchhost", ""} {
		_, err := r.Prepare(ctx, provision.RunSpec{Playbook: "mixed", Inventory: inv, Limit: []string{lim}})
		if !errors.Is(err, provision.ErrLimit) {
			t.Errorf("limit %q: err = %v, want ErrLimit", lim, err)
		}
	}
	for _, ev := range []string{"novalue", "=x", "1a=x", "a-b=x", "ansible_connection=local", "ANSIBLE_HOST=x",
		"hostvars=x", "a b=x", "x=\x00"} {
		_, err := r.Prepare(ctx, provision.RunSpec{Playbook: "mixed", Inventory: inv, ExtraVars: []string{ev}})
		if !errors.Is(err, provision.ErrExtraVar) {
			t.Errorf("extra var %q: err = %v, want ErrExtraVar", ev, err)
		}
	}
	for _, pb := range []string{"../mixed.yml", "/etc/passwd", "nosuch", "", "mixed.yml/"} {
		_, err := r.Prepare(ctx, provision.RunSpec{Playbook: pb, Inventory: inv})
		if !errors.Is(err, provision.ErrPlaybookNotFound) {
			t.Errorf("playbook %q: err = %v, want ErrPlaybookNotFound", pb, err)
		}
	}
	for _, spec := range []provision.RunSpec{
		{Tags: []string{"a,b"}}, {SkipTags: []string{"x y"}}, {Forks: -1}, {Forks: 5000},
		{ID: "../x"}, {Inventory: []byte("[1,2]")},
	} {
		spec.Playbook = "mixed"
		if spec.Inventory == nil {
			spec.Inventory = inv
		}
		if _, err := r.Prepare(ctx, spec); !errors.Is(err, provision.ErrRunSpec) {
			t.Errorf("spec %+v: err = %v, want ErrRunSpec", spec, err)
		}
	}
	// A valid spec gives one --limit argument and unsafe extra vars.
	plan, err := r.Prepare(ctx, provision.RunSpec{Playbook: "mixed", Inventory: inv, Limit: []string{"h1"},
		ExtraVars: []string{"version=1.2.3"}, Tags: []string{"deploy"}, Forks: 3, Become: true})
	if err != nil {
		t.Fatal(err)
	}
	defer plan.Discard()
	var limits []string
	for _, a := range plan.Argv {
		if strings.HasPrefix(a, "--limit") {
			limits = append(limits, a)
		}
	}
	if strings.Join(limits, " ") != "--limit=h1" {
		t.Errorf("limit args = %q", limits)
	}
	xf := filepath.Join(plan.Dir, provision.RunExtraVarsFile)
	for _, want := range []string{"--extra-vars=@" + xf, "--tags=deploy", "--forks=3", "--become"} {
		if !contains(plan.Argv, want) {
			t.Errorf("argv %q lacks %s", plan.Argv, want)
		}
	}
	// Extra vars go through a private file, never the argv (ps shows it).
	b, err := os.ReadFile(xf)
	if err != nil || string(b) != `{"version":{"__ansible_unsafe":"1.2.3"}}` {
		t.Errorf("extra vars file = %q, %v", b, err)
	}
	if st, err := os.Stat(xf); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("extra vars file mode: %v, %v", st.Mode(), err)
	}
}

func TestPreviewListsHostsPerPlay(t *testing.T) {
	pb := `- name: everyone
  hosts: all
  gather_facts: false
  tasks: [{debug: {msg: hi}}]
- name: web only
  hosts: web
  gather_facts: false
  tasks: [{debug: {msg: hi}}]
`
	r := rtRunner(t, map[string]string{"two.yml": pb}, nil)
	inv := rtInventory(t, rtHost{name: "w1", groups: []string{"web"}}, rtHost{name: "w2", groups: []string{"web"}},
		rtHost{name: "d1", groups: []string{"db"}})
	ctx := context.Background()
	plan, err := r.Preview(ctx, provision.RunSpec{Playbook: "two", Inventory: inv, Limit: []string{"w1", "d1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer plan.Discard()
	if len(plan.Plays) != 2 || plan.Plays[0].Name != "everyone" || strings.Join(plan.Plays[0].Hosts, ",") != "d1,w1" ||
		plan.Plays[1].Pattern != "web" || strings.Join(plan.Plays[1].Hosts, ",") != "w1" {
		t.Errorf("plays = %+v", plan.Plays)
	}
	if strings.Join(plan.Hosts, ",") != "d1,w1" {
		t.Errorf("hosts = %v", plan.Hosts)
	}
	// A limit naming a host of the snapshot that no play matches is fine;
	// one the snapshot lacks never gets this far (ErrLimit above).
}

func TestRunnerMissingAnsibleSaysHowToInstall(t *testing.T) {
	cat, err := provision.NewPlaybookCatalog(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	_, err = provision.NewRunner(provision.RunnerConfig{Catalog: cat, AnsiblePlaybook: "/nonexistent/ansible-playbook"})
	if !errors.Is(err, provision.ErrAnsibleNotFound) || !strings.Contains(err.Error(), "apt-get install --no-install-recommends ansible-core") {
		t.Errorf("err = %v", err)
	}
}

func TestRunIgnoresSurprisingAnsibleEnv(t *testing.T) {
	// Inherited settings that would change what runs behind the preview's
	// back are dropped.
	t.Setenv("ANSIBLE_RUN_TAGS", "nothing-has-this-tag")
	t.Setenv("ANSIBLE_STDOUT_CALLBACK", "json")
	t.Setenv("ANSIBLE_INVENTORY", "/nonexistent")
	r := rtRunner(t, map[string]string{"mixed.yml": rtMixedPlaybook}, nil)
	inv := rtInventory(t, rtHost{name: "e1"})
	_, res := rtRun(t, r, provision.RunSpec{Playbook: "mixed", Inventory: inv})
	if res.State.Hosts["e1"].Status != provision.HostChanged {
		t.Errorf("e1 = %+v, want changed (ANSIBLE_RUN_TAGS leaked?)", res.State.Hosts["e1"])
	}
	out, _ := os.ReadFile(res.OutputPath)
	if !bytes.Contains(out, []byte("TASK [say hello]")) {
		t.Errorf("human output not from the default callback:\n%s", out)
	}
}

// CancelBy cuts the cancel sequence short: a run that ignores SIGINT and
// SIGTERM (here a stand-in for ansible-playbook that does, with a child
// that inherits it) is SIGKILLed about a second before the deadline instead
// of after the configured graces — also when a plain Cancel was already
// under way.
func TestRunCancelByDeadline(t *testing.T) {
	marker := fmt.Sprintf("303.%d", os.Getpid()%100000+1)
	fake := filepath.Join(t.TempDir(), "stubborn-ansible-playbook")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\ntrap '' INT TERM\nsleep "+marker+"\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	r := rtRunner(t, map[string]string{"any.yml": "- hosts: all\n  tasks: []\n"}, func(c *provision.RunnerConfig) {
		c.AnsiblePlaybook = fake
		c.CancelGrace, c.TermGrace = 30*time.Second, 30*time.Second
	})
	inv := rtInventory(t, rtHost{name: "x1"})
	for _, cancelFirst := range []bool{false, true} {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		plan, err := r.Prepare(ctx, provision.RunSpec{Playbook: "any", Inventory: inv})
		if err != nil {
			t.Fatal(err)
		}
		run, err := r.Start(ctx, plan)
		if err != nil {
			t.Fatal(err)
		}
		for len(rtProcs(t, run.Pid(), "sleep "+marker)) == 0 {
			time.Sleep(20 * time.Millisecond)
		}
		start := time.Now()
		if cancelFirst {
			run.Cancel()
			time.Sleep(time.Second)
		}
		deadline := time.Now().Add(4 * time.Second)
		run.CancelBy(deadline)
		res, err := run.Wait(ctx)
		gone := time.Now()
		if err != nil || !res.End.Canceled || res.End.Signal != "killed" {
			t.Errorf("end %+v, %v; want cancelled by SIGKILL", res.End, err)
		}
		if left := rtProcs(t, run.Pid(), "sleep "+marker); len(left) > 0 {
			t.Errorf("processes survived: %v", left)
		}
		// Without the deadline SIGKILL would come after 60s.
		if gone.Sub(start) > 30*time.Second {
			t.Errorf("the deadline did not shorten the graces: run ended %v after the cancel", gone.Sub(start))
		}
		t.Logf("cancel first %v: run gone %v before its deadline", cancelFirst, deadline.Sub(gone).Round(time.Millisecond))
		cancel()
	}
}
