// Package e2e tests `fleetdeck provisioner` as an operator runs it: the
// built binary against a real Consul server, real blank client agents
// joining, the real ansible-playbook, and real signals to real processes.
// It is its own package so that its slow tests run beside cmd/fleetdeck's.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"go.uber.org/goleak"

	"github.com/fleetdeck/fleetdeck/deploy"
	"github.com/fleetdeck/fleetdeck/internal/consulagent"
	"github.com/fleetdeck/fleetdeck/internal/demoplaybooks"
	"github.com/fleetdeck/fleetdeck/roles"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// buildOnce builds the fleetdeck binary once for the package.
var buildOnce = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "fleetdeck-e2e-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "fleetdeck")
	out, err := exec.Command("go", "build", "-o", bin, "../../cmd/fleetdeck").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("building fleetdeck: %v: %s", err, out)
	}
	return bin, nil
})

// stagePlaybook is a stage's playbook: it fails on a host while the file
// <marks>/fail-<stage>-<host> exists, takes 20 s longer while
// <marks>/slow-<stage>-<host> does, and otherwise leaves
// <marks>/<host>.<stage> with one line per run (so tests count runs).
func stagePlaybook(marks, stage string) string {
	// One raw task: no Python module per host, so a 200-host run costs
	// a shell per host rather than three module executions.
	return fmt.Sprintf(`- hosts: all
  gather_facts: false
  tasks:
    - name: fail if asked, be slow if asked, leave a mark
      ansible.builtin.raw: >-
        if [ -e %[1]s/fail-%[2]s-{{ inventory_hostname }} ]; then echo asked to fail >&2; exit 1; fi;
        if [ -e %[1]s/slow-%[2]s-{{ inventory_hostname }} ]; then sleep 20; fi;
        echo run >> %[1]s/{{ inventory_hostname }}.%[2]s
`, marks, stage)
}

// fixture is a Consul server, a playbook directory with the base and web
// stage playbooks and the roles apply playbook, and a config file.
type fixture struct {
	bin, consulBin string
	server         *consulagent.Agent
	api            *api.Client
	dir, pbDir     string
	marks          string
	cfg            string
	env            []string
	port           int

	mu     sync.Mutex
	agents []*consulagent.Agent
}

// chainConfig is the three stages; group app's new nodes get web
// ([roles.defaults], as the issue spells it; the demo uses
// [provisioner.defaults]).
const chainConfig = `
[provisioner]
quiet_min = "1s"
quiet_max = "3s"
backoff_base = "1s"
backoff_max = "2s"
max_attempts = 2
session_ttl = "10s"
grace = "20s"
[roles.defaults]
app = ["web"]
[[provisioner.stage]]
name = "base"
select = "group:app !tag:no-provision"
playbook = "base.yml"
[[provisioner.stage]]
name = "roles"
playbook = "@roles"
after = ["base"]
[[provisioner.stage]]
name = "web"
select = "role:web"
playbook = "web.yml"
after = ["roles"]
`

func newFixture(t testing.TB, provisionerTOML string) *fixture {
	t.Helper()
	consulagent.NeedProgram(t, "ansible-playbook")
	bin, err := buildOnce()
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{bin: bin, consulBin: consulagent.TestBinary(t), dir: t.TempDir()}
	f.server = consulagent.StartTest(t, consulagent.Options{Binary: f.consulBin})
	if f.api, err = f.server.Client(); err != nil {
		t.Fatal(err)
	}
	standIn := httptest.NewServer(demoplaybooks.StandIn())
	t.Cleanup(standIn.Close)
	f.port, _ = strconv.Atoi(standIn.URL[strings.LastIndexByte(standIn.URL, ':')+1:])
	f.pbDir = filepath.Join(f.dir, "playbooks")
	f.marks = filepath.Join(f.dir, "marks")
	for _, d := range []string{f.pbDir, f.marks} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, st := range []string{"base", "web"} {
		if err := os.WriteFile(filepath.Join(f.pbDir, st+".yml"), []byte(stagePlaybook(f.marks, st)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := demoplaybooks.WriteRoles(f.pbDir, f.port, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := roles.WritePlaybook(f.pbDir); err != nil {
		t.Fatal(err)
	}
	f.cfg = filepath.Join(f.dir, "config.toml")
	cfg := fmt.Sprintf(`[consul]
address = "http://%s"
[ansible]
playbook_dir = %q
env = ["ANSIBLE_TRANSPORT=local", "ANSIBLE_PYTHON_INTERPRETER=auto_silent", "ANSIBLE_FORKS=25"]
`, f.server.HTTPAddr(), f.pbDir) + provisionerTOML
	if err := os.WriteFile(f.cfg, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	f.env = append(os.Environ(), "XDG_CONFIG_HOME="+f.dir, "XDG_CACHE_HOME="+f.dir,
		"CONSUL_HTTP_TOKEN=", "CONSUL_HTTP_TOKEN_FILE=", "CONSUL_HTTP_ADDR=")
	return f
}

// addAgent starts a blank client agent (no service) of group app, as an
// autoscaling group's new server, and writes its host_vars.
func (f *fixture) addAgent(t testing.TB, name string) *consulagent.Agent {
	t.Helper()
	a := consulagent.StartTest(t, consulagent.Options{Binary: f.consulBin, NodeName: name,
		JoinLAN:  []string{f.server.SerfLANAddr()},
		ExtraHCL: fmt.Sprintf("node_meta {\n  asg = \"app\"\n  \"instance-id\" = \"i-%s\"\n}\n", name)})
	f.mu.Lock()
	defer f.mu.Unlock()
	f.agents = append(f.agents, a)
	var hosts []demoplaybooks.Agent
	for _, a := range f.agents {
		hosts = append(hosts, demoplaybooks.Agent{Node: a.NodeName(), ConfigDir: a.ConfigDir(), HTTPAddr: "http://" + a.HTTPAddr(), ConsulBin: f.consulBin})
	}
	if err := demoplaybooks.WriteRoles(f.pbDir, f.port, hosts); err != nil {
		t.Fatal(err)
	}
	// The agent is up before the servers have it in the catalog (the
	// leader reconciles the member a moment later, without its meta; the
	// agent's own sync adds that).
	waitFor(t, 30*time.Second, name+" in the catalog with its group", func() bool {
		n, _, err := f.api.Catalog().Node(name, nil)
		return err == nil && n != nil && n.Node != nil && n.Node.Meta["asg"] == "app"
	})
	return a
}

// proc is a running `fleetdeck provisioner`.
type proc struct {
	cmd  *exec.Cmd
	log  *lockedBuffer
	done chan error
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// start runs `fleetdeck provisioner args…` with its own state directory
// (state: a name under the fixture's directory).
func (f *fixture) start(t testing.TB, state string, args ...string) *proc {
	t.Helper()
	argv := append([]string{"--config", f.cfg, "--state-dir", filepath.Join(f.dir, state), "provisioner"}, args...)
	cmd := exec.Command(f.bin, argv...)
	cmd.Env = f.env
	p := &proc{cmd: cmd, log: &lockedBuffer{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = p.log, p.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(60 * time.Second):
			_ = cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("provisioner %s log:\n%s", state, p.log.String())
		}
	})
	return p
}

// run runs a fleetdeck command to its end.
func (f *fixture) run(t testing.TB, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, f.bin, append([]string{"--config", f.cfg, "--state-dir", filepath.Join(f.dir, "cli")}, args...)...)
	cmd.Env = f.env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (f *fixture) status(t testing.TB) deploy.Status {
	t.Helper()
	out, err := f.run(t, "provisioner", "status", "--json", "--last", "0")
	if err != nil {
		t.Fatalf("provisioner status: %v: %s", err, out)
	}
	var st deploy.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("provisioner status --json: %v: %s", err, out)
	}
	return st
}

// records reads a node's stage records straight from KV.
func (f *fixture) records(t testing.TB, node string) map[string]deploy.Record {
	t.Helper()
	pairs, _, err := f.api.KV().List(deploy.DefaultPrefix+"records/dc1/"+node+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]deploy.Record{}
	for _, p := range pairs {
		var r deploy.Record
		if err := json.Unmarshal(p.Value, &r); err != nil {
			t.Fatal(err)
		}
		out[r.Stage] = r
	}
	return out
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// runs counts the runs of a node's stage from its marks.
func (f *fixture) runs(node, stage string) int {
	b, err := os.ReadFile(filepath.Join(f.marks, node+"."+stage))
	if err != nil {
		return 0
	}
	return strings.Count(string(b), "run\n")
}

// services is a node's services in the catalog.
func (f *fixture) services(t testing.TB, node string) []string {
	t.Helper()
	n, _, err := f.api.Catalog().Node(node, nil)
	if err != nil || n == nil {
		return nil
	}
	var out []string
	for id := range n.Services {
		out = append(out, id)
	}
	return out
}

// receiver records the JSON bodies posted to it (a Slack webhook or the
// PagerDuty Events API), answering as each documents.
type receiver struct {
	mu     sync.Mutex
	bodies []map[string]any
	srv    *httptest.Server
}

func newReceiver(t *testing.T, pagerduty bool) *receiver {
	r := &receiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var body map[string]any
		if err := json.NewDecoder(req.Body).Decode(&body); err != nil || req.Method != http.MethodPost {
			http.Error(w, "invalid_payload", http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		r.bodies = append(r.bodies, body)
		r.mu.Unlock()
		if pagerduty {
			w.WriteHeader(http.StatusAccepted)
			_, _ = w.Write([]byte(`{"status":"success","message":"Event processed","dedup_key":"x"}`))
			return
		}
		_, _ = w.Write([]byte("ok"))
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) got() []map[string]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]map[string]any(nil), r.bodies...)
}
