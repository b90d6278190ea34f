package consulagent

import "syscall"

// setParentDeathSignal makes the kernel SIGKILL the agent if the process
// that started it dies without calling Stop (a test binary killed by
// `go test -timeout`, a demo killed with SIGKILL), so no orphaned agent keeps
// its ports.
func setParentDeathSignal(attr *syscall.SysProcAttr) {
	attr.Pdeathsig = syscall.SIGKILL
}
