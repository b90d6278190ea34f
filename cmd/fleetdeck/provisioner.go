package main

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/spf13/cobra"

	"github.com/fleetdeck/fleetdeck/deploy"
	"github.com/fleetdeck/fleetdeck/fleet"
	"github.com/fleetdeck/fleetdeck/internal/consul"
	"github.com/fleetdeck/fleetdeck/internal/notify"
	"github.com/fleetdeck/fleetdeck/internal/termtext"
	"github.com/fleetdeck/fleetdeck/provision"
	"github.com/fleetdeck/fleetdeck/roles"
)

const provisionerLong = `The deployment server: watches Consul and configures new and changed servers
through the stages of [[provisioner.stage]] in the config file, one Ansible run
per batch of nodes, with loop guards, and leadership through Consul.

Run any number of instances against the local agent of a datacenter: one
leads (the lock <kv_prefix>leader), the others stand by and say who leads.
All state — stage records, holds, attempts, the breaker, the decisions — is
in that datacenter's KV, so a new leader continues where the old one
stopped. Each instance provisions the datacenter of the agent it talks to.

Logs go to stderr (--log-format logfmt or json), every decision with its
reason; the leader also appends them to provisioner/decisions.jsonl in the
state directory. SIGTERM or SIGINT stops it cleanly: nothing new launches,
running runs get [provisioner] grace (default 30s) to finish and are then
cancelled. A bad configuration exits 1 before anything starts.`

func newProvisionerCmd(flags *flagSet) *cobra.Command {
	var dryRun, once bool
	var logFormat, id string
	cmd := &cobra.Command{
		Use:   "provisioner",
		Short: "Run the deployment server (configures new servers through staged Ansible runs)",
		Long:  provisionerLong,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runProvisioner(cmd, flags, provisionerFlags{dryRun: dryRun, once: once, logFormat: logFormat, id: id})
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "decide and log, launch nothing, write nothing (does not take the lock)")
	cmd.Flags().BoolVar(&once, "once", false, "one reconcile pass: launch what is due now, wait for those runs, exit")
	cmd.Flags().StringVar(&logFormat, "log-format", "logfmt", "log format on stderr: logfmt or json")
	cmd.Flags().StringVar(&id, "id", "", "this instance's name in the leader lock (default host:pid)")
	cmd.AddCommand(newProvisionerStatusCmd(flags), newProvisionerAskCmd(flags, deploy.RequestPause),
		newProvisionerAskCmd(flags, deploy.RequestResume), newProvisionerAskCmd(flags, deploy.RequestRelease),
		newProvisionerAskCmd(flags, deploy.RequestRerun))
	return cmd
}

type provisionerFlags struct {
	dryRun, once bool
	logFormat    string
	id           string
}

// provisionerEnv is a Consul connection and the datacenter's store.
type provisionerEnv struct {
	opts   options
	client *api.Client
	cc     *consul.Client
	dc     string
	store  *deploy.Store
}

func openProvisioner(ctx context.Context, cmd *cobra.Command, flags *flagSet) (*provisionerEnv, error) {
	opts, err := flags.resolve(cmd.Flags().Changed)
	if err != nil {
		return nil, err
	}
	client, resolved, err := newConsulClient(opts)
	if err != nil {
		return nil, err
	}
	opts.fleet.Direct = resolved
	cc := consulAccess(opts, client)
	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	dc, err := cc.LocalDatacenter(dctx)
	if err != nil {
		return nil, fmt.Errorf("the provisioner works in its agent's datacenter (Consul at %s): %w", opts.consul.Address, err)
	}
	return &provisionerEnv{opts: opts, client: client, cc: cc, dc: dc,
		store: deploy.NewStore(cc, "", opts.provisioner.KVPrefix)}, nil
}

func runProvisioner(cmd *cobra.Command, flags *flagSet, pf provisionerFlags) error {
	ctx := cmd.Context()
	var handler slog.Handler
	switch pf.logFormat {
	case "logfmt":
		handler = slog.NewTextHandler(os.Stderr, nil)
	case "json":
		handler = slog.NewJSONHandler(os.Stderr, nil)
	default:
		return fmt.Errorf("--log-format %q: want logfmt or json", pf.logFormat)
	}
	env, err := openProvisioner(ctx, cmd, flags)
	if err != nil {
		return err
	}
	opts := env.opts
	pc := opts.provisioner
	if len(pc.Stages) == 0 {
		return fmt.Errorf("no stages: add [[provisioner.stage]] tables to the config file (%s); the README shows an example", opts.configPath)
	}
	if opts.readOnly {
		return fmt.Errorf("the provisioner launches runs: %w", provision.ErrReadOnly)
	}
	if err := opts.ansible.checkPlaybookDir(); err != nil {
		return err
	}
	if opts.ansible.playbookDir == "" {
		return errors.New("the provisioner needs a playbook directory (--playbooks or [ansible] playbook_dir)")
	}
	rolesPlaybook := cmp.Or(opts.roles.playbook, roles.PlaybookFile)
	playbookPath := func(st deploy.Stage) string {
		if st.Roles() {
			return filepath.Join(opts.ansible.playbookDir, rolesPlaybook)
		}
		return filepath.Join(opts.ansible.playbookDir, st.Playbook)
	}
	var missing []string
	for _, st := range pc.Stages {
		if _, err := os.Stat(playbookPath(st)); err != nil {
			missing = append(missing, fmt.Sprintf("stage %s: %s", st.Name, err))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("stage playbooks missing from %s:\n  %s", opts.ansible.playbookDir, strings.Join(missing, "\n  "))
	}
	log := slog.New(handler).With("datacenter", env.dc)
	if pf.dryRun {
		log = log.With("dry_run", true)
	}

	// The provisioner's runs and history live apart from a console's on
	// the same machine.
	base := opts.ansible.stateDir
	if base == "" {
		if base, err = provision.DefaultStateDir(); err != nil {
			return err
		}
	}
	opts.ansible.stateDir = filepath.Join(base, "provisioner")
	if err := os.MkdirAll(opts.ansible.stateDir, 0o700); err != nil {
		return fmt.Errorf("creating the state directory: %w", err)
	}
	opts.fleet.Datacenters = []string{env.dc}

	wctx, stopWatcher := context.WithCancel(context.WithoutCancel(ctx))
	w := fleet.NewWatcher(env.client, opts.fleet)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = w.Run(wctx)
	}()
	defer func() {
		stopWatcher()
		wg.Wait()
	}()
	mgr, off, err := newRunManager(ctx, env.client, w, opts.ansible)
	if err != nil {
		return err
	}
	if mgr == nil {
		return errors.New("the provisioner cannot run playbooks: " + strings.TrimPrefix(off, "runs are off: "))
	}
	defer mgr.Close()

	var desired deploy.DesiredSource
	var applier deploy.RoleApplier
	cat, err := opts.rolesCatalog()
	if err != nil {
		return err
	}
	rstore, err := roles.NewStore(env.cc, roles.StoreConfig{Prefix: opts.roles.kvPrefix, Catalog: cat})
	if err != nil {
		return err
	}
	desired = rstore
	who := "provisioner@" + hostName()
	if a, err := roles.NewApplier(roles.ApplierConfig{Store: rstore, Catalog: cat, Runner: mgr, Playbook: rolesPlaybook, Who: who}); err != nil {
		return err
	} else {
		applier = a
	}
	launcher := deploy.NewRunLauncher(mgr, applier)
	defer launcher.Close()

	var alerts notify.Multi
	if pc.SlackWebhookURL != "" {
		s, err := notify.NewSlack(pc.SlackWebhookURL, notify.Options{})
		if err != nil {
			return fmt.Errorf("[provisioner] slack_webhook_url: %w", err)
		}
		alerts = append(alerts, s)
	}
	if pc.PagerDutyKey != "" {
		p, err := notify.NewPagerDuty(pc.PagerDutyKey, notify.Options{})
		if err != nil {
			return fmt.Errorf("[provisioner] pagerduty_routing_key: %w", err)
		}
		if pc.PagerDutyURL != "" {
			p.URL = pc.PagerDutyURL
		}
		alerts = append(alerts, p)
	}
	var sender notify.Sender
	if len(alerts) > 0 {
		sender = alerts
	}

	var history io.Writer
	if !pf.dryRun {
		f, err := os.OpenFile(filepath.Join(opts.ansible.stateDir, "decisions.jsonl"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("opening the decisions history: %w", err)
		}
		defer f.Close()
		history = f
	}
	srv, err := deploy.NewServer(deploy.ServerConfig{
		Config: pc, Datacenter: env.dc, Store: env.store,
		Elect: deploy.ElectConfig{Client: env.cc, Prefix: pc.KVPrefix, TTL: pc.SessionTTL, ID: pf.id},
		Feed:  w, Launcher: launcher, Desired: desired,
		PlaybookSum: func(st deploy.Stage) (string, error) { return fileSum(playbookPath(st)) },
		Alerts:      sender, Log: log, History: history, Who: who,
		DryRun: pf.dryRun, Once: pf.once, Grace: pc.Grace,
	})
	if err != nil {
		return err
	}
	log.Info("starting", "stages", len(pc.Stages), "kv_prefix", env.store.Prefix(), "playbooks", opts.ansible.playbookDir)
	err = srv.Run(ctx)
	log.Info("stopped", "err", err)
	return err
}

func hostName() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "unknown-host"
	}
	return h
}

// fileSum is the hex SHA-256 of a file.
func fileSum(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:]), nil
}

func newProvisionerStatusCmd(flags *flagSet) *cobra.Command {
	var asJSON bool
	var last int
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the deployment server of the agent's datacenter: leader, state, queue, held nodes, decisions",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			env, err := openProvisioner(cmd.Context(), cmd, flags)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			st, err := deploy.ReadStatus(ctx, env.store, env.dc, env.opts.provisioner.Guards, last)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), st)
			}
			return printStatus(cmd.OutOrStdout(), st)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().IntVar(&last, "last", 20, "how many of the last decisions to show (0: all kept)")
	return cmd
}

// printStatus prints a status for people; every value from KV passes the
// sanitiser.
func printStatus(out io.Writer, st deploy.Status) error {
	// One line per value: a newline from KV must not forge a row.
	clean := termtext.Sanitize
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	leader := "none (nothing launches until an instance runs)"
	if st.Leader != nil {
		leader = fmt.Sprintf("%s since %s", st.Leader.ID, st.Leader.Started.Local().Format(time.DateTime))
	}
	g := st.Guards
	fmt.Fprintf(w, "datacenter\t%s\n", clean(st.Datacenter))
	fmt.Fprintf(w, "leader\t%s\n", clean(leader))
	fmt.Fprintf(w, "state\t%s\n", clean(st.State))
	fmt.Fprintf(w, "guards\tquiet %s/%s, batch %d, %d parallel, %d attempts (backoff %s..%s), oscillation >%d/h, %d of %d runs/h, breaker %.0f%% of %d (cool-down %s)\n",
		g.QuietMin, g.QuietMax, g.BatchMax, g.MaxParallelRuns, g.MaxAttempts, g.BackoffBase, g.BackoffMax, g.OscillationMax,
		g.RunsLastHour, g.RunsPerHour, g.BreakerRatio*100, g.BreakerWindow, g.BreakerCooldown)
	if err := w.Flush(); err != nil {
		return err
	}
	section := func(title string, header string, rows [][]string) {
		fmt.Fprintf(out, "\n%s (%d)\n", title, len(rows))
		if len(rows) == 0 {
			return
		}
		w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "  "+header)
		for _, r := range rows {
			for i := range r {
				r[i] = clean(r[i])
			}
			fmt.Fprintln(w, "  "+strings.Join(r, "\t"))
		}
		_ = w.Flush()
	}
	ago := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.Local().Format("15:04:05")
	}
	var rows [][]string
	for _, q := range st.Queue {
		why := "ready"
		if !q.ReadyAt.IsZero() {
			why = "quiet period until " + ago(q.ReadyAt)
		}
		if q.Waiting != "" {
			why = q.Waiting
		}
		rows = append(rows, []string{q.Stage, fmt.Sprint(len(q.Nodes)), shortList(q.Nodes, 4), ago(q.Since), why})
	}
	section("queue", "STAGE\tNODES\t\tSINCE\tWHY", rows)
	rows = nil
	for _, r := range st.Running {
		rows = append(rows, []string{r.Batch, r.Stage, fmt.Sprint(len(r.Nodes)), shortList(r.Nodes, 4), ago(r.Started)})
	}
	section("running", "BATCH\tSTAGE\tNODES\t\tSTARTED", rows)
	rows = nil
	for _, h := range st.Held {
		rows = append(rows, []string{h.Node, cmp.Or(h.Stage, "(all)"), ago(h.At), h.Reason})
	}
	section("held (fleetdeck provisioner release NODE)", "NODE\tSTAGE\tSINCE\tREASON", rows)
	rows = nil
	for _, b := range st.Backoff {
		rows = append(rows, []string{b.Node, b.Stage, fmt.Sprint(b.Failures), ago(b.Until)})
	}
	section("backoff", "NODE\tSTAGE\tFAILURES\tRETRY AFTER", rows)
	rows = nil
	for _, r := range st.Requests {
		rows = append(rows, []string{string(r.Kind), r.Node, r.Stage, r.Who, r.Reason})
	}
	section("requests waiting for the leader", "KIND\tNODE\tSTAGE\tWHO\tREASON", rows)
	rows = nil
	for _, d := range st.Decisions {
		until := ""
		if !d.Until.IsZero() {
			until = " (until " + ago(d.Until) + ")"
		}
		node := d.Node
		switch {
		case node == "" && len(d.Batch) == 1:
			node = d.Batch[0].Node
		case node == "" && len(d.Batch) > 1:
			node = fmt.Sprintf("%d nodes", len(d.Batch))
		}
		rows = append(rows, []string{d.At.Local().Format("01-02 15:04:05"), string(d.Kind), cmp.Or(d.Stage, "-"), cmp.Or(node, "-"), d.Reason + until})
	}
	section("decisions", "AT\tKIND\tSTAGE\tNODE\tREASON", rows)
	return nil
}

func shortList(xs []string, n int) string {
	if len(xs) <= n {
		return strings.Join(xs, ",")
	}
	return strings.Join(xs[:n], ",") + fmt.Sprintf(",… (+%d)", len(xs)-n)
}

// newProvisionerAskCmd is pause, resume, release or rerun: a request the
// leader takes at its next pass.
func newProvisionerAskCmd(flags *flagSet, kind deploy.RequestKind) *cobra.Command {
	var reason, stage string
	use, short := string(kind), ""
	args := cobra.NoArgs
	switch kind {
	case deploy.RequestPause:
		short = "Stop launching runs (running runs go on) until resume"
	case deploy.RequestResume:
		short = "Launch runs again after a pause"
	case deploy.RequestRelease:
		use, short, args = "release NODE", "Release a held node (every stage, or --stage)", cobra.ExactArgs(1)
	case deploy.RequestRerun:
		use, short, args = "rerun NODE --stage STAGE", "Run a node's stage again (forgets its record)", cobra.ExactArgs(1)
	}
	cmd := &cobra.Command{
		Use: use, Short: short, Args: args,
		RunE: func(cmd *cobra.Command, argv []string) error {
			env, err := openProvisioner(cmd.Context(), cmd, flags)
			if err != nil {
				return err
			}
			if env.opts.readOnly {
				return fmt.Errorf("%s: %w", kind, provision.ErrReadOnly)
			}
			r := deploy.Request{Kind: kind, Stage: stage, Reason: reason, Who: roles.Who()}
			if len(argv) == 1 {
				r.Node = argv[0]
				if !strings.Contains(r.Node, "/") {
					r.Node = env.dc + "/" + r.Node
				}
			}
			if stage != "" {
				if _, ok := env.opts.provisioner.Stage(stage); !ok {
					return fmt.Errorf("no stage %q in the config file's [[provisioner.stage]]", stage)
				}
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			r, err = env.store.Ask(ctx, r)
			if err != nil {
				return err
			}
			h, err := deploy.Leader(ctx, env.cc, "", env.opts.provisioner.KVPrefix)
			switch {
			case err != nil:
				fmt.Fprintf(cmd.OutOrStdout(), "asked (%s); the leader could not be read: %v\n", r.ID, err)
			case h == nil:
				fmt.Fprintf(cmd.OutOrStdout(), "asked (%s); no provisioner leads %s now: the request waits for the next leader\n", r.ID, env.dc)
			default:
				fmt.Fprintf(cmd.OutOrStdout(), "asked (%s); %s takes it at its next pass (see `fleetdeck provisioner status`)\n", r.ID, termtext.Sanitize(h.ID))
			}
			return nil
		},
	}
	switch kind {
	case deploy.RequestRelease:
		cmd.Flags().StringVar(&stage, "stage", "", "release only this stage's hold")
		cmd.Flags().StringVar(&reason, "reason", "released by an operator", "why")
	case deploy.RequestRerun:
		cmd.Flags().StringVar(&stage, "stage", "", "the stage to run again (required)")
		cmd.Flags().StringVar(&reason, "reason", "", "why (required)")
	default:
		cmd.Flags().StringVar(&reason, "reason", "", "why (required)")
	}
	return cmd
}
