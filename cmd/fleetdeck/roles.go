package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/spf13/cobra"

	"github.com/fleetdeck/fleetdeck/fleet"
	"github.com/fleetdeck/fleetdeck/internal/termtext"
	"github.com/fleetdeck/fleetdeck/provision"
	"github.com/fleetdeck/fleetdeck/roles"
)

const rolesLong = `Change, show and undo nodes' roles: the Consul services a node's own agent
defines. The desired roles and maintenance mode of a node live in Consul KV
([roles] kv_prefix, default fleetdeck/desired/, in the node's datacenter) with
an audit record per generation; the apply playbook (fleetdeck-apply.yml in the
playbook directory, or [roles] playbook) writes the service definitions on the
node, validates them and reloads the agent, through the run manager like any
run (preview, host locks, history). Only roles of the catalog ([roles.NAME] in
the config file and roles.toml in the playbook directory) can be assigned.

NODE is a node name, or dc/name when the name is in several datacenters.
The apply run is a child of this process, so a command that changes
something waits for its run to end; --wait also waits until Consul's catalog
shows every node as desired (converged). A run on 5 hosts or more needs
--confirm with the number of hosts, as the console asks for it.

Exit status: 0 when the run succeeded (with --wait: every node converged);
non-zero with the failing nodes and their run ids otherwise, or when the
change was refused (nothing changed) or lost a race to another change (the
error names who won; nothing was written).`

// rolesSnapshotTimeout bounds the first complete read of the fleet.
const rolesSnapshotTimeout = 30 * time.Second

// rolesEnv is what a roles command works with: the fleet watcher (its
// snapshot gives targets and tracking), the store, the catalog and, for
// commands that apply, the run manager and the applier.
type rolesEnv struct {
	opts    options
	client  *api.Client
	watcher *fleet.Watcher
	snap    *fleet.Snapshot
	store   *roles.Store
	catalog *roles.Catalog
	mgr     *provision.Manager
	// runsOff says why there is no run manager (mgr nil).
	runsOff string
	applier *roles.Applier
	stop    func()
}

// rolesChanged is cmd's Changed for the shared options, leaving out the
// roles commands' own --wait (a bool: follow to convergence), which
// shadows the root's --wait (the blocking-query wait).
func rolesChanged(cmd *cobra.Command) func(string) bool {
	return func(name string) bool {
		if name == "wait" && cmd.LocalFlags().Lookup("wait") != nil {
			return false
		}
		return cmd.Flags().Changed(name)
	}
}

// openRoles resolves the options, starts the fleet watcher as the console
// does and waits (at most rolesSnapshotTimeout) for a complete snapshot.
// write says the command changes something: a read-only configuration
// refuses it before anything starts, and the run manager is required.
func openRoles(ctx context.Context, cmd *cobra.Command, flags *flagSet, write bool) (*rolesEnv, error) {
	opts, err := flags.resolve(rolesChanged(cmd))
	if err != nil {
		return nil, err
	}
	if write && opts.readOnly {
		return nil, fmt.Errorf("changing roles: %w", provision.ErrReadOnly)
	}
	cat, err := opts.rolesCatalog()
	if err != nil {
		return nil, err
	}
	client, resolved, err := newConsulClient(opts)
	if err != nil {
		return nil, err
	}
	opts.fleet.Direct = resolved
	store, err := roles.NewStore(consulAccess(opts, client),
		roles.StoreConfig{Prefix: opts.roles.kvPrefix, Catalog: cat})
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	w := fleet.NewWatcher(client, opts.fleet)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = w.Run(wctx)
	}()
	e := &rolesEnv{opts: opts, client: client, watcher: w, store: store, catalog: cat}
	e.stop = func() {
		if e.mgr != nil {
			// Cancels this process's runs and records them before the
			// watcher goes.
			e.mgr.Close()
		}
		cancel()
		wg.Wait()
	}
	ok := false
	defer func() {
		if !ok {
			e.stop()
		}
	}()
	sctx, scancel := context.WithTimeout(ctx, rolesSnapshotTimeout)
	defer scancel()
	snap := w.Current()
	for !snap.Complete() {
		if snap, err = w.Next(sctx, snap.Version); err != nil {
			return nil, fmt.Errorf("reading the fleet from Consul at %s: no complete answer within %v%s", opts.consul.Address, rolesSnapshotTimeout, connSummary(w.Current()))
		}
	}
	e.snap = snap
	mgr, off, err := newRunManager(ctx, client, w, opts.ansible)
	if err != nil {
		return nil, err
	}
	e.mgr, e.runsOff = mgr, off
	if write {
		if mgr == nil {
			return nil, errors.New("changing roles needs runs: " + strings.TrimPrefix(off, "runs are off: "))
		}
		pb := opts.roles.playbook
		if pb == "" {
			pb = roles.PlaybookFile
		}
		if _, err := os.Stat(filepath.Join(opts.ansible.playbookDir, pb)); err != nil {
			return nil, fmt.Errorf("the apply playbook %s is not in the playbook directory %s (write it with `fleetdeck roles playbook > %s`, or name yours in [roles] playbook): %w",
				pb, opts.ansible.playbookDir, filepath.Join(opts.ansible.playbookDir, roles.PlaybookFile), err)
		}
		readNode := func(ctx context.Context, dc, name string) (*fleet.Node, error) {
			return readNode(ctx, client, dc, name)
		}
		if e.applier, err = roles.NewApplier(roles.ApplierConfig{Store: store, Catalog: cat, Runner: mgr, Playbook: pb, ReadNode: readNode}); err != nil {
			return nil, err
		}
	}
	ok = true
	return e, nil
}

// readNode reads one node's services and checks from the catalog (two
// small requests), for roles.ApplierConfig.ReadNode.
func readNode(ctx context.Context, client *api.Client, dc, name string) (*fleet.Node, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	q := (&api.QueryOptions{Datacenter: dc}).WithContext(ctx)
	cn, _, err := client.Catalog().Node(name, q)
	if err != nil || cn == nil || cn.Node == nil {
		return nil, err
	}
	checks, _, err := client.Health().Node(name, q)
	if err != nil {
		return nil, err
	}
	n := &fleet.Node{Name: name, Datacenter: dc, Address: cn.Node.Address}
	for _, s := range cn.Services {
		n.Services = append(n.Services, fleet.Service{ID: s.ID, Name: s.Service, Tags: s.Tags, Port: s.Port})
	}
	slices.SortFunc(n.Services, func(a, b fleet.Service) int { return strings.Compare(a.ID, b.ID) })
	for _, c := range checks {
		out := c.Output
		if c.CheckID == "_node_maintenance" {
			// Consul keeps the maintenance reason in the check's notes;
			// roles.MaintenanceReason reads it from the output.
			out = c.Notes
		}
		n.Checks = append(n.Checks, fleet.Check{ID: c.CheckID, Name: c.Name, Output: out, ServiceID: c.ServiceID, ServiceName: c.ServiceName})
	}
	return n, nil
}

// connSummary says what the datacenters' connections are, for errors.
func connSummary(s *fleet.Snapshot) string {
	var parts []string
	for _, c := range s.Conn {
		p := c.Datacenter + " " + string(c.Status)
		if c.LastError != "" {
			p += ": " + c.LastError
		}
		parts = append(parts, p)
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, "; ") + ")"
}

// nodes resolves NODE arguments (name or dc/name) in the snapshot. A name
// in several datacenters is an error listing them; every argument is
// checked, and all problems are reported together.
func (e *rolesEnv) nodes(args []string) ([]*fleet.Node, error) {
	var out []*fleet.Node
	var errs []error
	seen := map[string]bool{}
	for _, a := range args {
		var found []*fleet.Node
		if dc, name, ok := strings.Cut(a, "/"); ok {
			if n := e.snap.Node(dc, name); n != nil {
				found = append(found, n)
			}
		} else {
			for _, n := range e.snap.Nodes {
				if n.Name == a {
					found = append(found, n)
				}
			}
		}
		switch len(found) {
		case 0:
			errs = append(errs, fmt.Errorf("node %q is not in the fleet (datacenters %s)", a, strings.Join(e.snap.Datacenters, ", ")))
		case 1:
			if seen[found[0].Key()] {
				errs = append(errs, fmt.Errorf("node %s is given twice", found[0].Key()))
				continue
			}
			seen[found[0].Key()] = true
			out = append(out, found[0])
		default:
			keys := make([]string, len(found))
			for i, n := range found {
				keys[i] = n.Key()
			}
			errs = append(errs, fmt.Errorf("node name %q is in several datacenters: give one of %s", a, strings.Join(keys, ", ")))
		}
	}
	return out, errors.Join(errs...)
}

// applyFlags are the flags of the commands that apply a change.
type applyFlags struct {
	reason  string
	wait    bool
	timeout time.Duration
	check   bool
	confirm string
}

func (f *applyFlags) register(cmd *cobra.Command, reason bool) {
	if reason {
		cmd.Flags().StringVar(&f.reason, "reason", "", "why (required; recorded with the change)")
	}
	cmd.Flags().BoolVar(&f.wait, "wait", false, "after the run, wait until Consul shows every node converged")
	cmd.Flags().DurationVar(&f.timeout, "timeout", 5*time.Minute, "give up (and cancel the run) after this long")
	cmd.Flags().BoolVar(&f.check, "check", false, "run the apply in check mode (--check --diff): show what would change, record nothing")
	cmd.Flags().StringVar(&f.confirm, "confirm", "", "the confirmation a run on 5 hosts or more needs: the number of hosts")
}

// newRolesCmd builds `fleetdeck roles` and its subcommands.
func newRolesCmd(flags *flagSet) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "roles",
		Short: "Change, show and undo nodes' roles (desired state in Consul KV, applied by Ansible)",
		Long:  rolesLong,
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newRolesSetCmd(flags), newRolesShowCmd(flags), newRolesHistoryCmd(flags), newRolesRevertCmd(flags),
		newRolesApplyCmd(flags), newRolesPlaybookCmd())
	return cmd
}

func newRolesSetCmd(flags *flagSet) *cobra.Command {
	var f applyFlags
	var add, remove []string
	cmd := &cobra.Command{
		Use:   "set NODE... --add ROLE,… --remove ROLE,… --reason TEXT",
		Short: "Add and remove roles on nodes, apply the change and follow it",
		Args:  cobra.MinimumNArgs(1),
	}
	cmd.Flags().StringSliceVar(&add, "add", nil, "roles to add (from the role catalog), comma-separated")
	cmd.Flags().StringSliceVar(&remove, "remove", nil, "roles to take away, comma-separated")
	f.register(cmd, true)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return rolesChange(cmd, flags, args, f, func(nodes []*fleet.Node) roles.Request {
			return roles.Request{Targets: nodes, Add: trimAll(add), Remove: trimAll(remove), Reason: f.reason, Check: f.check}
		})
	}
	return cmd
}

func newRolesRevertCmd(flags *flagSet) *cobra.Command {
	var f applyFlags
	var to uint64
	cmd := &cobra.Command{
		Use:   "revert NODE --to GEN --reason TEXT",
		Short: "Restore a node's roles and maintenance of an earlier generation (a new generation), apply and follow it",
		Args:  cobra.ExactArgs(1),
	}
	cmd.Flags().Uint64Var(&to, "to", 0, "the generation to restore (see `fleetdeck roles history NODE`)")
	f.register(cmd, true)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if to == 0 {
			return errors.New("--to GEN is required: the generation to restore (generations count from 1; see `fleetdeck roles history NODE`)")
		}
		return rolesChange(cmd, flags, args, f, func(nodes []*fleet.Node) roles.Request {
			return roles.Request{Targets: nodes, RevertTo: to, Reason: f.reason, Check: f.check}
		})
	}
	return cmd
}

func newRolesApplyCmd(flags *flagSet) *cobra.Command {
	var f applyFlags
	cmd := &cobra.Command{
		Use:   "apply NODE...",
		Short: "Apply nodes' current desired state again (a failed apply, a drifted node); records nothing",
		Args:  cobra.MinimumNArgs(1),
	}
	f.register(cmd, false)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return rolesChange(cmd, flags, args, f, func(nodes []*fleet.Node) roles.Request {
			return roles.Request{Targets: nodes, ApplyOnly: true, Check: f.check}
		})
	}
	return cmd
}

func newMaintCmd(flags *flagSet) *cobra.Command {
	var f applyFlags
	var on, off bool
	cmd := &cobra.Command{
		Use:   "maint NODE... --on|--off --reason TEXT",
		Short: "Turn nodes' Consul maintenance mode on or off through their desired state (recorded, applied, followed)",
		Long: `Turn node maintenance on or off the way roles change: recorded in the node's
desired state with its reason (audited, undoable with roles revert), applied
on the node by the apply playbook (consul maint -enable -reason … /
-disable), and followed. See fleetdeck roles --help.`,
		Args: cobra.MinimumNArgs(1),
	}
	cmd.Flags().BoolVar(&on, "on", false, "put the nodes in maintenance")
	cmd.Flags().BoolVar(&off, "off", false, "take the nodes out of maintenance")
	f.register(cmd, true)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if on == off {
			return errors.New("give exactly one of --on and --off")
		}
		return rolesChange(cmd, flags, args, f, func(nodes []*fleet.Node) roles.Request {
			return roles.Request{Targets: nodes, Maintenance: &roles.Maintenance{On: on, Reason: f.reason}, Reason: f.reason, Check: f.check}
		})
	}
	return cmd
}

func newRolesPlaybookCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "playbook",
		Short: "Print the shipped apply playbook (adapt a copy and name it in [roles] playbook)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := cmd.OutOrStdout().Write(roles.Playbook())
			return err
		},
	}
}

func trimAll(xs []string) []string {
	var out []string
	for _, x := range xs {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

// rolesChange plans the request build makes for the nodes of args,
// prints the plan, applies it, follows the run to its end and, with
// --wait, the nodes to convergence.
func rolesChange(cmd *cobra.Command, flags *flagSet, args []string, f applyFlags, build func([]*fleet.Node) roles.Request) error {
	ctx := cmd.Context()
	if f.timeout <= 0 {
		return fmt.Errorf("--timeout %v: must be positive", f.timeout)
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	out := cmd.OutOrStdout()
	e, err := openRoles(ctx, cmd, flags, true)
	if err != nil {
		return err
	}
	defer e.stop()
	nodes, err := e.nodes(args)
	if err != nil {
		return err
	}
	req := build(nodes)
	plan, err := e.applier.Plan(ctx, req)
	if err != nil {
		return fmt.Errorf("refused, nothing changed: %w", err)
	}
	printPlan(out, plan)
	confirmed := time.Now()
	runID, written, err := e.applier.Apply(ctx, plan, f.confirm)
	if errors.Is(err, provision.ErrConfirmation) {
		e.applier.Discard(plan)
		return fmt.Errorf("%w (pass --confirm %s: the run manager asks for it on 5 hosts or more)", err, plan.Preview.Confirm)
	}
	if err != nil {
		return err
	}
	for _, d := range written {
		fmt.Fprintf(out, "recorded %s/%s generation %d (by %s)\n", termtext.Sanitize(d.Datacenter), termtext.Sanitize(d.Node), d.Generation, termtext.Sanitize(d.Who))
	}
	fmt.Fprintf(out, "run %s launched\n", termtext.Sanitize(runID))
	view, err := waitRun(ctx, e.mgr, runID)
	if err != nil {
		return fmt.Errorf("run %s: %w (the run is cancelled as this command ends)", runID, err)
	}
	status := view.Info.Status
	fmt.Fprintf(out, "run %s %s in %s\n", termtext.Sanitize(runID), termtext.Sanitize(string(status)), time.Since(confirmed).Round(10*time.Millisecond))
	if req.Check {
		for _, l := range view.Output {
			fmt.Fprintln(out, "  "+termtext.Sanitize(l))
		}
		if status != provision.RunOK {
			return fmt.Errorf("check run %s %s", runID, status)
		}
		return nil
	}
	records := written
	if len(records) == 0 {
		records = plan.Records()
	}
	if !f.wait {
		if status != provision.RunOK {
			states := roles.NodeStates(e.watcher.Current(), records, []provision.RunInfo{view.Info}, e.catalog, time.Now())
			return fmt.Errorf("run %s %s: %s", runID, status, runFailures(view, states))
		}
		return nil
	}
	states, err := e.applier.Wait(ctx, e.watcher, records, runID)
	printStates(out, states)
	if err != nil {
		return fmt.Errorf("run %s: %w", runID, err)
	}
	fmt.Fprintf(out, "converged in %s from confirm\n", time.Since(confirmed).Round(10*time.Millisecond))
	return nil
}

// waitRun waits until run id has ended and returns its view.
func waitRun(ctx context.Context, m *provision.Manager, id string) (*provision.RunView, error) {
	var v uint64
	for {
		view, err := m.Run(ctx, id)
		if err != nil {
			return nil, err
		}
		if s := view.Info.Status; s != provision.RunQueued && s != provision.RunRunning {
			return view, nil
		}
		if v, err = m.Next(ctx, v); err != nil {
			return nil, fmt.Errorf("waiting for it to end: %w", err)
		}
	}
}

// runFailures names the failed nodes of a run with their last failure.
func runFailures(view *provision.RunView, states map[string]roles.NodeState) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(states)) {
		_, name, _ := strings.Cut(k, "/")
		msg := string(states[k].State)
		if view.State != nil {
			if h := view.State.Hosts[name]; h != nil && h.LastFailure != nil {
				m := h.LastFailure.Result.Msg
				if m == "" {
					m = strings.TrimSpace(h.LastFailure.Result.Stderr)
				}
				msg = fmt.Sprintf("failed at %q: %s", h.LastFailure.Task, m)
			} else if h != nil {
				msg = string(h.Status)
			}
		}
		parts = append(parts, k+" "+msg)
	}
	return strings.Join(parts, "; ")
}

// printPlan prints per node current → desired, and the run's hosts and
// argv.
func printPlan(w io.Writer, p *roles.Plan) {
	s := termtext.Sanitize
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, np := range p.Nodes {
		cur, gen := "(unmanaged)", "-"
		if np.Current != nil {
			cur, gen = "["+strings.Join(np.Current.Roles, ", ")+"]", strconv.FormatUint(np.Current.Generation, 10)
		}
		next := "[" + strings.Join(np.Next.Roles, ", ") + "]"
		what := ""
		if len(np.Added) > 0 {
			what += " +" + strings.Join(np.Added, " +")
		}
		if len(np.Removed) > 0 {
			what += " -" + strings.Join(np.Removed, " -")
		}
		if m := np.MaintenanceChange(); m != "" {
			what += " maintenance " + m
		}
		if np.Next.RevertOf != 0 {
			what += fmt.Sprintf(" (revert to generation %d)", np.Next.RevertOf)
		}
		arrow := fmt.Sprintf("generation %s → %d", gen, np.Next.Generation)
		if !np.Write {
			arrow = "generation " + gen + " (apply as recorded)"
			if p.Request.Check && !p.Request.ApplyOnly {
				arrow = fmt.Sprintf("generation %s → %d (check only, not recorded)", gen, np.Next.Generation)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s → %s\t%s\n", s(np.Key()), arrow, s(cur), s(next), s(strings.TrimSpace(what)))
	}
	_ = tw.Flush()
	if p.Request.Reason != "" {
		fmt.Fprintf(w, "reason: %s (by %s)\n", s(p.Request.Reason), s(p.Who))
	}
	pv := p.Preview
	hosts := make([]string, len(pv.Hosts))
	for i, h := range pv.Hosts {
		hosts[i] = s(h)
	}
	fmt.Fprintf(w, "run: %d hosts: %s\n", len(pv.Hosts), strings.Join(hosts, ", "))
	argv := make([]string, len(pv.Argv))
	for i, a := range pv.Argv {
		argv[i] = s(a)
	}
	fmt.Fprintf(w, "argv: %s\n", strings.Join(argv, " "))
	for _, warn := range pv.Warnings {
		fmt.Fprintf(w, "warning: %s\n", s(warn))
	}
}

// printStates prints each node's state, sorted by key.
func printStates(w io.Writer, states map[string]roles.NodeState) {
	for _, k := range slices.Sorted(maps.Keys(states)) {
		st := states[k]
		fmt.Fprintf(w, "%s %s: %s\n", termtext.Sanitize(k), st.State, termtext.Sanitize(st.Reason))
	}
}

// nodeReport is `roles show`'s answer.
type nodeReport struct {
	Node       string `json:"node"`
	Datacenter string `json:"datacenter"`
	// Desired is the desired record (nil: unmanaged).
	Desired *roles.Desired `json:"desired"`
	// Actual are the node's managed services in the catalog (ID
	// fleetdeck-ROLE), with their tags and ports.
	Actual []fleet.Service `json:"actual"`
	// Maintenance is the catalog's maintenance (the _node_maintenance
	// check) and its reason.
	Maintenance roles.Maintenance `json:"maintenance"`
	State       roles.State       `json:"state"`
	Reason      string            `json:"reason"`
	// Missing, Extra, Differ: see roles.NodeState.
	Missing []string `json:"missing,omitempty"`
	Extra   []string `json:"extra,omitempty"`
	Differ  []string `json:"differ,omitempty"`
	// LastRun is the latest apply run linked to the node.
	LastRun *lastRun `json:"last_run,omitempty"`
	// RunsOff says why runs could not be read ("" when they were).
	RunsOff string `json:"runs_off,omitempty"`
}

type lastRun struct {
	ID         string    `json:"id"`
	Status     string    `json:"status"`
	Generation uint64    `json:"generation"`
	Started    time.Time `json:"started"`
	Ended      time.Time `json:"ended,omitzero"`
}

func newRolesShowCmd(flags *flagSet) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show NODE",
		Short: "Show a node's desired roles and maintenance, its managed services in the catalog, its state and last apply",
		Args:  cobra.ExactArgs(1),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		e, err := openRoles(ctx, cmd, flags, false)
		if err != nil {
			return err
		}
		defer e.stop()
		nodes, err := e.nodes(args)
		if err != nil {
			return err
		}
		n := nodes[0]
		d, err := e.store.Get(ctx, n.Datacenter, n.Name)
		if err != nil {
			return err
		}
		// The catalog as it is now (the snapshot may hold back a node that
		// lost a service), with the maintenance reason.
		if fresh, err := readNode(ctx, e.client, n.Datacenter, n.Name); err == nil && fresh != nil {
			n = fresh
		}
		r := nodeReport{Node: n.Name, Datacenter: n.Datacenter, Desired: d, Actual: []fleet.Service{}, RunsOff: e.runsOff}
		for _, s := range n.Services {
			if strings.HasPrefix(s.ID, roles.ServicePrefix) {
				r.Actual = append(r.Actual, s)
			}
		}
		r.Maintenance = roles.Maintenance{On: roles.InMaintenance(n), Reason: roles.MaintenanceReason(n)}
		var runs []provision.RunInfo
		if e.mgr != nil {
			if runs, err = e.mgr.Runs(ctx); err != nil {
				return err
			}
		}
		run := roles.RunInfo{}
		if d != nil {
			run = roles.LatestRun(runs, d)
		}
		st := roles.StateOf(d, n.Services, run, r.Maintenance.On, e.catalog, time.Now())
		r.State, r.Reason, r.Missing, r.Extra, r.Differ = st.State, st.Reason, st.Missing, st.Extra, st.Differ
		if run.ID != "" {
			for _, ri := range runs {
				if ri.ID == run.ID {
					r.LastRun = &lastRun{ID: ri.ID, Status: string(ri.Status), Generation: run.Generation, Started: ri.Started, Ended: ri.Ended}
				}
			}
		}
		if asJSON {
			return writeJSON(cmd.OutOrStdout(), r)
		}
		return printNodeReport(cmd.OutOrStdout(), r)
	}
	return cmd
}

// writeJSON prints v as indented JSON with every control character
// escaped (the CLI's one JSON output).
func writeJSON(w io.Writer, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(termtext.EscapeJSON(data), '\n'))
	return err
}

func printNodeReport(w io.Writer, r nodeReport) error {
	s := termtext.Sanitize
	fmt.Fprintf(w, "node:        %s/%s\n", s(r.Datacenter), s(r.Node))
	fmt.Fprintf(w, "state:       %s (%s)\n", r.State, s(r.Reason))
	if d := r.Desired; d != nil {
		fmt.Fprintf(w, "desired:     [%s] maintenance %s  generation %d\n", s(strings.Join(d.Roles, ", ")), maintText(d.Maintenance), d.Generation)
		fmt.Fprintf(w, "changed:     %s by %s: %s\n", d.When.Local().Format(time.DateTime), s(d.Who), s(d.Reason))
		if d.RevertOf != 0 {
			fmt.Fprintf(w, "reverts to:  generation %d\n", d.RevertOf)
		}
	} else {
		fmt.Fprintln(w, "desired:     (unmanaged: no desired record)")
	}
	var actual []string
	for _, sv := range r.Actual {
		a := sv.Name
		if sv.Port != 0 {
			a += ":" + strconv.Itoa(sv.Port)
		}
		if len(sv.Tags) > 0 {
			a += " [" + strings.Join(sv.Tags, ", ") + "]"
		}
		actual = append(actual, a)
	}
	fmt.Fprintf(w, "actual:      %s  maintenance %s\n", s(strings.Join(actual, "; ")), maintText(r.Maintenance))
	if lr := r.LastRun; lr != nil {
		fmt.Fprintf(w, "last apply:  run %s %s (generation %d, %s)\n", s(lr.ID), s(lr.Status), lr.Generation, lr.Started.Local().Format(time.DateTime))
	} else if r.RunsOff != "" {
		fmt.Fprintf(w, "last apply:  unknown (%s)\n", s(r.RunsOff))
	}
	return nil
}

// maintText describes a maintenance mode; the reason (from KV, or from
// Consul's maintenance check) is sanitised.
func maintText(m roles.Maintenance) string {
	if !m.On {
		return "off"
	}
	return "on (" + termtext.Sanitize(m.Reason) + ")"
}

func newRolesHistoryCmd(flags *flagSet) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "history NODE",
		Short: "List a node's generations from its audit trail, oldest first",
		Args:  cobra.ExactArgs(1),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		e, err := openRoles(ctx, cmd, flags, false)
		if err != nil {
			return err
		}
		defer e.stop()
		nodes, err := e.nodes(args)
		if err != nil {
			return err
		}
		n := nodes[0]
		hist, herr := e.store.History(ctx, n.Datacenter, n.Name)
		if hist == nil {
			hist = []roles.Desired{}
		}
		if asJSON {
			if err := writeJSON(cmd.OutOrStdout(), hist); err != nil {
				return err
			}
			return herr
		}
		s := termtext.Sanitize
		tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "GEN\tWHEN\tWHO\tROLES\tMAINTENANCE\tREASON")
		for _, d := range hist {
			reason := d.Reason
			if d.RevertOf != 0 {
				reason = fmt.Sprintf("(revert to %d) %s", d.RevertOf, reason)
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", d.Generation, d.When.Local().Format(time.DateTime), s(d.Who),
				s(strings.Join(d.Roles, ",")), s(maintText(d.Maintenance)), s(reason))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		return herr
	}
	return cmd
}
