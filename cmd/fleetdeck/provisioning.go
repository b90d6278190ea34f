package main

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/hashicorp/consul/api"

	"github.com/fleetdeck/fleetdeck/fleet"
	"github.com/fleetdeck/fleetdeck/provision"
)

// newRunManager wires the run manager from the options. When runs cannot
// be offered (no playbook directory, no ansible-playbook) it returns a nil
// manager and the reason, which the console shows where the run keys are:
// the fleet view works without Ansible.
func newRunManager(ctx context.Context, client *api.Client, feed fleet.Feed, a ansibleOptions) (m *provision.Manager, off string, err error) {
	if a.playbookDir == "" {
		return nil, "runs are off: no playbook directory (set --playbooks or [ansible] playbook_dir)", nil
	}
	cat, err := provision.NewPlaybookCatalog(a.playbookDir)
	if err != nil {
		return nil, "runs are off: " + err.Error(), nil
	}
	stateDir := a.stateDir
	if stateDir == "" {
		if stateDir, err = provision.DefaultStateDir(); err != nil {
			return nil, "", err
		}
	}
	runner, err := provision.NewRunner(provision.RunnerConfig{
		AnsiblePlaybook: a.ansiblePlaybook, Catalog: cat, RunsDir: filepath.Join(stateDir, "runs"), Env: a.env, PassEnv: a.passEnv,
	})
	if err != nil {
		return nil, "runs are off: " + err.Error(), nil
	}
	hist, err := provision.OpenHistory(ctx, provision.HistoryConfig{Path: filepath.Join(stateDir, "history.db")})
	if err != nil {
		return nil, "", fmt.Errorf("opening the run history: %w", err)
	}
	// Runs left running by a console that crashed are marked interrupted,
	// never lost.
	if _, err := hist.RecoverInterrupted(ctx); err != nil {
		return nil, "", fmt.Errorf("recovering interrupted runs: %w", err)
	}
	locks := provision.NewLockManager(client, provision.LockConfig{Prefix: a.lockPrefix})
	queue := provision.NewRunQueue(locks, provision.QueueConfig{Cap: a.maxRuns})
	m, err = provision.NewManager(provision.ManagerConfig{Feed: feed, Runner: runner, History: hist, Queue: queue, Timeout: a.timeout,
		KeepRuns: a.keepRuns, KeepFor: a.keepFor, ReadOnly: a.readOnly})
	if err != nil {
		return nil, "", err
	}
	return m, "", nil
}
