package provision

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ErrRunMeta: run metadata (LaunchRequest.Meta) that ValidateRunMeta
// refuses.
var ErrRunMeta = errors.New("bad run metadata")

// Bounds of a run's metadata. Metadata is for links and labels that other
// parts of fleetdeck put on a run (the roles package links a run to the
// generation it applies on each node, one entry per node), not for data:
// it is returned with every run the manager lists, so it must stay small.
const (
	RunMetaMaxEntries  = 1000
	RunMetaMaxKeyBytes = 256
	RunMetaMaxValue    = 1 << 10
)

// runMetaKeyRE: keys are printed by `fleetdeck runs`, used in filters and
// compared byte for byte; this set needs no quoting or escaping anywhere
// and cannot hide anything on a terminal. "/" is allowed for namespaces
// ("fleetdeck.roles/<dc>/<node>").
var runMetaKeyRE = regexp.MustCompile(`^[A-Za-z0-9._/-]+$`)

// ValidateRunMeta checks a run's metadata: at most RunMetaMaxEntries
// entries; keys of 1–RunMetaMaxKeyBytes bytes of [A-Za-z0-9._/-]; values
// of at most RunMetaMaxValue bytes of UTF-8 text without control
// characters (newlines included: values reach terminals and one-line
// lists). The error wraps ErrRunMeta and names the key.
func ValidateRunMeta(meta map[string]string) error {
	if len(meta) > RunMetaMaxEntries {
		return fmt.Errorf("%w: %d entries, at most %d", ErrRunMeta, len(meta), RunMetaMaxEntries)
	}
	for k, v := range meta {
		switch {
		case k == "":
			return fmt.Errorf("%w: an empty key", ErrRunMeta)
		case len(k) > RunMetaMaxKeyBytes:
			return fmt.Errorf("%w: key %q… is %d bytes, at most %d", ErrRunMeta, utf8Prefix(k, 40), len(k), RunMetaMaxKeyBytes)
		case !runMetaKeyRE.MatchString(k):
			return fmt.Errorf("%w: key %q: only letters, digits and . _ / - are allowed", ErrRunMeta, runShort(k))
		case len(v) > RunMetaMaxValue:
			return fmt.Errorf("%w: the value of %s is %d bytes, at most %d", ErrRunMeta, k, len(v), RunMetaMaxValue)
		case !utf8.ValidString(v):
			return fmt.Errorf("%w: the value of %s is not UTF-8", ErrRunMeta, k)
		case strings.ContainsFunc(v, unicode.IsControl):
			return fmt.Errorf("%w: the value of %s has control characters (newlines included)", ErrRunMeta, k)
		}
	}
	return nil
}
