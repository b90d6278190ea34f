package main

// End-to-end tests of `fleetdeck roles` and `fleetdeck maint`: the built
// binary against a real Consul server, real client agents (the nodes,
// with the demo's playbook-dir layout: roles.toml, fleetdeck-apply.yml,
// host_vars per node) and the real ansible-playbook.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/fleetdeck/fleetdeck/fleet"
	"github.com/fleetdeck/fleetdeck/internal/consulagent"
	"github.com/fleetdeck/fleetdeck/internal/demoplaybooks"
	"github.com/fleetdeck/fleetdeck/roles"
)

// rolesFixture is a Consul server with client agents app-01 … (each
// starting with the web role), a playbook directory laid out as the
// demo's, a config file naming both, and the fleetdeck binary.
type rolesFixture struct {
	bin, consul string
	api         *api.Client
	agents      []*consulagent.Agent
	pbDir, cfg  string
	env         []string
	marker      string
}

// hostileTags are the evil role's tags: Jinja and shell that would create
// the fixture's marker file if anything evaluated them.
func hostileTags(marker string) []string {
	return []string{"{{ lookup('pipe','touch " + marker + "') }}", "$(touch " + marker + ")", "`touch " + marker + "`; x", `"q" 's' \b`, "{% raw %}r{% endraw %}"}
}

// hostileReason is a reason a shell or Jinja would act on.
func hostileReason(marker string) string {
	return "incident {{ lookup('pipe','touch " + marker + "') }} $(touch " + marker + ") `touch " + marker + "` \"q\" 'q' \\ ünï"
}

func startRolesFixture(tb testing.TB, n int) *rolesFixture {
	tb.Helper()
	if _, err := exec.LookPath("ansible-playbook"); err != nil {
		tb.Fatalf("ansible-playbook not installed (Debian: apt-get install --no-install-recommends ansible-core): %v", err)
	}
	f := &rolesFixture{consul: consulagent.TestBinary(tb)}
	dir := tb.TempDir()
	f.marker = filepath.Join(dir, "pwned")
	f.bin = filepath.Join(dir, "fleetdeck")
	if out, err := exec.Command("go", "build", "-o", f.bin, ".").CombinedOutput(); err != nil {
		tb.Fatalf("building fleetdeck: %v: %s", err, out)
	}
	standIn := httptest.NewServer(demoplaybooks.StandIn())
	tb.Cleanup(standIn.Close)
	port, _ := strconv.Atoi(standIn.URL[strings.LastIndexByte(standIn.URL, ':')+1:])
	catalogText := string(demoplaybooks.Roles(port))
	tags, _ := json.Marshal(hostileTags(f.marker))
	catalogText += "\n[roles.evil]\nport = 7000\ntags = " + string(tags) + "\n"
	cat, err := roles.Parse([]byte(catalogText), "test roles.toml")
	if err != nil {
		tb.Fatal(err)
	}
	web, _ := cat.Lookup("web")
	def, err := roles.ServiceDefinition(&web, "127.0.0.1")
	if err != nil {
		tb.Fatal(err)
	}
	server := consulagent.StartTest(tb, consulagent.Options{Binary: f.consul})
	if f.api, err = server.Client(); err != nil {
		tb.Fatal(err)
	}
	f.agents = make([]*consulagent.Agent, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.agents[i] = consulagent.StartTest(tb, consulagent.Options{Binary: f.consul, NodeName: fmt.Sprintf("app-%02d", i+1),
				JoinLAN: []string{server.SerfLANAddr()}, ConfigFiles: map[string][]byte{roles.FileName("web"): def}})
		}()
	}
	wg.Wait()
	for _, a := range f.agents {
		if a == nil {
			tb.FailNow()
		}
	}
	f.pbDir = filepath.Join(dir, "playbooks")
	if err := os.MkdirAll(f.pbDir, 0o755); err != nil {
		tb.Fatal(err)
	}
	var hosts []demoplaybooks.Agent
	for _, a := range f.agents {
		hosts = append(hosts, demoplaybooks.Agent{Node: a.NodeName(), ConfigDir: a.ConfigDir(), HTTPAddr: "http://" + a.HTTPAddr(), ConsulBin: f.consul})
	}
	if err := demoplaybooks.WriteRoles(f.pbDir, port, hosts); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.pbDir, roles.RolesFile), []byte(catalogText), 0o644); err != nil {
		tb.Fatal(err)
	}
	if _, err := roles.WritePlaybook(f.pbDir); err != nil {
		tb.Fatal(err)
	}
	f.cfg = filepath.Join(dir, "config.toml")
	cfg := fmt.Sprintf(`[consul]
address = "http://%s"
[ansible]
playbook_dir = %q
state_dir = %q
env = ["ANSIBLE_TRANSPORT=local", "ANSIBLE_PYTHON_INTERPRETER=auto_silent"]
`, server.HTTPAddr(), f.pbDir, filepath.Join(dir, "state"))
	if err := os.WriteFile(f.cfg, []byte(cfg), 0o600); err != nil {
		tb.Fatal(err)
	}
	f.env = append(os.Environ(), "XDG_CONFIG_HOME="+dir, "XDG_STATE_HOME="+dir, "XDG_CACHE_HOME="+dir,
		"CONSUL_HTTP_TOKEN=", "CONSUL_HTTP_TOKEN_FILE=", "CONSUL_HTTP_ADDR=")
	for _, a := range f.agents {
		f.waitManaged(tb, a.NodeName(), []string{"web"})
	}
	return f
}

// run runs fleetdeck with the fixture's config; out is stdout and stderr.
func (f *rolesFixture) run(tb testing.TB, args ...string) (string, error) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, f.bin, append([]string{"--config", f.cfg}, args...)...)
	cmd.Env = f.env
	cmd.Dir = tb.TempDir()
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// managed returns node's managed services (role → tags) in the catalog.
func (f *rolesFixture) managed(tb testing.TB, node string) map[string][]string {
	tb.Helper()
	n, _, err := f.api.Catalog().Node(node, nil)
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string][]string{}
	if n == nil {
		return out
	}
	for id, s := range n.Services {
		if role, ok := strings.CutPrefix(id, roles.ServicePrefix); ok {
			out[role] = s.Tags
		}
	}
	return out
}

func (f *rolesFixture) waitManaged(tb testing.TB, node string, want []string) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := slices.Sorted(maps.Keys(f.managed(tb, node)))
		if slices.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s: managed roles %v, want %v", node, got, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// maint returns the notes of node's _node_maintenance check, and whether
// there is one.
func (f *rolesFixture) maint(tb testing.TB, node string) (string, bool) {
	tb.Helper()
	checks, _, err := f.api.Health().Node(node, nil)
	if err != nil {
		tb.Fatal(err)
	}
	for _, c := range checks {
		if c.CheckID == "_node_maintenance" {
			return c.Notes, true
		}
	}
	return "", false
}

// state is everything a refused command must leave as it was: every KV
// key with its value and modify index, and every node's services and
// maintenance.
func (f *rolesFixture) state(tb testing.TB) string {
	tb.Helper()
	pairs, _, err := f.api.KV().List("", nil)
	if err != nil {
		tb.Fatal(err)
	}
	var b strings.Builder
	for _, p := range pairs {
		fmt.Fprintf(&b, "kv %s %d %q\n", p.Key, p.ModifyIndex, p.Value)
	}
	for _, a := range f.agents {
		m := f.managed(tb, a.NodeName())
		for _, r := range slices.Sorted(maps.Keys(m)) {
			fmt.Fprintf(&b, "svc %s %s %q\n", a.NodeName(), r, m[r])
		}
		reason, on := f.maint(tb, a.NodeName())
		fmt.Fprintf(&b, "maint %s %v %q\n", a.NodeName(), on, reason)
	}
	return b.String()
}

// show is `roles show NODE --json`.
func (f *rolesFixture) show(tb testing.TB, node string) nodeReport {
	tb.Helper()
	out, err := f.run(tb, "roles", "show", node, "--json")
	if err != nil {
		tb.Fatalf("roles show %s: %v\n%s", node, err, out)
	}
	var r nodeReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		tb.Fatalf("roles show %s --json: %v\n%s", node, err, out)
	}
	return r
}

func (f *rolesFixture) history(tb testing.TB, node string) []roles.Desired {
	tb.Helper()
	out, err := f.run(tb, "roles", "history", node, "--json")
	if err != nil {
		tb.Fatalf("roles history %s: %v\n%s", node, err, out)
	}
	var h []roles.Desired
	if err := json.Unmarshal([]byte(out), &h); err != nil {
		tb.Fatalf("roles history --json: %v\n%s", err, out)
	}
	return h
}

func (f *rolesFixture) mustRun(tb testing.TB, args ...string) string {
	tb.Helper()
	out, err := f.run(tb, args...)
	if err != nil {
		tb.Fatalf("fleetdeck %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

var runIDRE = regexp.MustCompile(`run ([0-9A-Z]{26}) launched`)

// TestRolesCLI walks issue 9's CLI through its cases on two real nodes.
func TestRolesCLI(t *testing.T) {
	f := startRolesFixture(t, 2)
	marker := f.marker

	if out := f.mustRun(t, "roles", "playbook"); out != string(roles.Playbook()) {
		t.Errorf("roles playbook prints something else than the shipped playbook")
	}

	// Every refused input changes nothing: KV and catalog compared.
	before := f.state(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"roles", "set", "app-01", "--add", "nosuch", "--reason", "r"}, `unknown role "nosuch"`},
		{[]string{"roles", "set", "app-01", "--add", "Web!", "--reason", "r"}, "only a-z, 0-9"},
		{[]string{"roles", "set", "app-01", "--add", "api"}, "reason is required"},
		{[]string{"roles", "set", "app-01", "--add", "api", "--reason", "two\nlines"}, "control characters"},
		{[]string{"roles", "set", "app-01", "--add", "api", "--reason", hostileReason(marker) + "\x1b[2J"}, "control characters"},
		{[]string{"roles", "set", "nosuchnode", "--add", "api", "--reason", "r"}, `node "nosuchnode" is not in the fleet`},
		{[]string{"roles", "set", "dc9/app-01", "--add", "api", "--reason", "r"}, `node "dc9/app-01" is not in the fleet`},
		{[]string{"roles", "set", "app-01", "--add", "api", "--remove", "api", "--reason", "r"}, "both added and removed"},
		{[]string{"roles", "set", "app-01", "--reason", "r"}, "nothing to change"},
		{[]string{"roles", "revert", "app-01", "--to", "7", "--reason", "r"}, "no generation 7"},
		{[]string{"roles", "apply", "app-01"}, "unmanaged"},
		{[]string{"maint", "app-01", "--on", "--off", "--reason", "r"}, "exactly one of --on and --off"},
		{[]string{"maint", "app-01", "--on"}, "reason is required"},
		{[]string{"--read-only", "roles", "set", "app-01", "--add", "api", "--reason", "r"}, "read-only"},
	} {
		out, err := f.run(t, c.args...)
		if err == nil || !strings.Contains(out, c.want) {
			t.Errorf("%q: err %v, want a refusal saying %q:\n%s", c.args, err, c.want, out)
		}
		if strings.Contains(out, "\x1b") {
			t.Errorf("%q: raw escape in the output: %q", c.args, out)
		}
	}
	if after := f.state(t); after != before {
		t.Errorf("refused inputs changed KV or the catalog:\nbefore\n%s\nafter\n%s", before, after)
	}

	// Move app-01 from web to api and follow it to convergence.
	out := f.mustRun(t, "roles", "set", "app-01", "--add", "api", "--remove", "web", "--reason", "move to api", "--wait")
	for _, want := range []string{"dc1/app-01", "(unmanaged) → [api]", "run: 1 hosts: app-01", "argv: ", "fleetdeck-apply.yml", "converged"} {
		if !strings.Contains(out, want) {
			t.Errorf("roles set output lacks %q:\n%s", want, out)
		}
	}
	f.waitManaged(t, "app-01", []string{"api"})
	f.waitManaged(t, "app-02", []string{"web"})
	r := f.show(t, "app-01")
	if r.State != roles.StateConverged || r.Desired == nil || r.Desired.Generation != 1 || r.LastRun == nil || r.LastRun.Status != "ok" || len(r.Actual) != 1 {
		t.Errorf("roles show after the move: %+v", r)
	}

	// Hostile tags and reason: stored and shown byte for byte, never run.
	reason := hostileReason(marker)
	f.mustRun(t, "roles", "set", "app-01", "--add", "evil", "--reason", reason, "--wait")
	if got := f.managed(t, "app-01")["evil"]; !slices.Equal(got, hostileTags(marker)) {
		t.Errorf("evil's tags in the catalog: %q", got)
	}
	if h := f.history(t, "app-01"); len(h) != 2 || h[1].Reason != reason {
		t.Errorf("history: %+v", h)
	}

	// Maintenance on with a hostile reason, then off.
	out = f.mustRun(t, "maint", "app-01", "--on", "--reason", reason, "--wait")
	if got, on := f.maint(t, "app-01"); !on || got != reason {
		t.Errorf("maintenance after maint --on: on=%v %q\n%s", on, got, out)
	}
	if r := f.show(t, "app-01"); !r.Maintenance.On || r.Maintenance.Reason != reason || r.State != roles.StateConverged {
		t.Errorf("roles show in maintenance: %+v", r)
	}
	f.mustRun(t, "maint", "app-01", "--off", "--reason", "done", "--wait")
	if _, on := f.maint(t, "app-01"); on {
		t.Error("maintenance still on after maint --off")
	}

	// Revert to generation 1: api alone again.
	out = f.mustRun(t, "roles", "revert", "app-01", "--to", "1", "--reason", "undo", "--wait")
	if !strings.Contains(out, "revert to generation 1") {
		t.Errorf("revert's plan does not say so:\n%s", out)
	}
	f.waitManaged(t, "app-01", []string{"api"})
	h := f.history(t, "app-01")
	if last := h[len(h)-1]; last.RevertOf != 1 || !slices.Equal(last.Roles, []string{"api"}) || last.Generation != 5 {
		t.Errorf("the revert's record: %+v", last)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("a hostile string was executed")
	}

	// A failing apply: app-02's agent config dir does not exist. The run
	// fails, the command says which node and which run, the node is
	// Failed, and its services are as they were.
	hv := filepath.Join(f.pbDir, "host_vars", "app-02.yml")
	good, err := os.ReadFile(hv)
	if err != nil {
		t.Fatal(err)
	}
	broken := regexp.MustCompile(`(?m)^consul_config_dir: .*$`).ReplaceAll(good, []byte(`consul_config_dir: "/nonexistent/fleetdeck-test"`))
	if err := os.WriteFile(hv, broken, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = f.run(t, "roles", "set", "app-02", "--add", "api", "--reason", "will fail", "--wait")
	m := runIDRE.FindStringSubmatch(out)
	if err == nil || m == nil || !strings.Contains(out, "dc1/app-02 failed") || !strings.Contains(out, m[1]) || !strings.Contains(out, "cannot read consul_config_dir") {
		t.Errorf("a failing apply: err %v\n%s", err, out)
	}
	f.waitManaged(t, "app-02", []string{"web"})
	if r := f.show(t, "app-02"); r.State != roles.StateFailed || r.LastRun == nil || (m != nil && r.LastRun.ID != m[1]) {
		t.Errorf("roles show after the failure: %+v", r)
	}
	// Fixed, `roles apply` applies the recorded generation.
	if err := os.WriteFile(hv, good, 0o644); err != nil {
		t.Fatal(err)
	}
	f.mustRun(t, "roles", "apply", "app-02", "--wait")
	f.waitManaged(t, "app-02", []string{"api", "web"})

	// Two operators at once on one node: one wins, the other is told who
	// won and writes nothing; the audit trail has every generation.
	for attempt := 0; ; attempt++ {
		genBefore := len(f.history(t, "app-01"))
		type res struct {
			out string
			err error
		}
		results := make([]res, 2)
		var wg sync.WaitGroup
		for i, role := range []string{"worker", "search"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				out, err := f.run(t, "roles", "set", "app-01", "--add", role, "--reason", "race "+role)
				results[i] = res{out, err}
			}()
		}
		wg.Wait()
		var conflicts, ok int
		for _, r := range results {
			switch {
			case r.err == nil:
				ok++
			case strings.Contains(r.out, "was changed by") && strings.Contains(r.out, "nothing was written"):
				conflicts++
			default:
				t.Fatalf("a racing change failed otherwise: %v\n%s", r.err, r.out)
			}
		}
		h := f.history(t, "app-01")
		for i, d := range h {
			if d.Generation != uint64(i+1) {
				t.Fatalf("audit trail has a gap: %+v", h)
			}
		}
		if len(h) != genBefore+ok {
			t.Fatalf("%d changes succeeded, the audit trail grew by %d", ok, len(h)-genBefore)
		}
		if conflicts == 1 && ok == 1 {
			break
		}
		if attempt == 4 {
			t.Fatalf("the changes never raced in 5 attempts (last: %d ok, %d conflicts)", ok, conflicts)
		}
		// Both planned after the other's write: start over from here.
		f.mustRun(t, "roles", "set", "app-01", "--remove", "worker,search", "--reason", "reset", "--wait")
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("a hostile string was executed")
	}
}

// TestRolesNodeResolution: NODE is a name or dc/name; a name in two
// datacenters is refused, listing them.
func TestRolesNodeResolution(t *testing.T) {
	nodes := []*fleet.Node{{Datacenter: "dc1", Name: "db-1"}, {Datacenter: "dc1", Name: "web-1"}, {Datacenter: "dc2", Name: "web-1"}}
	e := &rolesEnv{snap: fleet.NewSnapshot(1, time.Now(), nodes, nil, nil)}
	if _, err := e.nodes([]string{"web-1"}); err == nil || !strings.Contains(err.Error(), "dc1/web-1, dc2/web-1") {
		t.Errorf("ambiguous name: %v", err)
	}
	ns, err := e.nodes([]string{"dc2/web-1", "db-1"})
	if err != nil || len(ns) != 2 || ns[0].Key() != "dc2/web-1" || ns[1].Key() != "dc1/db-1" {
		t.Errorf("resolved %v, %v", ns, err)
	}
	if _, err := e.nodes([]string{"db-1", "dc1/db-1"}); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("a node twice: %v", err)
	}
}

var (
	convergedRE = regexp.MustCompile(`converged in (\S+) from confirm`)
	runOKRE     = regexp.MustCompile(`run \S+ ok in (\S+)`)
)

// BenchmarkRolesSet measures `fleetdeck roles set --wait` on 1 and on 10
// real agents in one run: confirm (the plan printed, the records about to
// be written) → every node Converged, as the command reports it, and
// confirm → the run's end. Each iteration moves every node between web
// and api. kv-txn/node counts the raft writes of the desired-state keys
// per node and change (the goal is 1: the desired record and its audit
// record in one /v1/txn). The bare playbook's figures are
// BenchmarkApplyBare in ./roles/.
//
//	go test -run '^$' -bench BenchmarkRolesSet -benchtime 3x ./cmd/fleetdeck/
func BenchmarkRolesSet(b *testing.B) {
	for _, n := range []int{1, 10} {
		b.Run(fmt.Sprintf("agents=%d", n), func(b *testing.B) {
			f := startRolesFixture(b, n)
			var nodes []string
			for _, a := range f.agents {
				nodes = append(nodes, a.NodeName())
			}
			moves := [][2]string{{"api", "web"}, {"web", "api"}}
			var converged, run time.Duration
			txns, changes := 0, 0
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				pairs, _, err := f.api.KV().List("fleetdeck/desired/", nil)
				if err != nil {
					b.Fatal(err)
				}
				before := map[string]uint64{}
				for _, p := range pairs {
					before[p.Key] = p.ModifyIndex
				}
				b.StartTimer()
				args := append([]string{"roles", "set"}, nodes...)
				args = append(args, "--add", moves[i%2][0], "--remove", moves[i%2][1], "--reason", "bench", "--wait")
				if n >= 5 {
					args = append(args, "--confirm", strconv.Itoa(n))
				}
				out := f.mustRun(b, args...)
				b.StopTimer()
				c, r := convergedRE.FindStringSubmatch(out), runOKRE.FindStringSubmatch(out)
				if c == nil || r == nil {
					b.Fatalf("no timing in the output:\n%s", out)
				}
				cd, _ := time.ParseDuration(c[1])
				rd, _ := time.ParseDuration(r[1])
				converged += cd
				run += rd
				pairs, _, err = f.api.KV().List("fleetdeck/desired/", nil)
				if err != nil {
					b.Fatal(err)
				}
				perNode := map[string]map[uint64]bool{}
				for _, p := range pairs {
					if before[p.Key] == p.ModifyIndex {
						continue
					}
					// fleetdeck/desired/nodes/N or fleetdeck/desired/audit/N/GEN
					node := strings.Split(strings.TrimPrefix(p.Key, "fleetdeck/desired/"), "/")[1]
					if perNode[node] == nil {
						perNode[node] = map[uint64]bool{}
					}
					perNode[node][p.ModifyIndex] = true
				}
				for _, idx := range perNode {
					txns += len(idx)
					changes++
				}
				b.StartTimer()
			}
			b.StopTimer()
			b.ReportMetric(converged.Seconds()/float64(b.N), "converged-s/op")
			b.ReportMetric(run.Seconds()/float64(b.N), "run-s/op")
			if changes > 0 {
				b.ReportMetric(float64(txns)/float64(changes), "kv-txn/node")
			}
		})
	}
}

// The node report prints text from KV and from Consul's maintenance
// check: every byte of it passes the sanitiser, JSON included.
func TestNodeReportSanitisesWhatConsulSays(t *testing.T) {
	hostile := "disk\x1b]0;pwned\x07 swap\u202e\r\nrm -rf"
	r := nodeReport{Node: "app-01", Datacenter: "dc1", State: roles.StateConverged, Reason: "ok\x1b[2J",
		Desired:     &roles.Desired{Node: "app-01", Datacenter: "dc1", Roles: []string{"api"}, Generation: 2, Who: "eve\x07@x", Reason: hostile, Maintenance: roles.Maintenance{On: true, Reason: hostile}},
		Maintenance: roles.Maintenance{On: true, Reason: hostile},
		Actual:      []fleet.Service{{ID: "fleetdeck-api", Name: "api", Tags: []string{"t\x1b[31m"}}},
		LastRun:     &lastRun{ID: "r\x1b1", Status: "ok"}}
	var text, js bytes.Buffer
	if err := printNodeReport(&text, r); err != nil {
		t.Fatal(err)
	}
	if err := writeJSON(&js, r); err != nil {
		t.Fatal(err)
	}
	for name, out := range map[string][]byte{"text": text.Bytes(), "json": js.Bytes()} {
		for _, b := range out {
			if (b < 0x20 && b != '\n') || b == 0x7f {
				t.Errorf("%s output has control byte %#x:\n%q", name, b, out)
				break
			}
		}
		if bytes.Contains(out, []byte("\u202e")) {
			t.Errorf("%s output has a bidi override:\n%q", name, out)
		}
	}
	if !strings.Contains(text.String(), "maintenance on (disk") {
		t.Errorf("the maintenance reason is not shown:\n%s", text.String())
	}
}
