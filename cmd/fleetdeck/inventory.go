package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime/debug"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-cleanhttp"
	"github.com/spf13/cobra"

	"github.com/fleetdeck/fleetdeck/fleet"
	"github.com/fleetdeck/fleetdeck/provision"
)

const inventoryLong = `inventory prints an Ansible dynamic inventory of the fleet, read from one
consistent snapshot of Consul (a constant number of requests, not one per node):

  --list         every group with its hosts, and every host's variables
                 under _meta.hostvars
  --host NAME    one host's variables ({} for a host not in the inventory)

Groups: dc_<datacenter>, svc_<service>, svc_<service>__tag_<tag>,
meta_<key>_<value> (node meta, except instance-id), asg_<group>, and
health_passing / health_warning / health_critical / health_maintenance.
Characters outside [A-Za-z0-9_] in group names become "_".

Host variables: ansible_host (the node address) and consul_node, consul_dc,
consul_address, consul_meta, consul_services, consul_roles, consul_tags,
consul_health, consul_group, consul_zone, consul_instance_id, consul_image,
consul_failing_checks. Every string is marked unsafe, so Ansible never
templates text that came from Consul.

Nodes whose names Ansible cannot target exactly (all, localhost, names with
",", ":", spaces, a leading "-" or "@", names equal to a group, ...) get an
alias fd_<name>_<hash>; a name used in several datacenters becomes
<name>.node.<dc>.consul. Each such renaming is a warning on stderr.

Ansible runs an inventory script with only --list, so point it at a small
wrapper and pass the connection through the environment or the wrapper:

  #!/bin/sh
  exec fleetdeck inventory "$@"

  CONSUL_HTTP_ADDR=consul.example:8500 ansible-playbook -i ./fleetdeck-inventory site.yml`

// inventoryWait is the blocking-query wait of the inventory's one-shot
// read; see runInventory.
const inventoryWait = time.Second

// newInventoryCmd implements Ansible's dynamic inventory protocol.
func newInventoryCmd(flags *flagSet) *cobra.Command {
	var list bool
	var host string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "inventory (--list | --host NAME)",
		Short: "Print an Ansible dynamic inventory of the fleet",
		Long:  inventoryLong,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			hostSet := cmd.Flags().Changed("host")
			if list == hostSet {
				return errors.New("inventory: give exactly one of --list or --host NAME")
			}
			opts, err := flags.resolve(cmd.Flags().Changed)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			return runInventory(ctx, opts, cmd.OutOrStdout(), cmd.ErrOrStderr(), list, host)
		},
	}
	cmd.Flags().BoolVar(&list, "list", false, "print every group and every host's variables")
	cmd.Flags().StringVar(&host, "host", "", "print the variables of one inventory host")
	cmd.Flags().DurationVar(&timeout, "timeout", time.Minute, "give up reading Consul after this long")
	return cmd
}

// runInventory reads one snapshot and writes the --list or --host answer
// to stdout; warnings go to stderr, where Ansible shows them without
// parsing them.
func runInventory(ctx context.Context, opts options, stdout, stderr io.Writer, list bool, host string) error {
	if os.Getenv("GOMEMLIMIT") == "" {
		// main's soft limit suits the long-running console. This process
		// lives for one read of ~50 MB of JSON at 10k nodes and exits: under
		// 128 MiB the garbage collector ran almost continuously and made
		// the read several times slower.
		debug.SetMemoryLimit(math.MaxInt64)
	}
	// One read of ~50 MB at 10k nodes: Consul compressing it costs more
	// (on its cores, ~40 ms per 1 MB service answer) than the bytes save
	// next to the Ansible controller. FLEETDECK_INVENTORY_GZIP=1 keeps it
	// for slow links.
	if os.Getenv("FLEETDECK_INVENTORY_GZIP") != "1" {
		t := cleanhttp.DefaultPooledTransport()
		t.DisableCompression = true
		opts.consul.Transport = t
	}
	client, err := api.NewClient(opts.consul)
	if err != nil {
		return fmt.Errorf("configuring the Consul client: %w", err)
	}
	cfg := opts.fleet
	// The inventory needs health, which the failing checks alone give
	// exactly; the full check read is ~12 MB at 10k nodes.
	cfg.SkipAllChecks = true
	// While Once waits for the last datacenter, watches that have answered
	// already sit in blocking queries. Consul 1.15 keeps such a request
	// (and its place in the 200-connections-per-client limit) until its
	// wait time ends even after this process has exited, so with the
	// console's 5-minute wait a few inventory runs in a row were refused
	// with HTTP 429 at 50 services. A short wait bounds what each run
	// leaves behind.
	cfg.WaitTime = inventoryWait
	snap, err := fleet.Once(ctx, client, cfg)
	if err != nil {
		return fmt.Errorf("reading the fleet for the inventory: %w", err)
	}
	skip := []string{cfg.InstanceKey}
	if cfg.InstanceKey == "" {
		skip = []string{"instance-id"}
	}
	inv, warns := provision.BuildInventory(snap, provision.InventoryOptions{SkipMetaGroupKeys: skip})
	for _, w := range warns {
		fmt.Fprintln(stderr, "fleetdeck inventory: warning:", w)
	}
	for _, c := range snap.Conn {
		if c.FilteredByACL {
			fmt.Fprintf(stderr, "fleetdeck inventory: warning: datacenter %s: the ACL token may not read every node; the inventory is incomplete\n", c.Datacenter)
		}
	}
	if list {
		return inv.WriteList(stdout)
	}
	return inv.WriteHost(stdout, host)
}
