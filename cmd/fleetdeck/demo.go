package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"time"

	logging "cloud.google.com/go/logging/apiv2"
	"github.com/spf13/cobra"

	"github.com/fleetdeck/fleetdeck/internal/consulagent"
	"github.com/fleetdeck/fleetdeck/internal/demoplaybooks"
	"github.com/fleetdeck/fleetdeck/internal/fleetsim"
	"github.com/fleetdeck/fleetdeck/internal/logserver"
	"github.com/fleetdeck/fleetdeck/logview"
	"github.com/fleetdeck/fleetdeck/provision"
)

// newDemoCmd runs a throwaway Consul with a simulated fleet and opens the
// console on it.
func newDemoCmd(flags *flagSet) *cobra.Command {
	var nodes int
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

With --headless it runs the fleet without the console, so you can point
fleetdeck (or consul, or curl) at it from another terminal; it prints the
Consul address and the --logs-* flags for its log endpoint.`,
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
			return runDemo(cmd.Context(), opts, cmd.ErrOrStderr(), spec, headless)
		},
	}
	cmd.Flags().IntVar(&nodes, "nodes", 0, "simulated nodes (default: the demo fleet's size)")
	cmd.Flags().Uint64Var(&seed, "seed", 1, "seed of the simulation")
	cmd.Flags().BoolVar(&headless, "headless", false, "run the fleet without opening the console")
	cmd.Flags().BoolVar(&scale, "scale", false, "use the benchmark fleet's shape (10,000 nodes, 50 services, 5 per node, 3 checks)")
	return cmd
}

func runDemo(ctx context.Context, opts options, stderr io.Writer, spec fleetsim.Spec, headless bool) error {
	fmt.Fprintln(stderr, "fleetdeck demo: starting a private Consul agent…")
	bin, err := consulagent.Binary(ctx, stderr)
	if err != nil {
		return err
	}
	startCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	agent, err := consulagent.Start(startCtx, consulagent.Options{Binary: bin})
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
	fmt.Fprintf(stderr, "fleetdeck demo: registering %d simulated nodes…\n", spec.Nodes)
	if err := fleetsim.Load(ctx, client, spec); err != nil {
		return fmt.Errorf("registering the simulated fleet: %w", err)
	}
	fmt.Fprintf(stderr, `fleetdeck demo: Consul is at http://%[1]s — point other tools at it with
    export CONSUL_HTTP_ADDR=%[1]s
    fleetdeck            # another console
    %[2]s members   # or consul catalog nodes, curl, ...
`, agent.HTTPAddr(), bin)

	ctx, stop := context.WithCancel(ctx)
	defer stop()
	logs, err := startDemoLogs(ctx, spec)
	if err != nil {
		return err
	}
	defer logs.close(stderr)
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
	fmt.Fprintf(stderr, `fleetdeck demo: its Cloud Logging endpoint is at %[1]s — read it from another console with
    fleetdeck --logs-project %[2]s --logs-endpoint %[1]s --logs-insecure
`, logs.srv.Addr(), demoLogProject)

	if headless {
		fmt.Fprintln(stderr, "fleetdeck demo: running headless; Ctrl-C stops it.")
		select {
		case <-ctx.Done():
			return nil
		case err := <-simErr:
			return simulationErr(ctx, err)
		}
	}
	if err := demoRuns(&opts.ansible); err != nil {
		return err
	}
	defer os.RemoveAll(opts.ansible.playbookDir)
	opts.consul.Address = agent.HTTPAddr()
	opts.consul.Scheme = "http"
	opts.consul.Token, opts.consul.TokenFile = "", ""
	opts.fleet.Datacenters = nil
	opts.logs.projects = []string{demoLogProject}
	opts.logs.endpoint, opts.logs.insecure = "", false
	opts.logs.clientOptions = logs.srv.ClientOptions()
	opts.logs.mapping = logview.Mapping{}
	if opts.logs.saveDir == "" && opts.ansible.stateDir != "" {
		opts.logs.saveDir = filepath.Join(opts.ansible.stateDir, "logs")
	}
	if err := runConsole(ctx, opts, "demo · CONSUL_HTTP_ADDR="+agent.HTTPAddr()+" · logs "+logs.srv.Addr()); err != nil {
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

// demoRuns points the console's runs at the demo playbooks (written to a
// temp dir) with a local connection, and keeps the demo's run history
// apart from real runs, in <state dir>/demo, so it survives a restart of
// the demo without mixing with production history.
func demoRuns(a *ansibleOptions) error {
	dir, err := os.MkdirTemp("", "fleetdeck-demo-playbooks-")
	if err != nil {
		return fmt.Errorf("preparing the demo playbooks: %w", err)
	}
	if err := demoplaybooks.Write(dir); err != nil {
		os.RemoveAll(dir)
		return err
	}
	a.playbookDir = dir
	if a.stateDir == "" {
		state, err := provision.DefaultStateDir()
		if err != nil {
			os.RemoveAll(dir)
			return err
		}
		a.stateDir = filepath.Join(state, "demo")
	}
	a.lockPrefix = "fleetdeck-demo"
	// The simulated nodes do not exist: every host runs on this machine.
	a.env = append(a.env, "ANSIBLE_TRANSPORT=local", "ANSIBLE_PYTHON_INTERPRETER=auto_silent")
	return nil
}
