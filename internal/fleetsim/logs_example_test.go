package fleetsim_test

import (
	"context"
	"fmt"
	"os"
	"sync"

	logging "cloud.google.com/go/logging/apiv2"
	"github.com/hashicorp/consul/api"

	"github.com/fleetdeck/fleetdeck/internal/fleetsim"
	"github.com/fleetdeck/fleetdeck/internal/logserver"
)

// ExampleNewLogSim wires the log simulator to the fleet simulation the way
// the demo does: a local Cloud Logging endpoint, a real client on it, and
// Run's events fed to Observe. (Compiled, not run: it needs Consul.)
func ExampleNewLogSim() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	consul, _ := api.NewClient(api.DefaultConfig())
	spec := fleetsim.DemoSpec()

	srv, err := logserver.Start(ctx, logserver.Options{MaxEntries: 500_000})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	defer srv.Close()
	client, err := logging.NewClient(ctx, srv.ClientOptions()...)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	defer client.Close()

	logs, err := fleetsim.NewLogSim(client, spec, fleetsim.LogOptions{Project: "fleetdeck-demo"})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = logs.Run(ctx) // backfills 30 minutes, then writes live until ctx is done
	}()
	defer wg.Wait() // before client.Close and srv.Close (defers run last-in first-out)
	defer cancel()

	_ = fleetsim.Run(ctx, consul, spec, fleetsim.RunOptions{OnEvent: logs.Observe})
}
