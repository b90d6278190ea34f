package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/fleetdeck/fleetdeck/internal/consulagent"
	"github.com/fleetdeck/fleetdeck/provision"
)

// TestDemoIncidentToLogs is the "done when", driven as a user
// would: the real demo in tmux, the faults-only view narrowed to critical
// nodes, and one key from a node whose check went critical to that node's
// logs around that moment — the incident marked, the error burst on screen,
// the view live — then back and out cleanly.
func TestDemoIncidentToLogs(t *testing.T) {
	if _, err := exec.LookPath("tmux"); err != nil {
		if os.Getenv(consulagent.EnvRequire) == "1" {
			t.Fatal("tmux is needed for the end-to-end demo test (apt-get install tmux)")
		}
		t.Skip("no tmux")
	}
	consul := consulagent.TestBinary(t)
	bin := filepath.Join(t.TempDir(), "fleetdeck")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("building fleetdeck: %v: %s", err, out)
	}
	s := &tmuxSession{t: t, socket: fmt.Sprintf("fleetdeck-demo-test-%d", os.Getpid())}
	home := t.TempDir()
	cmdline := fmt.Sprintf("env %s=%s XDG_CONFIG_HOME=%s XDG_STATE_HOME=%s %s demo; echo fleetdeck-exited-$?; sleep 30",
		consulagent.EnvBinary, consul, home, home, bin)
	s.run("new-session", "-d", "-s", "fd", "-x", "140", "-y", "40", cmdline)
	t.Cleanup(func() { _ = exec.Command("tmux", "-L", s.socket, "kill-server").Run() })

	s.waitScreen(2*time.Minute, "connected", "web-asg")
	// A node that was already critical when the console started has no
	// transition in the journal (its view opens at "now", unmarked). Flaps
	// last at most 9 s and the first auto-heal comes after 15 s: after 10 s
	// every critical node went critical while the console watched.
	time.Sleep(10 * time.Second)
	// Only critical nodes; the simulation makes one every few seconds.
	s.run("send-keys", "-t", "fd", "f", "/")
	s.run("send-keys", "-t", "fd", "-l", "health:critical")
	s.run("send-keys", "-t", "fd", "Enter")
	s.waitScreen(90*time.Second, "critical web")

	s.run("send-keys", "-t", "fd", "l")
	scr, _ := s.waitScreen(30*time.Second, "Logs node", "incident", "passing → critical", " ERR ", "● live")
	t.Logf("logs view:\n%s", scr)

	s.run("send-keys", "-t", "fd", "Escape")
	s.waitScreen(5*time.Second, "NAME")
	time.Sleep(200 * time.Millisecond)
	s.run("send-keys", "-t", "fd", "q")
	s.waitScreen(30*time.Second, "fleetdeck-exited-0")
}

// syncBuffer is a bytes.Buffer safe for a process writing while the test
// reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDemoSecondConsoleRunsLikeTheDemo is the fault trial fixed: a second
// console opened on the demo with the one line its banner prints locks
// under the prefix every console uses (so it excludes the demo's own
// console, which reads the same file), runs its hosts with a local
// connection (not SSH to simulated addresses: no host unreachable) and
// records in the demo's history. The demo runs headless as a real
// process; the second console is the real binary in tmux, driven by keys.
func TestDemoSecondConsoleRunsLikeTheDemo(t *testing.T) {
	if _, err := exec.LookPath("tmux"); err != nil {
		if os.Getenv(consulagent.EnvRequire) == "1" {
			t.Fatal("tmux is needed for the end-to-end demo test (apt-get install tmux)")
		}
		t.Skip("no tmux")
	}
	if _, err := exec.LookPath("ansible-playbook"); err != nil {
		t.Fatalf("ansible-playbook not installed (Debian: apt-get install --no-install-recommends ansible-core): %v", err)
	}
	consul := consulagent.TestBinary(t)
	bin := filepath.Join(t.TempDir(), "fleetdeck")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("building fleetdeck: %v: %s", err, out)
	}
	home := t.TempDir()
	env := append(os.Environ(), consulagent.EnvBinary+"="+consul, "XDG_CONFIG_HOME="+home, "XDG_STATE_HOME="+home,
		"CONSUL_HTTP_TOKEN=", "CONSUL_HTTP_TOKEN_FILE=")

	demo := exec.Command(bin, "demo", "--headless", "--nodes", "12")
	demo.Env = env
	var banner syncBuffer
	demo.Stdout, demo.Stderr = &banner, &banner
	if err := demo.Start(); err != nil {
		t.Fatal(err)
	}
	demoDone := make(chan error, 1)
	go func() { demoDone <- demo.Wait() }()
	stopDemo := func() {
		_ = demo.Process.Signal(os.Interrupt)
		select {
		case err := <-demoDone:
			if err != nil {
				t.Errorf("the demo exited with %v:\n%s", err, banner.String())
			}
		case <-time.After(60 * time.Second):
			_ = demo.Process.Kill()
			<-demoDone
			t.Errorf("the demo did not stop on SIGINT:\n%s", banner.String())
		}
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			stopDemo()
		}
	})

	// The banner: the state dir first, then one line to open a console.
	lineRE := regexp.MustCompile(`(?m)^\s+(?:\S*fleetdeck|go run \./cmd/fleetdeck) --config (\S+)$`)
	var cfgPath string
	deadline := time.Now().Add(3 * time.Minute)
	for cfgPath == "" {
		if m := lineRE.FindStringSubmatch(banner.String()); m != nil {
			cfgPath = m[1]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the demo's banner never gave a --config line:\n%s", banner.String())
		}
		select {
		case err := <-demoDone:
			t.Fatalf("the demo exited (%v):\n%s", err, banner.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	stateDir := filepath.Join(home, "fleetdeck", "demo")
	if !strings.Contains(banner.String(), "its run history is kept in "+stateDir) {
		t.Errorf("the banner does not name the state dir %s:\n%s", stateDir, banner.String())
	}
	if fi, err := os.Stat(cfgPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s: %v %v", cfgPath, fi, err)
	}
	t.Setenv("XDG_CONFIG_HOME", home)
	opts, err := resolveArgs(t, "--config", cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := api.NewClient(&api.Config{Address: opts.consul.Address, Scheme: opts.consul.Scheme})
	if err != nil {
		t.Fatal(err)
	}

	// The second console, as the banner says.
	s := &tmuxSession{t: t, socket: fmt.Sprintf("fleetdeck-demo2-test-%d", os.Getpid())}
	cmdline := fmt.Sprintf("env XDG_CONFIG_HOME=%s XDG_STATE_HOME=%s CONSUL_HTTP_TOKEN= CONSUL_HTTP_TOKEN_FILE= %s --config %s; echo fleetdeck-exited-$?; sleep 30",
		home, home, bin, cfgPath)
	s.run("new-session", "-d", "-s", "fd", "-x", "160", "-y", "45", cmdline)
	t.Cleanup(func() { _ = exec.Command("tmux", "-L", s.socket, "kill-server").Run() })
	s.waitScreen(time.Minute, "connected", "NAME")
	// A simulated node: its address does not exist, so only the local
	// connection can reach it (the agent's own node is 127.0.0.1, which an
	// SSH server on this machine would answer).
	s.run("send-keys", "-t", "fd", "/")
	s.run("send-keys", "-t", "fd", "-l", "role:web")
	s.run("send-keys", "-t", "fd", "Enter")
	s.waitScreen(30*time.Second, "web-asg")
	s.run("send-keys", "-t", "fd", "r")
	scr, _ := s.waitScreen(30*time.Second, "Run a playbook on node")
	m := regexp.MustCompile(`Run a playbook on node ([a-z0-9-]+)/([A-Za-z0-9._-]+)`).FindStringSubmatch(scr)
	if m == nil {
		t.Fatalf("no node in the launch form:\n%s", scr)
	}
	dc, node := m[1], m[2]
	s.run("send-keys", "-t", "fd", "C-s")
	s.waitScreen(60*time.Second, "enter launch")

	// Watch the lock keys from before the launch: blocking queries on the
	// KV prefix see each write.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	type lockSeen struct {
		keys []string
		err  error
	}
	seen := make(chan lockSeen, 1)
	go func() {
		var idx uint64
		for {
			pairs, meta, err := admin.KV().List("", (&api.QueryOptions{WaitIndex: idx, WaitTime: 10 * time.Second}).WithContext(ctx))
			if err != nil {
				seen <- lockSeen{err: err}
				return
			}
			idx = meta.LastIndex
			var keys []string
			for _, p := range pairs {
				if strings.Contains(p.Key, "/locks/") {
					keys = append(keys, p.Key)
				}
			}
			if len(keys) > 0 {
				seen <- lockSeen{keys: keys}
				return
			}
		}
	}()
	s.run("send-keys", "-t", "fd", "Enter")
	select {
	case got := <-seen:
		if got.err != nil {
			t.Fatalf("watching the lock keys: %v", got.err)
		}
		want := "fleetdeck/locks/" + dc + "/" + node
		if !slices.Contains(got.keys, want) {
			t.Errorf("the run's locks are %q, want %q (the prefix every console uses)", got.keys, want)
		}
	case <-ctx.Done():
		t.Fatalf("no lock was taken for the run:\n%s", s.screen())
	}
	cancel()

	// The run ends with its host reached through the local connection,
	// recorded in the demo's history.
	var id, status string
	for deadline := time.Now().Add(3 * time.Minute); ; {
		out, err := exec.Command(bin, "runs", "--config", cfgPath).CombinedOutput()
		if err != nil {
			t.Fatalf("fleetdeck runs --config: %v\n%s", err, out)
		}
		for _, l := range strings.Split(string(out), "\n") {
			if f := strings.Fields(l); len(f) >= 7 && f[0] != "ID" {
				id, status = f[0], f[len(f)-2]
			}
		}
		if status != "" && status != "queued" && status != "running" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the run did not end; fleetdeck runs says:\n%s\nscreen:\n%s", out, s.screen())
		}
		time.Sleep(500 * time.Millisecond)
	}
	out, err := exec.Command(bin, "runs", "--config", cfgPath, "show", id, "--json").Output()
	if err != nil {
		t.Fatalf("fleetdeck runs show: %v", err)
	}
	var rec provision.RunRecord
	if err := json.Unmarshal(out, &rec); err != nil {
		t.Fatalf("decoding the run: %v\n%s", err, out)
	}
	t.Logf("run %s on %s/%s: %s, recap %+v", id, dc, node, rec.Status, rec.Recap)
	if len(rec.Recap) == 0 {
		t.Errorf("the run has no recap (status %s)", rec.Status)
	}
	for host, r := range rec.Recap {
		if r.Unreachable > 0 || r.OK+r.Changed+r.Failed == 0 {
			t.Errorf("host %s: %+v: not run through the local connection", host, r)
		}
	}
	if strings.HasPrefix(node, "consul-") {
		t.Errorf("the run went to the agent's own node %s, not a simulated one", node)
	}
	if _, err := os.Stat(filepath.Join(stateDir, "history.db")); err != nil {
		t.Errorf("the demo's history: %v", err)
	}

	s.run("send-keys", "-t", "fd", "q")
	s.waitScreen(30*time.Second, "fleetdeck-exited-0")
	stopDemo()
	stopped = true
	if _, err := os.Stat(filepath.Dir(cfgPath)); !os.IsNotExist(err) {
		t.Errorf("the demo left %s behind (%v)", filepath.Dir(cfgPath), err)
	}
}
