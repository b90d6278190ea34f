package tui

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"cloud.google.com/go/logging/apiv2/loggingpb"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/vt"
	"google.golang.org/genproto/googleapis/api/monitoredres"
	ltype "google.golang.org/genproto/googleapis/logging/type"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/fleetdeck/fleetdeck/fleet"
	"github.com/fleetdeck/fleetdeck/internal/logserver"
	"github.com/fleetdeck/fleetdeck/logview"
)

// terminal is a virtual terminal the program writes to. Its input side
// (replies to queries, typed keys) is the program's input, as with a real
// terminal. The mutex orders the program's writes and the test's reads.
type terminal struct {
	mu  sync.Mutex
	emu *vt.Emulator
	// in is the program's input: the read end of a pipe that the
	// emulator's input is copied into. A real terminal's input is a file
	// too, and that matters when the console runs a program on it (x,
	// ssh): Bubble Tea can cancel its reading of a file, not of a plain
	// io.Reader, and the child reads the file itself instead of through
	// a goroutine of the console that would be left blocked in a read
	// (stealing the next key) when the child exits.
	in *os.File
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

// rawBytes returns a copy of everything the program wrote so far.
func (t *terminal) rawBytes() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return bytes.Clone(t.raw.Bytes())
}

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
	return t.waitForWithin(tb, 5*time.Second, subs...)
}

// waitForWithin is waitFor with a deadline d.
func (t *terminal) waitForWithin(tb testing.TB, d time.Duration, subs ...string) string {
	tb.Helper()
	deadline := time.Now().Add(d)
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

// runProgram runs m as a real Bubble Tea program on a 100x30 virtual
// terminal without colour; done receives Run's error.
func runProgram(ctx context.Context, m *Model) (*terminal, <-chan error) {
	return runProgramSize(ctx, m, 100, 30)
}

// runProgramSize is runProgram on a w x h terminal.
func runProgramSize(ctx context.Context, m *Model, w, h int) (*terminal, <-chan error) {
	term := &terminal{emu: vt.NewEmulator(w, h)}
	pr, pw, err := os.Pipe()
	if err != nil {
		done := make(chan error, 1)
		done <- fmt.Errorf("input pipe: %w", err)
		return term, done
	}
	term.in = pr
	// The pump ends when the emulator's input is closed (quit), and
	// closing pw then ends the program's input with EOF.
	go func() {
		_, _ = io.Copy(pw, term.emu)
		_ = pw.Close()
	}()
	p := tea.NewProgram(m,
		tea.WithContext(ctx),
		tea.WithInput(pr),
		tea.WithOutput(term),
		tea.WithWindowSize(w, h),
		tea.WithoutSignals(),
		tea.WithEnvironment([]string{"TERM=xterm-256color", "NO_COLOR=1"}),
	)
	done := make(chan error, 1)
	go func() {
		_, err := p.Run()
		done <- err
	}()
	return term, done
}

// quit presses q, expects the program to end cleanly, then cancels its
// context and ends its input.
func (term *terminal) quit(t *testing.T, done <-chan error, cancel context.CancelFunc) {
	t.Helper()
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
	// The program has ended: nothing reads its input any more.
	_ = term.in.Close()
}

// TestEndToEndScreen runs the real Bubble Tea program on a virtual
// terminal, feeds it from a Publisher, and reads the screen as text.
func TestEndToEndScreen(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	nodes := synthNodes(40, t0.Add(-time.Hour))
	pub := fleet.NewPublisher(fleet.NewSnapshot(1, time.Now(), nodes, connected(time.Now()), nil))
	term, done := runProgram(ctx, New(ctx, Options{Feed: pub, NoColor: true}))

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

	term.quit(t, done, cancel)
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
	term, done := runProgram(ctx, New(ctx, Options{Feed: pub, NoColor: true, Logs: fl}))

	term.waitFor(t, "node-00000", "nodes 1/40")
	term.emu.SendText("l")
	term.waitFor(t, "Logs node node-00000", "● live", "listed 30", "ERR  node-00000 line 19", ">", "ERR  boom panic: nil map", "30/30 FOLLOW")
	if strings.Contains(term.text(), "ZXZpbA") {
		t.Fatal("an OSC payload from a log line reached the screen")
	}
	// The bytes written, not the emulator's screen (which swallows OSC
	// sequences): no clipboard write before y, no payload.
	if raw := term.rawBytes(); bytes.Contains(raw, []byte("\x1b]52")) || bytes.Contains(raw, []byte("ZXZpbA")) {
		t.Fatal("the program wrote the log line's OSC 52 sequence to the terminal")
	}
	term.emu.SendText("y")
	want, _ := entryJSON(es[29])
	term.waitRaw(t, ansi.SetSystemClipboard(want))
	term.waitFor(t, "copied the entry")
	term.emu.SendText("\x1b")
	term.waitFor(t, "nodes 1/40")
	_, s := fl.last(t)
	waitClosed(t, s)

	term.quit(t, done, cancel)
}

// TestEndToEndLogsRealService is the "one key" path with real
// components: the console's program on a virtual terminal, logview's
// Service through the real apiv2 client, the local Cloud Logging
// endpoint. A node went critical two minutes ago; l on its row shows the
// error burst around that moment and the view continues live.
func TestEndToEndLogsRealService(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv, err := logserver.Start(ctx, logserver.Options{})
	if err != nil {
		t.Fatalf("logserver: %v", err)
	}
	defer func() { _ = srv.Close() }()
	svc, err := logview.New(ctx, logview.Config{
		Projects: []string{"p1"}, ClientOptions: srv.ClientOptions(),
		RetryMin: 10 * time.Millisecond, RetryMax: 100 * time.Millisecond, TailSettle: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatalf("logview: %v", err)
	}
	defer func() { _ = svc.Close() }()

	now := time.Now()
	incident := now.Add(-2 * time.Minute).Truncate(time.Second)
	entry := func(id string, at time.Time, sev ltype.LogSeverity, text string) *loggingpb.LogEntry {
		return &loggingpb.LogEntry{
			LogName: "projects/p1/logs/app", InsertId: id, Timestamp: timestamppb.New(at), Severity: sev,
			Resource: &monitoredres.MonitoredResource{Type: "gce_instance", Labels: map[string]string{"instance_id": "i-00000007"}},
			Payload:  &loggingpb.LogEntry_TextPayload{TextPayload: text},
		}
	}
	var es []*loggingpb.LogEntry
	for i := range 40 {
		at := incident.Add(time.Duration(i-20) * 5 * time.Second)
		sev, text := ltype.LogSeverity_INFO, fmt.Sprintf("GET /health 200 request %d", i)
		if i >= 20 && i < 24 {
			sev, text = ltype.LogSeverity_ERROR, fmt.Sprintf("upstream connect error %d\x1b]0;pwned\x07", i)
		}
		es = append(es, entry(fmt.Sprintf("e%d", i), at, sev, text))
	}
	// Another node's entry: not in this view.
	es = append(es, &loggingpb.LogEntry{LogName: "projects/p1/logs/app", InsertId: "other", Timestamp: timestamppb.New(incident),
		Resource: &monitoredres.MonitoredResource{Type: "gce_instance", Labels: map[string]string{"instance_id": "i-00000001"}},
		Payload:  &loggingpb.LogEntry_TextPayload{TextPayload: "someone else"}})
	srv.Add(es...)

	nodes := synthNodes(40, now.Add(-time.Hour))
	pub := fleet.NewPublisher(fleet.NewSnapshot(1, now, nodes, connected(now), []fleet.Event{{
		Seq: 1, Time: incident, Kind: fleet.HealthChanged, Datacenter: "dc1", Node: "node-00007",
		CheckID: "service:web", CheckName: "http", From: fleet.HealthPassing, To: fleet.HealthCritical, Output: "connection refused",
	}}))
	term, done := runProgram(ctx, New(ctx, Options{Feed: pub, NoColor: true, Logs: svc}))

	term.waitFor(t, "node-00000", "nodes 1/40")
	term.emu.SendText("/name:node-00007\r")
	term.waitFor(t, "1/1 of 40")
	term.emu.SendText("l")
	at := incident.UTC().Format("15:04:05")
	s := term.waitFor(t, "Logs node node-00007 · ±5m around "+at, "● live", "listed 40", "──── incident "+at,
		">"+at+".000 ERR  upstream connect error 20", "ERR  upstream connect error 23", "21/40 PAUSED")
	if strings.Contains(s, "someone else") || strings.Contains(s, "pwned") {
		t.Fatalf("wrong entries or unsanitised text:\n%s", s)
	}
	// Live: a new entry arrives through the tail while paused, then
	// follow shows it.
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if err := srv.WaitTails(wctx, 1); err != nil {
		t.Fatal(err)
	}
	srv.Add(entry("new", time.Now(), ltype.LogSeverity_WARNING, "disk 91% full"))
	term.waitFor(t, "PAUSED 1 new")
	term.emu.SendText("p")
	term.waitFor(t, "WARN disk 91% full", "41/41 FOLLOW")
	term.emu.SendText("\x1b")
	term.waitFor(t, "nodes /name:node-00007 1/1 of 40")

	term.quit(t, done, cancel)
}

// TestEndToEndHostileBytes runs the real program over nodes whose every
// Consul-sourced string is hostile, through the views, the detail and a
// pasted filter, and checks the BYTES it wrote to the terminal: no
// sequence or control from the data (a virtual terminal's screen cannot
// show that: it swallows OSC sequences). The program's own OSC (the window
// title) is in the bytes, so the check can see OSC sequences at all.
func TestEndToEndHostileBytes(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pub := fleet.NewPublisher(hostileSnapshot())
	term, done := runProgramSize(ctx, New(ctx, Options{Feed: pub, NoColor: true}), 120, 40)
	term.waitFor(t, "rtlgnp.exe", "nodes 1/16")
	for _, keys := range [][2]string{
		{"\r", "Services ("}, {"\x1b", "nodes 1/16"},
		{"G", "nodes 16/16"}, {"\r", "Checks ("}, {"\x1b", "nodes 16/16"},
		{":roles\r", "roles 1/"}, {":groups\r", "groups 1/"}, {":events\r", "events 1/"}, {"\r", "Recent events"}, {"\x1b", "events 1/"},
		{":nodes\r", "nodes 1/16"},
	} {
		term.emu.SendText(keys[0])
		term.waitFor(t, keys[1])
	}
	term.emu.SendText("/")
	term.waitFor(t, "enter apply")
	term.emu.Paste("\x1b]52;c;eA==\x07cjk\x1b[2J")
	term.waitFor(t, "/cjk")
	term.emu.SendText("\r")
	term.waitFor(t, "nodes /cjk 1/2 of 16")

	raw := term.rawBytes()
	if !bytes.Contains(raw, []byte("\x1b]2;fleetdeck\x07")) && !bytes.Contains(raw, []byte("\x1b]0;fleetdeck\x07")) {
		t.Fatalf("the program's own window title (OSC) is not in the bytes: the check would see no OSC at all")
	}
	for _, bad := range []string{
		"]0;pwned", "pwned", "]52;", "Y3VybCBodHRw", "eA==", "[?1049l", "[31;1mred",
		"\u009b", "\u009d", "\u009c", "\u202e", "\u2067", "\u2069", "\u200e", "\u061c", "\x08", "\x7f", "\xff\xfe",
	} {
		if i := bytes.Index(raw, []byte(bad)); i >= 0 {
			t.Errorf("the program wrote %q from the data: …%q…", bad, raw[max(i-40, 0):min(i+40, len(raw))])
		}
	}
	term.quit(t, done, cancel)
}
