package provision

import "testing"

// Re-run subjects read as sentences: singular and plural, each reason
// named once, in a fixed order.
func TestRerunSubject(t *testing.T) {
	for _, c := range []struct {
		n       int
		reasons []rerunReason
		want    string
	}{
		{1, nil, "the 1 host of run R"},
		{4, nil, "the 4 hosts of run R"},
		{1, []rerunReason{rerunFailed}, "the 1 host of run R that failed"},
		{3, []rerunReason{rerunFailed}, "the 3 hosts of run R that failed"},
		{1, []rerunReason{rerunUnreachable}, "the 1 host of run R that was unreachable"},
		{2, []rerunReason{rerunUnreachable}, "the 2 hosts of run R that were unreachable"},
		{1, []rerunReason{rerunUnfinished}, "the 1 host of run R that did not finish"},
		{3, []rerunReason{rerunUnfinished, rerunFailed}, "the 3 hosts of run R that failed or did not finish"},
		{5, []rerunReason{rerunUnfinished, rerunUnreachable, rerunFailed}, "the 5 hosts of run R that failed, were unreachable or did not finish"},
	} {
		var reasons map[rerunReason]bool
		if c.reasons != nil {
			reasons = map[rerunReason]bool{}
			for _, r := range c.reasons {
				reasons[r] = true
			}
		}
		if got := rerunSubject(c.n, "R", reasons); got != c.want {
			t.Errorf("%d hosts %v: %q, want %q", c.n, c.reasons, got, c.want)
		}
	}
}

// The hosts F re-runs: failed or unreachable in the recap, or missing
// from it (never processed; every host of a run cut short, which has no
// recap).
func TestRerunReasons(t *testing.T) {
	targets := []RunTarget{{Host: "a"}, {Host: "b"}, {Host: "c"}, {Host: "d"}}
	got := rerunReasons(RunRecord{Targets: targets, Recap: map[string]HostRecap{
		"a": {OK: 2}, "b": {Failed: 1, OK: 1}, "c": {Unreachable: 1}, // d: not in the recap
	}})
	want := map[string]rerunReason{"b": rerunFailed, "c": rerunUnreachable, "d": rerunUnfinished}
	if len(got) != len(want) {
		t.Fatalf("reasons %v, want %v", got, want)
	}
	for h, r := range want {
		if got[h] != r {
			t.Errorf("%s: %v, want %v", h, got[h], r)
		}
	}
	if got := rerunReasons(RunRecord{Targets: targets}); len(got) != 4 {
		t.Errorf("a run cut short (no recap): %v, want every host", got)
	}
}
