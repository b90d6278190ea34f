//go:build !unix

package consulagent

import "os/exec"

// setProcessGroup has no process-group equivalent here; the agent starts no
// children of its own, so killing the process is enough.
func setProcessGroup(cmd *exec.Cmd) {}

// terminate stops the agent; without signals this is an immediate kill.
func terminate(cmd *exec.Cmd) {
	if cmd.Process != nil {
		_ = cmd.Process.Kill()
	}
}

// killGroup kills the agent process.
func killGroup(cmd *exec.Cmd) { terminate(cmd) }

// processAlive cannot be checked portably here; assume alive so nothing is
// removed that might be in use.
func processAlive(pid int) bool { return true }
