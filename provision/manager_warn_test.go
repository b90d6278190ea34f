package provision

import (
	"strings"
	"testing"
	"time"

	"github.com/fleetdeck/fleetdeck/fleet"
)

// A preview built while a datacenter is still loading its roles and health
// (the first rows come before them) says so: a role's nodes may be missing.
func TestSnapshotWarningsWhileLoading(t *testing.T) {
	s := fleet.NewSnapshot(1, time.Now(), nil, []fleet.ConnState{
		{Datacenter: "dc1", Status: fleet.Connected, Pending: []string{"roles", "health", "check details"}},
		{Datacenter: "dc2", Status: fleet.Connected, Pending: []string{"check details"}},
	}, nil)
	w := strings.Join(snapshotWarnings(s), "\n")
	if !strings.Contains(w, "datacenter dc1 is still loading") || strings.Contains(w, "dc2") {
		t.Errorf("warnings:\n%s", w)
	}
}
