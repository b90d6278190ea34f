// Command latency measures how fast fleetdeck's watcher turns a check
// change in a real Consul into a new snapshot, side by side with
// `consul watch -type=checks` reacting to the same changes, plus the HTTP
// requests the watcher makes per change and its memory with the fleet
// loaded. It starts its own Consul agent and loads the fleet itself; see
// docs/benchmarks.md.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/fleetdeck/fleetdeck/bench/internal/httpcount"
	"github.com/fleetdeck/fleetdeck/fleet"
	"github.com/fleetdeck/fleetdeck/internal/consulagent"
	"github.com/fleetdeck/fleetdeck/internal/fleetsim"
)

func main() {
	nodes := flag.Int("nodes", 10000, "nodes to register")
	services := flag.Int("services", 50, "distinct services")
	perNode := flag.Int("services-per-node", 5, "services per node")
	checks := flag.Int("checks", 3, "checks per node")
	changes := flag.Int("changes", 40, "check changes to time")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *nodes, *services, *perNode, *checks, *changes); err != nil {
		fmt.Fprintln(os.Stderr, "latency:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, nodes, services, perNode, checks, changes int) error {
	bin, err := consulagent.Binary(ctx, os.Stderr)
	if err != nil {
		return err
	}
	agent, err := consulagent.Start(ctx, consulagent.Options{Binary: bin})
	if err != nil {
		return err
	}
	defer agent.Stop()
	admin, err := agent.Client()
	if err != nil {
		return err
	}
	t0 := time.Now()
	spec := fleetsim.ScaleSpec(nodes)
	spec.Services, spec.ServicesPerNode, spec.ChecksPerNode = services, perNode, checks
	if err := fleetsim.Load(ctx, admin, spec); err != nil {
		return fmt.Errorf("loading the fleet: %w", err)
	}
	loadTime := time.Since(t0)
	fmt.Fprintf(os.Stderr, "loaded %d nodes in %v\n", nodes, loadTime)

	counter := httpcount.New()
	cfg := api.DefaultConfig()
	cfg.Address = agent.HTTPAddr()
	cfg.HttpClient = &http.Client{Transport: counter}
	client, err := api.NewClient(cfg)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := fleet.NewWatcher(client, fleet.Config{})
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(wctx) }()
	defer func() { cancel(); <-done }()

	t0 = time.Now()
	snap, err := waitSnap(ctx, w, 5*time.Minute, func(s *fleet.Snapshot) bool {
		return len(s.Nodes) >= nodes && s.Complete()
	})
	if err != nil {
		return fmt.Errorf("initial snapshot: %w", err)
	}
	initial := time.Since(t0)
	fmt.Fprintf(os.Stderr, "first complete snapshot after %v\n", initial)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)

	// The peer: consul watch runs its handler with every new answer on
	// stdin. The handler says "fired" before reading it, so the peer is
	// timed at the moment it reacts, not after it has read 12 MB.
	peer := exec.CommandContext(wctx, bin, "watch", "-type=checks", "-shell=false", "-http-addr="+agent.HTTPAddr(),
		"/bin/sh", "-c", "echo fired; exec cat >/dev/null")
	out, err := peer.StdoutPipe()
	if err != nil {
		return err
	}
	if err := peer.Start(); err != nil {
		return fmt.Errorf("starting consul watch: %w", err)
	}
	defer func() { _ = peer.Process.Kill(); _ = peer.Wait() }()
	docs := make(chan time.Time, 1024)
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 64<<20)
		for sc.Scan() {
			if sc.Text() == "fired" {
				docs <- time.Now()
			}
		}
		close(docs)
	}()
	fmt.Fprintln(os.Stderr, "waiting for consul watch's first answer")
	select {
	case <-docs:
	case <-time.After(2 * time.Minute):
		return fmt.Errorf("consul watch printed nothing")
	}

	var ours, theirs []time.Duration
	var reqs []int64
	for i := range changes {
		n := snap.Nodes[(i*7919)%len(snap.Nodes)]
		if len(n.Checks) == 0 {
			continue
		}
		ck := n.Checks[0]
		status := api.HealthCritical
		want := fleet.HealthCritical
		drain(docs)
		before := counter.Count()
		start := time.Now()
		reg := &api.CatalogRegistration{Node: n.Name, Address: n.Address, SkipNodeUpdate: true,
			Check: &api.AgentCheck{Node: n.Name, CheckID: ck.ID, Name: ck.Name, ServiceID: ck.ServiceID, Status: status, Output: fmt.Sprint("bench ", i)}}
		if _, err := admin.Catalog().Register(reg, nil); err != nil {
			return fmt.Errorf("changing a check: %w", err)
		}
		s, err := waitSnap(ctx, w, 10*time.Second, func(s *fleet.Snapshot) bool {
			x := s.Node(n.Datacenter, n.Name)
			return x != nil && x.Health == want
		})
		if err != nil {
			return fmt.Errorf("change %d not seen: %w", i, err)
		}
		ours = append(ours, time.Since(start))
		fmt.Fprintf(os.Stderr, "change %d: fleetdeck %v\n", i, ours[len(ours)-1])
		select {
		case at := <-docs:
			theirs = append(theirs, at.Sub(start))
		case <-time.After(30 * time.Second):
			return fmt.Errorf("consul watch missed change %d", i)
		}
		// Let trailing requests land, then count.
		time.Sleep(500 * time.Millisecond)
		reqs = append(reqs, counter.Count()-before)
		// Put it back (not timed) so the fleet stays mostly healthy.
		reg.Check.Status = api.HealthPassing
		if _, err := admin.Catalog().Register(reg, nil); err != nil {
			return fmt.Errorf("restoring a check: %w", err)
		}
		if _, err := waitSnap(ctx, w, 10*time.Second, func(x *fleet.Snapshot) bool {
			return x.Node(n.Datacenter, n.Name).Health == fleet.HealthPassing
		}); err != nil {
			return err
		}
		<-docs
		snap = s
	}

	p := func(xs []time.Duration, q float64) time.Duration {
		ys := slices.Clone(xs)
		slices.Sort(ys)
		return ys[min(len(ys)-1, int(q*float64(len(ys))))]
	}
	slices.Sort(reqs)
	fmt.Printf("fleet: %d nodes, %d services (%d per node), %d checks per node; load %v; first complete snapshot %v\n",
		nodes, services, perNode, checks, loadTime.Round(time.Millisecond), initial.Round(time.Millisecond))
	fmt.Printf("%-36s %12s %12s\n", "change → visible ("+fmt.Sprint(len(ours))+" changes)", "p50", "p99")
	fmt.Printf("%-36s %12v %12v\n", "fleetdeck watcher (snapshot)", p(ours, .5).Round(time.Microsecond), p(ours, .99).Round(time.Microsecond))
	fmt.Printf("%-36s %12v %12v\n", "consul watch -type=checks (output)", p(theirs, .5).Round(time.Microsecond), p(theirs, .99).Round(time.Microsecond))
	fmt.Printf("%-36s %12.2f %12.2f\n", "ratio fleetdeck / consul watch", float64(p(ours, .5))/float64(p(theirs, .5)), float64(p(ours, .99))/float64(p(theirs, .99)))
	fmt.Printf("HTTP requests per check change (median, max): %d, %d\n", reqs[len(reqs)/2], reqs[len(reqs)-1])
	fmt.Printf("watcher heap after GC with the fleet loaded: %.1f MB in use (HeapInuse), %s\n",
		float64(ms.HeapInuse)/1e6, strings.TrimSpace(vmRSS()))
	return nil
}

// waitSnap waits until cond holds for the watcher's snapshot.
func waitSnap(ctx context.Context, f fleet.Feed, timeout time.Duration, cond func(*fleet.Snapshot) bool) (*fleet.Snapshot, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	s := f.Current()
	for !cond(s) {
		var err error
		if s, err = f.Next(ctx, s.Version); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func drain(c <-chan time.Time) {
	for {
		select {
		case <-c:
		default:
			return
		}
	}
}

// vmRSS reports this process's resident set (bench process: watcher plus
// the loader's leftovers, so an upper bound for the watcher).
func vmRSS() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			return "process " + strings.Join(strings.Fields(l), " ")
		}
	}
	return ""
}
