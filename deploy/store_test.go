package deploy_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/fleetdeck/fleetdeck/deploy"
)

func TestStoreRoundTrip(t *testing.T) {
	t.Parallel()
	_, c := startConsul(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := deploy.NewStore(c, "", "")
	now := time.Now().UTC().Truncate(time.Second)
	// An operator's request waits for the leader.
	req, err := s.Ask(ctx, deploy.Request{Kind: deploy.RequestPause, Reason: "maintenance window", Who: "alice"})
	if err != nil || req.ID == "" {
		t.Fatalf("Ask: %+v, %v", req, err)
	}
	if _, err := s.Ask(ctx, deploy.Request{Kind: deploy.RequestPause, Who: "alice"}); err == nil {
		t.Fatal("a pause without a reason was written")
	}
	l, err := s.Load(ctx)
	if err != nil || len(l.Requests) != 1 || l.Requests[0].Reason != "maintenance window" || l.StateIndex != 0 {
		t.Fatalf("Load: %+v, %v", l, err)
	}
	// The leader saves a state and records and takes the request, in
	// more records than one transaction holds.
	st := deploy.State{Seq: 7, Paused: "maintenance window (alice)", Holds: map[string]deploy.Hold{
		deploy.RecordKey("dc1/web-2/id2/i-2", ""): {Node: "dc1/web-2", Incarnation: "dc1/web-2/id2/i-2", Reason: "oscillating", At: now}}}
	var recs []deploy.Record
	for i := range 150 {
		node := fmt.Sprintf("dc1/web-%d", i)
		recs = append(recs, deploy.Record{Node: node, Incarnation: node + "/id/i-" + fmt.Sprint(i), Stage: "base",
			Inputs: deploy.Inputs{PlaybookSum: "p", SettingsSum: "s"}, Outcome: deploy.Succeeded, RunID: "base-1", At: now})
	}
	idx, err := s.Commit(ctx, deploy.Save{State: &st, Records: recs, Done: l.Requests})
	if err != nil || idx == 0 {
		t.Fatalf("Commit: %d, %v", idx, err)
	}
	if l, err = s.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if l.StateIndex != idx || l.State.Seq != 7 || len(l.State.Holds) != 1 || len(l.Records) != 150 || len(l.Requests) != 0 {
		t.Fatalf("after Commit: index %d/%d seq %d holds %d records %d requests %d", l.StateIndex, idx, l.State.Seq, len(l.State.Holds), len(l.Records), len(l.Requests))
	}
	if r := l.Records[recs[3].Incarnation+"|base"]; r != recs[3] {
		t.Fatalf("record: %+v; want %+v", r, recs[3])
	}
	// A state saved from a stale read is refused; nothing of it is kept.
	var ce *deploy.ConflictError
	st.Seq = 99
	if _, err := s.Commit(ctx, deploy.Save{State: &st, StateIndex: 1}); !errors.As(err, &ce) || ce.Fence {
		t.Fatalf("stale state: %v; want a ConflictError", err)
	}
	// A rerun forgets a record; one node's records are one list.
	if _, err := s.Commit(ctx, deploy.Save{Forget: recs[3:4]}); err != nil {
		t.Fatal(err)
	}
	got, err := s.NodeRecords(ctx, "dc1/web-3")
	if err != nil || len(got) != 0 {
		t.Fatalf("web-3 after forget: %+v, %v", got, err)
	}
	if got, err = s.NodeRecords(ctx, "dc1/web-4"); err != nil || len(got) != 1 || got[0] != recs[4] {
		t.Fatalf("web-4: %+v, %v", got, err)
	}
	if l, err = s.Load(ctx); err != nil || l.State.Seq != 7 || len(l.Records) != 149 {
		t.Fatalf("after the stale write: %+v, %v", l.State, err)
	}
}

// The ring keeps the last DecisionsKept decisions, in order, however many
// were appended, in batches of transactions.
func TestDecisionsRingBounded(t *testing.T) {
	t.Parallel()
	_, c := startConsul(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s := deploy.NewStore(c, "", "")
	const total = deploy.DecisionsKept + 250
	var ds []deploy.Decision
	for i := range total {
		ds = append(ds, deploy.Decision{Node: fmt.Sprintf("n%d", i), Stage: "base", Kind: deploy.KindDue, Reason: "new node"})
	}
	start := time.Now()
	if err := s.AppendDecisions(ctx, ds[:700]); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendDecisions(ctx, ds[700:]); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d decisions appended in %s", total, time.Since(start))
	st, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Decisions) != deploy.DecisionsKept {
		t.Fatalf("%d decisions kept; want %d", len(st.Decisions), deploy.DecisionsKept)
	}
	for i, d := range st.Decisions {
		want := total - deploy.DecisionsKept + i
		if d.Seq != uint64(want) || d.Node != fmt.Sprintf("n%d", want) || d.At.IsZero() {
			t.Fatalf("decision %d: %+v; want seq %d", i, d, want)
		}
	}
}

// Writes fenced with the leader's session succeed while it leads and are
// refused once another session leads.
func TestFencedWrites(t *testing.T) {
	t.Parallel()
	_, c := startConsul(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a := mustElect(t, electConfig(c, "a"))
	sa := deploy.NewStore(c, "", "").Fenced(a.Session())
	if _, err := sa.Commit(ctx, deploy.Save{State: &deploy.State{Paused: "a"}}); err != nil {
		t.Fatalf("the leader's write: %v", err)
	}
	if err := sa.AppendDecisions(ctx, []deploy.Decision{{Kind: deploy.KindLeader, Reason: "a leads"}}); err != nil {
		t.Fatal(err)
	}
	if err := a.Resign(ctx); err != nil {
		t.Fatal(err)
	}
	b := mustElect(t, electConfig(c, "b"))
	var ce *deploy.ConflictError
	if err := sa.AppendDecisions(ctx, []deploy.Decision{{Kind: deploy.KindLaunched}}); !errors.As(err, &ce) || !ce.Fence {
		t.Fatalf("the old leader's write: %v; want a fence conflict", err)
	}
	if _, err := sa.Commit(ctx, deploy.Save{Records: []deploy.Record{{Node: "dc1/x", Incarnation: "dc1/x/-/-", Stage: "base"}}}); !errors.As(err, &ce) || !ce.Fence {
		t.Fatalf("the old leader's record: %v; want a fence conflict", err)
	}
	sb := deploy.NewStore(c, "", "").Fenced(b.Session())
	if err := sb.AppendDecisions(ctx, []deploy.Decision{{Kind: deploy.KindLeader, Reason: "b leads"}}); err != nil {
		t.Fatal(err)
	}
	st, err := sb.Load(ctx)
	if err != nil || len(st.Decisions) != 2 || st.Decisions[1].Reason != "b leads" {
		t.Fatalf("%+v, %v", st, err)
	}
}

// Two writers appending at once never take the same sequence numbers.
func TestDecisionsConcurrentWriters(t *testing.T) {
	t.Parallel()
	_, c := startConsul(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := deploy.NewStore(c, "", "")
	errs := make(chan error, 2)
	for w := range 2 {
		go func() {
			var err error
			for i := 0; i < 20 && err == nil; i++ {
				err = s.AppendDecisions(ctx, []deploy.Decision{{Kind: deploy.KindDue, Node: fmt.Sprintf("w%d-%d", w, i)}})
			}
			errs <- err
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	st, err := s.Load(ctx)
	if err != nil || len(st.Decisions) != 40 {
		t.Fatalf("%d decisions, %v; want 40", len(st.Decisions), err)
	}
	for i, d := range st.Decisions {
		if d.Seq != uint64(i) {
			t.Fatalf("decision %d has seq %d", i, d.Seq)
		}
	}
}
