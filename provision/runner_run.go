package provision

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
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

	cmd      *exec.Cmd
	pid      int
	started  time.Time
	sha      string
	cancelCh chan struct{}
	cancelMu sync.Once
	done     chan struct{}

	mu       sync.Mutex
	wake     chan struct{} // closed and replaced whenever events or output arrive
	events   []RunEvent
	state    *RunState
	evFile   *os.File
	evBuf    *bufio.Writer
	badLines int
	out      runRing
	outFile  *os.File
	result   RunReport
}

// runRing keeps the tail of the output with absolute byte offsets.
type runRing struct {
	buf   []byte
	start int64 // offset of buf[0]
	max   int
}

func (r *runRing) write(p []byte) {
	r.buf = append(r.buf, p...)
	if len(r.buf) > 2*r.max {
		drop := len(r.buf) - r.max
		r.start += int64(drop)
		r.buf = append([]byte(nil), r.buf[drop:]...)
	}
}

func (r *runRing) end() int64 { return r.start + int64(len(r.buf)) }

// runStart starts the process and the goroutines that follow it.
func runStart(ctx context.Context, rn *Runner, plan *RunPlan) (*Run, error) {
	fail := func(what string, err error) (*Run, error) {
		return nil, fmt.Errorf("starting run %s: %s: %w", plan.ID, what, err)
	}
	sha, err := runFileSHA256(plan.Playbook.Path)
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
	cmd := &exec.Cmd{
		Path:        plan.Argv[0],
		Args:        plan.Argv,
		Env:         plan.env,
		Dir:         rn.cfg.Catalog.Dir(),
		Stdout:      outW,
		Stderr:      outW,
		ExtraFiles:  []*os.File{evW}, // fd 3, FLEETDECK_EVENT_FD=3
		SysProcAttr: runSysProcAttr(),
	}
	if err := cmd.Start(); err != nil {
		for _, f := range []*os.File{evFile, outFile, evR, evW, outR, outW} {
			f.Close()
		}
		return fail("starting ansible-playbook", err)
	}
	// The child has its copies; ours must go so EOF comes when it is done.
	evW.Close()
	outW.Close()
	r := &Run{
		ID: plan.ID, Dir: plan.Dir, Plan: plan,
		cmd: cmd, pid: cmd.Process.Pid, started: time.Now(), sha: sha,
		cancelCh: make(chan struct{}), done: make(chan struct{}),
		wake:   make(chan struct{}),
		state:  NewRunState(plan.Hosts),
		evFile: evFile, evBuf: bufio.NewWriterSize(evFile, 64<<10),
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
	flush := func() {
		r.mu.Lock()
		for _, ev := range pending {
			r.state.Apply(ev)
		}
		r.events = append(r.events, pending...)
		r.evBuf.Flush()
		r.notifyLocked()
		r.mu.Unlock()
		pending = pending[:0]
	}
	_ = runReadLines(br, func(line []byte) {
		ev, err := ParseRunEvent(line)
		r.mu.Lock()
		r.evBuf.Write(line)
		if line[len(line)-1] != '\n' {
			r.evBuf.WriteByte('\n')
		}
		if err != nil {
			r.badLines++
		}
		r.mu.Unlock()
		if err == nil {
			pending = append(pending, ev)
		}
		// Publish when the pipe has nothing more buffered: a burst becomes
		// one wake-up, a trickle is delivered at once.
		if br.Buffered() == 0 || len(pending) >= 4096 {
			flush()
		}
	})
	flush()
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
	_ = waitErr // the ProcessState carries the exit status

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
	last := r.state.LastSeq
	if n := len(r.events); n > 0 && r.events[n-1].Seq > last {
		last = r.events[n-1].Seq
	}
	endEv := RunEvent{Seq: last + 1, Event: EventRunEnd, Time: ended.UTC(), End: &end}
	r.state.Apply(endEv)
	r.events = append(r.events, endEv)
	var closeErr error
	if b, err := json.Marshal(endEv); err == nil {
		r.evBuf.Write(append(b, '\n'))
	}
	if err := r.evBuf.Flush(); err != nil {
		closeErr = err
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
// cleanly, prints its recap of what ran), then SIGTERM, then SIGKILL.
func (r *Run) escalate(cfg RunnerConfig, exited <-chan struct{}) {
	steps := []struct {
		sig  syscall.Signal
		wait time.Duration
	}{{runSIGINT, cfg.CancelGrace}, {runSIGTERM, cfg.TermGrace}, {runSIGKILL, 0}}
	for _, s := range steps {
		runKillGroup(r.pid, s.sig)
		if s.wait == 0 {
			<-exited
			return
		}
		t := time.NewTimer(s.wait)
		select {
		case <-exited:
			t.Stop()
			return
		case <-t.C:
		}
	}
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

// Pid returns the process id (and process group id) of ansible-playbook.
func (r *Run) Pid() int { return r.pid }

// Events returns the events from index from on, blocking until there is at
// least one, the run has ended (io.EOF once all were returned), or ctx is
// done. next is the cursor for the following call. Everything that arrived
// since the last call comes as one batch, so a consumer that is busy
// rendering gets one message per frame rather than one per event. The
// returned slice must not be modified.
func (r *Run) Events(ctx context.Context, from int) (batch []RunEvent, next int, err error) {
	for {
		r.mu.Lock()
		n := len(r.events)
		if from < 0 {
			from = 0
		}
		if from < n {
			batch = r.events[from:n:n]
			r.mu.Unlock()
			return batch, n, nil
		}
		wake := r.wake
		r.mu.Unlock()
		select {
		case <-r.done:
			r.mu.Lock()
			n = len(r.events)
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

// Output returns human output from byte offset from on (stdout and stderr
// interleaved), blocking like Events. Only the last OutputTail bytes are
// kept in memory: when from is older, the data starts later and
// next-len(data) tells where. The whole output is in output.log.
func (r *Run) Output(ctx context.Context, from int64) (data []byte, next int64, err error) {
	for {
		r.mu.Lock()
		end := r.out.end()
		if from < r.out.start {
			from = r.out.start
		}
		if from < end {
			data = append([]byte(nil), r.out.buf[from-r.out.start:]...)
			r.mu.Unlock()
			return data, end, nil
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
