package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/fleetdeck/fleetdeck/internal/consulagent"
	"github.com/fleetdeck/fleetdeck/internal/demoplaybooks"
	"github.com/fleetdeck/fleetdeck/internal/fleetsim"
	"github.com/fleetdeck/fleetdeck/roles"
)

// TestDemoAgentNamesAreFree: the simulated fleets never name a node like
// the demo's real nodes, nor use their group, so the simulation (which
// only ever touches nodes it registered) and the agents cannot meet.
func TestDemoAgentNamesAreFree(t *testing.T) {
	for name, spec := range map[string]fleetsim.Spec{"demo": fleetsim.DemoSpec(), "scale": fleetsim.ScaleSpec(10000)} {
		nodes, err := spec.Fleet()
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range nodes {
			if strings.HasPrefix(n.Name, demoAgentPrefix) || n.Group == demoAgentGroup {
				t.Errorf("%s fleet: node %s in %q looks like a real node", name, n.Name, n.Group)
			}
		}
		for _, g := range spec.Groups {
			if g.Name == demoAgentGroup {
				t.Errorf("%s fleet has the real nodes' group %s", name, g.Name)
			}
		}
	}
}

// TestDemoAgentsMoveBetweenRoles is issue 9's item 8 end to end: the real
// demo (headless) runs real client agents beside the simulated fleet, each
// in the catalog with its initial managed role, healthy; the real
// ansible-playbook, run with the demo's playbook dir, the environment of
// its config file and the inventory of `fleetdeck inventory` plus the
// per-host variables of roles.HostVars, moves app-01 from web to api with
// variables that say nothing about where its agent is — so only the
// demo's host_vars can have said it — and the catalog
// shows api on app-01 and no web; the same apply on a simulated node
// fails without touching anything; and the demo stops leaving no agent
// process and no directory.
func TestDemoAgentsMoveBetweenRoles(t *testing.T) {
	ansible, err := exec.LookPath("ansible-playbook")
	if err != nil {
		t.Fatalf("ansible-playbook not installed (Debian: apt-get install --no-install-recommends ansible-core): %v", err)
	}
	consul := consulagent.TestBinary(t)
	bin := filepath.Join(t.TempDir(), "fleetdeck")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("building fleetdeck: %v: %s", err, out)
	}
	home := t.TempDir()
	env := append(os.Environ(), consulagent.EnvBinary+"="+consul, "XDG_CONFIG_HOME="+home, "XDG_STATE_HOME="+home,
		"XDG_CACHE_HOME="+home, "CONSUL_HTTP_TOKEN=", "CONSUL_HTTP_TOKEN_FILE=")

	demo := exec.Command(bin, "demo", "--headless", "--nodes", "12", "--agents", "2")
	demo.Env = env
	var banner syncBuffer
	demo.Stdout, demo.Stderr = &banner, &banner
	if err := demo.Start(); err != nil {
		t.Fatal(err)
	}
	demoDone := make(chan error, 1)
	go func() { demoDone <- demo.Wait() }()
	stopped := false
	stopDemo := func() {
		stopped = true
		_ = demo.Process.Signal(os.Interrupt)
		select {
		case err := <-demoDone:
			if err != nil {
				t.Errorf("the demo exited with %v:\n%s", err, banner.String())
			}
		case <-time.After(60 * time.Second):
			_ = demo.Process.Kill()
			<-demoDone
			t.Errorf("the demo did not stop on SIGINT:\n%s", banner.String())
		}
	}
	t.Cleanup(func() {
		if !stopped {
			stopDemo()
		}
	})

	cfgRE := regexp.MustCompile(`(?m)^\s+\S+ --config (\S+)$`)
	var cfgPath string
	for deadline := time.Now().Add(3 * time.Minute); ; {
		if m := cfgRE.FindStringSubmatch(banner.String()); m != nil && strings.Contains(banner.String(), "running headless") {
			cfgPath = m[1]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the demo's banner never gave a --config line:\n%s", banner.String())
		}
		select {
		case err := <-demoDone:
			t.Fatalf("the demo exited (%v):\n%s", err, banner.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	if !strings.Contains(banner.String(), "real nodes app-01 (web), app-02 (api) are Consul client agents") {
		t.Errorf("the banner does not name the real nodes and their roles:\n%s", banner.String())
	}
	t.Setenv("XDG_CONFIG_HOME", home)
	opts, err := resolveArgs(t, "--config", cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	pbDir := opts.ansible.playbookDir
	admin, err := api.NewClient(&api.Config{Address: opts.consul.Address, Scheme: opts.consul.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	// Where the agents live, for the leftovers check at the end.
	var agentDirs []string
	for _, node := range []string{"app-01", "app-02"} {
		hv, err := os.ReadFile(filepath.Join(pbDir, "host_vars", node+".yml"))
		if err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile(`(?m)^consul_config_dir: !unsafe "(.+)"$`).FindSubmatch(hv)
		if m == nil {
			t.Fatalf("host_vars of %s without consul_config_dir:\n%s", node, hv)
		}
		agentDirs = append(agentDirs, filepath.Dir(string(m[1])))
	}

	// Each real node is in the catalog with the simulated nodes' meta and
	// its initial managed role, healthy: the stand-in answers its check.
	waitRoles(t, admin, "app-01", []string{"web"})
	waitRoles(t, admin, "app-02", []string{"api"})
	node, _, err := admin.Catalog().Node("app-02", nil)
	if err != nil {
		t.Fatal(err)
	}
	if m := node.Node.Meta; m["asg"] != demoAgentGroup || m["zone"] == "" || m["instance-id"] == "" {
		t.Errorf("app-02's meta %v", m)
	}

	// The inventory as a playbook run gets it: `fleetdeck inventory`,
	// with the apply's per-host variables added to the host as the run
	// manager adds them (every string unsafe).
	cat, err := roles.ReadDir(pbDir)
	if err != nil {
		t.Fatal(err)
	}
	apiRole, ok := cat.Lookup("api")
	if !ok {
		t.Fatalf("no api role in %s: %v", pbDir, cat.Names())
	}
	apply := func(host, address string) (string, error) {
		hv, err := roles.HostVars(roles.ApplyNode{Address: address, Roles: []*roles.Role{&apiRole}})
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		list := exec.Command(bin, "inventory", "--config", cfgPath, "--no-cache", "--list")
		list.Env = env
		invOut, err := list.Output()
		if err != nil {
			t.Fatalf("fleetdeck inventory: %v", err)
		}
		var inv map[string]json.RawMessage
		if err := json.Unmarshal(invOut, &inv); err != nil {
			t.Fatal(err)
		}
		var meta struct {
			Hostvars map[string]map[string]any `json:"hostvars"`
		}
		if err := json.Unmarshal(inv["_meta"], &meta); err != nil {
			t.Fatal(err)
		}
		if meta.Hostvars[host] == nil {
			t.Fatalf("host %s not in the inventory", host)
		}
		for k, v := range hv {
			meta.Hostvars[host][k] = wrapUnsafe(v)
		}
		if inv["_meta"], err = json.Marshal(meta); err != nil {
			t.Fatal(err)
		}
		doc, _ := json.Marshal(inv)
		if err := os.WriteFile(filepath.Join(dir, "inventory.json"), doc, 0o600); err != nil {
			t.Fatal(err)
		}
		invScript := filepath.Join(dir, "inventory.sh")
		if err := os.WriteFile(invScript, []byte("#!/bin/sh\nexec cat -- \"${0%/*}/inventory.json\"\n"), 0o700); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, ansible, "-i", invScript, "--limit="+host, filepath.Join(pbDir, roles.PlaybookFile))
		cmd.Dir = dir // no ansible.cfg from the working directory
		cmd.Env = append(append(slices.Clone(env), opts.ansible.env...), "ANSIBLE_NOCOLOR=1", "ANSIBLE_HOST_PATTERN_MISMATCH=error",
			"ANSIBLE_RETRY_FILES_ENABLED=0", "ANSIBLE_LOCAL_TEMP="+dir, "ANSIBLE_REMOTE_TEMP="+dir)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := apply("app-01", "127.0.0.1"); err != nil {
		t.Fatalf("moving app-01 to api: %v\n%s", err, out)
	}
	waitRoles(t, admin, "app-01", []string{"api"})

	// A simulated node has no agent: its apply fails on the group_vars'
	// config dir, and nothing on this machine is touched.
	nodes, _, err := admin.Catalog().Nodes(nil)
	if err != nil {
		t.Fatal(err)
	}
	var sim *api.Node
	for _, n := range nodes {
		if n.Meta["asg"] != "" && n.Meta["asg"] != demoAgentGroup {
			sim = n
			break
		}
	}
	if sim == nil {
		t.Fatal("no simulated node in an autoscaling group")
	}
	out, err := apply(sim.Node, sim.Address)
	if err == nil || !strings.Contains(out, "cannot read consul_config_dir "+demoplaybooks.NoAgentDir) {
		t.Errorf("applying a role to simulated node %s: %v\n%s", sim.Node, err, out)
	}
	waitRoles(t, admin, "app-02", []string{"api"})

	stopDemo()
	for _, d := range append(agentDirs, filepath.Dir(cfgPath)) {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("the demo left %s behind (%v)", d, err)
		}
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		for _, d := range agentDirs {
			if strings.Contains(string(b), d) {
				t.Errorf("an agent process outlived the demo: %s: %q", p, b)
			}
		}
	}
}

// wrapUnsafe wraps every string of v as {"__ansible_unsafe": s}, as the
// run manager writes per-host variables.
func wrapUnsafe(v any) any {
	switch x := v.(type) {
	case string:
		return map[string]any{"__ansible_unsafe": x}
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = wrapUnsafe(e)
		}
		return out
	}
	return v
}

// waitRoles waits until node's managed roles in the catalog are exactly
// want and their checks pass (the demo's stand-ins answer them).
func waitRoles(t *testing.T, c *api.Client, node string, want []string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var got []string
		passing := true
		checks, _, err := c.Health().Node(node, nil)
		if err != nil {
			t.Fatal(err)
		}
		n, _, err := c.Catalog().Node(node, nil)
		if err != nil {
			t.Fatal(err)
		}
		if n != nil {
			for id, s := range n.Services {
				if strings.HasPrefix(id, roles.ServicePrefix) {
					got = append(got, s.Service)
				}
			}
		}
		for _, ch := range checks {
			passing = passing && ch.Status == api.HealthPassing
		}
		slices.Sort(got)
		if slices.Equal(got, want) && passing && len(checks) == 1+len(want) {
			return
		}
		if time.Now().After(deadline) {
			var sum []string
			for _, ch := range checks {
				sum = append(sum, ch.CheckID+"="+ch.Status+" "+ch.Output)
			}
			t.Fatalf("%s: managed roles %v, want %v; checks %q", node, got, want, sum)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
