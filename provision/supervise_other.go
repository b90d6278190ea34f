//go:build unix && !linux

package provision

import (
	"os"
	"os/signal"
	"syscall"
	"time"
)

// superviseExecutable is the program to re-execute as the supervisor.
func superviseExecutable() (string, error) { return os.Executable() }

// superviseRaise ends the supervisor with sig where the Go runtime lets a
// signal kill the process (SIGHUP, SIGINT, SIGTERM, SIGKILL); otherwise the
// caller exits with 128+sig, as a shell reports it.
func superviseRaise(sig syscall.Signal) {
	signal.Reset(sig)
	_ = syscall.Kill(os.Getpid(), sig)
	time.Sleep(time.Second)
}
