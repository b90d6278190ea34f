//go:build linux

package provision

import (
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// superviseExecutable is the program to re-execute as the supervisor:
// /proc/self/exe is this very binary even when its file has been replaced
// or removed since it started (an upgrade while the console runs).
func superviseExecutable() (string, error) { return "/proc/self/exe", nil }

// superviseRaise ends the supervisor with sig, as ansible-playbook ended.
// The Go runtime turns many signals into something else (a stack dump for
// SIGQUIT, nothing at all for SIGUSR1), so the disposition is set to the
// kernel default directly, then the signal is sent to this thread. If the
// process survives (a signal whose default is to ignore), the caller exits
// with 128+sig, as a shell reports it.
func superviseRaise(sig syscall.Signal) {
	signal.Reset(sig)
	runtime.LockOSThread()
	// struct sigaction with every field zero: SIG_DFL, no flags, empty
	// mask — the same bytes whatever the architecture's field order.
	var act [4]uint64
	_, _, _ = unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(sig), uintptr(unsafe.Pointer(&act)), 0, 8, 0, 0)
	_ = unix.Tgkill(os.Getpid(), unix.Gettid(), sig)
	time.Sleep(time.Second)
}
