package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/consul/api"

	"github.com/fleetdeck/fleetdeck/internal/consul"
	"github.com/fleetdeck/fleetdeck/provision"
	"github.com/fleetdeck/fleetdeck/roles"
	"github.com/fleetdeck/fleetdeck/tui"
)

// consoleRoles is the console's tui.RolesService: the roles Applier
// (Plan, Apply, Discard, Who) on the console's run manager, the Store's
// reads and the role catalog, wired from the same configuration as
// `fleetdeck roles`.
type consoleRoles struct {
	*roles.Applier
	store   *roles.Store
	catalog *roles.Catalog
}

func (r *consoleRoles) Catalog() *roles.Catalog { return r.catalog }

func (r *consoleRoles) List(ctx context.Context, dc string) ([]roles.Desired, error) {
	return r.store.List(ctx, dc)
}

func (r *consoleRoles) History(ctx context.Context, dc, node string) ([]roles.Desired, error) {
	return r.store.History(ctx, dc, node)
}

// newConsoleRoles wires role reassignment for the console. Like runs, it
// is off (nil, and the reason the console shows where its keys are) when
// it cannot be offered: runs are off, the role catalog is empty or
// broken, or the apply playbook is not in the playbook directory. Only a
// bad [roles] kv_prefix, which the configuration checked already, is an
// error.
func newConsoleRoles(opts options, client *api.Client, direct *api.Config, mgr *provision.Manager, runsOff string) (tui.RolesService, string, error) {
	if mgr == nil {
		return nil, "roles are off: " + strings.TrimPrefix(runsOff, "runs are off: "), nil
	}
	cat, err := opts.rolesCatalog()
	if err != nil {
		return nil, "roles are off: " + err.Error(), nil
	}
	if cat.Len() == 0 {
		return nil, "roles are off: no role catalog ([roles.NAME] in the config file, or " + roles.RolesFile + " in the playbook directory)", nil
	}
	pb := opts.roles.playbook
	if pb == "" {
		pb = roles.PlaybookFile
	}
	if _, err := os.Stat(filepath.Join(opts.ansible.playbookDir, pb)); err != nil {
		return nil, fmt.Sprintf("roles are off: the apply playbook %s is not in the playbook directory (fleetdeck roles playbook > %s)",
			pb, filepath.Join(opts.ansible.playbookDir, roles.PlaybookFile)), nil
	}
	store, err := roles.NewStore(consul.New(client, consul.Options{Direct: direct, TokenSource: opts.fleet.TokenSource}),
		roles.StoreConfig{Prefix: opts.roles.kvPrefix, Catalog: cat})
	if err != nil {
		return nil, "", err
	}
	a, err := roles.NewApplier(roles.ApplierConfig{Store: store, Catalog: cat, Runner: mgr, Playbook: pb})
	if err != nil {
		return nil, "", err
	}
	return &consoleRoles{Applier: a, store: store, catalog: cat}, "", nil
}
