package tui

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/charmbracelet/x/ansi"
)

// Every string that comes from Consul (node names, meta, tags, check output,
// error texts) is attacker-controllable: anyone who can register a node can
// put escape sequences in its name. Those strings pass through sanitize
// before they reach the terminal, and are measured and cut by display cells
// (not bytes or runes) so wide, combining and right-to-left text cannot push
// the layout out of shape.

// ellipsis marks text cut to fit its column.
const ellipsis = "…"

// sanitize returns s reduced to printable, layout-neutral text on one line:
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
func sanitize(s string) string {
	if isPrintableASCII(s) {
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

// isPrintableASCII reports whether s is only bytes 0x20..0x7e.
func isPrintableASCII(s string) bool {
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

// sanitizeLines splits s on line breaks and sanitises each line; blank
// trailing lines are dropped. It is for multi-line text such as check
// output that the detail view shows over several lines.
func sanitizeLines(s string) []string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	parts := strings.Split(s, "\n")
	out := make([]string, 0, len(parts))
	for _, p := range parts {
		out = append(out, strings.TrimRight(sanitize(p), " "))
	}
	for len(out) > 0 && out[len(out)-1] == "" {
		out = out[:len(out)-1]
	}
	return out
}

// cellWidth returns the number of terminal cells s occupies. s must already
// be sanitised (no escape sequences). ASCII takes the fast path.
func cellWidth(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return ansi.StringWidth(s)
		}
	}
	return len(s)
}

// truncate cuts sanitised s to at most w cells, ending in an ellipsis when
// something was cut. sw is s's width as returned by cellWidth.
func truncate(s string, sw, w int) string {
	switch {
	case sw <= w:
		return s
	case w <= 0:
		return ""
	case w == 1:
		return ellipsis
	}
	if isPrintableASCII(s) {
		return s[:w-1] + ellipsis
	}
	return ansi.Truncate(s, w, ellipsis)
}

// fit truncates sanitised s (of width sw) to w cells and pads it with spaces
// to exactly w cells, left-aligned, or right-aligned when right is set.
func fit(s string, sw, w int, right bool) string {
	if sw > w {
		s = truncate(s, sw, w)
		sw = cellWidth(s)
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

// fitLine sanitises nothing: it cuts and pads an already safe line to w.
func fitLine(s string, w int) string {
	return fit(s, cellWidth(s), w, false)
}

// wrap breaks sanitised s into lines of at most w cells, preferring spaces
// as break points. It is used for long check output in the detail view.
func wrap(s string, w int) []string {
	if w <= 0 {
		return nil
	}
	if cellWidth(s) <= w {
		return []string{s}
	}
	return strings.Split(ansi.Wrap(s, w, ""), "\n")
}

// hardWrap breaks sanitised s into lines of exactly w cells (the last may
// be shorter), keeping every character: for text that must be read
// exactly, such as an argv.
func hardWrap(s string, w int) []string {
	if w <= 0 {
		return nil
	}
	if cellWidth(s) <= w {
		return []string{s}
	}
	return strings.Split(ansi.Hardwrap(s, w, true), "\n")
}
