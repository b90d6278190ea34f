// Package deploy is the pure core of the deployment server (`fleetdeck
// provisioner`): its configuration (stages and guards), the due
// computation over a fleet snapshot and the stage records, and the
// scheduler that turns due stages into runs under the loop guards (quiet
// period, batches, parallelism, attempts with backoff, oscillation holds,
// an hourly run cap and a circuit breaker).
//
// Nothing here does I/O or reads the clock: every function takes the
// snapshot, the records and the time it needs, so each pass is a pure
// reconcile of state (never a reaction to single events, which peers miss
// or re-fire on), and the tests can drive any sequence of snapshots and
// clocks. KV state and leadership live in store.go and leader.go.
package deploy

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/fleetdeck/fleetdeck/internal/notify"
	"github.com/fleetdeck/fleetdeck/roles"
)

// RolesPlaybook names the shipped role-apply playbook in a stage's
// playbook: the run applies the node's desired roles, and the node's
// desired generation is one of the stage's inputs.
const RolesPlaybook = "@roles"

// Documented defaults of the guards ([provisioner] keys in parentheses).
const (
	DefaultQuietMin        = 5 * time.Second  // quiet_min: like consul-template's wait min
	DefaultQuietMax        = 30 * time.Second // quiet_max: a steady trickle still launches
	DefaultBatchMax        = 50               // batch_max: hosts per run
	DefaultMaxParallelRuns = 4                // max_parallel_runs
	DefaultMaxAttempts     = 3                // max_attempts: then held
	DefaultBackoffBase     = 30 * time.Second // backoff_base: 30s, 1m, 2m, …
	DefaultBackoffMax      = 30 * time.Minute // backoff_max: the cap
	DefaultOscillationMax  = 4                // oscillation_max: re-entries per hour, then held
	DefaultRunsPerHour     = 120              // runs_per_hour: fleet-wide
	DefaultBreakerWindow   = 10               // breaker_window: last N runs
	DefaultBreakerRatio    = 0.5              // breaker_ratio: open at ≥ this share failed
	DefaultBreakerCooldown = 10 * time.Minute // breaker_cooldown
)

// Guards are the loop guards and politeness settings.
type Guards struct {
	QuietMin        time.Duration
	QuietMax        time.Duration
	BatchMax        int
	MaxParallelRuns int
	MaxAttempts     int
	BackoffBase     time.Duration
	BackoffMax      time.Duration
	// OscillationMax: a node whose due set regains a stage it had lost
	// more than this many times in an hour is held as oscillating.
	OscillationMax  int
	RunsPerHour     int
	BreakerWindow   int
	BreakerRatio    float64
	BreakerCooldown time.Duration
}

// DefaultGuards returns the documented defaults.
func DefaultGuards() Guards {
	return Guards{
		QuietMin: DefaultQuietMin, QuietMax: DefaultQuietMax, BatchMax: DefaultBatchMax,
		MaxParallelRuns: DefaultMaxParallelRuns, MaxAttempts: DefaultMaxAttempts,
		BackoffBase: DefaultBackoffBase, BackoffMax: DefaultBackoffMax,
		OscillationMax: DefaultOscillationMax, RunsPerHour: DefaultRunsPerHour,
		BreakerWindow: DefaultBreakerWindow, BreakerRatio: DefaultBreakerRatio,
		BreakerCooldown: DefaultBreakerCooldown,
	}
}

// Stage is one [[provisioner.stage]].
type Stage struct {
	Name string
	// Select is the filter text as written ("" selects every node) and
	// Selector its compiled form (nil: every node).
	Select   string
	Selector Selector
	// Playbook is a playbook file name in the playbook directory, or
	// RolesPlaybook.
	Playbook string
	After    []string
}

// Roles says whether the stage runs the role-apply playbook.
func (s Stage) Roles() bool { return s.Playbook == RolesPlaybook }

// SettingsSum is the hex SHA-256 of the settings that change what the
// stage's run does (its name and playbook). Select and after are left out
// on purpose: they decide whether a node is due, not what a run does to
// it, so narrowing or reordering stages does not re-run applied nodes.
func (s Stage) SettingsSum() string {
	h := sha256.Sum256([]byte("name\x00" + s.Name + "\x00playbook\x00" + s.Playbook))
	return hex.EncodeToString(h[:])
}

// Config is the decoded [provisioner] table.
type Config struct {
	// Stages in an order where each comes after the stages it names in
	// after (the file's order where that allows).
	Stages []Stage
	Guards Guards
	// Defaults maps an autoscaling group to the roles its new nodes get
	// ([provisioner.defaults] group = ["web"]; cmd adds the config file's
	// [roles.defaults], the spelling, which package roles decodes).
	Defaults map[string][]string
	// KVPrefix is where the state and the leader lock live in each
	// datacenter's KV (kv_prefix, default DefaultPrefix).
	KVPrefix string
	// Grace is how long a stopping provisioner lets its runs finish
	// (grace, default 30s); SessionTTL the leader session's TTL
	// (session_ttl, default DefaultTTL, at least 10s).
	Grace      time.Duration
	SessionTTL time.Duration
	// Alerts: a Slack incoming webhook and a PagerDuty Events v2 routing
	// key (and endpoint, default notify.DefaultPagerDutyURL). Both are
	// secrets: keep the config file private.
	SlackWebhookURL string
	PagerDutyKey    string
	PagerDutyURL    string
}

// Stage returns the stage named name.
func (c Config) Stage(name string) (Stage, bool) {
	i := slices.IndexFunc(c.Stages, func(s Stage) bool { return s.Name == name })
	if i < 0 {
		return Stage{}, false
	}
	return c.Stages[i], true
}

type stageTOML struct {
	Name     string   `toml:"name"`
	Select   string   `toml:"select"`
	Playbook string   `toml:"playbook"`
	After    []string `toml:"after"`
}

type provisionerTOML struct {
	QuietMin        *string             `toml:"quiet_min"`
	QuietMax        *string             `toml:"quiet_max"`
	BatchMax        *int                `toml:"batch_max"`
	MaxParallelRuns *int                `toml:"max_parallel_runs"`
	MaxAttempts     *int                `toml:"max_attempts"`
	BackoffBase     *string             `toml:"backoff_base"`
	BackoffMax      *string             `toml:"backoff_max"`
	OscillationMax  *int                `toml:"oscillation_max"`
	RunsPerHour     *int                `toml:"runs_per_hour"`
	BreakerWindow   *int                `toml:"breaker_window"`
	BreakerRatio    *float64            `toml:"breaker_ratio"`
	BreakerCooldown *string             `toml:"breaker_cooldown"`
	Defaults        map[string][]string `toml:"defaults"`
	Stage           []stageTOML         `toml:"stage"`
	KVPrefix        *string             `toml:"kv_prefix"`
	Grace           *string             `toml:"grace"`
	SessionTTL      *string             `toml:"session_ttl"`
	SlackWebhookURL *string             `toml:"slack_webhook_url"`
	PagerDutyKey    *string             `toml:"pagerduty_routing_key"`
	PagerDutyURL    *string             `toml:"pagerduty_url"`
}

// DecodeConfig decodes the [provisioner] table, which the config decoder
// kept as a toml.Primitive (table nil: no provisioner configured, the
// defaults and no stages). It runs before cmd's unknown-key check: decoding
// marks [provisioner]'s keys as known, and the unknown ones inside it are
// reported here, named with source. compile turns a stage's select text
// into a Selector: cmd passes the console's filter compiler (package tui),
// which deploy must not import; an error from it names the stage.
//
// Every error is reported, not only the first: a stage name outside
// [a-z0-9-] or repeated, a playbook that is not a plain .yml/.yaml file
// name or @roles, an after naming no stage or itself, a cycle among afters
// (named: "a → b → a"), a guard out of range, a bad role name in defaults.
// Whether the playbook exists is checked by CheckPlaybooks, which needs
// the playbook directory.
func DecodeConfig(md toml.MetaData, table *toml.Primitive, source string, compile func(string) (Selector, error)) (Config, error) {
	cfg := Config{Guards: DefaultGuards(), Grace: 30 * time.Second, SessionTTL: DefaultTTL}
	if table == nil {
		return cfg, nil
	}
	var pt provisionerTOML
	if err := md.PrimitiveDecode(*table, &pt); err != nil {
		return Config{}, fmt.Errorf("%s: [provisioner]: %w", source, err)
	}
	var errs []error
	for _, k := range md.Undecoded() {
		if len(k) > 1 && k[0] == "provisioner" {
			errs = append(errs, fmt.Errorf("%s: unknown key %s", source, k.String()))
		}
	}
	errs = append(errs, decodeGuards(&cfg.Guards, pt, source)...)
	for group, rs := range pt.Defaults {
		for _, r := range rs {
			if err := roles.ValidName(r); err != nil {
				errs = append(errs, fmt.Errorf("%s: provisioner.defaults.%s: %w", source, group, err))
			}
		}
	}
	cfg.Defaults = pt.Defaults
	errs = append(errs, decodeSettings(&cfg, pt, source)...)
	stages, serrs := decodeStages(pt.Stage, source, compile)
	errs = append(errs, serrs...)
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	cfg.Stages = stages
	return cfg, nil
}

// CheckPlaybooks reports stages whose playbook is not in the playbook
// directory; exists answers for a file name there (cmd passes the
// playbook catalog's lookup). @roles is always there.
func (c Config) CheckPlaybooks(exists func(name string) bool) error {
	var errs []error
	for _, s := range c.Stages {
		if !s.Roles() && !exists(s.Playbook) {
			errs = append(errs, fmt.Errorf("stage %q: playbook %q is not in the playbook directory", s.Name, s.Playbook))
		}
	}
	return errors.Join(errs...)
}

func decodeGuards(g *Guards, pt provisionerTOML, source string) []error {
	var errs []error
	dur := func(key string, v *string, dst *time.Duration) {
		if v == nil {
			return
		}
		d, err := time.ParseDuration(*v)
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("%s: provisioner.%s = %q: want a positive duration such as \"30s\"", source, key, *v))
			return
		}
		*dst = d
	}
	num := func(key string, v *int, dst *int) {
		if v == nil {
			return
		}
		if *v < 1 {
			errs = append(errs, fmt.Errorf("%s: provisioner.%s = %d: want at least 1", source, key, *v))
			return
		}
		*dst = *v
	}
	dur("quiet_min", pt.QuietMin, &g.QuietMin)
	dur("quiet_max", pt.QuietMax, &g.QuietMax)
	dur("backoff_base", pt.BackoffBase, &g.BackoffBase)
	dur("backoff_max", pt.BackoffMax, &g.BackoffMax)
	dur("breaker_cooldown", pt.BreakerCooldown, &g.BreakerCooldown)
	num("batch_max", pt.BatchMax, &g.BatchMax)
	num("max_parallel_runs", pt.MaxParallelRuns, &g.MaxParallelRuns)
	num("max_attempts", pt.MaxAttempts, &g.MaxAttempts)
	num("oscillation_max", pt.OscillationMax, &g.OscillationMax)
	num("runs_per_hour", pt.RunsPerHour, &g.RunsPerHour)
	num("breaker_window", pt.BreakerWindow, &g.BreakerWindow)
	if pt.BreakerRatio != nil {
		if r := *pt.BreakerRatio; r <= 0 || r > 1 {
			errs = append(errs, fmt.Errorf("%s: provisioner.breaker_ratio = %v: want a share in (0, 1]", source, r))
		} else {
			g.BreakerRatio = r
		}
	}
	if g.QuietMax < g.QuietMin {
		errs = append(errs, fmt.Errorf("%s: provisioner.quiet_max (%s) is less than quiet_min (%s)", source, g.QuietMax, g.QuietMin))
	}
	if g.BackoffMax < g.BackoffBase {
		errs = append(errs, fmt.Errorf("%s: provisioner.backoff_max (%s) is less than backoff_base (%s)", source, g.BackoffMax, g.BackoffBase))
	}
	return errs
}

// decodeSettings decodes the keys that are not guards.
func decodeSettings(cfg *Config, pt provisionerTOML, source string) []error {
	var errs []error
	str := func(v *string) string {
		if v == nil {
			return ""
		}
		return *v
	}
	cfg.KVPrefix = str(pt.KVPrefix)
	if p := cfg.KVPrefix; p != "" && (strings.HasPrefix(p, "/") || strings.Contains(p, "//") || strings.ContainsAny(p, " \t\n")) {
		errs = append(errs, fmt.Errorf("%s: provisioner.kv_prefix = %q: want a KV path such as %q", source, p, DefaultPrefix))
	}
	cfg.Grace, cfg.SessionTTL = 30*time.Second, DefaultTTL
	for _, d := range []struct {
		key string
		v   *string
		dst *time.Duration
		min time.Duration
	}{{"grace", pt.Grace, &cfg.Grace, 0}, {"session_ttl", pt.SessionTTL, &cfg.SessionTTL, 10 * time.Second}} {
		if d.v == nil {
			continue
		}
		v, err := time.ParseDuration(*d.v)
		if err != nil || v <= 0 || v < d.min {
			errs = append(errs, fmt.Errorf("%s: provisioner.%s = %q: want a duration of at least %s", source, d.key, *d.v, max(d.min, time.Second)))
			continue
		}
		*d.dst = v
	}
	cfg.SlackWebhookURL, cfg.PagerDutyKey, cfg.PagerDutyURL = str(pt.SlackWebhookURL), str(pt.PagerDutyKey), str(pt.PagerDutyURL)
	for key, u := range map[string]string{"slack_webhook_url": cfg.SlackWebhookURL, "pagerduty_url": cfg.PagerDutyURL} {
		if u == "" {
			continue
		}
		if err := notify.CheckURL(u); err != nil {
			errs = append(errs, fmt.Errorf("%s: provisioner.%s: %w", source, key, err))
		}
	}
	if cfg.PagerDutyURL != "" && cfg.PagerDutyKey == "" {
		errs = append(errs, fmt.Errorf("%s: provisioner.pagerduty_url is set but pagerduty_routing_key is not", source))
	}
	return errs
}

func validStageName(name string) error {
	if name == "" {
		return errors.New("stage name is empty")
	}
	for _, r := range name {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' {
			return fmt.Errorf("stage name %q has %q: only a-z, 0-9 and '-' are allowed", name, r)
		}
	}
	return nil
}

// validPlaybook accepts a plain file name: a path could leave the
// playbook directory, the one place playbooks are allowed from.
func validPlaybook(p string) error {
	if p == RolesPlaybook {
		return nil
	}
	ext := path.Ext(p)
	if p == "" || strings.ContainsAny(p, `/\`) || strings.HasPrefix(p, ".") || (ext != ".yml" && ext != ".yaml") {
		return fmt.Errorf("playbook %q: want a .yml or .yaml file name in the playbook directory, or %s", p, RolesPlaybook)
	}
	return nil
}

func decodeStages(in []stageTOML, source string, compile func(string) (Selector, error)) ([]Stage, []error) {
	var errs []error
	var stages []Stage
	seen := map[string]bool{}
	for i, st := range in {
		where := fmt.Sprintf("%s: provisioner.stage[%d]", source, i)
		if st.Name != "" {
			where = fmt.Sprintf("%s: stage %q", source, st.Name)
		}
		if err := validStageName(st.Name); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", where, err))
			continue
		}
		if seen[st.Name] {
			errs = append(errs, fmt.Errorf("%s: defined twice", where))
			continue
		}
		seen[st.Name] = true
		if err := validPlaybook(st.Playbook); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", where, err))
		}
		s := Stage{Name: st.Name, Select: st.Select, Playbook: st.Playbook, After: st.After}
		if strings.TrimSpace(st.Select) != "" {
			if compile == nil {
				errs = append(errs, fmt.Errorf("%s: select given but no filter compiler", where))
			} else if sel, err := compile(st.Select); err != nil {
				errs = append(errs, fmt.Errorf("%s: select %q: %w", where, st.Select, err))
			} else {
				s.Selector = sel
			}
		}
		stages = append(stages, s)
	}
	for _, s := range stages {
		for _, a := range s.After {
			switch {
			case a == s.Name:
				errs = append(errs, fmt.Errorf("%s: stage %q comes after itself", source, s.Name))
			case !seen[a]:
				errs = append(errs, fmt.Errorf("%s: stage %q: after names %q, which is no stage", source, s.Name, a))
			}
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	ordered, err := order(stages)
	if err != nil {
		return nil, []error{fmt.Errorf("%s: %w", source, err)}
	}
	return ordered, nil
}

// order sorts stages so each follows those in its after (a depth-first
// walk in file order, so the file's order stays where it can), and names a
// cycle if there is one.
func order(stages []Stage) ([]Stage, error) {
	byName := map[string]int{}
	for i, s := range stages {
		byName[s.Name] = i
	}
	const (
		unseen = iota
		onPath
		done
	)
	mark := make([]int, len(stages))
	var out []Stage
	var path []string
	var visit func(i int) error
	visit = func(i int) error {
		switch mark[i] {
		case done:
			return nil
		case onPath:
			start := slices.Index(path, stages[i].Name)
			cycle := append(slices.Clone(path[start:]), stages[i].Name)
			return fmt.Errorf("stages form a cycle through after: %s", strings.Join(cycle, " → "))
		}
		mark[i] = onPath
		path = append(path, stages[i].Name)
		for _, a := range stages[i].After {
			if err := visit(byName[a]); err != nil {
				return err
			}
		}
		path = path[:len(path)-1]
		mark[i] = done
		out = append(out, stages[i])
		return nil
	}
	for i := range stages {
		if err := visit(i); err != nil {
			return nil, err
		}
	}
	return out, nil
}
