//go:build unix

package provision

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The run supervisor.
//
// ansible-playbook must not outlive the console that started it: its host
// locks live only as long as the console renews them. A parent-death
// signal (PR_SET_PDEATHSIG) is not enough from Go — it fires when the OS
// thread that forked exits, which the Go runtime does at will — and it
// would not record when the console died. So every run is started through
// a supervisor: the console's own executable (/proc/self/exe on Linux, so
// a binary replaced by an upgrade meanwhile is not the one run;
// os.Executable elsewhere) re-executed in supervisor mode, selected by the environment variable superviseEnv and
// the argument superviseArg (as docker's pkg/reexec does). Programs that
// start runs call SuperviseMain first thing in main and in TestMain.
//
// The supervisor leads the run's process group (so the console's
// SIGINT → SIGTERM → SIGKILL of the group works as before) and starts
// ansible-playbook as its child, in the same group, with the exact argv,
// environment, working directory and descriptors (stdin, stdout, stderr and
// the event pipe on fd 3). It holds the read end of a "lifeline" pipe
// whose write end only the console holds: when the console dies, however
// it dies, the kernel closes the write end and the supervisor reads EOF.
// It then records the time in the run directory (RunConsoleDiedFile),
// sends SIGINT to the group, waits superviseGrace and SIGKILLs the group,
// itself included.
//
// It exits with ansible-playbook's exit status: the same code, or the same
// signal re-raised with its default action, so the console reads the run's
// end as if it had started ansible-playbook itself. It catches SIGINT,
// SIGTERM, SIGHUP and SIGQUIT (the group's cancel signals are for
// ansible-playbook) with handlers, never by ignoring them: an ignored
// signal stays ignored across exec, a handled one is reset to its default.
const (
	superviseEnv = "FLEETDECK_RUN_SUPERVISOR" // the run directory
	superviseArg = "-fleetdeck-run-supervisor"
	// superviseName is argv[0] of the supervisor, what ps shows.
	superviseName = "fleetdeck-run-supervisor"
	// superviseGrace is the time between SIGINT and SIGKILL once the
	// console is gone: short, so the run is dead well within its locks'
	// TTL.
	superviseGrace = 2 * time.Second
	// superviseStartTimeout bounds the wait for the supervisor to report
	// that ansible-playbook started.
	superviseStartTimeout = 30 * time.Second
)

// Descriptors of the supervisor (ExtraFiles of the console's exec.Cmd).
const (
	superviseFDEvents   = 3 // the event pipe; fd 3 of ansible-playbook too
	superviseFDLifeline = 4 // read end of the lifeline
	superviseFDStatus   = 5 // "started <pid>" or "error <text>", then closed
)

// RunConsoleDiedFile is written into the run directory by the supervisor
// when the console that started the run died while it ran: the time
// (RFC 3339, UTC) it noticed. RecoverInterrupted takes it as the run's end.
const RunConsoleDiedFile = "console-died"

// SuperviseMain runs the run supervisor and exits when this process was
// started as one; otherwise it returns at once. Call it first thing in
// main() (and in TestMain) of every program that starts runs: the Runner
// starts its supervisors by re-executing the program itself.
func SuperviseMain() {
	dir, ok := os.LookupEnv(superviseEnv)
	if !ok || len(os.Args) < 3 || os.Args[1] != superviseArg {
		return
	}
	os.Exit(supervise(dir, os.Args[2:]))
}

// supervise is the supervisor: it returns the exit code, or does not
// return when it re-raises ansible-playbook's fatal signal.
func supervise(dir string, argv []string) int {
	// Before anything else: a cancel of the group that comes this early
	// must not kill the supervisor before it has started the child.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)

	status := os.NewFile(superviseFDStatus, "status")
	lifeline := os.NewFile(superviseFDLifeline, "lifeline")
	events := os.NewFile(superviseFDEvents, "events")
	if status == nil || lifeline == nil || events == nil {
		return 127
	}
	// ansible-playbook gets fd 3 and the standard ones, nothing of ours.
	unix.CloseOnExec(superviseFDStatus)
	unix.CloseOnExec(superviseFDLifeline)

	env := slicesDeletePrefix(os.Environ(), superviseEnv+"=")
	cmd := &exec.Cmd{
		Path: argv[0], Args: argv, Env: env,
		Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
		ExtraFiles: []*os.File{events},
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(status, "error %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
		return 127
	}
	fmt.Fprintf(status, "started %d\n", cmd.Process.Pid)
	status.Close()
	events.Close() // the child has its copy; ours would delay the console's EOF

	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait() // ProcessState carries the status
		close(exited)
	}()
	consoleGone := make(chan struct{})
	go func() {
		// Nothing is ever written: the read returns at EOF, when the
		// console has closed its end or died.
		_, _ = io.Copy(io.Discard, lifeline)
		close(consoleGone)
	}()
	select {
	case <-exited:
	case <-consoleGone:
		select {
		case <-exited: // both at once: the run had ended
		default:
			superviseConsoleDied(dir, exited)
		}
	}
	ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		signal.Stop(sigs)
		superviseRaise(ws.Signal())
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

// superviseConsoleDied records the console's death and ends the run's
// process group: SIGINT (Ansible stops cleanly), then SIGKILL after
// superviseGrace, which ends the supervisor too.
func superviseConsoleDied(dir string, exited <-chan struct{}) {
	now := time.Now().UTC()
	if dir != "" {
		if f, err := os.OpenFile(filepath.Join(dir, RunConsoleDiedFile), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600); err == nil {
			_, _ = f.WriteString(now.Format(time.RFC3339Nano) + "\n")
			_ = f.Sync()
			_ = f.Close()
		}
	}
	pgid := os.Getpid() // the supervisor leads the group
	_ = syscall.Kill(-pgid, syscall.SIGINT)
	t := time.NewTimer(superviseGrace)
	select {
	case <-exited:
		t.Stop()
	case <-t.C:
	}
	// Workers and module processes may outlive ansible-playbook: the whole
	// group goes, the supervisor with it.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	time.Sleep(time.Second)
}

// slicesDeletePrefix drops the entries of env starting with prefix.
func slicesDeletePrefix(env []string, prefix string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if !strings.HasPrefix(kv, prefix) {
			out = append(out, kv)
		}
	}
	return out
}

// runSupervised is what the console knows of a started supervisor.
type runSupervised struct {
	cmd      *exec.Cmd
	lifeline *os.File // write end: closing it (or dying) ends the run
	child    int      // ansible-playbook's pid
}

// errNoSupervisor explains a supervisor that never reported.
var errNoSupervisor = errors.New("the run supervisor did not start ansible-playbook (a program that starts runs must call provision.SuperviseMain() first thing in main and TestMain)")

// superviseStart starts the supervisor of one run (see SuperviseMain):
// argv, env, dir and the descriptors are ansible-playbook's. It returns
// once ansible-playbook has started.
func superviseStart(runDir string, argv, env []string, dir string, stdout, events *os.File) (*runSupervised, error) {
	exe, err := superviseExecutable()
	if err != nil {
		return nil, fmt.Errorf("finding this program to start the run supervisor: %w", err)
	}
	lifeR, lifeW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("creating the lifeline pipe: %w", err)
	}
	statR, statW, err := os.Pipe()
	if err != nil {
		lifeR.Close()
		lifeW.Close()
		return nil, fmt.Errorf("creating the supervisor's status pipe: %w", err)
	}
	defer statR.Close()
	cmd := &exec.Cmd{
		Path:        exe,
		Args:        append([]string{superviseName, superviseArg}, argv...),
		Env:         append(slicesDeletePrefix(env, superviseEnv+"="), superviseEnv+"="+runDir),
		Dir:         dir,
		Stdout:      stdout,
		Stderr:      stdout,
		ExtraFiles:  []*os.File{events, lifeR, statW}, // 3, 4, 5
		SysProcAttr: runSysProcAttr(),
	}
	err = cmd.Start()
	// The supervisor has its copies. The lifeline's write end stays with
	// the console only (os.Pipe makes it close-on-exec, so no other child
	// inherits it).
	lifeR.Close()
	statW.Close()
	if err != nil {
		lifeW.Close()
		return nil, fmt.Errorf("starting the run supervisor: %w", err)
	}
	line, err := superviseReadStatus(statR)
	if err == nil {
		if pid, ok := strings.CutPrefix(line, "started "); ok {
			if n, convErr := strconv.Atoi(pid); convErr == nil {
				return &runSupervised{cmd: cmd, lifeline: lifeW, child: n}, nil
			}
		}
		if msg, ok := strings.CutPrefix(line, "error "); ok {
			err = errors.New(msg)
		} else {
			err = fmt.Errorf("%w: it said %q", errNoSupervisor, runShort(line))
		}
	}
	// Nothing runs that we want: end the group and reap the supervisor.
	_ = runKillGroup(cmd.Process.Pid, runSIGKILL)
	_ = cmd.Wait()
	lifeW.Close()
	if errors.Is(err, io.EOF) || errors.Is(err, os.ErrDeadlineExceeded) {
		err = fmt.Errorf("%w; it ended with %v", errNoSupervisor, cmd.ProcessState)
	}
	return nil, err
}

// superviseReadStatus reads the supervisor's one status line, waiting at
// most superviseStartTimeout.
func superviseReadStatus(f *os.File) (string, error) {
	_ = f.SetReadDeadline(time.Now().Add(superviseStartTimeout))
	line, err := bufio.NewReader(io.LimitReader(f, 4096)).ReadString('\n')
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(line, "\n"), nil
}
