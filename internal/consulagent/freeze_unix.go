//go:build unix

package consulagent

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// Freeze SIGSTOPs the agent for a fault test and returns once every one
// of its threads is stopped: kill(2) only queues the signal, and a thread
// in the middle of a request could still answer it, which made a test of
// "a frozen agent is silence" flaky. The agent is continued by the
// returned function or, at the latest, in tb.Cleanup (registered after
// StartTest's, so it runs before the agent is stopped).
func (a *Agent) Freeze(tb testing.TB) (thaw func()) {
	tb.Helper()
	pid := a.Pid()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		tb.Fatalf("consulagent: SIGSTOP to the agent (pid %d): %v", pid, err)
	}
	thawed := false
	thaw = func() {
		if !thawed {
			thawed = true
			_ = syscall.Kill(pid, syscall.SIGCONT)
		}
	}
	tb.Cleanup(thaw)
	deadline := time.Now().Add(5 * time.Second)
	for !allStopped(pid) {
		if time.Now().After(deadline) {
			tb.Fatalf("consulagent: the agent (pid %d) is not stopped 5 s after SIGSTOP", pid)
		}
		time.Sleep(time.Millisecond)
	}
	return thaw
}

// allStopped reports whether every thread of pid is stopped, as
// /proc/<pid>/task/*/stat says (state T). Without /proc it waits a little
// and says yes: the best that can be done there.
func allStopped(pid int) bool {
	tasks, err := filepath.Glob(filepath.Join("/proc", strconv.Itoa(pid), "task", "*", "stat"))
	if err != nil || len(tasks) == 0 {
		time.Sleep(50 * time.Millisecond)
		return true
	}
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue // the thread ended
		}
		// The state follows the command name, which is in parentheses
		// and may itself hold ") ".
		i := bytes.LastIndexByte(b, ')')
		if i < 0 || i+2 >= len(b) || b[i+2] != 'T' {
			return false
		}
	}
	return true
}
