package deploy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/fleetdeck/fleetdeck/fleet"
	"github.com/fleetdeck/fleetdeck/provision"
	"github.com/fleetdeck/fleetdeck/roles"
)

// RunManager is what the launcher needs of the run manager;
// *provision.Manager implements it. Its policy applies to the
// provisioner's runs as to everyone's: host locks exclude, history,
// per-run timeout, read-only refuses.
type RunManager interface {
	Preview(ctx context.Context, req provision.LaunchRequest) (*provision.Preview, error)
	Launch(ctx context.Context, planID, typed string) (string, error)
	Discard(planID string)
	Cancel(ctx context.Context, runID string) error
	Run(ctx context.Context, runID string) (*provision.RunView, error)
	OnRunFinished(f func(provision.RunInfo)) (unsubscribe func())
}

// RoleApplier is what the launcher needs of the roles applier for
// @roles stages; *roles.Applier implements it.
type RoleApplier interface {
	Plan(ctx context.Context, req roles.Request) (*roles.Plan, error)
	Apply(ctx context.Context, p *roles.Plan, typed string) (string, []roles.Desired, error)
	Discard(p *roles.Plan)
}

// Meta keys the provisioner puts on its runs, so `fleetdeck runs` and the
// console tell them apart and link them to their stage and batch.
const (
	MetaStage = "fleetdeck.provisioner/stage"
	MetaBatch = "fleetdeck.provisioner/batch"
)

// Launched is a started run.
type Launched struct {
	// RunID is the run manager's id.
	RunID string
	// Hosts maps each node key of the batch to its inventory host name;
	// a node missing from it is not in the run (a host lock excluded it).
	Hosts map[string]string
}

// RunLauncher starts stage runs through the run manager (and, for @roles
// stages, the roles applier) and reports their ends.
type RunLauncher struct {
	runs  RunManager
	roles RoleApplier
	unsub func()

	mu     sync.Mutex
	ended  []string
	notify chan struct{}
}

// NewRunLauncher returns a launcher over runs; roles may be nil when no
// stage runs @roles. Close it to stop following the manager.
func NewRunLauncher(runs RunManager, roles RoleApplier) *RunLauncher {
	l := &RunLauncher{runs: runs, roles: roles, notify: make(chan struct{}, 1)}
	// The hook must return at once: it only notes the id.
	l.unsub = runs.OnRunFinished(func(info provision.RunInfo) {
		if info.Meta[MetaStage] == "" {
			return
		}
		l.mu.Lock()
		l.ended = append(l.ended, info.ID)
		l.mu.Unlock()
		select {
		case l.notify <- struct{}{}:
		default:
		}
	})
	return l
}

// Close stops following the run manager.
func (l *RunLauncher) Close() { l.unsub() }

// Ended is signalled when runs have ended; TakeEnded returns them.
func (l *RunLauncher) Ended() <-chan struct{} { return l.notify }

// TakeEnded returns the ids of the runs that ended since the last call.
func (l *RunLauncher) TakeEnded() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.ended
	l.ended = nil
	return out
}

// Launch starts stage's run over nodes (one datacenter's), labelled with
// batch (the scheduler's run id). The provisioner's configuration is the
// confirmation a wide run asks of a person: it passes the preview's own.
func (l *RunLauncher) Launch(ctx context.Context, stage Stage, batch string, nodes []*fleet.Node) (Launched, error) {
	if len(nodes) == 0 {
		return Launched{}, errors.New("no node to run on")
	}
	meta := map[string]string{MetaStage: stage.Name, MetaBatch: batch}
	if stage.Roles() {
		if l.roles == nil {
			return Launched{}, errors.New("stage runs @roles but the roles applier is not configured")
		}
		p, err := l.roles.Plan(ctx, roles.Request{Targets: nodes, ApplyOnly: true, Meta: meta, Unlisted: true})
		if err != nil {
			return Launched{}, fmt.Errorf("planning the roles run: %w", err)
		}
		id, _, err := l.roles.Apply(ctx, p, p.Preview.Confirm)
		if err != nil {
			return Launched{}, fmt.Errorf("launching the roles run: %w", err)
		}
		return Launched{RunID: id, Hosts: hostsOf(p.Preview, nodes)}, nil
	}
	keys := make([]string, len(nodes))
	for i, n := range nodes {
		keys[i] = n.Key()
	}
	req := provision.LaunchRequest{Playbook: stage.Playbook, Scope: provision.ScopeMarked,
		Subject: fmt.Sprintf("stage %s: %d nodes", stage.Name, len(nodes)), Targets: keys, Meta: meta,
		// The batch is exactly its hosts; a listing would cost a second
		// per run and decide nothing.
		Unlisted: true}
	if len(nodes) == 1 {
		req.Scope, req.Subject = provision.ScopeNode, keys[0]
	}
	pv, err := l.runs.Preview(ctx, req)
	if err != nil {
		return Launched{}, fmt.Errorf("previewing the %s run: %w", stage.Name, err)
	}
	id, err := l.runs.Launch(ctx, pv.PlanID, pv.Confirm)
	if err != nil {
		l.runs.Discard(pv.PlanID)
		return Launched{}, fmt.Errorf("launching the %s run: %w", stage.Name, err)
	}
	return Launched{RunID: id, Hosts: hostsOf(pv, nodes)}, nil
}

// hostsOf maps the batch's node keys to the preview's inventory hosts.
func hostsOf(pv *provision.Preview, nodes []*fleet.Node) map[string]string {
	out := map[string]string{}
	for alias, key := range pv.Aliases {
		if slices.Contains(pv.Hosts, alias) {
			out[key] = alias
		}
	}
	for _, n := range nodes {
		if _, ok := out[n.Key()]; !ok && slices.Contains(pv.Hosts, n.Name) {
			out[n.Key()] = n.Name
		}
	}
	return out
}

// Cancel stops a run.
func (l *RunLauncher) Cancel(ctx context.Context, runID string) error {
	return l.runs.Cancel(ctx, runID)
}

// Outcomes reads how an ended run went on each node of hosts (node key →
// inventory host): ok, changed or skipped is Succeeded; failed or
// unreachable Failed; a host the run never finished is Cancelled when the
// run was stopped (a shutdown, a lost lock: no attempt is counted) and
// Failed otherwise.
func (l *RunLauncher) Outcomes(ctx context.Context, runID string, hosts map[string]string) (map[string]Outcome, error) {
	v, err := l.runs.Run(ctx, runID)
	if err != nil {
		return nil, fmt.Errorf("reading run %s: %w", runID, err)
	}
	stopped := false
	switch v.Info.Status {
	case provision.RunCancelled, provision.RunInterrupted, provision.RunLockLost:
		stopped = true
	}
	out := make(map[string]Outcome, len(hosts))
	for key, host := range hosts {
		var st provision.HostStatus
		if v.State != nil {
			if h := v.State.Hosts[host]; h != nil {
				st = h.Status
			}
		}
		switch st {
		case provision.HostOK, provision.HostChanged, provision.HostSkipped:
			out[key] = Succeeded
		case provision.HostFailed, provision.HostUnreachable:
			out[key] = Failed
		default:
			if stopped {
				out[key] = Cancelled
			} else {
				out[key] = Failed
			}
		}
	}
	return out, nil
}
