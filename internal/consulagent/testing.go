package consulagent

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"
)

// EnvRequire names the environment variable that turns "no Consul
// available" from a skipped test into a failed one. The project's test
// command sets FLEETDECK_REQUIRE_CONSUL=1 so CI can never pass by skipping.
const EnvRequire = "FLEETDECK_REQUIRE_CONSUL"

// TestBinary returns a Consul binary for a test or benchmark, building it on
// first use (progress goes to the test log). It skips tb only when no binary
// can be had and no Go toolchain is there to build one, unless
// FLEETDECK_REQUIRE_CONSUL=1, which makes that a failure.
func TestBinary(tb testing.TB) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	bin, err := Binary(ctx, tbWriter{tb})
	if err != nil {
		if _, goErr := exec.LookPath("go"); goErr != nil && os.Getenv(EnvRequire) != "1" {
			tb.Skipf("no Consul binary and no Go toolchain to build one (set %s): %v", EnvBinary, err)
		}
		tb.Fatalf("consulagent: %v", err)
	}
	return bin
}

// NeedProgram returns the path of a program a test needs (ansible-playbook,
// sshd, ssh-keygen, …). Absent, the test skips under plain `go test`, and
// fails when FLEETDECK_REQUIRE_CONSUL=1 (the project's test command and
// CI), the same rule as TestBinary's.
func NeedProgram(tb testing.TB, name string) string {
	tb.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv(EnvRequire) == "1" {
		tb.Fatalf("%s is required (%s=1): %v", name, EnvRequire, err)
	}
	tb.Skipf("%s not installed: %v", name, err)
	return ""
}

// StartTest starts an agent for a test or benchmark (see TestBinary for
// when it skips) and stops it in tb.Cleanup. It fails tb if the agent does
// not come up within a minute.
func StartTest(tb testing.TB, opts Options) *Agent {
	tb.Helper()
	if opts.Binary == "" {
		opts.Binary = TestBinary(tb)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, err := Start(ctx, opts)
	if err != nil {
		tb.Fatalf("consulagent: %v", err)
	}
	tb.Cleanup(func() {
		if err := a.Stop(); err != nil {
			tb.Errorf("consulagent: %v", err)
		}
	})
	return a
}

// tbWriter sends build progress to the test log.
type tbWriter struct{ tb testing.TB }

func (w tbWriter) Write(p []byte) (int, error) {
	w.tb.Logf("%s", p)
	return len(p), nil
}
