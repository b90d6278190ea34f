package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
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
