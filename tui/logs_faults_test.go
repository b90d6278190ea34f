package tui

import (
	"context"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/logging/apiv2/loggingpb"
	"google.golang.org/genproto/googleapis/api/monitoredres"
	ltype "google.golang.org/genproto/googleapis/logging/type"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/fleetdeck/fleetdeck/fleet"
	"github.com/fleetdeck/fleetdeck/internal/faultproxy"
	"github.com/fleetdeck/fleetdeck/internal/logserver"
	"github.com/fleetdeck/fleetdeck/logview"
)

// TestEndToEndLogsStallUnderFault: the console on an 80x24 virtual
// terminal, logview's Service through the real apiv2 client, and a real
// fault-injecting proxy in front of the local Cloud Logging endpoint. The
// path dies silently: the Logs view stops claiming "live" and says
// "stalled" with the age of its last sign of life and the retry; once the
// path works again it is live by itself, with the entry written during
// the fault on screen.
func TestEndToEndLogsStallUnderFault(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv, err := logserver.Start(ctx, logserver.Options{KeepaliveMinTime: 10 * time.Second})
	if err != nil {
		t.Fatalf("logserver: %v", err)
	}
	defer func() { _ = srv.Close() }()
	px := faultproxy.Start(t, srv.Addr())
	svc, err := logview.New(ctx, logview.Config{
		Projects: []string{"p1"}, Endpoint: px.Addr(), Insecure: true,
		RetryMin: 100 * time.Millisecond, RetryMax: time.Second, TailSettle: 50 * time.Millisecond,
		TailCheck: time.Second, CheckTimeout: 2 * time.Second,
		// The black-holed connection stays dead after the path heals:
		// keepalive drops it, at gRPC's shortest interval here.
		KeepaliveTime: 10 * time.Second, KeepaliveTimeout: 2 * time.Second,
	})
	if err != nil {
		t.Fatalf("logview: %v", err)
	}
	defer func() { _ = svc.Close() }()

	now := time.Now()
	entry := func(id string, text string) *loggingpb.LogEntry {
		return &loggingpb.LogEntry{
			LogName: "projects/p1/logs/app", InsertId: id, Timestamp: timestamppb.New(time.Now()), Severity: ltype.LogSeverity_WARNING,
			Resource: &monitoredres.MonitoredResource{Type: "gce_instance", Labels: map[string]string{"instance_id": "i-00000007"}},
			Payload:  &loggingpb.LogEntry_TextPayload{TextPayload: text},
		}
	}
	srv.Add(entry("before", "before the fault"))
	pub := fleet.NewPublisher(fleet.NewSnapshot(1, now, synthNodes(40, now.Add(-time.Hour)), connected(now), []fleet.Event{{
		Seq: 1, Time: now.Add(-time.Minute), Kind: fleet.HealthChanged, Datacenter: "dc1", Node: "node-00007",
		CheckID: "service:web", CheckName: "http", From: fleet.HealthPassing, To: fleet.HealthCritical,
	}}))
	term, done := runProgramSize(ctx, New(ctx, Options{Feed: pub, NoColor: true, Logs: svc}), 80, 24)
	term.waitFor(t, "node-00000")
	term.emu.SendText("/name:node-00007\r")
	term.waitFor(t, "1/1 of 40")
	term.emu.SendText("l")
	term.waitForWithin(t, time.Minute, "Logs node node-00007", "● live", "WARN before the fault")

	px.BlackHole(t)
	faultAt := time.Now()
	srv.Add(entry("during", "written during the fault"))
	s := term.waitForWithin(t, time.Minute, "▲ stalled · last answer ")
	stalledAt := time.Now()
	for _, l := range strings.Split(s, "\n") {
		if !strings.Contains(l, "stalled") {
			continue
		}
		t.Logf("status at 80 columns: %q", l)
		if !strings.Contains(l, "retry in ") && !strings.Contains(l, "retrying") {
			t.Errorf("the stalled line does not say when it retries: %q", l)
		}
	}
	if strings.Contains(s, "● live") {
		t.Errorf("stalled and live on one screen:\n%s", s)
	}

	px.Heal(t)
	healAt := time.Now()
	term.waitForWithin(t, time.Minute, "● live", "WARN written during the fault")
	liveAt := time.Now()
	t.Logf("measured on screen (TailCheck 1s, CheckTimeout 2s, keepalive 10s/2s): fault → stalled %v, heal → live %v",
		stalledAt.Sub(faultAt).Round(10*time.Millisecond), liveAt.Sub(healAt).Round(10*time.Millisecond))
	term.quit(t, done, cancel)
}
