package tui

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fleetdeck/fleetdeck/fleet"
	"github.com/fleetdeck/fleetdeck/internal/sshtest"
)

// sshNode is a node whose every value a template can use is valid.
func sshNode() *fleet.Node {
	return &fleet.Node{Name: "web-1", Datacenter: "dc1", Address: "10.0.0.5", InstanceID: "i-0abc"}
}

func TestDefaultSSHCommand(t *testing.T) {
	for _, c := range []struct {
		user, jump, tmpl string
		argv             []string
	}{
		{"", "", "ssh {address}", []string{"ssh", "10.0.0.5"}},
		{"deploy", "", "ssh -l {user} {address}", []string{"ssh", "-l", "deploy", "10.0.0.5"}},
		{"", "bastion.example.com", "ssh -J {jump} {address}", []string{"ssh", "-J", "bastion.example.com", "10.0.0.5"}},
		{"deploy", "ops@bastion:2222,bastion2", "ssh -l {user} -J {jump} {address}", []string{"ssh", "-l", "deploy", "-J", "ops@bastion:2222,bastion2", "10.0.0.5"}},
	} {
		if got := DefaultSSHCommand(c.user, c.jump); got != c.tmpl {
			t.Errorf("DefaultSSHCommand(%q, %q) = %q, want %q", c.user, c.jump, got, c.tmpl)
		}
		// "" and blank templates are the default.
		for _, tmpl := range []string{"", "  \t"} {
			cmd, err := ParseSSHCommand(tmpl, c.user, c.jump)
			if err != nil {
				t.Fatalf("ParseSSHCommand(%q, %q, %q): %v", tmpl, c.user, c.jump, err)
			}
			argv, err := cmd.Argv(sshNode())
			if err != nil || !slices.Equal(argv, c.argv) {
				t.Errorf("default argv (user %q jump %q) = %q, %v; want %q", c.user, c.jump, argv, err, c.argv)
			}
			if cmd.String() != c.tmpl {
				t.Errorf("String() = %q, want %q", cmd.String(), c.tmpl)
			}
		}
	}
}

func TestSSHCommandArgv(t *testing.T) {
	for _, c := range []struct {
		tmpl, user string
		argv       []string
	}{
		{"ssh {address}", "", []string{"ssh", "10.0.0.5"}},
		{"ssh \t  {address}  ", "", []string{"ssh", "10.0.0.5"}},
		{"ssh {user}@{address}", "deploy", []string{"ssh", "deploy@10.0.0.5"}},
		{"ssh -o Tag=fd-{instance}-{name} {name}", "", []string{"ssh", "-o", "Tag=fd-i-0abc-web-1", "web-1"}},
		// Quotes group words; no shell sees them.
		{"/usr/bin/ssh -o 'ProxyCommand=aws ssm start-session --target {instance}' {address}", "",
			[]string{"/usr/bin/ssh", "-o", "ProxyCommand=aws ssm start-session --target i-0abc", "10.0.0.5"}},
		{`ssh "-oSetEnv=A=\"b c\"" {address}`, "", []string{"ssh", `-oSetEnv=A="b c"`, "10.0.0.5"}},
		{`ssh "a\\b" "c\d" 'e\f' g\ h {address}`, "", []string{"ssh", `a\b`, `c\d`, `e\f`, "g h", "10.0.0.5"}},
		{`ssh a'b c'"d e"f {address}`, "", []string{"ssh", "ab cd ef", "10.0.0.5"}},
		{"ssh '' {address}", "", []string{"ssh", "", "10.0.0.5"}},
		// {{ and }} are literal braces, also next to a placeholder.
		{"echo {{literal}} {{{name}}} x}}y", "", []string{"echo", "{literal}", "{web-1}", "x}y"}},
		{"ssh '{{address}}' {address}", "", []string{"ssh", "{address}", "10.0.0.5"}},
	} {
		cmd, err := ParseSSHCommand(c.tmpl, c.user, "")
		if err != nil {
			t.Errorf("ParseSSHCommand(%q): %v", c.tmpl, err)
			continue
		}
		argv, err := cmd.Argv(sshNode())
		if err != nil || !slices.Equal(argv, c.argv) {
			t.Errorf("%q: argv %q, %v; want %q", c.tmpl, argv, err, c.argv)
		}
	}
}

func TestParseSSHCommandErrors(t *testing.T) {
	for _, c := range []struct{ tmpl, user, jump, want string }{
		{"ssh 'unbalanced {address}", "", "", "unbalanced '"},
		{`ssh "unbalanced {address}`, "", "", `unbalanced "`},
		{`ssh {address} \`, "", "", "ends with a backslash"},
		{"ssh {host}", "", "", "unknown placeholder {host}"},
		{"ssh {}", "", "", "unknown placeholder {}"},
		{"ssh {ADDRESS}", "", "", "unknown placeholder {ADDRESS}"},
		{"ssh {address", "", "", "unclosed {"},
		{"ssh address}", "", "", "stray }"},
		{"{address} -l root", "", "", "must not hold a placeholder"},
		{"ssh{user} {address}", "deploy", "", "must not hold a placeholder"},
		{"'' {address}", "", "", "the program (the first word) is empty"},
		{"ssh {user}@{address}", "", "", "uses {user} but [ssh] user is not set"},
		{"ssh -J {jump} {address}", "", "", "uses {jump} but [ssh] jump is not set"},
		{"", "-oProxyCommand=touch x", "", "[ssh] user"},
		{"", "de ploy", "", "[ssh] user"},
		{"", "root\n", "", "[ssh] user"},
		{"", "röot", "", "[ssh] user"},
		{"", "root@host", "", "[ssh] user"},
		{"", "", "-oProxyCommand=touch x", "[ssh] jump"},
		{"", "", "bastion,-oProxyCommand=touch", "[ssh] jump"},
		{"", "", "bastion,", "[ssh] jump"},
		{"", "", "bas tion", "[ssh] jump"},
		{"", "", "bastion'", "[ssh] jump"},
		{"", "", "bastion\x1b[2J", "[ssh] jump"},
	} {
		cmd, err := ParseSSHCommand(c.tmpl, c.user, c.jump)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseSSHCommand(%q, %q, %q) = %v, %v; want an error with %q", c.tmpl, c.user, c.jump, cmd, err, c.want)
		}
	}
}

// TestSSHRefusesHostileNodeValues: a node's values come from Consul. One
// that ssh could read as an option, or that is not what its placeholder
// stands for, is refused with an SSHRefusal naming it (quoted, so the
// message itself is inert); no argv is returned.
func TestSSHRefusesHostileNodeValues(t *testing.T) {
	hostile := []string{
		"-oProxyCommand=touch /tmp/x", "-x", "-", "web 1", "web\n1", "web\r1", "web\t1", "$(id)", "`id`", "web;id", "web|id", "web&id",
		"web>x", "wéb", "web\u202e1", "web\x1b]52;c;ZXZpbA==\x07", "web\x00", "../x", "web/1", "web@x", "", "fe80::1%eth0;id",
		"[::1]", "web:22", "*", "web,x",
	}
	for _, field := range []string{"address", "name", "instance id"} {
		tmpl := map[string]string{"address": "ssh {address}", "name": "ssh {name}", "instance id": "ssh -o Tag={instance} 10.0.0.9"}[field]
		cmd, err := ParseSSHCommand(tmpl, "", "")
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range hostile {
			if field == "instance id" && (v == "../x" || v == "-") {
				continue // dots are fine in an instance id; "-" is tested as leading below
			}
			n := sshNode()
			switch field {
			case "address":
				n.Address = v
			case "name":
				n.Name = v
			case "instance id":
				n.InstanceID = v
			}
			argv, err := cmd.Argv(n)
			var r *SSHRefusal
			if !errors.As(err, &r) || argv != nil {
				t.Errorf("%s %q: argv %q, err %v; want an SSHRefusal and no argv", field, v, argv, err)
				continue
			}
			if r.Field != field || r.Value != v || r.Node != n.Name {
				t.Errorf("%s %q: refusal %+v", field, v, r)
			}
			msg := err.Error()
			if !strings.Contains(msg, strconv.Quote(v)) || !strings.HasPrefix(msg, "not running ssh for node ") {
				t.Errorf("%s %q: message %q does not name the value", field, v, msg)
			}
			for _, b := range msg {
				if b < ' ' || b == 0x7f || b == '\u202e' {
					t.Errorf("%s %q: message carries control %q: %q", field, v, b, msg)
				}
			}
			switch {
			case v == "":
				if !strings.Contains(msg, "is empty") {
					t.Errorf("empty %s: %q", field, msg)
				}
			case v[0] == '-':
				if !strings.Contains(msg, "starts with - (ssh would read it as an option)") {
					t.Errorf("%s %q: %q", field, v, msg)
				}
			}
		}
	}
	// Only the values the template uses are checked: a hostile name does
	// not stop ssh {address}.
	n := sshNode()
	n.Name = "evil\nname"
	cmd, _ := ParseSSHCommand("ssh {address}", "", "")
	if argv, err := cmd.Argv(n); err != nil || !slices.Equal(argv, []string{"ssh", "10.0.0.5"}) {
		t.Errorf("unused hostile name: %q, %v", argv, err)
	}
}

func TestSSHAcceptsValidNodeValues(t *testing.T) {
	cmd, err := ParseSSHCommand("ssh -o Tag={instance} {name} {address}", "", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []fleet.Node{
		{Name: "web-1", Address: "10.0.0.5", InstanceID: "i-0abc"},
		{Name: "web-1.prod.example.com", Address: "2001:db8::1", InstanceID: "projects_p1.zone-a.vm_1"},
		{Name: "a", Address: "fe80::1%eth0", InstanceID: "1"},
		{Name: "WEB01", Address: "::1", InstanceID: "x"},
		{Name: "node-00000", Address: "web-1.internal", InstanceID: "i-0abc"},
	} {
		argv, err := cmd.Argv(&n)
		if want := []string{"ssh", "-o", "Tag=" + n.InstanceID, n.Name, n.Address}; err != nil || !slices.Equal(argv, want) {
			t.Errorf("%+v: argv %q, %v; want %q", n, argv, err, want)
		}
	}
}

// TestSSHExecNeedsAFileInput: given a reader that is not a file, the
// command does not start (see sshExec.Run for why); given a file, it runs.
func TestSSHExecNeedsAFileInput(t *testing.T) {
	touch := sshtest.Need(t, "touch")
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e := &sshExec{cmd: exec.CommandContext(ctx, touch, filepath.Join(dir, "reader")), banner: "banner\r\n"}
	e.SetStdin(strings.NewReader("typed"))
	var out strings.Builder
	e.SetStdout(&out)
	if err := e.Run(); !errors.Is(err, errInputNotFile) {
		t.Fatalf("Run with a plain reader: %v, want errInputNotFile", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "reader")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the command ran: %v", err)
	}
	if out.Len() != 0 {
		t.Fatalf("banner written for a command that did not run: %q", out.String())
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	e = &sshExec{cmd: exec.CommandContext(ctx, touch, filepath.Join(dir, "file")), banner: "banner\r\n"}
	e.SetStdin(devnull)
	e.SetStdout(&out)
	if err := e.Run(); err != nil {
		t.Fatalf("Run with a file: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "file")); err != nil || out.String() != "banner\r\n" {
		t.Fatalf("the command did not run (%v) or no banner (%q)", err, out.String())
	}
}

// shellQuote quotes s as one word of an [ssh] command template.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// TestEndToEndSSHRealClient is x with real components: the console as a
// Bubble Tea program on a virtual terminal, the OpenSSH client, and sshd.
// The session's remote command touches a marker and exits 3; the console
// comes back, redrawn, says so, and keeps taking keys.
func TestEndToEndSSHRealClient(t *testing.T) {
	ssh := sshtest.Client(t)
	srv := sshtest.Start(t)
	marker := filepath.Join(t.TempDir(), "touched-over-ssh")
	words := []string{shellQuote(ssh)}
	for _, o := range srv.ClientOptions() {
		words = append(words, shellQuote(o))
	}
	words = append(words, "{address}", shellQuote("touch "+marker+"; exit 3"))
	cmd, err := ParseSSHCommand(strings.Join(words, " "), "", "")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	now := time.Now()
	nodes := synthNodes(3, now.Add(-time.Hour))
	nodes[0].Address = "127.0.0.1"
	pub := fleet.NewPublisher(fleet.NewSnapshot(1, now, nodes, connected(now), nil))
	term, done := runProgramSize(ctx, New(ctx, Options{Feed: pub, NoColor: true, SSH: cmd}), 140, 30)
	term.waitFor(t, "node-00000", "nodes 1/3", "x ssh")
	term.emu.SendText("x")
	// The footer, on the console drawn again.
	term.waitForWithin(t, 30*time.Second, "ssh node-00000 (127.0.0.1): exit status 3", "node-00000", "node-00002", "nodes 1/3")
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("the remote command did not run: %v", err)
	}
	// The session was announced on the terminal before ssh ran.
	term.waitRaw(t, "fleetdeck: ssh node-00000 (127.0.0.1) — end the session to return to the console")
	// The console takes keys again: the first one is not lost.
	term.emu.SendText("j")
	term.waitFor(t, "nodes 2/3")
	term.emu.SendText("k")
	term.waitFor(t, "nodes 1/3")
	term.quit(t, done, cancel)
}

// TestEndToEndSSHRefusesHostileAddress: the template's program is a real
// touch, which would create a file named after the address. A node whose
// address ssh would read as an option, or is no address, starts no
// process; the footer says why. A valid address runs it.
func TestEndToEndSSHRefusesHostileAddress(t *testing.T) {
	touch := sshtest.Need(t, "touch")
	dir := t.TempDir()
	cmd, err := ParseSSHCommand(shellQuote(touch)+" "+shellQuote(dir+"/")+"{address}", "", "")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	now := time.Now()
	nodes := synthNodes(3, now.Add(-time.Hour))
	nodes[0].Address = "-oProxyCommand=touch x"
	nodes[1].Address = "$(touch x)"
	nodes[2].Address = "10.0.0.2"
	pub := fleet.NewPublisher(fleet.NewSnapshot(1, now, nodes, connected(now), nil))
	term, done := runProgramSize(ctx, New(ctx, Options{Feed: pub, NoColor: true, SSH: cmd}), 200, 30)
	term.waitFor(t, "node-00000", "nodes 1/3")
	term.emu.SendText("x")
	term.waitFor(t, `not running ssh for node "node-00000": its address "-oProxyCommand=touch x" starts with - (ssh would read it as an option)`)
	term.emu.SendText("j")
	term.waitFor(t, "nodes 2/3")
	term.emu.SendText("x")
	term.waitFor(t, `not running ssh for node "node-00001": its address "$(touch x)" is not an IP address or a DNS name`)
	if bytes := term.rawBytes(); strings.Contains(string(bytes), "fleetdeck: ssh") {
		t.Fatal("a session was announced for a refused node")
	}
	// The same template on a valid address does run touch: the refusals
	// above are what kept it from running.
	term.emu.SendText("j")
	term.waitFor(t, "nodes 3/3")
	term.emu.SendText("x")
	term.waitFor(t, "back from ssh node-00002 (10.0.0.2) (exit status 0)")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "10.0.0.2" {
		t.Fatalf("files created: %v, want only 10.0.0.2", entries)
	}
	term.quit(t, done, cancel)
}

// TestReadOnlyHasNoSSH: x is dangerous, so a read-only console neither
// offers it (footer, help) nor does anything on it; y still copies.
func TestReadOnlyHasNoSSH(t *testing.T) {
	for _, ro := range []bool{false, true} {
		snap := synthSnapshot(5)
		h := newHarnessWith(t, snap, 160, 30, true, func(o *Options) { o.ReadOnly = ro })
		foot := h.screen()
		if got := strings.Contains(foot, "x ssh"); got == ro {
			t.Errorf("read-only %v: footer offers x ssh: %v\n%s", ro, got, foot)
		}
		if !strings.Contains(foot, "y copy") {
			t.Errorf("read-only %v: footer lacks y copy\n%s", ro, foot)
		}
		if cmd := h.send(keyMsg("x")); (cmd != nil) == ro {
			t.Errorf("read-only %v: x returned a command: %v", ro, cmd != nil)
		}
		h.keys("?")
		help := h.screen()
		if got := strings.Contains(help, "ssh into the node"); got == ro {
			t.Errorf("read-only %v: help lists ssh: %v\n%s", ro, got, help)
		}
		if !strings.Contains(help, "copy the node's name, address or instance id") {
			t.Errorf("read-only %v: help lacks copy\n%s", ro, help)
		}
		h.keys("esc")
		h.keys("y")
		h.mustContain("copy from node-00000:", "n/y name", "a address", "i instance", "esc cancel")
		if cmd := h.send(keyMsg("a")); cmd == nil {
			t.Errorf("read-only %v: y a copied nothing", ro)
		}
		h.mustContain("copied the address 10.0.0.0")
	}
}

// TestEndToEndSSHFailureSaysWhy: when ssh itself fails (here: nothing
// listens on the port), the console comes back at once, so the footer
// carries ssh's own last line along with the exit status.
func TestEndToEndSSHFailureSaysWhy(t *testing.T) {
	ssh := sshtest.Client(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close() // closed: connections to it are refused
	cmd, err := ParseSSHCommand(shellQuote(ssh)+" -p "+port+" -o BatchMode=yes -o ConnectTimeout=5 {address} true", "", "")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	now := time.Now()
	nodes := synthNodes(2, now.Add(-time.Hour))
	nodes[0].Address = "127.0.0.1"
	pub := fleet.NewPublisher(fleet.NewSnapshot(1, now, nodes, connected(now), nil))
	term, done := runProgramSize(ctx, New(ctx, Options{Feed: pub, NoColor: true, SSH: cmd}), 200, 30)
	term.waitFor(t, "node-00000", "nodes 1/2")
	term.emu.SendText("x")
	term.waitForWithin(t, 30*time.Second, "ssh node-00000 (127.0.0.1): exit status 255 (ssh could not connect or log in, or the connection dropped): ssh: connect to host 127.0.0.1 port "+port+": Connection refused", "node-00001")
	term.quit(t, done, cancel)
}
