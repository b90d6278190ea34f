package main

import (
	"context"
	"errors"
	"fmt"
	"sync"

	tea "charm.land/bubbletea/v2"

	"github.com/fleetdeck/fleetdeck/fleet"
	"github.com/fleetdeck/fleetdeck/tui"
)

// runConsole watches the Consul in opts and runs the console until the
// user quits or ctx ends; note is shown in the header. The watcher keeps running behind the console, so
// a Consul outage shows in the header rather than ending the program.
func runConsole(ctx context.Context, opts options, note string) error {
	client, resolved, err := newConsulClient(opts)
	if err != nil {
		return err
	}
	opts.fleet.Direct = resolved
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	w := fleet.NewWatcher(client, opts.fleet)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		// Run only returns when ctx ends; its errors are in the snapshots.
		_ = w.Run(ctx)
	}()
	defer wg.Wait()
	defer cancel()

	topts := tui.Options{Feed: w, NoColor: opts.noColor, ReadOnly: opts.readOnly, Note: note, SSH: opts.ssh, Alerts: opts.alerts}
	mgr, off, err := newRunManager(ctx, client, w, opts.ansible)
	if err != nil {
		return err
	}
	if mgr != nil {
		// Close cancels this console's runs and records them before the
		// watcher (and with it the lock sessions' client) goes away.
		defer mgr.Close()
		topts.Provisioner = mgr
	}
	topts.RunsOff = off
	rs, rolesOff, err := newConsoleRoles(opts, client, resolved, mgr, off)
	if err != nil {
		return err
	}
	topts.Roles, topts.RolesOff = rs, rolesOff
	topts.Deploy = newConsoleDeploy(opts, consulAccess(opts, client))
	logs, off, err := newLogService(ctx, opts.logs)
	if err != nil {
		return err
	}
	if logs != nil {
		defer logs.Close()
		topts.Logs = logs
		topts.SaveLogs = logSaver(opts.logs.saveDir)
	}
	topts.LogsOff = off
	topts.LogsBefore, topts.LogsAfter, topts.LogsCap = opts.logs.before, opts.logs.after, opts.logs.cap
	m := tui.New(ctx, topts)
	p := tea.NewProgram(m, tea.WithContext(ctx))
	_, err = p.Run()
	switch {
	case err == nil, errors.Is(err, tea.ErrInterrupted):
		return nil
	case ctx.Err() != nil && errors.Is(err, tea.ErrProgramKilled) && !errors.Is(err, tea.ErrProgramPanic):
		return nil // SIGINT/SIGTERM to the process
	}
	return fmt.Errorf("running the console: %w", err)
}
