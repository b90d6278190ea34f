package roles_test

import (
	"slices"
	"testing"

	"github.com/fleetdeck/fleetdeck/roles"
)

// TestLinkedNodes: the nodes a run's metadata links are those RunLinks
// wrote, and nothing else of the metadata.
func TestLinkedNodes(t *testing.T) {
	meta := roles.RunLinks([]roles.Desired{{Datacenter: "dc1", Node: "app-01", Generation: 3}, {Datacenter: "dc2", Node: "db.7", Generation: 1}})
	meta["other"] = "x"
	meta["fleetdeck.roles/"] = "1"
	got := roles.LinkedNodes(meta)
	slices.Sort(got)
	if want := []string{"dc1/app-01", "dc2/db.7"}; !slices.Equal(got, want) {
		t.Fatalf("LinkedNodes = %q, want %q", got, want)
	}
	for _, k := range got {
		dc, node, _ := cutKey(k)
		if roles.LinkedGeneration(meta, dc, node) == 0 {
			t.Errorf("%s: no generation linked", k)
		}
	}
	if got := roles.LinkedNodes(nil); len(got) != 0 {
		t.Fatalf("LinkedNodes(nil) = %q", got)
	}
}

func cutKey(k string) (string, string, bool) {
	for i := range len(k) {
		if k[i] == '/' {
			return k[:i], k[i+1:], true
		}
	}
	return "", k, false
}
