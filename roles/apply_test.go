package roles_test

// End-to-end tests of the apply playbook: a real Consul server, real
// client agents standing for fleet nodes, and the real ansible-playbook
// with a local connection, fed by the vars builder.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/fleetdeck/fleetdeck/internal/consulagent"
	"github.com/fleetdeck/fleetdeck/roles"
)

// need returns the path of a tool the test needs. Absent, the test skips —
// unless FLEETDECK_REQUIRE_CONSUL=1 (the project's test command), where a
// missing tool is a failure.
func need(tb testing.TB, name string) string {
	tb.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv(consulagent.EnvRequire) == "1" {
		tb.Fatalf("%s is required (%s=1): %v", name, consulagent.EnvRequire, err)
	}
	tb.Skipf("%s not installed: %v", name, err)
	return ""
}

// cluster is a server agent and client agents named node-0, node-1, ….
type cluster struct {
	bin     string
	server  *consulagent.Agent
	api     *api.Client
	clients []*consulagent.Agent
}

func startCluster(tb testing.TB, clients int) *cluster {
	tb.Helper()
	need(tb, "ansible-playbook")
	c := &cluster{bin: consulagent.TestBinary(tb)}
	c.server = consulagent.StartTest(tb, consulagent.Options{Binary: c.bin})
	for i := range clients {
		c.clients = append(c.clients, consulagent.StartTest(tb, consulagent.Options{
			Binary: c.bin, NodeName: "node-" + strconv.Itoa(i), JoinLAN: []string{c.server.SerfLANAddr()},
		}))
	}
	var err error
	if c.api, err = c.server.Client(); err != nil {
		tb.Fatal(err)
	}
	return c
}

// host is one host of a test run's inventory: its name, its inventory
// variables (connection, where its agent is: what host_vars give in a
// real playbook dir) and fleetdeck's per-host variables.
type host struct {
	name string
	vars map[string]any
}

// host returns client i as an inventory host (local connection, its
// agent's paths as inventory variables) with the per-host variables of
// roles rs and maintenance m (roles.HostVars).
func (c *cluster) host(tb testing.TB, i int, rs []*roles.Role, m *roles.Maintenance) host {
	tb.Helper()
	hv, err := roles.HostVars(roles.ApplyNode{Address: "127.0.0.1", Roles: rs, Maintenance: m})
	if err != nil {
		tb.Fatal(err)
	}
	return c.bare(i, hv)
}

// bare is client i with the per-host variables vars as given.
func (c *cluster) bare(i int, vars map[string]any) host {
	a := c.clients[i]
	h := agentHost(a, map[string]any{"consul_config_dir": a.ConfigDir(), "consul_http_addr": a.HTTPAddr(), "consul_bin": c.bin})
	maps.Copy(h.vars, vars)
	return h
}

// agentHost is agent a as an inventory host with a local connection and
// the inventory variables vars.
func agentHost(a *consulagent.Agent, vars map[string]any) host {
	h := host{name: a.NodeName(), vars: map[string]any{"ansible_connection": "local", "ansible_python_interpreter": "auto_silent"}}
	maps.Copy(h.vars, vars)
	return h
}

// unsafe wraps every string of v as {"__ansible_unsafe": s}, as the run
// manager writes per-host variables into a run's inventory.
func unsafe(v any) any {
	switch x := v.(type) {
	case string:
		return map[string]any{"__ansible_unsafe": x}
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = unsafe(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = unsafe(e)
		}
		return out
	}
	return v
}

// result is one ansible-playbook run.
type result struct {
	rc      int
	out     string
	changed map[string]int // PLAY RECAP changed= per host
	failed  map[string]int
}

var recapRE = regexp.MustCompile(`(?m)^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)`)

// playbook writes the shipped playbook into a fresh directory.
func playbook(tb testing.TB) string {
	tb.Helper()
	p, err := roles.WritePlaybook(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// runApply runs the playbook on hosts through an inventory script that
// prints their variables, every string wrapped unsafe (wrap false: as
// given, for the control test) — the way the run manager serves a run's
// inventory snapshot. It runs in an empty directory, so no ansible.cfg is
// picked up.
func runApply(tb testing.TB, pb string, hosts []host, args ...string) result {
	tb.Helper()
	return runApplyWrap(tb, pb, hosts, true, args...)
}

func runApplyWrap(tb testing.TB, pb string, hosts []host, wrap bool, args ...string) result {
	tb.Helper()
	dir := tb.TempDir()
	names := []string{}
	hostvars := map[string]any{}
	for _, h := range hosts {
		names = append(names, h.name)
		if wrap {
			hostvars[h.name] = unsafe(h.vars)
		} else {
			hostvars[h.name] = h.vars
		}
	}
	doc, err := json.Marshal(map[string]any{"nodes": map[string]any{"hosts": names}, "_meta": map[string]any{"hostvars": hostvars}})
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "inventory.json"), doc, 0o600); err != nil {
		tb.Fatal(err)
	}
	inv := filepath.Join(dir, "inventory.sh")
	if err := os.WriteFile(inv, []byte("#!/bin/sh\nexec cat -- \"${0%/*}/inventory.json\"\n"), 0o700); err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	argv := append([]string{"-i", inv}, args...)
	argv = append(argv, pb)
	cmd := exec.CommandContext(ctx, "ansible-playbook", argv...)
	cmd.Dir = dir
	tmp := filepath.Join(dir, "tmp")
	cmd.Env = append(os.Environ(), "ANSIBLE_NOCOLOR=1", "ANSIBLE_HOST_PATTERN_MISMATCH=error",
		"ANSIBLE_LOCAL_TEMP="+tmp, "ANSIBLE_REMOTE_TEMP="+tmp, "ANSIBLE_RETRY_FILES_ENABLED=0", "TMPDIR="+tmp)
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		tb.Fatal(err)
	}
	out, err := cmd.CombinedOutput()
	r := result{out: string(out), changed: map[string]int{}, failed: map[string]int{}}
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			tb.Fatalf("ansible-playbook: %v\n%s", err, out)
		}
		r.rc = ee.ExitCode()
	}
	for _, m := range recapRE.FindAllStringSubmatch(r.out, -1) {
		r.changed[m[1]], _ = strconv.Atoi(m[3])
		r.failed[m[1]], _ = strconv.Atoi(m[5])
	}
	// The staging dir is always removed, even when validation fails.
	if left, _ := filepath.Glob(filepath.Join(tmp, "fleetdeck-apply-*")); len(left) > 0 {
		tb.Errorf("staging dirs left behind: %v", left)
	}
	return r
}

// services returns node's services in the server's catalog by ID.
func (c *cluster) services(tb testing.TB, node string) map[string]*api.AgentService {
	tb.Helper()
	n, _, err := c.api.Catalog().Node(node, nil)
	if err != nil {
		tb.Fatal(err)
	}
	if n == nil {
		tb.Fatalf("node %s not in the catalog", node)
	}
	return n.Services
}

// waitServices waits until node's managed services (fleetdeck-*) are
// exactly want (ID → tags), and returns them.
func (c *cluster) waitServices(tb testing.TB, node string, want map[string][]string) map[string]*api.AgentService {
	tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		all := c.services(tb, node)
		got := map[string][]string{}
		for id, s := range all {
			if strings.HasPrefix(id, roles.ServicePrefix) {
				got[id] = s.Tags
				if got[id] == nil {
					got[id] = []string{}
				}
			}
		}
		if maps.EqualFunc(got, want, slices.Equal) {
			return all
		}
		if time.Now().After(deadline) {
			tb.Fatalf("node %s: managed services %q, want %q", node, got, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// maintReason returns the reason of node's _node_maintenance check, and
// whether there is one.
func (c *cluster) maintReason(tb testing.TB, node string) (string, bool) {
	tb.Helper()
	checks, _, err := c.api.Health().Node(node, nil)
	if err != nil {
		tb.Fatal(err)
	}
	for _, ch := range checks {
		if ch.CheckID == "_node_maintenance" {
			return ch.Notes, true
		}
	}
	return "", false
}

func (c *cluster) waitMaint(tb testing.TB, node string, on bool, reason string) {
	tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, ok := c.maintReason(tb, node)
		if ok == on && (!on || got == reason) {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("node %s maintenance: on=%v reason %q, want on=%v reason %q", node, ok, got, on, reason)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// snapshot returns every file of dir with its content and mtime.
func snapshot(tb testing.TB, dir string) map[string]string {
	tb.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil {
			tb.Fatal(err)
		}
		b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		out[e.Name()] = fmt.Sprintf("%s|%s|%s", fi.Mode(), fi.ModTime().Format(time.RFC3339Nano), b)
	}
	return out
}

func mustDef(tb testing.TB, r *roles.Role, addr string) []byte {
	tb.Helper()
	b, err := roles.ServiceDefinition(r, addr)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// hostile strings: Jinja that would run a command, shell syntax, quotes,
// newlines, a backslash and non-ASCII.
func hostile(marker string) []string {
	return []string{
		"{{ lookup('pipe','touch " + marker + "') }}",
		"$(touch " + marker + ")",
		"`id` ; touch " + marker,
		`"quoted" 'single' \back`,
		"line1\nline2",
		"{% raw %}x{% endraw %}",
		"ünï <b>&amp;",
	}
}

func TestApplyPlaybookSyntax(t *testing.T) {
	need(t, "ansible-playbook")
	pb := playbook(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ansible-playbook", "--syntax-check", "-i", "localhost,", pb)
	cmd.Dir = t.TempDir()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("--syntax-check: %v\n%s", err, out)
	}
	if !bytes.Equal(roles.Playbook(), mustRead(t, pb)) {
		t.Error("WritePlaybook wrote something else than Playbook()")
	}
}

func mustRead(tb testing.TB, path string) []byte {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// TestApplyRoles moves two real nodes through role changes: add, no-op,
// check mode, remove, a definition consul validate refuses, and back.
func TestApplyRoles(t *testing.T) {
	c := startCluster(t, 2)
	pb := playbook(t)
	marker := filepath.Join(t.TempDir(), "pwned")
	evil := hostile(marker)
	web := &roles.Role{Name: "web", Port: 8080, Tags: append([]string{"prod"}, evil...),
		Check: &roles.Check{HTTP: "http://{address}:8080/health?q=" + evil[0], Interval: 10 * time.Second, Timeout: 2 * time.Second}}
	apiRole := &roles.Role{Name: "api", Port: 9090, Check: &roles.Check{TCP: "{address}:9090", Interval: 5 * time.Second}}
	worker := &roles.Role{Name: "worker", Check: &roles.Check{TTL: 30 * time.Second}}
	a, b := c.clients[0], c.clients[1]

	// Files that are not fleetdeck-*.json must never be touched: a hand-made
	// service, a note, and a file that only looks managed.
	others := map[string]string{
		"keep.json":           `{"service": {"id": "keep", "name": "keep", "port": 1}}`,
		"fleetdeck-notes.txt": "not a service definition\n",
		"fleetdeck.json":      `{"node_meta": {"owner": "ops"}}`,
	}
	for name, content := range others {
		if err := os.WriteFile(filepath.Join(a.ConfigDir(), name), []byte(content), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	// And a stale managed file of a role the node no longer has: removed.
	if err := os.WriteFile(filepath.Join(a.ConfigDir(), "fleetdeck-old.json"), []byte(`{"service": {"id": "fleetdeck-old", "name": "old"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	untouched := func(phase string) {
		t.Helper()
		for name, content := range others {
			got, err := os.ReadFile(filepath.Join(a.ConfigDir(), name))
			if err != nil || string(got) != content {
				t.Errorf("%s: %s changed: %q, %v", phase, name, got, err)
			}
		}
	}
	before := snapshot(t, a.ConfigDir())

	// 1. Add web and api to node-0, worker to node-1, in one run.
	hosts := []host{c.host(t, 0, []*roles.Role{web, apiRole}, nil), c.host(t, 1, []*roles.Role{worker}, nil)}
	r := runApply(t, pb, hosts)
	if r.rc != 0 {
		t.Fatalf("apply: rc %d\n%s", r.rc, r.out)
	}
	if r.changed[a.NodeName()] == 0 || r.changed[b.NodeName()] == 0 {
		t.Errorf("apply changed %v, want both hosts changed", r.changed)
	}
	svcs := c.waitServices(t, a.NodeName(), map[string][]string{"fleetdeck-web": web.Tags, "fleetdeck-api": {}})
	if s := svcs["fleetdeck-web"]; s.Service != "web" || s.Port != 8080 || s.Meta["managed-by"] != "fleetdeck" {
		t.Errorf("fleetdeck-web: %+v", s)
	}
	if _, ok := svcs["keep"]; !ok {
		t.Errorf("the hand-made service keep is gone: %v", svcs)
	}
	c.waitServices(t, b.NodeName(), map[string][]string{"fleetdeck-worker": {}})
	for _, r := range []*roles.Role{web, apiRole} {
		if got, want := mustRead(t, filepath.Join(a.ConfigDir(), roles.FileName(r.Name))), mustDef(t, r, "127.0.0.1"); !bytes.Equal(got, want) {
			t.Errorf("%s differs from the built definition:\n got %q\nwant %q", roles.FileName(r.Name), got, want)
		}
	}
	if _, err := os.Stat(filepath.Join(a.ConfigDir(), "fleetdeck-old.json")); !os.IsNotExist(err) {
		t.Errorf("stale fleetdeck-old.json not removed: %v", err)
	}
	untouched("apply")
	// The check URL is in the file byte for byte (the HTTP API shows no
	// check definitions, so the file the agent loaded is the evidence).
	var def struct {
		Service struct {
			Check struct{ HTTP string }
		}
	}
	if err := json.Unmarshal(mustRead(t, filepath.Join(a.ConfigDir(), "fleetdeck-web.json")), &def); err != nil {
		t.Fatal(err)
	}
	if got := def.Service.Check.HTTP; got != "http://127.0.0.1:8080/health?q="+evil[0] {
		t.Errorf("web's check URL: %q", got)
	}

	// 2. The same again changes nothing.
	r = runApply(t, pb, hosts)
	if r.rc != 0 || r.changed[a.NodeName()] != 0 || r.changed[b.NodeName()] != 0 {
		t.Fatalf("second apply: rc %d changed %v\n%s", r.rc, r.changed, r.out)
	}

	// 3. Check mode shows the diff and changes nothing.
	snap := snapshot(t, a.ConfigDir())
	hosts = []host{c.host(t, 0, []*roles.Role{web, worker}, nil)}
	r = runApply(t, pb, hosts, "--check", "--diff")
	if r.rc != 0 || r.changed[a.NodeName()] == 0 {
		t.Fatalf("check mode: rc %d changed %v\n%s", r.rc, r.changed, r.out)
	}
	if !strings.Contains(r.out, "fleetdeck-worker.json") || !strings.Contains(r.out, `+      "ttl": "30s"`) || !strings.Contains(r.out, "fleetdeck-api.json") {
		t.Errorf("check mode output lacks the diff:\n%s", r.out)
	}
	if got := snapshot(t, a.ConfigDir()); !maps.Equal(got, snap) {
		t.Errorf("check mode changed the config dir")
	}
	c.waitServices(t, a.NodeName(), map[string][]string{"fleetdeck-web": web.Tags, "fleetdeck-api": {}})

	// 4. Remove api, add worker.
	r = runApply(t, pb, hosts)
	if r.rc != 0 {
		t.Fatalf("remove api: rc %d\n%s", r.rc, r.out)
	}
	c.waitServices(t, a.NodeName(), map[string][]string{"fleetdeck-web": web.Tags, "fleetdeck-worker": {}})
	untouched("remove")

	// 5. A definition consul validate refuses: the run fails with Consul's
	// message, the config dir is untouched and the agent keeps its services.
	snap = snapshot(t, a.ConfigDir())
	bad := c.bare(0, map[string]any{
		"fleetdeck_services": map[string]any{
			"fleetdeck-web.json": string(mustDef(t, web, "127.0.0.1")),
			"fleetdeck-bad.json": `{"service": {"id": "fleetdeck-bad", "name": "bad", "check": {"http": "http://127.0.0.1/", "interval": "often"}}}`,
		},
		"fleetdeck_maintenance": map[string]any{"managed": false, "on": false, "reason": ""},
	})
	r = runApply(t, pb, []host{bad})
	if r.rc == 0 || r.failed[a.NodeName()] == 0 {
		t.Fatalf("invalid definition applied: rc %d\n%s", r.rc, r.out)
	}
	if !strings.Contains(r.out, "consul validate refused") || !strings.Contains(r.out, "often") {
		t.Errorf("the failure does not carry consul's message:\n%s", r.out)
	}
	if got := snapshot(t, a.ConfigDir()); !maps.Equal(got, snap) {
		t.Errorf("a refused apply changed the config dir")
	}
	c.waitServices(t, a.NodeName(), map[string][]string{"fleetdeck-web": web.Tags, "fleetdeck-worker": {}})

	// 6. Taking every role away leaves only the other files.
	r = runApply(t, pb, []host{c.host(t, 0, nil, nil), c.host(t, 1, nil, nil)})
	if r.rc != 0 {
		t.Fatalf("remove all: rc %d\n%s", r.rc, r.out)
	}
	c.waitServices(t, a.NodeName(), map[string][]string{})
	c.waitServices(t, b.NodeName(), map[string][]string{})
	untouched("remove all")
	after := snapshot(t, a.ConfigDir())
	for name := range after {
		if _, ok := before[name]; !ok && name != "fleetdeck-old.json" {
			t.Errorf("file %s left in the config dir", name)
		}
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("a hostile string was executed")
	}
}

// TestApplyMaintenance turns node maintenance on with a hostile reason,
// changes the reason, and turns it off, each idempotent.
func TestApplyMaintenance(t *testing.T) {
	c := startCluster(t, 1)
	pb := playbook(t)
	a := c.clients[0]
	marker := filepath.Join(t.TempDir(), "pwned")
	web := &roles.Role{Name: "web", Port: 80}
	steps := []struct {
		on     bool
		reason string
	}{
		{true, strings.Join(hostile(marker), " | ")},
		{true, "disk replacement, ticket OPS-1\n"},
		{false, ""},
	}
	for i, s := range steps {
		hosts := []host{c.host(t, 0, []*roles.Role{web}, &roles.Maintenance{On: s.on, Reason: s.reason})}
		r := runApply(t, pb, hosts)
		if r.rc != 0 || r.changed[a.NodeName()] == 0 {
			t.Fatalf("step %d: rc %d changed %v\n%s", i, r.rc, r.changed, r.out)
		}
		c.waitMaint(t, a.NodeName(), s.on, s.reason)
		c.waitServices(t, a.NodeName(), map[string][]string{"fleetdeck-web": {}})
		r = runApply(t, pb, hosts)
		if r.rc != 0 || r.changed[a.NodeName()] != 0 {
			t.Fatalf("step %d again: rc %d changed %v\n%s", i, r.rc, r.changed, r.out)
		}
		c.waitMaint(t, a.NodeName(), s.on, s.reason)
	}
	// Unmanaged maintenance is left alone: on by hand, still on after a run.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, c.bin, "maint", "-enable", "-reason=by hand", "-http-addr="+a.HTTPAddr()).CombinedOutput(); err != nil {
		t.Fatalf("consul maint: %v\n%s", err, out)
	}
	r := runApply(t, pb, []host{c.host(t, 0, []*roles.Role{web}, nil)})
	if r.rc != 0 || r.changed[a.NodeName()] != 0 {
		t.Fatalf("unmanaged: rc %d changed %v\n%s", r.rc, r.changed, r.out)
	}
	c.waitMaint(t, a.NodeName(), true, "by hand")
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("a hostile string was executed")
	}
}

// TestApplyInventoryPaths: the agent's config dir and HTTP address come
// from the inventory (as the demo's host_vars give them) and the consul
// binary's path too; fleetdeck's per-host variables say nothing about
// where the agent is.
func TestApplyInventoryPaths(t *testing.T) {
	c := startCluster(t, 1)
	pb := playbook(t)
	a := c.clients[0]
	web := &roles.Role{Name: "web", Port: 80, Tags: []string{"blue"}}
	hv, err := roles.HostVars(roles.ApplyNode{Address: "node-0.example", Roles: []*roles.Role{web}})
	if err != nil {
		t.Fatal(err)
	}
	for k := range hv {
		if strings.HasPrefix(k, "consul_") {
			t.Errorf("HostVars passes %s: it would hide the host's own", k)
		}
	}
	paths := map[string]any{"consul_config_dir": a.ConfigDir(), "consul_http_addr": a.HTTPAddr(), "consul_bin": c.bin}
	h := agentHost(a, paths)
	maps.Copy(h.vars, hv)
	r := runApply(t, pb, []host{h})
	if r.rc != 0 || r.changed[a.NodeName()] == 0 {
		t.Fatalf("apply: rc %d changed %v\n%s", r.rc, r.changed, r.out)
	}
	c.waitServices(t, a.NodeName(), map[string][]string{"fleetdeck-web": {"blue"}})

	// Control: the same kind of variables without the unsafe wrapping get
	// their Jinja executed. This is what the wrapping prevents, and proof
	// that the hostile-string checks above can fail.
	marker := filepath.Join(t.TempDir(), "control")
	plain := agentHost(a, paths)
	plain.vars["fleetdeck_services"] = map[string]any{"fleetdeck-web.json": `{"service": {"name": "web", "id": "fleetdeck-web", "tags": ["{{ lookup('pipe', 'touch ` + marker + `') }}"]}}`}
	runApplyWrap(t, pb, []host{plain}, false)
	if _, err := os.Stat(marker); err != nil {
		t.Errorf("control: unwrapped Jinja was not executed (%v): the hostile-string tests prove nothing", err)
	}
}

// TestApplyNoDesiredState: a host without fleetdeck_services fails and nothing is removed — a missing variable must never mean
// "take every role away".
func TestApplyNoDesiredState(t *testing.T) {
	c := startCluster(t, 2)
	pb := playbook(t)
	a, b := c.clients[0], c.clients[1]
	web := &roles.Role{Name: "web"}
	if r := runApply(t, pb, []host{c.host(t, 0, []*roles.Role{web}, nil), c.host(t, 1, []*roles.Role{web}, nil)}); r.rc != 0 {
		t.Fatalf("apply: rc %d\n%s", r.rc, r.out)
	}
	snap := snapshot(t, b.ConfigDir())
	// node-1 is in the inventory without fleetdeck's variables.
	r := runApply(t, pb, []host{c.host(t, 0, []*roles.Role{web}, nil), c.bare(1, nil)})
	if r.rc == 0 || r.failed[b.NodeName()] == 0 || r.failed[a.NodeName()] != 0 {
		t.Fatalf("rc %d failed %v\n%s", r.rc, r.failed, r.out)
	}
	if got := snapshot(t, b.ConfigDir()); !maps.Equal(got, snap) {
		t.Error("a host without desired state was changed")
	}
	c.waitServices(t, b.NodeName(), map[string][]string{"fleetdeck-web": {}})
	// A file name outside fleetdeck-ROLE.json is refused before anything runs.
	bad := c.bare(0, map[string]any{"fleetdeck_services": map[string]any{"../../evil.json": "{}"}})
	if r := runApply(t, pb, []host{bad}); r.rc == 0 {
		t.Fatalf("a bad file name was accepted:\n%s", r.out)
	}
}
