package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/fleetdeck/fleetdeck/internal/consulagent"
)

// newConsulBinaryCmd prints the path of the Consul agent that the demo and
// the tests use, building it from tools/consul first if needed. Hidden:
// it is plumbing for `make test`.
func newConsulBinaryCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "consul-binary",
		Short:  "Print the path of the Consul agent used by the demo and tests (builds it if needed)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			bin, err := consulagent.Binary(cmd.Context(), os.Stderr)
			if err != nil {
				return err
			}
			fmt.Println(bin)
			return nil
		},
	}
}
