//go:build !linux

package provision

import (
	"errors"
	"os"
	"syscall"
)

// histProcess reports whether pid is running. Without /proc there is no
// start time to tell a reused pid from the original owner, so a reused pid
// keeps a dead console's record live until that process ends too.
func histProcess(pid int) (alive bool, start uint64) {
	if pid <= 0 {
		return false, 0
	}
	p, err := os.FindProcess(pid)
	if err != nil {
		return false, 0
	}
	err = p.Signal(syscall.Signal(0))
	if err == nil || errors.Is(err, syscall.EPERM) {
		return true, 0
	}
	return false, 0
}

// histBootID is unknown outside Linux.
func histBootID() string { return "" }
