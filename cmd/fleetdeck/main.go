// Command fleetdeck is a terminal console for fleets of servers that carry
// a Consul agent. With no subcommand it opens the console against the
// Consul named by the CONSUL_HTTP_* environment, the config file and flags.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/fleetdeck/fleetdeck/internal/termtext"
	"github.com/fleetdeck/fleetdeck/provision"
)

// defaultMemoryLimit is the soft memory limit unless GOMEMLIMIT is set.
// Without one, the large JSON answers of a 10k-node fleet let the heap
// grow to twice its live size (GOGC=100) and the console sat at ~180 MB
// resident; at 128 MiB it stays under 150 MB for no measurable CPU (see
// docs/benchmarks.md). It is soft: a bigger fleet just gets more memory.
const defaultMemoryLimit = 128 << 20

func main() {
	provision.SuperviseMain()
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
	// SIGHUP too: a console over SSH gets it when the connection drops, and
	// the demo must still stop its Consul and remove its files.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	err := newRootCmd().ExecuteContext(ctx)
	stop()
	if err != nil {
		printError(os.Stderr, err)
		os.Exit(1)
	}
}

// printError prints a command's error. Errors quote Consul's answers,
// node and datacenter names, run records and Ansible's output, so they
// pass through the terminal sanitiser like every other output; their line
// breaks stay.
func printError(w io.Writer, err error) {
	fmt.Fprintln(w, "fleetdeck:", termtext.SanitizeText(err.Error()))
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
			// Only the console runs playbooks: a missing directory must
			// not break `fleetdeck inventory` under Ansible.
			if err := opts.ansible.checkPlaybookDir(); err != nil {
				return err
			}
			return runConsole(cmd.Context(), opts, "")
		},
	}
	flags.register(root.PersistentFlags())
	root.AddCommand(newDemoCmd(&flags))
	root.AddCommand(newInventoryCmd(&flags))
	root.AddCommand(newRunsCmd(&flags))
	root.AddCommand(newRolesCmd(&flags))
	root.AddCommand(newMaintCmd(&flags))
	root.AddCommand(newProvisionerCmd(&flags))
	return root
}
