// Command fleetdeck is a terminal console for fleets of servers that carry
// a Consul agent. With no subcommand it opens the console against the
// Consul named by the CONSUL_HTTP_* environment, the config file and flags.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCmd().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "fleetdeck:", err)
		os.Exit(1)
	}
}

const rootLong = `fleetdeck is a live console for a fleet of servers that each carry a Consul
agent: every node with its roles (services and tags), autoscaling group and
health, across datacenters, updated by Consul blocking queries.

Connection settings are read, in increasing order of precedence, from the
standard Consul environment (CONSUL_HTTP_ADDR, CONSUL_HTTP_TOKEN,
CONSUL_HTTP_TOKEN_FILE, CONSUL_HTTP_SSL, CONSUL_CACERT, CONSUL_CLIENT_CERT,
CONSUL_CLIENT_KEY, CONSUL_TLS_SERVER_NAME), the TOML config file (--config,
default $XDG_CONFIG_HOME/fleetdeck/config.toml) and the flags below.
NO_COLOR turns colours off. Press ? in the console for its key bindings.`

// newRootCmd builds the command tree. Flags are registered on the root and
// shared by every subcommand that talks to Consul.
func newRootCmd() *cobra.Command {
	var flags flagSet
	root := &cobra.Command{
		Use:           "fleetdeck",
		Short:         "Live console for a Consul fleet",
		Long:          rootLong,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts, err := flags.resolve(cmd.Flags().Changed)
			if err != nil {
				return err
			}
			return runConsole(cmd.Context(), opts, "")
		},
	}
	flags.register(root.PersistentFlags())
	root.AddCommand(newDemoCmd(&flags))
	return root
}
