package tui

import "github.com/fleetdeck/fleetdeck/fleet"

// SGR sequences used to build styles. Styles are plain ANSI prefix strings
// rather than lipgloss styles because View runs after every message and
// styling each cell with lipgloss costs milliseconds at fleet scale; a
// prefix plus a reset per line costs nothing.
const (
	sgrReset   = "\x1b[0m"
	sgrBold    = "\x1b[1m"
	sgrFaint   = "\x1b[2m"
	sgrReverse = "\x1b[7m"
	sgrRed     = "\x1b[31m"
	sgrGreen   = "\x1b[32m"
	sgrYellow  = "\x1b[33m"
	sgrMagenta = "\x1b[35m"
	sgrCyan    = "\x1b[36m"
	sgrBoldRed = "\x1b[1;31m"
	sgrUnder   = "\x1b[4m"
	sgrMatch   = "\x1b[30;43m" // black on yellow: a search match
)

// nodePalette colours the nodes of a multi-node Logs view. Red and yellow
// are left out: they mean error and warning in the severity column.
func nodePalette() []string {
	return []string{
		"\x1b[36m", "\x1b[32m", "\x1b[35m", "\x1b[34m", "\x1b[96m",
		"\x1b[92m", "\x1b[95m", "\x1b[94m", "\x1b[37m", "\x1b[90m",
	}
}

// styles holds every style the console uses, as ANSI prefixes. A style is
// applied as prefix + text + reset; an empty prefix means "no styling" and
// then no reset is written either.
//
// With NO_COLOR the console uses no colour at all: only bold and reverse
// video, and health is always spelled out as a word, so colour is never the
// only signal.
type styles struct {
	reset string
	// health is the row colour per fleet.Health.
	health [4]string
	// cursor marks the selected row; changed marks recently changed rows.
	cursor, changed  string
	title, colHeader string
	ok, warn, bad    string
	dim, prompt, key string
	// match highlights search matches; matchCur those on the cursor line
	// (which is already in reverse video).
	match, matchCur string
	// mono is set without colour (NO_COLOR): where colour alone would
	// carry meaning, a glyph does.
	mono bool
	// nodes colours the nodes of a multi-node Logs view (none in
	// NO_COLOR, where a node column names them).
	nodes []string
}

// newStyles builds the style set for colour or NO_COLOR output.
func newStyles(noColor bool) styles {
	if noColor {
		return styles{
			mono:      true,
			reset:     sgrReset,
			cursor:    sgrReverse,
			changed:   sgrBold,
			title:     sgrBold,
			colHeader: sgrBold,
			bad:       sgrBold,
			prompt:    sgrBold,
			key:       sgrBold,
			match:     sgrReverse,
			matchCur:  sgrUnder,
		}
	}
	return styles{
		reset: sgrReset,
		health: [4]string{
			fleet.HealthPassing:     "",
			fleet.HealthWarning:     sgrYellow,
			fleet.HealthCritical:    sgrRed,
			fleet.HealthMaintenance: sgrMagenta,
		},
		cursor:    sgrReverse,
		changed:   sgrBold,
		title:     sgrBold + sgrCyan,
		colHeader: sgrBold,
		ok:        sgrGreen,
		warn:      sgrYellow,
		bad:       sgrBoldRed,
		dim:       sgrFaint,
		prompt:    sgrBold + sgrCyan,
		key:       sgrBold,
		match:     sgrMatch,
		matchCur:  sgrMatch,
		nodes:     nodePalette(),
	}
}

// healthStyle returns the style of health h.
func (s *styles) healthStyle(h fleet.Health) string {
	if int(h) < len(s.health) {
		return s.health[h]
	}
	return ""
}

// render wraps text in style st, or returns text as is when st is empty.
func (s *styles) render(st, text string) string {
	if st == "" || text == "" {
		return text
	}
	return st + text + s.reset
}

// all returns every prefix the styles can emit, for tests that check that
// nothing but the console's own styling reaches the terminal.
func (s *styles) all() []string {
	out := []string{s.reset, s.cursor, s.changed, s.title, s.colHeader, s.ok, s.warn, s.bad, s.dim, s.prompt, s.key,
		s.match, s.matchCur}
	out = append(out, s.health[:]...)
	out = append(out, s.nodes...)
	return out
}
