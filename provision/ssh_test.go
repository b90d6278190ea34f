package provision_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fleetdeck/fleetdeck/provision"
)

// rtSSHD runs /usr/sbin/sshd on a free loopback port as a child of the
// test, with a throwaway host key and client key. It returns the port and
// the client's private key path; sshd is stopped at cleanup.
func rtSSHD(t *testing.T) (port int, keyFile string) {
	t.Helper()
	sshd := "/usr/sbin/sshd"
	if _, err := os.Stat(sshd); err != nil {
		rtNeed(t, "sshd")
		sshd, _ = exec.LookPath("sshd")
	}
	keygen := rtNeed(t, "ssh-keygen")
	dir := t.TempDir()
	for _, k := range []string{"host_key", "client_key"} {
		out, err := exec.Command(keygen, "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(dir, k)).CombinedOutput()
		if err != nil {
			t.Fatalf("ssh-keygen: %v: %s", err, out)
		}
	}
	pub, err := os.ReadFile(filepath.Join(dir, "client_key.pub"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), pub, 0o600); err != nil {
		t.Fatal(err)
	}
	// A free port: bind, note, release. sshd binding it right after is
	// racy in theory only; a failure shows in sshd's log.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port = l.Addr().(*net.TCPAddr).Port
	l.Close()
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
		t.Fatal(err)
	}
	// sshd wants its privilege separation directory.
	os.MkdirAll("/run/sshd", 0o755)
	logPath := filepath.Join(dir, "sshd.log")
	// -D: stay in the foreground as our child; -e: log to stderr.
	cmd := exec.Command(sshd, "-D", "-e", "-f", cfgPath, "-E", logPath)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting sshd: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("sshd log:\n%s", b)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
		if err == nil {
			c.Close()
			break
		}
		select {
		case err := <-exited:
			b, _ := os.ReadFile(logPath)
			t.Fatalf("sshd exited: %v\n%s", err, b)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("sshd did not listen on %d: %v", port, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return port, filepath.Join(dir, "client_key")
}

func TestRunOverRealSSH(t *testing.T) {
	rtNeed(t, "ssh")
	port, key := rtSSHD(t)
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(t.TempDir(), "touched-over-ssh")
	pb := fmt.Sprintf(`- hosts: all
  gather_facts: false
  tasks:
    - name: who am I over ssh
      command: id -un
    - name: touch a file
      file:
        path: %q
        state: touch
`, marker)
	r := rtRunner(t, map[string]string{"ssh.yml": pb}, func(c *provision.RunnerConfig) {
		c.Env = []string{"ANSIBLE_HOST_KEY_CHECKING=False", "ANSIBLE_SSH_ARGS=-o ControlMaster=auto -o ControlPersist=60s -o UserKnownHostsFile=/dev/null"}
	})
	inv := rtInventory(t, rtHost{name: "remote1", vars: map[string]any{
		"ansible_connection":           "ssh",
		"ansible_host":                 "127.0.0.1",
		"ansible_port":                 port,
		"ansible_user":                 me.Username,
		"ansible_ssh_private_key_file": key,
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	plan, err := r.Preview(ctx, provision.RunSpec{Playbook: "ssh", Inventory: inv, Limit: []string{"remote1"}})
	if err != nil {
		t.Fatal(err)
	}
	run, err := r.Start(ctx, plan)
	if err != nil {
		t.Fatal(err)
	}
	res, err := run.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := os.ReadFile(res.OutputPath)
	if res.End.Outcome != provision.OutcomeOK || res.State.Hosts["remote1"].Status != provision.HostChanged {
		t.Fatalf("end %+v host %+v\n%s", res.End, res.State.Hosts["remote1"], out)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Errorf("the task did not run over ssh: %v", err)
	}
	var who string
	b, _ := os.ReadFile(res.EventsPath)
	for _, line := range strings.Split(string(b), "\n") {
		if ev, err := provision.ParseRunEvent([]byte(line)); err == nil && ev.Action == "command" && ev.Event == provision.EventRunnerOK {
			who = ev.Result.Stdout
		}
	}
	if who != me.Username {
		t.Errorf("id -un over ssh = %q, want %q", who, me.Username)
	}
	// The ssh ControlPersist master must not outlive the run.
	if left := rtProcs(t, run.Pid(), ""); len(left) > 0 {
		t.Errorf("processes left after the run: %v", left)
	}
	if left := rtProcs(t, -1, "Port="+strconv.Itoa(port)); len(left) > 0 {
		t.Errorf("ssh processes to the test sshd left: %v", left)
	}
}
