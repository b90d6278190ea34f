// Command inventory measures `fleetdeck inventory --list` end to end — the
// real binary, started the way Ansible starts an inventory script — for a
// simulated fleet in a real Consul, side by side with a per-node-request
// inventory built the way Ansible's old contrib/inventory/consul_io.py
// builds one, against the same Consul. It starts its own Consul agent,
// loads the fleet, builds fleetdeck and prints a table; see
// docs/benchmarks.md.
//
// The peer does what consul_io.py does with its default settings: list
// the datacenters, list each datacenter's nodes, then one
// /v1/catalog/node/<name> request per node, one after another (the
// script has no concurrency), grouping nodes by datacenter, service and
// service tag and keeping each node's services as host variables.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/fleetdeck/fleetdeck/bench/internal/httpcount"
	"github.com/fleetdeck/fleetdeck/fleet"
	"github.com/fleetdeck/fleetdeck/internal/consulagent"
	"github.com/fleetdeck/fleetdeck/internal/fleetsim"
	"github.com/fleetdeck/fleetdeck/provision"
)

func main() {
	nodes := flag.Int("nodes", 10000, "nodes to register (fleetsim.ScaleSpec)")
	runs := flag.Int("runs", 5, "timed runs of fleetdeck inventory --list without and with an empty cache")
	warmRuns := flag.Int("warm-runs", 10, "timed runs of fleetdeck inventory --list answered from a validated cache, per situation")
	peerRuns := flag.Int("peer-runs", 1, "timed runs of the per-node-request peer")
	bin := flag.String("fleetdeck", "", "fleetdeck binary (default: go build ./cmd/fleetdeck into a temp dir)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *nodes, *runs, *warmRuns, *peerRuns, *bin); err != nil {
		fmt.Fprintln(os.Stderr, "inventory bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, nodes, runs, warmRuns, peerRuns int, bin string) error {
	tmp, err := os.MkdirTemp("", "fleetdeck-bench-inventory-")
	if err != nil {
		return fmt.Errorf("making a temp dir: %w", err)
	}
	defer os.RemoveAll(tmp)
	if bin == "" {
		bin = filepath.Join(tmp, "fleetdeck")
		fmt.Fprintln(os.Stderr, "building fleetdeck…")
		if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/fleetdeck").CombinedOutput(); err != nil {
			return fmt.Errorf("building fleetdeck (run from the repository root): %w\n%s", err, out)
		}
	}
	consulBin, err := consulagent.Binary(ctx, os.Stderr)
	if err != nil {
		return err
	}
	agent, err := consulagent.Start(ctx, consulagent.Options{Binary: consulBin})
	if err != nil {
		return err
	}
	defer agent.Stop()
	admin, err := agent.Client()
	if err != nil {
		return err
	}
	t0 := time.Now()
	if err := fleetsim.Load(ctx, admin, fleetsim.ScaleSpec(nodes)); err != nil {
		return fmt.Errorf("loading the fleet: %w", err)
	}
	fmt.Fprintf(os.Stderr, "loaded %d nodes in %v\n", nodes, time.Since(t0).Round(time.Millisecond))
	want := nodes + 1 // the agent's own node

	// fleetdeck inventory --list, the real binary, in four situations.
	cacheHome, proxyCache := filepath.Join(tmp, "cache"), filepath.Join(tmp, "proxy-cache")
	env := append(os.Environ(), "CONSUL_HTTP_ADDR="+agent.HTTPAddr(),
		"XDG_CONFIG_HOME="+filepath.Join(tmp, "config"), "XDG_CACHE_HOME="+cacheHome)
	// The check the "health changed" runs change, on a simulated node.
	fleetNodes, err := fleetsim.ScaleSpec(nodes).Fleet()
	if err != nil {
		return fmt.Errorf("generating the fleet: %w", err)
	}
	flapNode := fleetNodes[0].Name
	flaps := 0
	modes := []mode{
		{name: "full read, no cache (`--no-cache`)", args: []string{"--no-cache"}, runs: runs},
		{name: "cold: empty cache (full read, catalog probed before and after, entry written)", runs: runs,
			prepare: func(home string) error { return os.RemoveAll(home) }, expect: "read the catalog; cached"},
		{name: "warm: catalog and health unchanged (validated, cached output)", runs: warmRuns,
			expect: "served from the cache (catalog unchanged, health unchanged;"},
		{name: "warm: a check changed since the last run (validated, cached nodes + fresh health)", runs: warmRuns,
			prepare: func(string) error {
				// A failing check whose output changes every time: the
				// health the cached output was built with never matches.
				flaps++
				_, err := admin.Catalog().Register(&api.CatalogRegistration{Node: flapNode, SkipNodeUpdate: true,
					Check: &api.AgentCheck{Node: flapNode, CheckID: "bench-flap", Name: "bench flap",
						Status: api.HealthCritical, Output: fmt.Sprintf("failure %d", flaps)}}, nil)
				return err
			},
			expect: "served from the cached catalog with fresh health"},
	}
	proxy, err := newCountingProxy(agent.HTTPAddr())
	if err != nil {
		return err
	}
	defer proxy.Close()
	for i := range modes {
		m := &modes[i]
		if err := m.measure(ctx, bin, cacheHome, env, want); err != nil {
			return err
		}
		// Once more through a counting proxy (not timed): the requests.
		// The proxy's address is another Consul address to the cache, so
		// its entries are kept apart.
		if m.prepare != nil {
			if err := m.prepare(proxyCache); err != nil {
				return fmt.Errorf("%s: preparing: %w", m.name, err)
			}
		}
		before := proxy.count.Load()
		penv := append(slices.Clone(env), "CONSUL_HTTP_ADDR="+proxy.addr, "XDG_CACHE_HOME="+proxyCache)
		if _, _, err := runInventory(ctx, bin, penv, m.args, m.expect); err != nil {
			return fmt.Errorf("%s, counting requests: %w", m.name, err)
		}
		m.requests = proxy.count.Load() - before
	}
	entrySize := int64(0)
	filepath.WalkDir(cacheHome, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				entrySize += fi.Size()
			}
		}
		return nil
	})

	// The full read in process, by stage.
	ct := httpcount.New()
	cfg := api.DefaultConfig()
	cfg.Address = agent.HTTPAddr()
	cfg.HttpClient = &http.Client{Transport: ct}
	client, err := api.NewClient(cfg)
	if err != nil {
		return fmt.Errorf("configuring the Consul client: %w", err)
	}
	s0 := time.Now()
	snap, err := fleet.Once(ctx, client, fleet.Config{SkipAllChecks: true})
	if err != nil {
		return fmt.Errorf("reading the snapshot: %w", err)
	}
	onceT := time.Since(s0)
	reqs := ct.Count()
	s1 := time.Now()
	inv, _ := provision.BuildInventory(snap, provision.InventoryOptions{})
	buildT := time.Since(s1)
	s2 := time.Now()
	if err := inv.WriteList(io.Discard); err != nil {
		return err
	}
	writeT := time.Since(s2)
	s3 := time.Now()
	if _, _, err := fleet.ReadFailingChecks(ctx, client, fleet.Config{}, snap.Datacenters); err != nil {
		return fmt.Errorf("reading the failing checks: %w", err)
	}
	failT := time.Since(s3)

	// The consul_io.py way.
	pct := httpcount.New()
	pcfg := api.DefaultConfig()
	pcfg.Address = agent.HTTPAddr()
	pcfg.HttpClient = &http.Client{Transport: pct}
	peer, err := api.NewClient(pcfg)
	if err != nil {
		return fmt.Errorf("configuring the Consul client: %w", err)
	}
	var peerTimes []time.Duration
	var peerSize int
	var peerReqs int64
	for range peerRuns {
		before := pct.Count()
		start := time.Now()
		out, err := perNodeInventory(ctx, peer)
		peerReqs = pct.Count() - before
		if err != nil {
			return fmt.Errorf("per-node inventory: %w", err)
		}
		peerTimes = append(peerTimes, time.Since(start))
		peerSize = len(out)
		if n, err := countHosts(out); err != nil || n != want {
			return fmt.Errorf("per-node inventory: %d hosts, want %d (%v)", n, want, err)
		}
	}

	pmed := median(peerTimes)
	fmt.Printf("inventory --list, %d nodes (fleetsim.ScaleSpec), same Consul\n\n", nodes)
	fmt.Printf("| inventory | runs | median | min | max | HTTP requests | output | per-node / this |\n|---|---|---|---|---|---|---|---|\n")
	for _, m := range modes {
		med := median(m.times)
		fmt.Printf("| fleetdeck inventory --list: %s | %d | %v | %v | %v | %d | %.1f MB | %.1f× |\n",
			m.name, len(m.times), ms(med), ms(slices.Min(m.times)), ms(slices.Max(m.times)), m.requests,
			float64(m.size)/1e6, float64(pmed)/float64(med))
	}
	fmt.Printf("| per-node requests, consul_io.py way (sequential) | %d | %v | %v | %v | %d | %.1f MB | 1.0× |\n",
		len(peerTimes), ms(pmed), ms(slices.Min(peerTimes)), ms(slices.Max(peerTimes)), peerReqs, float64(peerSize)/1e6)
	fmt.Printf("\nfull read in process: fleet.Once %v (%d requests), BuildInventory %v, WriteList %v; "+
		"fleet.ReadFailingChecks (what every warm run reads) %v\n", ms(onceT), reqs, ms(buildT), ms(writeT), ms(failT))
	for _, m := range modes {
		if len(m.validation) > 0 {
			fmt.Printf("%s: validation against Consul (failing checks, catalog index and servers, datacenters) median %v\n",
				m.name, ms(median(m.validation)))
		}
	}
	fmt.Printf("cache entry on disk: %.1f MB\n", float64(entrySize)/1e6)
	return nil
}

// mode is one situation `fleetdeck inventory --list` is timed in.
type mode struct {
	name string
	args []string
	runs int
	// prepare runs before each run, untimed, with the run's cache home.
	prepare func(cacheHome string) error
	// expect is what --verbose must say: proof that the run took the
	// path it is reported under. Empty: nothing to check.
	expect string

	times    []time.Duration
	size     int
	requests int64
	// validation is how long each warm run spent checking the entry
	// against Consul, as --verbose reports it.
	validation []time.Duration
}

// validatedIn finds the validation time in --verbose output.
var validatedIn = regexp.MustCompile(`validated in ([0-9.]+[a-zµ]+)`)

// measure times m.runs runs and checks the first answer's host count.
func (m *mode) measure(ctx context.Context, bin, cacheHome string, env []string, want int) error {
	for i := range m.runs {
		if m.prepare != nil {
			if err := m.prepare(cacheHome); err != nil {
				return fmt.Errorf("%s: preparing: %w", m.name, err)
			}
		}
		start := time.Now()
		out, errOut, err := runInventory(ctx, bin, env, m.args, m.expect)
		if err != nil {
			return fmt.Errorf("%s: %w", m.name, err)
		}
		m.times = append(m.times, time.Since(start))
		if sm := validatedIn.FindSubmatch(errOut); sm != nil {
			if d, err := time.ParseDuration(string(sm[1])); err == nil {
				m.validation = append(m.validation, d)
			}
		}
		m.size = len(out)
		if i == 0 {
			if n, err := countHosts(out); err != nil || n != want {
				return fmt.Errorf("%s: %d hosts, want %d (%v)", m.name, n, want, err)
			}
		}
	}
	return nil
}

// runInventory runs `fleetdeck inventory --list --verbose` as Ansible runs
// an inventory script and checks that stderr says expect.
func runInventory(ctx context.Context, bin string, env, args []string, expect string) (stdout, stderr []byte, err error) {
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, append([]string{"inventory", "--list", "--verbose"}, args...)...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return nil, nil, fmt.Errorf("running fleetdeck inventory --list: %w\n%s", err, errOut.Bytes())
	}
	if !strings.Contains(errOut.String(), expect) {
		return nil, nil, fmt.Errorf("fleetdeck inventory --list did not say %q:\n%s", expect, errOut.Bytes())
	}
	return out.Bytes(), errOut.Bytes(), nil
}

// countingProxy forwards to Consul and counts the requests, so that the
// requests of the real binary can be counted without changing it.
type countingProxy struct {
	addr  string
	srv   *http.Server
	count atomic.Int64
}

func newCountingProxy(target string) (*countingProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("starting the counting proxy: %w", err)
	}
	p := &countingProxy{addr: ln.Addr().String()}
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: target})
	p.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.count.Add(1)
		rp.ServeHTTP(w, r)
	})}
	go p.srv.Serve(ln)
	return p, nil
}

// Close stops the proxy.
func (p *countingProxy) Close() error { return p.srv.Close() }

// perNodeInventory builds an inventory the way consul_io.py does: one
// catalog read per node, sequentially.
func perNodeInventory(ctx context.Context, c *api.Client) ([]byte, error) {
	q := (&api.QueryOptions{}).WithContext(ctx)
	dcs, err := c.Catalog().Datacenters()
	if err != nil {
		return nil, fmt.Errorf("listing datacenters: %w", err)
	}
	groups := map[string][]string{}
	hostvars := map[string]map[string]any{}
	for _, dc := range dcs {
		dq := *q
		dq.Datacenter = dc
		nodes, _, err := c.Catalog().Nodes(&dq)
		if err != nil {
			return nil, fmt.Errorf("listing nodes in %s: %w", dc, err)
		}
		for _, n := range nodes {
			groups[dc] = append(groups[dc], n.Address)
			cn, _, err := c.Catalog().Node(n.Node, &dq)
			if err != nil {
				return nil, fmt.Errorf("reading node %s: %w", n.Node, err)
			}
			// consul_io.py names hosts by address.
			host := cn.Node.Address
			groups["all"] = append(groups["all"], host)
			hv := map[string]any{"consul_datacenter": dc, "consul_nodename": cn.Node.Node}
			var svcs []string
			for _, s := range cn.Services {
				svcs = append(svcs, s.Service)
				groups[s.Service] = append(groups[s.Service], host)
				for _, t := range s.Tags {
					groups[s.Service+"_"+t] = append(groups[s.Service+"_"+t], host)
				}
				hv["consul_"+s.Service+"_tags"] = s.Tags
			}
			sort.Strings(svcs)
			hv["consul_services"] = svcs
			hostvars[host] = hv
		}
	}
	out := map[string]any{"_meta": map[string]any{"hostvars": hostvars}}
	for g, hosts := range groups {
		sort.Strings(hosts)
		out[g] = slices.Compact(hosts)
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("encoding the inventory: %w", err)
	}
	return b, nil
}

// countHosts counts the hosts in --list JSON.
func countHosts(b []byte) (int, error) {
	var v struct {
		Meta struct {
			Hostvars map[string]json.RawMessage `json:"hostvars"`
		} `json:"_meta"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return 0, fmt.Errorf("decoding --list output: %w", err)
	}
	return len(v.Meta.Hostvars), nil
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }
