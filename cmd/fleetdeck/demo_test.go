package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fleetdeck/fleetdeck/fleet"
	"github.com/fleetdeck/fleetdeck/internal/demoplaybooks"
	"github.com/fleetdeck/fleetdeck/roles"
)

// TestDemoConfigFile: the file the demo writes for other consoles reads
// back as the options its own console runs with, keeps the user's run
// settings and points everything else at the demo.
func TestDemoConfigFile(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", dir)
	t.Setenv("XDG_STATE_HOME", dir)
	user := filepath.Join(dir, "user.toml")
	if err := os.WriteFile(user, []byte(`
[fleet]
group_keys = ["mig"]
[ansible]
lock_prefix = "team-a"
max_parallel_runs = 2
env = ["ANSIBLE_FORKS=3"]
[logs]
cap = 1000
from = "name"
[ssh]
user = "oncall"
[alerts]
enabled = false
`), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := resolveArgs(t, "--config", user, "--read-only")
	if err != nil {
		t.Fatal(err)
	}
	state, err := demoStateDir(opts.ansible)
	if err != nil {
		t.Fatal(err)
	}
	if state != filepath.Join(dir, "fleetdeck", "demo") {
		t.Errorf("state dir %s", state)
	}
	files, err := writeDemoFiles(opts, state, "127.0.0.1:18500", "127.0.0.1:18600")
	if err != nil {
		t.Fatal(err)
	}
	for p, mode := range map[string]os.FileMode{files.dir: 0o700, files.config: 0o600} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want %v (%v)", p, fi.Mode().Perm(), mode, err)
		}
	}
	for _, name := range append(demoplaybooks.Names(), roles.PlaybookFile) {
		if _, err := os.Stat(filepath.Join(files.playbooks, name)); err != nil {
			t.Errorf("playbook %s: %v", name, err)
		}
	}
	raw, _ := os.ReadFile(files.config)
	t.Logf("%s:\n%s", files.config, raw)

	// What `fleetdeck --config <file>` resolves.
	got, err := resolveArgs(t, "--config", files.config)
	if err != nil {
		t.Fatal(err)
	}
	own, err := files.options()
	if err != nil {
		t.Fatal(err)
	}
	a := got.ansible
	if got.consul.Address != "127.0.0.1:18500" || got.consul.Scheme != "http" {
		t.Errorf("consul %s://%s", got.consul.Scheme, got.consul.Address)
	}
	if a.playbookDir != files.playbooks || a.stateDir != state || a.lockPrefix != "team-a" || a.maxRuns != 2 || a.timeout != time.Hour {
		t.Errorf("ansible %+v", a)
	}
	if !slices.Equal(a.env, []string{"ANSIBLE_FORKS=3", "ANSIBLE_TRANSPORT=local", "ANSIBLE_PYTHON_INTERPRETER=auto_silent"}) {
		t.Errorf("env %q", a.env)
	}
	if err := a.checkPlaybookDir(); err != nil {
		t.Error(err)
	}
	l := got.logs
	if !slices.Equal(l.projects, []string{demoLogProject}) || l.endpoint != "127.0.0.1:18600" || !l.insecure ||
		l.cap != 1000 || l.saveDir != filepath.Join(state, "logs") || l.mapping.From != "" {
		t.Errorf("logs %+v", l)
	}
	// The simulated fleet's keys, not the user's.
	if got.fleet.GroupKeys != nil || !got.readOnly {
		t.Errorf("fleet keys %v, read-only %v", got.fleet.GroupKeys, got.readOnly)
	}
	// The user's ssh user and alerts filter are kept; ssh gives up on the
	// simulated addresses within seconds.
	argv, err := got.ssh.Argv(&fleet.Node{Name: "web-1", Address: "10.1.2.3"})
	if want := []string{"ssh", "-o", "ConnectTimeout=5", "-l", "oncall", "10.1.2.3"}; err != nil || !slices.Equal(argv, want) {
		t.Errorf("ssh argv %q, %v; want %q", argv, err, want)
	}
	if got.alerts.Enabled || got.alerts.Filter != demoAlertFilter {
		t.Errorf("alerts %+v", got.alerts)
	}
	// The demo's own console runs on exactly these options.
	if own.consul.Address != got.consul.Address || !slices.Equal(own.ansible.env, a.env) || own.ansible.lockPrefix != a.lockPrefix ||
		own.ansible.playbookDir != a.playbookDir || own.ansible.stateDir != a.stateDir || own.logs.endpoint != l.endpoint {
		t.Errorf("the demo's console: %+v", own)
	}

	var errOut bytes.Buffer
	files.remove(&errOut)
	if _, err := os.Stat(files.dir); !os.IsNotExist(err) || errOut.Len() > 0 {
		t.Errorf("after remove: %v %s", err, errOut.String())
	}
	// Only what is set: no empty keys, no token.
	if strings.Contains(string(raw), `""`) || strings.Contains(string(raw), "token") {
		t.Errorf("the file holds empty keys or a token:\n%s", raw)
	}
}
