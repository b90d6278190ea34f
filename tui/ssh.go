package tui

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/fleetdeck/fleetdeck/fleet"
)

// The ssh action (x) suspends the console, runs the [ssh] command for the
// node under the cursor on the console's terminal, and comes back when it
// exits. The command is a template of words, never a shell line:
//
//	ssh -l {user} -J {jump} {address}
//
// It is split into words first (spaces separate words; '…' and "…" group
// a word with spaces, a backslash escapes the next character, and inside
// "…" only \" and \\ are escapes), then each placeholder is replaced
// inside its word: {name}, {address}, {instance} (the node's), {user} and
// {jump} (the [ssh] settings); {{ and }} are literal braces. The first
// word is the program and must hold no placeholder. A node's values come
// from Consul and are untrusted: they are passed raw in argv (no shell
// sees them), but only after validation — an empty value, or one that
// starts with "-" (ssh would read it as an option, e.g.
// -oProxyCommand=…), is refused, an address must be an IP address or a
// DNS name, a name a DNS name, an instance id [A-Za-z0-9._-].

// sshPlaceholder names a value a template word can hold.
type sshPlaceholder uint8

const (
	phNone sshPlaceholder = iota
	phName
	phAddress
	phInstance
	phUser
	phJump
)

// phByName maps a placeholder's name to its kind.
func phByName(name string) (sshPlaceholder, bool) {
	switch name {
	case "name":
		return phName, true
	case "address":
		return phAddress, true
	case "instance":
		return phInstance, true
	case "user":
		return phUser, true
	case "jump":
		return phJump, true
	}
	return phNone, false
}

// String returns the placeholder as written in a template.
func (p sshPlaceholder) String() string {
	return [...]string{"", "{name}", "{address}", "{instance}", "{user}", "{jump}"}[p]
}

// sshPart is a literal or a placeholder within a word.
type sshPart struct {
	lit string
	ph  sshPlaceholder
}

// SSHCommand is a parsed [ssh] command template (see ParseSSHCommand).
// It is immutable and safe to share.
type SSHCommand struct {
	template   string
	words      [][]sshPart
	user, jump string
}

// DefaultSSHCommand is the command used when [ssh] command is not set:
// ssh {address}, with -l {user} when a user is set and -J {jump} when a
// jump host is set.
func DefaultSSHCommand(user, jump string) string {
	c := "ssh"
	if user != "" {
		c += " -l {user}"
	}
	if jump != "" {
		c += " -J {jump}"
	}
	return c + " {address}"
}

// ParseSSHCommand parses the [ssh] command template ("" = the default,
// see DefaultSSHCommand) with the [ssh] user and jump settings. It fails
// on an unbalanced quote, an unknown placeholder, a placeholder in the
// program word (or an empty one), {user} or {jump} used but not set, or
// a user or jump setting that is not a plain value.
func ParseSSHCommand(template, user, jump string) (*SSHCommand, error) {
	if err := checkSetting("user", user, validUser); err != nil {
		return nil, err
	}
	if err := checkSetting("jump", jump, validJump); err != nil {
		return nil, err
	}
	if strings.TrimSpace(template) == "" {
		template = DefaultSSHCommand(user, jump)
	}
	raw, err := splitWords(template)
	if err != nil {
		return nil, err
	}
	if len(raw) == 0 {
		return nil, errors.New("the command is empty")
	}
	if raw[0] == "" {
		return nil, errors.New("the program (the first word) is empty")
	}
	c := &SSHCommand{template: template, user: user, jump: jump}
	for i, w := range raw {
		parts, err := parseWord(w)
		if err != nil {
			return nil, fmt.Errorf("word %q: %w", w, err)
		}
		for _, p := range parts {
			switch {
			case p.ph != phNone && i == 0:
				return nil, fmt.Errorf("the program (the first word, %q) must not hold a placeholder", w)
			case p.ph == phUser && user == "":
				return nil, errors.New("the command uses {user} but [ssh] user is not set")
			case p.ph == phJump && jump == "":
				return nil, errors.New("the command uses {jump} but [ssh] jump is not set")
			}
		}
		c.words = append(c.words, parts)
	}
	return c, nil
}

// String returns the template.
func (c *SSHCommand) String() string { return c.template }

// checkSetting validates an [ssh] setting (trusted, but a value that
// would become an option or carries controls is a mistake worth naming).
func checkSetting(key, v string, ok func(string) bool) error {
	if v == "" {
		return nil
	}
	if strings.HasPrefix(v, "-") || !ok(v) {
		return fmt.Errorf("[ssh] %s = %q is not a plain value (no leading -, spaces or control characters)", key, v)
	}
	return nil
}

// splitWords splits a template into words: spaces and tabs separate, '…'
// and "…" group, a backslash outside single quotes escapes the next
// character (inside "…" only \" and \\).
func splitWords(s string) ([]string, error) {
	var words []string
	var b strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				words = append(words, b.String())
				b.Reset()
				inWord = false
			}
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, errors.New("unbalanced ' in the command")
			}
			b.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && (s[i+1] == '"' || s[i+1] == '\\') {
					i++
				}
				b.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, errors.New(`unbalanced " in the command`)
			}
			inWord = true
		case c == '\\':
			if i+1 >= len(s) {
				return nil, errors.New("the command ends with a backslash")
			}
			i++
			b.WriteByte(s[i])
			inWord = true
		default:
			b.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, b.String())
	}
	return words, nil
}

// parseWord splits one word into literals and placeholders.
func parseWord(w string) ([]sshPart, error) {
	var parts []sshPart
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			parts = append(parts, sshPart{lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(w); i++ {
		switch c := w[i]; {
		case strings.HasPrefix(w[i:], "{{"), strings.HasPrefix(w[i:], "}}"):
			lit.WriteByte(c)
			i++
		case c == '{':
			j := strings.IndexByte(w[i:], '}')
			if j < 0 {
				return nil, errors.New("unclosed { (write {{ for a literal brace)")
			}
			ph, ok := phByName(w[i+1 : i+j])
			if !ok {
				return nil, fmt.Errorf("unknown placeholder {%s} (known: {name} {address} {instance} {user} {jump}; {{ is a literal brace)", w[i+1:i+j])
			}
			flush()
			parts = append(parts, sshPart{ph: ph})
			i += j
		case c == '}':
			return nil, errors.New("stray } (write }} for a literal brace)")
		default:
			lit.WriteByte(c)
		}
	}
	flush()
	if len(parts) == 0 {
		// An empty word ('' in the template) is an empty argument.
		parts = append(parts, sshPart{})
	}
	return parts, nil
}

// SSHRefusal is why a node's value was not put in the command: it would
// be read as an option, it is empty, or it is not the kind of value the
// placeholder stands for. Its text is safe to show (the value is quoted
// with Go escapes).
type SSHRefusal struct {
	Node, Field, Value, Reason string
}

func (r *SSHRefusal) Error() string {
	return "not running ssh for node " + strconv.Quote(r.Node) + ": its " + r.Field + " " + strconv.Quote(r.Value) + " " + r.Reason
}

// Argv expands the template for node n, validating every node value the
// template uses.
func (c *SSHCommand) Argv(n *fleet.Node) ([]string, error) {
	argv := make([]string, 0, len(c.words))
	for _, w := range c.words {
		var b strings.Builder
		for _, p := range w {
			if p.ph == phNone {
				b.WriteString(p.lit)
				continue
			}
			v, err := c.value(p.ph, n)
			if err != nil {
				return nil, err
			}
			b.WriteString(v)
		}
		argv = append(argv, b.String())
	}
	return argv, nil
}

// value returns the validated value of placeholder p for node n.
func (c *SSHCommand) value(p sshPlaceholder, n *fleet.Node) (string, error) {
	var field, v string
	var valid func(string) bool
	var want string
	switch p {
	case phUser:
		return c.user, nil
	case phJump:
		return c.jump, nil
	case phName:
		field, v, valid, want = "name", n.Name, validDNSName, "is not a DNS name (letters, digits, hyphens, dots)"
	case phAddress:
		field, v, valid, want = "address", n.Address, validHost, "is not an IP address or a DNS name"
	case phInstance:
		field, v, valid, want = "instance id", n.InstanceID, validInstance, "has characters other than A-Z a-z 0-9 . _ -"
	}
	switch {
	case v == "":
		return "", &SSHRefusal{Node: n.Name, Field: field, Value: v, Reason: "is empty"}
	case strings.HasPrefix(v, "-"):
		return "", &SSHRefusal{Node: n.Name, Field: field, Value: v, Reason: "starts with - (ssh would read it as an option)"}
	case !valid(v):
		return "", &SSHRefusal{Node: n.Name, Field: field, Value: v, Reason: want}
	}
	return v, nil
}

// validDNSName reports whether s is a DNS name: dot-separated labels of
// 1–63 letters, digits and hyphens, neither starting nor ending with a
// hyphen, 253 bytes at most.
func validDNSName(s string) bool {
	if len(s) == 0 || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			if c := label[i]; !isAlnum(c) && c != '-' {
				return false
			}
		}
	}
	return true
}

// validHost reports whether s is an IP address (a zone, if any, of safe
// characters) or a DNS name.
func validHost(s string) bool {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Zone() == "" || validInstance(a.Zone())
	}
	return validDNSName(s)
}

// validInstance reports whether s is made of [A-Za-z0-9._-] only.
func validInstance(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '.' && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

// validUser reports whether s is a plain login name.
func validUser(s string) bool { return validInstance(s) }

// validJump reports whether s is an ssh -J value: [user@]host[:port],
// comma-separated, of printable non-space ASCII, no hop empty or starting
// with "-" (ssh runs each hop as a destination of its own).
func validJump(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c > '~' || c == '\'' || c == '"' || c == '\\' {
			return false
		}
	}
	for _, hop := range strings.Split(s, ",") {
		if hop == "" || hop[0] == '-' {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// sshDoneMsg reports the end of an ssh session.
type sshDoneMsg struct {
	label string
	err   error
	// said is the last line ssh wrote to its standard error ("" if
	// none), sanitised: why it could not connect, when it could not.
	said string
}

// apply puts the session's exit status in the footer, with ssh's last
// word when the session failed: the console redraws at once, so what ssh
// printed on the released terminal is gone from the screen.
func (m sshDoneMsg) apply(s *shared) tea.Cmd {
	text, bad := sshOutcome(m.label, m.err)
	if bad && m.said != "" {
		text += ": " + m.said
	}
	s.setFlash(text, bad)
	return nil
}

// sshOutcome describes how an ssh session ended, and whether that is bad.
func sshOutcome(label string, err error) (string, bool) {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return "back from ssh " + label + " (exit status 0)", false
	case errors.As(err, &ee) && ee.Exited() && ee.ExitCode() == 255:
		return "ssh " + label + ": exit status 255 (ssh could not connect or log in, or the connection dropped)", true
	case errors.As(err, &ee) && ee.Exited():
		return "ssh " + label + ": exit status " + strconv.Itoa(ee.ExitCode()), true
	case errors.As(err, &ee):
		return "ssh " + label + ": " + ee.String(), true
	}
	return "ssh " + label + ": " + err.Error(), true
}

// sshAction is x: ssh into the node node() returns (nil: none here). It
// is dangerous: read-only consoles do not offer it.
func (s *shared) sshAction(node func() *fleet.Node) action {
	return action{keys: []string{"x"}, short: "ssh", dangerous: true,
		desc: "ssh into the node ([ssh] command; the console suspends and comes back when the session ends)",
		when: func() bool { return node() != nil },
		do: func(tea.KeyPressMsg) tea.Cmd {
			return s.sshTo(node())
		}}
}

// sshTo suspends the console and runs the ssh command for n.
func (s *shared) sshTo(n *fleet.Node) tea.Cmd {
	argv, err := s.ssh.Argv(n)
	if err != nil {
		s.setFlash(err.Error(), true)
		return nil
	}
	label := sanitize(n.Name)
	if n.Address != "" && n.Address != n.Name {
		label += " (" + sanitize(n.Address) + ")"
	}
	// The console's context ends the session if the console is told to
	// stop (SIGTERM); an interactive session has no other deadline. It
	// ends it with SIGTERM, on which ssh puts the terminal back as it
	// found it (SIGKILL, exec's default, would leave it raw), and kills
	// it only if it is still there sshWaitDelay later.
	cmd := exec.CommandContext(s.ctx, argv[0], argv[1:]...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = sshWaitDelay
	e := &sshExec{cmd: cmd, banner: "fleetdeck: ssh " + label + " — end the session to return to the console\r\n"}
	return tea.Exec(e, func(err error) tea.Msg { return sshDoneMsg{label: label, err: err, said: e.stderr.last()} })
}

// sshWaitDelay bounds how long a session outlives the console's context,
// and how long the console waits for the session's output after ssh has
// exited (a process ssh left behind that holds it: the console must come
// back all the same).
const sshWaitDelay = 3 * time.Second

// errInputNotFile is why ssh does not run when the console's input is not
// a file (a terminal device, or a pipe).
var errInputNotFile = errors.New("the console's input is not a terminal (or other file) that ssh can be given")

// sshExec runs an ssh command on the released terminal, after a line
// saying what runs and how to come back.
type sshExec struct {
	cmd    *exec.Cmd
	banner string
	// stderr keeps the tail of what ssh writes to its standard error,
	// which still goes to the terminal as well.
	stderr tailLine
}

// Run runs the command on the console's terminal. Its input must be a
// file, which ssh reads itself: given any other reader, exec would copy
// it to ssh from a goroutine of the console, and that goroutine would
// stay blocked in a read after ssh exits — Wait with it, so the console
// would not come back until a key is pressed, and that key (and, with
// Bubble Tea's reader of a non-file, which cannot be cancelled either,
// the next) would be lost.
func (e *sshExec) Run() error {
	if _, ok := e.cmd.Stdin.(*os.File); !ok && e.cmd.Stdin != nil {
		return errInputNotFile
	}
	if e.cmd.Stdout != nil {
		_, _ = io.WriteString(e.cmd.Stdout, e.banner)
	}
	return e.cmd.Run()
}

func (e *sshExec) SetStdin(r io.Reader) {
	if e.cmd.Stdin == nil {
		e.cmd.Stdin = r
	}
}

func (e *sshExec) SetStdout(w io.Writer) {
	if e.cmd.Stdout == nil {
		e.cmd.Stdout = w
	}
}

// SetStderr gives ssh the terminal as its standard error, through a
// copy that keeps the tail (exec copies it from a pipe; WaitDelay bounds
// the wait for a process that keeps the pipe open, such as a
// ControlPersist master).
func (e *sshExec) SetStderr(w io.Writer) {
	if e.cmd.Stderr == nil {
		e.cmd.Stderr = io.MultiWriter(w, &e.stderr)
	}
}

// tailLine is an io.Writer that keeps the last tailMax bytes written.
// exec writes to it from one goroutine and the console reads it after
// Wait, so it needs no lock.
type tailLine struct{ b []byte }

// tailMax is how much of ssh's standard error is kept.
const tailMax = 512

func (t *tailLine) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if over := len(t.b) - tailMax; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

// last returns the last non-empty line kept, sanitised.
func (t *tailLine) last() string {
	lines := strings.Split(strings.ReplaceAll(string(t.b), "\r", "\n"), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(sanitize(lines[i])); l != "" {
			return l
		}
	}
	return ""
}
