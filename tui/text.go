package tui

import "github.com/fleetdeck/fleetdeck/internal/termtext"

// Every string that comes from Consul (node names, meta, tags, check output,
// error texts), Ansible or the logs is attacker-controllable: anyone who can
// register a node can put escape sequences in its name. Those strings pass
// through the one terminal sanitiser, internal/termtext, before they reach
// the terminal, and are measured and cut by display cells (not bytes or
// runes) so wide, combining and right-to-left text cannot push the layout
// out of shape. These short names keep the console's many call sites
// readable; termtext's tests cover the behaviour.

// ellipsis marks text cut to fit its column.
const ellipsis = termtext.Ellipsis

// sanitize is termtext.Sanitize: printable, layout-neutral text on one line.
func sanitize(s string) string { return termtext.Sanitize(s) }

// isPrintableASCII is termtext.IsPrintableASCII.
func isPrintableASCII(s string) bool { return termtext.IsPrintableASCII(s) }

// sanitizeLines is termtext.SanitizeLines.
func sanitizeLines(s string) []string { return termtext.SanitizeLines(s) }

// cellWidth is termtext.Width: the width of sanitised s in terminal cells.
func cellWidth(s string) int { return termtext.Width(s) }

// truncate is termtext.Truncate.
func truncate(s string, sw, w int) string { return termtext.Truncate(s, sw, w) }

// fit is termtext.Fit.
func fit(s string, sw, w int, right bool) string { return termtext.Fit(s, sw, w, right) }

// fitLine is termtext.FitLine.
func fitLine(s string, w int) string { return termtext.FitLine(s, w) }

// wrap is termtext.Wrap.
func wrap(s string, w int) []string { return termtext.Wrap(s, w) }

// hardWrap is termtext.HardWrap.
func hardWrap(s string, w int) []string { return termtext.HardWrap(s, w) }
