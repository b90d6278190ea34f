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
	"github.com/charmbracelet/x/vt"

	"github.com/fleetdeck/fleetdeck/fleet"
)

// terminal is a virtual terminal the program writes to. Its input side
// (replies to queries, typed keys) is the program's input, as with a real
// terminal. The mutex orders the program's writes and the test's reads.
type terminal struct {
	mu  sync.Mutex
	emu *vt.Emulator
}

// Write feeds program output to the emulator, mapping LF to CR LF as a
// tty's line discipline (ONLCR) would: the program is not talking to a
// real tty, so nothing else does.
func (t *terminal) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
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
