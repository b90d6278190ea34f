package tui

import (
	"bytes"
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/vt"

	"github.com/fleetdeck/fleetdeck/fleet"
	"github.com/fleetdeck/fleetdeck/logview"
)

// terminal is a virtual terminal the program writes to. Its input side
// (replies to queries, typed keys) is the program's input, as with a real
// terminal. The mutex orders the program's writes and the test's reads.
type terminal struct {
	mu  sync.Mutex
	emu *vt.Emulator
	// raw records everything the program wrote, for sequences the screen
	// does not show (OSC 52).
	raw bytes.Buffer
}

// Write feeds program output to the emulator, mapping LF to CR LF as a
// tty's line discipline (ONLCR) would: the program is not talking to a
// real tty, so nothing else does.
func (t *terminal) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.raw.Write(p)
	if _, err := t.emu.Write(bytes.ReplaceAll(p, []byte("\n"), []byte("\r\n"))); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (t *terminal) Read(p []byte) (int, error) { return t.emu.Read(p) }

func (t *terminal) text() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.emu.String()
}

// wroteRaw polls the program's output until it contains s, or fails.
func (t *terminal) waitRaw(tb testing.TB, s string) {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		t.mu.Lock()
		ok := bytes.Contains(t.raw.Bytes(), []byte(s))
		t.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("the program never wrote %q", s)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitFor polls the screen until every string appears, or fails.
func (t *terminal) waitFor(tb testing.TB, subs ...string) string {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s := t.text()
		ok := true
		for _, sub := range subs {
			if !strings.Contains(s, sub) {
				ok = false
				break
			}
		}
		if ok {
			return s
		}
		if time.Now().After(deadline) {
			tb.Fatalf("screen never showed %q; last screen:\n%s", subs, s)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestEndToEndScreen runs the real Bubble Tea program on a virtual
// terminal, feeds it from a Publisher, and reads the screen as text.
func TestEndToEndScreen(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	nodes := synthNodes(40, t0.Add(-time.Hour))
	pub := fleet.NewPublisher(fleet.NewSnapshot(1, time.Now(), nodes, connected(time.Now()), nil))
	term := &terminal{emu: vt.NewEmulator(100, 30)}
	m := New(ctx, Options{Feed: pub, NoColor: true})
	p := tea.NewProgram(m,
		tea.WithContext(ctx),
		tea.WithInput(term),
		tea.WithOutput(term),
		tea.WithWindowSize(100, 30),
		tea.WithoutSignals(),
		tea.WithEnvironment([]string{"TERM=xterm-256color", "NO_COLOR=1"}),
	)
	done := make(chan error, 1)
	go func() {
		_, err := p.Run()
		done <- err
	}()

	term.waitFor(t, "nodes 40", "passing 36", "critical 1", "node-00000", "connected", "nodes 1/40")

	// node-00001 goes critical: the change must show on screen, counted
	// and marked as changed.
	next := append([]*fleet.Node(nil), nodes...)
	c := *next[1]
	c.Health = fleet.HealthCritical
	c.ChangedAt = time.Now()
	next[1] = &c
	pub.Publish(fleet.NewSnapshot(2, time.Now(), next, connected(time.Now()), []fleet.Event{{
		Seq: 1, Time: time.Now(), Kind: fleet.HealthChanged, Datacenter: c.Datacenter, Node: c.Name,
		CheckID: "service:api", CheckName: "http", From: fleet.HealthPassing, To: fleet.HealthCritical, Output: "connection refused",
	}}))
	s := term.waitFor(t, "critical 2", "passing 35")
	var row string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, "node-00001") {
			row = l
		}
	}
	if !strings.Contains(row, "*node-00001") || !strings.Contains(row, "critical") {
		t.Fatalf("changed row not shown as critical and changed: %q\n%s", row, s)
	}

	// Keys typed on the terminal: filter to failing nodes, then open the
	// journal and drill into the event.
	term.emu.SendText("/health:critical")
	term.emu.SendText("\r")
	term.waitFor(t, "/health:critical", "1/2 of 40")
	term.emu.SendText(":events\r")
	term.waitFor(t, "passing → critical: check http: connection refused")
	term.emu.SendText("\r")
	term.waitFor(t, "Node node-00001", "Recent events (1)")

	term.emu.SendText("q")
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("program: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("program did not quit on q")
	}
	cancel()
	// End the program's input with EOF by closing the emulator's input
	// pipe directly: Emulator.Close also sets a flag that Read checks
	// without synchronisation, which the race detector rightly reports.
	if pw, ok := term.emu.InputPipe().(*io.PipeWriter); ok {
		_ = pw.Close()
	} else {
		t.Fatal("emulator input is not a pipe")
	}
}

// TestEndToEndLogs runs the real program: l on a node opens its logs
// (through a fake Opener: the real Service is tested in logview), y puts
// the entry on the clipboard with OSC 52 in the program's output (what a
// terminal over SSH receives), esc closes the stream.
func TestEndToEndLogs(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	now := time.Now()
	nodes := synthNodes(40, t0.Add(-time.Hour))
	pub := fleet.NewPublisher(fleet.NewSnapshot(1, now, nodes, connected(now), nil))
	es := entries("node-00000", 30, now.Add(-time.Minute), time.Second, 10)
	es[29].Text = "boom\x1b]52;c;ZXZpbA==\x07 panic: nil map"
	fl := &fakeLogs{seed: []logview.Batch{{Entries: es, Status: logview.Status{Phase: logview.Live, Listed: 30}}}}
	term := &terminal{emu: vt.NewEmulator(100, 30)}
	m := New(ctx, Options{Feed: pub, NoColor: true, Logs: fl})
	p := tea.NewProgram(m,
		tea.WithContext(ctx),
		tea.WithInput(term),
		tea.WithOutput(term),
		tea.WithWindowSize(100, 30),
		tea.WithoutSignals(),
		tea.WithEnvironment([]string{"TERM=xterm-256color", "NO_COLOR=1"}),
	)
	done := make(chan error, 1)
	go func() {
		_, err := p.Run()
		done <- err
	}()

	term.waitFor(t, "node-00000", "nodes 1/40")
	term.emu.SendText("l")
	term.waitFor(t, "Logs node node-00000", "● live", "listed 30", "ERR  node-00000 line 19", ">", "ERR  boom panic: nil map", "30/30 FOLLOW")
	if strings.Contains(term.text(), "ZXZpbA") {
		t.Fatal("an OSC payload from a log line reached the screen")
	}
	term.emu.SendText("y")
	want, _ := entryJSON(es[29])
	term.waitRaw(t, ansi.SetSystemClipboard(want))
	term.waitFor(t, "copied the entry")
	term.emu.SendText("\x1b")
	term.waitFor(t, "nodes 1/40")
	_, s := fl.last(t)
	waitClosed(t, s)

	term.emu.SendText("q")
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("program: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("program did not quit on q")
	}
	cancel()
	if pw, ok := term.emu.InputPipe().(*io.PipeWriter); ok {
		_ = pw.Close()
	} else {
		t.Fatal("emulator input is not a pipe")
	}
}
