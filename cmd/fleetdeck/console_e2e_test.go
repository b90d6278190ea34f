package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/fleetdeck/fleetdeck/internal/consulagent"
)

// tmuxSession drives the real fleetdeck binary in a real terminal
// emulator, as a person would: on its own tmux server so tests cannot
// disturb a user's sessions.
type tmuxSession struct {
	t      *testing.T
	socket string
}

func (s *tmuxSession) run(args ...string) string {
	s.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-L", s.socket}, args...)...).CombinedOutput()
	if err != nil {
		s.t.Fatalf("tmux %v: %v: %s", args, err, out)
	}
	return string(out)
}

func (s *tmuxSession) screen() string { return s.run("capture-pane", "-p", "-t", "fd") }

// waitScreen polls the pane until every string is on it.
func (s *tmuxSession) waitScreen(timeout time.Duration, subs ...string) (string, time.Duration) {
	s.t.Helper()
	start := time.Now()
	for {
		scr := s.screen()
		all := true
		for _, sub := range subs {
			all = all && strings.Contains(scr, sub)
		}
		if all {
			return scr, time.Since(start)
		}
		if time.Since(start) > timeout {
			s.t.Fatalf("the screen never showed %q; it shows:\n%s", subs, scr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestConsoleAgainstRealConsul builds fleetdeck, points it at a real
// Consul with CONSUL_HTTP_ADDR and checks what a user sees: the nodes, a
// check going critical, the journal, and a clean quit.
func TestConsoleAgainstRealConsul(t *testing.T) {
	if _, err := exec.LookPath("tmux"); err != nil {
		if os.Getenv(consulagent.EnvRequire) == "1" {
			t.Fatal("tmux is needed for the end-to-end console test (apt-get install tmux)")
		}
		t.Skip("no tmux")
	}
	agent := consulagent.StartTest(t, consulagent.Options{})
	c, err := agent.Client()
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		node := fmt.Sprintf("web-%d", i)
		reg := &api.CatalogRegistration{Node: node, Address: fmt.Sprintf("10.9.0.%d", i+1),
			NodeMeta: map[string]string{"asg": "web-asg", "zone": "z1"},
			Service:  &api.AgentService{ID: "web", Service: "web", Port: 80},
			Check:    &api.AgentCheck{Node: node, CheckID: "http", Name: "http", ServiceID: "web", Status: api.HealthPassing}}
		if _, err := c.Catalog().Register(reg, nil); err != nil {
			t.Fatal(err)
		}
	}

	bin := filepath.Join(t.TempDir(), "fleetdeck")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("building fleetdeck: %v: %s", err, out)
	}
	s := &tmuxSession{t: t, socket: fmt.Sprintf("fleetdeck-test-%d", os.Getpid())}
	cmdline := fmt.Sprintf("env CONSUL_HTTP_ADDR=%s XDG_CONFIG_HOME=%s %s; echo fleetdeck-exited-$?; sleep 30",
		agent.HTTPAddr(), t.TempDir(), bin)
	s.run("new-session", "-d", "-s", "fd", "-x", "120", "-y", "30", cmdline)
	t.Cleanup(func() { _ = exec.Command("tmux", "-L", s.socket, "kill-server").Run() })

	s.waitScreen(20*time.Second, "nodes 6", "passing 6", "connected", "web-4", "web-asg")

	reg := &api.CatalogRegistration{Node: "web-3", Address: "10.9.0.4", SkipNodeUpdate: true,
		Check: &api.AgentCheck{Node: "web-3", CheckID: "http", Name: "http", ServiceID: "web", Status: api.HealthCritical, Output: "HTTP 503 from upstream"}}
	if _, err := c.Catalog().Register(reg, nil); err != nil {
		t.Fatal(err)
	}
	_, took := s.waitScreen(10*time.Second, "critical 1", "passing 5")
	// Not asserted (machines are shared and noisy); recorded for the
	// benchmarks page and visible with -v.
	t.Logf("check change visible on screen after %v", took)

	s.run("send-keys", "-t", "fd", ":events", "Enter")
	s.waitScreen(5*time.Second, "web-3", "passing → critical: check http: HTTP 503 from upstream")

	s.run("send-keys", "-t", "fd", "q")
	s.waitScreen(10*time.Second, "fleetdeck-exited-0")
}
