package provision_test

import (
	"bufio"
	"os"
	"os/exec"
	"testing"

	"go.uber.org/goleak"

	"github.com/fleetdeck/fleetdeck/provision"
)

// TestMain fails the package's tests if any goroutine outlives them.
func TestMain(m *testing.M) {
	provision.SuperviseMain()
	goleak.VerifyTestMain(m)
}

// startChildConsole re-runs this test binary as another process — a
// second console that the test can SIGKILL — running only the test named
// test with env set, and returns it with the first line it printed.
func startChildConsole(t *testing.T, test, env string) (*exec.Cmd, string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	child := exec.Command(exe, "-test.run=^"+test+"$", "-test.count=1")
	child.Env = append(os.Environ(), env)
	child.Stderr = os.Stderr
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		_ = child.Process.Kill()
		_ = child.Wait()
		t.Fatalf("child %s printed nothing: %v", test, err)
	}
	return child, line
}
