//go:build linux

package provision

import (
	"errors"

	"golang.org/x/sys/unix"
)

// runWaitExited blocks until the process has exited without reaping it
// (WNOWAIT). While the zombie leader is not reaped its pid, and so the
// process group id, cannot be reused: the final sweep of the group can never
// hit an unrelated group.
func runWaitExited(pid int) error {
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		return err
	}
}
