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
	ps    *previewScreen
	runID string
	err   error
}

// cancelledMsg reports the outcome of Provisioner.Cancel.
type cancelledMsg struct {
	id  string
	err error
}

// confirmAsk is a pending y/n question in the footer (cancel a run).
type confirmAsk struct {
	text string
	yes  func() tea.Cmd
	// no is the flash shown when the answer is no ("" says "not cancelled").
	no string
}

// quit ends the console, asking first when runs of this console are
// running or queued: quitting cancels them.
func (m *Model) quit() tea.Cmd {
	running, queued := m.liveRuns()
	if running+queued == 0 {
		return tea.Quit
	}
	m.confirm = &confirmAsk{
		text: fmt.Sprintf("%d running and %d queued runs of this console will be cancelled. Quit? y/n", running, queued),
		yes:  func() tea.Cmd { return tea.Quit },
		no:   "not quitting",
	}
	return nil
}

// provTimeout bounds list and board fetches; previews and launches get
// longer (ansible-playbook --list-hosts, lock acquisition).
const (
	provTimeout     = 10 * time.Second
	provLongTimeout = 2 * time.Minute
)

// waitProv waits in Provisioner.Next for the runs to change. It returns
// when ctx is cancelled, so no goroutine outlives the program.
func (m *Model) waitProv() tea.Cmd {
	if m.prov == nil {
		return nil
	}
	ctx, p, after := m.ctx, m.prov, m.provVer
	return func() tea.Msg {
		v, err := p.Next(ctx, after)
		return provChangedMsg{ver: v, err: err}
	}
}

// retryProv waits a second, then waits for changes again.
func (m *Model) retryProv() tea.Cmd { return m.retryAfterSecond(m.waitProv()) }

// provCall runs f with a bounded context derived from the model's.
func (m *Model) provCall(d time.Duration, f func(ctx context.Context) tea.Msg) tea.Cmd {
	if m.prov == nil {
		return nil
	}
	parent := m.ctx
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(parent, d)
		defer cancel()
		return f(ctx)
	}
}

// fetchRuns reloads the runs list; calls are coalesced so at most one is
// in flight.
func (m *Model) fetchRuns() tea.Cmd {
	if m.prov == nil {
		return nil
	}
	if m.runsFetching {
		m.runsAgain = true
		return nil
	}
	m.runsFetching = true
	p := m.prov
	return m.provCall(provTimeout, func(ctx context.Context) tea.Msg {
		runs, err := p.Runs(ctx)
		return runsMsg{runs: runs, err: err}
	})
}

// fetchRun reloads the board of the run shown by rs (coalesced likewise).
func (m *Model) fetchRun(rs *runScreen) tea.Cmd {
	if m.prov == nil {
		return nil
	}
	if rs.fetching {
		rs.again = true
		return nil
	}
	rs.fetching = true
	p, id := m.prov, rs.id
	return m.provCall(provTimeout, func(ctx context.Context) tea.Msg {
		rv, err := p.Run(ctx, id)
		return runMsg{id: id, rv: rv, err: err}
	})
}

// updateProv handles the run manager's messages.
func (m *Model) updateProv(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case provChangedMsg:
		if msg.err != nil {
			if m.ctx.Err() != nil || errors.Is(msg.err, context.Canceled) {
				return nil
			}
			m.setFlash("runs: "+msg.err.Error(), true)
			return m.retryProv()
		}
		if msg.ver > m.provVer {
			m.provVer = msg.ver
		}
		cmds := []tea.Cmd{m.waitProv(), m.fetchRuns()}
		if m.top().kind == viewLocks {
			cmds = append(cmds, m.fetchLocks())
		}
		// Only the run on top follows live; one under other views is
		// fetched again when it is back on top.
		if v := m.top(); v.kind == viewRun {
			cmds = append(cmds, m.fetchRun(v.run))
		} else {
			for _, sv := range m.stack {
				if sv.run != nil {
					sv.run.stale = true
				}
			}
		}
		return tea.Batch(cmds...)
	case runsMsg:
		m.runsFetching = false
		if msg.err != nil {
			m.runsErr = sanitize(msg.err.Error())
		} else {
			m.runsErr = ""
			m.runs = msg.runs
			m.src[viewRuns].force = true
		}
		if m.runsAgain {
			m.runsAgain = false
			return m.fetchRuns()
		}
	case runMsg:
		var cmd tea.Cmd
		for _, v := range m.stack {
			if rs := v.run; rs != nil && rs.id == msg.id {
				rs.fetching = false
				rs.set(m, msg.rv, msg.err)
				if rs.again {
					rs.again = false
					cmd = m.fetchRun(rs)
				}
			}
		}
		return cmd
	case locksMsg:
		return m.locksDone(msg)
	case playbooksMsg:
		msg.form.setPlaybooks(msg.pbs, msg.err)
	case previewMsg:
		return m.previewDone(msg)
	case launchedMsg:
		return m.launchDone(msg)
	case cancelledMsg:
		if msg.err != nil {
			m.setFlash("cancel "+msg.id+": "+msg.err.Error(), true)
		} else {
			m.setFlash("cancelling run "+msg.id, false)
		}
		return m.fetchRuns()
	}
	return nil
}

// noProv says that the run features are off.
func (m *Model) noProv() {
	m.setFlash(m.runsOffText(), true)
}

// runsOffText says why runs are not available.
func (m *Model) runsOffText() string {
	if m.runsOff != "" {
		return m.runsOff
	}
	return "runs are not available: no run manager configured (playbook directory?)"
}

// askCancel asks y/n before cancelling run id.
func (m *Model) askCancel(id string, status provision.RunStatus) {
	if m.prov == nil {
		m.noProv()
		return
	}
	if status.Final() {
		m.setFlash("run "+id+" has already ended ("+string(status)+")", true)
		return
	}
	p := m.prov
	m.confirm = &confirmAsk{
		text: "cancel run " + sanitize(id) + " (" + string(status) + ")? y/n",
		yes: func() tea.Cmd {
			return m.provCall(provTimeout, func(ctx context.Context) tea.Msg {
				return cancelledMsg{id: id, err: p.Cancel(ctx, id)}
			})
		},
	}
}

// rerun asks the manager for a preview of run id again, on all its hosts or
// only the failed and unreachable ones.
func (m *Model) rerun(id string, onlyFailed bool) tea.Cmd {
	if m.prov == nil {
		m.noProv()
		return nil
	}
	p := m.prov
	if onlyFailed {
		m.setFlash("preparing a re-run of "+id+" on its failed and unreachable hosts…", false)
	} else {
		m.setFlash("preparing a re-run of "+id+"…", false)
	}
	return m.provCall(provLongTimeout, func(ctx context.Context) tea.Msg {
		prev, err := p.Rerun(ctx, id, onlyFailed)
		return previewMsg{rerunOf: id, prev: prev, err: err}
	})
}

// handleConfirm answers a pending y/n question.
func (m *Model) handleConfirm(msg tea.KeyPressMsg) tea.Cmd {
	c := m.confirm
	switch msg.String() {
	case "y", "Y":
		m.confirm = nil
		return c.yes()
	case "ctrl+c":
		return tea.Quit
	case "n", "N", "esc", "q":
		m.confirm = nil
		if c.no != "" {
			m.setFlash(c.no, false)
		} else {
			m.setFlash("not cancelled", false)
		}
	}
	return nil
}
