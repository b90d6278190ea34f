package tui

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/fleetdeck/fleetdeck/fleet"
	"github.com/fleetdeck/fleetdeck/internal/consulagent"
)

// TestEndToEndAlertRealConsul is the alert path with real
// components: a Consul agent, the fleet watcher reading it, the console as
// a real Bubble Tea program on a virtual terminal. A node's check turns
// critical with hostile bytes in its output; the program must write the
// bell and the two notifications with the output made inert, count the
// alert in the header, and list it in :alerts, which clears the counter.
func TestEndToEndAlertRealConsul(t *testing.T) {
	agent := consulagent.StartTest(t, consulagent.Options{})
	c, err := agent.Client()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	register := func(status, output string) {
		t.Helper()
		// A node registered through the catalog has no agent: nothing
		// reverts it (anti-entropy only syncs the agent's own node).
		reg := &api.CatalogRegistration{Node: "web-1", Address: "10.9.0.1", NodeMeta: map[string]string{"asg": "web-asg"},
			Check: &api.AgentCheck{Node: "web-1", CheckID: "http", Name: "http", Status: status, Output: output}}
		wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
		defer wcancel()
		if _, err := c.Catalog().Register(reg, (&api.WriteOptions{}).WithContext(wctx)); err != nil {
			t.Fatal(err)
		}
	}
	register(api.HealthPassing, "200 OK")

	w := fleet.NewWatcher(c, fleet.Config{BackoffMin: 100 * time.Millisecond, BackoffMax: time.Second})
	wdone := make(chan struct{})
	wctx, wcancel := context.WithCancel(ctx)
	go func() { defer close(wdone); _ = w.Run(wctx) }()
	defer func() { wcancel(); <-wdone }()

	term, done := runProgramSize(ctx, New(ctx, Options{Feed: w, NoColor: true,
		Alerts: AlertOptions{Enabled: true, Filter: DefaultAlertFilter}}), 120, 30)
	// The fleet is loaded and web-1 is passing before anything changes:
	// its turning critical is then news, not history.
	term.waitForWithin(t, 30*time.Second, "web-1", "passing 2", "connected")
	if raw := term.rawBytes(); bytes.Contains(raw, []byte("\x1b]9;")) || bytes.Contains(raw, []byte("\x1b]777;")) {
		t.Fatal("a notification before anything turned critical")
	}

	const hostile = "\x07\x1b]0;pwned\x07\x1b[2J;rm -rf /\u009c\u202e\r\nnext"
	register(api.HealthCritical, hostile)
	// The whole sequence, byte for byte: the output's BEL, OSC, CSI, C1,
	// bidi control and newline are gone, its ";" is a ",".
	const body = "web-1 (dc1) critical: http: ,rm -rf /  next"
	want := "\a\x1b]9;fleetdeck: " + body + "\a\x1b]777;notify;fleetdeck;" + body + "\a"
	term.waitRaw(t, want)
	raw := term.rawBytes()
	if n := bytes.Count(raw, []byte("\x1b]9;")) + bytes.Count(raw, []byte("\x1b]777;")); n != 2 {
		t.Fatalf("%d notifications written, want 2 (OSC 9 and 777)", n)
	}
	for _, bad := range []string{"pwned", "]0;", "[2J;rm", "\u009c", "\u202e", "\r\nnext"} {
		if i := bytes.Index(raw, []byte(bad)); i >= 0 {
			t.Errorf("the program wrote %q from the check output: …%q…", bad, raw[max(i-40, 0):min(i+40, len(raw))])
		}
	}
	term.waitFor(t, "alerts 1", "critical 1")

	// :alerts lists it and marks it seen; enter opens the node. On
	// screen the ";" stays: only an OSC 777 field must not contain one.
	term.emu.SendText(":alerts\r")
	s := term.waitFor(t, "alerts 1/1", "web-1", "passing → critical: check http: ;rm -rf /  next")
	if head, _, _ := strings.Cut(s, "\n"); strings.Contains(head, "alerts") {
		t.Fatalf("the counter stays after opening :alerts: %q", head)
	}
	term.emu.SendText("\r")
	s = term.waitFor(t, "Node web-1")
	if head, _, _ := strings.Cut(s, "\n"); strings.Contains(head, "alerts") {
		t.Fatalf("the counter came back: %q", head)
	}
	term.quit(t, done, cancel)
}
