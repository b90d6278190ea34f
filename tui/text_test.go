package tui

import (
	"strings"
	"testing"

	"github.com/charmbracelet/x/ansi"
)

func TestSanitize(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"plain", "node-1", "node-1"},
		{"osc title BEL", "a\x1b]0;pwned\x07b", "ab"},
		{"osc title ST", "a\x1b]0;pwned\x1b\\b", "ab"},
		{"osc52 clipboard", "x\x1b]52;c;Y3VybCBldmlsLnNoIHwgc2g=\x07y", "xy"},
		{"clear screen", "\x1b[2Jvisible", "visible"},
		{"sgr", "\x1b[31;1mred\x1b[0m", "red"},
		{"csi private", "\x1b[?1049hz", "z"},
		{"dcs", "a\x1bPq#0;2;0;0;0\x1b\\b", "ab"},
		{"two-byte esc", "a\x1bcb", "ab"},
		{"charset esc", "a\x1b(0b", "ab"},
		{"lone esc at end", "abc\x1b", "abc"},
		{"unterminated osc eats rest", "ok\x1b]8;;http://x", "ok"},
		{"c1 csi", "a\u009b2Jb", "ab"},
		{"c1 osc", "a\u009d0;t\u009cb", "ab"},
		{"c1 other", "a\u0085b", "ab"},
		{"c0 and del", "a\x00\x07\x08\x7fb", "ab"},
		{"whitespace to space", "a\tb\nc\rd", "a b c d"},
		{"rtl override", "evil\u202eexe.txt", "evilexe.txt"},
		{"isolates and marks", "\u2066a\u2069\u200e\u200fb\u061c", "ab"},
		{"zero width", "a\u200bb\ufeffc\u2060d", "abcd"},
		{"invalid utf8", "a\xffb", "a\ufffdb"},
		{"leading combining", "\u0301abc", "abc"},
		{"emoji zwj kept", "👩\u200d💻", "👩\u200d💻"},
		{"cjk kept", "节点-東京", "节点-東京"},
		{"line separator", "a\u2028b", "a b"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := sanitize(c.in)
			if got != c.want {
				t.Fatalf("sanitize(%q) = %q, want %q", c.in, got, c.want)
			}
			if strings.ContainsRune(got, 0x1b) {
				t.Fatalf("ESC survived: %q", got)
			}
		})
	}
}

func TestSanitizePlainDoesNotAllocate(t *testing.T) {
	s := "node-00042.dc1"
	if n := testing.AllocsPerRun(100, func() { _ = sanitize(s) }); n != 0 {
		t.Fatalf("sanitize allocated %v times for plain ASCII", n)
	}
}

func TestSanitizeLines(t *testing.T) {
	got := sanitizeLines("HTTP 500\r\n\x1b[2Jbody: \x1b]52;c;eA==\x07oops\n\n")
	want := []string{"HTTP 500", "body: oops"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("sanitizeLines = %q, want %q", got, want)
	}
}

func TestWidthAndTruncate(t *testing.T) {
	cases := []struct {
		s string
		w int
	}{
		{"hello", 5},
		{"节点", 4},
		{"👩\u200d💻x", 3},
		{"e\u0301", 1},
	}
	for _, c := range cases {
		if got := cellWidth(c.s); got != c.w {
			t.Errorf("cellWidth(%q) = %d, want %d", c.s, got, c.w)
		}
	}
	long := strings.Repeat("東", 250) + strings.Repeat("a", 250)
	for _, w := range []int{1, 2, 3, 10, 11, 40} {
		got := fit(long, cellWidth(long), w, false)
		if gw := ansi.StringWidth(got); gw != w {
			t.Errorf("fit to %d gave width %d: %q", w, gw, got)
		}
		if !strings.HasSuffix(strings.TrimRight(got, " "), ellipsis) {
			t.Errorf("fit to %d lost the ellipsis: %q", w, got)
		}
	}
	if got := fit("abc", 3, 6, true); got != "   abc" {
		t.Errorf("right align = %q", got)
	}
	if got := truncate(strings.Repeat("x", 500), 500, 12); got != strings.Repeat("x", 11)+ellipsis {
		t.Errorf("ascii truncate = %q", got)
	}
}

func TestWrap(t *testing.T) {
	for _, l := range wrap(strings.Repeat("word ", 40)+strings.Repeat("東", 30), 17) {
		if w := cellWidth(l); w > 17 {
			t.Fatalf("wrapped line %q is %d cells", l, w)
		}
	}
}
