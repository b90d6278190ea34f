//go:build unix && !linux

package provision

import "errors"

// runWaitExited is not available here: the supervisor falls back to reaping
// the leader with Wait and sweeping the group afterwards.
func runWaitExited(pid int) error {
	return errors.New("waitid WNOWAIT not supported on this platform")
}
