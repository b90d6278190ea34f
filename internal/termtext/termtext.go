// Package termtext is fleetdeck's one terminal sanitiser: every string that
// comes from Consul, Ansible, logs or run history passes through it before
// it reaches a terminal, in the console and in every CLI output.
//
// Every such string is attacker-controllable: anyone who can register a
// node can put escape sequences in its name, and any task can print them.
// Text is reduced by Sanitize (one line) or SanitizeText (several lines),
// and measured and cut by display cells (not bytes or runes) so wide,
// combining and right-to-left text cannot push a layout out of shape. JSON
// written for people and pipes (AppendJSONString, EscapeJSON) escapes the
// same characters instead of dropping them, so it still decodes to the
// original strings.
package termtext

import (
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/charmbracelet/x/ansi"
)

// Ellipsis marks text cut to fit its column.
const Ellipsis = "…"

// Sanitize returns s reduced to printable, layout-neutral text on one line:
//   - ESC-introduced sequences (CSI, OSC, DCS, SOS, PM, APC and two-byte
//     escapes) are removed whole, terminator included, so neither the
//     sequence nor its payload (an OSC 52 clipboard write, a window title)
//     survives;
//   - the 8-bit C1 forms of the same introducers (U+009B, U+009D, ...) are
//     treated the same way, since some terminals honour them in UTF-8;
//   - other C0 and C1 controls and DEL are dropped; tab, CR, LF, VT, FF and
//     the Unicode line/paragraph separators become a space;
//   - bidirectional overrides, embeddings, isolates and marks are dropped,
//     because they reorder the rest of the screen line, as are zero-width
//     characters with no business in a name (ZWSP, word joiner, BOM, ...);
//   - invalid UTF-8 becomes U+FFFD; leading combining marks are dropped so a
//     cell cannot fuse with the separator before it.
//
// Plain printable ASCII is returned as is, without allocating.
func Sanitize(s string) string {
	if IsPrintableASCII(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == 0x1b:
				i = skipEscape(s, i)
				continue
			case c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f':
				b.WriteByte(' ')
			case c < 0x20 || c == 0x7f:
				// Other C0 controls and DEL: dropped.
			default:
				b.WriteByte(c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b.WriteRune(utf8.RuneError)
		case r == 0x9b: // 8-bit CSI
			i = skipCSI(s, i+size)
			continue
		case r == 0x90 || r == 0x98 || r == 0x9d || r == 0x9e || r == 0x9f: // DCS, SOS, OSC, PM, APC
			i = skipString(s, i+size)
			continue
		case r >= 0x80 && r <= 0x9f:
			// Remaining C1 controls: dropped.
		case r == 0x2028 || r == 0x2029:
			b.WriteByte(' ')
		case isInvisible(r):
			// Dropped.
		case b.Len() == 0 && unicode.Is(unicode.M, r):
			// A leading combining mark would attach to whatever precedes
			// the cell on screen; drop it.
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// IsPrintableASCII reports whether s is only bytes 0x20..0x7e.
func IsPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

// isInvisible reports runes that are dropped because they change how
// neighbouring text is ordered or joined without being visible themselves.
// ZWJ (U+200D) and variation selectors are kept: emoji sequences need them
// and they cannot reorder text.
func isInvisible(r rune) bool {
	switch {
	case r == 0x00ad, // soft hyphen
		r == 0x061c,              // arabic letter mark
		r == 0x180e,              // mongolian vowel separator
		r == 0x200b,              // zero width space
		r == 0x200c,              // zero width non-joiner
		r == 0x200e, r == 0x200f, // LRM, RLM
		r >= 0x202a && r <= 0x202e, // LRE, RLE, PDF, LRO, RLO
		r >= 0x2060 && r <= 0x2064, // word joiner, invisible operators
		r >= 0x2066 && r <= 0x2069, // LRI, RLI, FSI, PDI
		r >= 0x206a && r <= 0x206f, // deprecated format characters
		r == 0xfeff,                // BOM / ZWNBSP
		r >= 0xfff9 && r <= 0xfffb, // interlinear annotation
		r == 0xe0001:               // language tag (deprecated)
		return true
	}
	return false
}

// skipEscape returns the index just past the escape sequence that starts
// with ESC at s[i]. An unterminated string sequence runs to the end of s,
// as it would on a terminal.
func skipEscape(s string, i int) int {
	j := i + 1
	if j >= len(s) {
		return j
	}
	switch s[j] {
	case '[':
		return skipCSI(s, j+1)
	case ']', 'P', 'X', '^', '_':
		return skipString(s, j+1)
	}
	// nF escape: intermediates 0x20-0x2f, then one final byte.
	for j < len(s) && s[j] >= 0x20 && s[j] <= 0x2f {
		j++
	}
	if j < len(s) && s[j] >= 0x30 && s[j] <= 0x7e {
		j++
	}
	return j
}

// skipCSI skips CSI parameters and intermediates starting at s[j] and the
// final byte, if present.
func skipCSI(s string, j int) int {
	for j < len(s) && s[j] >= 0x20 && s[j] <= 0x3f {
		j++
	}
	if j < len(s) && s[j] >= 0x40 && s[j] <= 0x7e {
		j++
	}
	return j
}

// skipString skips the payload of an OSC/DCS/SOS/PM/APC string starting at
// s[j], up to and including its terminator (BEL, ESC \ or 8-bit ST).
func skipString(s string, j int) int {
	for j < len(s) {
		switch {
		case s[j] == 0x07:
			return j + 1
		case s[j] == 0x1b && j+1 < len(s) && s[j+1] == '\\':
			return j + 2
		case s[j] == 0xc2 && j+1 < len(s) && s[j+1] == 0x9c: // U+009C ST
			return j + 2
		}
		j++
	}
	return j
}

// SanitizeLines splits s on line breaks and sanitises each line; blank
// trailing lines are dropped. It is for multi-line text such as check
// output that the detail view shows over several lines.
func SanitizeLines(s string) []string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	parts := strings.Split(s, "\n")
	out := make([]string, 0, len(parts))
	for _, p := range parts {
		out = append(out, strings.TrimRight(Sanitize(p), " "))
	}
	for len(out) > 0 && out[len(out)-1] == "" {
		out = out[:len(out)-1]
	}
	return out
}

// Width returns the number of terminal cells s occupies. s must already
// be sanitised (no escape sequences). ASCII takes the fast path.
func Width(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return ansi.StringWidth(s)
		}
	}
	return len(s)
}

// Truncate cuts sanitised s to at most w cells, ending in Ellipsis when
// something was cut. sw is s's width as returned by Width.
func Truncate(s string, sw, w int) string {
	switch {
	case sw <= w:
		return s
	case w <= 0:
		return ""
	case w == 1:
		return Ellipsis
	}
	if IsPrintableASCII(s) {
		return s[:w-1] + Ellipsis
	}
	return ansi.Truncate(s, w, Ellipsis)
}

// Fit truncates sanitised s (of width sw) to w cells and pads it with spaces
// to exactly w cells, left-aligned, or right-aligned when right is set.
func Fit(s string, sw, w int, right bool) string {
	if sw > w {
		s = Truncate(s, sw, w)
		sw = Width(s)
	}
	if sw >= w {
		return s
	}
	pad := strings.Repeat(" ", w-sw)
	if right {
		return pad + s
	}
	return s + pad
}

// FitLine sanitises nothing: it cuts and pads an already safe line to w.
func FitLine(s string, w int) string {
	return Fit(s, Width(s), w, false)
}

// Wrap breaks sanitised s into lines of at most w cells, preferring spaces
// as break points. It is used for long check output in the detail view.
func Wrap(s string, w int) []string {
	if w <= 0 {
		return nil
	}
	if Width(s) <= w {
		return []string{s}
	}
	return strings.Split(ansi.Wrap(s, w, ""), "\n")
}

// HardWrap breaks sanitised s into lines of exactly w cells (the last may
// be shorter), keeping every character: for text that must be read
// exactly, such as an argv.
func HardWrap(s string, w int) []string {
	if w <= 0 {
		return nil
	}
	if Width(s) <= w {
		return []string{s}
	}
	return strings.Split(ansi.Hardwrap(s, w, true), "\n")
}

// SanitizeText is Sanitize for text of several lines (a run's output, an
// event log): each line is reduced as Sanitize reduces one, and the line
// breaks are kept ("\r\n" becomes "\n"). Tabs, lone carriage returns and
// the rest become spaces or go, as in Sanitize.
func SanitizeText(s string) string {
	if IsPrintableASCII(s) {
		return s
	}
	s = strings.ReplaceAll(s, "\r\n", "\n")
	var b strings.Builder
	b.Grow(len(s))
	for {
		line, rest, more := strings.Cut(s, "\n")
		b.WriteString(Sanitize(line))
		if !more {
			return b.String()
		}
		b.WriteByte('\n')
		s = rest
	}
}

// jsonEscaped reports the runes JSON output escapes beyond what JSON
// requires: those Sanitize would drop or replace (DEL, the C1 controls, the
// line and paragraph separators, bidirectional and other invisible format
// characters). As \uXXXX escapes they reach the terminal as plain text
// and still decode to the same string.
func jsonEscaped(r rune) bool {
	return r == 0x7f || (r >= 0x80 && r <= 0x9f) || r == 0x2028 || r == 0x2029 || isInvisible(r)
}

// appendJSONEscape appends r as one \uXXXX escape, or a UTF-16 surrogate
// pair of them beyond the BMP.
func appendJSONEscape(b []byte, r rune) []byte {
	const hex = "0123456789abcdef"
	one := func(b []byte, u rune) []byte {
		return append(b, '\\', 'u', hex[u>>12&0xf], hex[u>>8&0xf], hex[u>>4&0xf], hex[u&0xf])
	}
	if r > 0xffff {
		hi, lo := utf16.EncodeRune(r)
		return one(one(b, hi), lo)
	}
	return one(b, r)
}

// AppendJSONString appends s to b as a JSON string that is inert on a
// terminal: ", \ and the C0 controls are escaped as JSON requires, and so
// are DEL, the C1 controls, U+2028/U+2029 and the bidirectional and
// invisible format characters Sanitize drops; invalid UTF-8 becomes
// \ufffd. Unlike encoding/json it leaves <, > and & alone. The string
// decodes to s (invalid UTF-8 aside).
func AppendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != 0x7f {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case jsonEscaped(r):
			b = append(b, s[start:i]...)
			b = appendJSONEscape(b, r)
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// EscapeJSON makes JSON text, as encoding/json or AppendJSONString wrote
// it, inert on a terminal: the characters encoding/json leaves raw that a
// terminal acts on or that reorder a line — DEL, the C1 controls
// U+0080–U+009F, the bidirectional and invisible format characters — are
// replaced by their \uXXXX escapes, as are U+2028/U+2029, and invalid UTF-8
// by \ufffd. Outside strings valid JSON has none of these, so every value
// decodes as before. b is returned as is when there is nothing to escape.
func EscapeJSON(b []byte) []byte {
	i := 0
	for i < len(b) && b[i] < 0x7f {
		i++
	}
	if i == len(b) {
		return b
	}
	out := make([]byte, 0, len(b)+len(b)/16)
	start := 0
	for i < len(b) {
		c := b[i]
		if c < 0x7f {
			i++
			continue
		}
		r, size := rune(c), 1
		if c >= utf8.RuneSelf {
			r, size = utf8.DecodeRune(b[i:])
		}
		switch {
		case r == utf8.RuneError && size == 1:
			out = append(out, b[start:i]...)
			out = append(out, `\ufffd`...)
		case jsonEscaped(r):
			out = append(out, b[start:i]...)
			out = appendJSONEscape(out, r)
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	return append(out, b[start:]...)
}
