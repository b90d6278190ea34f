package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/spf13/cobra"

	"github.com/fleetdeck/fleetdeck/fleet"
	"github.com/fleetdeck/fleetdeck/internal/consulagent"
	"github.com/fleetdeck/fleetdeck/provision"
	"github.com/fleetdeck/fleetdeck/roles"
)

// resolveArgs parses args with the real root command's flags and resolves
// the options, as fleetdeck does at start-up.
func resolveArgs(t *testing.T, args ...string) (options, error) {
	t.Helper()
	var flags flagSet
	cmd := &cobra.Command{Use: "x", RunE: func(*cobra.Command, []string) error { return nil }}
	flags.register(cmd.Flags())
	if err := cmd.ParseFlags(args); err != nil {
		t.Fatalf("parsing %v: %v", args, err)
	}
	return flags.resolve(cmd.Flags().Changed)
}

func TestConfigPrecedenceEnvThenFileThenFlags(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", dir)
	t.Setenv("CONSUL_HTTP_ADDR", "env:8500")
	t.Setenv("CONSUL_HTTP_TOKEN", "env-token")
	t.Setenv("NO_COLOR", "")

	// Environment only (no config file: a missing default file is fine).
	o, err := resolveArgs(t)
	if err != nil {
		t.Fatal(err)
	}
	if o.consul.Address != "env:8500" || o.consul.Token != "env-token" {
		t.Errorf("env: got %s %s", o.consul.Address, o.consul.Token)
	}

	// The config file overrides the environment.
	cfg := filepath.Join(dir, "fleetdeck", "config.toml")
	if err := os.MkdirAll(filepath.Dir(cfg), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, []byte(`
[consul]
address = "https://file:8501"
datacenters = ["a", "b"]
wait = "55s"
[fleet]
group_keys = ["mig"]
[ui]
read_only = true
`), 0o600); err != nil {
		t.Fatal(err)
	}
	o, err = resolveArgs(t)
	if err != nil {
		t.Fatal(err)
	}
	if o.consul.Address != "file:8501" || o.consul.Scheme != "https" {
		t.Errorf("file: address %s scheme %s", o.consul.Address, o.consul.Scheme)
	}
	if !slices.Equal(o.fleet.Datacenters, []string{"a", "b"}) || o.fleet.WaitTime != 55*time.Second ||
		!slices.Equal(o.fleet.GroupKeys, []string{"mig"}) || !o.readOnly {
		t.Errorf("file: %+v read-only %v", o.fleet, o.readOnly)
	}

	// Flags override both.
	o, err = resolveArgs(t, "--http-addr", "flag:9500", "--dc", "c", "--wait", "10s", "--read-only=false", "--no-color")
	if err != nil {
		t.Fatal(err)
	}
	if o.consul.Address != "flag:9500" || !slices.Equal(o.fleet.Datacenters, []string{"c"}) ||
		o.fleet.WaitTime != 10*time.Second || o.readOnly || !o.noColor {
		t.Errorf("flags: %s %+v ro=%v nocolor=%v", o.consul.Address, o.fleet, o.readOnly, o.noColor)
	}
}

func TestConfigErrorsAreClear(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(bad, []byte("[consul]\nwait = \"soon\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := resolveArgs(t, "--config", bad); err == nil || !strings.Contains(err.Error(), "consul.wait") {
		t.Errorf("bad wait: err = %v", err)
	}
	if _, err := resolveArgs(t, "--config", filepath.Join(dir, "missing.toml")); err == nil || !strings.Contains(err.Error(), "config file") {
		t.Errorf("an explicitly named missing file must be an error: %v", err)
	}
	broken := filepath.Join(dir, "broken.toml")
	if err := os.WriteFile(broken, []byte("[consul\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := resolveArgs(t, "--config", broken); err == nil || !strings.Contains(err.Error(), broken) {
		t.Errorf("a broken file must be named in the error: %v", err)
	}
}

func TestNoColorFromEnvironment(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("NO_COLOR", "1")
	o, err := resolveArgs(t)
	if err != nil {
		t.Fatal(err)
	}
	if !o.noColor {
		t.Error("NO_COLOR=1 did not turn colour off")
	}
}

func TestConfigInventoryCache(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", dir)
	o, err := resolveArgs(t)
	if err != nil {
		t.Fatal(err)
	}
	if !o.ansible.inventoryCache || o.ansible.inventoryCacheMaxAge != defaultInventoryCacheMaxAge {
		t.Errorf("defaults: cache %v, max age %v", o.ansible.inventoryCache, o.ansible.inventoryCacheMaxAge)
	}
	cfg := filepath.Join(dir, "c.toml")
	write := func(body string) {
		t.Helper()
		if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("[ansible]\ninventory_cache = false\ninventory_cache_max_age = \"90s\"\n")
	if o, err = resolveArgs(t, "--config", cfg); err != nil {
		t.Fatal(err)
	}
	if o.ansible.inventoryCache || o.ansible.inventoryCacheMaxAge != 90*time.Second {
		t.Errorf("file: cache %v, max age %v", o.ansible.inventoryCache, o.ansible.inventoryCacheMaxAge)
	}
	write("[ansible]\npass_env = [\"VAULT_ADDR\"]\nkeep_runs = 50\nkeep_days = 7\n")
	if o, err = resolveArgs(t, "--config", cfg); err != nil {
		t.Fatal(err)
	}
	if a := o.ansible; len(a.passEnv) != 1 || a.passEnv[0] != "VAULT_ADDR" || a.keepRuns != 50 || a.keepFor != 7*24*time.Hour {
		t.Errorf("pass_env %v keep_runs %d keep_days → %v", a.passEnv, a.keepRuns, a.keepFor)
	}
	for _, bad := range []string{`"soon"`, `"0s"`, `"-1m"`} {
		write("[ansible]\ninventory_cache_max_age = " + bad + "\n")
		if _, err := resolveArgs(t, "--config", cfg); err == nil || !strings.Contains(err.Error(), "inventory_cache_max_age") {
			t.Errorf("max age %s: err = %v", bad, err)
		}
	}
}

func TestConfigLogs(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("GOOGLE_CLOUD_PROJECT", "env-project")
	cfg := filepath.Join(dir, "config.toml")

	if _, err := resolveArgs(t, "--config", cfg+".missing"); err == nil {
		t.Fatal("an explicit missing config file was accepted")
	}
	t.Setenv("XDG_CONFIG_HOME", dir) // no default config file there
	o, err := resolveArgs(t)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(o.logs.projects, []string{"env-project"}) {
		t.Errorf("GOOGLE_CLOUD_PROJECT: projects = %v", o.logs.projects)
	}

	write := func(body string) {
		t.Helper()
		if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(`
[fleet]
instance_key = "gce-id"
[logs]
projects = ["a", "b"]
endpoint = "127.0.0.1:9"
insecure = true
before = "2m"
after = "30s"
cap = 5000
`)
	o, err = resolveArgs(t, "--config", cfg)
	if err != nil {
		t.Fatal(err)
	}
	l := o.logs
	if !slices.Equal(l.projects, []string{"a", "b"}) || l.endpoint != "127.0.0.1:9" || !l.insecure ||
		l.before != 2*time.Minute || l.after != 30*time.Second || l.cap != 5000 {
		t.Errorf("file: %+v", l)
	}
	// The mapping follows the fleet's instance key unless told otherwise.
	if o, err := resolveArgs(t, "--config", cfg, "--state-dir", "/srv/fd"); err != nil || o.logs.saveDir != "/srv/fd/logs" {
		t.Errorf("saved views follow --state-dir: %q, %v", o.logs.saveDir, err)
	}
	if l.mapping.From != "meta:gce-id" {
		t.Errorf("mapping from = %q, want meta:gce-id", l.mapping.From)
	}
	o, err = resolveArgs(t, "--config", cfg, "--logs-project", "c", "--logs-endpoint", "x:1", "--logs-insecure=false")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(o.logs.projects, []string{"c"}) || o.logs.endpoint != "x:1" || o.logs.insecure {
		t.Errorf("flags: %+v", o.logs)
	}

	for body, want := range map[string]string{
		"[logs]\nbefore = \"soon\"\n":                      "logs.before",
		"[logs]\nfrom = \"hostname\"\n":                    "meta:KEY",
		"[logs]\nfield = \"textPayload\"\n":                "field",
		"[logs]\nresource_type = \"\"\n":                   "logs.field",
		"[logs]\nfield = \"labels.host\"\nfrom = \"name\"": "",
	} {
		write(body)
		_, err := resolveArgs(t, "--config", cfg)
		if want == "" {
			if err != nil {
				t.Errorf("%q: %v", body, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err = %v, want one naming %q", body, err, want)
		}
	}
}

// TestMeaninglessSettingsFailAtStart runs the real command tree with
// settings that mean nothing and checks that each is refused before
// anything starts, naming the flag or the config file and its key.
func TestMeaninglessSettingsFailAtStart(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", dir)
	t.Setenv("XDG_STATE_HOME", dir)
	t.Setenv("XDG_CACHE_HOME", dir)
	t.Setenv(api.HTTPTokenEnvName, "")
	t.Setenv(api.HTTPTokenFileEnvName, "")
	// Nothing listens here: a setting that slipped through would end in a
	// connection error, not in the error the case wants.
	t.Setenv("CONSUL_HTTP_ADDR", "127.0.0.1:1")
	cfg := filepath.Join(dir, "fleetdeck.toml")
	notDir := filepath.Join(dir, "a-file")
	emptyToken := filepath.Join(dir, "empty-token")
	for _, p := range []string{notDir, emptyToken} {
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	missing := filepath.Join(dir, "missing")
	for _, tc := range []struct {
		name string
		file string // config file body; "" for none
		args []string
		want []string
	}{
		{"max-runs -1", "", []string{"--max-runs", "-1"}, []string{"--max-runs -1", "at least 1"}},
		{"max-runs 0", "", []string{"--max-runs", "0"}, []string{"--max-runs 0", "at least 1"}},
		{"max_parallel_runs 0", "[ansible]\nmax_parallel_runs = 0\n", nil, []string{cfg, "ansible.max_parallel_runs = 0"}},
		{"max_parallel_runs -3", "[ansible]\nmax_parallel_runs = -3\n", nil, []string{cfg, "ansible.max_parallel_runs = -3"}},
		{"wait -1s", "", []string{"--wait", "-1s"}, []string{"--wait -1s", "at least 1s"}},
		{"wait 0", "", []string{"--wait", "0"}, []string{"--wait 0s", "at least 1s"}},
		{"wait 500ms", "", []string{"--wait", "500ms"}, []string{"--wait 500ms", "at least 1s"}},
		{"wait 11m", "", []string{"--wait", "11m"}, []string{"--wait 11m0s", "Consul caps blocking queries at 10m0s"}},
		{"file wait 0s", "[consul]\nwait = \"0s\"\n", nil, []string{cfg, `consul.wait = "0s"`, "at least 1s"}},
		{"file wait 1h", "[consul]\nwait = \"1h\"\n", nil, []string{cfg, `consul.wait = "1h"`, "caps"}},
		{"run-timeout -1m", "", []string{"--run-timeout", "-1m"}, []string{"--run-timeout -1m0s", "must not be negative"}},
		{"file timeout -1h", "[ansible]\ntimeout = \"-1h\"\n", nil, []string{cfg, `ansible.timeout = "-1h"`, "must not be negative"}},
		{"max_connections 4", "[consul]\nmax_connections = 4\n", nil, []string{cfg, "consul.max_connections = 4", "at least 12"}},
		{"dc ,", "", []string{"--dc", ","}, []string{`--dc ","`, "empty datacenter name"}},
		{"dc a,,b", "", []string{"--dc", "a,,b"}, []string{`--dc "a,,b"`, "empty datacenter name"}},
		{"dc empty", "", []string{"--dc", ""}, []string{`--dc ""`, "no datacenter named"}},
		{"file datacenters", "[consul]\ndatacenters = [\"dc1\", \" \"]\n", nil, []string{cfg, "consul.datacenters", "empty datacenter name"}},
		{"file datacenters []", "[consul]\ndatacenters = []\n", nil, []string{cfg, "consul.datacenters", "no datacenter named"}},
		{"logs cap -1", "[logs]\ncap = -1\n", nil, []string{cfg, "logs.cap = -1", "must be positive"}},
		{"logs list_per_minute -1", "[logs]\nlist_per_minute = -1\n", nil, []string{cfg, "logs.list_per_minute = -1"}},
		{"playbooks missing", "", []string{"--playbooks", missing}, []string{`--playbooks "` + missing + `"`, "no such file"}},
		{"playbooks a file", "", []string{"--playbooks", notDir}, []string{`--playbooks "` + notDir + `"`, "not a directory"}},
		{"playbook_dir missing", "[ansible]\nplaybook_dir = \"" + missing + "\"\n", nil, []string{`[ansible] playbook_dir "` + missing + `" in ` + cfg, "no such file"}},
		{"token-file missing", "", []string{"--token-file", missing}, []string{"--token-file " + missing, "no such file"}},
		{"token-file empty", "", []string{"--token-file", emptyToken}, []string{"--token-file " + emptyToken, "empty"}},
		{"token_file empty", "[consul]\ntoken_file = \"" + emptyToken + "\"\n", nil, []string{"[consul] token_file " + emptyToken + " in " + cfg, "empty"}},
		{"inventory cache-max-age -1s", "", []string{"inventory", "--list", "--cache-max-age", "-1s"}, []string{"--cache-max-age -1s", "must be positive"}},
		{"inventory cache-max-age 0 with no-cache", "", []string{"inventory", "--list", "--no-cache", "--cache-max-age", "0s"}, []string{"--cache-max-age 0s"}},
		{"inventory timeout 0", "", []string{"inventory", "--list", "--timeout", "0s"}, []string{"--timeout 0s", "must be positive"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if tc.file != "" {
				if err := os.WriteFile(cfg, []byte(tc.file), 0o600); err != nil {
					t.Fatal(err)
				}
				args = append(slices.Clone(args), "--config", cfg)
			}
			root := newRootCmd()
			var out bytes.Buffer
			root.SetOut(&out)
			root.SetErr(&out)
			root.SetArgs(args)
			// Should a case slip through, the console must not wait for
			// Consul for ever.
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			err := root.ExecuteContext(ctx)
			if err == nil {
				t.Fatalf("fleetdeck %q was accepted", args)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("fleetdeck %q: error %q does not say %q", args, err, w)
				}
			}
		})
	}
}

// TestUnsetSettingsKeepTheirDefaults: what is not given means the default,
// and the smallest meaningful values are accepted.
func TestUnsetSettingsKeepTheirDefaults(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", dir)
	o, err := resolveArgs(t)
	if err != nil {
		t.Fatal(err)
	}
	if o.ansible.maxRuns != 0 || o.ansible.timeout != time.Hour || o.fleet.WaitTime != 0 || o.fleet.Datacenters != nil || o.logs.cap != defaultLogsCap {
		t.Errorf("defaults: max runs %d, timeout %v, wait %v, dcs %q, logs cap %d",
			o.ansible.maxRuns, o.ansible.timeout, o.fleet.WaitTime, o.fleet.Datacenters, o.logs.cap)
	}
	cfg := filepath.Join(dir, "c.toml")
	if err := os.WriteFile(cfg, []byte("[consul]\nwait = \"10m\"\ndatacenters = [\" dc1 \"]\n[ansible]\nmax_parallel_runs = 1\ntimeout = \"0s\"\n[logs]\ncap = 0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	o, err = resolveArgs(t, "--config", cfg)
	if err != nil {
		t.Fatal(err)
	}
	if o.ansible.maxRuns != 1 || o.ansible.timeout != 0 || o.fleet.WaitTime != 10*time.Minute ||
		!slices.Equal(o.fleet.Datacenters, []string{"dc1"}) || o.logs.cap != defaultLogsCap {
		t.Errorf("file: max runs %d, timeout %v, wait %v, dcs %q, logs cap %d",
			o.ansible.maxRuns, o.ansible.timeout, o.fleet.WaitTime, o.fleet.Datacenters, o.logs.cap)
	}
	o, err = resolveArgs(t, "--config", cfg, "--wait", "1s", "--dc", "a, b", "--max-runs", "2", "--run-timeout", "0")
	if err != nil {
		t.Fatal(err)
	}
	if o.ansible.maxRuns != 2 || o.ansible.timeout != 0 || o.fleet.WaitTime != time.Second || !slices.Equal(o.fleet.Datacenters, []string{"a", "b"}) {
		t.Errorf("flags: max runs %d, timeout %v, wait %v, dcs %q", o.ansible.maxRuns, o.ansible.timeout, o.fleet.WaitTime, o.fleet.Datacenters)
	}
}

// TestTokenSource: the source named in permission hints is the token the
// Consul client really sends, whichever layer set it.
func TestTokenSource(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", dir)
	t.Setenv(api.HTTPTokenEnvName, "")
	t.Setenv(api.HTTPTokenFileEnvName, "")
	tokenFile := func(name, token string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(token+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	envFile, fileFile, flagFile := tokenFile("env", "from-env-file"), tokenFile("file", "from-file-file"), tokenFile("flag", "from-flag-file")
	cfg := filepath.Join(dir, "c.toml")
	for _, tc := range []struct {
		name              string
		envToken, envFile string
		file              string
		args              []string
		wantToken, source string
	}{
		{"nothing", "", "", "", nil, "", ""},
		{"env token", "tok-env", "", "", nil, "tok-env", "CONSUL_HTTP_TOKEN"},
		{"env token file", "tok-env", envFile, "", nil, "from-env-file", "CONSUL_HTTP_TOKEN_FILE " + envFile},
		{"file token beats env file", "", envFile, "[consul]\ntoken = \"tok-file\"\n", nil, "tok-file", "[consul] token in " + cfg},
		{"file token_file", "tok-env", "", "[consul]\ntoken_file = \"" + fileFile + "\"\n", nil, "from-file-file", "[consul] token_file " + fileFile + " in " + cfg},
		{"flag token beats file token_file", "", "", "[consul]\ntoken_file = \"" + fileFile + "\"\n", []string{"--token", "tok-flag"}, "tok-flag", "--token"},
		{"flag token-file", "tok-env", envFile, "[consul]\ntoken = \"tok-file\"\n", []string{"--token-file", flagFile}, "from-flag-file", "--token-file " + flagFile},
		{"flag token-file equal to env", "", envFile, "", []string{"--token-file", envFile}, "from-env-file", "--token-file " + envFile},
		{"flag token equal to env", "tok-env", "", "", []string{"--token", "tok-env"}, "tok-env", "--token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(api.HTTPTokenEnvName, tc.envToken)
			t.Setenv(api.HTTPTokenFileEnvName, tc.envFile)
			args := tc.args
			if tc.file != "" {
				if err := os.WriteFile(cfg, []byte(tc.file), 0o600); err != nil {
					t.Fatal(err)
				}
				args = append(slices.Clone(args), "--config", cfg)
			}
			o, err := resolveArgs(t, args...)
			if err != nil {
				t.Fatal(err)
			}
			if o.fleet.TokenSource != tc.source {
				t.Errorf("source %q, want %q", o.fleet.TokenSource, tc.source)
			}
			// What the Consul client will really send: NewClient settles
			// the token into the config it is given.
			if _, err := api.NewClient(o.consul); err != nil {
				t.Fatal(err)
			}
			if o.consul.Token != tc.wantToken {
				t.Errorf("the client sends %q, want %q", o.consul.Token, tc.wantToken)
			}
		})
	}
}

// TestRunsIgnoresTheConsulToken: `fleetdeck runs` reads local history
// only, so a token file it would never read does not stop it.
func TestRunsIgnoresTheConsulToken(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", dir)
	t.Setenv("XDG_STATE_HOME", dir)
	t.Setenv(api.HTTPTokenFileEnvName, filepath.Join(dir, "missing-token"))
	out, err := runFleetdeck(t, "runs")
	// An empty history says where it is (and so that the command ran).
	if err != nil || out != "no runs yet in "+filepath.Join(dir, "fleetdeck", "history.db")+"\n" {
		t.Errorf("fleetdeck runs with a missing token file: %v\n%s", err, out)
	}
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:8500": true, "localhost:8500": true, "[::1]:8500": true, "127.0.0.1": true,
		"unix:///var/run/consul.sock": true, "10.0.0.1:8500": false, "consul.internal:8500": false, "": false,
	} {
		if got := isLoopback(addr); got != want {
			t.Errorf("isLoopback(%q) = %v, want %v", addr, got, want)
		}
	}
}

// Unknown keys are errors naming the key and the file: a typo must not
// leave the user believing in a setting that does not apply.
func TestConfigUnknownKeysAreErrors(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", dir)
	for _, c := range []struct{ name, body, want string }{
		{"top-level", "colour = true\n", "unknown key colour"},
		{"nested typo", "[ui]\nread_onyl = true\n", "unknown key ui.read_onyl"},
		{"key in the wrong table", "[consul]\nplaybook_dir = \"/srv/pb\"\n", "unknown key consul.playbook_dir"},
		{"unknown table", "[alert]\nenabled = false\nfilter = \"x\"\n", "unknown key [alert]"},
		{"dotted key", "ansible.max_parallel_run = 3\n", "unknown key ansible.max_parallel_run"},
		{"several", "[ui]\nno_colour = true\n[logs]\nprojetcs = [\"p\"]\n", "unknown keys ui.no_colour, logs.projetcs"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-")+".toml")
			if err := os.WriteFile(path, []byte(c.body), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := resolveArgs(t, "--config", path)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("err = %v; want it to say %q and name %s", err, c.want, path)
			}
		})
	}
	// Every key the README documents is known: a file setting all of them
	// resolves.
	full := filepath.Join(dir, "full.toml")
	if err := os.WriteFile(full, []byte(`
[consul]
address = "127.0.0.1:8500"
scheme = "http"
token = "t"
datacenters = ["dc1"]
wait = "1m"
consistent = true
max_connections = 40
[fleet]
group_keys = ["asg"]
instance_key = "instance-id"
zone_key = "zone"
image_key = "image"
[ui]
no_color = true
read_only = true
[ansible]
ansible_playbook = "ansible-playbook"
state_dir = "`+dir+`"
lock_prefix = "fd"
max_parallel_runs = 2
timeout = "30m"
env = ["A=1"]
pass_env = ["B"]
keep_runs = 10
keep_days = 3
inventory_cache = false
inventory_cache_max_age = "1h"
[logs]
projects = ["p"]
endpoint = "127.0.0.1:1"
insecure = true
field = "labels.node"
resource_type = "gce_instance"
list_per_minute = 60
cap = 1000
before = "1h"
after = "10m"
save_dir = "`+dir+`"
[ssh]
command = "ssh -l {user} -J {jump} {address}"
user = "oncall"
jump = "bastion.example.com"
[alerts]
enabled = false
filter = "role:web health:critical"
[roles]
kv_prefix = "ops/desired/"
playbook = "site-roles.yml"
[roles.web]
port = 8080
tags = ["prod"]
check = { http = "http://{address}:8080/health", interval = "10s", timeout = "2s" }
[roles.cache]
check = { tcp = "{address}:6379" }
[roles.batch]
check = { ttl = "1m" }
`), 0o600); err != nil {
		t.Fatal(err)
	}
	o, err := resolveArgs(t, "--config", full)
	if err != nil {
		t.Fatalf("a file with every known key: %v", err)
	}
	if o.roles.kvPrefix != "ops/desired/" || o.roles.playbook != "site-roles.yml" || !slices.Equal(o.roles.catalog.Names(), []string{"batch", "cache", "web"}) {
		t.Errorf("[roles]: %+v %v", o.roles, o.roles.catalog.Names())
	}
}

// [roles]: errors name the file and the key; a role defined both in the
// config file and in the playbook directory's roles.toml is refused.
func TestConfigRoles(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", dir)
	for _, c := range []struct{ name, body, want string }{
		{"unknown setting", "[roles]\nkv_prefx = \"x/\"\n", "roles.kv_prefx"},
		{"unknown role key", "[roles.web]\nprot = 80\n", `role "web": unknown key prot`},
		{"bad role name", "[roles.Web]\nport = 80\n", `role "Web"`},
		{"script check", "[roles.web]\ncheck = { args = [\"/bin/true\"], interval = \"10s\" }\n", "script checks are not allowed"},
		{"bad kv_prefix", "[roles]\nkv_prefix = \"/abs/\"\n", "roles.kv_prefix"},
		{"absolute playbook", "[roles]\nplaybook = \"/etc/x.yml\"\n", "roles.playbook"},
		{"other unknown keys still reported", "[roles]\nkv_prefix = \"x/\"\n[ui]\nread_onyl = true\n", "unknown key ui.read_onyl"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-")+".toml")
			if err := os.WriteFile(path, []byte(c.body), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := resolveArgs(t, "--config", path)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("err = %v; want it to say %q and name %s", err, c.want, path)
			}
		})
	}
	pb := t.TempDir()
	if err := os.WriteFile(filepath.Join(pb, roles.RolesFile), []byte("[roles.api]\nport = 9090\n[roles.web]\nport = 81\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "merge.toml")
	if err := os.WriteFile(path, []byte("[ansible]\nplaybook_dir = \""+pb+"\"\n[roles.db]\nport = 5432\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	o, err := resolveArgs(t, "--config", path)
	if err != nil {
		t.Fatal(err)
	}
	cat, err := o.rolesCatalog()
	if err != nil || !slices.Equal(cat.Names(), []string{"api", "db", "web"}) {
		t.Fatalf("merged catalog %v, %v", cat.Names(), err)
	}
	if err := os.WriteFile(path, []byte("[ansible]\nplaybook_dir = \""+pb+"\"\n[roles.web]\nport = 80\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if o, err = resolveArgs(t, "--config", path); err != nil {
		t.Fatal(err)
	}
	if _, err := o.rolesCatalog(); err == nil || !strings.Contains(err.Error(), "defined twice") || !strings.Contains(err.Error(), path) {
		t.Errorf("a role in both places: %v", err)
	}
}

// [ssh] and [alerts]: the defaults when absent, the file's values when
// set, and a clear error naming file and key for what would not work.
func TestConfigSSHAndAlerts(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", dir)
	node := &fleet.Node{Name: "web-1", Address: "10.0.0.5", InstanceID: "i-0abc"}
	o, err := resolveArgs(t)
	if err != nil {
		t.Fatal(err)
	}
	if argv, err := o.ssh.Argv(node); err != nil || !slices.Equal(argv, []string{"ssh", "10.0.0.5"}) {
		t.Errorf("default ssh argv = %q, %v; want [ssh 10.0.0.5]", argv, err)
	}
	if !o.alerts.Enabled || o.alerts.Filter != "health:critical" {
		t.Errorf("default alerts = %+v; want on, health:critical", o.alerts)
	}
	write := func(name, body string) string {
		path := filepath.Join(dir, name+".toml")
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	set := write("set", "[ssh]\nuser = \"oncall\"\njump = \"ops@bastion:2222\"\n[alerts]\nenabled = false\nfilter = \"group:web-asg\"\n")
	if o, err = resolveArgs(t, "--config", set); err != nil {
		t.Fatal(err)
	}
	want := []string{"ssh", "-l", "oncall", "-J", "ops@bastion:2222", "10.0.0.5"}
	if argv, err := o.ssh.Argv(node); err != nil || !slices.Equal(argv, want) {
		t.Errorf("ssh argv with user and jump = %q, %v; want %q", argv, err, want)
	}
	if o.alerts.Enabled || o.alerts.Filter != "group:web-asg" {
		t.Errorf("alerts = %+v; want off, group:web-asg", o.alerts)
	}
	tmpl := write("tmpl", "[ssh]\ncommand = \"mosh --ssh='ssh -p 2222' {name}.{instance}.example.com\"\n")
	if o, err = resolveArgs(t, "--config", tmpl); err != nil {
		t.Fatal(err)
	}
	want = []string{"mosh", "--ssh=ssh -p 2222", "web-1.i-0abc.example.com"}
	if argv, err := o.ssh.Argv(node); err != nil || !slices.Equal(argv, want) {
		t.Errorf("templated argv = %q, %v; want %q", argv, err, want)
	}
	for _, c := range []struct{ name, body, want string }{
		{"unknown placeholder", "[ssh]\ncommand = \"ssh {host}\"\n", "unknown placeholder {host}"},
		{"placeholder as program", "[ssh]\ncommand = \"{address}\"\n", "must not hold a placeholder"},
		{"user unset", "[ssh]\ncommand = \"ssh {user}@{address}\"\n", "[ssh] user is not set"},
		{"option as user", "[ssh]\nuser = \"-oProxyCommand=x\"\n", "not a plain value"},
		{"unbalanced quote", "[ssh]\ncommand = \"ssh 'x {address}\"\n", "unbalanced '"},
		{"filter typo", "[alerts]\nfilter = \"helth:critical\"\n", "alerts.filter"},
		{"filter never matches", "[alerts]\nfilter = \"health:passing\"\n", "never matches"},
		{"ssh key typo", "[ssh]\njumphost = \"b\"\n", "unknown key ssh.jumphost"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := write(strings.ReplaceAll(c.name, " ", "-"), c.body)
			_, err := resolveArgs(t, "--config", path)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("err = %v; want it to say %q and name %s", err, c.want, path)
			}
		})
	}
}

// --read-only and [ui] read_only reach the run manager: it refuses runs
// itself, not only the console's keys.
func TestReadOnlyReachesTheRunManager(t *testing.T) {
	consulagent.NeedProgram(t, "ansible-playbook")
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", dir)
	books := filepath.Join(dir, "books")
	if err := os.MkdirAll(books, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(books, "site.yml"), []byte("- hosts: all\n  tasks: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "ro.toml")
	if err := os.WriteFile(cfg, []byte("[ui]\nread_only = true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	client, err := api.NewClient(api.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	feed := fleet.NewPublisher(&fleet.Snapshot{})
	for _, args := range [][]string{
		{"--read-only", "--playbooks", books, "--state-dir", filepath.Join(dir, "a")},
		{"--config", cfg, "--playbooks", books, "--state-dir", filepath.Join(dir, "b")},
	} {
		o, err := resolveArgs(t, args...)
		if err != nil {
			t.Fatal(err)
		}
		m, off, err := newRunManager(context.Background(), client, feed, o.ansible)
		if err != nil || m == nil {
			t.Fatalf("%v: manager %v, off %q, %v", args, m, off, err)
		}
		_, err = m.Preview(context.Background(), provision.LaunchRequest{Playbook: "site.yml", Scope: provision.ScopeNode,
			Subject: "dc1/web-1", Targets: []string{"dc1/web-1"}})
		m.Close()
		if !errors.Is(err, provision.ErrReadOnly) {
			t.Errorf("%v: preview on a read-only console: %v", args, err)
		}
	}
}

// The groups' default roles are read as the issue spells them,
// [roles.defaults], and as [provisioner.defaults]; "defaults" is no role;
// a group in both is an error.
func TestConfigGroupDefaults(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	both := write("both.toml", "[roles.defaults]\nweb-asg = [\"web\"]\n[roles.web]\nport = 80\n[provisioner.defaults]\napi-asg = [\"api\", \"web\"]\n")
	o, err := resolveArgs(t, "--config", both)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(o.provisioner.Defaults["web-asg"], []string{"web"}) || !slices.Equal(o.provisioner.Defaults["api-asg"], []string{"api", "web"}) {
		t.Errorf("defaults %v", o.provisioner.Defaults)
	}
	if _, ok := o.roles.catalog.Lookup("defaults"); ok {
		t.Error("[roles.defaults] became a role")
	}
	if _, ok := o.roles.catalog.Lookup("web"); !ok {
		t.Error("[roles.web] lost")
	}
	dup := write("dup.toml", "[roles.defaults]\nweb-asg = [\"web\"]\n[provisioner.defaults]\nweb-asg = [\"api\"]\n")
	if _, err := resolveArgs(t, "--config", dup); err == nil || !strings.Contains(err.Error(), "group web-asg has default roles in both") {
		t.Errorf("a group in both: %v", err)
	}
	bad := write("bad.toml", "[roles.defaults]\nweb-asg = [\"Not A Role\"]\n")
	if _, err := resolveArgs(t, "--config", bad); err == nil || !strings.Contains(err.Error(), "roles.defaults.web-asg") {
		t.Errorf("a bad role name: %v", err)
	}
}
