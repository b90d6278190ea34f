package provision

import "time"

// LaunchScope says how the targets of a launch were chosen; role- and
// group-wide runs are checked more carefully (check mode by default, typed
// confirmation when not in check mode).
type LaunchScope string

// Launch scopes.
const (
	ScopeNode   LaunchScope = "node"
	ScopeMarked LaunchScope = "marked"
	ScopeRole   LaunchScope = "role"
	ScopeGroup  LaunchScope = "group"
)

// Wide reports whether the scope covers a whole role or group.
func (s LaunchScope) Wide() bool { return s == ScopeRole || s == ScopeGroup }

// LaunchRequest is one run as the launch form describes it.
type LaunchRequest struct {
	// Playbook is a catalog name.
	Playbook string
	// Scope and Subject describe the selection: ScopeNode "dc1/web-1",
	// ScopeMarked "3 nodes", ScopeRole "web", ScopeGroup "web-asg".
	Scope   LaunchScope
	Subject string
	// Targets are the node keys (datacenter/name) to run on.
	Targets   []string
	Check     bool
	Diff      bool
	Become    bool
	Tags      []string
	SkipTags  []string
	ExtraVars []string // key=value
	Forks     int
	// Meta is the caller's metadata for the run (links and labels, such
	// as the roles package's "fleetdeck.roles/<dc>/<node>" = generation):
	// stored with the run and returned on RunInfo.Meta, in lists too.
	// ValidateRunMeta's rules apply. A re-run carries none: the metadata
	// belongs to whoever launched the run.
	Meta map[string]string
	// HostVars are per-host variables, by node key (as Targets; every key
	// must be one of them): added to those hosts' variables in the run's
	// inventory snapshot, every string at any depth unsafe (never
	// templated). Names are identifiers, not consul_* or ansible_*, not
	// secret-looking; values are strings, bools, numbers, nil, []any,
	// []string, map[string]any and map[string]string, with map keys of
	// [A-Za-z0-9._-]; at most HostVarsMaxBytes of JSON for the whole run.
	// See hostvars.go. Not allowed on role- or group-wide runs, whose
	// nodes are worked out again at preview time. A run with host vars
	// cannot be re-run (its values would be stale).
	HostVars map[string]map[string]any
	// Unlisted skips the preview's `ansible-playbook --list-hosts`: the
	// preview's hosts are the targets (RunSpec.Unlisted). Only for scope
	// node or marked: a person's preview always lists.
	Unlisted bool
}

// Preview is a prepared run: the hosts exactly as ansible-playbook resolved
// them (--list-hosts against the run's inventory snapshot) and the exact
// argv. Launching a preview runs that snapshot and that argv.
type Preview struct {
	PlanID  string
	Request LaunchRequest
	// Hosts are inventory host names, in the order --list-hosts gave.
	Hosts []string
	// Aliases maps an inventory host name that differs from its node's
	// name (unsafe names get a safe alias) to the node key.
	Aliases map[string]string
	Argv    []string
	Env     []string
	// ExtraVars are the extra vars as the run gets them (Argv names only
	// the file that carries them): "key=value", with secret values
	// (RedactExtraVars' rule) shown as "key=<redacted>".
	ExtraVars []string
	// HostVarNames are the names of the per-host variables the run adds
	// (LaunchRequest.HostVars), sorted; HostVarHosts is how many of the
	// previewed hosts carry at least one. The values are not shown: they
	// differ per host and may be large (the run directory's
	// inventory.json has them).
	HostVarNames []string
	HostVarHosts int
	Warnings     []string
	// Confirm is the text the user must type to launch (Manager.Launch
	// enforces it): the role or group name for a wide run that is not in
	// check mode, the number of hosts for 5 hosts or more not in check
	// mode; "" when not needed.
	Confirm string
}

// RunInfo is one line of the runs list.
type RunInfo struct {
	ID       string
	Playbook string
	Scope    LaunchScope
	Subject  string
	Who      string
	Status   RunStatus
	// QueueReason says why a queued run waits (cap reached, or who holds
	// its hosts).
	QueueReason string
	Check       bool
	Hosts       int
	Counts      map[HostStatus]int
	Started     time.Time
	Ended       time.Time
	// ExitCode is ansible-playbook's exit code, -1 when it never ran (a
	// run cancelled while queued, or one that could not start).
	ExitCode int
	// Live is set for runs of this console (running or queued now).
	Live bool
	// Meta is the run's metadata (LaunchRequest.Meta); nil when none. The
	// caller owns the map.
	Meta map[string]string
	// HostVars names the per-host variables the run applied (nil: none);
	// such a run cannot be re-run.
	HostVars []string
}

// RunView is everything the run view shows for one run, live or replayed
// from history. State is a copy the caller owns.
type RunView struct {
	Info  RunInfo
	Argv  []string
	State *RunState
	// Output is the tail of ansible-playbook's human output, as lines.
	Output []string
	// OutputTruncated counts lines left out before Output.
	OutputTruncated int
}
