package main

import (
	"context"
	"sync"

	"github.com/fleetdeck/fleetdeck/deploy"
	"github.com/fleetdeck/fleetdeck/internal/consul"
	"github.com/fleetdeck/fleetdeck/roles"
)

// consoleDeploy is the console's tui.Deployer: the deployment server's
// state in the KV of the agent's datacenter, read with deploy.ReadStatus,
// and operators' requests written with deploy.Store.Ask — the same as
// `fleetdeck provisioner status|pause|resume|release|rerun`.
type consoleDeploy struct {
	cc     *consul.Client
	store  *deploy.Store
	guards deploy.Guards
	who    string

	mu sync.Mutex
	dc string
}

func newConsoleDeploy(opts options, cc *consul.Client) *consoleDeploy {
	return &consoleDeploy{cc: cc, store: deploy.NewStore(cc, "", opts.provisioner.KVPrefix), guards: opts.provisioner.Guards, who: roles.Who()}
}

// datacenter is the agent's datacenter, asked once.
func (d *consoleDeploy) datacenter(ctx context.Context) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.dc != "" {
		return d.dc, nil
	}
	dc, err := d.cc.LocalDatacenter(ctx)
	if err != nil {
		return "", err
	}
	d.dc = dc
	return dc, nil
}

func (d *consoleDeploy) Status(ctx context.Context) (deploy.Status, error) {
	dc, err := d.datacenter(ctx)
	if err != nil {
		return deploy.Status{}, err
	}
	return deploy.ReadStatus(ctx, d.store, dc, d.guards, 500)
}

func (d *consoleDeploy) NodeRecords(ctx context.Context, node string) ([]deploy.Record, error) {
	return d.store.NodeRecords(ctx, node)
}

func (d *consoleDeploy) Ask(ctx context.Context, r deploy.Request) (deploy.Request, error) {
	return d.store.Ask(ctx, r)
}

func (d *consoleDeploy) Who() string { return d.who }
