package provision

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"maps"
	"math/big"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// RunStatus is where a run is in its life. Queued and running are the only
// live states; every other status is final.
type RunStatus string

// The statuses a run record can have.
const (
	RunQueued      RunStatus = "queued"      // waiting for a slot or for its hosts' locks
	RunRunning     RunStatus = "running"     // ansible-playbook is running
	RunOK          RunStatus = "ok"          // exit code 0
	RunFailed      RunStatus = "failed"      // ansible-playbook reported failed or unreachable hosts
	RunCancelled   RunStatus = "cancelled"   // cancelled by a user
	RunTimedOut    RunStatus = "timed-out"   // the per-run timeout ended it
	RunInterrupted RunStatus = "interrupted" // the console that ran it died; set by RecoverInterrupted
	RunError       RunStatus = "error"       // it could not run (missing binary, lock error, bad playbook, …)
	// RunLockLost: the run's host locks were lost (Consul unreachable or
	// frozen for half the lock TTL, or the session invalidated), so it was
	// cancelled before another console could take its hosts.
	RunLockLost RunStatus = "lock-lost"
)

// Final reports whether s is a final status (anything but queued and running).
func (s RunStatus) Final() bool { return s != RunQueued && s != RunRunning && s != "" }

// CanBecome reports whether a run in status s may move to next. Runs only
// move forward: queued to queued (a new reason to wait), running or any
// final status; running to running or any final status. A final status is
// for good. History and the Manager both enforce it, so a run ends once.
func (s RunStatus) CanBecome(next RunStatus) bool {
	switch {
	case next == "" || s.Final():
		return false
	case s == RunQueued:
		return true
	case s == RunRunning:
		return next != RunQueued
	}
	return false
}

// RunTarget is one host of a run: the name Ansible knows it by and the
// Consul node it is (the key its lock is taken on).
type RunTarget struct {
	Host       string `json:"host"`
	Node       string `json:"node"`
	Datacenter string `json:"dc"`
}

// HostRecap is one host's line of Ansible's PLAY RECAP (the counts of the
// playbook_on_stats event).
type HostRecap struct {
	OK          int `json:"ok"`
	Changed     int `json:"changed"`
	Failed      int `json:"failed"`
	Unreachable int `json:"unreachable"`
	Skipped     int `json:"skipped"`
	Rescued     int `json:"rescued"`
	Ignored     int `json:"ignored"`
}

// RunOwner identifies the process that owns a live run record, so that
// RecoverInterrupted can tell a crashed console from one that is still
// running on the same machine. A pid alone is not enough: pids are reused,
// and after a reboot every pid is. The boot id and the process start time
// (in clock ticks since boot, from /proc) make the triple unique.
type RunOwner struct {
	Hostname  string `json:"hostname"`
	PID       int    `json:"pid"`
	BootID    string `json:"boot_id,omitempty"`
	StartTime uint64 `json:"start_time,omitempty"`
}

// RunRecord is one run as the history keeps it. Records returned by
// History.List carry the summary and Meta only (Targets, Recap, Inventory,
// Events and Output are nil; the counts are set); History.Get returns
// everything.
type RunRecord struct {
	ID string `json:"id"`
	// User is the OS user that started the run; Identity is for a later
	// authenticated identity (the SSH key of a served console).
	User     string   `json:"user"`
	Identity string   `json:"identity,omitempty"`
	Owner    RunOwner `json:"owner"`

	Created time.Time `json:"created"`
	Started time.Time `json:"started,omitzero"`
	Ended   time.Time `json:"ended,omitzero"`
	// Updated is when the record last changed: its last event, output or
	// status. It dates the end of a run whose console died without
	// telling (RecoverInterrupted).
	Updated time.Time `json:"updated,omitzero"`
	Status  RunStatus `json:"status"`
	// Dir is the run directory (inventory, pinned playbook, events.jsonl,
	// output.log); removed with the record by Manager.Prune.
	Dir string `json:"dir,omitempty"`
	// Reason says why a run is queued (who holds its hosts) or, for a
	// final record, what went wrong.
	Reason string `json:"reason,omitempty"`

	Argv           []string          `json:"argv"`
	Playbook       string            `json:"playbook"`
	PlaybookSHA256 string            `json:"playbook_sha256"`
	Check          bool              `json:"check"`
	Diff           bool              `json:"diff"`
	Tags           []string          `json:"tags,omitempty"`
	SkipTags       []string          `json:"skip_tags,omitempty"`
	Forks          int               `json:"forks,omitempty"`
	Become         bool              `json:"become"`
	ExtraVars      map[string]string `json:"extra_vars,omitempty"`
	// Meta is the run's metadata (LaunchRequest.Meta, ValidateRunMeta's
	// rules). It is written once, by Create, into a bucket of its own
	// rather than the summary: the summary is rewritten with every batch
	// of events and output, and metadata can have a thousand entries.
	// List and Get return it.
	Meta map[string]string `json:"meta,omitempty"`
	// HostVars names the per-host variables the run carried, sorted (the
	// values are in Inventory, as Ansible got them); a run that had any
	// cannot be re-run.
	HostVars []string `json:"host_vars,omitempty"`

	TargetCount int         `json:"target_count"`
	Targets     []RunTarget `json:"targets,omitempty"`
	// Scope and Subject say how the targets were chosen ("role", "web"),
	// as the launch form had them.
	Scope   string `json:"scope,omitempty"`
	Subject string `json:"subject,omitempty"`
	// HostCounts counts hosts by their recap outcome (ok, changed, failed,
	// unreachable); kept in the summary so lists need not load recaps.
	HostCounts map[string]int `json:"host_counts,omitempty"`

	ExitCode *int                 `json:"exit_code,omitempty"`
	Recap    map[string]HostRecap `json:"recap,omitempty"`

	Inventory InventorySnapshot `json:"inventory,omitempty"`

	// EventCount counts the events stored; EventsDropped those not stored
	// because the run's event log reached HistoryConfig.MaxEventBytes.
	EventCount    int               `json:"event_count"`
	EventBytes    int64             `json:"event_bytes"`
	EventsDropped int               `json:"events_dropped,omitempty"`
	Events        []json.RawMessage `json:"events,omitempty"`

	// OutputBytes counts every byte of output the run produced;
	// OutputTruncated is set when only the first
	// HistoryConfig.MaxOutputBytes of them were kept (Output then ends
	// with a marker line saying how much was dropped).
	OutputBytes     int64  `json:"output_bytes"`
	OutputTruncated bool   `json:"output_truncated,omitempty"`
	Output          string `json:"output,omitempty"`
}

// InventorySnapshot is the inventory a run used, byte for byte. It is
// exported as JSON when it is JSON (fleetdeck's own inventories are) and as
// a JSON string otherwise.
type InventorySnapshot []byte

// MarshalJSON implements json.Marshaler.
func (s InventorySnapshot) MarshalJSON() ([]byte, error) {
	if len(s) == 0 {
		return []byte("null"), nil
	}
	if json.Valid(s) {
		var buf bytes.Buffer
		if err := json.Compact(&buf, s); err == nil {
			return buf.Bytes(), nil
		}
	}
	return json.Marshal(string(s))
}

// UnmarshalJSON implements json.Unmarshaler.
func (s *InventorySnapshot) UnmarshalJSON(b []byte) error {
	var str string
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &str); err != nil {
			return err
		}
		*s = InventorySnapshot(str)
		return nil
	}
	if string(b) == "null" {
		*s = nil
		return nil
	}
	*s = InventorySnapshot(slices.Clone(b))
	return nil
}

// RunResult is how a run ended, for History.Finish.
type RunResult struct {
	Status   RunStatus
	Ended    time.Time // default now
	ExitCode *int      // nil when ansible-playbook never ran
	Reason   string
	Recap    map[string]HostRecap
	// HostCounts counts the hosts of the final board by status
	// (RunState.StatusCounts), for the runs list. When nil they are
	// worked out from Recap and the targets: a host in the recap by
	// StatusOfCounts, a target missing from it as not run.
	HostCounts map[HostStatus]int
}

// ListOptions selects and pages History.List. Zero values select all.
type ListOptions struct {
	Status []RunStatus // any of these
	Host   string      // runs that targeted this host (Ansible name or Consul node)
	Since  time.Time   // created at or after
	Before string      // page cursor: only runs older than this id (RunPage.Next)
	Limit  int         // at most this many (default 100)
}

// RunPage is one page of History.List, newest first.
type RunPage struct {
	Runs []RunRecord
	// Next is the cursor for the following page (ListOptions.Before), or
	// "" when this was the last.
	Next string
}

// HistoryConfig configures a History. Zero values take the defaults.
type HistoryConfig struct {
	// Path of the database file; default DefaultHistoryPath().
	Path string
	// OpenTimeout bounds the wait for the file lock another fleetdeck on
	// this machine holds during one of its (short) operations; default 5s.
	OpenTimeout time.Duration
	// MaxOutputBytes is how much of a run's output is kept; default 4 MiB.
	MaxOutputBytes int64
	// MaxEventBytes is how much of a run's event log is kept; default
	// 64 MiB. The recap is stored separately and is never dropped.
	MaxEventBytes int64
}

// Default sizes and waits of a History.
const (
	DefaultHistoryOpenTimeout = 5 * time.Second
	DefaultMaxOutputBytes     = 4 << 20
	DefaultMaxEventBytes      = 64 << 20
)

// ErrRunNotFound is returned for an id the history does not hold.
var ErrRunNotFound = errors.New("run not found")

// ErrRunFinal is returned when a final record would be changed.
var ErrRunFinal = errors.New("run already has a final status")

// History is the durable record of every run: an embedded bbolt database
// in the XDG state directory.
//
// The file is opened for each operation and closed after it rather than
// held open. bbolt takes an exclusive lock on the file for as long as it is
// open, so a console that held it would lock every other console on the
// machine (a second terminal, `fleetdeck runs`) out of history. Each
// operation is one short transaction; another process waits up to
// HistoryConfig.OpenTimeout for the lock and then gets an error naming the
// file. Reads take a shared lock. Every write is an fsynced bbolt commit, so
// a crash loses nothing that an operation returned for; callers append
// events in batches (say, every 100 ms) to keep the number of commits sane.
//
// A History is safe for concurrent use.
type History struct {
	cfg   HistoryConfig
	owner RunOwner
	user  string

	// mu serialises this process's own opens: two opens of the file in one
	// process contend for the same flock and would poll each other out.
	mu sync.RWMutex

	idMu   sync.Mutex
	lastID [16]byte
}

// bucket names.
var (
	histBucketRuns      = []byte("runs")      // id → JSON RunRecord summary
	histBucketDetail    = []byte("detail")    // id → JSON histDetail
	histBucketInventory = []byte("inventory") // id → bytes
	histBucketEvents    = []byte("events")    // id → bucket: seq → JSON line
	histBucketOutput    = []byte("output")    // id → bucket: seq → chunk
	histBucketByHost    = []byte("byhost")    // host \x00 id → ""
	histBucketMeta      = []byte("meta")      // id → RunRecord.Meta (histEncodeMeta)
)

// histDetail is the part of a record that can be large (thousands of
// hosts) and is not needed to list runs.
type histDetail struct {
	Argv    []string             `json:"argv"`
	Targets []RunTarget          `json:"targets"`
	Recap   map[string]HostRecap `json:"recap,omitempty"`
}

// DefaultStateDir is $XDG_STATE_HOME/fleetdeck, or
// ~/.local/state/fleetdeck when XDG_STATE_HOME is unset.
func DefaultStateDir() (string, error) {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "fleetdeck"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("finding the state directory: %w", err)
	}
	return filepath.Join(home, ".local", "state", "fleetdeck"), nil
}

// DefaultHistoryPath is history.db in DefaultStateDir.
func DefaultHistoryPath() (string, error) {
	dir, err := DefaultStateDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "history.db"), nil
}

// OpenHistory prepares the history at cfg.Path, creating the directory
// (0700: run records name hosts and hold inventories) and the database.
func OpenHistory(ctx context.Context, cfg HistoryConfig) (*History, error) {
	if cfg.Path == "" {
		p, err := DefaultHistoryPath()
		if err != nil {
			return nil, err
		}
		cfg.Path = p
	}
	if cfg.OpenTimeout <= 0 {
		cfg.OpenTimeout = DefaultHistoryOpenTimeout
	}
	if cfg.MaxOutputBytes <= 0 {
		cfg.MaxOutputBytes = DefaultMaxOutputBytes
	}
	if cfg.MaxEventBytes <= 0 {
		cfg.MaxEventBytes = DefaultMaxEventBytes
	}
	if err := os.MkdirAll(filepath.Dir(cfg.Path), 0o700); err != nil {
		return nil, fmt.Errorf("creating the history directory: %w", err)
	}
	h := &History{cfg: cfg, owner: histSelf(), user: histUser()}
	err := h.update(ctx, "creating the history", func(tx *bolt.Tx) error {
		for _, b := range [][]byte{histBucketRuns, histBucketDetail, histBucketInventory, histBucketEvents, histBucketOutput, histBucketByHost, histBucketMeta} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return h, nil
}

// Path is the database file.
func (h *History) Path() string { return h.cfg.Path }

// Owner is how this process marks the live records it owns.
func (h *History) Owner() RunOwner { return h.owner }

// open opens the database for one operation, waiting for another
// process's lock at most OpenTimeout (and never past ctx).
func (h *History) open(ctx context.Context, readOnly bool) (*bolt.DB, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	timeout := h.cfg.OpenTimeout
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
		timeout = max(time.Until(dl), time.Millisecond)
	}
	db, err := bolt.Open(h.cfg.Path, 0o600, &bolt.Options{Timeout: timeout, ReadOnly: readOnly})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("history %s is busy: another fleetdeck process held it for more than %s", h.cfg.Path, timeout)
	}
	if err != nil {
		return nil, fmt.Errorf("opening history %s: %w", h.cfg.Path, err)
	}
	return db, nil
}

func (h *History) update(ctx context.Context, what string, fn func(*bolt.Tx) error) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	db, err := h.open(ctx, false)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	err = db.Update(fn)
	if cerr := db.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

func (h *History) view(ctx context.Context, what string, fn func(*bolt.Tx) error) error {
	h.mu.RLock()
	defer h.mu.RUnlock()
	db, err := h.open(ctx, true)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	err = db.View(fn)
	if cerr := db.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// Create records a new run and returns it with its id. The status must be
// queued or running (default queued). User and Owner default to this
// process; extra vars and the argv are redacted (see RedactExtraVars) before
// anything is written, so secrets never reach the disk.
func (h *History) Create(ctx context.Context, r RunRecord) (RunRecord, error) {
	if r.Status == "" {
		r.Status = RunQueued
	}
	if r.Status.Final() {
		return RunRecord{}, fmt.Errorf("creating a run record: status %q is final", r.Status)
	}
	if err := ValidateRunMeta(r.Meta); err != nil {
		return RunRecord{}, fmt.Errorf("creating a run record: %w", err)
	}
	r.Meta = maps.Clone(r.Meta)
	r.HostVars = slices.Clone(r.HostVars)
	now := time.Now().UTC()
	r.ID = h.newID(now)
	r.Created = now
	if r.Status == RunRunning && r.Started.IsZero() {
		r.Started = now
	}
	if r.User == "" {
		r.User = h.user
	}
	if r.Owner == (RunOwner{}) {
		r.Owner = h.owner
	}
	r.ExtraVars = RedactExtraVars(r.ExtraVars)
	r.Argv = RedactArgv(r.Argv)
	r.TargetCount = len(r.Targets)
	r.Events, r.EventCount, r.EventBytes, r.EventsDropped = nil, 0, 0, 0
	r.Output, r.OutputBytes, r.OutputTruncated = "", 0, false
	r.ExitCode = nil
	det := histDetail{Argv: r.Argv, Targets: r.Targets, Recap: r.Recap}
	inv := r.Inventory
	err := h.update(ctx, "recording run "+r.ID, func(tx *bolt.Tx) error {
		if err := histPutJSON(tx.Bucket(histBucketDetail), r.ID, det); err != nil {
			return err
		}
		if len(inv) > 0 {
			if err := tx.Bucket(histBucketInventory).Put([]byte(r.ID), inv); err != nil {
				return err
			}
		}
		if len(r.Meta) > 0 {
			if err := tx.Bucket(histBucketMeta).Put([]byte(r.ID), histEncodeMeta(r.Meta)); err != nil {
				return err
			}
		}
		byHost := tx.Bucket(histBucketByHost)
		seen := map[string]bool{}
		for _, t := range r.Targets {
			for _, name := range []string{t.Host, t.Node} {
				if name == "" || seen[name] {
					continue
				}
				seen[name] = true
				if err := byHost.Put(histHostKey(name, r.ID), nil); err != nil {
					return err
				}
			}
		}
		return histPutSummary(tx, r)
	})
	if err != nil {
		return RunRecord{}, err
	}
	return r, nil
}

// SetStatus moves a live run from queued to running, or gives it a new
// reason while it waits (who holds its hosts); see RunStatus.CanBecome.
// Going to running sets Started.
func (h *History) SetStatus(ctx context.Context, id string, status RunStatus, reason string) error {
	if status.Final() || status == "" {
		return fmt.Errorf("setting the status of run %s: use Finish for %q", id, status)
	}
	return h.update(ctx, "setting the status of run "+id, func(tx *bolt.Tx) error {
		r, err := histGetSummary(tx, id)
		if err != nil {
			return err
		}
		if r.Status.Final() {
			return fmt.Errorf("%w (%s)", ErrRunFinal, r.Status)
		}
		if !r.Status.CanBecome(status) {
			return fmt.Errorf("a %s run cannot become %s again", r.Status, status)
		}
		r.Status, r.Reason = status, reason
		if status == RunRunning && r.Started.IsZero() {
			r.Started = time.Now().UTC()
		}
		return histPutSummary(tx, r)
	})
}

// AppendEvents appends JSON-line events to a run's event log, durably,
// in one commit. A line that is not valid JSON is kept as
// {"fleetdeck_invalid_event": "<text>"} rather than lost. Events past
// MaxEventBytes are counted but not stored.
func (h *History) AppendEvents(ctx context.Context, id string, lines ...[]byte) error {
	if len(lines) == 0 {
		return nil
	}
	return h.update(ctx, "appending events to run "+id, func(tx *bolt.Tx) error {
		r, err := histGetSummary(tx, id)
		if err != nil {
			return err
		}
		evs, err := tx.Bucket(histBucketEvents).CreateBucketIfNotExists([]byte(id))
		if err != nil {
			return err
		}
		for _, line := range lines {
			line = bytes.TrimSpace(line)
			if len(line) == 0 {
				continue
			}
			if !json.Valid(line) {
				line, _ = json.Marshal(map[string]string{"fleetdeck_invalid_event": string(line)})
			}
			if r.EventBytes+int64(len(line)) > h.cfg.MaxEventBytes {
				r.EventsDropped++
				continue
			}
			seq, err := evs.NextSequence()
			if err != nil {
				return err
			}
			if err := evs.Put(histSeqKey(seq), line); err != nil {
				return err
			}
			r.EventBytes += int64(len(line))
			r.EventCount++
		}
		return histPutSummary(tx, r)
	})
}

// AppendOutput appends to a run's human output, durably. Only the first
// MaxOutputBytes are kept; the rest is counted.
func (h *History) AppendOutput(ctx context.Context, id string, p []byte) error {
	if len(p) == 0 {
		return nil
	}
	return h.update(ctx, "appending output to run "+id, func(tx *bolt.Tx) error {
		r, err := histGetSummary(tx, id)
		if err != nil {
			return err
		}
		kept := min(r.OutputBytes, h.cfg.MaxOutputBytes)
		room := h.cfg.MaxOutputBytes - kept
		r.OutputBytes += int64(len(p))
		if int64(len(p)) > room {
			p = p[:room]
			r.OutputTruncated = true
		}
		if len(p) > 0 {
			out, err := tx.Bucket(histBucketOutput).CreateBucketIfNotExists([]byte(id))
			if err != nil {
				return err
			}
			seq, err := out.NextSequence()
			if err != nil {
				return err
			}
			if err := out.Put(histSeqKey(seq), p); err != nil {
				return err
			}
		}
		return histPutSummary(tx, r)
	})
}

// Finish gives a run its final status, exit code and recap.
func (h *History) Finish(ctx context.Context, id string, res RunResult) error {
	if !res.Status.Final() {
		return fmt.Errorf("finishing run %s: status %q is not final", id, res.Status)
	}
	if res.Ended.IsZero() {
		res.Ended = time.Now()
	}
	return h.update(ctx, "finishing run "+id, func(tx *bolt.Tx) error {
		r, err := histGetSummary(tx, id)
		if err != nil {
			return err
		}
		if r.Status.Final() {
			return fmt.Errorf("%w (%s)", ErrRunFinal, r.Status)
		}
		r.Status, r.Reason, r.Ended = res.Status, res.Reason, res.Ended.UTC()
		r.ExitCode = res.ExitCode
		var det histDetail
		if err := histGetJSON(tx.Bucket(histBucketDetail), id, &det); err != nil {
			return err
		}
		counts := res.HostCounts
		if counts == nil {
			counts = histHostCounts(res.Recap, det.Targets)
		}
		r.HostCounts = histCountsJSON(counts)
		if res.Recap != nil {
			det.Recap = res.Recap
			if err := histPutJSON(tx.Bucket(histBucketDetail), id, det); err != nil {
				return err
			}
		}
		return histPutSummary(tx, r)
	})
}

// Get returns the whole record of a run: targets, recap, inventory, every
// stored event and the kept output.
func (h *History) Get(ctx context.Context, id string) (RunRecord, error) {
	var r RunRecord
	err := h.view(ctx, "reading run "+id, func(tx *bolt.Tx) error {
		var err error
		r, err = histGetSummary(tx, id)
		if err != nil {
			return err
		}
		var det histDetail
		if err := histGetJSON(tx.Bucket(histBucketDetail), id, &det); err != nil {
			return err
		}
		r.Argv, r.Targets, r.Recap = det.Argv, det.Targets, det.Recap
		if r.Meta, err = histGetMeta(tx, id); err != nil {
			return err
		}
		if inv := tx.Bucket(histBucketInventory).Get([]byte(id)); inv != nil {
			r.Inventory = slices.Clone(inv)
		}
		if evs := tx.Bucket(histBucketEvents).Bucket([]byte(id)); evs != nil {
			r.Events = make([]json.RawMessage, 0, r.EventCount)
			err := evs.ForEach(func(_, v []byte) error {
				r.Events = append(r.Events, slices.Clone(v))
				return nil
			})
			if err != nil {
				return err
			}
		}
		if out := tx.Bucket(histBucketOutput).Bucket([]byte(id)); out != nil {
			var sb strings.Builder
			err := out.ForEach(func(_, v []byte) error {
				sb.Write(v)
				return nil
			})
			if err != nil {
				return err
			}
			if r.OutputTruncated {
				kept := int64(sb.Len())
				fmt.Fprintf(&sb, "\n[fleetdeck: output truncated: kept the first %d bytes, dropped %d]\n", kept, r.OutputBytes-kept)
			}
			r.Output = sb.String()
		}
		return nil
	})
	return r, err
}

// AmbiguousRunError is History.ResolveID's error for a prefix that more
// than one run's id starts with.
type AmbiguousRunError struct {
	Prefix string
	// Runs are the summaries of the runs it matches, newest first, at
	// most ambiguousMax of them; More counts the others.
	Runs []RunRecord
	More int
}

// ambiguousMax bounds the candidates an AmbiguousRunError carries.
const ambiguousMax = 10

func (e *AmbiguousRunError) Error() string {
	ids := make([]string, 0, len(e.Runs)+1)
	for _, r := range e.Runs {
		ids = append(ids, r.ID)
	}
	if e.More > 0 {
		ids = append(ids, fmt.Sprintf("and %d more", e.More))
	}
	return fmt.Sprintf("run id %q is ambiguous: %d runs start with it (%s)", e.Prefix, len(e.Runs)+e.More, strings.Join(ids, ", "))
}

// ResolveID returns the id of the one run whose id starts with prefix: a
// whole id, or enough of one to tell it from every other run. Ids are
// ULIDs, so case does not matter. No match is ErrRunNotFound; more than
// one is an *AmbiguousRunError naming them.
func (h *History) ResolveID(ctx context.Context, prefix string) (string, error) {
	want := strings.ToUpper(strings.TrimSpace(prefix))
	if want == "" {
		return "", fmt.Errorf("finding a run: %w: no id given", ErrRunNotFound)
	}
	var ids []string
	var newest []RunRecord
	err := h.view(ctx, "finding run "+want, func(tx *bolt.Tx) error {
		runs := tx.Bucket(histBucketRuns)
		c := runs.Cursor()
		for k, _ := c.Seek([]byte(want)); k != nil && bytes.HasPrefix(k, []byte(want)); k, _ = c.Next() {
			if string(k) == want {
				// A whole id is that run, whatever longer ids start with it.
				ids = []string{want}
				return nil
			}
			ids = append(ids, string(k))
		}
		if len(ids) < 2 {
			return nil
		}
		// Ids sort by creation: the last ones are the newest.
		for _, id := range slices.Backward(ids[max(len(ids)-ambiguousMax, 0):]) {
			r, err := histGetSummary(tx, id)
			if err != nil {
				return err
			}
			newest = append(newest, r)
		}
		return nil
	})
	switch {
	case err != nil:
		return "", err
	case len(ids) == 0:
		return "", fmt.Errorf("%w: no run id starts with %q", ErrRunNotFound, want)
	case len(ids) == 1:
		return ids[0], nil
	}
	return "", &AmbiguousRunError{Prefix: want, Runs: newest, More: len(ids) - len(newest)}
}

// List returns run summaries, newest first, filtered and paged by opts.
func (h *History) List(ctx context.Context, opts ListOptions) (RunPage, error) {
	if opts.Limit <= 0 {
		opts.Limit = 100
	}
	var page RunPage
	err := h.view(ctx, "listing runs", func(tx *bolt.Tx) error {
		runs := tx.Bucket(histBucketRuns)
		keep := func(r RunRecord) bool {
			if len(opts.Status) > 0 && !slices.Contains(opts.Status, r.Status) {
				return false
			}
			return opts.Since.IsZero() || !r.Created.Before(opts.Since)
		}
		// add reports whether the page is full.
		add := func(id []byte) (bool, error) {
			var r RunRecord
			if err := histGetJSON(runs, string(id), &r); err != nil {
				return false, err
			}
			if !opts.Since.IsZero() && r.Created.Before(opts.Since) {
				// Ids sort by creation time: everything after is older.
				return true, nil
			}
			if !keep(r) {
				return false, nil
			}
			if len(page.Runs) == opts.Limit {
				page.Next = page.Runs[len(page.Runs)-1].ID
				return true, nil
			}
			// Only the runs on the page pay for their metadata.
			meta, err := histGetMeta(tx, r.ID)
			if err != nil {
				return false, err
			}
			r.Meta = meta
			page.Runs = append(page.Runs, r)
			return false, nil
		}
		if opts.Host != "" {
			prefix := histHostKey(opts.Host, "")
			c := tx.Bucket(histBucketByHost).Cursor()
			start := append(slices.Clone(prefix), 0xff)
			if opts.Before != "" {
				start = histHostKey(opts.Host, opts.Before)
			}
			k, _ := c.Seek(start)
			if k == nil {
				k, _ = c.Last()
			} else {
				k, _ = c.Prev()
			}
			for ; k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Prev() {
				full, err := add(k[len(prefix):])
				if err != nil || full {
					return err
				}
			}
			return nil
		}
		c := runs.Cursor()
		var k []byte
		if opts.Before != "" {
			k, _ = c.Seek([]byte(opts.Before))
			if k == nil {
				k, _ = c.Last()
			} else {
				k, _ = c.Prev()
			}
		} else {
			k, _ = c.Last()
		}
		for ; k != nil; k, _ = c.Prev() {
			full, err := add(k)
			if err != nil || full {
				return err
			}
		}
		return nil
	})
	return page, err
}

// RecoverInterrupted marks as interrupted every queued or running record
// whose owner process is gone — a console that crashed or was killed — and
// returns their ids. Records owned by a live process (another console on
// this machine, or this one) are left alone, as are those owned on another
// host, whose processes this machine cannot see. Call it at start.
//
// The record's end is when its console died: the time the run's supervisor
// wrote into the run directory (RunConsoleDiedFile) when it noticed, else
// the record's last event, output or status change (Updated), else now.
func (h *History) RecoverInterrupted(ctx context.Context) ([]string, error) {
	var ids []string
	now := time.Now().UTC()
	err := h.update(ctx, "recovering interrupted runs", func(tx *bolt.Tx) error {
		runs := tx.Bucket(histBucketRuns)
		var dead []RunRecord
		err := runs.ForEach(func(k, v []byte) error {
			var r RunRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decoding run %s: %w", k, err)
			}
			if r.Status.Final() || histOwnerAlive(r.Owner, h.owner) {
				return nil
			}
			dead = append(dead, r)
			return nil
		})
		if err != nil {
			return err
		}
		for _, r := range dead {
			was := r.Status
			if !was.CanBecome(RunInterrupted) {
				continue
			}
			r.Status = RunInterrupted
			r.Ended = histDiedAt(r, now)
			r.Reason = fmt.Sprintf("was %s when its fleetdeck process (pid %d on %s) ended", was, r.Owner.PID, r.Owner.Hostname)
			// The list shows the board as it was left: hosts with a task
			// in flight interrupted, hosts no task reached not run.
			board, err := histBoard(tx, r.ID)
			if err != nil {
				return err
			}
			r.HostCounts = histCountsJSON(board.StatusCounts())
			if err := histPutSummary(tx, r); err != nil {
				return err
			}
			ids = append(ids, r.ID)
		}
		return nil
	})
	return ids, err
}

// histDiedAt is when the console of an interrupted run died (see
// RecoverInterrupted).
func histDiedAt(r RunRecord, now time.Time) time.Time {
	if r.Dir != "" && filepath.IsAbs(r.Dir) {
		if b, err := os.ReadFile(filepath.Join(r.Dir, RunConsoleDiedFile)); err == nil {
			if t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(string(b))); err == nil && !t.After(now) {
				return t.UTC()
			}
		}
	}
	if !r.Updated.IsZero() && !r.Updated.After(now) {
		return r.Updated
	}
	return now
}

// histOwnerAlive reports whether the process that owns a live record may
// still be running. It errs towards alive: a record is only interrupted
// when its owner is provably gone.
func histOwnerAlive(o, self RunOwner) bool {
	if o.Hostname != self.Hostname {
		return true // another machine's process: we cannot tell
	}
	if o.BootID != "" && self.BootID != "" && o.BootID != self.BootID {
		return false // the machine rebooted since
	}
	if o.PID == self.PID && o.StartTime == self.StartTime {
		return true // our own
	}
	alive, start := histProcess(o.PID)
	if !alive {
		return false
	}
	if o.StartTime != 0 && start != 0 && start != o.StartTime {
		return false // the pid was reused by a younger process
	}
	return true
}

// PruneOptions says which final run records History.Prune removes. Zero
// or negative values turn a rule off.
type PruneOptions struct {
	// Keep is how many runs are kept: only final records older than the
	// Keep newest records (live ones count) are removed.
	Keep int
	// MaxAge removes final records created longer ago.
	MaxAge time.Duration
	// Now is the time MaxAge counts back from; default time.Now().
	Now time.Time
}

// histPruneBatch is how many records one pruning transaction removes: the
// file lock is held for one batch at a time, so other consoles are not
// locked out of history for long.
const histPruneBatch = 100

// Prune removes the final run records past opts' count or age — summary,
// details, inventory, events, output and host index — and returns their
// summaries (Dir says where their run directories are). A queued or
// running record is never removed: RecoverInterrupted makes those of dead
// consoles final first.
func (h *History) Prune(ctx context.Context, opts PruneOptions) ([]RunRecord, error) {
	if opts.Keep <= 0 && opts.MaxAge <= 0 {
		return nil, nil
	}
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	var doomed []RunRecord
	err := h.view(ctx, "choosing runs to prune", func(tx *bolt.Tx) error {
		runs := tx.Bucket(histBucketRuns)
		c := runs.Cursor()
		n := 0
		for k, v := c.Last(); k != nil; k, v = c.Prev() {
			n++
			var r RunRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decoding run %s: %w", k, err)
			}
			if !r.Status.Final() {
				continue
			}
			if (opts.Keep > 0 && n > opts.Keep) || (opts.MaxAge > 0 && opts.Now.Sub(r.Created) > opts.MaxAge) {
				doomed = append(doomed, r)
			}
		}
		return nil
	})
	if err != nil || len(doomed) == 0 {
		return nil, err
	}
	var pruned []RunRecord
	for start := 0; start < len(doomed); start += histPruneBatch {
		batch := doomed[start:min(start+histPruneBatch, len(doomed))]
		err := h.update(ctx, "pruning run records", func(tx *bolt.Tx) error {
			for _, r := range batch {
				// Re-read: another console may have changed it meanwhile.
				cur, err := histGetSummary(tx, r.ID)
				if errors.Is(err, ErrRunNotFound) {
					continue
				}
				if err != nil {
					return err
				}
				if !cur.Status.Final() {
					continue
				}
				if err := histDelete(tx, r.ID); err != nil {
					return fmt.Errorf("removing run %s: %w", r.ID, err)
				}
				pruned = append(pruned, cur)
			}
			return nil
		})
		if err != nil {
			return pruned, err
		}
	}
	return pruned, nil
}

// histDelete removes every trace of one run.
func histDelete(tx *bolt.Tx, id string) error {
	var det histDetail
	if err := histGetJSON(tx.Bucket(histBucketDetail), id, &det); err != nil && !errors.Is(err, ErrRunNotFound) {
		return err
	}
	byHost := tx.Bucket(histBucketByHost)
	for _, t := range det.Targets {
		for _, name := range []string{t.Host, t.Node} {
			if name != "" {
				if err := byHost.Delete(histHostKey(name, id)); err != nil {
					return err
				}
			}
		}
	}
	for _, b := range [][]byte{histBucketRuns, histBucketDetail, histBucketInventory, histBucketMeta} {
		if err := tx.Bucket(b).Delete([]byte(id)); err != nil {
			return err
		}
	}
	for _, b := range [][]byte{histBucketEvents, histBucketOutput} {
		if err := tx.Bucket(b).DeleteBucket([]byte(id)); err != nil && !errors.Is(err, bolterrors.ErrBucketNotFound) {
			return err
		}
	}
	return nil
}

// summaries returns every record's summary, newest first.
func (h *History) summaries(ctx context.Context) ([]RunRecord, error) {
	var out []RunRecord
	err := h.view(ctx, "listing run records", func(tx *bolt.Tx) error {
		c := tx.Bucket(histBucketRuns).Cursor()
		for k, v := c.Last(); k != nil; k, v = c.Prev() {
			var r RunRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decoding run %s: %w", k, err)
			}
			out = append(out, r)
		}
		return nil
	})
	return out, err
}

// histHostCounts classifies the hosts of a run that ended without a board
// to count (see RunResult.HostCounts): a host in the recap by
// StatusOfCounts, as the board classifies it, a target missing from it as
// not run.
func histHostCounts(recap map[string]HostRecap, targets []RunTarget) map[HostStatus]int {
	out := map[HostStatus]int{}
	for _, rc := range recap {
		st := StatusOfCounts(HostStats{OK: rc.OK, Changed: rc.Changed, Unreachable: rc.Unreachable, Failures: rc.Failed,
			Skipped: rc.Skipped, Rescued: rc.Rescued, Ignored: rc.Ignored})
		if st == HostPending {
			st = HostNotRun
		}
		out[st]++
	}
	for _, t := range targets {
		if _, ok := recap[t.Host]; !ok {
			out[HostNotRun]++
		}
	}
	return out
}

// histCountsJSON is a run's host counts as the summary stores them.
func histCountsJSON(c map[HostStatus]int) map[string]int {
	if len(c) == 0 {
		return nil
	}
	out := make(map[string]int, len(c))
	for k, n := range c {
		out[string(k)] = n
	}
	return out
}

// replayBoard is a recorded run's board: its targets, pending, with its
// recorded events applied by the same reducer as the live board, settled
// as ended (RunState.MarkEnded) when the run has ended. Lines that are not
// events are skipped.
func replayBoard[L ~[]byte](targets []RunTarget, events iter.Seq[L], ended bool) *RunState {
	hosts := make([]string, 0, len(targets))
	for _, t := range targets {
		hosts = append(hosts, t.Host)
	}
	st := NewRunState(hosts)
	for line := range events {
		if ev, err := ParseRunEvent(line); err == nil {
			st.Apply(ev)
		}
	}
	if ended {
		st.MarkEnded()
	}
	return st
}

// histBoard replays the board of a run that has ended from the database.
func histBoard(tx *bolt.Tx, id string) (*RunState, error) {
	var det histDetail
	if err := histGetJSON(tx.Bucket(histBucketDetail), id, &det); err != nil && !errors.Is(err, ErrRunNotFound) {
		return nil, err
	}
	evs := tx.Bucket(histBucketEvents).Bucket([]byte(id))
	lines := func(yield func([]byte) bool) {
		if evs == nil {
			return
		}
		c := evs.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if !yield(v) {
				return
			}
		}
	}
	return replayBoard(det.Targets, lines, true), nil
}

func histPutSummary(tx *bolt.Tx, r RunRecord) error {
	r.Updated = time.Now().UTC()
	// The heavy parts live in their own buckets.
	r.Argv, r.Targets, r.Recap, r.Inventory, r.Events, r.Output = nil, nil, nil, nil, nil, ""
	r.Meta = nil // written once by Create, in histBucketMeta
	return histPutJSON(tx.Bucket(histBucketRuns), r.ID, r)
}

// histGetMeta reads a run's metadata (nil when it has none, or in a
// history from before metadata, which lacks the bucket).
func histGetMeta(tx *bolt.Tx, id string) (map[string]string, error) {
	b := tx.Bucket(histBucketMeta)
	if b == nil {
		return nil, nil
	}
	data := b.Get([]byte(id))
	if data == nil {
		return nil, nil
	}
	meta, err := histDecodeMeta(data)
	if err != nil {
		return nil, fmt.Errorf("decoding the metadata of run %s: %w", id, err)
	}
	return meta, nil
}

// histMetaV1 starts the encoding of a run's metadata.
const histMetaV1 = 1

// histEncodeMeta encodes metadata as a version byte, the entry count and
// each key and value with its length (uvarints), keys sorted. Not JSON:
// List decodes the metadata of every run it returns, and decoding JSON
// into a map cost ~0.85 µs an entry (200 runs of 1,000 entries: 171 ms a
// list); this costs a fraction of that (BenchmarkHistoryListMeta).
func histEncodeMeta(meta map[string]string) []byte {
	n := 1 + binary.MaxVarintLen64
	for k, v := range meta {
		n += len(k) + len(v) + 2*binary.MaxVarintLen64
	}
	b := make([]byte, 0, n)
	b = append(b, histMetaV1)
	b = binary.AppendUvarint(b, uint64(len(meta)))
	for _, k := range slices.Sorted(maps.Keys(meta)) {
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
		b = binary.AppendUvarint(b, uint64(len(meta[k])))
		b = append(b, meta[k]...)
	}
	return b
}

// histDecodeMeta decodes histEncodeMeta's encoding; data may be bbolt's
// (only valid during its transaction): the strings are copies.
func histDecodeMeta(data []byte) (map[string]string, error) {
	if len(data) == 0 || data[0] != histMetaV1 {
		return nil, errors.New("unknown encoding")
	}
	data = data[1:]
	next := func() (string, bool) {
		l, n := binary.Uvarint(data)
		if n <= 0 || l > uint64(len(data)-n) {
			return "", false
		}
		s := string(data[n : n+int(l)])
		data = data[n+int(l):]
		return s, true
	}
	count, n := binary.Uvarint(data)
	if n <= 0 || count > uint64(len(data)) {
		return nil, errors.New("bad entry count")
	}
	data = data[n:]
	meta := make(map[string]string, count)
	for range count {
		k, ok := next()
		if !ok {
			return nil, errors.New("truncated")
		}
		v, ok := next()
		if !ok {
			return nil, errors.New("truncated")
		}
		meta[k] = v
	}
	if len(data) > 0 {
		return nil, errors.New("trailing bytes")
	}
	return meta, nil
}

func histGetSummary(tx *bolt.Tx, id string) (RunRecord, error) {
	var r RunRecord
	err := histGetJSON(tx.Bucket(histBucketRuns), id, &r)
	return r, err
}

func histPutJSON(b *bolt.Bucket, id string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding run %s: %w", id, err)
	}
	return b.Put([]byte(id), data)
}

func histGetJSON(b *bolt.Bucket, id string, v any) error {
	data := b.Get([]byte(id))
	if data == nil {
		return fmt.Errorf("%w: %s", ErrRunNotFound, id)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decoding run %s: %w", id, err)
	}
	return nil
}

func histSeqKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64(nil, seq)
}

func histHostKey(host, id string) []byte {
	k := make([]byte, 0, len(host)+1+len(id))
	k = append(k, host...)
	k = append(k, 0)
	return append(k, id...)
}

// histCrockford is the ULID alphabet: Crockford's base32, which sorts in
// the same order as the numbers it encodes.
const histCrockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// newID returns a ULID: 48 bits of milliseconds then 80 random bits, 26
// characters that sort by creation time. Within this process ids are
// strictly increasing even within one millisecond.
func (h *History) newID(now time.Time) string {
	var id [16]byte
	ms := uint64(now.UnixMilli())
	binary.BigEndian.PutUint16(id[0:2], uint16(ms>>32))
	binary.BigEndian.PutUint32(id[2:6], uint32(ms))
	_, _ = rand.Read(id[6:])
	h.idMu.Lock()
	if bytes.Compare(id[:6], h.lastID[:6]) <= 0 {
		id = h.lastID
		for i := 15; i >= 0; i-- {
			id[i]++
			if id[i] != 0 {
				break
			}
		}
	}
	h.lastID = id
	h.idMu.Unlock()
	n := new(big.Int).SetBytes(id[:])
	out := make([]byte, 26)
	b32 := big.NewInt(32)
	mod := new(big.Int)
	for i := 25; i >= 0; i-- {
		n.DivMod(n, b32, mod)
		out[i] = histCrockford[mod.Int64()]
	}
	return string(out)
}

// histUser is the OS user running this process.
func histUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return fmt.Sprintf("uid %d", os.Getuid())
}

// histSelf identifies this process (see RunOwner).
func histSelf() RunOwner {
	host, _ := os.Hostname()
	_, start := histProcess(os.Getpid())
	return RunOwner{Hostname: host, PID: os.Getpid(), BootID: histBootID(), StartTime: start}
}
