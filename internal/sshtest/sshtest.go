// Package sshtest runs a real OpenSSH server for tests: /usr/sbin/sshd on a
// free loopback port, as a child of the test, with a throwaway host key and
// client key, so a test can drive the real ssh client (or Ansible over ssh)
// against it. It is used only by tests; nothing in the product imports it.
//
// A test that needs OpenSSH skips when sshd, ssh-keygen or ssh is missing,
// unless FLEETDECK_REQUIRE_CONSUL=1 (consulagent.EnvRequire, the variable
// the project's test command sets for every real component), where a
// missing tool fails the test: CI can never pass by skipping.
package sshtest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/fleetdeck/fleetdeck/internal/consulagent"
)

// Server is a running sshd. It accepts the client key KeyFile for the user
// the test runs as; Start stops it at the test's cleanup.
type Server struct {
	// Port is the loopback port sshd listens on (127.0.0.1 only).
	Port int
	// KeyFile is the path of the client's private key (ed25519, no
	// passphrase) that sshd authorises.
	KeyFile string
}

// Addr returns the server's host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)) }

// ClientOptions returns the ssh client options that reach this server
// without prompts or state: its port, the client key, no host key
// checking (its host key is new each time) and no known_hosts file (the
// user's must not be touched), batch mode (a failed login fails instead of
// asking for a password) and errors only (no "Permanently added" warning).
// Put them before the destination: ssh <options> 127.0.0.1 [command].
func (s *Server) ClientOptions() []string {
	return []string{
		"-p", strconv.Itoa(s.Port),
		"-i", s.KeyFile,
		"-o", "StrictHostKeyChecking=no",
		"-o", "UserKnownHostsFile=/dev/null",
		"-o", "BatchMode=yes",
		"-o", "LogLevel=ERROR",
	}
}

// Need returns the path of a program the test needs (see
// consulagent.NeedProgram: skip, or fail under FLEETDECK_REQUIRE_CONSUL=1).
func Need(tb testing.TB, name string) string {
	tb.Helper()
	return consulagent.NeedProgram(tb, name)
}

// Client returns the path of the OpenSSH client (see Need).
func Client(tb testing.TB) string {
	tb.Helper()
	return Need(tb, "ssh")
}

// Start runs sshd for the test (see the package comment for when it skips)
// and stops it at cleanup, where sshd's log is written to the test log if
// the test failed. It fails the test if sshd does not listen within 10 s.
func Start(tb testing.TB) *Server {
	tb.Helper()
	// Debian installs sshd in /usr/sbin, which is not on every PATH.
	sshd := "/usr/sbin/sshd"
	if _, err := os.Stat(sshd); err != nil {
		sshd = Need(tb, "sshd")
	}
	keygen := Need(tb, "ssh-keygen")
	dir := tb.TempDir()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, k := range []string{"host_key", "client_key"} {
		out, err := exec.CommandContext(ctx, keygen, "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(dir, k)).CombinedOutput()
		if err != nil {
			tb.Fatalf("sshtest: ssh-keygen %s: %v: %s", k, err, out)
		}
	}
	pub, err := os.ReadFile(filepath.Join(dir, "client_key.pub"))
	if err != nil {
		tb.Fatalf("sshtest: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), pub, 0o600); err != nil {
		tb.Fatalf("sshtest: %v", err)
	}
	port := freePort(tb)
	// StrictModes no: the test's temporary directory is not laid out as
	// sshd wants a home directory. UsePAM no: PAM would want a real login.
	cfg := fmt.Sprintf(`Port %d
ListenAddress 127.0.0.1
HostKey %s
AuthorizedKeysFile %s
PidFile %s
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin yes
Subsystem sftp internal-sftp
`, port, filepath.Join(dir, "host_key"), filepath.Join(dir, "authorized_keys"), filepath.Join(dir, "sshd.pid"))
	cfgPath := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		tb.Fatalf("sshtest: %v", err)
	}
	// sshd refuses to start without its privilege separation directory,
	// which a container may not have; an error shows in sshd's log.
	_ = os.MkdirAll("/run/sshd", 0o755)
	logPath := filepath.Join(dir, "sshd.log")
	// -D: stay in the foreground as the test's child; -E: log to a file.
	// Its own process group, so cleanup also ends the per-connection
	// children sshd forks.
	cmd := exec.Command(sshd, "-D", "-f", cfgPath, "-E", logPath)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("sshtest: starting sshd: %v", err)
	}
	// exited is closed when sshd has exited, waitErr then says how: a
	// closed channel, so both the start-up wait and cleanup can see it.
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	tb.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		if tb.Failed() {
			b, _ := os.ReadFile(logPath)
			tb.Logf("sshd log:\n%s", b)
		}
	})
	waitListening(tb, port, exited, func() error { return waitErr }, logPath)
	return &Server{Port: port, KeyFile: filepath.Join(dir, "client_key")}
}

// freePort returns a loopback port free a moment ago: bind, note,
// release. sshd binding it right after is racy in theory only; a failure
// shows in sshd's log.
func freePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("sshtest: finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitListening waits until sshd accepts connections on port, failing the
// test if sshd exits first or 10 s pass.
func waitListening(tb testing.TB, port int, exited <-chan struct{}, waitErr func() error, logPath string) {
	tb.Helper()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = c.Close()
			return
		}
		select {
		case <-exited:
			b, _ := os.ReadFile(logPath)
			tb.Fatalf("sshtest: sshd exited: %v\n%s", waitErr(), b)
		default:
		}
		if time.Now().After(deadline) {
			tb.Fatalf("sshtest: sshd did not listen on %s within 10s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
