package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/hashicorp/consul/api"
	"github.com/spf13/pflag"

	"github.com/fleetdeck/fleetdeck/fleet"
	"github.com/fleetdeck/fleetdeck/logview"
)

// fileConfig is the TOML config file. Every field is optional; see the
// README's configuration reference.
type fileConfig struct {
	Consul struct {
		Address       string   `toml:"address"`
		Scheme        string   `toml:"scheme"`
		Token         string   `toml:"token"`
		TokenFile     string   `toml:"token_file"`
		CACert        string   `toml:"ca_cert"`
		ClientCert    string   `toml:"client_cert"`
		ClientKey     string   `toml:"client_key"`
		TLSServerName string   `toml:"tls_server_name"`
		Datacenters   []string `toml:"datacenters"`
		Wait          string   `toml:"wait"`
		Consistent    bool     `toml:"consistent"`
	} `toml:"consul"`
	Fleet struct {
		GroupKeys   []string `toml:"group_keys"`
		InstanceKey string   `toml:"instance_key"`
		ZoneKey     string   `toml:"zone_key"`
		ImageKey    string   `toml:"image_key"`
	} `toml:"fleet"`
	UI struct {
		NoColor  bool `toml:"no_color"`
		ReadOnly bool `toml:"read_only"`
	} `toml:"ui"`
	Ansible struct {
		PlaybookDir     string   `toml:"playbook_dir"`
		AnsiblePlaybook string   `toml:"ansible_playbook"`
		StateDir        string   `toml:"state_dir"`
		LockPrefix      string   `toml:"lock_prefix"`
		MaxRuns         int      `toml:"max_parallel_runs"`
		Timeout         string   `toml:"timeout"`
		Env             []string `toml:"env"`
		PassEnv         []string `toml:"pass_env"`
		KeepRuns        int      `toml:"keep_runs"`
		KeepDays        int      `toml:"keep_days"`
		// InventoryCache is a pointer so that a missing key means the
		// default (on) rather than false.
		InventoryCache       *bool  `toml:"inventory_cache"`
		InventoryCacheMaxAge string `toml:"inventory_cache_max_age"`
	} `toml:"ansible"`
	Logs struct {
		Projects      []string `toml:"projects"`
		Endpoint      string   `toml:"endpoint"`
		Insecure      bool     `toml:"insecure"`
		ResourceType  *string  `toml:"resource_type"`
		Field         string   `toml:"field"`
		From          string   `toml:"from"`
		ListPerMinute int      `toml:"list_per_minute"`
		Cap           int      `toml:"cap"`
		Before        string   `toml:"before"`
		After         string   `toml:"after"`
		SaveDir       string   `toml:"save_dir"`
	} `toml:"logs"`
}

// ansibleOptions configure the runs (playbooks, history, locks).
type ansibleOptions struct {
	playbookDir     string
	ansiblePlaybook string
	stateDir        string
	lockPrefix      string
	maxRuns         int
	timeout         time.Duration
	env             []string
	passEnv         []string
	// keepRuns and keepFor prune run history (0: the defaults, negative:
	// no limit).
	keepRuns int
	keepFor  time.Duration
	// inventoryCache and inventoryCacheMaxAge control the validated
	// cache of `fleetdeck inventory` (see inventory_cache.go).
	inventoryCache       bool
	inventoryCacheMaxAge time.Duration
}

// options is the resolved configuration: CONSUL_HTTP_* environment,
// overridden by the config file, overridden by flags.
type options struct {
	configPath string
	consul     *api.Config
	fleet      fleet.Config
	noColor    bool
	readOnly   bool
	ansible    ansibleOptions
	logs       logsOptions
}

// defaultConfigPath is $XDG_CONFIG_HOME/fleetdeck/config.toml.
func defaultConfigPath() string {
	dir, err := os.UserConfigDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "fleetdeck", "config.toml")
}

// flagSet holds the flag values; registered once on the root command and
// inherited by subcommands.
type flagSet struct {
	config        string
	addr          string
	token         string
	tokenFile     string
	caCert        string
	clientCert    string
	clientKey     string
	tlsServerName string
	datacenters   []string
	groupKeys     []string
	wait          time.Duration
	consistent    bool
	noColor       bool
	readOnly      bool
	playbooks     string
	stateDir      string
	maxRuns       int
	runTimeout    time.Duration
	logsProjects  []string
	logsEndpoint  string
	logsInsecure  bool
}

func (f *flagSet) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.config, "config", defaultConfigPath(), "TOML config file (missing is fine)")
	fs.StringVar(&f.addr, "http-addr", "", "Consul HTTP address, e.g. 127.0.0.1:8500 or https://consul:8501 (env CONSUL_HTTP_ADDR)")
	fs.StringVar(&f.token, "token", "", "Consul ACL token (env CONSUL_HTTP_TOKEN; prefer --token-file)")
	fs.StringVar(&f.tokenFile, "token-file", "", "file holding the Consul ACL token (env CONSUL_HTTP_TOKEN_FILE)")
	fs.StringVar(&f.caCert, "ca-cert", "", "CA certificate for Consul's TLS (env CONSUL_CACERT)")
	fs.StringVar(&f.clientCert, "client-cert", "", "client certificate for Consul's TLS (env CONSUL_CLIENT_CERT)")
	fs.StringVar(&f.clientKey, "client-key", "", "client key for Consul's TLS (env CONSUL_CLIENT_KEY)")
	fs.StringVar(&f.tlsServerName, "tls-server-name", "", "server name to verify Consul's certificate against (env CONSUL_TLS_SERVER_NAME)")
	fs.StringSliceVar(&f.datacenters, "dc", nil, "datacenters to watch, comma-separated (default: all the agent knows)")
	fs.StringSliceVar(&f.groupKeys, "group-key", nil, "node-meta keys naming the autoscaling group, first present wins (default asg,mig)")
	fs.DurationVar(&f.wait, "wait", 0, "longest blocking-query wait (default 5m; ≤55s behind proxies)")
	fs.BoolVar(&f.consistent, "consistent", false, "read from the leader only (default: stale reads allowed)")
	fs.BoolVar(&f.noColor, "no-color", false, "no colours (also when NO_COLOR is set)")
	fs.BoolVar(&f.readOnly, "read-only", false, "unbind every action that changes something")
	fs.StringVar(&f.playbooks, "playbooks", "", "directory of the playbooks runs may use (the allow-list)")
	fs.StringVar(&f.stateDir, "state-dir", "", "where run history and run directories live (default $XDG_STATE_HOME/fleetdeck)")
	fs.IntVar(&f.maxRuns, "max-runs", 0, "how many runs may run at once; more wait in a queue (default 4)")
	fs.DurationVar(&f.runTimeout, "run-timeout", 0, "end a run that takes longer (default 1h; 0 in the file means none)")
	fs.StringSliceVar(&f.logsProjects, "logs-project", nil, "Cloud Logging projects the Logs view reads, comma-separated (env GOOGLE_CLOUD_PROJECT)")
	fs.StringVar(&f.logsEndpoint, "logs-endpoint", "", "Cloud Logging endpoint override, host:port (default Google's)")
	fs.BoolVar(&f.logsInsecure, "logs-insecure", false, "plaintext gRPC without credentials to --logs-endpoint (local endpoints only)")
}

// resolve builds the options from the environment, the config file and
// the flags that were set.
func (f *flagSet) resolve(changed func(name string) bool) (options, error) {
	o := options{configPath: f.config, consul: api.DefaultConfig()}
	var fc fileConfig
	if f.config != "" {
		_, err := toml.DecodeFile(f.config, &fc)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if changed("config") {
				return o, fmt.Errorf("reading config file: %w", err)
			}
		case err != nil:
			return o, fmt.Errorf("reading config file %s: %w", f.config, err)
		}
	}
	c := o.consul
	set := func(dst *string, file, flag, name string) {
		if file != "" {
			*dst = file
		}
		if changed(name) {
			*dst = flag
		}
	}
	set(&c.Address, fc.Consul.Address, f.addr, "http-addr")
	if fc.Consul.Scheme != "" {
		c.Scheme = fc.Consul.Scheme
	}
	// An address with a scheme picks the scheme, as the consul CLI does.
	if scheme, rest, ok := strings.Cut(c.Address, "://"); ok {
		c.Scheme, c.Address = scheme, rest
	}
	set(&c.Token, fc.Consul.Token, f.token, "token")
	set(&c.TokenFile, fc.Consul.TokenFile, f.tokenFile, "token-file")
	set(&c.TLSConfig.CAFile, fc.Consul.CACert, f.caCert, "ca-cert")
	set(&c.TLSConfig.CertFile, fc.Consul.ClientCert, f.clientCert, "client-cert")
	set(&c.TLSConfig.KeyFile, fc.Consul.ClientKey, f.clientKey, "client-key")
	set(&c.TLSConfig.Address, fc.Consul.TLSServerName, f.tlsServerName, "tls-server-name")
	if changed("token") || fc.Consul.Token != "" {
		// An explicit token beats a token file from the environment.
		if !changed("token-file") && fc.Consul.TokenFile == "" {
			c.TokenFile = ""
		}
	}

	fl := fleet.Config{
		Datacenters: fc.Consul.Datacenters,
		Consistent:  fc.Consul.Consistent,
		GroupKeys:   fc.Fleet.GroupKeys,
		InstanceKey: fc.Fleet.InstanceKey,
		ZoneKey:     fc.Fleet.ZoneKey,
		ImageKey:    fc.Fleet.ImageKey,
	}
	if err := f.fileDuration("consul.wait", fc.Consul.Wait, false, &fl.WaitTime); err != nil {
		return o, err
	}
	if changed("dc") {
		fl.Datacenters = f.datacenters
	}
	if changed("group-key") {
		fl.GroupKeys = f.groupKeys
	}
	if changed("wait") {
		fl.WaitTime = f.wait
	}
	if changed("consistent") {
		fl.Consistent = f.consistent
	}
	o.fleet = fl
	o.noColor = fc.UI.NoColor || os.Getenv("NO_COLOR") != ""
	if changed("no-color") {
		o.noColor = f.noColor
	}
	o.readOnly = fc.UI.ReadOnly
	if changed("read-only") {
		o.readOnly = f.readOnly
	}
	a := ansibleOptions{
		playbookDir: fc.Ansible.PlaybookDir, ansiblePlaybook: fc.Ansible.AnsiblePlaybook, stateDir: fc.Ansible.StateDir,
		lockPrefix: fc.Ansible.LockPrefix, maxRuns: fc.Ansible.MaxRuns, env: fc.Ansible.Env, timeout: time.Hour,
		passEnv: fc.Ansible.PassEnv, keepRuns: fc.Ansible.KeepRuns, keepFor: time.Duration(fc.Ansible.KeepDays) * 24 * time.Hour,
		inventoryCache: true, inventoryCacheMaxAge: defaultInventoryCacheMaxAge,
	}
	if fc.Ansible.InventoryCache != nil {
		a.inventoryCache = *fc.Ansible.InventoryCache
	}
	if err := f.fileDuration("ansible.inventory_cache_max_age", fc.Ansible.InventoryCacheMaxAge, true, &a.inventoryCacheMaxAge); err != nil {
		return o, fmt.Errorf("%w (inventory_cache = false turns the cache off)", err)
	}
	if err := f.fileDuration("ansible.timeout", fc.Ansible.Timeout, false, &a.timeout); err != nil {
		return o, err
	}
	if changed("playbooks") {
		a.playbookDir = f.playbooks
	}
	if changed("state-dir") {
		a.stateDir = f.stateDir
	}
	if changed("max-runs") {
		a.maxRuns = f.maxRuns
	}
	if changed("run-timeout") {
		a.timeout = f.runTimeout
	}
	o.ansible = a
	l, err := resolveLogs(fc, f, changed)
	if err != nil {
		return o, err
	}
	o.logs = l
	return o, nil
}

// fileDuration parses the config file's duration setting name into dst
// when it is set; positive refuses zero and negative values.
func (f *flagSet) fileDuration(name, value string, positive bool, dst *time.Duration) error {
	if value == "" {
		return nil
	}
	d, err := time.ParseDuration(value)
	if err == nil && positive && d <= 0 {
		err = errors.New("must be positive")
	}
	if err != nil {
		return fmt.Errorf("config file %s: %s: want a duration such as 5m, got %q: %w", f.config, name, value, err)
	}
	*dst = d
	return nil
}

// defaultLogsCap is how many entries a Logs view keeps by default: ~46 MB
// of realistic entries, which with a 10,000-node fleet stays near the
// console's soft memory limit (100,000 would double it; see
// docs/benchmarks.md). [logs] cap raises it.
const defaultLogsCap = 50_000

// resolveLogs builds the Logs view's options: GOOGLE_CLOUD_PROJECT, then
// the [logs] section, then the flags. The node-to-log mapping reads the
// node meta key the fleet reads instance ids from unless told otherwise.
func resolveLogs(fc fileConfig, f *flagSet, changed func(string) bool) (logsOptions, error) {
	fl := fc.Logs
	l := logsOptions{
		projects: fl.Projects, endpoint: fl.Endpoint, insecure: fl.Insecure,
		mapping:       logview.Mapping{Field: fl.Field, From: fl.From},
		listPerMinute: fl.ListPerMinute, cap: fl.Cap, saveDir: fl.SaveDir,
	}
	if l.cap <= 0 {
		l.cap = defaultLogsCap
	}
	if l.saveDir == "" && fc.Ansible.StateDir != "" {
		l.saveDir = filepath.Join(fc.Ansible.StateDir, "logs")
	}
	if changed("state-dir") && fl.SaveDir == "" {
		l.saveDir = filepath.Join(f.stateDir, "logs")
	}
	if len(l.projects) == 0 {
		if p := os.Getenv("GOOGLE_CLOUD_PROJECT"); p != "" {
			l.projects = []string{p}
		}
	}
	if changed("logs-project") {
		l.projects = f.logsProjects
	}
	if changed("logs-endpoint") {
		l.endpoint = f.logsEndpoint
	}
	if changed("logs-insecure") {
		l.insecure = f.logsInsecure
	}
	if fl.ResourceType != nil {
		l.mapping.ResourceType = *fl.ResourceType
		if l.mapping.ResourceType == "" && l.mapping.Field == "" {
			return l, fmt.Errorf("config file %s: logs.resource_type is empty: then logs.field must name the field that holds the node", f.config)
		}
	}
	if l.mapping.From == "" && fc.Fleet.InstanceKey != "" {
		l.mapping.From = "meta:" + fc.Fleet.InstanceKey
	}
	if err := f.fileDuration("logs.before", fl.Before, true, &l.before); err != nil {
		return l, err
	}
	if err := f.fileDuration("logs.after", fl.After, true, &l.after); err != nil {
		return l, err
	}
	if err := l.mapping.Validate(); err != nil {
		return l, fmt.Errorf("config file %s: [logs]: %w", f.config, err)
	}
	return l, nil
}
