//go:build unix && !linux

package consulagent

import "syscall"

// setParentDeathSignal is Linux-only; elsewhere an agent orphaned by a
// crashed parent has to be cleaned up by hand.
func setParentDeathSignal(attr *syscall.SysProcAttr) {}
