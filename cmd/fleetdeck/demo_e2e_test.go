package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/fleetdeck/fleetdeck/internal/consulagent"
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
