package sshtest_test

import (
	"context"
	"errors"
	"os/exec"
	"os/user"
	"strings"
	"testing"
	"time"

	"github.com/fleetdeck/fleetdeck/internal/sshtest"
)

// TestClientLogsIn runs the real ssh client with the server's client
// options: it logs in without a prompt as the test's user and runs a
// command, whose exit status comes back.
func TestClientLogsIn(t *testing.T) {
	ssh := sshtest.Client(t)
	srv := sshtest.Start(t)
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args := append(srv.ClientOptions(), "127.0.0.1", "id -un; exit 7")
	out, err := exec.CommandContext(ctx, ssh, args...).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 7 {
		t.Fatalf("ssh: want the remote command's exit status 7, got %v: %s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != me.Username {
		t.Fatalf("logged in as %q (output %q), want %q", got, out, me.Username)
	}
}
