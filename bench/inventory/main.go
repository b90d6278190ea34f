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
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
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
	runs := flag.Int("runs", 5, "timed runs of fleetdeck inventory --list")
	peerRuns := flag.Int("peer-runs", 1, "timed runs of the per-node-request peer")
	bin := flag.String("fleetdeck", "", "fleetdeck binary (default: go build ./cmd/fleetdeck into a temp dir)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *nodes, *runs, *peerRuns, *bin); err != nil {
		fmt.Fprintln(os.Stderr, "inventory bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, nodes, runs, peerRuns int, bin string) error {
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

	// fleetdeck inventory --list, the real binary.
	var times []time.Duration
	var size int
	for i := range runs {
		var out, errOut bytes.Buffer
		cmd := exec.CommandContext(ctx, bin, "inventory", "--list")
		cmd.Env = append(os.Environ(), "CONSUL_HTTP_ADDR="+agent.HTTPAddr(), "XDG_CONFIG_HOME="+filepath.Join(tmp, "config"))
		cmd.Stdout, cmd.Stderr = &out, &errOut
		start := time.Now()
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("running fleetdeck inventory --list: %w\n%s", err, errOut.Bytes())
		}
		times = append(times, time.Since(start))
		size = out.Len()
		if i == 0 {
			if n, err := countHosts(out.Bytes()); err != nil || n != want {
				return fmt.Errorf("fleetdeck inventory --list: %d hosts, want %d (%v)", n, want, err)
			}
		}
	}

	// The same in process, by stage, with the requests it makes.
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

	med := median(times)
	pmed := median(peerTimes)
	fmt.Printf("inventory --list, %d nodes (fleetsim.ScaleSpec), same Consul\n\n", nodes)
	fmt.Printf("| inventory | runs | median | min | max | HTTP requests | output |\n|---|---|---|---|---|---|---|\n")
	fmt.Printf("| fleetdeck inventory --list (real binary, end to end) | %d | %v | %v | %v | %d | %.1f MB |\n",
		runs, ms(med), ms(slices.Min(times)), ms(slices.Max(times)), reqs, float64(size)/1e6)
	fmt.Printf("| per-node requests, consul_io.py way (sequential) | %d | %v | %v | %v | %d | %.1f MB |\n",
		peerRuns, ms(pmed), ms(slices.Min(peerTimes)), ms(slices.Max(peerTimes)), peerReqs, float64(peerSize)/1e6)
	fmt.Printf("\nratio (per-node / fleetdeck, medians): %.1f×\n", float64(pmed)/float64(med))
	fmt.Printf("fleetdeck in process: fleet.Once %v (%d requests), BuildInventory %v, WriteList %v\n",
		ms(onceT), reqs, ms(buildT), ms(writeT))
	return nil
}

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
