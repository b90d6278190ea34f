//go:build unix

package provision

import (
	"errors"
	"syscall"
)

// Signals used by the cancel sequence, named so callers read like the
// sequence itself.
const (
	runSIGINT  = syscall.SIGINT
	runSIGTERM = syscall.SIGTERM
	runSIGKILL = syscall.SIGKILL
)

// runSysProcAttr puts ansible-playbook into its own process group: SIGINT
// to ansible-playbook alone leaves its workers and module processes alive,
// so every signal goes to the whole group.
func runSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// runKillGroup signals the process group led by pid. A group that is
// already gone is not an error.
func runKillGroup(pid int, sig syscall.Signal) error {
	if pid <= 1 {
		return errors.New("refusing to signal process group <= 1")
	}
	err := syscall.Kill(-pid, sig)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}
