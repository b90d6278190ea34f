// Command coldstart measures how fast the real fleetdeck console puts a
// fleet on screen, from process start, side by side with its peers on the
// same Consul in the same run:
//
//   - first rows on screen vs `consul catalog nodes -detailed` listing
//     every node (both from process start);
//   - roles and health complete on screen (the header stops saying
//     "loading roles, health") and everything complete (passing checks'
//     details too) vs one fetch of /v1/internal/ui/nodes, the Consul UI's
//     whole-fleet read (curl, from process start).
//
// It starts its own Consul agent, loads the fleet (the benchmark shape, or
// the 1-service shape with -shape one), builds fleetdeck, and alternates
// the three measurements. See docs/benchmarks.md.
package main

import (
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
	"strings"
	"time"

	"github.com/fleetdeck/fleetdeck/bench/internal/ptyterm"
	"github.com/fleetdeck/fleetdeck/internal/consulagent"
	"github.com/fleetdeck/fleetdeck/internal/fleetsim"
)

func main() {
	nodes := flag.Int("nodes", 10000, "nodes to register")
	shape := flag.String("shape", "bench", `"bench" (50 services, 5 a node, 3 checks) or "one" (1 service, 2 checks a node)`)
	runs := flag.Int("runs", 5, "runs of each measurement")
	bin := flag.String("bin", "", "fleetdeck binary (default: build ./cmd/fleetdeck)")
	serve := flag.Bool("serve", false, "load the fleet, print its Consul address and wait (for profiling by hand)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *nodes, *shape, *runs, *bin, *serve); err != nil {
		fmt.Fprintln(os.Stderr, "coldstart:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, nodes int, shape string, runs int, bin string, serve bool) error {
	consul, err := consulagent.Binary(ctx, os.Stderr)
	if err != nil {
		return err
	}
	curl, err := exec.LookPath("curl")
	if err != nil {
		return fmt.Errorf("curl is needed for the Consul UI's fetch: %w", err)
	}
	tmp, err := os.MkdirTemp("", "fleetdeck-coldstart-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if bin == "" {
		bin = filepath.Join(tmp, "bin", "fleetdeck")
		build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/fleetdeck")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("building fleetdeck: %w", err)
		}
	}
	// Consul keeps a blocking query (and its connection slot) for its whole
	// wait even after the client has gone: the consoles started one after
	// the other here would reach the default limit of 200 per address.
	// A production-mode server, as a real fleet's: a dev agent pretty-prints
	// every answer.
	// Consul's own GC settings, not the harness's (tuned for bulk loads).
	agent, err := consulagent.Start(ctx, consulagent.Options{Binary: consul, Production: true,
		ExtraHCL: `limits { http_max_conns_per_client = 2000 }`, Env: []string{"GOGC=100", "GOMEMLIMIT=off"}})
	if err != nil {
		return err
	}
	defer agent.Stop()
	admin, err := agent.Client()
	if err != nil {
		return err
	}
	spec := fleetsim.ScaleSpec(nodes)
	if shape == "one" {
		spec.Services, spec.ServicesPerNode, spec.ChecksPerNode = 1, 1, 2
	}
	t0 := time.Now()
	if err := fleetsim.Load(ctx, admin, spec); err != nil {
		return fmt.Errorf("loading the fleet: %w", err)
	}
	fmt.Fprintf(os.Stderr, "loaded %d nodes (%s shape) in %v\n", nodes, shape, time.Since(t0).Round(time.Millisecond))
	if serve {
		fmt.Printf("CONSUL_HTTP_ADDR=%s\n", agent.HTTPAddr())
		<-ctx.Done()
		return nil
	}
	fleet, err := spec.Fleet()
	if err != nil {
		return err
	}
	first := fleet[0].Name
	for _, n := range fleet {
		first = min(first, n.Name)
	}
	addr := agent.HTTPAddr()

	var cli, ui, uiParse, rows, roles, all []time.Duration
	for i := range runs {
		// Alternate the order so drift in the machine's load spreads evenly.
		steps := []func() error{
			func() error {
				d, err := timeCommand(ctx, consul, "catalog", "nodes", "-detailed", "-http-addr="+addr)
				cli = append(cli, d)
				return err
			},
			func() error {
				d, err := timeCommand(ctx, curl, "-sf", "-o", "/dev/null", "http://"+addr+"/v1/internal/ui/nodes")
				ui = append(ui, d)
				return err
			},
			func() error {
				d, err := timeFetchParse(ctx, "http://"+addr+"/v1/internal/ui/nodes")
				uiParse = append(uiParse, d)
				return err
			},
			func() error {
				r, ro, a, err := timeConsole(bin, addr, filepath.Join(tmp, "xdg"), first)
				rows, roles, all = append(rows, r), append(roles, ro), append(all, a)
				return err
			},
		}
		if i%2 == 1 {
			slices.Reverse(steps)
		}
		for _, s := range steps {
			if err := s(); err != nil {
				return err
			}
		}
		fmt.Fprintf(os.Stderr, "run %d: cli %v, ui/nodes %v (fetch+parse %v), fleetdeck rows %v roles+health %v all %v\n", i+1,
			ms(cli[i]), ms(ui[i]), ms(uiParse[i]), ms(rows[i]), ms(roles[i]), ms(all[i]))
		time.Sleep(11 * time.Second) // let the last console's blocking queries end in Consul
	}
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Printf("# %s, %d nodes, %s shape, %d runs, load %s\n", time.Now().UTC().Format(time.DateTime), nodes, shape, runs, strings.Join(strings.Fields(string(load))[:3], " "))
	fmt.Printf("| measurement (from process start) | median | min–max | ratio to peer (median) |\n|---|---|---|---|\n")
	row := func(name string, ds []time.Duration, peer []time.Duration) {
		r := ""
		if peer != nil {
			r = fmt.Sprintf("%.2f×", float64(median(ds))/float64(median(peer)))
		}
		fmt.Printf("| %s | %s | %s–%s | %s |\n", name, ms(median(ds)), ms(slices.Min(ds)), ms(slices.Max(ds)), r)
	}
	row("`consul catalog nodes -detailed` (all nodes listed, exit)", cli, nil)
	row("fleetdeck: first rows on screen", rows, cli)
	row("`curl /v1/internal/ui/nodes` (the Consul UI's whole-fleet fetch)", ui, nil)
	row("fleetdeck: roles and health complete on screen", roles, ui)
	row("fleetdeck: everything, passing checks' details too", all, ui)
	row("fetch and parse /v1/internal/ui/nodes (the UI's request and JSON.parse; here Go, generic values)", uiParse, nil)
	row("fleetdeck: roles and health complete, vs fetch and parse", roles, uiParse)
	return nil
}

// timeFetchParse times what the Consul UI does with its whole-fleet read:
// the request (plain, as a browser on the same machine gets it) and
// parsing the answer into generic values, as JSON.parse does.
func timeFetchParse(ctx context.Context, url string) (time.Duration, error) {
	tr := &http.Transport{DisableCompression: true}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	var v []any
	if err := json.Unmarshal(body, &v); err != nil {
		return 0, fmt.Errorf("parsing %s: %w", url, err)
	}
	return time.Since(start), nil
}

// timeCommand runs a command to the end and returns how long it took.
func timeCommand(ctx context.Context, name string, args ...string) (time.Duration, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	start := time.Now()
	out, err := cmd.Output()
	d := time.Since(start)
	if err != nil {
		return d, fmt.Errorf("%s: %w", name, err)
	}
	if len(out) == 0 && !strings.HasSuffix(name, "curl") {
		return d, fmt.Errorf("%s printed nothing", name)
	}
	return d, nil
}

// timeConsole starts the console on a 160×45 pseudo-terminal and times
// the first row of nodes (the alphabetically first node's name on screen),
// roles and health complete (no "loading" on the connection line, health
// counted) and everything (no "loading" at all).
func timeConsole(bin, addr, tmp, first string) (rows, roles, all time.Duration, err error) {
	// A short wait: Consul keeps a blocking query (and the answer it
	// computed) for its whole wait after the client has gone, and the next
	// run should not pay for this one's. It does not change a cold start.
	cmd := exec.Command(bin, "--wait", "10s")
	cmd.Env = append(os.Environ(), "CONSUL_HTTP_ADDR="+addr, "CONSUL_HTTP_TOKEN=", "CONSUL_HTTP_TOKEN_FILE=",
		"XDG_CONFIG_HOME="+tmp, "XDG_STATE_HOME="+tmp, "XDG_CACHE_HOME="+tmp, "TERM=xterm-256color")
	start := time.Now()
	term, err := ptyterm.Start(cmd, 160, 45)
	if err != nil {
		return 0, 0, 0, err
	}
	defer term.Close()
	deadline := start.Add(2 * time.Minute)
	at, err := term.WaitFor(deadline, func(s string) bool { return strings.Contains(s, first) })
	if err != nil {
		return 0, 0, 0, fmt.Errorf("first rows: %w", err)
	}
	rows = at.Sub(start)
	at, err = term.WaitFor(deadline, func(s string) bool {
		return strings.Contains(s, "passing ") && !strings.Contains(s, "loading roles") && !strings.Contains(s, "health loading") &&
			!strings.Contains(s, "loading health")
	})
	if err != nil {
		return 0, 0, 0, fmt.Errorf("roles and health: %w", err)
	}
	roles = at.Sub(start)
	at, err = term.WaitFor(deadline, func(s string) bool { return strings.Contains(s, "passing ") && !strings.Contains(s, "loading") })
	if err != nil {
		return 0, 0, 0, fmt.Errorf("everything: %w", err)
	}
	all = at.Sub(start)
	_ = term.Type("q")
	return rows, roles, all, nil
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func ms(d time.Duration) string { return fmt.Sprintf("%d ms", d.Milliseconds()) }
