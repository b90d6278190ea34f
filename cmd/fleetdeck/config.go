package main

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/hashicorp/consul/api"
	"github.com/spf13/pflag"

	"github.com/fleetdeck/fleetdeck/deploy"
	"github.com/fleetdeck/fleetdeck/fleet"
	"github.com/fleetdeck/fleetdeck/internal/consul"
	"github.com/fleetdeck/fleetdeck/logview"
	"github.com/fleetdeck/fleetdeck/provision"
	"github.com/fleetdeck/fleetdeck/roles"
	"github.com/fleetdeck/fleetdeck/tui"
)

// fileConfig is the TOML config file. Every field is optional; see the
// README's configuration reference. omitempty keeps a file written from
// it (the demo's) to the keys that are set.
type fileConfig struct {
	Consul struct {
		Address       string   `toml:"address,omitempty"`
		Scheme        string   `toml:"scheme,omitempty"`
		Token         string   `toml:"token,omitempty"`
		TokenFile     string   `toml:"token_file,omitempty"`
		CACert        string   `toml:"ca_cert,omitempty"`
		ClientCert    string   `toml:"client_cert,omitempty"`
		ClientKey     string   `toml:"client_key,omitempty"`
		TLSServerName string   `toml:"tls_server_name,omitempty"`
		Datacenters   []string `toml:"datacenters,omitempty"`
		Wait          string   `toml:"wait,omitempty"`
		Consistent    bool     `toml:"consistent,omitempty"`
		// MaxConnections is a pointer so that a written 0 is an error
		// rather than the default.
		MaxConnections *int `toml:"max_connections,omitempty"`
	} `toml:"consul"`
	Fleet struct {
		GroupKeys   []string `toml:"group_keys,omitempty"`
		InstanceKey string   `toml:"instance_key,omitempty"`
		ZoneKey     string   `toml:"zone_key,omitempty"`
		ImageKey    string   `toml:"image_key,omitempty"`
	} `toml:"fleet"`
	UI struct {
		NoColor  bool `toml:"no_color,omitempty"`
		ReadOnly bool `toml:"read_only,omitempty"`
	} `toml:"ui"`
	Ansible struct {
		PlaybookDir     string `toml:"playbook_dir,omitempty"`
		AnsiblePlaybook string `toml:"ansible_playbook,omitempty"`
		StateDir        string `toml:"state_dir,omitempty"`
		LockPrefix      string `toml:"lock_prefix,omitempty"`
		// MaxRuns is a pointer so that 0 written in the file is an error,
		// while a missing key means the default.
		MaxRuns *int     `toml:"max_parallel_runs,omitempty"`
		Timeout string   `toml:"timeout,omitempty"`
		Env     []string `toml:"env,omitempty"`
		// PassEnv names further variables of the console's environment
		// passed to runs; KeepRuns and KeepDays prune the history (0: the
		// defaults, negative: no limit).
		PassEnv  []string `toml:"pass_env,omitempty"`
		KeepRuns int      `toml:"keep_runs,omitzero"`
		KeepDays int      `toml:"keep_days,omitzero"`
		// InventoryCache is a pointer so that a missing key means the
		// default (on) rather than false.
		InventoryCache       *bool  `toml:"inventory_cache,omitempty"`
		InventoryCacheMaxAge string `toml:"inventory_cache_max_age,omitempty"`
	} `toml:"ansible"`
	Logs struct {
		Projects      []string `toml:"projects,omitempty"`
		Endpoint      string   `toml:"endpoint,omitempty"`
		Insecure      bool     `toml:"insecure,omitempty"`
		ResourceType  *string  `toml:"resource_type,omitempty"`
		Field         string   `toml:"field,omitempty"`
		From          string   `toml:"from,omitempty"`
		ListPerMinute int      `toml:"list_per_minute,omitzero"`
		Cap           int      `toml:"cap,omitzero"`
		Before        string   `toml:"before,omitempty"`
		After         string   `toml:"after,omitempty"`
		SaveDir       string   `toml:"save_dir,omitempty"`
	} `toml:"logs"`
	SSH    sshConfig    `toml:"ssh"`
	Alerts alertsConfig `toml:"alerts"`
	// Roles is the [roles] table (settings and [roles.NAME] catalog
	// entries), decoded by roles.DecodeConfig. A pointer: the TOML encoder
	// panics on a zero Primitive, and the demo encodes this struct.
	Roles *toml.Primitive `toml:"roles,omitempty"`
	// Provisioner is the [provisioner] table, decoded by
	// deploy.DecodeConfig (a pointer for the same reason).
	Provisioner *toml.Primitive `toml:"provisioner,omitempty"`
}

// rolesOptions are the [roles] settings and the config file's part of the
// role catalog; the playbook directory's roles.toml is merged in when a
// roles command needs the catalog (rolesCatalog).
type rolesOptions struct {
	// kvPrefix is [roles] kv_prefix, checked ("": the default).
	kvPrefix string
	// playbook is [roles] playbook: the apply playbook's name in the
	// playbook directory ("": roles.PlaybookFile).
	playbook string
	// catalog holds the config file's [roles.NAME] tables.
	catalog *roles.Catalog
}

// sshConfig is the [ssh] section: the x action's command template and
// the values of its {user} and {jump} placeholders (tui.ParseSSHCommand).
type sshConfig struct {
	Command string `toml:"command,omitempty"`
	User    string `toml:"user,omitempty"`
	Jump    string `toml:"jump,omitempty"`
}

// alertsConfig is the [alerts] section. Its keys are pointers so that a
// missing key means the default (on, health:critical).
type alertsConfig struct {
	Enabled *bool   `toml:"enabled,omitempty"`
	Filter  *string `toml:"filter,omitempty"`
}

// ansibleOptions configure the runs (playbooks, history, locks).
type ansibleOptions struct {
	playbookDir string
	// playbookDirSource names where playbookDir was set ("--playbooks",
	// "[ansible] playbook_dir in <file>"), for errors.
	playbookDirSource string
	ansiblePlaybook   string
	stateDir          string
	lockPrefix        string
	maxRuns           int
	timeout           time.Duration
	env               []string
	passEnv           []string
	// keepRuns and keepFor prune run history (0: the defaults, negative:
	// no limit).
	keepRuns int
	keepFor  time.Duration
	// inventoryCache and inventoryCacheMaxAge control the validated
	// cache of `fleetdeck inventory` (see inventory_cache.go).
	inventoryCache       bool
	inventoryCacheMaxAge time.Duration
	// readOnly is options.readOnly, for the run manager: it refuses to
	// preview, launch, cancel or re-run whoever asks (not only the
	// console's keys).
	readOnly bool
}

// options is the resolved configuration: CONSUL_HTTP_* environment,
// overridden by the config file, overridden by flags.
type options struct {
	configPath string
	consul     *api.Config
	// tokenFile is the token file the Consul client will read ("" when
	// the token is not from a file); newConsulClient checks it.
	tokenFile string
	fleet     fleet.Config
	noColor   bool
	readOnly  bool
	ansible   ansibleOptions
	logs      logsOptions
	// ssh is the console's x command ([ssh]); alerts its alerts
	// ([alerts]).
	ssh    *tui.SSHCommand
	alerts tui.AlertOptions
	// roles is [roles]: role reassignment's settings and catalog.
	roles rolesOptions
	// provisioner is [provisioner]: the deployment server's stages,
	// guards and settings (the defaults and no stages when absent).
	provisioner deploy.Config
	// sshConfig and alertsConfig are [ssh] and [alerts] as written, for
	// the demo's config file.
	sshConfig    sshConfig
	alertsConfig alertsConfig
}

// consulAccess is the Consul access layer over client, for opts whose
// fleet.Direct newConsulClient has resolved.
func consulAccess(opts options, client *api.Client) *consul.Client {
	return consul.New(client, consul.Options{Direct: opts.fleet.Direct, TokenSource: opts.fleet.TokenSource})
}

// compileSelect compiles a stage's select in the console's filter
// language.
func compileSelect(text string) (deploy.Selector, error) {
	sel, err := tui.CompileSelector(text)
	if err != nil {
		return nil, err // not a typed nil inside the interface
	}
	return sel, nil
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
		md, err := toml.DecodeFile(f.config, &fc)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if changed("config") {
				return o, fmt.Errorf("reading config file: %w", err)
			}
		case err != nil:
			return o, fmt.Errorf("reading config file %s: %w", f.config, err)
		default:
			// Before unknownKeys: decoding marks [roles]' keys as known,
			// and reports the unknown ones inside it itself.
			rc, err := roles.DecodeConfig(md, fc.Roles, f.config)
			if err != nil {
				return o, err
			}
			if o.provisioner, err = deploy.DecodeConfig(md, fc.Provisioner, f.config, compileSelect); err != nil {
				return o, err
			}
			// The groups' defaults may be written as the issue names them,
			// [roles.defaults], or as [provisioner.defaults]; a group in
			// both is an error rather than a silent choice.
			for group, rs := range rc.Defaults {
				if _, dup := o.provisioner.Defaults[group]; dup {
					return o, fmt.Errorf("config file %s: group %s has default roles in both [roles.defaults] and [provisioner.defaults]", f.config, group)
				}
				if o.provisioner.Defaults == nil {
					o.provisioner.Defaults = map[string][]string{}
				}
				o.provisioner.Defaults[group] = rs
			}
			if err := unknownKeys(f.config, md); err != nil {
				return o, err
			}
			if rc.KVPrefix != "" {
				if _, err := roles.NewStore(nil, roles.StoreConfig{Prefix: rc.KVPrefix}); err != nil {
					return o, fmt.Errorf("config file %s: roles.kv_prefix: %w", f.config, err)
				}
			}
			if rc.Playbook != "" && (filepath.IsAbs(rc.Playbook) || strings.HasPrefix(filepath.Clean(rc.Playbook), "..")) {
				return o, fmt.Errorf("config file %s: roles.playbook = %q: name a playbook inside the playbook directory (relative, e.g. %q)", f.config, rc.Playbook, roles.PlaybookFile)
			}
			o.roles = rolesOptions{kvPrefix: rc.KVPrefix, playbook: rc.Playbook, catalog: rc.Catalog}
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
	set(&c.TLSConfig.CAFile, fc.Consul.CACert, f.caCert, "ca-cert")
	set(&c.TLSConfig.CertFile, fc.Consul.ClientCert, f.clientCert, "client-cert")
	set(&c.TLSConfig.KeyFile, fc.Consul.ClientKey, f.clientKey, "client-key")
	set(&c.TLSConfig.Address, fc.Consul.TLSServerName, f.tlsServerName, "tls-server-name")
	tokenSource, tokenFile := f.resolveToken(c, fc, changed)
	o.tokenFile = tokenFile

	fl := fleet.Config{
		Consistent:  fc.Consul.Consistent,
		GroupKeys:   fc.Fleet.GroupKeys,
		InstanceKey: fc.Fleet.InstanceKey,
		ZoneKey:     fc.Fleet.ZoneKey,
		ImageKey:    fc.Fleet.ImageKey,
		TokenSource: tokenSource,
	}
	var err error
	if fl.Datacenters, err = datacenterNames(fc.Consul.Datacenters); err != nil {
		return o, fmt.Errorf("config file %s: consul.datacenters: %w (leave the key out to watch every datacenter)", f.config, err)
	}
	if err := f.fileDuration("consul.wait", fc.Consul.Wait, false, &fl.WaitTime); err != nil {
		return o, err
	}
	if fc.Consul.Wait != "" {
		if err := checkWait(fl.WaitTime); err != nil {
			return o, fmt.Errorf("config file %s: consul.wait = %q: %w (leave the key out for the default, 5m)", f.config, fc.Consul.Wait, err)
		}
	}
	if mc := fc.Consul.MaxConnections; mc != nil {
		if *mc < fleet.MinMaxConns {
			return o, fmt.Errorf("config file %s: consul.max_connections = %d: at least %d (the node list, services, failing checks, probe and readers need %d; leave the key out for the default, 32)",
				f.config, *mc, fleet.MinMaxConns, fleet.MinMaxConns-3)
		}
		fl.MaxConns = *mc
	}
	if changed("dc") {
		if fl.Datacenters, err = datacenterNames(f.datacenters); err != nil {
			return o, fmt.Errorf("--dc %q: %w (leave --dc out to watch every datacenter)", strings.Join(f.datacenters, ","), err)
		}
	}
	if changed("group-key") {
		fl.GroupKeys = f.groupKeys
	}
	if changed("wait") {
		if err := checkWait(f.wait); err != nil {
			return o, fmt.Errorf("--wait %v: %w (leave --wait out for the default, 5m)", f.wait, err)
		}
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
		lockPrefix: fc.Ansible.LockPrefix, env: fc.Ansible.Env, timeout: time.Hour,
		passEnv: fc.Ansible.PassEnv, keepRuns: fc.Ansible.KeepRuns, keepFor: time.Duration(fc.Ansible.KeepDays) * 24 * time.Hour,
		inventoryCache: true, inventoryCacheMaxAge: defaultInventoryCacheMaxAge, readOnly: o.readOnly,
	}
	if a.playbookDir != "" {
		a.playbookDirSource = fmt.Sprintf("[ansible] playbook_dir %q in %s", a.playbookDir, f.config)
	}
	if fc.Ansible.MaxRuns != nil {
		if *fc.Ansible.MaxRuns < 1 {
			return o, fmt.Errorf("config file %s: ansible.max_parallel_runs = %d: must be at least 1 (leave the key out for the default, %d)",
				f.config, *fc.Ansible.MaxRuns, provision.DefaultRunCap)
		}
		a.maxRuns = *fc.Ansible.MaxRuns
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
	if a.timeout < 0 {
		return o, fmt.Errorf("config file %s: ansible.timeout = %q: must not be negative (\"0s\" means no timeout; leave the key out for the default, 1h)", f.config, fc.Ansible.Timeout)
	}
	if changed("playbooks") {
		a.playbookDir, a.playbookDirSource = f.playbooks, fmt.Sprintf("--playbooks %q", f.playbooks)
	}
	if changed("state-dir") {
		a.stateDir = f.stateDir
	}
	if changed("max-runs") {
		if f.maxRuns < 1 {
			return o, fmt.Errorf("--max-runs %d: must be at least 1 (leave --max-runs out for the default, %d)", f.maxRuns, provision.DefaultRunCap)
		}
		a.maxRuns = f.maxRuns
	}
	if changed("run-timeout") {
		if f.runTimeout < 0 {
			return o, fmt.Errorf("--run-timeout %v: must not be negative (0 means no timeout; leave it out for the default, 1h)", f.runTimeout)
		}
		a.timeout = f.runTimeout
	}
	o.ansible = a
	l, err := resolveLogs(fc, f, changed)
	if err != nil {
		return o, err
	}
	o.logs = l
	o.sshConfig, o.alertsConfig = fc.SSH, fc.Alerts
	if o.ssh, err = tui.ParseSSHCommand(fc.SSH.Command, fc.SSH.User, fc.SSH.Jump); err != nil {
		return o, fmt.Errorf("config file %s: [ssh]: %w", f.config, err)
	}
	o.alerts = tui.AlertOptions{Enabled: true, Filter: tui.DefaultAlertFilter}
	if fc.Alerts.Enabled != nil {
		o.alerts.Enabled = *fc.Alerts.Enabled
	}
	if fc.Alerts.Filter != nil {
		o.alerts.Filter = *fc.Alerts.Filter
		if err := tui.CheckAlertFilter(o.alerts.Filter); err != nil {
			return o, fmt.Errorf("config file %s: alerts.filter = %q: %w (leave the key out for the default, %s)", f.config, o.alerts.Filter, err, tui.DefaultAlertFilter)
		}
	}
	return o, nil
}

// unknownKeys fails on keys of the config file that fleetdeck does not
// read: a misspelt key ("read_onyl") or one in the wrong table would
// otherwise be ignored silently, and the setting the user believes in would
// not apply. A table fleetdeck does not know is named once, not with each
// of its keys.
func unknownKeys(path string, md toml.MetaData) error {
	var names []string
	var tables []toml.Key
	for _, k := range md.Undecoded() {
		if slices.ContainsFunc(tables, func(t toml.Key) bool { return len(k) > len(t) && slices.Equal(k[:len(t)], t) }) {
			continue
		}
		if md.Type(k...) == "Hash" {
			tables = append(tables, k)
			names = append(names, "["+k.String()+"]")
			continue
		}
		names = append(names, k.String())
	}
	switch len(names) {
	case 0:
		return nil
	case 1:
		return fmt.Errorf("config file %s: unknown key %s (misspelt, or in the wrong table? the README lists every key)", path, names[0])
	}
	return fmt.Errorf("config file %s: unknown keys %s (misspelt, or in the wrong table? the README lists every key)", path, strings.Join(names, ", "))
}

// resolveToken settles which ACL token the Consul client will send and
// returns where it comes from, for fleet.Config.TokenSource, and the token
// file it will be read from, if any: a permission
// error then names the token in use instead of telling the user to set
// what they already set. The layers are the environment, the config file
// and the flags; within a layer a token file beats a token, as in the
// consul CLI, and a layer that names either replaces both of the layers
// below. api.NewClient reads the environment again and has its own
// precedence (a file or token equal to the environment's counts as the
// environment's), so the source is worked out the way it decides.
func (f *flagSet) resolveToken(c *api.Config, fc fileConfig, changed func(string) bool) (source, file string) {
	envToken, envFile := os.Getenv(api.HTTPTokenEnvName), os.Getenv(api.HTTPTokenFileEnvName)
	tokenSrc, fileSrc := api.HTTPTokenEnvName, api.HTTPTokenFileEnvName+" "+envFile
	if fc.Consul.Token != "" || fc.Consul.TokenFile != "" {
		c.Token, c.TokenFile = fc.Consul.Token, fc.Consul.TokenFile
		tokenSrc = "[consul] token in " + f.config
		fileSrc = fmt.Sprintf("[consul] token_file %s in %s", fc.Consul.TokenFile, f.config)
	}
	if changed("token") || changed("token-file") {
		c.Token, c.TokenFile = f.token, f.tokenFile
		tokenSrc, fileSrc = "--token", "--token-file "+f.tokenFile
	}
	switch {
	case c.TokenFile != "" && c.TokenFile != envFile:
		return fileSrc, c.TokenFile
	case c.Token != "" && c.Token != envToken:
		return tokenSrc, ""
	case envFile != "":
		if c.TokenFile != envFile {
			return api.HTTPTokenFileEnvName + " " + envFile, envFile
		}
		return fileSrc, envFile
	case envToken != "":
		if c.Token != envToken {
			return api.HTTPTokenEnvName, ""
		}
		return tokenSrc, ""
	}
	return "", ""
}

// newConsulClient makes the Consul client of opts. It reads the token
// file first: api.NewClient also fails on a missing one, but without
// saying which setting named it, and silently falls back to another
// token when the file is empty. Commands that never talk to Consul
// (runs) do not call it, so a broken token file does not stop them.
// The returned configuration is the one api.NewClient resolved (address,
// token, HTTP client): fleet.Config.Direct.
func newConsulClient(opts options) (*api.Client, *api.Config, error) {
	if path := opts.tokenFile; path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: reading the Consul token: %w", opts.fleet.TokenSource, err)
		}
		if strings.TrimSpace(string(data)) == "" {
			return nil, nil, fmt.Errorf("%s: the token file is empty", opts.fleet.TokenSource)
		}
	}
	cfg := *opts.consul
	if cfg.Transport != nil && isLoopback(cfg.Address) {
		// Consul gzips every answer a client accepts gzip for, and Go's
		// transport asks for it: on loopback that only costs Consul's CPU
		// (the 50 per-service reads of a 10k-node fleet, 48 MB, took 2.0 s
		// gzipped against 1.4 s plain). Over a real network it pays.
		tr := cfg.Transport.Clone()
		tr.DisableCompression = true
		cfg.Transport = tr
	}
	client, err := api.NewClient(&cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("configuring the Consul client: %w", err)
	}
	return client, &cfg, nil
}

// isLoopback reports whether a Consul address (host:port, a bare host or
// unix://path) is on this machine.
func isLoopback(addr string) bool {
	if strings.HasPrefix(addr, "unix://") {
		return true
	}
	host := addr
	if h, _, err := net.SplitHostPort(addr); err == nil {
		host = h
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil && ip.IsLoopback()
}

// maxWait is the longest blocking-query wait Consul honours: it caps a
// longer one at 10 minutes (agent/consul/rpc.go, maxQueryTime).
const maxWait = 10 * time.Minute

// checkWait refuses blocking-query waits that mean nothing: below a
// second every idle watch would poll Consul several times a second, and
// above 10 minutes Consul waits 10 minutes anyway.
func checkWait(d time.Duration) error {
	switch {
	case d < time.Second:
		return errors.New("must be at least 1s")
	case d > maxWait:
		return fmt.Errorf("more than %v means nothing: Consul caps blocking queries at %v", maxWait, maxWait)
	}
	return nil
}

// datacenterNames returns names with surrounding spaces trimmed ("dc1,
// dc2" is two names), refusing empty ones ("," or a trailing comma) and
// an empty list given on purpose.
func datacenterNames(names []string) ([]string, error) {
	if names == nil {
		return nil, nil
	}
	if len(names) == 0 {
		return nil, errors.New("no datacenter named")
	}
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = strings.TrimSpace(n)
		if out[i] == "" {
			return nil, errors.New("empty datacenter name")
		}
	}
	return out, nil
}

// checkPlaybookDir fails when the configured playbook directory is not a
// directory, at start rather than when r is pressed. An unset one is
// fine: the console then says runs are off.
func (a ansibleOptions) checkPlaybookDir() error {
	if a.playbookDir == "" {
		return nil
	}
	fi, err := os.Stat(a.playbookDir)
	if err != nil {
		return fmt.Errorf("%s: the playbook directory: %w", a.playbookDirSource, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s: the playbook directory is not a directory", a.playbookDirSource)
	}
	return nil
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
	// 0 is what a missing key decodes to, so it keeps meaning the default.
	if l.cap < 0 {
		return l, fmt.Errorf("config file %s: logs.cap = %d: must be positive (leave the key out for the default, %d)", f.config, l.cap, defaultLogsCap)
	}
	if l.cap == 0 {
		l.cap = defaultLogsCap
	}
	if l.listPerMinute < 0 {
		return l, fmt.Errorf("config file %s: logs.list_per_minute = %d: must not be negative (0, or leaving the key out, means the default, 30)", f.config, l.listPerMinute)
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

// rolesCatalog is the role catalog: the config file's [roles.NAME] tables
// merged with the playbook directory's roles.toml (a role defined in both
// is an error naming both).
func (o options) rolesCatalog() (*roles.Catalog, error) {
	var dir *roles.Catalog
	if o.ansible.playbookDir != "" {
		var err error
		if dir, err = roles.ReadDir(o.ansible.playbookDir); err != nil {
			return nil, err
		}
	}
	cat, err := roles.Merge(o.roles.catalog, dir)
	if err != nil {
		return nil, fmt.Errorf("the role catalog: %w", err)
	}
	return cat, nil
}
