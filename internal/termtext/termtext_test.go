package termtext

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

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
			got := Sanitize(c.in)
			if got != c.want {
				t.Fatalf("Sanitize(%q) = %q, want %q", c.in, got, c.want)
			}
			if strings.ContainsRune(got, 0x1b) {
				t.Fatalf("ESC survived: %q", got)
			}
		})
	}
}

func TestSanitizePlainDoesNotAllocate(t *testing.T) {
	s := "node-00042.dc1"
	if n := testing.AllocsPerRun(100, func() { _ = Sanitize(s) }); n != 0 {
		t.Fatalf("Sanitize allocated %v times for plain ASCII", n)
	}
}

func TestSanitizeLines(t *testing.T) {
	got := SanitizeLines("HTTP 500\r\n\x1b[2Jbody: \x1b]52;c;eA==\x07oops\n\n")
	want := []string{"HTTP 500", "body: oops"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("SanitizeLines = %q, want %q", got, want)
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
		if got := Width(c.s); got != c.w {
			t.Errorf("Width(%q) = %d, want %d", c.s, got, c.w)
		}
	}
	long := strings.Repeat("東", 250) + strings.Repeat("a", 250)
	for _, w := range []int{1, 2, 3, 10, 11, 40} {
		got := Fit(long, Width(long), w, false)
		if gw := ansi.StringWidth(got); gw != w {
			t.Errorf("fit to %d gave width %d: %q", w, gw, got)
		}
		if !strings.HasSuffix(strings.TrimRight(got, " "), Ellipsis) {
			t.Errorf("fit to %d lost the Ellipsis: %q", w, got)
		}
	}
	if got := Fit("abc", 3, 6, true); got != "   abc" {
		t.Errorf("right align = %q", got)
	}
	if got := Truncate(strings.Repeat("x", 500), 500, 12); got != strings.Repeat("x", 11)+Ellipsis {
		t.Errorf("ascii Truncate = %q", got)
	}
}

func TestWrap(t *testing.T) {
	for _, l := range Wrap(strings.Repeat("word ", 40)+strings.Repeat("東", 30), 17) {
		if w := Width(l); w > 17 {
			t.Fatalf("wrapped line %q is %d cells", l, w)
		}
	}
}

func TestSanitizeText(t *testing.T) {
	in := "PLAY [web]\r\nok: [\x1b[32mweb-1\x1b[0m]\n\tevil\u202eexe\x1b]52;c;eA==\x07\n\u009b2Jdone\n"
	want := "PLAY [web]\nok: [web-1]\n evilexe\ndone\n"
	if got := SanitizeText(in); got != want {
		t.Fatalf("SanitizeText = %q, want %q", got, want)
	}
	if got := SanitizeText("plain"); got != "plain" {
		t.Fatalf("plain text changed: %q", got)
	}
}

// terminalActive reports the first character in JSON text that a terminal
// would act on or that would reorder the line: any C0 control except the
// line breaks and indentation encoding/json writes, DEL, C1, what Sanitize
// drops as invisible, and invalid UTF-8.
func terminalActive(b []byte) (rune, bool) {
	if !utf8.Valid(b) {
		return utf8.RuneError, true
	}
	for _, r := range string(b) {
		switch {
		case r == '\n' || r == ' ' || r == '\t':
		case r < 0x20 || jsonEscaped(r):
			return r, true
		}
	}
	return 0, false
}

// hostile covers every class the escaping handles.
var hostile = []string{
	"plain",
	"esc \x1b[2J\x1b]0;title\x07 and osc52 \x1b]52;c;Y3VybA==\x1b\\",
	"del\x7f nul\x00 bel\x07 bs\x08",
	"c1 csi \u009b2J osc \u009d0;t\u009c nel \u0085",
	"bidi evil\u202eexe.txt \u2066x\u2069 \u200e\u200f \u061c",
	"invisible \u200b\ufeff\u2060\u00ad\U000e0001",
	"separators a\u2028b\u2029c",
	"html <script>&amp;</script>",
	"quotes \" and \\ and \t\n\r",
	"unicode 节点 👩\u200d💻 e\u0301",
}

func TestAppendJSONStringIsInertAndRoundTrips(t *testing.T) {
	for _, s := range hostile {
		b := AppendJSONString(nil, s)
		if !json.Valid(b) {
			t.Fatalf("%q: not valid JSON: %s", s, b)
		}
		if r, bad := terminalActive(b); bad {
			t.Errorf("%q: U+%04X left raw in %q", s, r, b)
		}
		var back string
		if err := json.Unmarshal(b, &back); err != nil || back != s {
			t.Errorf("%q: decodes to %q (%v)", s, back, err)
		}
	}
	// Exact bytes of one case, so the escapes' form is fixed too.
	got := string(AppendJSONString(nil, "a\x1b\x7f\u0085\u202e\U000e0001<\xff"))
	want := `"a\u001b\u007f\u0085\u202e\udb40\udc01<\ufffd"`
	if got != want {
		t.Errorf("AppendJSONString = %s, want %s", got, want)
	}
}

// Every rune of the BMP and a sample beyond: the output is inert and
// decodes to the rune.
func TestAppendJSONStringEveryRune(t *testing.T) {
	for r := rune(0); r <= 0x10ffff; r++ {
		if r > 0xffff && r%97 != 0 && r != 0xe0001 {
			continue
		}
		if r >= 0xd800 && r <= 0xdfff {
			continue // not encodable in UTF-8
		}
		s := string(r)
		b := AppendJSONString(nil, s)
		if c, bad := terminalActive(b); bad {
			t.Fatalf("U+%04X: U+%04X left raw in %q", r, c, b)
		}
		var back string
		if err := json.Unmarshal(b, &back); err != nil || back != s {
			t.Fatalf("U+%04X: decodes to %q (%v)", r, back, err)
		}
	}
}

func TestEscapeJSONAfterEncodingJSON(t *testing.T) {
	type rec struct {
		Name  string            `json:"name"`
		Lines []string          `json:"lines"`
		Meta  map[string]string `json:"meta"`
		Raw   json.RawMessage   `json:"raw"`
	}
	v := rec{Name: hostile[4], Lines: hostile, Meta: map[string]string{hostile[3]: hostile[2]},
		Raw: json.RawMessage(`{"event":"x\u0085","host":"` + "web\u202e1\u009b" + `"}`)}
	for _, indent := range []bool{false, true} {
		var raw []byte
		var err error
		if indent {
			raw, err = json.MarshalIndent(v, "", "  ")
		} else {
			raw, err = json.Marshal(v)
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, bad := terminalActive(raw); !bad {
			t.Fatal("encoding/json escaped everything itself: the test proves nothing")
		}
		out := EscapeJSON(raw)
		if r, bad := terminalActive(out); bad {
			t.Errorf("U+%04X left raw in %s", r, out)
		}
		var a, b rec
		if err := json.Unmarshal(raw, &a); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(out, &b); err != nil {
			t.Fatalf("escaped JSON does not decode: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(a.Lines, b.Lines) || a.Name != b.Name || !reflect.DeepEqual(a.Meta, b.Meta) || !reflect.DeepEqual(b.Lines, hostile) {
			t.Errorf("escaping changed the values:\n%q\n%q", a, b)
		}
		var ra, rb map[string]string
		if json.Unmarshal(a.Raw, &ra) != nil || json.Unmarshal(b.Raw, &rb) != nil || !reflect.DeepEqual(ra, rb) {
			t.Errorf("raw message changed: %s vs %s", a.Raw, b.Raw)
		}
	}
	plain := []byte(`{"a":"b"}`)
	if out := EscapeJSON(plain); &out[0] != &plain[0] {
		t.Error("plain JSON was copied")
	}
}
