//go:build linux

// Package ptyterm runs a program on a real pseudo-terminal and renders
// what it writes with a terminal emulator, so a benchmark can time what a
// user would see: the moment text appears on the screen.
package ptyterm

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/charmbracelet/x/vt"
	"golang.org/x/sys/unix"
)

// Term is a program running on a pseudo-terminal of a fixed size.
type Term struct {
	cmd    *exec.Cmd
	master *os.File
	mu     sync.Mutex
	emu    *vt.Emulator
	// changed is closed and replaced after every write to the screen.
	changed chan struct{}
	done    chan struct{}
}

// Start runs cmd on a new pseudo-terminal of w×h cells; the program is the
// session leader with the terminal as its controlling tty.
func Start(cmd *exec.Cmd, w, h int) (*Term, error) {
	master, slave, err := open()
	if err != nil {
		return nil, err
	}
	ws := unix.Winsize{Row: uint16(h), Col: uint16(w)}
	if err := unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, &ws); err != nil {
		master.Close()
		slave.Close()
		return nil, fmt.Errorf("setting the terminal size: %w", err)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		master.Close()
		slave.Close()
		return nil, err
	}
	slave.Close()
	t := &Term{cmd: cmd, master: master, emu: vt.NewEmulator(w, h), changed: make(chan struct{}), done: make(chan struct{})}
	go t.pump()
	go t.answer()
	return t, nil
}

// open opens a pseudo-terminal pair.
func open() (master, slave *os.File, err error) {
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("opening /dev/ptmx: %w", err)
	}
	var unlock int32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, m.Fd(), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
		m.Close()
		return nil, nil, fmt.Errorf("unlocking the pty: %w", e)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("naming the pty: %w", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("opening the pty's slave: %w", err)
	}
	return m, s, nil
}

// pump feeds the program's output to the emulator.
func (t *Term) pump() {
	defer close(t.done)
	buf := make([]byte, 64<<10)
	for {
		n, err := t.master.Read(buf)
		if n > 0 {
			t.mu.Lock()
			_, _ = t.emu.Write(buf[:n])
			close(t.changed)
			t.changed = make(chan struct{})
			t.mu.Unlock()
		}
		if err != nil {
			return
		}
	}
}

// answer sends the emulator's replies to the program's terminal queries.
func (t *Term) answer() {
	buf := make([]byte, 1024)
	for {
		n, err := t.emu.Read(buf)
		if n > 0 {
			if _, werr := t.master.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// Screen returns the screen's text.
func (t *Term) Screen() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.emu.String()
}

// WaitFor waits until cond holds for the screen and returns when it first
// did (measured right after the write that made it true), or an error at
// the deadline.
func (t *Term) WaitFor(deadline time.Time, cond func(screen string) bool) (time.Time, error) {
	for {
		t.mu.Lock()
		s, ch := t.emu.String(), t.changed
		t.mu.Unlock()
		if cond(s) {
			return time.Now(), nil
		}
		select {
		case <-ch:
		case <-t.done:
			return time.Time{}, errors.New("the program ended; last screen:\n" + s)
		case <-time.After(time.Until(deadline)):
			return time.Time{}, errors.New("timed out; last screen:\n" + s)
		}
	}
}

// Type sends keys to the program.
func (t *Term) Type(s string) error {
	_, err := io.WriteString(t.master, s)
	return err
}

// Close ends the program (SIGTERM, then SIGKILL after a second) and the
// terminal.
func (t *Term) Close() {
	if t.cmd.Process != nil {
		_ = t.cmd.Process.Signal(syscall.SIGTERM)
		exited := make(chan struct{})
		go func() { _ = t.cmd.Wait(); close(exited) }()
		select {
		case <-exited:
		case <-time.After(time.Second):
			_ = t.cmd.Process.Kill()
			<-exited
		}
	}
	t.master.Close()
	t.emu.Close()
}

// Contains reports whether screen has every one of subs.
func Contains(screen string, subs ...string) bool {
	for _, s := range subs {
		if !strings.Contains(screen, s) {
			return false
		}
	}
	return true
}
