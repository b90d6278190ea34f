package fleetsim_test

import (
	"context"
	"fmt"
	"os"
	"os/signal"

	"github.com/fleetdeck/fleetdeck/internal/consulagent"
	"github.com/fleetdeck/fleetdeck/internal/fleetsim"
)

// The demo's wiring: a throwaway agent, the demo fleet, and the simulation
// running until Ctrl-C.
func Example() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	agent, err := consulagent.Start(ctx, consulagent.Options{Log: nil})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	defer agent.Stop()
	c, err := agent.Client()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	spec := fleetsim.DemoSpec()
	if err := fleetsim.Load(ctx, c, spec); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	fmt.Printf("export CONSUL_HTTP_ADDR=%s\n", agent.HTTPAddr())
	_ = fleetsim.Run(ctx, c, spec, fleetsim.RunOptions{
		OnEvent: func(e fleetsim.SimEvent) { fmt.Fprintln(os.Stderr, e) },
	})
}
