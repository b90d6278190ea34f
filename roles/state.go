package roles

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fleetdeck/fleetdeck/fleet"
)

// State is where a node is on the way from its desired record to the
// catalog.
type State string

// The states of a node.
const (
	// StateUnmanaged: no desired record; fleetdeck manages nothing there.
	StateUnmanaged State = "unmanaged"
	// StatePending: the record's generation has not been applied and no
	// run for it is queued or running.
	StatePending State = "pending"
	// StateApplying: a run for the record's generation is queued or
	// running, or has just succeeded and the catalog has yet to show it.
	StateApplying State = "applying"
	// StateConverged: the catalog shows exactly the desired managed
	// services, and the desired maintenance mode.
	StateConverged State = "converged"
	// StateFailed: the run for the record's generation failed or was
	// cancelled, and the catalog does not show the record.
	StateFailed State = "failed"
	// StateDrift: the record's generation was applied (its run
	// succeeded) but the catalog differs: someone or something changed
	// the node since.
	StateDrift State = "drift"
)

// RunStatus is an apply run's status as far as a node's state goes.
type RunStatus string

// Run statuses.
const (
	RunQueued    RunStatus = "queued"
	RunRunning   RunStatus = "running"
	RunSucceeded RunStatus = "succeeded"
	RunFailed    RunStatus = "failed"
	RunCancelled RunStatus = "cancelled"
)

// RunStatusOf maps a run manager status (provision.RunStatus, as a
// string: this package does not import provision) to a RunStatus: "ok"
// succeeded; "queued", "running" and "cancelled" are themselves; every
// other final status (failed, timed-out, interrupted, error, lock-lost)
// failed.
func RunStatusOf(s string) RunStatus {
	switch s {
	case "ok":
		return RunSucceeded
	case "queued", "running", "cancelled":
		return RunStatus(s)
	}
	return RunFailed
}

// RunInfo is the latest apply run that covered a node, as StateOf needs
// it. The zero value means no run is known.
type RunInfo struct {
	ID     string
	Status RunStatus
	// Generation is the generation of the node's desired record the run
	// applies (see LinkedGeneration).
	Generation uint64
	// Ended is when a final run ended (zero while queued or running).
	Ended time.Time
	// Reason says why it failed, when it did (the run record's reason or
	// the host's failure message), for NodeState.Reason.
	Reason string
}

// SettleTime is how long after a successful apply the catalog may still
// show the old services without the node being called drifted: the
// agent's reload, its sync to the servers and the watcher's next answer
// take about a second on loopback, more on a busy cluster.
const SettleTime = 10 * time.Second

// NodeState is a node's state and why.
type NodeState struct {
	State State
	// Reason explains the state in a line: the generation, the run, what
	// differs.
	Reason string
	// Missing are desired roles whose service the catalog lacks; Extra
	// are managed services (ID "fleetdeck-R") of roles not desired;
	// Differ are desired roles whose service is there but not as the
	// catalog defines it (name, tags or port). Sorted.
	Missing, Extra, Differ []string
	// MaintenanceDiffers is set when the node's maintenance mode in the
	// catalog is not the desired one.
	MaintenanceDiffers bool
	// RunID is the run the state is about (Applying, Failed, Drift), ""
	// otherwise.
	RunID string
}

// StateOf computes node's state from what the console and the CLI have at
// hand: the node's desired record (nil: unmanaged), its services in the
// catalog (fleet.Node.Services), the latest apply run that covered it,
// whether the catalog shows it in maintenance (Consul's _node_maintenance
// check), and the role catalog (nil: the services' names alone are
// compared). now is when services were read (the snapshot's time, or
// time.Now()); a zero now turns off SettleTime.
//
// The catalog is the proof: a node whose catalog matches its record is
// Converged whatever its runs say (a failed run that got far enough, or
// a run whose record was pruned from history). A run counts for the
// record only when it applies the record's generation; an older run
// still going leaves the node Pending.
func StateOf(d *Desired, services []fleet.Service, run RunInfo, maintInCatalog bool, catalog *Catalog, now time.Time) NodeState {
	var st NodeState
	if d == nil {
		st.State = StateUnmanaged
		st.Reason = "no desired record"
		for _, s := range services {
			if role, ok := strings.CutPrefix(s.ID, ServicePrefix); ok {
				st.Extra = append(st.Extra, role)
			}
		}
		slices.Sort(st.Extra)
		if len(st.Extra) > 0 {
			st.Reason += "; managed services present: " + strings.Join(st.Extra, ", ")
		}
		return st
	}
	st.Missing, st.Extra, st.Differ = compareServices(d.Roles, services, catalog)
	st.MaintenanceDiffers = d.Maintenance.On != maintInCatalog
	converged := len(st.Missing) == 0 && len(st.Extra) == 0 && len(st.Differ) == 0 && !st.MaintenanceDiffers
	forThis := run.ID != "" && run.Generation == d.Generation
	gen := fmt.Sprintf("generation %d", d.Generation)

	switch {
	case forThis && (run.Status == RunQueued || run.Status == RunRunning):
		st.State, st.RunID = StateApplying, run.ID
		st.Reason = fmt.Sprintf("%s: run %s %s", gen, run.ID, run.Status)
	case converged:
		st.State = StateConverged
		st.Reason = gen + " in the catalog"
	case forThis && (run.Status == RunFailed || run.Status == RunCancelled):
		st.State, st.RunID = StateFailed, run.ID
		st.Reason = fmt.Sprintf("%s: run %s %s", gen, run.ID, run.Status)
		if run.Reason != "" {
			st.Reason += ": " + run.Reason
		}
		st.Reason += "; catalog: " + st.differences()
	case forThis && run.Status == RunSucceeded && !now.IsZero() && !run.Ended.IsZero() && now.Sub(run.Ended) < SettleTime:
		st.State, st.RunID = StateApplying, run.ID
		st.Reason = fmt.Sprintf("%s: run %s succeeded, waiting for the catalog (%s)", gen, run.ID, st.differences())
	case forThis && run.Status == RunSucceeded:
		st.State, st.RunID = StateDrift, run.ID
		st.Reason = fmt.Sprintf("%s was applied by run %s, but the catalog differs: %s", gen, run.ID, st.differences())
	default:
		st.State = StatePending
		st.Reason = gen + " not applied yet"
		if run.ID != "" && (run.Status == RunQueued || run.Status == RunRunning) {
			st.Reason += fmt.Sprintf(" (run %s for generation %d is %s)", run.ID, run.Generation, run.Status)
		}
		st.Reason += "; catalog: " + st.differences()
	}
	return st
}

// differences says what differs between the record and the catalog.
func (st NodeState) differences() string {
	var parts []string
	if len(st.Missing) > 0 {
		parts = append(parts, "missing "+strings.Join(st.Missing, ", "))
	}
	if len(st.Extra) > 0 {
		parts = append(parts, "extra "+strings.Join(st.Extra, ", "))
	}
	if len(st.Differ) > 0 {
		parts = append(parts, "different "+strings.Join(st.Differ, ", "))
	}
	if st.MaintenanceDiffers {
		parts = append(parts, "maintenance differs")
	}
	if len(parts) == 0 {
		return "as desired"
	}
	return strings.Join(parts, "; ")
}

// compareServices compares the desired roles with the node's managed
// services (ID "fleetdeck-R"); services without the prefix are not
// fleetdeck's and never count.
func compareServices(desired []string, services []fleet.Service, catalog *Catalog) (missing, extra, differ []string) {
	have := map[string]fleet.Service{}
	for _, s := range services {
		if role, ok := strings.CutPrefix(s.ID, ServicePrefix); ok {
			have[role] = s
		}
	}
	for _, role := range desired {
		s, ok := have[role]
		if !ok {
			missing = append(missing, role)
			continue
		}
		if !serviceMatches(role, s, catalog) {
			differ = append(differ, role)
		}
	}
	for role := range have {
		if !slices.Contains(desired, role) {
			extra = append(extra, role)
		}
	}
	slices.Sort(missing)
	slices.Sort(extra)
	slices.Sort(differ)
	return missing, extra, differ
}

// serviceMatches: the service is named for its role and, when the role is
// catalogued, has its tags (in any order: Consul keeps the order written,
// but the order carries no meaning here) and its port.
func serviceMatches(role string, s fleet.Service, catalog *Catalog) bool {
	if s.Name != role {
		return false
	}
	r, ok := catalog.Lookup(role)
	if !ok {
		return true
	}
	want, got := slices.Clone(r.Tags), slices.Clone(s.Tags)
	slices.Sort(want)
	slices.Sort(got)
	return slices.Equal(want, got) && s.Port == r.Port
}

// linkPrefix starts the metadata keys of the link.
const linkPrefix = "fleetdeck.roles/"

// RunLinks returns the run metadata that links an apply run to the
// generations it applies (the desired records it was built from): one
// entry per node, "fleetdeck.roles/<dc>/<node>" = "<generation>", or
// "<generation>/<change>" when the record names its change (see
// Desired.Change). Node and datacenter names reach it through the store,
// which holds them to [A-Za-z0-9._-]. See the package documentation.
func RunLinks(records []Desired) map[string]string {
	out := make(map[string]string, len(records))
	for _, d := range records {
		v := strconv.FormatUint(d.Generation, 10)
		if d.Change != "" {
			v += "/" + d.Change
		}
		out[linkPrefix+d.Datacenter+"/"+d.Node] = v
	}
	return out
}

// LinkedChange returns the change a run with metadata meta applies on
// node in dc ("" when the link names none, or there is no link).
func LinkedChange(meta map[string]string, dc, node string) string {
	_, change, _ := strings.Cut(meta[linkPrefix+dc+"/"+node], "/")
	return change
}

// LinkedGeneration returns the generation of node in dc that a run with
// metadata meta applies (0: the run does not apply node's roles).
func LinkedGeneration(meta map[string]string, dc, node string) uint64 {
	gen, _, _ := strings.Cut(meta[linkPrefix+dc+"/"+node], "/")
	g, err := strconv.ParseUint(gen, 10, 64)
	if err != nil {
		return 0
	}
	return g
}
