package provision

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"
)

// EventKind names a run event. The names are the ones AWX and ansible-runner
// use, so people who know those tools recognise them; fleetdeck adds one of
// its own, EventRunEnd, so that a recorded event log replays to the same
// final state as the live run.
type EventKind string

// Event kinds written by fleetdeck's callback plugin (provision/callback).
const (
	EventPlaybookStart    EventKind = "playbook_on_start"
	EventPlayStart        EventKind = "playbook_on_play_start"
	EventTaskStart        EventKind = "playbook_on_task_start"
	EventHandlerTaskStart EventKind = "playbook_on_handler_task_start"
	EventNoHostsMatched   EventKind = "playbook_on_no_hosts_matched"
	EventNoHostsRemaining EventKind = "playbook_on_no_hosts_remaining"
	EventRunnerStart      EventKind = "runner_on_start"
	EventRunnerOK         EventKind = "runner_on_ok"
	EventRunnerFailed     EventKind = "runner_on_failed"
	EventRunnerSkipped    EventKind = "runner_on_skipped"
	EventRunnerUnreach    EventKind = "runner_on_unreachable"
	EventItemOK           EventKind = "runner_item_on_ok"
	EventItemFailed       EventKind = "runner_item_on_failed"
	EventItemSkipped      EventKind = "runner_item_on_skipped"
	EventRunnerRetry      EventKind = "runner_retry"
	EventStats            EventKind = "playbook_on_stats"
	// EventRunEnd is appended by the Runner (not Ansible) when the process
	// has ended: exit code, outcome, and whether fleetdeck cancelled it.
	EventRunEnd EventKind = "fleetdeck_run_end"
)

// RunEvent is one structured event of a run. Fields that do not apply to an
// event kind are empty. The JSON form is the line format of the callback
// plugin and of a run's events.jsonl.
type RunEvent struct {
	Seq   int64     `json:"seq"`
	Event EventKind `json:"event"`
	Time  time.Time `json:"time"`

	Playbook string `json:"playbook,omitempty"` // playbook_on_start
	Check    bool   `json:"check,omitempty"`    // playbook_on_start: --check
	Diff     bool   `json:"diff,omitempty"`     // playbook_on_start: --diff

	Play     string `json:"play,omitempty"`
	PlayUUID string `json:"play_uuid,omitempty"`
	Pattern  string `json:"pattern,omitempty"` // play's hosts pattern

	Task     string `json:"task,omitempty"`
	TaskUUID string `json:"task_uuid,omitempty"`
	Action   string `json:"task_action,omitempty"`
	Handler  bool   `json:"handler,omitempty"`

	Host    string `json:"host,omitempty"`
	Changed bool   `json:"changed,omitempty"`
	// IgnoreErrors is set on a runner_on_failed of a task with
	// ignore_errors and on a runner_on_unreachable of one with
	// ignore_unreachable: Ansible counts those results ok and ignored.
	IgnoreErrors bool `json:"ignore_errors,omitempty"`
	// Rescued is set on a runner_on_failed that a block's rescue section
	// will handle: Ansible counts it rescued, not failed.
	Rescued bool         `json:"rescued,omitempty"`
	Item    string       `json:"item,omitempty"` // loop item label
	Result  *EventResult `json:"res,omitempty"`

	Stats map[string]HostStats `json:"stats,omitempty"` // playbook_on_stats
	End   *RunEnd              `json:"end,omitempty"`   // fleetdeck_run_end
}

// EventResult is the part of a task result fleetdeck keeps. The plugin bounds
// each text (FLEETDECK_EVENT_MAX_TEXT, default 16 KiB) and sets Truncated.
// A no_log result carries only Ansible's "censored" message in Msg.
type EventResult struct {
	Msg        string `json:"msg,omitempty"`
	Stdout     string `json:"stdout,omitempty"`
	Stderr     string `json:"stderr,omitempty"`
	RC         *int   `json:"rc,omitempty"`
	Diff       string `json:"diff,omitempty"` // unified diff text
	SkipReason string `json:"skip_reason,omitempty"`
	Items      int    `json:"items,omitempty"` // loop summary: number of items
	Truncated  bool   `json:"truncated,omitempty"`
}

// HostStats is one host's line of the play recap.
type HostStats struct {
	OK          int `json:"ok"`
	Changed     int `json:"changed"`
	Unreachable int `json:"unreachable"`
	Failures    int `json:"failures"`
	Skipped     int `json:"skipped"`
	Rescued     int `json:"rescued"`
	Ignored     int `json:"ignored"`
}

// RunEnd describes how the ansible-playbook process ended.
type RunEnd struct {
	ExitCode int        `json:"exit_code"` // -1 when ended by a signal
	Signal   string     `json:"signal,omitempty"`
	Outcome  RunOutcome `json:"outcome"`
	Canceled bool       `json:"canceled,omitempty"`
	TimedOut bool       `json:"timed_out,omitempty"`
	Error    string     `json:"error,omitempty"` // fleetdeck-side failure, if any
}

// ParseRunEvent decodes one JSON line of the callback plugin.
func ParseRunEvent(line []byte) (RunEvent, error) {
	var ev RunEvent
	if err := json.Unmarshal(line, &ev); err != nil {
		return RunEvent{}, fmt.Errorf("decoding run event: %w", err)
	}
	if ev.Event == "" {
		return RunEvent{}, fmt.Errorf("decoding run event: no event name in %.80q", line)
	}
	return ev, nil
}

// HostStatus is a host's cell on the run board.
type HostStatus string

// Host statuses. A host is Running while a task is active on it; between
// tasks it shows the worst result so far (unreachable > failed > changed > ok
// > skipped), counted as Ansible's PLAY RECAP counts: changed only after a
// task that reported a change (an ignored failure included), a rescued
// failure as ok. Once the run has ended, HostInterrupted marks a host that
// had a task in flight when the run was cancelled, timed out or died, and
// HostNotRun a host that no task ever reached (it is not in the recap);
// HostPending is only for a run that has not ended.
const (
	HostPending     HostStatus = "pending"
	HostNotRun      HostStatus = "not run"
	HostRunning     HostStatus = "running"
	HostOK          HostStatus = "ok"
	HostChanged     HostStatus = "changed"
	HostFailed      HostStatus = "failed"
	HostUnreachable HostStatus = "unreachable"
	HostSkipped     HostStatus = "skipped"
	HostInterrupted HostStatus = "interrupted"
)

// HostState is one host's row on the run board.
type HostState struct {
	Name   string
	Status HostStatus
	// Task is the task running on the host, or the last one it ran.
	Task     string
	TaskUUID string
	Active   bool // a task is in flight on the host
	Counts   HostStats
	// LastFailure is the host's most recent failed (or unreachable) result,
	// ignored failures included.
	LastFailure *TaskFailure
	Updated     time.Time
}

// TaskState is one entry of a run's task list.
type TaskState struct {
	UUID    string
	Name    string
	Action  string
	Play    string
	Handler bool
	Started time.Time
	Running int // hosts with this task in flight
	Counts  HostStats
}

// TaskFailure is the detail of a failed or unreachable result.
type TaskFailure struct {
	Seq         int64
	Time        time.Time
	Host        string
	Task        string
	TaskUUID    string
	Action      string
	Item        string
	Ignored     bool // ignore_errors: true
	Unreachable bool
	Result      EventResult
}

// evMaxFailures bounds RunState.Failures: every host keeps its last failure
// anyway, the list exists for browsing and must not grow without limit when
// a loop fails on every item of every host.
const evMaxFailures = 2000

// RunState is the board of a run derived from its events: hosts, tasks,
// failures and the recap. Apply is a pure reducer (no I/O, no clock), so the
// console and history replay share it and a replayed event log yields the
// same state as the live run. A RunState is not safe for concurrent use.
type RunState struct {
	Playbook string
	Check    bool
	Diff     bool
	Play     string // current play
	Hosts    map[string]*HostState
	// HostOrder lists hosts in the order they were seeded or first seen.
	HostOrder []string
	Tasks     []*TaskState
	Failures  []TaskFailure
	// FailuresDropped counts failures beyond evMaxFailures not kept in
	// Failures (each host still has its LastFailure).
	FailuresDropped int
	// Recap is the play recap, set by playbook_on_stats.
	Recap map[string]HostStats
	// NoHostsMatched is set when a play matched no host.
	NoHostsMatched bool
	End            *RunEnd
	LastSeq        int64
	Applied        int // events applied
	Started        time.Time
	Updated        time.Time

	evTaskIndex map[string]int
}

// NewRunState returns an empty board with the given hosts pending (the
// preview's host list), in that order.
func NewRunState(hosts []string) *RunState {
	s := &RunState{Hosts: make(map[string]*HostState, len(hosts)), evTaskIndex: map[string]int{}}
	for _, h := range hosts {
		s.evHost(h)
	}
	return s
}

// evHost returns the host's state, adding it when first seen.
func (s *RunState) evHost(name string) *HostState {
	if s.Hosts == nil {
		s.Hosts = map[string]*HostState{}
	}
	h := s.Hosts[name]
	if h == nil {
		h = &HostState{Name: name, Status: HostPending}
		s.Hosts[name] = h
		s.HostOrder = append(s.HostOrder, name)
	}
	return h
}

func (s *RunState) evTask(ev *RunEvent) *TaskState {
	if ev.TaskUUID == "" {
		return nil
	}
	if s.evTaskIndex == nil {
		s.evTaskIndex = map[string]int{}
	}
	if i, ok := s.evTaskIndex[ev.TaskUUID]; ok {
		return s.Tasks[i]
	}
	t := &TaskState{UUID: ev.TaskUUID, Name: ev.Task, Action: ev.Action, Play: ev.Play, Handler: ev.Handler, Started: ev.Time}
	s.evTaskIndex[ev.TaskUUID] = len(s.Tasks)
	s.Tasks = append(s.Tasks, t)
	return t
}

// Apply folds one event into the state. Events with a sequence number at or
// below the last one applied are ignored, so overlapping replays are
// harmless (EventRunEnd is always applied once).
func (s *RunState) Apply(ev RunEvent) {
	if ev.Seq > 0 && ev.Seq <= s.LastSeq && ev.Event != EventRunEnd {
		return
	}
	if ev.Seq > s.LastSeq {
		s.LastSeq = ev.Seq
	}
	s.Applied++
	if s.Started.IsZero() {
		s.Started = ev.Time
	}
	if ev.Time.After(s.Updated) {
		s.Updated = ev.Time
	}
	switch ev.Event {
	case EventPlaybookStart:
		s.Playbook, s.Check, s.Diff = ev.Playbook, ev.Check, ev.Diff
	case EventPlayStart:
		s.Play = ev.Play
	case EventTaskStart, EventHandlerTaskStart:
		s.evTask(&ev)
	case EventNoHostsMatched:
		s.NoHostsMatched = true
	case EventRunnerStart:
		h := s.evHost(ev.Host)
		if t := s.evTask(&ev); t != nil {
			t.Running++
		}
		h.Task, h.TaskUUID, h.Active, h.Updated = ev.Task, ev.TaskUUID, true, ev.Time
		h.Status = evStatus(h)
	case EventRunnerOK, EventRunnerFailed, EventRunnerSkipped, EventRunnerUnreach:
		s.evResult(&ev)
	case EventItemOK, EventItemSkipped:
		// Items are progress within a task; the task's own result follows.
		h := s.evHost(ev.Host)
		h.Updated = ev.Time
	case EventItemFailed:
		h := s.evHost(ev.Host)
		h.Updated = ev.Time
		s.evFailure(h, &ev, false)
	case EventStats:
		s.evStats(ev.Stats)
	case EventRunEnd:
		s.evEnd(ev.End)
	}
}

// evResult applies a task's final result for one host.
func (s *RunState) evResult(ev *RunEvent) {
	h := s.evHost(ev.Host)
	t := s.evTask(ev)
	if t != nil && h.Active && h.TaskUUID == ev.TaskUUID && t.Running > 0 {
		t.Running--
	}
	h.Task, h.TaskUUID, h.Active, h.Updated = ev.Task, ev.TaskUUID, false, ev.Time
	var c HostStats
	// Counted as Ansible's strategy counts for the recap
	// (StrategyBase._process_pending_results), so the board agrees with
	// PLAY RECAP while the run goes on, not only once the recap arrives.
	switch ev.Event {
	case EventRunnerOK:
		c.OK = 1
		if ev.Changed {
			c.Changed = 1
		}
	case EventRunnerSkipped:
		c.Skipped = 1
	case EventRunnerUnreach:
		if ev.IgnoreErrors {
			c.OK, c.Ignored = 1, 1
		} else {
			c.Unreachable = 1
		}
		s.evFailure(h, ev, true)
	case EventRunnerFailed:
		switch {
		case ev.IgnoreErrors:
			c.OK, c.Ignored = 1, 1
			if ev.Changed {
				c.Changed = 1
			}
		case ev.Rescued:
			c.Rescued = 1
		default:
			c.Failures = 1
		}
		s.evFailure(h, ev, false)
	}
	h.Counts.Add(c)
	if t != nil {
		t.Counts.Add(c)
	}
	h.Status = evStatus(h)
}

func (s *RunState) evFailure(h *HostState, ev *RunEvent, unreachable bool) {
	f := TaskFailure{
		Seq: ev.Seq, Time: ev.Time, Host: ev.Host, Task: ev.Task, TaskUUID: ev.TaskUUID,
		Action: ev.Action, Item: ev.Item, Ignored: ev.IgnoreErrors, Unreachable: unreachable,
	}
	if ev.Result != nil {
		f.Result = *ev.Result
	}
	h.LastFailure = &f
	if len(s.Failures) < evMaxFailures {
		s.Failures = append(s.Failures, f)
	} else {
		s.FailuresDropped++
	}
}

// evStats takes the recap as the authority on each host's final status:
// it knows about rescued failures, which the event stream alone shows as
// failed.
func (s *RunState) evStats(stats map[string]HostStats) {
	s.Recap = stats
	names := make([]string, 0, len(stats))
	for n := range stats {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		h := s.evHost(n)
		h.Counts = stats[n]
		h.Active = false
		h.Status = evStatus(h)
	}
	// Hosts that were previewed but are not in the recap were never
	// processed: the run stopped before them (a failure with
	// any_errors_fatal or max_fail_percentage, an earlier serial batch that
	// failed). They did not run; they were not skipped.
	for _, n := range s.HostOrder {
		if h := s.Hosts[n]; h.Status == HostPending {
			h.Status = HostNotRun
		}
	}
}

func (s *RunState) evEnd(end *RunEnd) {
	if end == nil {
		end = &RunEnd{}
	}
	s.End = end
	s.MarkEnded()
}

// MarkEnded settles the board of a run that has ended: a host with a task
// in flight reads interrupted, a host no task reached reads not run. The
// run-end event does this; a run that ended without one (cancelled while
// queued, or its console died) has its board settled by whoever knows it
// ended. It is idempotent.
func (s *RunState) MarkEnded() {
	for _, n := range s.HostOrder {
		h := s.Hosts[n]
		switch {
		case h.Active:
			h.Active = false
			h.Status = HostInterrupted
		case h.Status == HostPending:
			h.Status = HostNotRun
		}
	}
}

// Add adds c's counts to h.
func (h *HostStats) Add(c HostStats) {
	h.OK += c.OK
	h.Changed += c.Changed
	h.Unreachable += c.Unreachable
	h.Failures += c.Failures
	h.Skipped += c.Skipped
	h.Rescued += c.Rescued
	h.Ignored += c.Ignored
}

// evStatus derives the board status from a host's tallies.
func evStatus(h *HostState) HostStatus {
	st := StatusOfCounts(h.Counts)
	if h.Active && st != HostUnreachable && st != HostFailed {
		return HostRunning
	}
	return st
}

// StatusOfCounts is the status of a host that is not running a task, from
// its tallies (the board's or PLAY RECAP's line for it): the worst result,
// unreachable > failed > changed > ok > skipped; pending when it has none.
// The board, the runs list and history classify hosts with it, so they
// agree with each other and with the recap.
func StatusOfCounts(c HostStats) HostStatus {
	switch {
	case c.Unreachable > 0:
		return HostUnreachable
	case c.Failures > 0:
		return HostFailed
	case c.Changed > 0:
		return HostChanged
	case c.OK > 0 || c.Ignored > 0 || c.Rescued > 0:
		return HostOK
	case c.Skipped > 0:
		return HostSkipped
	}
	return HostPending
}

// StatusCounts returns how many hosts are in each status.
func (s *RunState) StatusCounts() map[HostStatus]int {
	m := make(map[HostStatus]int, 8)
	for _, h := range s.Hosts {
		m[h.Status]++
	}
	return m
}

// HostsWith returns the names of hosts in any of the given statuses, in
// board order (e.g. failed and unreachable hosts for a re-run).
func (s *RunState) HostsWith(statuses ...HostStatus) []string {
	var out []string
	for _, n := range s.HostOrder {
		st := s.Hosts[n].Status
		for _, want := range statuses {
			if st == want {
				out = append(out, n)
				break
			}
		}
	}
	return out
}
