package deploy_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/fleetdeck/fleetdeck/deploy"
)

func TestStoreRoundTripAndCAS(t *testing.T) {
	t.Parallel()
	_, c := startConsul(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := deploy.NewStore(c, "", "")
	now := time.Now().UTC().Truncate(time.Second)
	r, err := s.PutRecord(ctx, deploy.Record{Node: "web-1", Incarnation: "nid-1.i-1", Stage: "base", Status: deploy.StatusFailed,
		RunID: "r1", InputsHash: "h1", Attempts: 1, LastAttempt: now, At: now})
	if err != nil || r.Index == 0 {
		t.Fatalf("PutRecord: %+v, %v", r, err)
	}
	hold := deploy.Hold{Node: "web-2", Reason: "oscillating", By: "provisioner", Since: now}
	if _, err := s.Commit(ctx, deploy.Change{Holds: []deploy.Hold{hold}, Breaker: &deploy.Breaker{Open: true, Reason: "3 of 5 failed", Since: now, Recent: []bool{true, false}}}); err != nil {
		t.Fatal(err)
	}
	st, err := s.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Records) != 1 || st.Records[0].RunID != "r1" || !st.Records[0].LastAttempt.Equal(now) || st.Records[0].Index != r.Index {
		t.Fatalf("records: %+v", st.Records)
	}
	if len(st.Holds) != 1 || st.Holds[0].Reason != "oscillating" || !st.Breaker.Open || len(st.Breaker.Recent) != 2 {
		t.Fatalf("holds %+v breaker %+v", st.Holds, st.Breaker)
	}
	// Two writers (an old and a new leader) both read the record at
	// r.Index: the first write wins, the second is a conflict.
	a, b := r, r
	a.Status, a.Attempts = deploy.StatusSucceeded, 2
	b.Attempts = 2
	if _, err := s.PutRecord(ctx, a); err != nil {
		t.Fatalf("first writer: %v", err)
	}
	var ce *deploy.ConflictError
	if _, err := s.PutRecord(ctx, b); !errors.As(err, &ce) || ce.Fence {
		t.Fatalf("second writer: %v; want a ConflictError on the record", err)
	}
	// A new record where one exists (Index 0) conflicts too.
	r0 := r
	r0.Index = 0
	if _, err := s.PutRecord(ctx, r0); !errors.As(err, &ce) {
		t.Fatalf("create over an existing record: %v", err)
	}
	// Releasing the hold: check-and-set on its index.
	if _, err := s.Commit(ctx, deploy.Change{Released: []deploy.Hold{st.Holds[0]}}); err != nil {
		t.Fatal(err)
	}
	if st, err = s.Snapshot(ctx); err != nil || len(st.Holds) != 0 || st.Records[0].Status != deploy.StatusSucceeded {
		t.Fatalf("after release: %+v, %v", st, err)
	}
}

func TestPauseResume(t *testing.T) {
	t.Parallel()
	_, c := startConsul(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := deploy.NewStore(c, "", "")
	p, err := s.SetPause(ctx, deploy.Pause{Paused: true, Reason: "maintenance window", Who: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	st, err := s.Snapshot(ctx)
	if err != nil || !st.Pause.Paused || st.Pause.Who != "alice" || st.Pause.Reason != "maintenance window" {
		t.Fatalf("paused: %+v, %v", st.Pause, err)
	}
	// A resume based on a stale read (Index 0) is refused.
	var ce *deploy.ConflictError
	if _, err := s.SetPause(ctx, deploy.Pause{Paused: false, Who: "bob"}); !errors.As(err, &ce) {
		t.Fatalf("stale resume: %v", err)
	}
	if _, err := s.SetPause(ctx, deploy.Pause{Paused: false, Reason: "done", Who: "bob", Index: p.Index}); err != nil {
		t.Fatal(err)
	}
	if st, err = s.Snapshot(ctx); err != nil || st.Pause.Paused || st.Pause.Who != "bob" {
		t.Fatalf("resumed: %+v, %v", st.Pause, err)
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
		ds = append(ds, deploy.Decision{Node: fmt.Sprintf("n%d", i), Stage: "base", Kind: "due", Reason: "new node"})
	}
	start := time.Now()
	if err := s.AppendDecisions(ctx, ds[:700]); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendDecisions(ctx, ds[700:]); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d decisions appended in %s", total, time.Since(start))
	st, err := s.Snapshot(ctx)
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
	if _, err := sa.SetPause(ctx, deploy.Pause{Paused: true, Who: "a"}); err != nil {
		t.Fatalf("the leader's write: %v", err)
	}
	if err := sa.AppendDecisions(ctx, []deploy.Decision{{Kind: "leader", Reason: "a leads"}}); err != nil {
		t.Fatal(err)
	}
	if err := a.Resign(ctx); err != nil {
		t.Fatal(err)
	}
	b := mustElect(t, electConfig(c, "b"))
	var ce *deploy.ConflictError
	if err := sa.AppendDecisions(ctx, []deploy.Decision{{Kind: "launched"}}); !errors.As(err, &ce) || !ce.Fence {
		t.Fatalf("the old leader's write: %v; want a fence conflict", err)
	}
	sb := deploy.NewStore(c, "", "").Fenced(b.Session())
	if err := sb.AppendDecisions(ctx, []deploy.Decision{{Kind: "leader", Reason: "b leads"}}); err != nil {
		t.Fatal(err)
	}
	st, err := sb.Snapshot(ctx)
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
				err = s.AppendDecisions(ctx, []deploy.Decision{{Kind: "due", Node: fmt.Sprintf("w%d-%d", w, i)}})
			}
			errs <- err
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	st, err := s.Snapshot(ctx)
	if err != nil || len(st.Decisions) != 40 {
		t.Fatalf("%d decisions, %v; want 40", len(st.Decisions), err)
	}
	for i, d := range st.Decisions {
		if d.Seq != uint64(i) {
			t.Fatalf("decision %d has seq %d", i, d.Seq)
		}
	}
}
