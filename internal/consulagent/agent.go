// Package consulagent runs a real Consul agent (`consul agent -dev`) on free
// loopback ports for fleetdeck's tests, benchmarks and demo.
//
// fleetdeck's integration tests never mock Consul: they start an agent with
// Start, talk to it through Client, and use Kill and Restart to produce the
// outages and index resets the live feed has to survive. The agent runs in
// its own process group with its own temporary directory, and Stop removes
// both, so a test run leaves nothing behind.
//
// Client agents (Options.JoinLAN) stand for real fleet nodes: each has its
// own data dir, config dir and loopback ports and joins a server agent's
// serf LAN, so role reassignment can be tested end to end — Ansible writes
// a service definition into ConfigDir, `consul reload` loads it, and the
// server's catalog shows it on the client's node.
package consulagent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-cleanhttp"
)

// Options configures Start. The zero value starts a single dev-mode server
// in datacenter "dc1" using the binary that Binary finds.
type Options struct {
	// Binary is the consul executable. Empty means call Binary(ctx, Log).
	Binary string
	// Datacenter defaults to "dc1".
	Datacenter string
	// NodeName is the agent's own node name; it defaults to
	// "consul-<datacenter>". The agent's node shows up in the catalog next
	// to any simulated nodes.
	NodeName string
	// ExtraHCL is appended to the agent configuration as a separate file,
	// e.g. `acl { enabled = true default_policy = "deny"
	// tokens { initial_management = "root" } }`.
	ExtraHCL string
	// Token is the ACL token Start uses while waiting for the agent and that
	// Client puts in its api.Config. Set it when ExtraHCL enables ACLs.
	Token string
	// JoinWAN lists serf WAN addresses (host:port, see SerfWANAddr) of
	// servers in other datacenters to federate with. Start then also waits
	// until the catalog lists more than one datacenter.
	JoinWAN []string
	// Log receives the agent's stdout and stderr. Nil discards them; the
	// last few kilobytes are kept either way for error messages.
	Log io.Writer
	// Env adds environment variables (KEY=value) for the agent process, after
	// the inherited environment and Start's defaults, so they win.
	Env []string
	// StopTimeout bounds how long Stop waits after SIGTERM before it
	// SIGKILLs the process group. Default 10s.
	StopTimeout time.Duration
	// Production runs a single server as a real cluster's (-server
	// -bootstrap-expect=1, raft on disk in the agent's dir) instead of
	// -dev. It matters to benchmarks: a dev agent pretty-prints every JSON
	// answer (agent/http.go marshalJSON), which makes a 10k-node fleet's
	// answers about half again as large and slower to write and to read.
	Production bool
	// JoinLAN, when non-empty, starts a CLIENT agent instead of a server:
	// not -dev, with its own data dir, joined to these serf LAN addresses
	// (host:port, see SerfLANAddr) of a server agent in the same
	// datacenter. NodeName is then required. Such an agent stands for one
	// real node of the fleet: its ConfigDir is where Ansible writes service
	// definition files, and `consul reload` against its HTTPAddr loads
	// them. Several clients can run side by side on one machine.
	JoinLAN []string
	// ConfigFiles are more files for ConfigDir (file name → content),
	// written beside the base configuration when the agent's directory is
	// created, so the agent loads them on its first start: a node's
	// initial service definitions, its node_meta. Restart does not write
	// them again, so what was changed in ConfigDir since (by Ansible)
	// stays. Names are plain file names ending in .json or .hcl, other
	// than the base files'.
	ConfigFiles map[string][]byte
}

// Ports are the loopback ports an Agent listens on. They stay the same over
// Restart.
type Ports struct {
	HTTP, DNS, Server, SerfLAN, SerfWAN int
}

// Agent is a running (or stopped) Consul dev agent. Its methods are safe for
// concurrent use.
type Agent struct {
	opts  Options
	ports Ports

	mu      sync.Mutex
	dir     string // temp dir holding config; "" once removed
	cmd     *exec.Cmd
	exited  chan struct{} // closed when cmd has been waited for
	exitErr error         // cmd.Wait's result, valid after exited closes
	logTail *tailBuffer

	// transport is shared by every Client so Stop can close their idle
	// keep-alive connections; otherwise each would leave two goroutines
	// behind, which goleak-checked tests would report.
	transport *http.Transport
}

// Start launches `consul agent -dev` (or the agent Options asks for) on free loopback ports and returns once
// its HTTP API answers, a leader is elected, the ACL token (if any) works and,
// with JoinWAN, the WAN federation is visible. A client agent (JoinLAN)
// is ready when its own node is in the catalog: the client forwards that
// read to a server, so it answers only once the client has joined and the
// leader has registered it. ctx bounds the whole start-up,
// including a possible first-time build of the binary.
func Start(ctx context.Context, opts Options) (*Agent, error) {
	if opts.Datacenter == "" {
		opts.Datacenter = "dc1"
	}
	if len(opts.JoinLAN) > 0 {
		// A default name would make every client on this machine the same
		// node; the catalog would then show one node flapping between them.
		if opts.NodeName == "" {
			return nil, errors.New("consulagent: a client agent (JoinLAN) needs a NodeName")
		}
		if opts.Production || len(opts.JoinWAN) > 0 {
			return nil, errors.New("consulagent: JoinLAN (a client agent) excludes Production and JoinWAN (server options)")
		}
	}
	if opts.NodeName == "" {
		opts.NodeName = "consul-" + opts.Datacenter
	}
	for name := range opts.ConfigFiles {
		if err := checkConfigFileName(name); err != nil {
			return nil, err
		}
	}
	if opts.StopTimeout <= 0 {
		opts.StopTimeout = 10 * time.Second
	}
	if opts.Binary == "" {
		bin, err := Binary(ctx, opts.Log)
		if err != nil {
			return nil, err
		}
		opts.Binary = bin
	}
	a := &Agent{opts: opts, transport: cleanhttp.DefaultPooledTransport()}
	// Free ports are only free until someone else binds them; if the agent
	// loses that race it fails with "address already in use", so pick a new
	// set and try again.
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		a.ports, err = freePorts()
		if err != nil {
			return nil, fmt.Errorf("consulagent: finding free loopback ports: %w", err)
		}
		err = a.start(ctx)
		if err == nil {
			return a, nil
		}
		a.Stop()
		if !strings.Contains(err.Error(), "address already in use") || ctx.Err() != nil {
			break
		}
	}
	return nil, err
}

// Restart starts the agent again on the same ports after Stop or Kill (it
// stops a running agent first). Dev mode keeps its state in memory, so the
// restarted agent has an empty catalog and its Raft index starts over: this
// is how tests produce a Consul outage followed by an index reset.
func (a *Agent) Restart(ctx context.Context) error {
	if err := a.Kill(); err != nil {
		return err
	}
	// Servers on the same ports may take a moment to be re-bindable while
	// the kernel finishes closing the old sockets; retry briefly.
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if err = a.start(ctx); err == nil {
			return nil
		}
		a.Kill()
		if !strings.Contains(err.Error(), "address already in use") {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(500 * time.Millisecond):
		}
	}
	return err
}

// HTTPAddr returns the HTTP API address as host:port.
func (a *Agent) HTTPAddr() string { return loopback(a.ports.HTTP) }

// SerfLANAddr returns the serf LAN address (host:port) client agents pass
// in Options.JoinLAN.
func (a *Agent) SerfLANAddr() string { return loopback(a.ports.SerfLAN) }

// ConfigDir returns the agent's -config-dir ("" after Stop). Service
// definition files written there are loaded by `consul reload`. Besides
// them it holds the agent's generated base configuration, 00-fleetdeck.hcl
// (and 50-extra.hcl with Options.ExtraHCL): it includes data_dir, which
// `consul validate` of a copy of the directory needs, and its names are
// outside the fleetdeck-*.json files the apply playbook manages.
func (a *Agent) ConfigDir() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.dir == "" {
		return ""
	}
	return filepath.Join(a.dir, "config")
}

// IsClient reports whether the agent is a client agent (Options.JoinLAN).
func (a *Agent) IsClient() bool { return len(a.opts.JoinLAN) > 0 }

// SerfWANAddr returns the serf WAN address (host:port) other datacenters'
// agents pass in Options.JoinWAN.
func (a *Agent) SerfWANAddr() string { return loopback(a.ports.SerfWAN) }

// Ports returns all ports the agent listens on.
func (a *Agent) Ports() Ports { return a.ports }

// Datacenter returns the agent's datacenter name.
func (a *Agent) Datacenter() string { return a.opts.Datacenter }

// NodeName returns the agent's own node name.
func (a *Agent) NodeName() string { return a.opts.NodeName }

// Token returns the ACL token from Options (possibly empty).
func (a *Agent) Token() string { return a.opts.Token }

// Client returns an api.Client for the agent's HTTP API with the token from
// Options. Address and scheme are set explicitly so a CONSUL_HTTP_ADDR in the
// environment cannot redirect tests to a real cluster.
func (a *Agent) Client() (*api.Client, error) {
	cfg := api.DefaultConfig()
	cfg.Address = a.HTTPAddr()
	cfg.Scheme = "http"
	cfg.Datacenter = ""
	cfg.Token = a.opts.Token
	cfg.TokenFile = ""
	cfg.Transport = a.transport
	c, err := api.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("consulagent: creating a client for %s: %w", a.HTTPAddr(), err)
	}
	return c, nil
}

// Stop shuts the agent down (SIGTERM, then SIGKILL to its process group after
// Options.StopTimeout), closes idle connections of the clients made by Client
// and removes its temporary directory. It is safe to call more than once;
// Restart works after Stop.
func (a *Agent) Stop() error {
	defer a.transport.CloseIdleConnections()
	a.mu.Lock()
	cmd, exited := a.cmd, a.exited
	a.mu.Unlock()
	var err error
	if cmd != nil {
		terminate(cmd)
		select {
		case <-exited:
		case <-time.After(a.opts.StopTimeout):
			killGroup(cmd)
			<-exited
		}
		// Anything the agent forked is gone with the group.
		killGroup(cmd)
	}
	a.mu.Lock()
	a.cmd = nil
	if a.dir != "" {
		if rmErr := os.RemoveAll(a.dir); rmErr != nil {
			err = fmt.Errorf("consulagent: removing %s: %w", a.dir, rmErr)
		}
		a.dir = ""
	}
	a.mu.Unlock()
	return err
}

// Kill SIGKILLs the agent's process group at once, as a crash would, and
// waits for it to be reaped. Ports and the temporary directory are kept so
// Restart can bring the agent back on the same addresses.
func (a *Agent) Kill() error {
	a.mu.Lock()
	cmd, exited := a.cmd, a.exited
	a.cmd = nil
	a.mu.Unlock()
	if cmd == nil {
		return nil
	}
	killGroup(cmd)
	select {
	case <-exited:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("consulagent: agent pid %d did not exit after SIGKILL", cmd.Process.Pid)
	}
}

// Pid returns the process id of the running agent, or 0.
func (a *Agent) Pid() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cmd == nil || a.cmd.Process == nil {
		return 0
	}
	return a.cmd.Process.Pid
}

// Dir returns the agent's temporary directory ("" after Stop).
func (a *Agent) Dir() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.dir
}

// start writes the configuration, launches the process and waits for it to
// be usable. On error the caller cleans up with Stop or Kill.
func (a *Agent) start(ctx context.Context) error {
	if err := a.writeConfig(); err != nil {
		return err
	}
	a.mu.Lock()
	dir := a.dir
	a.mu.Unlock()

	tail := &tailBuffer{max: 16 << 10}
	var out io.Writer = tail
	if a.opts.Log != nil {
		out = io.MultiWriter(a.opts.Log, tail)
	}
	// exec.Command, not CommandContext: the agent must outlive the start-up
	// context (it is stopped by Stop/Kill), while ctx only bounds the wait.
	args := []string{"agent", "-dev", "-config-dir", filepath.Join(dir, "config")}
	if a.opts.Production {
		args = []string{"agent", "-server", "-bootstrap-expect=1", "-data-dir", filepath.Join(dir, "data"), "-config-dir", filepath.Join(dir, "config")}
	}
	if a.IsClient() {
		// What a fleet node runs. data_dir and node_name are in the base
		// file too (validate needs data_dir); the flags make the command
		// line say what this agent is.
		args = []string{"agent", "-data-dir", filepath.Join(dir, "data"), "-config-dir", filepath.Join(dir, "config"), "-node", a.opts.NodeName}
		for _, j := range a.opts.JoinLAN {
			args = append(args, "-retry-join", j)
		}
	}
	cmd := exec.Command(a.opts.Binary, args...)
	cmd.Dir = dir
	// Anything the agent writes to a temp dir lands in ours and goes with it.
	// A bulk load of 10,000 nodes spends a third of the agent's CPU in the
	// garbage collector at the default GOGC=100; 400 (capped by a 1 GiB soft
	// memory limit) cut it by 30% in measurements. Options.Env can override.
	cmd.Env = append(os.Environ(), "TMPDIR="+filepath.Join(dir, "tmp"), "GOGC=400", "GOMEMLIMIT=1GiB")
	cmd.Env = append(cmd.Env, a.opts.Env...)
	cmd.Stdout = out
	cmd.Stderr = out
	// Bound how long Wait waits for the output copying goroutine should
	// something inherit the agent's stdout.
	cmd.WaitDelay = 2 * time.Second
	setProcessGroup(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("consulagent: starting %s: %w", a.opts.Binary, err)
	}
	exited := make(chan struct{})
	a.mu.Lock()
	a.cmd, a.exited, a.logTail = cmd, exited, tail
	a.mu.Unlock()
	go func() {
		err := cmd.Wait()
		a.mu.Lock()
		a.exitErr = err
		a.mu.Unlock()
		close(exited)
	}()

	if err := a.waitReady(ctx, exited); err != nil {
		return fmt.Errorf("consulagent: agent on %s (dc %s) did not become ready: %w\n--- agent output (tail) ---\n%s",
			a.HTTPAddr(), a.opts.Datacenter, err, tail.String())
	}
	return nil
}

func (a *Agent) writeConfig() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	created := a.dir == ""
	if created {
		sweepOrphans()
		dir, err := os.MkdirTemp("", tempPrefix+"*")
		if err != nil {
			return fmt.Errorf("consulagent: creating a temp dir: %w", err)
		}
		a.dir = dir
		// Record who owns the dir so a later Start can remove it should
		// this process die without calling Stop.
		if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
			return fmt.Errorf("consulagent: writing %s: %w", ownerFile, err)
		}
	}
	for _, sub := range []string{"config", "tmp", "data"} {
		if err := os.MkdirAll(filepath.Join(a.dir, sub), 0o755); err != nil {
			return fmt.Errorf("consulagent: creating %s: %w", sub, err)
		}
	}
	if created {
		for name, content := range a.opts.ConfigFiles {
			if err := os.WriteFile(filepath.Join(a.dir, "config", name), content, 0o644); err != nil {
				return fmt.Errorf("consulagent: writing %s: %w", name, err)
			}
		}
	}
	files := map[string]string{baseConfigFile: a.baseHCL()}
	if a.opts.ExtraHCL != "" {
		files[extraConfigFile] = a.opts.ExtraHCL + "\n"
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(a.dir, "config", name), []byte(content), 0o644); err != nil {
			return fmt.Errorf("consulagent: writing %s: %w", name, err)
		}
	}
	return nil
}

func (a *Agent) baseHCL() string {
	var b strings.Builder
	q := strconv.Quote
	fmt.Fprintf(&b, "datacenter = %s\n", q(a.opts.Datacenter))
	fmt.Fprintf(&b, "node_name = %s\n", q(a.opts.NodeName))
	b.WriteString(`bind_addr = "127.0.0.1"
client_addr = "127.0.0.1"
advertise_addr = "127.0.0.1"
advertise_addr_wan = "127.0.0.1"
# No phoning home from tests and demos.
disable_update_check = true
log_level = "info"
`)
	// gRPC is disabled: nothing in fleetdeck uses it, and every listener is a
	// port that could collide with a parallel test.
	fmt.Fprintf(&b, "ports {\n  http = %d\n  dns = %d\n  server = %d\n  serf_lan = %d\n  serf_wan = %d\n  https = -1\n  grpc = -1\n  grpc_tls = -1\n}\n",
		a.ports.HTTP, a.ports.DNS, a.ports.Server, a.ports.SerfLAN, a.ports.SerfWAN)
	if a.IsClient() {
		// Several agents on one machine would all derive the same node ID
		// from the host; each client stands for a different node. A failed
		// join is retried every second rather than Consul's 30 s, so a
		// client started right after its server does not wait that long.
		// A graceful leave on SIGTERM costs Stop about 4 s per client (serf
		// waits for the leave to propagate); without it the node shows as
		// failed until its server goes too, which tests and the demo do not
		// mind.
		fmt.Fprintf(&b, "data_dir = %s\nserver = false\ndisable_host_node_id = true\nretry_interval = \"1s\"\nleave_on_terminate = false\n", q(filepath.Join(a.dir, "data")))
		quoted := make([]string, len(a.opts.JoinLAN))
		for i, j := range a.opts.JoinLAN {
			quoted[i] = q(j)
		}
		fmt.Fprintf(&b, "retry_join = [%s]\n", strings.Join(quoted, ", "))
	}
	if len(a.opts.JoinWAN) > 0 {
		quoted := make([]string, len(a.opts.JoinWAN))
		for i, j := range a.opts.JoinWAN {
			quoted[i] = q(j)
		}
		fmt.Fprintf(&b, "retry_join_wan = [%s]\nretry_interval_wan = \"1s\"\n", strings.Join(quoted, ", "))
	}
	return b.String()
}

// waitReady polls the agent until it serves requests. Polling is right here:
// there is nothing to block on before the HTTP listener exists.
func (a *Agent) waitReady(ctx context.Context, exited <-chan struct{}) error {
	hc := &http.Client{Timeout: 2 * time.Second}
	defer hc.CloseIdleConnections()
	base := "http://" + a.HTTPAddr()
	stage := "waiting for the HTTP API"
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		done, err := a.readyStep(ctx, hc, base, &stage)
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			if err != nil {
				return fmt.Errorf("%s: %w (last error: %v)", stage, ctx.Err(), err)
			}
			return fmt.Errorf("%s: %w", stage, ctx.Err())
		case <-exited:
			a.mu.Lock()
			exitErr := a.exitErr
			a.mu.Unlock()
			return fmt.Errorf("%s: agent exited: %v", stage, exitErr)
		case <-tick.C:
		}
	}
}

// readyStep runs one round of readiness checks, reporting in *stage which
// condition it is waiting for.
func (a *Agent) readyStep(ctx context.Context, hc *http.Client, base string, stage *string) (bool, error) {
	var leader string
	*stage = "waiting for a leader"
	if err := a.getJSON(ctx, hc, base+"/v1/status/leader", &leader); err != nil {
		return false, err
	}
	if leader == "" {
		return false, nil
	}
	if a.opts.Token != "" {
		// The initial management token is created by the leader shortly
		// after election; until then requests with it are refused.
		*stage = "waiting for the ACL token to be accepted"
		var self map[string]any
		if err := a.getJSON(ctx, hc, base+"/v1/acl/token/self", &self); err != nil {
			return false, err
		}
	}
	// The leader registers the agent's own node a moment after election;
	// tests that count nodes (and cross-datacenter reads) need it there.
	*stage = "waiting for the agent's node in the catalog"
	var self *struct{ Node *struct{ Node string } }
	if err := a.getJSON(ctx, hc, base+"/v1/catalog/node/"+url.PathEscape(a.opts.NodeName), &self); err != nil {
		return false, err
	}
	if self == nil || self.Node == nil {
		return false, nil
	}
	if len(a.opts.JoinWAN) > 0 {
		*stage = "waiting for WAN federation"
		var dcs []string
		if err := a.getJSON(ctx, hc, base+"/v1/catalog/datacenters", &dcs); err != nil {
			return false, err
		}
		if len(dcs) < 2 {
			return false, nil
		}
	}
	return true, nil
}

func (a *Agent) getJSON(ctx context.Context, hc *http.Client, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if a.opts.Token != "" {
		req.Header.Set("X-Consul-Token", a.opts.Token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	return json.Unmarshal(body, v)
}

const (
	tempPrefix = "fleetdeck-consul-"
	ownerFile  = "owner.pid"
	// The generated configuration files in ConfigDir.
	baseConfigFile  = "00-fleetdeck.hcl"
	extraConfigFile = "50-extra.hcl"
)

// checkConfigFileName refuses an Options.ConfigFiles name that would leave
// ConfigDir, replace a generated file, or not be loaded by the agent.
func checkConfigFileName(name string) error {
	switch {
	case name == "" || name != filepath.Base(name) || name == "." || name == "..":
		return fmt.Errorf("consulagent: config file name %q: want a plain file name", name)
	case name == baseConfigFile || name == extraConfigFile:
		return fmt.Errorf("consulagent: config file name %q is the agent's generated configuration", name)
	case !strings.HasSuffix(name, ".json") && !strings.HasSuffix(name, ".hcl"):
		return fmt.Errorf("consulagent: config file name %q: the agent loads only .json and .hcl files", name)
	}
	return nil
}

// sweepOrphans removes temp dirs left by agents whose owning process died
// without calling Stop (SIGKILLed tests or demos; the agent itself died with
// its parent through the parent-death signal). Dirs without an owner file,
// or whose owner is alive, are left alone. Best effort: errors are ignored.
func sweepOrphans() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), tempPrefix+"*"))
	for _, d := range dirs {
		data, err := os.ReadFile(filepath.Join(d, ownerFile))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil || pid <= 0 || pid == os.Getpid() || processAlive(pid) {
			continue
		}
		os.RemoveAll(d)
	}
}

func loopback(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// freePorts picks five distinct ports that are currently free for both TCP
// and UDP on 127.0.0.1 (DNS and serf use both). They are chosen below the
// Linux ephemeral range (32768+), so the agent's own outgoing connections
// cannot occupy them between a Kill and a Restart.
func freePorts() (Ports, error) {
	var got []int
	seen := map[int]bool{}
	// Seeded from the pid and clock so parallel test processes spread out.
	seed := uint64(os.Getpid())*2654435761 + uint64(time.Now().UnixNano())
	for tries := 0; len(got) < 5 && tries < 500; tries++ {
		seed = seed*6364136223846793005 + 1442695040888963407
		port := 15000 + int((seed>>33)%17000)
		if seen[port] || !portFree(port) {
			continue
		}
		seen[port] = true
		got = append(got, port)
	}
	if len(got) < 5 {
		return Ports{}, errors.New("no free ports between 15000 and 32000 on 127.0.0.1")
	}
	return Ports{HTTP: got[0], DNS: got[1], Server: got[2], SerfLAN: got[3], SerfWAN: got[4]}, nil
}

func portFree(port int) bool {
	l, err := net.Listen("tcp", loopback(port))
	if err != nil {
		return false
	}
	defer l.Close()
	u, err := net.ListenPacket("udp", loopback(port))
	if err != nil {
		return false
	}
	u.Close()
	return true
}

// tailBuffer keeps the last max bytes written to it, for error messages.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
