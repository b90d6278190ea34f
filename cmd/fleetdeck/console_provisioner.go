package main

import (
	"context"
	"sync"

	"github.com/fleetdeck/fleetdeck/provision"
)

// TEMPORARY — delete this file when the console's tui.Provisioner takes
// Launch(ctx, planID, typed) (issue 8, branch i8-tui), and hand the
// console the *provision.Manager itself again (console.go).
//
// provision.Manager.Launch now takes what the user typed and enforces the
// confirmation itself; the console of this branch still checks the typed
// text before it calls the old Launch(ctx, planID). Passing the preview's
// own Confirm keeps the console working exactly as before until then.
type consoleProvisioner struct {
	*provision.Manager

	mu      sync.Mutex
	confirm map[string]string // plan id → Preview.Confirm
}

func newConsoleProvisioner(m *provision.Manager) *consoleProvisioner {
	return &consoleProvisioner{Manager: m, confirm: map[string]string{}}
}

func (c *consoleProvisioner) note(p *provision.Preview, err error) (*provision.Preview, error) {
	if err == nil {
		c.mu.Lock()
		c.confirm[p.PlanID] = p.Confirm
		c.mu.Unlock()
	}
	return p, err
}

func (c *consoleProvisioner) Preview(ctx context.Context, req provision.LaunchRequest) (*provision.Preview, error) {
	return c.note(c.Manager.Preview(ctx, req))
}

func (c *consoleProvisioner) Rerun(ctx context.Context, runID string, onlyFailed bool) (*provision.Preview, error) {
	return c.note(c.Manager.Rerun(ctx, runID, onlyFailed))
}

func (c *consoleProvisioner) Discard(planID string) {
	c.mu.Lock()
	delete(c.confirm, planID)
	c.mu.Unlock()
	c.Manager.Discard(planID)
}

func (c *consoleProvisioner) Launch(ctx context.Context, planID string) (string, error) {
	c.mu.Lock()
	typed := c.confirm[planID]
	c.mu.Unlock()
	id, err := c.Manager.Launch(ctx, planID, typed)
	if err == nil {
		c.mu.Lock()
		delete(c.confirm, planID)
		c.mu.Unlock()
	}
	return id, err
}
