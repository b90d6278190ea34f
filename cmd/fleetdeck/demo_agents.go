package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/fleetdeck/fleetdeck/internal/consulagent"
	"github.com/fleetdeck/fleetdeck/internal/demoplaybooks"
	"github.com/fleetdeck/fleetdeck/roles"
)

// demoAgentPrefix names the demo's real nodes, app-01, app-02, …: the
// simulated fleet's names are ip-…, <group>-xxxx, db-NN and search-NN, so
// they never clash (TestDemoAgentNamesAreFree).
const demoAgentPrefix = "app-"

// demoAgentGroup is the real nodes' autoscaling group (node meta asg), so
// the console groups them as it groups the simulated nodes.
const demoAgentGroup = "app-asg"

// demoAgentTimeout bounds the start of the real nodes: a client agent is
// ready in well under a second here, but a loaded machine can take longer.
const demoAgentTimeout = time.Minute

// demoAgent is one real node: a Consul client agent joined to the demo's
// server, and the role it started with.
type demoAgent struct {
	agent *consulagent.Agent
	role  string
}

// demoAgentName is the name of the i-th real node (from 0).
func demoAgentName(i int) string { return fmt.Sprintf("%s%02d", demoAgentPrefix, i+1) }

// startDemoAgents starts n client agents joined to server, in parallel.
// Each starts with one managed role of cat (demoplaybooks.InitialRole):
// its service definition file, as the apply playbook would have written
// it, is in the agent's config dir before the agent starts, so the
// console shows real managed services from its first frame. Their node
// meta (asg, zone, instance-id, image) is what the simulated nodes carry.
// On error every agent started is stopped again.
func startDemoAgents(ctx context.Context, bin string, server *consulagent.Agent, n int, cat *roles.Catalog, zones []string) ([]demoAgent, error) {
	ctx, cancel := context.WithTimeout(ctx, demoAgentTimeout)
	defer cancel()
	out := make([]demoAgent, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		name, role := demoAgentName(i), demoplaybooks.InitialRole(i)
		files, err := demoAgentFiles(i, cat, role, zones)
		if err != nil {
			return nil, fmt.Errorf("preparing the demo's agent %s: %w", name, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, err := consulagent.Start(ctx, consulagent.Options{
				Binary: bin, NodeName: name, JoinLAN: []string{server.SerfLANAddr()}, ConfigFiles: files,
				// The demo stops its agents with Ctrl-C: no graceful leave
				// (leave_on_terminate is off), so nothing to wait for.
				StopTimeout: 5 * time.Second,
			})
			if err != nil {
				errs[i] = fmt.Errorf("starting the demo's agent %s: %w", name, err)
				return
			}
			out[i] = demoAgent{agent: a, role: role}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		stopDemoAgents(out, io.Discard)
		return nil, err
	}
	return out, nil
}

// demoAgentFiles are the config files of the i-th real node: its node
// meta and its initial role's service definition.
func demoAgentFiles(i int, cat *roles.Catalog, role string, zones []string) (map[string][]byte, error) {
	r, ok := cat.Lookup(role)
	if !ok {
		return nil, fmt.Errorf("role %s is not in the demo's role catalog", role)
	}
	def, err := roles.ServiceDefinition(&r, "127.0.0.1")
	if err != nil {
		return nil, err
	}
	meta := map[string]string{
		"asg":         demoAgentGroup,
		"instance-id": fmt.Sprintf("i-0a9e%013x", i+1),
		"image":       "fleetdeck-demo-consul-client-agent",
	}
	if len(zones) > 0 {
		meta["zone"] = zones[i%len(zones)]
	}
	metaJSON, err := json.Marshal(map[string]any{"node_meta": meta})
	if err != nil {
		return nil, err
	}
	// Named outside fleetdeck-*.json: the apply playbook never touches it
	// (it copies it into its staging dir for `consul validate`).
	return map[string][]byte{"10-demo-node.json": metaJSON, roles.FileName(role): def}, nil
}

// stopDemoAgents stops the real nodes in parallel (each removes its dirs)
// and reports failures on stderr.
func stopDemoAgents(agents []demoAgent, stderr io.Writer) {
	var wg sync.WaitGroup
	errs := make([]error, len(agents))
	for i, a := range agents {
		if a.agent == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = a.agent.Stop()
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintln(stderr, "fleetdeck demo: stopping its agents:", err)
	}
}

// demoAgentHosts are the host_vars of the real nodes.
func demoAgentHosts(agents []demoAgent, bin string) []demoplaybooks.Agent {
	out := make([]demoplaybooks.Agent, len(agents))
	for i, a := range agents {
		out[i] = demoplaybooks.Agent{Node: a.agent.NodeName(), ConfigDir: a.agent.ConfigDir(), HTTPAddr: "http://" + a.agent.HTTPAddr(), ConsulBin: bin}
	}
	return out
}

// describeDemoAgents is "app-01 (web), app-02 (api)".
func describeDemoAgents(agents []demoAgent) string {
	parts := make([]string, len(agents))
	for i, a := range agents {
		parts[i] = fmt.Sprintf("%s (%s)", a.agent.NodeName(), a.role)
	}
	return strings.Join(parts, ", ")
}

// demoStandIn serves the stand-ins of the demo roles' services on a
// loopback port (demoplaybooks.StandIn), which the role catalog's checks
// probe on the real nodes.
type demoStandIn struct {
	srv  *http.Server
	port int
	done chan struct{}
}

func startDemoStandIn() (*demoStandIn, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("starting the demo roles' stand-in services: %w", err)
	}
	s := &demoStandIn{
		srv:  &http.Server{Handler: demoplaybooks.StandIn(), ReadHeaderTimeout: 5 * time.Second},
		port: ln.Addr().(*net.TCPAddr).Port,
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(ln) // ErrServerClosed after close
	}()
	return s, nil
}

// close stops the server, its connections (the agents' checks keep some
// alive) within a few seconds, and waits for it.
func (s *demoStandIn) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		s.srv.Close()
	}
	<-s.done
}
