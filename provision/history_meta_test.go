package provision_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/fleetdeck/fleetdeck/provision"
)

// Metadata is written once with the record, survives every later write of
// the summary (status, events, output, end) and a reopened history, comes
// back from List and Get, and goes with the record when it is pruned.
func TestHistoryKeepsRunMeta(t *testing.T) {
	ctx := context.Background()
	h := openHistory(t, provision.HistoryConfig{})
	meta := map[string]string{"fleetdeck.roles/dc1/web-1": "7", "fleetdeck.roles/dc1/web-2": "3"}
	r, err := h.Create(ctx, provision.RunRecord{Playbook: "roles.yml", Meta: meta, HostVars: []string{"fleetdeck_services"},
		Targets: []provision.RunTarget{{Host: "web-1", Node: "web-1", Datacenter: "dc1"}}})
	if err != nil {
		t.Fatal(err)
	}
	meta["fleetdeck.roles/dc1/web-1"] = "changed by the caller after Create"
	plain, err := h.Create(ctx, provision.RunRecord{Playbook: "site.yml"})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.SetStatus(ctx, r.ID, provision.RunRunning, ""); err != nil {
		t.Fatal(err)
	}
	if err := h.AppendEvents(ctx, r.ID, []byte(`{"event":"playbook_on_start"}`)); err != nil {
		t.Fatal(err)
	}
	if err := h.AppendOutput(ctx, r.ID, []byte("PLAY\n")); err != nil {
		t.Fatal(err)
	}
	if err := h.Finish(ctx, r.ID, provision.RunResult{Status: provision.RunOK, ExitCode: intp(0)}); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"fleetdeck.roles/dc1/web-1": "7", "fleetdeck.roles/dc1/web-2": "3"}

	h2 := openHistory(t, provision.HistoryConfig{Path: h.Path()}) // a restart
	got, err := h2.Get(ctx, r.ID)
	if err != nil || !reflect.DeepEqual(got.Meta, want) || !slices.Equal(got.HostVars, []string{"fleetdeck_services"}) {
		t.Fatalf("Get: meta %v host vars %v (%v)", got.Meta, got.HostVars, err)
	}
	page, err := h2.List(ctx, provision.ListOptions{})
	if err != nil || len(page.Runs) != 2 {
		t.Fatalf("List: %+v, %v", page, err)
	}
	for _, rec := range page.Runs {
		switch rec.ID {
		case r.ID:
			if !reflect.DeepEqual(rec.Meta, want) || !slices.Equal(rec.HostVars, []string{"fleetdeck_services"}) {
				t.Errorf("listed meta %v host vars %v", rec.Meta, rec.HostVars)
			}
		case plain.ID:
			if rec.Meta != nil || rec.HostVars != nil {
				t.Errorf("a run without metadata lists %v %v", rec.Meta, rec.HostVars)
			}
		}
	}
	// By host too (the byhost index path of List).
	page, err = h2.List(ctx, provision.ListOptions{Host: "web-1"})
	if err != nil || len(page.Runs) != 1 || !reflect.DeepEqual(page.Runs[0].Meta, want) {
		t.Errorf("List by host: %+v, %v", page, err)
	}

	if _, err := h.Create(ctx, provision.RunRecord{Meta: map[string]string{"bad key": "v"}}); !errors.Is(err, provision.ErrRunMeta) {
		t.Errorf("Create with bad metadata: %v", err)
	}

	if _, err := h2.Prune(ctx, provision.PruneOptions{Keep: 1}); err != nil {
		t.Fatal(err)
	}
	// A new record that would reuse nothing: the pruned one's metadata is
	// gone with it (Get says not found, not a half record).
	if _, err := h2.Get(ctx, r.ID); !errors.Is(err, provision.ErrRunNotFound) {
		t.Errorf("pruned run: %v", err)
	}
}

// BenchmarkHistoryListMeta measures History.List of 200 runs (what the
// runs view asks for) with no metadata, with a 10-node role change's links
// on each run, and with 1,000 entries (the limit) on each; and the cost of
// one AppendEvents batch on a run with 1,000 entries, which must not grow
// with the metadata (it is not part of the summary that batch rewrites).
func BenchmarkHistoryListMeta(b *testing.B) {
	ctx := context.Background()
	for _, n := range []int{0, 10, 1000} {
		h, err := provision.OpenHistory(ctx, provision.HistoryConfig{Path: filepath.Join(b.TempDir(), "history.db")})
		if err != nil {
			b.Fatal(err)
		}
		meta := map[string]string{}
		for i := range n {
			meta[fmt.Sprintf("fleetdeck.roles/dc1/node-%04d", i)] = fmt.Sprint(1000 + i)
		}
		var last string
		for range 200 {
			r, err := h.Create(ctx, provision.RunRecord{Playbook: "roles.yml", Meta: meta,
				Targets: []provision.RunTarget{{Host: "web-1", Node: "web-1", Datacenter: "dc1"}}})
			if err != nil {
				b.Fatal(err)
			}
			last = r.ID
		}
		b.Run(fmt.Sprintf("list200/meta=%d", n), func(b *testing.B) {
			for b.Loop() {
				page, err := h.List(ctx, provision.ListOptions{Limit: 200})
				if err != nil || len(page.Runs) != 200 || len(page.Runs[0].Meta) != n {
					b.Fatalf("%d runs, %v", len(page.Runs), err)
				}
			}
		})
		b.Run(fmt.Sprintf("appendEvents/meta=%d", n), func(b *testing.B) {
			line := []byte(`{"event":"runner_on_ok","host":"web-1","time":"` + time.Now().Format(time.RFC3339) + `"}`)
			for b.Loop() {
				if err := h.AppendEvents(ctx, last, line); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
