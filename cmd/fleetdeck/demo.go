package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	logging "cloud.google.com/go/logging/apiv2"
	"github.com/BurntSushi/toml"
	"github.com/spf13/cobra"

	"github.com/fleetdeck/fleetdeck/internal/consulagent"
	"github.com/fleetdeck/fleetdeck/internal/demoplaybooks"
	"github.com/fleetdeck/fleetdeck/internal/fleetsim"
	"github.com/fleetdeck/fleetdeck/internal/logserver"
	"github.com/fleetdeck/fleetdeck/provision"
	"github.com/fleetdeck/fleetdeck/roles"
	"github.com/fleetdeck/fleetdeck/tui"
)

// newDemoCmd runs a throwaway Consul with a simulated fleet and opens the
// console on it.
func newDemoCmd(flags *flagSet) *cobra.Command {
	var nodes, agents int
	var seed uint64
	var headless, scale bool
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a throwaway Consul with a simulated, changing fleet and open the console on it",
		Long: `demo starts a private Consul agent on free loopback ports (building it from
tools/consul on first run, about 3-10 minutes), registers a simulated fleet —
nodes with roles, autoscaling groups, zones and checks — and keeps it alive:
checks flap, a group scales out and in, a node goes critical and is replaced
by a fresh one. It also runs a local Cloud Logging endpoint in-process and
writes the fleet's logs to it (15 minutes of history, then live, with error
bursts that line up with the incidents), so l on a node shows its logs. Then
it opens the console. Ctrl-C (or q) stops everything and removes the agent's
files.

Its playbooks run on this machine with a local connection; its run history
is kept in <state dir>/demo. It writes a config file for other consoles
(mode 0600, removed when it stops) and prints one line to open another
console on the demo: fleetdeck --config <file>. That console runs exactly
as the demo's own: same Consul, playbooks, lock prefix (a host is never in
two runs at once), local connection, history and logs.

Beside the simulated nodes it runs --agents real Consul client agents
(default 3: app-01, app-02, …) on this machine, joined to its Consul, each
starting with one role of the demo's role catalog (roles.toml in its
playbook directory). Its playbook directory holds the apply playbook
(fleetdeck-apply.yml) and host_vars for them (local connection, their
config dir and HTTP address), so a real node can be moved between roles
and converges as a fleet node would.

With --headless it runs the fleet without the console, so you can point
fleetdeck (with that line), consul or curl at it from another terminal.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts, err := flags.resolve(cmd.Flags().Changed)
			if err != nil {
				return err
			}
			spec := fleetsim.DemoSpec()
			if scale {
				spec = fleetsim.ScaleSpec(10000)
			}
			spec.Seed = seed
			if nodes > 0 {
				spec.Nodes = nodes
			}
			if agents < 0 || agents > maxDemoAgents {
				return fmt.Errorf("--agents %d: want 0 to %d", agents, maxDemoAgents)
			}
			return runDemo(cmd.Context(), opts, cmd.ErrOrStderr(), spec, agents, headless)
		},
	}
	cmd.Flags().IntVar(&nodes, "nodes", 0, "simulated nodes (default: the demo fleet's size)")
	cmd.Flags().IntVar(&agents, "agents", 3, "real Consul client agents (app-01, …) beside the simulated nodes; 0: none")
	cmd.Flags().Uint64Var(&seed, "seed", 1, "seed of the simulation")
	cmd.Flags().BoolVar(&headless, "headless", false, "run the fleet without opening the console")
	cmd.Flags().BoolVar(&scale, "scale", false, "use the benchmark fleet's shape (10,000 nodes, 50 services, 5 per node, 3 checks)")
	return cmd
}

// maxDemoAgents bounds --agents: each is a Consul process of its own.
const maxDemoAgents = 20

func runDemo(ctx context.Context, opts options, stderr io.Writer, spec fleetsim.Spec, agents int, headless bool) error {
	stateDir, err := demoStateDir(opts.ansible)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "fleetdeck demo: its run history is kept in %s\n", stateDir)
	fmt.Fprintln(stderr, "fleetdeck demo: starting a private Consul agent…")
	bin, err := consulagent.Binary(ctx, stderr)
	if err != nil {
		return err
	}
	startCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	// The demo's Consul is private, and consoles come and go against it:
	// Consul keeps each gone console's blocking queries (and their places
	// in its per-address connection limit, 200 by default) for their wait,
	// so trying a few consoles in a row would meet HTTP 429s.
	agent, err := consulagent.Start(startCtx, consulagent.Options{Binary: bin, ExtraHCL: `limits { http_max_conns_per_client = 2000 }`})
	cancel()
	if err != nil {
		return err
	}
	defer func() {
		if err := agent.Stop(); err != nil {
			fmt.Fprintln(stderr, "fleetdeck demo: stopping Consul:", err)
		}
	}()
	client, err := agent.Client()
	if err != nil {
		return err
	}
	standIn, err := startDemoStandIn()
	if err != nil {
		return err
	}
	defer standIn.close()
	cat, err := roles.Parse(demoplaybooks.Roles(standIn.port), "the demo's "+roles.RolesFile)
	if err != nil {
		return fmt.Errorf("the demo's role catalog: %w", err)
	}
	// The real nodes start while the simulated fleet is registered: a
	// client agent joins and is in the catalog in a few hundred ms, about
	// what the registration takes, so the console opens about as early
	// (measured: 0.48 s → 0.76 s median to the banner with 3 agents on 2
	// cores, the difference being CPU the agents' start takes from the
	// registration).
	if agents > 0 {
		fmt.Fprintf(stderr, "fleetdeck demo: starting %d real Consul client agents and registering %d simulated nodes…\n", agents, spec.Nodes)
	} else {
		fmt.Fprintf(stderr, "fleetdeck demo: registering %d simulated nodes…\n", spec.Nodes)
	}
	agentCtx, cancelAgents := context.WithCancel(ctx)
	type started struct {
		agents []demoAgent
		err    error
	}
	agentsDone := make(chan started, 1)
	go func() {
		a, err := startDemoAgents(agentCtx, bin, agent, agents, cat, spec.Zones)
		agentsDone <- started{a, err}
	}()
	loadErr := fleetsim.Load(ctx, client, spec)
	if loadErr != nil {
		cancelAgents() // no need to wait a minute for agents of a failed demo
	}
	st := <-agentsDone
	cancelAgents()
	// Before the server's deferred Stop: a client outliving its server
	// would only retry the join until stopped.
	defer stopDemoAgents(st.agents, stderr)
	if loadErr != nil {
		return fmt.Errorf("registering the simulated fleet: %w", loadErr)
	}
	if st.err != nil {
		return st.err
	}

	ctx, stop := context.WithCancel(ctx)
	defer stop()
	logs, err := startDemoLogs(ctx, spec)
	if err != nil {
		return err
	}
	defer logs.close(stderr)
	files, err := writeDemoFiles(opts, stateDir, agent.HTTPAddr(), logs.srv.Addr())
	if err != nil {
		return err
	}
	defer files.remove(stderr)
	if err := demoplaybooks.WriteRoles(files.playbooks, standIn.port, demoAgentHosts(st.agents, bin)); err != nil {
		return err
	}
	// The demo's own console reads the file it gives other consoles, so
	// that both run the same way: same Consul, playbooks, lock prefix,
	// local connection, history and logs.
	opts, err = files.options()
	if err != nil {
		return err
	}
	prov, err := startDemoProvisioner(ctx, files.config, demoProvisionerLog(files.dir), bin, agent, standIn.port,
		demoAgentHosts(st.agents, bin), files.playbooks)
	if err != nil {
		return err
	}
	defer prov.stop(stderr)
	var wg sync.WaitGroup
	simErr := make(chan error, 1)
	wg.Add(2)
	go func() {
		defer wg.Done()
		// Write errors are counted in the simulator's stats (printed at
		// exit): stderr belongs to the console meanwhile.
		_ = logs.sim.Run(ctx)
	}()
	go func() {
		defer wg.Done()
		simErr <- fleetsim.Run(ctx, client, spec, fleetsim.RunOptions{OnEvent: logs.sim.Observe})
	}()
	defer wg.Wait()
	defer stop()
	fmt.Fprintf(stderr, `fleetdeck demo: Consul is at http://%[1]s, its Cloud Logging endpoint at %[3]s
    export CONSUL_HTTP_ADDR=%[1]s   # for consul (%[2]s), curl, …
fleetdeck demo: open another console on this demo (same Consul, playbooks, locks, history and logs) with
    %[5]s --config %[4]s
`, agent.HTTPAddr(), bin, logs.srv.Addr(), files.config, selfCommand())
	if len(st.agents) > 0 {
		first := st.agents[0]
		other := "api"
		if first.role == other {
			other = "web"
		}
		fmt.Fprintf(stderr, `fleetdeck demo: real nodes %[1]s are Consul client agents on this machine,
    each with one managed role; role catalog %[2]s, their host_vars in %[3]s.
    Move one between roles and watch it converge, e.g.
    %[7]s --config %[8]s roles set %[4]s --add %[5]s --remove %[6]s --reason "demo" --wait
`, describeDemoAgents(st.agents), filepath.Join(files.playbooks, roles.RolesFile), filepath.Join(files.playbooks, "host_vars"),
			first.agent.NodeName(), other, first.role, selfCommand(), files.config)
	}

	fmt.Fprintf(stderr, `fleetdeck demo: a deployment server (fleetdeck provisioner, log %[1]s) configures
    new servers of group %[2]s through base → roles → web; the simulated autoscaling starts a blank
    agent (scale-01, …) %[3]s from now and every %[4]s after (%[5]d at most); base fails on scale-%02[6]d,
    which ends held. Watch it in the console with :provisioner, or
    %[7]s --config %[8]s provisioner status
`, demoProvisionerLog(files.dir), demoScaleGroup, demoScaleFirst, demoScaleEvery, demoScaleMax, demoScaleFailing, selfCommand(), files.config)
	if headless {
		fmt.Fprintln(stderr, "fleetdeck demo: running headless; Ctrl-C stops it.")
		select {
		case <-ctx.Done():
			return nil
		case err := <-simErr:
			return simulationErr(ctx, err)
		}
	}
	// The banner is under the console's screen now: the header says how
	// to open another console (the note is dropped first when narrow).
	if err := runConsole(ctx, opts, "demo · another console: --config "+files.config+" · CONSUL_HTTP_ADDR="+agent.HTTPAddr()); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "fleetdeck demo: its runs are kept in %s; list them with\n    fleetdeck runs --state-dir %s\n",
		opts.ansible.stateDir, opts.ansible.stateDir)
	select {
	case err := <-simErr:
		return simulationErr(ctx, err)
	default:
		return nil
	}
}

// demoLogProject is the Cloud Logging project the demo's logs live in.
const demoLogProject = "fleetdeck-demo"

// demoLogs is the demo's Cloud Logging: a local endpoint and the simulator
// writing the fleet's logs to it through the real client.
type demoLogs struct {
	srv    *logserver.Server
	client *logging.Client
	sim    *fleetsim.LogSim
}

// startDemoLogs starts the local endpoint and the log simulator (not yet
// running). The endpoint lives in this process, so the demo's soft memory
// limit is raised to hold it (GOMEMLIMIT still wins).
func startDemoLogs(ctx context.Context, spec fleetsim.Spec) (*demoLogs, error) {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(demoMemoryLimit)
	}
	srv, err := logserver.Start(ctx, logserver.Options{MaxEntries: demoLogEntries})
	if err != nil {
		return nil, fmt.Errorf("starting the demo's Cloud Logging endpoint: %w", err)
	}
	client, err := logging.NewClient(ctx, srv.ClientOptions()...)
	if err != nil {
		srv.Close()
		return nil, fmt.Errorf("connecting to the demo's Cloud Logging endpoint: %w", err)
	}
	sim, err := fleetsim.NewLogSim(client, spec, fleetsim.LogOptions{Project: demoLogProject, Backfill: 15 * time.Minute})
	if err != nil {
		client.Close()
		srv.Close()
		return nil, fmt.Errorf("preparing the demo's logs: %w", err)
	}
	return &demoLogs{srv: srv, client: client, sim: sim}, nil
}

// close stops the client and the endpoint (after the simulator's Run has
// returned) and reports write failures, which could not be shown while the
// console was on screen.
func (d *demoLogs) close(stderr io.Writer) {
	st := d.sim.Stats()
	if st.Failed > 0 {
		fmt.Fprintf(stderr, "fleetdeck demo: %d of %d simulated log writes failed; last error: %v\n", st.Failed, st.Written+st.Failed, st.LastErr)
	}
	d.client.Close()
	d.srv.Close()
}

const (
	// demoLogEntries bounds the local endpoint: ~2 KB each in memory, about
	// 25 minutes of the demo fleet's logs.
	demoLogEntries = 150_000
	// demoMemoryLimit is the demo's soft memory limit: the console's plus
	// room for the log endpoint.
	demoMemoryLimit = 768 << 20
)

// simulationErr reports a simulator failure; its ending with ctx is not one.
func simulationErr(ctx context.Context, err error) error {
	if err == nil || (ctx.Err() != nil && errors.Is(err, context.Canceled)) {
		return nil
	}
	fmt.Fprintln(os.Stderr, "fleetdeck demo: the simulation stopped:", err)
	return fmt.Errorf("running the simulated fleet: %w", err)
}

// demoStateDir is where the demo keeps its runs: the configured state
// directory, else <default state dir>/demo, apart from real runs yet kept
// over restarts of the demo.
func demoStateDir(a ansibleOptions) (string, error) {
	if a.stateDir != "" {
		return a.stateDir, nil
	}
	state, err := provision.DefaultStateDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(state, "demo"), nil
}

// demoConfigName is the name of the config file the demo writes.
const demoConfigName = "fleetdeck-demo.toml"

// demoFiles are the files the demo writes for its consoles, in a private
// temporary directory removed when the demo stops: the playbooks and a
// config file (mode 0600) pointing at them, the demo's Consul and its
// Cloud Logging endpoint.
type demoFiles struct {
	dir, playbooks, config string
}

// demoAlertFilter is the demo's [alerts] filter when the user set none.
const demoAlertFilter = "role:db health:critical"

// writeDemoFiles writes the demo's playbooks and config file. The config
// keeps the user's settings that shape a console (UI, Ansible binary,
// limits, environment, lock prefix, Logs view limits) and points the rest
// at the demo: a second console opened on it behaves as the demo's own.
// The fleet's meta keys and the logs mapping stay the defaults, which
// are the simulated fleet's. Its
// Consul is private, so the lock prefix stays the one every console uses
// (default "fleetdeck"). The simulated nodes do not exist: every host runs
// on this machine, with a local connection.
func writeDemoFiles(opts options, stateDir, consulAddr, logsAddr string) (*demoFiles, error) {
	dir, err := os.MkdirTemp("", "fleetdeck-demo-") // mode 0700
	if err != nil {
		return nil, fmt.Errorf("preparing the demo's files: %w", err)
	}
	f := &demoFiles{dir: dir, playbooks: filepath.Join(dir, "playbooks"), config: filepath.Join(dir, demoConfigName)}
	if err := demoplaybooks.Write(f.playbooks); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	// The apply playbook moves the demo's real nodes between roles; its
	// role catalog and host_vars are written once the agents run.
	if _, err := roles.WritePlaybook(f.playbooks); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	var fc fileConfig
	fc.Consul.Address = "http://" + consulAddr
	fc.Consul.Consistent = opts.fleet.Consistent
	if opts.fleet.WaitTime > 0 {
		fc.Consul.Wait = opts.fleet.WaitTime.String()
	}
	fc.UI.NoColor, fc.UI.ReadOnly = opts.noColor, opts.readOnly
	a := opts.ansible
	fc.Ansible.PlaybookDir, fc.Ansible.StateDir = f.playbooks, stateDir
	fc.Ansible.AnsiblePlaybook, fc.Ansible.LockPrefix = a.ansiblePlaybook, a.lockPrefix
	if a.maxRuns > 0 {
		fc.Ansible.MaxRuns = &a.maxRuns
	}
	fc.Ansible.Timeout = a.timeout.String()
	fc.Ansible.Env = append(slices.Clone(a.env), "ANSIBLE_TRANSPORT=local", "ANSIBLE_PYTHON_INTERPRETER=auto_silent")
	l := opts.logs
	fc.Logs.Projects = []string{demoLogProject}
	fc.Logs.Endpoint, fc.Logs.Insecure = logsAddr, true
	fc.Logs.ListPerMinute, fc.Logs.Cap = l.listPerMinute, l.cap
	if l.before > 0 {
		fc.Logs.Before = l.before.String()
	}
	if l.after > 0 {
		fc.Logs.After = l.after.String()
	}
	fc.Logs.SaveDir = l.saveDir
	if fc.Logs.SaveDir == "" {
		fc.Logs.SaveDir = filepath.Join(stateDir, "logs")
	}
	// The simulated nodes' addresses lead nowhere: ssh gives up after a
	// few seconds instead of the system's TCP timeout (minutes), and x
	// comes back with ssh's own message. A command the user set is kept.
	fc.SSH = opts.sshConfig
	if fc.SSH.Command == "" {
		fc.SSH.Command = "ssh -o ConnectTimeout=5 " + strings.TrimPrefix(tui.DefaultSSHCommand(fc.SSH.User, fc.SSH.Jump), "ssh ")
	}
	// The simulated fleet flaps a check every 2 s: alerting on every
	// node would ring the bell every 5 s. The demo alerts on its database
	// nodes unless the user chose a filter.
	fc.Alerts = opts.alertsConfig
	if fc.Alerts.Filter == nil {
		f := demoAlertFilter
		fc.Alerts.Filter = &f
	}
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "# Written by `fleetdeck demo` (pid %d) for its consoles; removed when the demo stops.\n", os.Getpid())
	if err := toml.NewEncoder(&buf).Encode(fc); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("encoding the demo's config file: %w", err)
	}
	// [provisioner] is written as text: the encoder cannot write the
	// Primitive the decoder keeps it in.
	buf.WriteString(demoProvisionerTOML)
	if err := os.WriteFile(f.config, buf.Bytes(), 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("writing the demo's config file: %w", err)
	}
	return f, nil
}

// options resolves the demo's config file as `fleetdeck --config <file>`
// does, flags aside.
func (f *demoFiles) options() (options, error) {
	flags := flagSet{config: f.config}
	o, err := flags.resolve(func(string) bool { return false })
	if err != nil {
		return o, fmt.Errorf("reading back the demo's config file: %w", err)
	}
	return o, nil
}

// remove deletes the demo's files.
func (f *demoFiles) remove(stderr io.Writer) {
	if err := os.RemoveAll(f.dir); err != nil {
		fmt.Fprintln(stderr, "fleetdeck demo: removing its files:", err)
	}
}

// selfCommand is how to run this fleetdeck again from the same place: the
// binary's path, or `go run ./cmd/fleetdeck` when it was built by `go run`
// (a temporary binary a user has no name for).
func selfCommand() string {
	exe, err := os.Executable()
	if err != nil || strings.Contains(exe, string(filepath.Separator)+"go-build") {
		return "go run ./cmd/fleetdeck"
	}
	return exe
}
