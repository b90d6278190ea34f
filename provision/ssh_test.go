package provision_test

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fleetdeck/fleetdeck/internal/sshtest"
	"github.com/fleetdeck/fleetdeck/provision"
)

func TestRunOverRealSSH(t *testing.T) {
	sshtest.Client(t)
	srv := sshtest.Start(t)
	port, key := srv.Port, srv.KeyFile
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
