package provision

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Errors a launch form can show as they are.
var (
	// ErrAnsibleNotFound: ansible-playbook is not installed or not on PATH.
	ErrAnsibleNotFound = errors.New("ansible-playbook not found: install it with `apt-get install --no-install-recommends ansible-core` (or set the ansible-playbook path)")
	// ErrExtraVar: an extra variable that is not key=value with an identifier key.
	ErrExtraVar = errors.New("bad extra var")
	// ErrLimit: a host that --limit cannot target exactly.
	ErrLimit = errors.New("host cannot be targeted")
	// ErrRunSpec: another invalid run setting (tags, forks, inventory, id).
	ErrRunSpec = errors.New("invalid run settings")
)

// RunnerConfig configures a Runner.
type RunnerConfig struct {
	// AnsiblePlaybook is the ansible-playbook executable; empty looks it up
	// on PATH.
	AnsiblePlaybook string
	// Catalog is the playbook allow-list. Required.
	Catalog *PlaybookCatalog
	// RunsDir holds one directory per run (inventory snapshot, callback
	// plugin, events.jsonl, output.log). Empty uses a fresh temp directory
	// per run. Run directories are not removed by the Runner: they are the
	// run's record until history has taken it.
	RunsDir string
	// Env is added to the environment of every run ([ansible] env), after
	// what is passed from the console's environment and before fleetdeck's
	// own settings, which win: e.g. ANSIBLE_HOST_KEY_CHECKING=False or
	// ANSIBLE_PRIVATE_KEY_FILE=….
	Env []string
	// PassEnv names further variables of the console's environment passed
	// to every run ([ansible] pass_env), beyond the allow-list (PATH, HOME,
	// USER, LOGNAME, LANG, LC_*, TZ, TMPDIR, TERM, SSH_AUTH_SOCK and the
	// ANSIBLE_* settings that cannot change what the preview showed).
	// Nothing else is passed: Consul and cloud credentials reach a playbook
	// only when named here.
	PassEnv []string
	// EventWindow is how many recent events a run keeps in memory for
	// Run.Events (default DefaultEventWindow); every event is still applied
	// to the run's board and written to events.jsonl.
	EventWindow int
	// CancelGrace is how long a cancelled run gets after SIGINT before
	// SIGTERM (default 5 s); TermGrace is the wait after SIGTERM before
	// SIGKILL (default 3 s).
	CancelGrace time.Duration
	TermGrace   time.Duration
	// OutputTail bounds the in-memory output kept per run (default 1 MiB);
	// the whole output is always in the run directory's output.log.
	OutputTail int
}

// Runner starts ansible-playbook runs. It holds no per-run state and is safe
// for concurrent use.
type Runner struct {
	cfg     RunnerConfig
	ansible string
	owner   RunOwner // written into each run directory (runOwnerFile)
}

// NewRunner checks the configuration: ansible-playbook must be executable
// (ErrAnsibleNotFound says how to install it) and a catalog must be set.
func NewRunner(cfg RunnerConfig) (*Runner, error) {
	if cfg.Catalog == nil {
		return nil, fmt.Errorf("creating runner: %w: no playbook directory configured", ErrPlaybookDir)
	}
	bin := cfg.AnsiblePlaybook
	if bin == "" {
		bin = "ansible-playbook"
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		return nil, fmt.Errorf("%w (looked for %q: %v)", ErrAnsibleNotFound, bin, err)
	}
	if cfg.CancelGrace <= 0 {
		cfg.CancelGrace = 5 * time.Second
	}
	if cfg.TermGrace <= 0 {
		cfg.TermGrace = 3 * time.Second
	}
	if cfg.OutputTail <= 0 {
		cfg.OutputTail = 1 << 20
	}
	if cfg.EventWindow <= 0 {
		cfg.EventWindow = DefaultEventWindow
	}
	if cfg.RunsDir != "" {
		// Absolute, so run records name their directories unambiguously.
		abs, err := filepath.Abs(cfg.RunsDir)
		if err != nil {
			return nil, fmt.Errorf("creating runner: runs directory %s: %w", cfg.RunsDir, err)
		}
		cfg.RunsDir = abs
	}
	for _, name := range cfg.PassEnv {
		switch {
		case !runIdentRE.MatchString(name):
			return nil, fmt.Errorf("creating runner: %w: pass_env %q is not a variable name", ErrRunSpec, runShort(name))
		case runDeniedEnv[name] || name == superviseEnv:
			return nil, fmt.Errorf("creating runner: %w: pass_env %s: fleetdeck sets or drops it for every run (it would change the run behind the preview)", ErrRunSpec, name)
		}
	}
	return &Runner{cfg: cfg, ansible: path, owner: histSelf()}, nil
}

// AnsiblePlaybook returns the resolved ansible-playbook path.
func (r *Runner) AnsiblePlaybook() string { return r.ansible }

// RunSpec is what a launch form asks for.
type RunSpec struct {
	// ID names the run directory; empty generates one (UTC time + random).
	ID string
	// Playbook is a catalog name ("base" or "base.yml").
	Playbook string
	// Inventory is the run's inventory: the JSON of `fleetdeck inventory
	// --list` (Ansible's dynamic-inventory format, groups plus
	// _meta.hostvars). It is written byte for byte into the run directory
	// and served to Ansible as an inventory script, so values wrapped as
	// {"__ansible_unsafe": …} stay unsafe and are never templated.
	Inventory []byte
	// Limit lists exact host names (inventory_hostname). Empty runs on what
	// the playbook's plays match in the inventory. Each name must be a host
	// of Inventory, not a group name, and expressible in --limit.
	Limit    []string
	Check    bool
	Diff     bool
	Tags     []string
	SkipTags []string
	// ExtraVars are "key=value" strings. Keys are identifiers; values are
	// passed as unsafe strings, so Jinja in a value is never evaluated.
	ExtraVars []string
	Forks     int // 0: Ansible's default
	Become    bool
	// Timeout ends the run (like a cancel) after this long; 0: no timeout.
	Timeout time.Duration
	// Unlisted skips Preview's `--list-hosts`: the plan's Hosts are Limit
	// as given. For automation that names its hosts exactly (the
	// deployment server), where the listing only costs a second per run;
	// a play that targets none of them then runs on nothing.
	Unlisted bool
}

// RunPlan is a prepared run: the run directory with the inventory snapshot,
// the plugin and the pinned playbook written, and the exact argv. Preview
// fills Plays and Hosts from `--list-hosts` against the same snapshot and
// playbook copy; Start runs the same argv, so what was previewed is what
// runs.
//
// The playbook is pinned: Prepare reads its bytes once (through a link
// only if it stays inside the playbook directory, as the catalog does),
// Playbook.SHA256 is taken over those bytes, and the run executes a copy of
// them in the run directory's "playbook" directory. That directory holds a
// symbolic link to every other entry of the playbook directory, because
// Ansible resolves roles/, files/, templates/, vars/, group_vars/ and
// included files relative to the playbook: those are read when the run
// reads them, not pinned.
type RunPlan struct {
	ID       string
	Dir      string
	Spec     RunSpec
	Playbook Playbook
	// PlaybookCopy is the pinned copy that runs (the last argument of
	// Argv).
	PlaybookCopy string
	// Argv is the exact command line, Argv[0] the ansible-playbook path.
	Argv []string
	// Env is the run's environment as a preview shows it: NAME for a value
	// passed from the console's environment (never its value), NAME=value
	// for [ansible] env settings (secret-looking ones as NAME=<redacted>)
	// and for fleetdeck's own settings.
	Env []string
	// Plays and Hosts are set by Preview.
	Plays []PlayHosts
	Hosts []string

	runner *Runner
	inv    string // inventory script path
	env    []string
	body   []byte // the playbook's bytes, until written
}

// playbookPath is the playbook file the run executes: the pinned copy.
func (p *RunPlan) playbookPath() string { return p.PlaybookCopy }

// PlayHosts is one play of a --list-hosts preview.
type PlayHosts struct {
	Name    string
	Pattern string
	Hosts   []string // sorted
}

// ParseExtraVar splits and validates one "key=value" extra variable. The key
// must be an identifier not starting with "ansible_" and not one of
// Ansible's magic variables (those would silently change connection or
// inventory data); the value is any UTF-8 text without NUL, up to 64 KiB.
func ParseExtraVar(s string) (key, value string, err error) {
	k, v, ok := strings.Cut(s, "=")
	if !ok {
		return "", "", fmt.Errorf("%w %q: want key=value", ErrExtraVar, runShort(s))
	}
	if !runIdentRE.MatchString(k) {
		return "", "", fmt.Errorf("%w %q: the key must be an identifier (letters, digits, _; not starting with a digit)", ErrExtraVar, runShort(k))
	}
	if strings.HasPrefix(strings.ToLower(k), "ansible_") || runMagicVars[k] {
		return "", "", fmt.Errorf("%w %q: %s is reserved by Ansible", ErrExtraVar, runShort(s), k)
	}
	if !utf8.ValidString(v) || strings.ContainsRune(v, 0) || len(v) > 64<<10 {
		return "", "", fmt.Errorf("%w %q: the value must be UTF-8 text without NUL, at most 64 KiB", ErrExtraVar, k)
	}
	return k, v, nil
}

var (
	runIdentRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	runTagRE   = regexp.MustCompile(`^[\p{L}\p{N}_.:/+-]+$`)
	runIDRE    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
	// runLimitRE: characters that are literal in an Ansible host pattern.
	// Excluded on purpose: , : (separators), ! & (operators), * ? [ ]
	// (globs, subscripts), ~ (regex), @ (file), whitespace.
	runLimitRE = regexp.MustCompile(`^[\p{L}\p{N}_][\p{L}\p{N}_.-]*$`)
)

// runMagicVars are Ansible's magic and special variable names an extra var
// must not shadow.
var runMagicVars = map[string]bool{
	"hostvars": true, "groups": true, "group_names": true, "inventory_hostname": true,
	"inventory_hostname_short": true, "inventory_dir": true, "inventory_file": true,
	"play_hosts": true, "playbook_dir": true, "role_name": true, "role_path": true,
	"role_names": true, "omit": true, "environment": true, "vars": true,
	"item": true, "ansible_loop_var": true, "hostvars_": true,
}

func runShort(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}

// CheckLimitHost says whether a host name can be passed to --limit and
// match exactly that host: no pattern syntax, not a reserved name.
func CheckLimitHost(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty host name", ErrLimit)
	case len(name) > 255:
		return fmt.Errorf("%w %q: longer than 255 bytes", ErrLimit, runShort(name))
	case name == "all" || name == "ungrouped" || name == "localhost":
		return fmt.Errorf("%w %q: reserved by Ansible", ErrLimit, name)
	case strings.HasPrefix(name, "@"):
		return fmt.Errorf("%w %q: a limit starting with @ reads a file", ErrLimit, runShort(name))
	case !runLimitRE.MatchString(name):
		return fmt.Errorf("%w %q: only letters, digits, '_', '.', '-' are literal in a host pattern", ErrLimit, runShort(name))
	}
	return nil
}

// runInventory is what the runner needs to know about an inventory snapshot.
type runInventory struct {
	hosts  map[string]bool
	groups map[string]bool
}

// runParseInventory reads the dynamic-inventory JSON: top-level groups (a
// list of hosts or {hosts, vars, children}) and _meta.hostvars.
func runParseInventory(b []byte) (runInventory, error) {
	inv := runInventory{hosts: map[string]bool{}, groups: map[string]bool{}}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		return inv, fmt.Errorf("%w: inventory is not a JSON object: %v", ErrRunSpec, err)
	}
	for name, raw := range top {
		if name == "_meta" {
			var meta struct {
				Hostvars map[string]json.RawMessage `json:"hostvars"`
			}
			if err := json.Unmarshal(raw, &meta); err != nil {
				return inv, fmt.Errorf("%w: inventory _meta: %v", ErrRunSpec, err)
			}
			for h := range meta.Hostvars {
				inv.hosts[h] = true
			}
			continue
		}
		inv.groups[name] = true
		var hosts []string
		if err := json.Unmarshal(raw, &hosts); err != nil {
			var g struct {
				Hosts    []string `json:"hosts"`
				Children []string `json:"children"`
			}
			if err := json.Unmarshal(raw, &g); err != nil {
				return inv, fmt.Errorf("%w: inventory group %q: %v", ErrRunSpec, runShort(name), err)
			}
			hosts = g.Hosts
			for _, c := range g.Children {
				inv.groups[c] = true
			}
		}
		for _, h := range hosts {
			inv.hosts[h] = true
		}
	}
	return inv, nil
}

// runLimitArgMax: above this, the limit goes through a file fleetdeck writes
// (`--limit=@file`), because Linux caps one argument at 128 KiB. The names in
// it passed the same checks.
const runLimitArgMax = 64 << 10

// Prepare validates spec, creates the run directory, writes the inventory
// snapshot and the callback plugin, and builds the argv. Nothing runs yet.
func (r *Runner) Prepare(ctx context.Context, spec RunSpec) (*RunPlan, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("preparing run: %w", err)
	}
	pb, body, err := r.cfg.Catalog.read(spec.Playbook)
	if err != nil {
		return nil, fmt.Errorf("preparing run: %w", err)
	}
	inv, err := runParseInventory(spec.Inventory)
	if err != nil {
		return nil, fmt.Errorf("preparing run: %w", err)
	}
	seen := map[string]bool{}
	for _, h := range spec.Limit {
		if err := CheckLimitHost(h); err != nil {
			return nil, fmt.Errorf("preparing run: %w", err)
		}
		if !inv.hosts[h] {
			return nil, fmt.Errorf("preparing run: %w %q: not a host of the inventory snapshot", ErrLimit, runShort(h))
		}
		if inv.groups[h] {
			return nil, fmt.Errorf("preparing run: %w %q: also a group name, --limit would target the group", ErrLimit, runShort(h))
		}
		if seen[h] {
			return nil, fmt.Errorf("preparing run: %w %q: listed twice", ErrLimit, runShort(h))
		}
		seen[h] = true
	}
	for _, t := range append(append([]string(nil), spec.Tags...), spec.SkipTags...) {
		if !runTagRE.MatchString(t) {
			return nil, fmt.Errorf("preparing run: %w: tag %q (letters, digits, _ . : / + -)", ErrRunSpec, runShort(t))
		}
	}
	if spec.Forks < 0 || spec.Forks > 1000 {
		return nil, fmt.Errorf("preparing run: %w: forks %d (1–1000)", ErrRunSpec, spec.Forks)
	}
	if spec.Timeout < 0 {
		return nil, fmt.Errorf("preparing run: %w: negative timeout", ErrRunSpec)
	}
	extra := map[string]map[string]string{}
	for _, kv := range spec.ExtraVars {
		k, v, err := ParseExtraVar(kv)
		if err != nil {
			return nil, fmt.Errorf("preparing run: %w", err)
		}
		extra[k] = map[string]string{"__ansible_unsafe": v}
	}
	id := spec.ID
	if id == "" {
		var b [4]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("preparing run: run id: %w", err)
		}
		id = time.Now().UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
	} else if !runIDRE.MatchString(id) {
		return nil, fmt.Errorf("preparing run: %w: run id %q", ErrRunSpec, runShort(id))
	}
	var dir string
	if r.cfg.RunsDir == "" {
		dir, err = os.MkdirTemp("", "fleetdeck-run-"+id+"-")
	} else {
		if err = os.MkdirAll(r.cfg.RunsDir, 0o700); err == nil {
			dir = filepath.Join(r.cfg.RunsDir, id)
			err = os.Mkdir(dir, 0o700)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("preparing run: creating run directory: %w", err)
	}
	plan := &RunPlan{ID: id, Dir: dir, Spec: spec, Playbook: pb, runner: r, body: body}
	if err := plan.write(extra); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("preparing run: %w", err)
	}
	return plan, nil
}

// RunExtraVarsFile is the run directory's file of extra vars; it exists
// only until the run ends, so secrets do not stay on disk (a console that
// crashed leaves it: the next start removes it, see Manager.Prune).
const RunExtraVarsFile = "extra-vars.json"

// runOwnerFile names the process that prepared a run directory (a
// RunOwner, JSON), so that clean-up can tell a crash's leftovers from the
// previews and runs of a console that is still running.
const runOwnerFile = "owner.json"

// runPlaybookDir is the run directory's shadow of the playbook directory.
const runPlaybookDir = "playbook"

// write puts the snapshot, plugin and pinned playbook into the run
// directory and builds argv and environment.
func (p *RunPlan) write(extra map[string]map[string]string) error {
	owner, err := json.Marshal(p.runner.owner)
	if err != nil {
		return fmt.Errorf("encoding the run's owner: %w", err)
	}
	if err := os.WriteFile(filepath.Join(p.Dir, runOwnerFile), owner, 0o600); err != nil {
		return fmt.Errorf("writing the run's owner: %w", err)
	}
	if err := p.pinPlaybook(); err != nil {
		return err
	}
	invJSON := filepath.Join(p.Dir, "inventory.json")
	if err := os.WriteFile(invJSON, p.Spec.Inventory, 0o600); err != nil {
		return fmt.Errorf("writing inventory snapshot: %w", err)
	}
	// An inventory script rather than a static YAML/JSON inventory file:
	// the script plugin takes host names verbatim (the YAML plugin expands
	// "web[1:3]" and splits "host:port") and decodes __ansible_unsafe, and
	// it is the same path as users' own `-i fleetdeck-inventory` runs.
	// The script only prints the snapshot next to it.
	p.inv = filepath.Join(p.Dir, "inventory.sh")
	script := "#!/bin/sh\n# fleetdeck inventory snapshot for run " + p.ID + "\nexec cat -- \"${0%/*}/inventory.json\"\n"
	if err := os.WriteFile(p.inv, []byte(script), 0o700); err != nil {
		return fmt.Errorf("writing inventory script: %w", err)
	}
	cbDir, err := runWriteCallback(filepath.Join(p.Dir, "callback"))
	if err != nil {
		return err
	}
	s := p.Spec
	argv := []string{p.runner.ansible, "-i", p.inv}
	if len(s.Limit) > 0 {
		lim := strings.Join(s.Limit, ",")
		if len(lim) > runLimitArgMax {
			lf := filepath.Join(p.Dir, "limit.txt")
			if err := os.WriteFile(lf, []byte(strings.Join(s.Limit, "\n")+"\n"), 0o600); err != nil {
				return fmt.Errorf("writing limit file: %w", err)
			}
			lim = "@" + lf
		}
		argv = append(argv, "--limit="+lim)
	}
	if s.Check {
		argv = append(argv, "--check")
	}
	if s.Diff {
		argv = append(argv, "--diff")
	}
	if len(s.Tags) > 0 {
		argv = append(argv, "--tags="+strings.Join(s.Tags, ","))
	}
	if len(s.SkipTags) > 0 {
		argv = append(argv, "--skip-tags="+strings.Join(s.SkipTags, ","))
	}
	if len(extra) > 0 {
		b, err := json.Marshal(extra)
		if err != nil {
			return fmt.Errorf("encoding extra vars: %w", err)
		}
		// A JSON file (Ansible reads "@file" with its JSON decoder, which
		// turns {"__ansible_unsafe": v} into unsafe text) rather than the
		// argument itself: any local user can read a process's argv with
		// ps, and extra vars carry passwords. The file is 0600 and removed
		// when the run ends (RunExtraVarsFile).
		xf := filepath.Join(p.Dir, RunExtraVarsFile)
		if err := os.WriteFile(xf, b, 0o600); err != nil {
			return fmt.Errorf("writing extra vars: %w", err)
		}
		argv = append(argv, "--extra-vars=@"+xf)
	}
	if s.Forks > 0 {
		argv = append(argv, "--forks="+strconv.Itoa(s.Forks))
	}
	if s.Become {
		argv = append(argv, "--become")
	}
	argv = append(argv, p.PlaybookCopy)
	p.Argv = argv

	p.env, p.Env = runBuildEnv(os.Environ(), p.runner.cfg.PassEnv, p.runner.cfg.Env, runForcedEnv(cbDir, s.Become))
	return nil
}

// pinPlaybook writes the playbook bytes read at Prepare into the shadow
// playbook directory, next to links to every other entry of the catalog
// directory (see RunPlan).
func (p *RunPlan) pinPlaybook() error {
	shadow := filepath.Join(p.Dir, runPlaybookDir)
	if err := os.Mkdir(shadow, 0o700); err != nil {
		return fmt.Errorf("creating the playbook copy's directory: %w", err)
	}
	src := p.runner.cfg.Catalog.Dir()
	entries, err := os.ReadDir(src)
	if err != nil {
		return fmt.Errorf("%w: listing %s: %v", ErrPlaybookDir, src, err)
	}
	for _, e := range entries {
		if e.Name() == p.Playbook.Name {
			continue
		}
		if err := os.Symlink(filepath.Join(src, e.Name()), filepath.Join(shadow, e.Name())); err != nil {
			return fmt.Errorf("linking %s next to the playbook copy: %w", e.Name(), err)
		}
	}
	p.PlaybookCopy = filepath.Join(shadow, p.Playbook.Name)
	if err := os.WriteFile(p.PlaybookCopy, p.body, 0o600); err != nil {
		return fmt.Errorf("writing the playbook copy: %w", err)
	}
	p.body = nil
	return nil
}

// runDeniedEnv are inherited variables dropped from a run's environment:
// they would change targets, privileges, tags or the event plumbing behind
// the preview's back, or dump secrets into the output (ANSIBLE_DEBUG). Other
// ANSIBLE_* settings (ANSIBLE_CONFIG, roles paths, vault password file, SSH
// settings, …) pass through: they are how a team configures Ansible.
var runDeniedEnv = map[string]bool{
	"ANSIBLE_INVENTORY": true, "ANSIBLE_INVENTORY_ENABLED": true, "ANSIBLE_HOSTS": true,
	"ANSIBLE_RUN_TAGS": true, "ANSIBLE_SKIP_TAGS": true,
	"ANSIBLE_BECOME": true, "ANSIBLE_BECOME_ASK_PASS": true, "ANSIBLE_ASK_PASS": true,
	"ANSIBLE_ASK_VAULT_PASS": true, "ANSIBLE_DEBUG": true,
	"ANSIBLE_STDOUT_CALLBACK": true, "ANSIBLE_CALLBACK_WHITELIST": true,
	"ANSIBLE_CALLBACKS_ENABLED": true, "ANSIBLE_CALLBACK_PLUGINS": true,
	"ANSIBLE_HOST_PATTERN_MISMATCH": true, "ANSIBLE_FORCE_COLOR": true, "ANSIBLE_NOCOLOR": true,
	"ANSIBLE_RETRY_FILES_ENABLED": true, "ANSIBLE_INVENTORY_UNPARSED_FAILED": true,
	"ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED": true,
	runEventFDEnv: true, "FLEETDECK_EVENT_MAX_TEXT": true,
}

// runForcedEnv is what fleetdeck sets for every run. The event descriptor is
// 3: the first of exec.Cmd.ExtraFiles.
func runForcedEnv(callbackDir string, become bool) []string {
	env := []string{
		"ANSIBLE_CALLBACK_PLUGINS=" + callbackDir,
		"ANSIBLE_CALLBACKS_ENABLED=" + runCallbackName,
		"ANSIBLE_STDOUT_CALLBACK=default",
		"ANSIBLE_HOST_PATTERN_MISMATCH=error",
		"ANSIBLE_INVENTORY_ENABLED=script",
		"ANSIBLE_INVENTORY_UNPARSED_FAILED=true",
		"ANSIBLE_RETRY_FILES_ENABLED=false",
		"ANSIBLE_FORCE_COLOR=0",
		"ANSIBLE_NOCOLOR=1",
		"PYTHONUNBUFFERED=1",
		runEventFDEnv + "=3",
	}
	if !become {
		// ansible.cfg's become=true would otherwise apply although the
		// preview said "become: off".
		env = append(env, "ANSIBLE_BECOME=false")
	}
	return env
}

// runAllowedEnv says whether a variable of the console's environment is
// passed to runs without being named in RunnerConfig.PassEnv: what
// ansible-playbook, ssh and Python need to work as they do in the user's
// shell, and the ANSIBLE_* settings a team configures Ansible with (except
// those in runDeniedEnv). Everything else — CONSUL_HTTP_TOKEN,
// GOOGLE_APPLICATION_CREDENTIALS, AWS_*, VAULT_TOKEN … — stays with the
// console.
func runAllowedEnv(name string) bool {
	switch name {
	case "PATH", "HOME", "USER", "LOGNAME", "LANG", "TZ", "TMPDIR", "TERM", "SSH_AUTH_SOCK":
		return true
	}
	if strings.HasPrefix(name, "LC_") {
		return true
	}
	return strings.HasPrefix(name, "ANSIBLE_") && !runDeniedEnv[name]
}

// runBuildEnv builds a run's environment: the allowed and the named
// (pass) variables of inherited, then configured, then forced; for a name
// set twice the last one wins. shown is the same list for a preview: names
// only for inherited values, configured values with secrets redacted (the
// rule of RedactExtraVars), forced values as they are.
func runBuildEnv(inherited, pass, configured, forced []string) (env, shown []string) {
	named := map[string]bool{}
	for _, n := range pass {
		named[n] = true
	}
	type entry struct{ kv, show string }
	var order []string
	set := map[string]entry{}
	add := func(kv, show string) {
		k, _, _ := strings.Cut(kv, "=")
		if _, ok := set[k]; !ok {
			order = append(order, k)
		}
		set[k] = entry{kv, show}
	}
	for _, kv := range inherited {
		k, _, ok := strings.Cut(kv, "=")
		if ok && (runAllowedEnv(k) || named[k]) && !runDeniedEnv[k] && k != superviseEnv {
			add(kv, k)
		}
	}
	for _, kv := range configured {
		k, v, _ := strings.Cut(kv, "=")
		show := kv
		if IsSecretVar(k) || histSecretValue(v) {
			show = k + "=" + RedactedValue
		}
		add(kv, show)
	}
	for _, kv := range forced {
		add(kv, kv)
	}
	for _, k := range order {
		env = append(env, set[k].kv)
		shown = append(shown, set[k].show)
	}
	return env, shown
}

// Discard removes the run directory of a plan that will not be started.
func (p *RunPlan) Discard() error {
	if err := os.RemoveAll(p.Dir); err != nil {
		return fmt.Errorf("removing run directory: %w", err)
	}
	return nil
}

// Preview prepares a run and lists the hosts it will target: it runs
// `ansible-playbook --list-hosts` with the run's exact argv and inventory
// snapshot. Start the returned plan to run it, or Discard it.
func (r *Runner) Preview(ctx context.Context, spec RunSpec) (*RunPlan, error) {
	plan, err := r.Prepare(ctx, spec)
	if err != nil {
		return nil, err
	}
	if spec.Unlisted {
		plan.Hosts = slices.Clone(spec.Limit)
		sort.Strings(plan.Hosts)
		return plan, nil
	}
	if err := plan.ListHosts(ctx); err != nil {
		plan.Discard()
		return nil, err
	}
	return plan, nil
}

// ListHosts runs `--list-hosts` for the plan and fills Plays and Hosts.
func (p *RunPlan) ListHosts(ctx context.Context) error {
	argv := append(append([]string(nil), p.Argv[:len(p.Argv)-1]...), "--list-hosts", p.Argv[len(p.Argv)-1])
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = p.runner.cfg.Catalog.Dir()
	// No event plugin for a listing: drop the descriptor variable so the
	// plugin disables itself.
	cmd.Env = append(append([]string(nil), p.env...), runEventFDEnv+"=")
	cmd.SysProcAttr = runSysProcAttr()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("listing hosts: starting ansible-playbook: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		runKillGroup(cmd.Process.Pid, runSIGKILL)
		<-done
		return fmt.Errorf("listing hosts: %w", ctx.Err())
	}
	runKillGroup(cmd.Process.Pid, runSIGKILL) // stragglers, if any
	if err != nil {
		return fmt.Errorf("listing hosts: ansible-playbook --list-hosts failed (%v): %s", err, runLastLines(out.String(), 8))
	}
	plays, err := runParseListHosts(out.String())
	if err != nil {
		return fmt.Errorf("listing hosts: %w", err)
	}
	p.Plays = plays
	set := map[string]bool{}
	p.Hosts = nil
	for _, pl := range plays {
		for _, h := range pl.Hosts {
			if !set[h] {
				set[h] = true
				p.Hosts = append(p.Hosts, h)
			}
		}
	}
	sort.Strings(p.Hosts)
	return nil
}

var (
	runPlayLineRE  = regexp.MustCompile(`^  play #\d+ \(.*\): (.*)\tTAGS: \[.*\]$`)
	runPatternRE   = regexp.MustCompile(`^    pattern: (.*)$`)
	runHostCountRE = regexp.MustCompile(`^    hosts \((\d+)\):$`)
)

// runParseListHosts reads ansible-playbook --list-hosts output. Host lines
// are taken by the count Ansible prints, so a host name can never be
// mistaken for a header.
func runParseListHosts(out string) ([]PlayHosts, error) {
	lines := strings.Split(strings.ReplaceAll(out, "\r\n", "\n"), "\n")
	var plays []PlayHosts
	for i := 0; i < len(lines); i++ {
		if m := runPlayLineRE.FindStringSubmatch(lines[i]); m != nil {
			plays = append(plays, PlayHosts{Name: m[1]})
			continue
		}
		if len(plays) == 0 {
			continue
		}
		cur := &plays[len(plays)-1]
		if m := runPatternRE.FindStringSubmatch(lines[i]); m != nil {
			cur.Pattern = runPattern(m[1])
			continue
		}
		if m := runHostCountRE.FindStringSubmatch(lines[i]); m != nil {
			n, _ := strconv.Atoi(m[1])
			if i+n >= len(lines) {
				return nil, fmt.Errorf("--list-hosts output ends inside the host list of play %q", cur.Name)
			}
			for j := 1; j <= n; j++ {
				cur.Hosts = append(cur.Hosts, strings.TrimPrefix(lines[i+j], "      "))
			}
			sort.Strings(cur.Hosts)
			i += n
		}
	}
	if len(plays) == 0 {
		return nil, fmt.Errorf("no plays in --list-hosts output: %s", runLastLines(out, 8))
	}
	return plays, nil
}

// runPattern turns the Python list Ansible prints (['web', 'db']) into the
// pattern as written (web,db).
func runPattern(s string) string {
	if !strings.HasPrefix(s, "[") || !strings.HasSuffix(s, "]") {
		return s
	}
	parts := strings.Split(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"), ", ")
	for i, p := range parts {
		parts[i] = strings.Trim(p, `'"`)
	}
	return strings.Join(parts, ",")
}

func runLastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Start runs a prepared plan. ctx bounds the run: when it is done the run is
// cancelled like Run.Cancel. A plan can be started once.
func (r *Runner) Start(ctx context.Context, plan *RunPlan) (*Run, error) {
	if plan == nil || plan.runner != r {
		return nil, fmt.Errorf("starting run: %w: plan was not prepared by this runner", ErrRunSpec)
	}
	if _, err := os.Stat(filepath.Join(plan.Dir, "events.jsonl")); err == nil {
		return nil, fmt.Errorf("starting run %s: %w: plan already started", plan.ID, ErrRunSpec)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("starting run %s: %w", plan.ID, err)
	}
	return runStart(ctx, r, plan)
}

// runReadLines reads newline-terminated lines (the event pipe) without
// ever holding more than maxLen bytes of one: a longer line is handed over
// cut to maxLen bytes, with cut saying how many bytes were dropped. The
// slice is only valid during the call.
func runReadLines(br *bufio.Reader, maxLen int, fn func(line []byte, cut int)) error {
	var long []byte
	cut := 0
	keep := func(chunk []byte) {
		room := max(maxLen-len(long), 0)
		n := min(room, len(chunk))
		long = append(long, chunk[:n]...)
		cut += len(chunk) - n
	}
	for {
		chunk, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			keep(chunk)
			continue
		}
		switch {
		case long == nil && cut == 0:
			if len(chunk) > 0 {
				fn(chunk, 0)
			}
		default:
			keep(chunk)
			fn(long, cut)
			long, cut = nil, 0
		}
		if err != nil {
			return err
		}
	}
}
