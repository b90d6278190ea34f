package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/fleetdeck/fleetdeck/internal/consulagent"
	"github.com/fleetdeck/fleetdeck/internal/demoplaybooks"
	"github.com/fleetdeck/fleetdeck/internal/fleetsim"
)

// The demo's deployment server: `fleetdeck provisioner` runs as a child
// of the demo with the demo's config, whose [provisioner] has the issue's
// three stages over the group scale-asg; a simulated autoscaling policy
// starts a blank Consul client agent of that group now and then (scale-01,
// …), which the provisioner takes through base → roles (the group's
// default, web) → web to converged. scale-02 carries the node meta
// fleetdeck_demo_fail, on which the demo playbooks fail: its base stage
// fails twice and it is held, visibly in :provisioner, until an operator
// releases it (it fails again: the meta stays).

// demoScaleGroup is the autoscaling group of the demo's blank agents.
const demoScaleGroup = "scale-asg"

// Simulated autoscaling: the first blank agent after demoScaleFirst, one
// more every demoScaleEvery, at most demoScaleMax.
const (
	demoScaleFirst = 20 * time.Second
	demoScaleEvery = 60 * time.Second
	demoScaleMax   = 3
	// demoScaleFailing is the blank agent the demo playbooks fail on
	// (from 1).
	demoScaleFailing = 2
)

// demoProvisionerTOML is the demo config's [provisioner]: short quiet
// periods and backoffs so that a new server converges within a minute and
// the failing one is held within one.
const demoProvisionerTOML = `
# The deployment server (` + "`fleetdeck provisioner`" + `, started by the demo): blank
# agents of group scale-asg go through base, roles (their group's default
# roles) and web.
[provisioner]
quiet_min = "2s"
quiet_max = "10s"
max_attempts = 2
backoff_base = "5s"
backoff_max = "10s"
session_ttl = "10s"
grace = "10s"

[provisioner.defaults]
scale-asg = ["web"]

[[provisioner.stage]]
name = "base"
select = "group:scale-asg"
playbook = "base.yml"

[[provisioner.stage]]
name = "roles"
playbook = "@roles"
after = ["base"]

[[provisioner.stage]]
name = "web"
select = "group:scale-asg role:web"
playbook = "web.yml"
after = ["roles"]
`

// demoProvisioner is the child process and the autoscaling loop.
type demoProvisioner struct {
	cmd  *exec.Cmd
	log  *os.File
	done chan error

	mu     sync.Mutex
	agents []demoAgent
	wg     sync.WaitGroup
}

// startDemoProvisioner starts `fleetdeck provisioner` on the demo's config
// (its log in logPath) and the simulated autoscaling, which writes the
// new agents' host_vars beside the real nodes' (hosts).
func startDemoProvisioner(ctx context.Context, config, logPath, bin string, server *consulagent.Agent, standInPort int, hosts []demoplaybooks.Agent, playbooks string) (*demoProvisioner, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("starting the demo's provisioner: %w", err)
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("starting the demo's provisioner: %w", err)
	}
	cmd := exec.Command(exe, "--config", config, "provisioner", "--id", "demo-provisioner")
	cmd.Stdout, cmd.Stderr = logf, logf
	dieWithDemo(cmd)
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting the demo's provisioner: %w", err)
	}
	p := &demoProvisioner{cmd: cmd, log: logf, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.autoscale(ctx, bin, server, standInPort, hosts, playbooks)
	}()
	return p, nil
}

// autoscale starts the blank agents on its schedule until ctx ends.
func (p *demoProvisioner) autoscale(ctx context.Context, bin string, server *consulagent.Agent, standInPort int, hosts []demoplaybooks.Agent, playbooks string) {
	wait := demoScaleFirst
	for i := 1; i <= demoScaleMax; i++ {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait = demoScaleEvery
		name := fmt.Sprintf("scale-%02d", i)
		meta := map[string]string{"asg": demoScaleGroup, "instance-id": fmt.Sprintf("i-0b5c%013x", i), "image": "fleetdeck-demo-blank-agent"}
		if i == demoScaleFailing {
			meta[fleetsim.DemoFailMetaKey] = "true"
		}
		metaJSON, _ := json.Marshal(map[string]any{"node_meta": meta})
		a, err := func() (*consulagent.Agent, error) {
			sctx, cancel := context.WithTimeout(ctx, demoAgentTimeout)
			defer cancel()
			return consulagent.Start(sctx, consulagent.Options{Binary: bin, NodeName: name, JoinLAN: []string{server.SerfLANAddr()},
				ConfigFiles: map[string][]byte{"10-demo-node.json": metaJSON}, StopTimeout: 5 * time.Second})
		}()
		if err != nil {
			return // the console shows the fleet as it is; the log has no place here
		}
		p.mu.Lock()
		p.agents = append(p.agents, demoAgent{agent: a})
		all := append(hosts, demoAgentHosts(p.agents, bin)...)
		p.mu.Unlock()
		_ = demoplaybooks.WriteRoles(playbooks, standInPort, all)
	}
}

// stop ends the provisioner (SIGTERM: it cancels its runs after its
// grace) and the blank agents.
func (p *demoProvisioner) stop(stderr io.Writer) {
	p.wg.Wait()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	p.log.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	stopDemoAgents(p.agents, stderr)
}

// demoProvisionerLog names the provisioner's log for the banner.
func demoProvisionerLog(dir string) string { return filepath.Join(dir, "provisioner.log") }
