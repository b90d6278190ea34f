package main

import (
	"context"
	"encoding/json"
	"errors"
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

	"github.com/fleetdeck/fleetdeck/internal/termtext"
	"github.com/fleetdeck/fleetdeck/provision"
)

const runsLong = `List, show and export the history of Ansible runs.

The history is a bbolt database, history.db in the state directory
($XDG_STATE_HOME/fleetdeck, default ~/.local/state/fleetdeck; --state-dir).
Runs left queued or running by a fleetdeck process that no longer exists
are marked interrupted first. Extra vars whose names look secret were
redacted when the run was recorded. "runs show" takes a run's id or any
prefix of it that no other run shares.

Text from the record (playbook output, events, host names) is printed with
terminal escapes and controls removed; JSON output escapes them instead
(\u001b, \u009b, \u202e …), so it decodes to the recorded text.`

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
		Short: "Show one run: settings, scope, targets, recap and output (ID: the run's id or an unambiguous prefix of it)",
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
		id, err := runsResolve(cmd.Context(), h, args[0])
		if err != nil {
			return err
		}
		r, err := h.Get(cmd.Context(), id)
		if err != nil {
			return err
		}
		if asJSON {
			if err := writeJSON(cmd.OutOrStdout(), r); err != nil {
				return fmt.Errorf("writing run %s: %w", id, err)
			}
			return nil
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

// runsResolve finds the run an id or id prefix names; a prefix several runs
// share is an error listing them, so the user can pick.
func runsResolve(ctx context.Context, h *provision.History, prefix string) (string, error) {
	id, err := h.ResolveID(ctx, prefix)
	var amb *provision.AmbiguousRunError
	if !errors.As(err, &amb) {
		return id, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "run id %q is ambiguous: %d runs start with it; give more of the id:\n", termtext.Sanitize(amb.Prefix), len(amb.Runs)+amb.More)
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	for _, r := range amb.Runs {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", termtext.Sanitize(r.ID), r.Created.Local().Format(time.DateTime),
			termtext.Sanitize(r.Playbook), termtext.Sanitize(string(r.Status)), runsScope(r))
	}
	_ = tw.Flush()
	if amb.More > 0 {
		fmt.Fprintf(&b, "  and %d older\n", amb.More)
	}
	return "", errors.New(strings.TrimRight(b.String(), "\n"))
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
	n := 0
	for {
		page, err := h.List(ctx, opts)
		if err != nil {
			return err
		}
		for _, r := range page.Runs {
			if n == 0 {
				// No scope column: a subject has spaces, and scripts
				// read these columns by field (runs show has the scope).
				fmt.Fprintln(tw, "ID\tWHEN\tWHO\tPLAYBOOK\tHOSTS\tSTATUS\tEXIT")
			}
			exit := "-"
			if r.ExitCode != nil {
				exit = strconv.Itoa(*r.ExitCode)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", termtext.Sanitize(r.ID), r.Created.Local().Format("2006-01-02 15:04:05"),
				runsWho(r), termtext.Sanitize(r.Playbook), r.TargetCount, termtext.Sanitize(string(r.Status)), exit)
			n++
		}
		if page.Next == "" || (f.limit > 0 && n >= f.limit) {
			break
		}
		opts.Before = page.Next
	}
	if n > 0 {
		return tw.Flush()
	}
	// An empty list must not look like a broken command: say where the
	// history was looked for (a wrong --state-dir, another user's).
	var filters []string
	if len(f.status) > 0 {
		filters = append(filters, "--status "+strings.Join(f.status, ","))
	}
	if f.host != "" {
		filters = append(filters, "--host "+f.host)
	}
	var err error
	if len(filters) > 0 {
		_, err = fmt.Fprintf(w, "no runs match %s in %s\n", termtext.Sanitize(strings.Join(filters, " ")), termtext.Sanitize(h.Path()))
	} else {
		_, err = fmt.Fprintf(w, "no runs yet in %s\n", termtext.Sanitize(h.Path()))
	}
	return err
}

func runsWho(r provision.RunRecord) string {
	if r.Identity != "" {
		return termtext.Sanitize(r.Identity)
	}
	return termtext.Sanitize(r.User)
}

// runsScope says how a run's targets were chosen, for runs show and the
// candidates of an ambiguous id: "role web", "group web-asg", "node
// dc1/web-1", or the marked nodes' description ("3 nodes", "the 2 hosts
// of run … that failed"); "-" for records from before scopes were kept.
func runsScope(r provision.RunRecord) string {
	switch {
	case r.Scope == "" && r.Subject == "":
		return "-"
	case r.Scope == "" || (provision.LaunchScope(r.Scope) == provision.ScopeMarked && r.Subject != ""):
		return termtext.Sanitize(r.Subject)
	}
	return termtext.Sanitize(strings.TrimSpace(r.Scope + " " + r.Subject))
}

func runsShow(w io.Writer, r provision.RunRecord, events bool) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, termtext.Sanitize(v)) }
	row("id", r.ID)
	row("status", string(r.Status))
	row("scope", runsScope(r))
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
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\n", termtext.Sanitize(h), c.OK, c.Changed, c.Failed, c.Unreachable, c.Skipped, c.Rescued, c.Ignored)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if r.Output != "" {
		fmt.Fprintln(w, "\nOUTPUT")
		// Lines stay lines; escape sequences (colour, titles, clipboard
		// writes) go whole, with every other control and bidi character.
		if _, err := io.WriteString(w, termtext.SanitizeText(r.Output)); err != nil {
			return fmt.Errorf("writing the output: %w", err)
		}
	}
	if events {
		fmt.Fprintln(w, "\nEVENTS")
		// Each event is a JSON line: escaped rather than cut, so the
		// lines still decode to what was recorded.
		for _, ev := range r.Events {
			if _, err := fmt.Fprintf(w, "%s\n", termtext.EscapeJSON(ev)); err != nil {
				return fmt.Errorf("writing the events: %w", err)
			}
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
		data = termtext.EscapeJSON(data)
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
