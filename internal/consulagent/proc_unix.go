//go:build unix

package consulagent

import (
	"os/exec"
	"syscall"
)

// setProcessGroup puts the agent in its own process group so Stop and Kill
// can signal everything it started, and so a Ctrl-C aimed at the terminal's
// foreground group (the demo) reaches fleetdeck first, which then shuts the
// agent down in order instead of racing it.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	setParentDeathSignal(cmd.SysProcAttr)
}

// terminate asks the agent to shut down. A stopped agent (SIGSTOP: a fault
// test, or someone trying the demo) would leave SIGTERM pending until Stop
// gives up on it: continue it too.
func terminate(cmd *exec.Cmd) {
	if cmd.Process != nil {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Process.Signal(syscall.SIGCONT)
	}
}

// killGroup SIGKILLs the agent's whole process group. Errors are ignored: the
// group may already be gone, which is the goal.
func killGroup(cmd *exec.Cmd) {
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}

// processAlive reports whether a process with this pid exists.
func processAlive(pid int) bool {
	return syscall.Kill(pid, 0) != syscall.ESRCH
}
