package provision_test

import (
	"bufio"
	"maps"
	"os"
	"regexp"
	"strconv"
	"testing"

	"github.com/fleetdeck/fleetdeck/provision"
)

// rcMixedPlaybook has every kind of result PLAY RECAP counts: changed and
// unchanged oks, skips, an ignored failure that changed, a loop, failures
// rescued by a block (nested, and a rescue that fails itself), an include,
// a hard failure, an ignored unreachable host.
const rcMixedPlaybook = `- hosts: all
  gather_facts: false
  tasks:
    - name: changed cmd
      command: "true"
      when: inventory_hostname != "h4"
    - name: unchanged
      command: "true"
      changed_when: false
    - name: skipped but on h1
      debug: msg=x
      when: inventory_hostname == "h1"
    - name: ignored failure that changed
      command: "false"
      ignore_errors: true
      when: inventory_hostname == "h2"
    - name: loop
      command: "echo {{ item }}"
      loop: [a, b]
      changed_when: item == "b"
      when: inventory_hostname == "h3"
    - block:
        - name: fails in a block
          command: "false"
          when: inventory_hostname in ["h3", "h6"]
        - block:
            - name: fails in a nested block
              fail: msg=nested
              when: inventory_hostname == "h4"
          rescue:
            - name: the inner rescue fails too
              fail: msg=inner
              when: inventory_hostname == "h4"
      rescue:
        - name: rescue
          debug: msg=rescued
        - name: the rescue fails on h6
          fail: msg=r
          when: inventory_hostname == "h6"
      always:
        - name: always
          debug: msg=always
    - name: include
      include_tasks: rc-inc.yml
      when: inventory_hostname == "h1"
    - name: hard failure
      fail: msg=hard
      when: inventory_hostname == "h5"
    - name: unreachable but ignored
      command: "true"
      vars:
        ansible_connection: ssh
        ansible_host: 127.0.0.1
        ansible_port: 1
      ignore_unreachable: true
      when: inventory_hostname == "h1"
    - name: after
      debug: msg=after
`

const rcIncluded = `- name: included
  command: "true"
`

// rcSerialPlaybook fails its first batch: the play stops there, and the
// other hosts are never processed (they are not in the recap).
const rcSerialPlaybook = `- hosts: all
  gather_facts: false
  serial: 1
  tasks:
    - name: fail the first batch
      fail: msg=first
      when: inventory_hostname == "h1"
`

var rcRecapLine = regexp.MustCompile(`(?m)^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)\s+skipped=(\d+)\s+rescued=(\d+)\s+ignored=(\d+)\s*$`)

// rcPlayRecap reads the PLAY RECAP ansible-playbook printed.
func rcPlayRecap(t *testing.T, outputPath string) map[string]provision.HostStats {
	t.Helper()
	out, err := os.ReadFile(outputPath)
	if err != nil {
		t.Fatal(err)
	}
	recap := map[string]provision.HostStats{}
	for _, m := range rcRecapLine.FindAllStringSubmatch(string(out), -1) {
		n := make([]int, 7)
		for i := range n {
			n[i], _ = strconv.Atoi(m[i+2])
		}
		recap[m[1]] = provision.HostStats{OK: n[0], Changed: n[1], Unreachable: n[2], Failures: n[3], Skipped: n[4], Rescued: n[5], Ignored: n[6]}
	}
	if len(recap) == 0 {
		t.Fatalf("no PLAY RECAP in the output:\n%s", out)
	}
	return recap
}

// rcEvents reads a run's event log.
func rcEvents(t *testing.T, path string) []provision.RunEvent {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var evs []provision.RunEvent
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		ev, err := provision.ParseRunEvent(sc.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
	}
	return evs
}

// The run board agrees with the PLAY RECAP ansible-playbook prints, while
// the run goes on (from the results alone, before the recap arrives) and
// at its end; a host reads changed only once a result changed something;
// the summary of the board is the recap's hosts classified one way.
func TestBoardAgreesWithPlayRecap(t *testing.T) {
	rtNeed(t, "ssh")
	r := rtRunner(t, map[string]string{"mixed.yml": rcMixedPlaybook, "rc-inc.yml": rcIncluded, "serial.yml": rcSerialPlaybook}, nil)
	var hosts []rtHost
	for i := 1; i <= 6; i++ {
		hosts = append(hosts, rtHost{name: "h" + strconv.Itoa(i)})
	}
	inv := rtInventory(t, hosts...)
	plan, res := rtRun(t, r, provision.RunSpec{Playbook: "mixed.yml", Inventory: inv})
	printed := rcPlayRecap(t, res.OutputPath)
	if len(printed) != 6 {
		t.Fatalf("PLAY RECAP lists %d hosts: %v", len(printed), printed)
	}
	// The cases the playbook is for did happen.
	if printed["h2"].Ignored != 1 || printed["h3"].Rescued != 1 || printed["h4"].Rescued != 2 || printed["h6"].Rescued != 1 ||
		printed["h6"].Failures != 1 || printed["h5"].Failures != 1 || printed["h1"].Ignored != 1 || printed["h4"].Changed != 0 {
		t.Fatalf("the playbook did not produce the cases it is for: %v", printed)
	}

	board := provision.NewRunState(plan.Hosts)
	changedSeen := map[string]bool{}
	for _, ev := range rcEvents(t, res.EventsPath) {
		if ev.Event == provision.EventStats {
			// Before the recap: the board counted what the recap says.
			for h, want := range printed {
				if got := board.Hosts[h].Counts; got != want {
					t.Errorf("%s: the board counted %+v from the results, PLAY RECAP says %+v", h, got, want)
				}
			}
		}
		board.Apply(ev)
		if (ev.Event == provision.EventRunnerOK || ev.Event == provision.EventRunnerFailed && ev.IgnoreErrors) && ev.Changed {
			changedSeen[ev.Host] = true
		}
		for h, hs := range board.Hosts {
			if hs.Status == provision.HostChanged && !changedSeen[h] {
				t.Fatalf("%s reads changed after event %d (%s) without a changed result", h, ev.Seq, ev.Event)
			}
		}
	}
	want := map[provision.HostStatus]int{}
	for h, c := range printed {
		st := provision.StatusOfCounts(c)
		want[st]++
		if board.Hosts[h].Status != st || res.State.Hosts[h].Status != st {
			t.Errorf("%s: board %s, live board %s, recap %+v → %s", h, board.Hosts[h].Status, res.State.Hosts[h].Status, c, st)
		}
	}
	if got := res.State.StatusCounts(); !maps.Equal(got, want) {
		t.Errorf("board summary %v, PLAY RECAP %v", got, want)
	}
	if board.Hosts["h4"].Status != provision.HostOK {
		t.Errorf("h4 changed nothing and reads %s", board.Hosts["h4"].Status)
	}

	// A play that stops after its first batch: the other hosts did not
	// run, and the summary says so.
	_, res = rtRun(t, r, provision.RunSpec{Playbook: "serial.yml", Inventory: inv})
	printed = rcPlayRecap(t, res.OutputPath)
	if len(printed) != 1 || printed["h1"].Failures != 1 {
		t.Fatalf("PLAY RECAP of the serial play: %v", printed)
	}
	got := res.State.StatusCounts()
	if !maps.Equal(got, map[provision.HostStatus]int{provision.HostFailed: 1, provision.HostNotRun: 5}) {
		t.Errorf("serial play summary %v, want 1 failed and 5 not run", got)
	}
}
