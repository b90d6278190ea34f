package provision

import (
	"maps"
	"testing"
)

// The metadata encoding round-trips, and every cut of it (a damaged
// database) is an error rather than a panic or a silently shorter map.
func TestHistMetaEncoding(t *testing.T) {
	meta := map[string]string{"fleetdeck.roles/dc1/web-1": "7", "a": "", "ü": "ünïcode value"}
	b := histEncodeMeta(meta)
	got, err := histDecodeMeta(b)
	if err != nil || !maps.Equal(got, meta) {
		t.Fatalf("round trip: %v, %v", got, err)
	}
	for i := range len(b) {
		if m, err := histDecodeMeta(b[:i]); err == nil {
			t.Errorf("decoding the first %d of %d bytes: %v, no error", i, len(b), m)
		}
	}
	if _, err := histDecodeMeta(append(b, 0)); err == nil {
		t.Error("trailing bytes decoded")
	}
	if _, err := histDecodeMeta([]byte{1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}); err == nil {
		t.Error("a huge count decoded")
	}
}
