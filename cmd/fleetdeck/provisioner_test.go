package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/fleetdeck/fleetdeck/deploy"
)

// Everything printStatus prints comes from KV, which anyone with KV write
// can fill: no escape reaches the terminal, and a launch names its node.
func TestPrintStatusSanitises(t *testing.T) {
	evil := "x\x1b]52;c;cHduZWQ=\x07\x1b[2J\r\nforged line"
	at := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	st := deploy.Status{Datacenter: "dc1", Leader: &deploy.Holder{ID: evil}, State: "paused: " + evil,
		Held:      []deploy.Hold{{Node: "dc1/" + evil, Stage: "web", Reason: evil, At: at}},
		Requests:  []deploy.Request{{Kind: deploy.RequestPause, Who: evil, Reason: evil}},
		Decisions: []deploy.Decision{{At: at, Kind: deploy.KindLaunched, Stage: "base", Reason: evil, Batch: []deploy.DueItem{{Node: "dc1/web-1"}}}}}
	var buf bytes.Buffer
	if err := printStatus(&buf, st); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if strings.ContainsAny(out, "\x1b\x07\r") || strings.Contains(out, "\nforged line") {
		t.Fatalf("control characters reached the output:\n%q", out)
	}
	if !strings.Contains(out, "launched  base   dc1/web-1") {
		t.Errorf("the launch does not name its node:\n%s", out)
	}
}
