package tui

import (
	"context"

	"github.com/fleetdeck/fleetdeck/provision"
)

// Provisioner is what the console needs to launch and follow Ansible runs;
// provision.Manager implements it. With none (Options.Provisioner nil) the
// run features are off and their keys say so.
type Provisioner interface {
	// Playbooks lists the allow-listed playbooks.
	Playbooks(ctx context.Context) ([]provision.Playbook, error)
	// Preview prepares a run: inventory snapshot, exact argv, and the hosts
	// as ansible-playbook --list-hosts resolves them.
	Preview(ctx context.Context, req provision.LaunchRequest) (*provision.Preview, error)
	// Discard drops a preview that will not be launched.
	Discard(planID string)
	// Launch runs (or queues) a previewed plan. typed is exactly what the
	// user typed in the preview's confirmation ("" when none was asked);
	// the manager checks it against Preview.Confirm and refuses a
	// mismatch (provision.ErrConfirmation), keeping the plan open.
	Launch(ctx context.Context, planID string, typed string) (runID string, err error)
	// Cancel stops a running or queued run.
	Cancel(ctx context.Context, runID string) error
	// Rerun previews a past run again with the same settings, or only on
	// its hosts that failed, were unreachable or did not finish.
	Rerun(ctx context.Context, runID string, onlyFailed bool) (*provision.Preview, error)
	// Runs lists running, queued and past runs, newest first.
	Runs(ctx context.Context) ([]provision.RunInfo, error)
	// Run returns one run's board, live or replayed from history.
	Run(ctx context.Context, runID string) (*provision.RunView, error)
	// Locks lists the host locks held now in Consul, by every console, in
	// every datacenter of the fleet (what was read, plus an error naming a
	// datacenter that could not be).
	Locks(ctx context.Context) ([]provision.HeldLock, error)
	// Next blocks until the runs changed after version after and returns
	// the new version. Changes are batched, so a run streaming thousands
	// of events costs a few frames a second, not one per event.
	Next(ctx context.Context, after uint64) (uint64, error)
}
