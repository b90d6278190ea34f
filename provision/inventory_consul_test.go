package provision_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/fleetdeck/fleetdeck/fleet"
	"github.com/fleetdeck/fleetdeck/internal/consulagent"
	"github.com/fleetdeck/fleetdeck/provision"
)

// invRegister writes a node (and optionally a service and a check) into
// the catalog of a real Consul.
func invRegister(t *testing.T, c *api.Client, name, addr string, meta map[string]string, svc *api.AgentService, check *api.AgentCheck) {
	t.Helper()
	// A check alone must not reset the node's meta.
	reg := &api.CatalogRegistration{Node: name, Address: addr, NodeMeta: meta, Service: svc, Check: check, SkipNodeUpdate: meta == nil}
	if _, err := c.Catalog().Register(reg, nil); err != nil {
		t.Fatalf("registering node %q: %v", name, err)
	}
}

// invScript writes an executable inventory script that prints the file
// list for --list and {} for --host, the way a per-run snapshot is used.
func invScript(t *testing.T, dir, list string) string {
	t.Helper()
	p := filepath.Join(dir, "inventory.sh")
	script := "#!/bin/sh\nif [ \"$1\" = --list ]; then exec cat '" + list + "'; fi\necho '{}'\n"
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// ansible runs an ansible command with a clean configuration and returns
// its combined output.
func ansible(t *testing.T, dir string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"ANSIBLE_CONFIG="+filepath.Join(dir, "none.cfg"), // no user or cwd ansible.cfg
		"ANSIBLE_HOST_PATTERN_MISMATCH=error",
		"ANSIBLE_LOCAL_TEMP="+filepath.Join(dir, "ansible-tmp"),
		"ANSIBLE_NOCOLOR=1",
		"ANSIBLE_RETRY_FILES_ENABLED=0",
		"ANSIBLE_INVENTORY_UNPARSED_WARNING=0",
	)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func randomSuffix(t *testing.T) string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

const invPlaybook = `- hosts: all
  connection: local
  gather_facts: false
  tasks:
    - debug:
        var: consul_meta
`

func TestInventoryFromRealConsulWithRealAnsible(t *testing.T) {
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
	dir := t.TempDir()
	pwned := "/tmp/pwned-" + randomSuffix(t)
	t.Cleanup(func() { os.Remove(pwned) })
	evil := "{{ lookup('pipe', 'touch " + pwned + "') }}"

	invRegister(t, c, "web-1", "10.0.0.1", map[string]string{"asg": "web-asg", "zone": "z1", "instance-id": "i-1", "evil": evil},
		&api.AgentService{ID: "web", Service: "web", Tags: []string{"v1", "{{ tag }}"}, Port: 8080}, nil)
	invRegister(t, c, "web-1", "10.0.0.1", nil, nil,
		&api.AgentCheck{Node: "web-1", CheckID: "http", Name: "http", Status: api.HealthCritical, ServiceID: "web", Output: "503 {{ out }}"})
	hostile := []string{"all", "@etc", "-x", "a,b", "with space", "localhost"}
	for i, name := range hostile {
		invRegister(t, c, name, "10.0.1."+strconv.Itoa(i+1), map[string]string{"zone": "z2"},
			&api.AgentService{ID: "db", Service: "db", Port: 5432}, nil)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := fleet.Once(ctx, c, fleet.Config{SkipAllChecks: true})
	if err != nil {
		t.Fatalf("fleet.Once: %v", err)
	}
	inv, warns := provision.BuildInventory(s, provision.InventoryOptions{})
	dc := agent.Datacenter()
	if dc == "" {
		dc = s.Datacenters[0]
	}

	// Groups and variables as Consul has them.
	if got := inv.Groups["svc_web__tag_v1"]; !slices.Equal(got, []string{"web-1"}) {
		t.Errorf("svc_web__tag_v1 = %v", got)
	}
	if got := inv.Groups["health_critical"]; !slices.Equal(got, []string{"web-1"}) {
		t.Errorf("health_critical = %v (the check is critical)", got)
	}
	if got := inv.Groups["asg_web_asg"]; !slices.Equal(got, []string{"web-1"}) {
		t.Errorf("asg_web_asg = %v", got)
	}
	if got := len(inv.Groups["svc_db"]); got != len(hostile) {
		t.Errorf("svc_db has %d hosts, want %d", got, len(hostile))
	}
	if got := len(inv.Groups["dc_"+dc]); got != len(hostile)+2 { // + web-1 + the agent's own node
		t.Errorf("dc_%s has %d hosts, want %d: %v", dc, got, len(hostile)+2, inv.Groups["dc_"+dc])
	}
	aliasOf := map[string]string{}
	for _, name := range hostile {
		h, ok := inv.Resolve(dc + "/" + name)
		if !ok || !strings.HasPrefix(h, "fd_") {
			t.Errorf("node %q: host %q, want an fd_ alias", name, h)
		}
		aliasOf[name] = h
		found := false
		for _, w := range warns {
			found = found || (w.Node == dc+"/"+name && w.Host == h)
		}
		if !found {
			t.Errorf("no warning for the alias of %q", name)
		}
	}

	list := filepath.Join(dir, "list.json")
	f, err := os.Create(list)
	if err != nil {
		t.Fatal(err)
	}
	if err := inv.WriteList(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	script := invScript(t, dir, list)
	play := filepath.Join(dir, "play.yml")
	if err := os.WriteFile(play, []byte(invPlaybook), 0o644); err != nil {
		t.Fatal(err)
	}

	// ansible-inventory re-emits values it holds as unsafe in the
	// __ansible_unsafe form: proof that the marking survived parsing.
	out, err := ansible(t, dir, "ansible-inventory", "-i", script, "--list")
	if err != nil {
		t.Fatalf("ansible-inventory: %v\n%s", err, out)
	}
	var parsed map[string]any
	if err := json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &parsed); err != nil {
		t.Fatalf("ansible-inventory output: %v\n%s", err, out)
	}
	hv := parsed["_meta"].(map[string]any)["hostvars"].(map[string]any)["web-1"].(map[string]any)
	if got := unsafeVal(t, hv["consul_meta"].(map[string]any)["evil"]); got != evil {
		t.Errorf("Ansible's consul_meta.evil = %q, want the literal %q", got, evil)
	}
	if got := unsafeVal(t, hv["ansible_host"]); got != "10.0.0.1" {
		t.Errorf("Ansible's ansible_host = %q", got)
	}

	// A real play prints the template as text and runs nothing.
	out, err = ansible(t, dir, "ansible-playbook", "-i", script, play)
	if err != nil {
		t.Fatalf("ansible-playbook: %v\n%s", err, out)
	}
	if _, err := os.Stat(pwned); err == nil {
		t.Fatalf("the node-meta template ran on the controller: %s exists\n%s", pwned, out)
	}
	if !strings.Contains(out, `"evil": "{{ lookup('pipe', 'touch `+pwned+`') }}"`) {
		t.Errorf("the literal meta value is not in the play output:\n%s", out)
	}
	if strings.Count(out, ": ok=1 ") != len(hostile)+2 {
		t.Errorf("want every host ok once:\n%s", out)
	}

	// hosts: all means every host: the node named "all" is just one of them.
	out, err = ansible(t, dir, "ansible-playbook", "-i", script, "--list-hosts", play)
	if err != nil {
		t.Fatalf("--list-hosts: %v\n%s", err, out)
	}
	if !strings.Contains(out, "hosts ("+strconv.Itoa(len(hostile)+2)+")") {
		t.Errorf("hosts: all does not list every host:\n%s", out)
	}
	// Each alias targets exactly its node with --limit.
	for _, name := range []string{"all", "@etc", "-x", "a,b", "with space"} {
		out, err = ansible(t, dir, "ansible-playbook", "-i", script, "--list-hosts", "--limit", aliasOf[name], play)
		if err != nil {
			t.Fatalf("--limit %s: %v\n%s", aliasOf[name], err, out)
		}
		if !strings.Contains(out, "hosts (1)") || !strings.Contains(out, aliasOf[name]) {
			t.Errorf("--limit %s (node %q) does not select exactly that host:\n%s", aliasOf[name], name, out)
		}
	}

	// Control: the same value without the unsafe marking is executed. This
	// shows the play above would have caught a missing marking.
	control := "/tmp/pwned-control-" + randomSuffix(t)
	t.Cleanup(func() { os.Remove(control) })
	raw := `{"all_hosts":{"hosts":["h"]},"_meta":{"hostvars":{"h":{"consul_meta":{"evil":"{{ lookup('pipe', 'touch ` + control + `') }}"}}}}}`
	if err := os.WriteFile(list, []byte(raw), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := ansible(t, dir, "ansible-playbook", "-i", script, play); err != nil {
		t.Fatalf("control play: %v\n%s", err, out)
	}
	if _, err := os.Stat(control); err != nil {
		t.Errorf("control: an unmarked template did not run (%v), so the test above proves nothing", err)
	}

	// Control: a host really named "all" does capture "hosts: all".
	if err := os.WriteFile(list, []byte(`{"g":{"hosts":["all","b","c"]},"_meta":{"hostvars":{}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = ansible(t, dir, "ansible-playbook", "-i", script, "--list-hosts", play)
	if err != nil || !strings.Contains(out, "hosts (1)") {
		t.Errorf("control: a host named all did not hijack hosts: all (%v), so the alias check proves nothing:\n%s", err, out)
	}
}
