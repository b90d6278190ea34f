package provision

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"
)

// RunOutcome summarises how a run ended.
type RunOutcome string

// Outcomes. Ansible's exit codes: 0 ok, 1 error, 2 a host failed, 4 a host
// unreachable (also parser errors — told apart by the recap), 5 bad options,
// 8 a play broke, 99 interrupted, 250 unexpected error.
const (
	OutcomeOK          RunOutcome = "ok"
	OutcomeFailed      RunOutcome = "failed"
	OutcomeUnreachable RunOutcome = "unreachable"
	OutcomeError       RunOutcome = "error"
	OutcomeInterrupted RunOutcome = "interrupted" // exit 99 not caused by fleetdeck
	OutcomeCanceled    RunOutcome = "canceled"    // Run.Cancel or the Start context
	OutcomeTimedOut    RunOutcome = "timed_out"   // RunSpec.Timeout
	OutcomeKilled      RunOutcome = "killed"      // a signal fleetdeck did not send
)

// RunReport is the record of a finished run.
type RunReport struct {
	ID             string
	Dir            string
	Argv           []string
	Playbook       string
	PlaybookSHA256 string // checksum taken right before the process started
	Started        time.Time
	Ended          time.Time
	End            RunEnd
	// State is the final board (the events reduced, run end included).
	State      *RunState
	EventsPath string // events.jsonl: one RunEvent per line
	OutputPath string // output.log: stdout and stderr, interleaved as written
	// BadEventLines counts event lines that did not decode (kept verbatim
	// in events.jsonl).
	BadEventLines int
}

// Run is a started ansible-playbook run. Its methods are safe for
// concurrent use; any number of consumers can follow its events and output
// with their own cursors.
type Run struct {
	ID   string
	Dir  string
	Plan *RunPlan

	cmd      *exec.Cmd // the run supervisor (see SuperviseMain)
	pid      int       // the supervisor's pid: the process group id
	child    int       // ansible-playbook's pid
	lifeline *os.File  // closed when the run has ended (or the console dies)
	started  time.Time
	sha      string
	cancelCh chan struct{}
	cancelMu sync.Once
	hurry    chan struct{} // closed by CancelBy
	hurryMu  sync.Once
	done     chan struct{}

	mu           sync.Mutex
	wake         chan struct{} // closed and replaced whenever events or output arrive
	events       []RunEvent    // the window: events evBase … evBase+len-1
	evBase       int
	evBytes      int // approximate size of the window (the lines' lengths)
	evWindow     int
	evLast       int64 // Seq of the last event read
	state        *RunState
	evFile       *os.File
	evBuf        *bufio.Writer
	evWritten    int64 // bytes written to events.jsonl (through evBuf)
	evPublished  int64 // bytes of whole lines flushed to events.jsonl
	badLines     int
	out          runRing
	outFile      *os.File
	result       RunReport
	killDeadline time.Time // set by CancelBy: the group must be gone by then
}

// Event window bounds: a run keeps its most recent events in memory, at
// most RunnerConfig.EventWindow of them and runEventWindowBytes of their
// text (Run.Events); the board (RunState) has every event applied, and
// events.jsonl has them all (Run.EventLog).
const (
	DefaultEventWindow  = 4096
	runEventWindowBytes = 8 << 20
	// runEventLineMax bounds one event line in memory; the plugin bounds
	// each text of an event to 16 KiB, so only a broken plugin reaches it.
	runEventLineMax = 1 << 20
	// runKillMargin is kept between SIGKILL and a CancelBy deadline.
	runKillMargin = time.Second
)

// runRing keeps the tail of the output with absolute byte offsets.
type runRing struct {
	buf   []byte
	start int64 // offset of buf[0]
	max   int
}

func (r *runRing) write(p []byte) {
	r.buf = append(r.buf, p...)
	if len(r.buf) > 2*r.max {
		// Shift in place: the buffer keeps its capacity, so a run that
		// prints without end allocates nothing more here.
		drop := len(r.buf) - r.max
		r.start += int64(drop)
		r.buf = r.buf[:copy(r.buf, r.buf[drop:])]
	}
}

func (r *runRing) end() int64 { return r.start + int64(len(r.buf)) }

// runStart starts the process and the goroutines that follow it.
func runStart(ctx context.Context, rn *Runner, plan *RunPlan) (*Run, error) {
	fail := func(what string, err error) (*Run, error) {
		return nil, fmt.Errorf("starting run %s: %s: %w", plan.ID, what, err)
	}
	// The pinned copy that runs (see RunPlan): checksummed again right
	// before it starts, so the record names the bytes that ran.
	sha, err := runFileSHA256(plan.playbookPath())
	if err != nil {
		return fail("checksumming playbook", err)
	}
	evFile, err := os.OpenFile(filepath.Join(plan.Dir, "events.jsonl"), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fail("creating events.jsonl", err)
	}
	outFile, err := os.OpenFile(filepath.Join(plan.Dir, "output.log"), os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		evFile.Close()
		return fail("creating output.log", err)
	}
	evR, evW, err := os.Pipe()
	if err != nil {
		evFile.Close()
		outFile.Close()
		return fail("creating event pipe", err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		evFile.Close()
		outFile.Close()
		evR.Close()
		evW.Close()
		return fail("creating output pipe", err)
	}
	// Stdout and stderr are *os.File, not writers: os/exec then starts no
	// copying goroutines, and Wait cannot hang on a straggler holding them.
	// ansible-playbook runs under a supervisor that ends it when this
	// process dies (see SuperviseMain); it gets fd 3 (FLEETDECK_EVENT_FD=3).
	sup, err := superviseStart(plan.Dir, plan.Argv, plan.env, rn.cfg.Catalog.Dir(), outW, evW)
	// The child has its copies; ours must go so EOF comes when it is done.
	evW.Close()
	outW.Close()
	if err != nil {
		for _, f := range []*os.File{evFile, outFile, evR, outR} {
			f.Close()
		}
		return fail("starting ansible-playbook", err)
	}
	r := &Run{
		ID: plan.ID, Dir: plan.Dir, Plan: plan,
		cmd: sup.cmd, pid: sup.cmd.Process.Pid, child: sup.child, lifeline: sup.lifeline,
		started: time.Now(), sha: sha,
		cancelCh: make(chan struct{}), hurry: make(chan struct{}), done: make(chan struct{}),
		wake:     make(chan struct{}),
		evWindow: rn.cfg.EventWindow,
		state:    NewRunState(plan.Hosts),
		evFile:   evFile, evBuf: bufio.NewWriterSize(evFile, 64<<10),
		out:     runRing{max: rn.cfg.OutputTail},
		outFile: outFile,
	}
	var readers sync.WaitGroup
	readers.Add(2)
	go func() { defer readers.Done(); r.readEvents(evR) }()
	go func() { defer readers.Done(); r.readOutput(outR) }()
	go r.supervise(ctx, rn.cfg, &readers, evR, outR)
	return r, nil
}

// notifyLocked wakes everyone waiting in Events or Output. r.mu is held.
func (r *Run) notifyLocked() {
	close(r.wake)
	r.wake = make(chan struct{})
}

// readEvents decodes the plugin's lines, records them and folds them into
// the run's own state. Lines are appended to events.jsonl as received.
func (r *Run) readEvents(f *os.File) {
	br := bufio.NewReaderSize(f, 256<<10)
	var pending []RunEvent
	var pendingBytes []int
	flush := func() {
		r.mu.Lock()
		for i, ev := range pending {
			r.state.Apply(ev)
			r.evBytes += pendingBytes[i]
		}
		if n := len(pending); n > 0 {
			r.evLast = pending[n-1].Seq
		}
		r.events = append(r.events, pending...)
		r.trimEventsLocked()
		if r.evBuf.Flush() == nil {
			r.evPublished = r.evWritten
		}
		r.notifyLocked()
		r.mu.Unlock()
		pending, pendingBytes = pending[:0], pendingBytes[:0]
	}
	_ = runReadLines(br, runEventLineMax, func(line []byte, cut int) {
		var ev RunEvent
		err := errors.New("line cut")
		if cut == 0 {
			ev, err = ParseRunEvent(line)
		} else {
			// Kept as a marker, not as a broken JSON prefix.
			line, _ = json.Marshal(map[string]string{"fleetdeck_invalid_event": fmt.Sprintf("event line cut: %d bytes", len(line)+cut)})
		}
		r.mu.Lock()
		n, _ := r.evBuf.Write(line)
		r.evWritten += int64(n)
		if line[len(line)-1] != '\n' {
			if r.evBuf.WriteByte('\n') == nil {
				r.evWritten++
			}
		}
		if err != nil {
			r.badLines++
		}
		r.mu.Unlock()
		if err == nil {
			pending = append(pending, ev)
			pendingBytes = append(pendingBytes, len(line))
		}
		// Publish when the pipe has nothing more buffered: a burst becomes
		// one wake-up, a trickle is delivered at once.
		if br.Buffered() == 0 || len(pending) >= 4096 {
			flush()
		}
	})
	flush()
}

// trimEventsLocked drops the oldest events beyond the window. It trims to
// the window once twice its size is reached, so the copying is amortised.
func (r *Run) trimEventsLocked() {
	if len(r.events) <= 2*r.evWindow && r.evBytes <= 2*runEventWindowBytes {
		return
	}
	drop := max(len(r.events)-r.evWindow, 0)
	// Sizes are not kept per event: the bytes left are estimated in
	// proportion, which is all a bound needs.
	if r.evBytes > 2*runEventWindowBytes && len(r.events) > 1 {
		per := r.evBytes / len(r.events)
		if per > 0 {
			drop = max(drop, len(r.events)-runEventWindowBytes/per)
		}
	}
	drop = min(drop, len(r.events)-1)
	if drop <= 0 {
		return
	}
	r.evBytes -= r.evBytes * drop / len(r.events)
	r.evBase += drop
	r.events = slices.Clone(r.events[drop:])
}

// readOutput copies the human output to output.log and the in-memory tail.
func (r *Run) readOutput(f *os.File) {
	buf := make([]byte, 32<<10)
	for {
		n, err := f.Read(buf)
		if n > 0 {
			r.mu.Lock()
			r.outFile.Write(buf[:n])
			r.out.write(buf[:n])
			r.notifyLocked()
			r.mu.Unlock()
		}
		if err != nil {
			return
		}
	}
}

// supervise waits for the process, runs the cancel sequence when asked, and
// sweeps the process group before reaping the leader.
func (r *Run) supervise(ctx context.Context, cfg RunnerConfig, readers *sync.WaitGroup, evR, outR *os.File) {
	exited := make(chan struct{})
	var waitErr error
	reaped := false
	go func() {
		if err := runWaitExited(r.pid); err != nil {
			waitErr, reaped = r.cmd.Wait(), true
		}
		close(exited)
	}()
	var timeout <-chan time.Time
	if d := r.Plan.Spec.Timeout; d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	canceled, timedOut := false, false
	select {
	case <-exited:
	case <-r.cancelCh:
		canceled = true
	case <-ctx.Done():
		canceled = true
	case <-timeout:
		timedOut = true
	}
	if canceled || timedOut {
		r.escalate(cfg, exited)
	}
	// Kill whatever is left in the group (module processes, an ssh
	// ControlPersist master) — the leader is a zombie, not reaped, so the
	// group id is still ours.
	runKillGroup(r.pid, runSIGKILL)
	if !reaped {
		waitErr = r.cmd.Wait()
	}
	_ = waitErr        // the ProcessState carries the exit status
	r.lifeline.Close() // the supervisor is gone; its end of the pipe too

	// Readers end at EOF once every holder of the pipes is gone. A process
	// that left the group (setsid) could hold them: give up after a while.
	readersDone := make(chan struct{})
	go func() { readers.Wait(); close(readersDone) }()
	select {
	case <-readersDone:
	case <-time.After(2 * time.Second):
		evR.SetReadDeadline(time.Now())
		outR.SetReadDeadline(time.Now())
		<-readersDone
	}
	evR.Close()
	outR.Close()

	end := RunEnd{ExitCode: -1, Canceled: canceled, TimedOut: timedOut}
	signaled := false
	if ps := r.cmd.ProcessState; ps != nil {
		if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			signaled = true
			end.Signal = ws.Signal().String()
		} else {
			end.ExitCode = ps.ExitCode()
		}
	}
	r.mu.Lock()
	end.Outcome = runOutcome(end.ExitCode, signaled, canceled, timedOut, r.state)
	ended := time.Now()
	last := max(r.state.LastSeq, r.evLast)
	endEv := RunEvent{Seq: last + 1, Event: EventRunEnd, Time: ended.UTC(), End: &end}
	r.state.Apply(endEv)
	r.events = append(r.events, endEv)
	r.trimEventsLocked()
	var closeErr error
	if b, err := json.Marshal(endEv); err == nil {
		n, _ := r.evBuf.Write(append(b, '\n'))
		r.evWritten += int64(n)
	}
	if err := r.evBuf.Flush(); err != nil {
		closeErr = err
	} else {
		r.evPublished = r.evWritten
	}
	if err := r.evFile.Close(); err != nil && closeErr == nil {
		closeErr = err
	}
	if err := r.outFile.Close(); err != nil && closeErr == nil {
		closeErr = err
	}
	if closeErr != nil {
		end.Error = "writing run files: " + closeErr.Error()
	}
	r.result = RunReport{
		ID: r.ID, Dir: r.Dir, Argv: r.Plan.Argv, Playbook: r.Plan.Playbook.Name,
		PlaybookSHA256: r.sha, Started: r.started, Ended: ended, End: end,
		State:      r.state,
		EventsPath: filepath.Join(r.Dir, "events.jsonl"), OutputPath: filepath.Join(r.Dir, "output.log"),
		BadEventLines: r.badLines,
	}
	r.notifyLocked()
	r.mu.Unlock()
	// Extra vars may hold secrets; the history keeps them redacted.
	_ = os.Remove(filepath.Join(r.Dir, RunExtraVarsFile))
	close(r.done)
}

// escalate is the cancel sequence: SIGINT to the group (Ansible stops
// cleanly, prints its recap of what ran), then SIGTERM after CancelGrace,
// then SIGKILL after TermGrace. A deadline from CancelBy — before or during
// the sequence — shortens the graces so that SIGKILL goes out
// runKillMargin before it.
func (r *Run) escalate(cfg RunnerConfig, exited <-chan struct{}) {
	start := time.Now()
	termAt := start.Add(cfg.CancelGrace)
	killAt := termAt.Add(cfg.TermGrace)
	hurry := r.hurry
	sent := 0 // signals sent: SIGINT, SIGTERM, SIGKILL
	for {
		if isClosed(hurry) {
			hurry = nil
			now := time.Now()
			r.mu.Lock()
			dl := r.killDeadline.Add(-runKillMargin)
			r.mu.Unlock()
			if budget := dl.Sub(now); budget <= 0 {
				termAt, killAt = now, now
			} else {
				termAt = earliest(termAt, now.Add(budget/2))
				killAt = earliest(killAt, dl)
			}
		}
		now := time.Now()
		switch {
		case sent == 0 && killAt.After(now):
			runKillGroup(r.pid, runSIGINT)
			sent = 1
		case sent <= 1 && termAt.After(now):
		case sent <= 1 && killAt.After(now):
			runKillGroup(r.pid, runSIGTERM)
			sent = 2
		case killAt.After(now):
		default:
			runKillGroup(r.pid, runSIGKILL)
			<-exited
			return
		}
		next := killAt
		if sent <= 1 {
			next = termAt
		}
		t := time.NewTimer(max(time.Until(next), 0))
		select {
		case <-exited:
			t.Stop()
			return
		case <-hurry:
		case <-t.C:
		}
		t.Stop()
	}
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// runOutcome maps how the process ended to an outcome.
func runOutcome(code int, signaled, canceled, timedOut bool, st *RunState) RunOutcome {
	switch {
	case timedOut:
		return OutcomeTimedOut
	case canceled:
		return OutcomeCanceled
	case signaled:
		return OutcomeKilled
	}
	switch code {
	case 0:
		return OutcomeOK
	case 2, 8:
		return OutcomeFailed
	case 4:
		// 4 is also a parser error; only a run that reached hosts can have
		// unreachable ones.
		for _, h := range st.Hosts {
			if h.Counts.Unreachable > 0 {
				return OutcomeUnreachable
			}
		}
		return OutcomeError
	case 99:
		return OutcomeInterrupted
	}
	return OutcomeError
}

// Cancel asks the run to stop: SIGINT to its process group, then SIGTERM
// and SIGKILL after the configured graces. It returns at once; Wait or Done
// tell when the run has ended. Cancelling an ended run does nothing.
func (r *Run) Cancel() {
	r.cancelMu.Do(func() { close(r.cancelCh) })
}

// CancelBy cancels the run like Cancel, but with graces short enough that
// its whole process group is killed (SIGKILL) about a second before
// deadline — for a run whose host locks are lost and may be taken by
// another console at deadline. It also hurries a cancel already under
// way. The first deadline given counts.
func (r *Run) CancelBy(deadline time.Time) {
	r.hurryMu.Do(func() {
		r.mu.Lock()
		r.killDeadline = deadline
		r.mu.Unlock()
		close(r.hurry)
	})
	r.Cancel()
}

// Done is closed when the run has ended and its files are written.
func (r *Run) Done() <-chan struct{} { return r.done }

// Wait blocks until the run has ended or ctx is done.
func (r *Run) Wait(ctx context.Context) (RunReport, error) {
	select {
	case <-r.done:
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.result, nil
	case <-ctx.Done():
		return RunReport{}, fmt.Errorf("waiting for run %s: %w", r.ID, ctx.Err())
	}
}

// Pid returns the process id of the run's supervisor (see SuperviseMain),
// which leads the run's process group: it is the process group id.
func (r *Run) Pid() int { return r.pid }

// AnsiblePid returns the process id of ansible-playbook.
func (r *Run) AnsiblePid() int { return r.child }

// Events returns the events from index from on, blocking until there is at
// least one, the run has ended (io.EOF once all were returned), or ctx is
// done. next is the cursor for the following call. Everything that arrived
// since the last call comes as one batch, so a consumer that is busy
// rendering gets one message per frame rather than one per event. The
// returned slice must not be modified.
//
// Only a window of the most recent events is kept in memory (see
// DefaultEventWindow): a consumer that fell behind it skips ahead — the
// batch then starts at index next-len(batch), after from. A consumer that
// needs every event reads EventLog; the run's own board (RunReport.State)
// has every event applied.
func (r *Run) Events(ctx context.Context, from int) (batch []RunEvent, next int, err error) {
	for {
		r.mu.Lock()
		base, n := r.evBase, r.evBase+len(r.events)
		from = max(from, base)
		if from < n {
			batch = r.events[from-base : n-base : n-base]
			r.mu.Unlock()
			return batch, n, nil
		}
		wake := r.wake
		r.mu.Unlock()
		select {
		case <-r.done:
			r.mu.Lock()
			n = r.evBase + len(r.events)
			r.mu.Unlock()
			if from < n {
				continue
			}
			return nil, from, io.EOF
		case <-wake:
		case <-ctx.Done():
			return nil, from, fmt.Errorf("waiting for run events: %w", ctx.Err())
		}
	}
}

// runEventLogChunk bounds what one EventLog call returns.
const runEventLogChunk = 4 << 20

// EventLog returns whole lines of the run's events.jsonl from byte offset
// from on (at most a few MiB per call), blocking like Events until there is
// one, the run has ended (io.EOF once everything was returned) or ctx is
// done; next is the offset for the following call. Every line the plugin
// wrote is there, in order — valid events, and markers for lines that were
// not — so a consumer that must see every event (history) reads this
// rather than the in-memory window of Events.
func (r *Run) EventLog(ctx context.Context, from int64) (lines []byte, next int64, err error) {
	path := filepath.Join(r.Dir, "events.jsonl")
	for {
		r.mu.Lock()
		end := r.evPublished
		wake := r.wake
		r.mu.Unlock()
		if from < end {
			return runReadLog(path, from, min(end, from+runEventLogChunk))
		}
		select {
		case <-r.done:
			r.mu.Lock()
			end = r.evPublished
			r.mu.Unlock()
			if from < end {
				continue
			}
			return nil, from, io.EOF
		case <-wake:
		case <-ctx.Done():
			return nil, from, fmt.Errorf("waiting for run events: %w", ctx.Err())
		}
	}
}

// runReadLog reads path[from:end] up to its last newline.
func runReadLog(path string, from, end int64) ([]byte, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, from, fmt.Errorf("reading the event log: %w", err)
	}
	defer f.Close()
	buf := make([]byte, end-from)
	n, err := f.ReadAt(buf, from)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, from, fmt.Errorf("reading the event log: %w", err)
	}
	buf = buf[:n]
	i := bytes.LastIndexByte(buf, '\n')
	if i < 0 {
		return nil, from, fmt.Errorf("reading the event log: no whole line at offset %d", from)
	}
	return buf[:i+1], from + int64(i+1), nil
}

// runOutputChunk bounds what one Output call returns.
const runOutputChunk = 1 << 20

// Output returns human output from byte offset from on (stdout and stderr
// interleaved, at most 1 MiB per call), blocking like Events. Only the last
// OutputTail bytes are kept in memory: when from is older, the data starts
// later and next-len(data) tells where. The whole output is in output.log.
func (r *Run) Output(ctx context.Context, from int64) (data []byte, next int64, err error) {
	for {
		r.mu.Lock()
		end := r.out.end()
		if from < r.out.start {
			from = r.out.start
		}
		if from < end {
			to := min(end, from+runOutputChunk)
			data = append([]byte(nil), r.out.buf[from-r.out.start:to-r.out.start]...)
			r.mu.Unlock()
			return data, to, nil
		}
		wake := r.wake
		r.mu.Unlock()
		select {
		case <-r.done:
			r.mu.Lock()
			end = r.out.end()
			r.mu.Unlock()
			if from < end {
				continue
			}
			return nil, from, io.EOF
		case <-wake:
		case <-ctx.Done():
			return nil, from, fmt.Errorf("waiting for run output: %w", ctx.Err())
		}
	}
}

// errRunNotEnded is returned by Result before the run has ended.
var errRunNotEnded = errors.New("run has not ended")

// Result returns the result of an ended run without blocking.
func (r *Run) Result() (RunReport, error) {
	select {
	case <-r.done:
		return r.Wait(context.Background())
	default:
		return RunReport{}, errRunNotEnded
	}
}
