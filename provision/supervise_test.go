package provision

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// supTest starts argv under a real supervisor (this test binary
// re-executed, see SuperviseMain) and returns it with the read end of its
// output.
func supTest(t *testing.T, dir string, argv ...string) (*runSupervised, *os.File) {
	t.Helper()
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	evR, evW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	sup, err := superviseStart(dir, argv, os.Environ(), dir, outW, evW)
	outW.Close()
	evW.Close()
	evR.Close()
	if err != nil {
		outR.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = runKillGroup(sup.cmd.Process.Pid, runSIGKILL)
		sup.lifeline.Close()
		outR.Close()
	})
	return sup, outR
}

// The console reads the end of a supervised run as if it had started
// ansible-playbook itself: same exit code, same fatal signal — including
// signals the Go runtime would otherwise turn into something else.
func TestSupervisorPassesOnExitStatus(t *testing.T) {
	for _, tc := range []struct {
		script string
		code   int
		sig    syscall.Signal
	}{
		{"exit 7", 7, 0},
		{"exit 0", 0, 0},
		{"kill -TERM $$", 0, syscall.SIGTERM},
		{"kill -USR1 $$", 0, syscall.SIGUSR1},
		{"kill -QUIT $$", 0, syscall.SIGQUIT},
		{"kill -KILL $$", 0, syscall.SIGKILL},
	} {
		sup, out := supTest(t, t.TempDir(), "/bin/sh", "-c", tc.script)
		if sup.child <= 0 || sup.child == sup.cmd.Process.Pid {
			t.Errorf("%s: child pid %d (supervisor %d)", tc.script, sup.child, sup.cmd.Process.Pid)
		}
		_ = sup.cmd.Wait()
		junk, _ := io.ReadAll(out)
		ws := sup.cmd.ProcessState.Sys().(syscall.WaitStatus)
		switch {
		case tc.sig != 0 && (!ws.Signaled() || ws.Signal() != tc.sig):
			t.Errorf("%s: supervisor ended %v, want killed by %v (output %q)", tc.script, sup.cmd.ProcessState, tc.sig, junk)
		case tc.sig == 0 && (ws.Signaled() || ws.ExitStatus() != tc.code):
			t.Errorf("%s: supervisor ended %v, want exit %d (output %q)", tc.script, sup.cmd.ProcessState, tc.code, junk)
		}
		if len(junk) > 0 {
			t.Errorf("%s: the supervisor wrote into the run's output: %q", tc.script, junk)
		}
	}
}

// ansible-playbook must start with the cancel signals at their default
// disposition even when the console ignores them: SIG_IGN survives exec.
func TestSupervisedChildDoesNotInheritIgnoredSignals(t *testing.T) {
	signal.Ignore(syscall.SIGHUP, syscall.SIGQUIT)
	defer signal.Reset(syscall.SIGHUP, syscall.SIGQUIT)
	sup, out := supTest(t, t.TempDir(), "/bin/cat", "/proc/self/status")
	status, _ := io.ReadAll(out)
	_ = sup.cmd.Wait()
	var ign uint64
	sc := bufio.NewScanner(bytes.NewReader(status))
	found := false
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "SigIgn:"); ok {
			ign, _ = strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			found = true
		}
	}
	if !found {
		t.Fatalf("no SigIgn in the child's status:\n%s", status)
	}
	for _, sig := range []syscall.Signal{syscall.SIGHUP, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGTERM} {
		if ign&(1<<(uint(sig)-1)) != 0 {
			t.Errorf("the child starts with %v ignored (SigIgn %016x)", sig, ign)
		}
	}
}

// When the console's end of the lifeline goes (the console died), the
// supervisor records when, and kills its whole group.
func TestSupervisorEndsTheGroupWhenTheLifelineCloses(t *testing.T) {
	dir := t.TempDir()
	marker := "77." + strconv.Itoa(os.Getpid()%100000)
	sup, _ := supTest(t, dir, "/bin/sh", "-c", "sleep "+marker+" & sleep "+marker+"; wait")
	pgid := sup.cmd.Process.Pid
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor("the sleeps", func() bool { return len(supGroup(pgid)) >= 3 })
	closed := time.Now()
	sup.lifeline.Close()
	_ = sup.cmd.Wait()
	waitFor("the group to die", func() bool { return len(supGroup(pgid)) == 0 })
	t.Logf("group gone %v after the lifeline closed", time.Since(closed).Round(time.Millisecond))
	b, err := os.ReadFile(filepath.Join(dir, RunConsoleDiedFile))
	if err != nil {
		t.Fatal(err)
	}
	died, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(string(b)))
	if err != nil || died.Before(closed.Add(-time.Second)) || died.After(time.Now()) {
		t.Errorf("recorded death %q (%v), lifeline closed at %v", b, err, closed)
	}
}

// supGroup lists the live (non-zombie) processes of process group pgid.
func supGroup(pgid int) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(f) < 3 || f[0] == "Z" {
			continue
		}
		if pg, _ := strconv.Atoi(f[2]); pg == pgid {
			out = append(out, pid)
		}
	}
	return out
}
