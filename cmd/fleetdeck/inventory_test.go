package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/fleetdeck/fleetdeck/internal/consulagent"
)

// TestInventoryScriptWithRealAnsible runs the real fleetdeck binary as a
// plain inventory script (through the documented two-line wrapper, with
// the Consul address in the environment) under the real ansible-inventory
// and ansible-playbook.
func TestInventoryScriptWithRealAnsible(t *testing.T) {
	for _, bin := range []string{"ansible-playbook", "ansible-inventory"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s not installed (Debian: apt-get install --no-install-recommends ansible-core): %v", bin, err)
		}
	}
	agent := consulagent.StartTest(t, consulagent.Options{})
	c, err := agent.Client()
	if err != nil {
		t.Fatal(err)
	}
	rnd := make([]byte, 6)
	if _, err := rand.Read(rnd); err != nil {
		t.Fatal(err)
	}
	pwned := "/tmp/pwned-" + hex.EncodeToString(rnd)
	t.Cleanup(func() { os.Remove(pwned) })
	evil := "{{ lookup('pipe', 'touch " + pwned + "') }}"
	nodes := []struct {
		name string
		meta map[string]string
	}{
		{"web-1", map[string]string{"asg": "web-asg", "evil": evil}},
		{"web-2", map[string]string{"asg": "web-asg"}},
		{"all", nil}, {"@etc", nil}, {"-x", nil}, {"a,b", nil}, {"with space", nil},
	}
	for i, n := range nodes {
		reg := &api.CatalogRegistration{Node: n.name, Address: "10.7.0." + strconv.Itoa(i+1), NodeMeta: n.meta,
			Service: &api.AgentService{ID: "web", Service: "web", Tags: []string{"blue"}, Port: 80}}
		if _, err := c.Catalog().Register(reg, nil); err != nil {
			t.Fatalf("registering %q: %v", n.name, err)
		}
	}

	dir := t.TempDir()
	bin := filepath.Join(dir, "fleetdeck")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("building fleetdeck: %v: %s", err, out)
	}
	wrapper := filepath.Join(dir, "fleetdeck-inventory")
	if err := os.WriteFile(wrapper, []byte("#!/bin/sh\nexec "+bin+" inventory \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	play := filepath.Join(dir, "play.yml")
	if err := os.WriteFile(play, []byte("- hosts: all\n  connection: local\n  gather_facts: false\n  tasks:\n    - debug:\n        var: consul_meta\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(),
		"CONSUL_HTTP_ADDR="+agent.HTTPAddr(),
		"XDG_CONFIG_HOME="+filepath.Join(dir, "config"), // no user config file
		"XDG_CACHE_HOME="+filepath.Join(dir, "cache"),   // the inventory cache stays in the test
		"ANSIBLE_CONFIG="+filepath.Join(dir, "none.cfg"),
		"ANSIBLE_LOCAL_TEMP="+filepath.Join(dir, "ansible-tmp"),
		"ANSIBLE_HOST_PATTERN_MISMATCH=error",
		"ANSIBLE_NOCOLOR=1",
	)
	run := func(args ...string) (stdout, stderr string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, args[0], args[1:]...)
		cmd.Env, cmd.Dir = env, dir
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, o.String(), e.String())
		}
		return o.String(), e.String()
	}

	// The protocol itself.
	out, errOut := run(wrapper, "--list")
	var list map[string]any
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("--list is not JSON (warnings must go to stderr): %v\n%s", err, out)
	}
	hostvars := list["_meta"].(map[string]any)["hostvars"].(map[string]any)
	if len(hostvars) != len(nodes)+1 { // + the agent's own node
		t.Errorf("--list has %d hosts, want %d", len(hostvars), len(nodes)+1)
	}
	for _, name := range []string{"all", "@etc", "-x", "a,b", "with space"} {
		if !strings.Contains(errOut, "warning: node "+strconv.Quote(name)) {
			t.Errorf("no warning on stderr for node %q:\n%s", name, errOut)
		}
		if _, ok := hostvars[name]; ok {
			t.Errorf("node %q is an inventory host under its own name", name)
		}
	}
	if g, _ := list["asg_web_asg"].(map[string]any); g == nil || len(g["hosts"].([]any)) != 2 {
		t.Errorf("asg_web_asg = %v", list["asg_web_asg"])
	}
	out, _ = run(wrapper, "--host", "web-1")
	if !strings.Contains(out, `"consul_node":{"__ansible_unsafe":"web-1"}`) || !strings.Contains(out, `"evil":{"__ansible_unsafe":"{{ lookup('pipe', 'touch `+pwned+`') }}"}`) {
		t.Errorf("--host web-1 = %s", out)
	}
	if out, _ = run(wrapper, "--host", "no-such-host"); strings.TrimSpace(out) != "{}" {
		t.Errorf("--host no-such-host = %q, want {}", out)
	}

	// ansible-inventory holds Consul's strings as unsafe.
	out, _ = run("ansible-inventory", "-i", wrapper, "--host", "web-1")
	if !strings.Contains(out, `"__ansible_unsafe": "{{ lookup('pipe', 'touch `+pwned+`') }}"`) {
		t.Errorf("ansible-inventory --host web-1 does not hold the meta value as unsafe:\n%s", out)
	}

	// A real play prints the template as text and runs nothing, on every
	// host: "all" did not capture the pattern.
	out, _ = run("ansible-playbook", "-i", wrapper, play)
	if _, err := os.Stat(pwned); err == nil {
		t.Fatalf("the node-meta template ran on the controller: %s exists\n%s", pwned, out)
	}
	if !strings.Contains(out, `"evil": "`+evil+`"`) {
		t.Errorf("the literal meta value is not in the play output:\n%s", out)
	}
	if got := strings.Count(out, ": ok=1 "); got != len(nodes)+1 {
		t.Errorf("%d hosts ran, want %d:\n%s", got, len(nodes)+1, out)
	}
	out, _ = run("ansible-playbook", "-i", wrapper, "--list-hosts", "--limit", "svc_web__tag_blue", play)
	if !strings.Contains(out, "hosts (7)") {
		t.Errorf("svc_web__tag_blue does not hold the 7 tagged nodes:\n%s", out)
	}
}
