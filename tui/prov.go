package tui

import (
	"context"
	"errors"
	"fmt"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/fleetdeck/fleetdeck/provision"
)

// The console talks to the run manager only through commands: every
// Provisioner call runs off the update loop (a preview runs
// ansible-playbook --list-hosts, which takes a while) and comes back as one
// of the messages below. Changes to runs arrive batched through Next, so a
// run streaming thousands of events costs a few fetches a second.

// provChangedMsg reports that the runs changed (Provisioner.Next).
type provChangedMsg struct {
	ver uint64
	err error
}

// runsMsg carries the runs list.
type runsMsg struct {
	runs []provision.RunInfo
	err  error
}

// runMsg carries one run's board.
type runMsg struct {
	id  string
	rv  *provision.RunView
	err error
}

// playbooksMsg carries the playbook catalog for a launch form.
type playbooksMsg struct {
	form *launchForm
	pbs  []provision.Playbook
	err  error
}

// previewMsg carries a prepared run for the preview screen. form is the
// launch form that asked (nil for a re-run).
type previewMsg struct {
	form    *launchForm
	rerunOf string
	prev    *provision.Preview
	err     error
}

// launchedMsg reports the outcome of Provisioner.Launch.
type launchedMsg struct {
	ps    *previewView
	runID string
	err   error
}

// cancelledMsg reports the outcome of Provisioner.Cancel.
type cancelledMsg struct {
	id  string
	err error
}

// provTimeout bounds list and board fetches; previews and launches get
// longer (ansible-playbook --list-hosts, lock acquisition).
const (
	provTimeout     = 10 * time.Second
	provLongTimeout = 2 * time.Minute
)

// quit is the quit action. With runs of this console live it asks first
// (quitting cancels them); asked again while the question is open (a
// second ctrl+c), it quits.
func (s *shared) quit() tea.Cmd {
	if q, ok := s.overlay.(*question); ok && q.quit {
		return s.quitNow(true)
	}
	running, queued := s.liveRuns()
	if running+queued == 0 {
		return s.quitNow(false)
	}
	s.openOverlay(newQuestion(s, question{
		text: fmt.Sprintf("%s and %s of this console will be cancelled. Quit? y/n", plural(running, "running run"), plural(queued, "queued run")),
		yes:  func() tea.Cmd { return s.quitNow(true) },
		no:   "not quitting",
		quit: true,
	}))
	return nil
}

// quitNow ends the console: every view is closed (a prepared run is
// discarded, a log stream closed) and, with cancelLive, this console's
// live runs are cancelled before the program ends.
func (s *shared) quitNow(cancelLive bool) tea.Cmd {
	for _, c := range s.stack {
		c.close()
	}
	s.overlay = nil
	var live []string
	for i := range s.runs {
		if ri := &s.runs[i]; cancelLive && ri.Live && !ri.Status.Final() {
			live = append(live, ri.ID)
		}
	}
	if len(live) == 0 || s.prov == nil {
		return tea.Quit
	}
	p, parent := s.prov, s.ctx
	return func() tea.Msg {
		// The run manager cancels them at its Close too; doing it here
		// records them as cancelled by this console's user even if the
		// program is killed right after.
		ctx, cancel := context.WithTimeout(parent, provTimeout)
		defer cancel()
		for _, id := range live {
			_ = p.Cancel(ctx, id)
		}
		return tea.QuitMsg{}
	}
}

// waitProv waits in Provisioner.Next for the runs to change. It returns
// when ctx is cancelled, so no goroutine outlives the program.
func (s *shared) waitProv() tea.Cmd {
	if s.prov == nil {
		return nil
	}
	ctx, p, after := s.ctx, s.prov, s.provVer
	return func() tea.Msg {
		v, err := p.Next(ctx, after)
		return provChangedMsg{ver: v, err: err}
	}
}

// provCall runs f with a bounded context derived from the console's.
func (s *shared) provCall(d time.Duration, f func(ctx context.Context) tea.Msg) tea.Cmd {
	if s.prov == nil {
		return nil
	}
	parent := s.ctx
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(parent, d)
		defer cancel()
		return f(ctx)
	}
}

// fetchRuns reloads the runs list; calls are coalesced so at most one is
// in flight.
func (s *shared) fetchRuns() tea.Cmd {
	if s.prov == nil {
		return nil
	}
	if s.runsFetching {
		s.runsAgain = true
		return nil
	}
	s.runsFetching = true
	s.runsAt = s.now()
	p := s.prov
	return s.provCall(provTimeout, func(ctx context.Context) tea.Msg {
		runs, err := p.Runs(ctx)
		return runsMsg{runs: runs, err: err}
	})
}

// runsRefresh is how often the runs list, and the board of another
// console's run still going, are read again while on top: other consoles'
// runs start and end without this console hearing of it (they share the
// history, not the run manager).
const runsRefresh = 3 * time.Second

// tickRuns reads the runs list again when the Runs view is on top and the
// list is older than runsRefresh.
func (s *shared) tickRuns() tea.Cmd {
	if s.top().title() != "runs" || s.now().Sub(s.runsAt) < runsRefresh {
		return nil
	}
	return s.fetchRuns()
}

// updateProv handles the run manager's messages that concern the console
// as a whole; handled is false for messages of one component.
func (s *shared) updateProv(msg tea.Msg) (cmd tea.Cmd, handled bool) {
	switch msg := msg.(type) {
	case provChangedMsg:
		if msg.err != nil {
			if s.ctx.Err() != nil || errors.Is(msg.err, context.Canceled) {
				return nil, true
			}
			s.setFlash("runs: "+msg.err.Error(), true)
			return s.retryAfterSecond(s.waitProv()), true
		}
		if msg.ver > s.provVer {
			s.provVer = msg.ver
		}
		cmds := []tea.Cmd{s.waitProv(), s.fetchRuns()}
		if s.top().title() == "locks" {
			cmds = append(cmds, s.fetchLocks())
		}
		// Run views fetch their board: the one on top now, the others
		// when they are back on top.
		cmds = append(cmds, s.broadcast(msg))
		return tea.Batch(cmds...), true
	case runsMsg:
		s.runsFetching = false
		if msg.err != nil {
			s.runsErr = sanitize(msg.err.Error())
		} else {
			s.runsErr = ""
			s.runs = msg.runs
			s.invalidate("runs")
			s.indexRuns()
			s.dropStaleQuestion()
		}
		if s.runsAgain {
			s.runsAgain = false
			return s.fetchRuns(), true
		}
		return nil, true
	case locksMsg:
		return s.locksDone(msg), true
	case previewMsg:
		return s.previewDone(msg), true
	case launchedMsg:
		return s.launchDone(msg), true
	case cancelledMsg:
		if msg.err != nil {
			s.setFlash("cancel "+msg.id+": "+msg.err.Error(), true)
		} else {
			s.setFlash("cancelling run "+msg.id, false)
		}
		return s.fetchRuns(), true
	case logsSavedMsg:
		s.logsSaved(msg)
		return nil, true
	}
	return nil, false
}

// noProv says that the run features are off.
func (s *shared) noProv() {
	s.setFlash(s.runsOffText(), true)
}

// runsOffText says why runs are not available.
func (s *shared) runsOffText() string {
	if s.runsOff != "" {
		return s.runsOff
	}
	return "runs are not available: no run manager configured (playbook directory?)"
}

// askCancel asks y/n before cancelling run id.
func (s *shared) askCancel(id string, status provision.RunStatus) {
	if s.prov == nil {
		s.noProv()
		return
	}
	if status.Final() {
		s.setFlash("run "+id+" has already ended ("+string(status)+")", true)
		return
	}
	p := s.prov
	s.openOverlay(newQuestion(s, question{
		text:  "cancel run " + sanitize(id) + " (" + string(status) + ")? y/n",
		runID: id,
		yes: func() tea.Cmd {
			return s.provCall(provTimeout, func(ctx context.Context) tea.Msg {
				return cancelledMsg{id: id, err: p.Cancel(ctx, id)}
			})
		},
		no: "not cancelled",
	}))
}

// dropStaleQuestion withdraws a question about cancelling a run that has
// ended meanwhile: its answer would do nothing.
func (s *shared) dropStaleQuestion() {
	q, ok := s.overlay.(*question)
	if !ok || q.runID == "" {
		return
	}
	if ri := s.runInfo(q.runID); ri != nil && ri.Status.Final() {
		s.closeOverlay()
		s.setFlash("run "+q.runID+" ended meanwhile ("+string(ri.Status)+"): nothing to cancel", false)
	}
}

// rerun asks the manager for a preview of run id again, on all its hosts or
// only those that failed, were unreachable or did not finish.
func (s *shared) rerun(id string, onlyFailed bool) tea.Cmd {
	if s.prov == nil {
		s.noProv()
		return nil
	}
	p := s.prov
	if onlyFailed {
		s.setFlash("preparing a re-run of "+id+" on its hosts that failed, were unreachable or did not finish…", false)
	} else {
		s.setFlash("preparing a re-run of "+id+"…", false)
	}
	return s.provCall(provLongTimeout, func(ctx context.Context) tea.Msg {
		prev, err := p.Rerun(ctx, id, onlyFailed)
		return previewMsg{rerunOf: id, prev: prev, err: err}
	})
}
