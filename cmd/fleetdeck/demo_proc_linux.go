package main

import (
	"os/exec"
	"syscall"
)

// dieWithDemo makes the kernel SIGTERM the demo's provisioner if the demo
// dies without stopping it (SIGKILL), as consulagent does for its agents:
// the provisioner then cancels its runs and exits instead of retrying a
// Consul that is gone.
func dieWithDemo(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
