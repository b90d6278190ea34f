// Command ansible measures fleetdeck's overhead over bare ansible-playbook:
// the same playbook on the same local-connection hosts, run alternately N
// times each way, medians compared. fleetdeck's side includes what a
// console run does: preparing the run directory, the --list-hosts preview,
// the event plugin, and reading every event and all output.
//
//	go run ./bench/ansible -hosts 10 -n 5
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"time"

	"github.com/fleetdeck/fleetdeck/provision"
)

const playbook = `- hosts: all
  gather_facts: false
  tasks:
    - name: ping
      ping:
    - name: command
      command: echo hello
    - name: debug
      debug:
        msg: "{{ inventory_hostname }}"
`

func main() {
	provision.SuperviseMain()
	hosts := flag.Int("hosts", 10, "local-connection hosts")
	n := flag.Int("n", 5, "runs of each kind")
	flag.Parse()
	if err := run(*hosts, *n); err != nil {
		fmt.Fprintln(os.Stderr, "bench/ansible:", err)
		os.Exit(1)
	}
}

func run(nhosts, n int) error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "fleetdeck-bench-ansible-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	pbDir := filepath.Join(dir, "pb")
	os.MkdirAll(pbDir, 0o755)
	if err := os.WriteFile(filepath.Join(pbDir, "bench.yml"), []byte(playbook), 0o644); err != nil {
		return err
	}
	names := make([]string, nhosts)
	hv := map[string]any{}
	for i := range names {
		names[i] = fmt.Sprintf("bench-%02d", i)
		hv[names[i]] = map[string]any{"ansible_connection": "local", "ansible_python_interpreter": "/usr/bin/python3"}
	}
	inv, _ := json.Marshal(map[string]any{"bench": map[string]any{"hosts": names}, "_meta": map[string]any{"hostvars": hv}})
	invFile := filepath.Join(dir, "inventory.json")
	os.WriteFile(invFile, inv, 0o600)
	// Bare: the same inventory as a static file script, default callback.
	script := filepath.Join(dir, "inv.sh")
	os.WriteFile(script, []byte("#!/bin/sh\nexec cat "+invFile+"\n"), 0o700)

	cat, err := provision.NewPlaybookCatalog(pbDir)
	if err != nil {
		return err
	}
	r, err := provision.NewRunner(provision.RunnerConfig{Catalog: cat, RunsDir: filepath.Join(dir, "runs")})
	if err != nil {
		return err
	}
	bare := func() (time.Duration, error) {
		start := time.Now()
		cmd := exec.CommandContext(ctx, r.AnsiblePlaybook(), "-i", script, filepath.Join(pbDir, "bench.yml"))
		cmd.Dir = pbDir
		cmd.Env = append(os.Environ(), "ANSIBLE_RETRY_FILES_ENABLED=false", "ANSIBLE_NOCOLOR=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return 0, fmt.Errorf("bare run: %v\n%s", err, out)
		}
		return time.Since(start), nil
	}
	fleet := func(preview bool) (time.Duration, int, error) {
		start := time.Now()
		spec := provision.RunSpec{Playbook: "bench", Inventory: inv, Limit: names}
		var plan *provision.RunPlan
		var err error
		if preview {
			plan, err = r.Preview(ctx, spec)
		} else {
			plan, err = r.Prepare(ctx, spec)
		}
		if err != nil {
			return 0, 0, err
		}
		run, err := r.Start(ctx, plan)
		if err != nil {
			return 0, 0, err
		}
		board := provision.NewRunState(plan.Hosts)
		events := 0
		for from := 0; ; {
			batch, next, err := run.Events(ctx, from)
			if err != nil {
				break
			}
			for _, ev := range batch {
				board.Apply(ev)
			}
			events += len(batch)
			from = next
		}
		res, err := run.Wait(ctx)
		if err != nil {
			return 0, 0, err
		}
		if res.End.Outcome != provision.OutcomeOK {
			return 0, 0, fmt.Errorf("fleetdeck run: %s", res.End.Outcome)
		}
		return time.Since(start), events, nil
	}
	var tb, tf, tp []time.Duration
	events := 0
	for i := 0; i < n; i++ {
		d, err := bare()
		if err != nil {
			return err
		}
		tb = append(tb, d)
		d, ev, err := fleet(false)
		if err != nil {
			return err
		}
		tf = append(tf, d)
		events = ev
		d, _, err = fleet(true)
		if err != nil {
			return err
		}
		tp = append(tp, d)
	}
	mb, mf, mp := median(tb), median(tf), median(tp)
	fmt.Printf("ansible-playbook overhead: %d local hosts, 3 tasks, %d runs each (alternating), %d events per run\n\n", nhosts, n, events)
	fmt.Printf("| what | median | ratio to bare |\n|---|---|---|\n")
	fmt.Printf("| bare ansible-playbook | %v | 1.00× |\n", mb.Round(time.Millisecond))
	fmt.Printf("| fleetdeck run (plugin, events, output capture) | %v | %.2f× |\n", mf.Round(time.Millisecond), float64(mf)/float64(mb))
	fmt.Printf("| fleetdeck preview (--list-hosts) + run | %v | %.2f× |\n", mp.Round(time.Millisecond), float64(mp)/float64(mb))
	return nil
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}
