package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/fleetdeck/fleetdeck/deploy"
	"github.com/fleetdeck/fleetdeck/internal/demoplaybooks"
	"github.com/fleetdeck/fleetdeck/roles"
)

// The benchmarks below measure `fleetdeck provisioner` end to end, with
// the same fixture as the tests (a real Consul server, real blank client
// agents, the real ansible-playbook, the built binary). They report their
// figures with b.ReportMetric and assert no time: the machines are shared.
// docs/benchmarks.md has the figures and the goals. As recorded there
// (about 13 minutes on 2 cores; BenchmarkBurst starts a fresh fixture per
// iteration, ~5 minutes for both sizes, so keep it at 1x):
//
//	go test -run '^$' -bench 'BenchmarkJoin$' -benchtime 3x -timeout 30m ./deploy/e2e/
//	go test -run '^$' -bench BenchmarkJoinBare -benchtime 3x -timeout 30m ./deploy/e2e/
//	go test -run '^$' -bench BenchmarkBurst -benchtime 1x -timeout 30m ./deploy/e2e/
//	go test -run '^$' -bench BenchmarkFailover -benchtime 2x -timeout 30m ./deploy/e2e/

// joins follows the catalog with a blocking query and notes when each node
// of a group first shows with its meta (to the millisecond; addAgent polls
// every 200 ms and returns a little later).
type joins struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

func (f *fixture) watchJoins(tb testing.TB, group string) *joins {
	tb.Helper()
	j := &joins{seen: map[string]time.Time{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		var index uint64
		for ctx.Err() == nil {
			q := (&api.QueryOptions{NodeMeta: map[string]string{"asg": group}, WaitIndex: index, WaitTime: 10 * time.Second}).WithContext(ctx)
			nodes, meta, err := f.api.Catalog().Nodes(q)
			if err != nil {
				if !sleep(ctx, 100*time.Millisecond) {
					return
				}
				continue
			}
			now := time.Now()
			j.mu.Lock()
			for _, n := range nodes {
				if _, ok := j.seen[n.Node]; !ok {
					j.seen[n.Node] = now
				}
			}
			j.mu.Unlock()
			index = meta.LastIndex
		}
	}()
	tb.Cleanup(func() {
		cancel()
		<-done
	})
	return j
}

// at is when node first showed in the catalog with its group.
func (j *joins) at(tb testing.TB, node string) time.Time {
	tb.Helper()
	var t time.Time
	waitFor(tb, 10*time.Second, node+" seen by the catalog watch", func() bool {
		j.mu.Lock()
		defer j.mu.Unlock()
		var ok bool
		t, ok = j.seen[node]
		return ok
	})
	return t
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// poll is waitFor at a finer grain (100 ms), for the end of a measured
// interval.
func poll(tb testing.TB, timeout time.Duration, what string, cond func() bool) time.Time {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return time.Now()
}

// launchedLine is the provisioner's log line of a launched decision: its
// time is when the run was started (after the preview), the decision's
// At when the pass that decided it began.
var launchedLine = regexp.MustCompile(`(?m)^time=(\S+) .*kind=launched stage=(\S+) run=\S+ nodes=(\S+)`)

// inBatch says whether a launched decision's batch holds node.
func inBatch(d deploy.Decision, node string) bool {
	return slices.ContainsFunc(d.Batch, func(it deploy.DueItem) bool { return it.Name == node })
}

// launchLogged is when the provisioner logged the launch of stage on node
// (zero: not yet).
func launchLogged(p *proc, stage, node string) time.Time {
	for _, m := range launchedLine.FindAllStringSubmatch(p.log.String(), -1) {
		if m[2] == stage && slices.Contains(strings.Split(m[3], ","), node) {
			t, err := time.Parse(time.RFC3339Nano, m[1])
			if err == nil {
				return t
			}
		}
	}
	return time.Time{}
}

// BenchmarkJoin measures, for one blank agent of group app joining while
// the provisioner leads, with the three-stage chain (base → @roles → web)
// and the given quiet_min: due-s from the node showing in the catalog
// with its meta to the due decision of stage base, launch-decided-s from
// the same moment to the launched decision of stage base (the At of
// the decision: the start of the pass that decided it), launch-started-s
// to the provisioner's log line of that launch (after the --list-hosts
// preview: the run is started), converged-s until the web stage's record
// has succeeded and the catalog shows fleetdeck-web on the node. Each
// iteration is a new agent, after the previous one converged.
func BenchmarkJoin(b *testing.B) {
	for _, quiet := range []string{"1s", "100ms"} {
		b.Run("quiet_min="+quiet, func(b *testing.B) {
			b.StopTimer()
			f := newFixture(b, strings.Replace(chainConfig, `quiet_min = "1s"`, `quiet_min = "`+quiet+`"`, 1))
			j := f.watchJoins(b, "app")
			p := f.start(b, "a", "--id", "a")
			waitFor(b, 30*time.Second, "a leader", func() bool { return f.status(b).Leader != nil })
			var dueTotal, decided, started, converged time.Duration
			for i := 0; i < b.N; i++ {
				name := fmt.Sprintf("app-%02d", i+1)
				b.StartTimer()
				f.addAgent(b, name)
				t0 := j.at(b, name)
				var at time.Time
				waitFor(b, 2*time.Minute, "base launched on "+name, func() bool {
					for _, d := range f.status(b).Decisions {
						if d.Kind == deploy.KindLaunched && d.Stage == "base" && inBatch(d, name) {
							at = d.At
							return true
						}
					}
					return false
				})
				end := poll(b, 3*time.Minute, name+" converged", func() bool {
					return f.records(b, name)["web"].Outcome == deploy.Succeeded && slices.Contains(f.services(b, name), "fleetdeck-web")
				})
				b.StopTimer()
				// The node's decisions, as seconds after the join: where
				// the time goes.
				var due time.Time
				var steps []string
				for _, d := range f.status(b).Decisions {
					if d.At.Before(t0.Add(-time.Second)) || !(d.Node == "dc1/"+name || inBatch(d, name) || d.Kind == deploy.KindBatched) {
						continue
					}
					if d.Kind == deploy.KindDue && d.Stage == "base" && due.IsZero() {
						due = d.At
					}
					steps = append(steps, fmt.Sprintf("%s %s %.2f", d.Kind, d.Stage, d.At.Sub(t0).Seconds()))
				}
				dueTotal += due.Sub(t0)
				logged := launchLogged(p, "base", name)
				if logged.IsZero() {
					b.Fatalf("no launched line for base on %s:\n%s", name, p.log.String())
				}
				decided += at.Sub(t0)
				started += logged.Sub(t0)
				converged += end.Sub(t0)
				b.Logf("%s: launch decided %.2fs, started %.2fs, converged %.2fs after the join; decisions (s after the join): %s",
					name, at.Sub(t0).Seconds(), logged.Sub(t0).Seconds(), end.Sub(t0).Seconds(), strings.Join(steps, ", "))
			}
			n := float64(b.N)
			b.ReportMetric(dueTotal.Seconds()/n, "due-s/op")
			b.ReportMetric(decided.Seconds()/n, "launch-decided-s/op")
			b.ReportMetric(started.Seconds()/n, "launch-started-s/op")
			b.ReportMetric(converged.Seconds()/n, "converged-s/op")
		})
	}
}

// BenchmarkJoinBare is BenchmarkJoin's chain by hand: a blank agent of the
// same kind joins (no provisioner runs), then bare ansible-playbook runs
// base.yml, the roles apply playbook with the host variables the roles
// applier passes for web (roles.HostVars, every string unsafe, as the run
// manager writes them; the agent's host_vars sit beside the playbooks as
// for the provisioner), then web.yml, each on the one host with the
// config's [ansible] env, then waits until the catalog shows
// fleetdeck-web. converged-s is from the node showing in the catalog with
// its meta; playbooks-s is the three playbooks' wall time.
func BenchmarkJoinBare(b *testing.B) {
	b.StopTimer()
	f := newFixture(b, chainConfig)
	j := f.watchJoins(b, "app")
	cat, err := roles.Parse(demoplaybooks.Roles(f.port), demoplaybooks.RolesFile)
	if err != nil {
		b.Fatal(err)
	}
	web, ok := cat.Lookup("web")
	if !ok {
		b.Fatal("no web role in the demo catalog")
	}
	var converged, playbooks time.Duration
	for i := 0; i < b.N; i++ {
		name := fmt.Sprintf("app-%02d", i+1)
		b.StartTimer()
		f.addAgent(b, name)
		t0 := j.at(b, name)
		n, _, err := f.api.Catalog().Node(name, nil)
		if err != nil || n == nil {
			b.Fatalf("reading %s: %v", name, err)
		}
		hv, err := roles.HostVars(roles.ApplyNode{Address: n.Node.Address, Roles: []*roles.Role{&web}, Maintenance: &roles.Maintenance{}})
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		f.bare(b, "base.yml", name, nil)
		f.bare(b, roles.PlaybookFile, name, hv)
		f.bare(b, "web.yml", name, nil)
		ran := time.Since(start)
		end := poll(b, time.Minute, name+" showing fleetdeck-web", func() bool {
			return slices.Contains(f.services(b, name), "fleetdeck-web")
		})
		b.StopTimer()
		if f.runs(name, "base") != 1 || f.runs(name, "web") != 1 {
			b.Fatalf("%s: base ran %d times, web %d", name, f.runs(name, "base"), f.runs(name, "web"))
		}
		converged += end.Sub(t0)
		playbooks += ran
		b.Logf("%s: playbooks %.2fs, converged %.2fs after the join", name, ran.Seconds(), end.Sub(t0).Seconds())
	}
	b.ReportMetric(converged.Seconds()/float64(b.N), "converged-s/op")
	b.ReportMetric(playbooks.Seconds()/float64(b.N), "playbooks-s/op")
}

// bare runs playbook (a file of the fixture's playbook directory) on host
// with bare ansible-playbook, through an inventory script that prints the
// host with vars (every string wrapped unsafe), in an empty directory, with
// the fixture config's [ansible] env.
func (f *fixture) bare(tb testing.TB, playbook, host string, vars map[string]any) {
	tb.Helper()
	dir := tb.TempDir()
	hostvars := map[string]any{}
	if vars != nil {
		hostvars[host] = unsafeVars(vars)
	}
	doc, err := json.Marshal(map[string]any{"nodes": map[string]any{"hosts": []string{host}}, "_meta": map[string]any{"hostvars": hostvars}})
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "inventory.json"), doc, 0o600); err != nil {
		tb.Fatal(err)
	}
	inv := filepath.Join(dir, "inventory.sh")
	if err := os.WriteFile(inv, []byte("#!/bin/sh\nexec cat -- \"${0%/*}/inventory.json\"\n"), 0o700); err != nil {
		tb.Fatal(err)
	}
	tmp := filepath.Join(dir, "tmp")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ansible-playbook", "-i", inv, filepath.Join(f.pbDir, playbook))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "ANSIBLE_NOCOLOR=1", "ANSIBLE_HOST_PATTERN_MISMATCH=error",
		"ANSIBLE_LOCAL_TEMP="+tmp, "ANSIBLE_REMOTE_TEMP="+tmp, "ANSIBLE_RETRY_FILES_ENABLED=0", "TMPDIR="+tmp,
		// The fixture config's [ansible] env.
		"ANSIBLE_TRANSPORT=local", "ANSIBLE_PYTHON_INTERPRETER=auto_silent", "ANSIBLE_FORKS=25")
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("ansible-playbook %s: %v\n%s", playbook, err, out)
	}
}

// unsafeVars wraps every string of v as {"__ansible_unsafe": s}, as the run
// manager writes per-host variables into a run's inventory.
func unsafeVars(v any) any {
	switch x := v.(type) {
	case string:
		return map[string]any{"__ansible_unsafe": x}
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = unsafeVars(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = unsafeVars(e)
		}
		return out
	}
	return v
}

// counter is a reverse proxy in front of Consul's HTTP API that counts the
// requests it forwards, by method and path.
type counter struct {
	mu    sync.Mutex
	total int
	by    map[string]int
	addr  string
}

func countingProxy(tb testing.TB, upstream string) *counter {
	tb.Helper()
	u, err := url.Parse("http://" + upstream)
	if err != nil {
		tb.Fatal(err)
	}
	c := &counter{by: map[string]int{}}
	tr := &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: time.Minute}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.Transport = tr
	// The provisioner's blocking queries end with it: not an error here.
	rp.ErrorLog = log.New(io.Discard, "", 0)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	c.addr = ln.Addr().String()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.total++
		c.by[r.Method+" "+pathClass(r.URL.Path)]++
		c.mu.Unlock()
		rp.ServeHTTP(w, r)
	})}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	tb.Cleanup(func() {
		_ = srv.Close()
		<-done
		tr.CloseIdleConnections()
	})
	return c
}

// pathClass shortens per-node and per-key paths so the counts group by
// endpoint (…/records/dc1/<node>/… counts as one).
func pathClass(p string) string {
	for _, pre := range []string{"/v1/kv/" + deploy.DefaultPrefix + "records/", "/v1/catalog/node/", "/v1/health/node/",
		"/v1/session/renew/", "/v1/session/destroy/", "/v1/session/info/", "/v1/health/service/", "/v1/catalog/service/"} {
		if strings.HasPrefix(p, pre) {
			return pre + "…"
		}
	}
	return p
}

func (c *counter) snapshot() (int, map[string]int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.total, maps.Clone(c.by)
}

// BenchmarkBurst registers nodes catalog nodes of group burst (no agent:
// NodeMeta asg=burst) at an even pace over 60 s while the provisioner
// leads with one stage, base, and the default guards (quiet_min 5s,
// quiet_max 30s, batch_max 50, max_parallel_runs 4, session_ttl 15s). The
// provisioner talks to Consul through a counting reverse proxy (the
// config's [consul] address; the benchmark's own reads go around it).
// It reports runs launched, applied-s from the first registration until
// every node has its record, and steady-reqs/min: the provisioner's
// requests over the 60 s after everything is applied (and 5 s of
// settling). The goal is a steady rate that does not grow with nodes.
func BenchmarkBurst(b *testing.B) {
	for _, nodes := range []int{10, 1000} {
		b.Run(fmt.Sprintf("nodes=%d", nodes), func(b *testing.B) {
			var runs, applied, afterLast, reqs float64
			for i := 0; i < b.N; i++ {
				r := burst(b, nodes, 60*time.Second, 60*time.Second)
				runs += float64(r.runs)
				applied += r.applied.Seconds()
				afterLast += r.afterLast.Seconds()
				reqs += r.perMinute
			}
			n := float64(b.N)
			b.ReportMetric(runs/n, "runs/op")
			b.ReportMetric(applied/n, "applied-s/op")
			b.ReportMetric(afterLast/n, "applied-after-last-s/op")
			b.ReportMetric(reqs/n, "steady-reqs/min")
		})
	}
}

type burstResult struct {
	runs               int
	applied, afterLast time.Duration
	perMinute          float64
}

func burst(b *testing.B, nodes int, spread, steady time.Duration) burstResult {
	b.Helper()
	b.StopTimer()
	f := newFixture(b, `
[provisioner]
[[provisioner.stage]]
name = "base"
select = "group:burst"
playbook = "base.yml"
`)
	cp := countingProxy(b, f.server.HTTPAddr())
	raw, err := os.ReadFile(f.cfg)
	if err != nil {
		b.Fatal(err)
	}
	direct := f.cfg
	f.cfg = filepath.Join(f.dir, "config-proxied.toml")
	proxied := strings.Replace(string(raw), "http://"+f.server.HTTPAddr(), "http://"+cp.addr, 1)
	if proxied == string(raw) {
		b.Fatal("the config's [consul] address is not the server's")
	}
	if err := os.WriteFile(f.cfg, []byte(proxied), 0o600); err != nil {
		b.Fatal(err)
	}
	p := f.start(b, "a", "--id", "a")
	f.cfg = direct // status and the other commands go around the proxy
	waitFor(b, 30*time.Second, "a leader", func() bool { return f.status(b).Leader != nil })

	b.StartTimer()
	start := time.Now()
	for i := range nodes {
		time.Sleep(time.Until(start.Add(spread * time.Duration(i) / time.Duration(nodes))))
		name := fmt.Sprintf("burst-%04d", i)
		_, err := f.api.Catalog().Register(&api.CatalogRegistration{Node: name, Address: fmt.Sprintf("127.0.%d.%d", 1+i/250, 1+i%250),
			NodeMeta: map[string]string{"asg": "burst", "instance-id": "i-" + name}}, nil)
		if err != nil {
			b.Fatal(err)
		}
	}
	last := time.Now()
	end := poll(b, 10*time.Minute, "every burst node applied", func() bool {
		keys, _, err := f.api.KV().Keys(deploy.DefaultPrefix+"records/", "", nil)
		return err == nil && len(keys) == nodes
	})
	b.StopTimer()

	pairs, _, err := f.api.KV().List(deploy.DefaultPrefix+"records/", nil)
	if err != nil {
		b.Fatal(err)
	}
	ok := 0
	for _, pr := range pairs {
		var r deploy.Record
		if json.Unmarshal(pr.Value, &r) == nil && r.Outcome == deploy.Succeeded {
			ok++
		}
	}
	if ok != nodes {
		b.Fatalf("%d of %d records succeeded", ok, nodes)
	}
	var r burstResult
	var batch []int
	for _, m := range launchedLine.FindAllStringSubmatch(p.log.String(), -1) {
		r.runs++
		batch = append(batch, len(strings.Split(m[3], ",")))
	}
	r.applied, r.afterLast = end.Sub(start), end.Sub(last)
	joining, _ := cp.snapshot()

	time.Sleep(5 * time.Second)
	n0, by0 := cp.snapshot()
	time.Sleep(steady)
	n1, by1 := cp.snapshot()
	r.perMinute = float64(n1-n0) / steady.Minutes()
	var lines []string
	for _, k := range slices.Sorted(maps.Keys(by1)) {
		if d := by1[k] - by0[k]; d > 0 {
			lines = append(lines, fmt.Sprintf("  %5d %s", d, k))
		}
	}
	b.Logf("%d nodes over %s: %d runs (batch sizes %v), all applied %.1fs after the first registration, %.1fs after the last; %d requests until then; steady state: %.1f requests/min:\n%s",
		nodes, spread, r.runs, batch, r.applied.Seconds(), r.afterLast.Seconds(), joining, r.perMinute, strings.Join(lines, "\n"))
	return r
}

// BenchmarkFailover measures the time from a signal to the leader until
// the other instance holds the leader lock (the key the status's Leader
// reads, polled every 50 ms), with two instances running: SIGKILL (the
// session must expire: Consul invalidates a TTL session 2×TTL after its
// last renewal, then refuses the key for the lock-delay, 15 s whatever the
// TTL, then the standby's next try), and SIGTERM (the leader resigns: the
// key is released, no lock-delay). Each iteration then starts a new
// standby, so two instances run again.
func BenchmarkFailover(b *testing.B) {
	for _, c := range []struct {
		sig syscall.Signal
		ttl string
	}{{syscall.SIGKILL, "10s"}, {syscall.SIGKILL, "15s"}, {syscall.SIGTERM, "10s"}} {
		name := map[syscall.Signal]string{syscall.SIGKILL: "SIGKILL", syscall.SIGTERM: "SIGTERM"}[c.sig]
		b.Run(name+"/session_ttl="+c.ttl, func(b *testing.B) {
			b.StopTimer()
			f := newFixture(b, strings.Replace(chainConfig, `session_ttl = "10s"`, `session_ttl = "`+c.ttl+`"`, 1))
			procs := map[string]*proc{"a": f.start(b, "a", "--id", "a"), "b": f.start(b, "b", "--id", "b")}
			var total time.Duration
			next := 0
			for i := 0; i < b.N; i++ {
				leader := ""
				waitFor(b, 60*time.Second, "one leader", func() bool {
					leader = leaderID(b, f)
					return leader != ""
				})
				var standby string
				for id := range procs {
					if id != leader {
						standby = id
					}
				}
				waitFor(b, 30*time.Second, "the standby naming the leader", func() bool {
					return regexp.MustCompile(`msg=standby .*leader=` + leader + `\b`).MatchString(procs[standby].log.String())
				})
				b.StartTimer()
				if err := procs[leader].cmd.Process.Signal(c.sig); err != nil {
					b.Fatal(err)
				}
				sent := time.Now()
				var took time.Duration
				deadline := sent.Add(2 * time.Minute)
				for {
					if leaderID(b, f) == standby {
						took = time.Since(sent)
						break
					}
					if time.Now().After(deadline) {
						b.Fatalf("%s not leading 2 minutes after %s to %s", standby, name, leader)
					}
					time.Sleep(50 * time.Millisecond)
				}
				b.StopTimer()
				total += took
				old := procs[leader]
				select {
				case err := <-old.done:
					old.done <- err // for the cleanup
					if c.sig == syscall.SIGTERM && err != nil {
						b.Fatalf("exit after SIGTERM: %v", err)
					}
				case <-time.After(60 * time.Second):
					b.Fatalf("%s still running 60 s after %s", leader, name)
				}
				b.Logf("%s → %s after %s to the leader: %.2fs", leader, standby, name, took.Seconds())
				delete(procs, leader)
				next++
				id := fmt.Sprintf("n%d", next)
				procs[id] = f.start(b, id, "--id", id)
			}
			b.ReportMetric(total.Seconds()/float64(b.N), "failover-s/op")
		})
	}
}

// leaderID is the ID in the leader key while a session holds it ("" when
// nobody leads).
func leaderID(tb testing.TB, f *fixture) string {
	tb.Helper()
	kv, _, err := f.api.KV().Get(deploy.LeaderKey(""), nil)
	if err != nil {
		tb.Fatal(err)
	}
	if kv == nil || kv.Session == "" {
		return ""
	}
	var h deploy.Holder
	if err := json.Unmarshal(kv.Value, &h); err != nil {
		tb.Fatalf("leader key: %v", err)
	}
	return h.ID
}
