package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/fleetdeck/fleetdeck/provision"
)

const runsLong = `List, show and export the history of Ansible runs.

The history is a bbolt database, history.db in the state directory
($XDG_STATE_HOME/fleetdeck, default ~/.local/state/fleetdeck; --state-dir).
Runs left queued or running by a fleetdeck process that no longer exists
are marked interrupted first. Extra vars whose names look secret were
redacted when the run was recorded.`

// runsFlags are the flags of `fleetdeck runs` and its subcommands.
type runsFlags struct {
	stateDir string
	status   []string
	host     string
	limit    int
}

// newRunsCmd builds `fleetdeck runs` (list), `runs show ID` and
// `runs export`. It needs no Consul: the history is local.
func newRunsCmd(flags *flagSet) *cobra.Command {
	var f runsFlags
	// The state directory comes from the shared options (--state-dir,
	// [ansible] state_dir), so the console and this command read the same
	// history.
	resolve := func(cmd *cobra.Command) error {
		opts, err := flags.resolve(cmd.Flags().Changed)
		if err != nil {
			return err
		}
		f.stateDir = opts.ansible.stateDir
		return nil
	}
	cmd := &cobra.Command{
		Use:   "runs",
		Short: "List past and current Ansible runs",
		Long:  runsLong,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			h, err := f.open(cmd.Context())
			if err != nil {
				return err
			}
			return runsList(cmd.Context(), cmd.OutOrStdout(), h, f)
		},
	}
	cmd.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error { return resolve(cmd) }
	cmd.Flags().StringSliceVar(&f.status, "status", nil, "only runs with these statuses (queued, running, ok, failed, cancelled, timed-out, interrupted, error, lock-lost)")
	cmd.Flags().StringVar(&f.host, "host", "", "only runs that targeted this host (Ansible name or Consul node)")
	cmd.Flags().IntVar(&f.limit, "limit", 50, "at most this many runs, newest first (0: all)")

	show := &cobra.Command{
		Use:   "show ID",
		Short: "Show one run: settings, targets, recap and output",
		Args:  cobra.ExactArgs(1),
	}
	var asJSON, events bool
	show.Flags().BoolVar(&asJSON, "json", false, "print the whole record as JSON (with events and inventory)")
	show.Flags().BoolVar(&events, "events", false, "also print the event log (JSON lines)")
	show.RunE = func(cmd *cobra.Command, args []string) error {
		h, err := f.open(cmd.Context())
		if err != nil {
			return err
		}
		r, err := h.Get(cmd.Context(), args[0])
		if err != nil {
			return err
		}
		if asJSON {
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(r)
		}
		return runsShow(cmd.OutOrStdout(), r, events)
	}

	export := &cobra.Command{
		Use:   "export",
		Short: "Write runs as a JSON array of full records (events, output, inventory), oldest first",
		Args:  cobra.NoArgs,
	}
	var since string
	export.Flags().StringVar(&since, "since", "", "only runs created since: a date (2006-01-02), an RFC 3339 time, or an age (36h, 7d)")
	export.RunE = func(cmd *cobra.Command, _ []string) error {
		from, err := runsParseSince(since, time.Now())
		if err != nil {
			return err
		}
		h, err := f.open(cmd.Context())
		if err != nil {
			return err
		}
		return runsExport(cmd.Context(), cmd.OutOrStdout(), h, from)
	}
	cmd.AddCommand(show, export)
	return cmd
}

// open opens the history and marks runs of dead consoles interrupted, so
// the list never shows a crashed console's run as still running.
func (f runsFlags) open(ctx context.Context) (*provision.History, error) {
	cfg := provision.HistoryConfig{}
	if f.stateDir != "" {
		cfg.Path = filepath.Join(f.stateDir, "history.db")
	}
	h, err := provision.OpenHistory(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if _, err := h.RecoverInterrupted(ctx); err != nil {
		return nil, err
	}
	return h, nil
}

func runsList(ctx context.Context, w io.Writer, h *provision.History, f runsFlags) error {
	opts := provision.ListOptions{Host: f.host, Limit: f.limit}
	for _, s := range f.status {
		opts.Status = append(opts.Status, provision.RunStatus(strings.TrimSpace(s)))
	}
	if f.limit <= 0 {
		opts.Limit = 500
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tWHEN\tWHO\tPLAYBOOK\tHOSTS\tSTATUS\tEXIT")
	n := 0
	for {
		page, err := h.List(ctx, opts)
		if err != nil {
			return err
		}
		for _, r := range page.Runs {
			exit := "-"
			if r.ExitCode != nil {
				exit = strconv.Itoa(*r.ExitCode)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", r.ID, r.Created.Local().Format("2006-01-02 15:04:05"),
				runsWho(r), runsClean(r.Playbook), r.TargetCount, r.Status, exit)
			n++
		}
		if page.Next == "" || (f.limit > 0 && n >= f.limit) {
			break
		}
		opts.Before = page.Next
	}
	return tw.Flush()
}

func runsWho(r provision.RunRecord) string {
	if r.Identity != "" {
		return runsClean(r.Identity)
	}
	return runsClean(r.User)
}

// runsClean drops control characters: a record can hold text from
// anywhere (playbook names, reasons) and must not drive the terminal.
func runsClean(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return -1
		}
		return r
	}, s)
}

func runsShow(w io.Writer, r provision.RunRecord, events bool) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, runsClean(v)) }
	row("id", r.ID)
	row("status", string(r.Status))
	if r.Reason != "" {
		row("reason", r.Reason)
	}
	if r.ExitCode != nil {
		row("exit code", strconv.Itoa(*r.ExitCode))
	}
	row("who", fmt.Sprintf("%s (pid %d on %s)", runsWho(r), r.Owner.PID, r.Owner.Hostname))
	row("created", r.Created.Local().Format(time.DateTime))
	if !r.Started.IsZero() {
		row("started", r.Started.Local().Format(time.DateTime))
	}
	if !r.Ended.IsZero() {
		row("ended", r.Ended.Local().Format(time.DateTime))
		if !r.Started.IsZero() {
			row("duration", r.Ended.Sub(r.Started).Round(time.Millisecond).String())
		}
	}
	row("playbook", r.Playbook+"  sha256:"+r.PlaybookSHA256)
	row("options", fmt.Sprintf("check=%v diff=%v become=%v forks=%d tags=%s skip-tags=%s",
		r.Check, r.Diff, r.Become, r.Forks, strings.Join(r.Tags, ","), strings.Join(r.SkipTags, ",")))
	if len(r.ExtraVars) > 0 {
		keys := make([]string, 0, len(r.ExtraVars))
		for k := range r.ExtraVars {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var kv []string
		for _, k := range keys {
			kv = append(kv, k+"="+r.ExtraVars[k])
		}
		row("extra vars", strings.Join(kv, " "))
	}
	row("argv", strings.Join(r.Argv, " "))
	var hosts []string
	for _, t := range r.Targets {
		hosts = append(hosts, t.Host)
	}
	row("targets", fmt.Sprintf("%d: %s", r.TargetCount, strings.Join(hosts, ", ")))
	row("events", fmt.Sprintf("%d stored, %d dropped", r.EventCount, r.EventsDropped))
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(r.Recap) > 0 {
		fmt.Fprintln(w, "\nRECAP")
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "HOST\tOK\tCHANGED\tFAILED\tUNREACHABLE\tSKIPPED\tRESCUED\tIGNORED")
		names := make([]string, 0, len(r.Recap))
		for h := range r.Recap {
			names = append(names, h)
		}
		slices.Sort(names)
		for _, h := range names {
			c := r.Recap[h]
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\n", runsClean(h), c.OK, c.Changed, c.Failed, c.Unreachable, c.Skipped, c.Rescued, c.Ignored)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if r.Output != "" {
		fmt.Fprintln(w, "\nOUTPUT")
		// Output keeps newlines and tabs; other control bytes (colour
		// escapes) are dropped.
		fmt.Fprint(w, strings.Map(func(c rune) rune {
			if c == '\n' || c == '\t' {
				return c
			}
			if c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0) {
				return -1
			}
			return c
		}, r.Output))
	}
	if events {
		fmt.Fprintln(w, "\nEVENTS")
		for _, ev := range r.Events {
			fmt.Fprintf(w, "%s\n", ev)
		}
	}
	return nil
}

// runsExport writes a JSON array of full records, oldest first, one
// record at a time: each is read in its own short transaction so an
// export of a large history never holds the file for long.
func runsExport(ctx context.Context, w io.Writer, h *provision.History, since time.Time) error {
	var ids []string
	opts := provision.ListOptions{Since: since, Limit: 500}
	for {
		page, err := h.List(ctx, opts)
		if err != nil {
			return err
		}
		for _, r := range page.Runs {
			ids = append(ids, r.ID)
		}
		if page.Next == "" {
			break
		}
		opts.Before = page.Next
	}
	slices.Reverse(ids)
	if _, err := io.WriteString(w, "["); err != nil {
		return fmt.Errorf("writing the export: %w", err)
	}
	for i, id := range ids {
		r, err := h.Get(ctx, id)
		if err != nil {
			return err
		}
		data, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("encoding run %s: %w", id, err)
		}
		sep := ",\n"
		if i == 0 {
			sep = "\n"
		}
		if _, err := io.WriteString(w, sep); err != nil {
			return fmt.Errorf("writing the export: %w", err)
		}
		if _, err := w.Write(data); err != nil {
			return fmt.Errorf("writing the export: %w", err)
		}
	}
	if _, err := io.WriteString(w, "\n]\n"); err != nil {
		return fmt.Errorf("writing the export: %w", err)
	}
	return nil
}

// runsParseSince reads --since: "" (everything), a date, an RFC 3339 time,
// or an age such as 36h or 7d.
func runsParseSince(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation(time.DateOnly, s, time.Local); err == nil {
		return t, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n >= 0 {
			return now.AddDate(0, 0, -n), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("--since %q: want a date (2006-01-02), an RFC 3339 time or an age (36h, 7d)", s)
}
