package tui

import (
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	tea "charm.land/bubbletea/v2"

	"github.com/fleetdeck/fleetdeck/logview"
)

// Log entries are hostile: escape sequences, megabyte lines, invalid
// UTF-8, newlines. Each is cut to a bounded number of bytes (at a rune
// boundary) before sanitize, so a 1 MB line costs what a screen line
// costs, and rendered once per layout (width, time mode, wrap): the
// stream draws a screenful of cached lines per frame.

const (
	// maxWrapLines bounds the lines one entry takes when wrapping; the
	// expanded entry (enter) shows all of it.
	maxWrapLines = 8
	// maxWrapBytes bounds the text read for a wrapped entry.
	maxWrapBytes = 16 << 10
	// expandMax bounds the payload the expanded entry shows, and
	// expandMaxLines its lines.
	expandMax      = 256 << 10
	expandMaxLines = 20_000
	// copyMax bounds the payload put on the clipboard: terminals cap OSC 52
	// (the base64 text is a third longer); copyFieldMax bounds each other
	// field.
	copyMax      = 64 << 10
	copyFieldMax = 4 << 10
	// lineCacheMax bounds the per-entry line cache; beyond it the cache
	// starts over (a screenful is re-rendered).
	lineCacheMax = 8192
)

// logLine is one entry rendered for one layout.
type logLine struct {
	gen uint64
	// head is the time, severity and node columns (with a trailing
	// space), plain for the cursor line and styled (shead) for others.
	head, shead string
	// text is the sanitised text: one line, or up to maxWrapLines when
	// wrapping, each at most the text column's width.
	text []string
}

// cutBytes returns s cut to at most n bytes at a rune boundary.
func cutBytes(s string, n int) (string, bool) {
	if len(s) <= n {
		return s, false
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n], true
}

// quoteUnsafe returns s as it is when the sanitiser would leave it alone,
// else Go-quoted (control and invisible characters escaped), so hostile
// bytes are visible as such.
func quoteUnsafe(s string) string {
	if sanitize(s) == s {
		return s
	}
	return strconv.Quote(s)
}

// sevLabel is the severity column: four cells.
func sevLabel(s logview.Severity) string {
	switch {
	case s >= logview.Emergency:
		return "EMRG"
	case s >= logview.Alert:
		return "ALRT"
	case s >= logview.Critical:
		return "CRIT"
	case s >= logview.Error:
		return "ERR "
	case s >= logview.Warning:
		return "WARN"
	case s >= logview.Notice:
		return "NOTE"
	case s >= logview.Info:
		return "INFO"
	case s >= logview.Debug:
		return "DEBG"
	}
	return "DFLT"
}

// floorLabel names a severity floor in the view's title.
func floorLabel(s logview.Severity) string {
	if s <= logview.Default {
		return "all levels"
	}
	return "≥" + strings.TrimSpace(sevLabel(s))
}

// sevStyle colours the severity column.
func (st *styles) sevStyle(s logview.Severity) string {
	switch {
	case s >= logview.Error:
		return st.bad
	case s >= logview.Warning:
		return st.warn
	case s < logview.Info:
		return st.dim
	}
	return ""
}

// stamp formats an entry's time in the view's mode.
func (ls *logsView) stamp(t time.Time) string {
	switch ls.tmode {
	case timeLocal:
		return t.Local().Format("15:04:05.000")
	case timeRel:
		return relStamp(t.Sub(ls.q.Incident))
	}
	return t.UTC().Format("15:04:05.000")
}

// relStamp renders an offset from the incident: "+00:01:02.345".
func relStamp(d time.Duration) string {
	sign := byte('+')
	if d < 0 {
		sign, d = '-', -d
	}
	ms := int64(d / time.Millisecond)
	h, ms := ms/3_600_000, ms%3_600_000
	mi, ms := ms/60_000, ms%60_000
	s, ms := ms/1000, ms%1000
	b := make([]byte, 0, 14)
	b = append(b, sign)
	b = appendPad(b, h, 2)
	b = append(b, ':')
	b = appendPad(b, mi, 2)
	b = append(b, ':')
	b = appendPad(b, s, 2)
	b = append(b, '.')
	b = appendPad(b, ms, 3)
	return string(b)
}

// appendPad appends n zero-padded to width digits.
func appendPad(b []byte, n int64, width int) []byte {
	s := strconv.FormatInt(n, 10)
	for i := len(s); i < width; i++ {
		b = append(b, '0')
	}
	return append(b, s...)
}

// timeWidth is the width of the time column.
func (ls *logsView) timeWidth() int {
	if ls.tmode == timeRel {
		return 13
	}
	return 12
}

// headWidth is the width of the gutter and the columns before the text.
func (ls *logsView) headWidth() int {
	w := 1 + ls.timeWidth() + 1 + 4 + 1
	if ls.multi {
		w += ls.nodeW + 1
	}
	return w
}

// checkLayout starts the line cache over when what lines depend on
// changed.
func (ls *logsView) checkLayout() {
	key := ls.w<<3 | int(ls.tmode)<<1
	if ls.wrap {
		key |= 1
	}
	if key != ls.lkey || len(ls.lines) > lineCacheMax {
		ls.lkey = key
		ls.lgen++
		clear(ls.lines)
	}
}

// logLineOf returns entry e rendered for the current layout, cached.
func (ls *logsView) logLineOf(e *logview.Entry) *logLine {
	if l := ls.cachedLine(e); l != nil {
		return l
	}
	l := ls.renderLine(e)
	ls.lines[e] = l
	return l
}

// cachedLine returns entry e's cached line for the current layout, or nil.
func (ls *logsView) cachedLine(e *logview.Entry) *logLine {
	if l := ls.lines[e]; l != nil && l.gen == ls.lgen {
		return l
	}
	return nil
}

// lineFor returns entry e's line for drawing: cached by refresh, or
// rendered now (without caching: drawing changes nothing).
func (ls *logsView) lineFor(e *logview.Entry) *logLine {
	if l := ls.cachedLine(e); l != nil {
		return l
	}
	return ls.renderLine(e)
}

// renderLine renders entry e for the current layout.
func (ls *logsView) renderLine(e *logview.Entry) *logLine {
	st := &ls.s.st
	l := &logLine{gen: ls.lgen}
	ts := ls.stamp(e.Time)
	sev := sevLabel(e.Severity)
	l.head = ts + " " + sev + " "
	l.shead = st.render(st.dim, ts) + " " + st.render(st.sevStyle(e.Severity), sev) + " "
	if ls.multi {
		n := sanitize(e.Node)
		n = fit(n, cellWidth(n), ls.nodeW, false)
		l.head += n + " "
		l.shead += st.render(ls.nodeStyle[e.Node], n) + " "
	}
	tw := max(ls.w-ls.headWidth(), 1)
	if ls.wrap {
		raw, cut := cutBytes(e.Text, maxWrapBytes)
		for i, p := range sanitizeLines(raw) {
			if i > 0 {
				// A line break inside the entry is marked, so that text
				// after it cannot pass for an entry of its own.
				p = "↵ " + p
			}
			l.text = append(l.text, wrap(p, tw)...)
			if len(l.text) > maxWrapLines {
				cut = true
				break
			}
		}
		if len(l.text) > maxWrapLines {
			l.text = l.text[:maxWrapLines]
		}
		if cut && len(l.text) > 0 {
			last := l.text[len(l.text)-1]
			lw := cellWidth(last)
			l.text[len(l.text)-1] = truncate(last, lw, min(lw, tw-1)) + ellipsis
		}
	} else {
		// A screen line needs at most a few bytes per cell; the rest of a
		// long line is never shown.
		raw, _ := cutBytes(e.Text, 8*tw+256)
		t := sanitize(raw)
		l.text = []string{truncate(t, cellWidth(t), tw)}
	}
	if len(l.text) == 0 {
		l.text = []string{""}
	}
	return l
}

// refresh lays the view out for the next frame: the cursor and the first
// line shown, the visible entries' lines, the incident marker, the
// histogram, and the footer's position.
func (ls *logsView) refresh() {
	ls.checkLayout()
	ls.frameSel, ls.frameTop = ls.layoutLogs()
	ls.marker()
	if ls.frameTop >= 0 {
		skip, n, h := ls.skip, 0, ls.logsHeight()
		for i := ls.frameTop; i >= 0 && n < h+skip; i = ls.nextKept(i + 1) {
			n += ls.entryHeight(i) // renders and caches the entry's line
		}
	}
	now := ls.s.now()
	ls.histEnd = ls.windowEnd(now)
	if _, _, n := ls.histAxis(); n >= 8 && (ls.histStale || ls.histN != n) {
		ls.hist = ls.buf.Histogram(ls.q.From, ls.histEnd, n)
		ls.histStale, ls.histN = false, n
	}
	ls.countShown()
}

// view draws the Logs view: title, histogram, status, then the visible
// window of the stream. It reads what refresh laid out.
func (ls *logsView) view(now time.Time, line func(string)) {
	st := &ls.s.st
	line(st.render(st.colHeader, fitLine("  Logs "+sanitize(ls.q.Title)+" · "+ls.windowText()+" · "+ls.tmode.String()+
		" · "+floorLabel(ls.floor)+wrapLabel(ls.wrap), ls.w)))
	line(ls.histLine())
	line(ls.logsStatus(now))

	h := ls.logsHeight()
	sel, top := ls.frameSel, ls.frameTop
	if top < 0 {
		line(fitLine("  "+ls.logsEmptyText(), ls.w))
		return
	}
	mi, mEnd := ls.markIdx, ls.markEnd
	lsearch := strings.ToLower(ls.search)
	skip, n := ls.skip, 0
	emit := func(s string) {
		if skip > 0 {
			skip--
			return
		}
		if n < h {
			line(s)
			n++
		}
	}
	for i := top; i >= 0 && n < h; i = ls.nextKept(i + 1) {
		if i == mi && !mEnd {
			emit(ls.markerLine())
		}
		if g := ls.gapBefore(i); g != "" {
			emit(st.render(st.dim, fitLine(g, ls.w)))
		}
		l := ls.lineFor(ls.buf.At(i))
		for k := range l.text {
			emit(ls.logsTextLine(l, k, i == sel, lsearch))
		}
		if i == mi && mEnd {
			emit(ls.markerLine())
		}
	}
}

// gapMin is the shortest silence between two entries that the stream
// marks ("no entries between …"): a minute, or a sixtieth of a wider
// window.
func (ls *logsView) gapMin() time.Duration {
	d := time.Minute
	if !ls.q.To.IsZero() {
		d = max(d, ls.q.To.Sub(ls.q.From)/60)
	}
	return d
}

// gapBefore returns the line that marks unlisted time before entry i:
// a silence since the entry before it, or, for the first entry of a
// window listed whole, since the window's start; "" when there is none.
// The marker says the time was listed and holds nothing, so that a quiet
// stretch is not mistaken for entries scrolled past or not yet read.
func (ls *logsView) gapBefore(i int) string {
	from, ok := ls.gapFrom(i)
	if !ok {
		return ""
	}
	return "  ···· no entries between " + ls.clock(from) + " and " + ls.clock(ls.buf.At(i).Time)
}

// gapFrom returns the start of the silence before entry i, if there is
// one worth marking.
func (ls *logsView) gapFrom(i int) (time.Time, bool) {
	e := ls.buf.At(i)
	var from time.Time
	switch {
	case i > 0:
		from = ls.buf.At(i - 1).Time
	case ls.buf.Dropped() == 0 && ls.got && ls.streamStatus.Phase != logview.Listing && e.Time.After(ls.q.From):
		from = ls.q.From
	default:
		return from, false
	}
	return from, e.Time.Sub(from) >= ls.gapMin()
}

func wrapLabel(on bool) string {
	if on {
		return " · wrap"
	}
	return ""
}

// logsEmptyText explains an empty stream.
func (ls *logsView) logsEmptyText() string {
	switch {
	case ls.err != "" && ls.buf.Len() == 0:
		return "no entries: " + ls.err
	case ls.buf.Len() == 0 && len(ls.streamStatus.Unmapped) > 0 && len(ls.streamStatus.Unmapped) == len(ls.q.Nodes):
		return "no node here has a log mapping (an instance id in its meta): see the mapping settings"
	case ls.buf.Len() > 0:
		return "nothing at " + floorLabel(ls.floor) + " (v changes the floor)"
	case !ls.got || ls.streamStatus.Phase == logview.Listing:
		return "waiting for entries…"
	case ls.streamStatus.Phase == logview.Live:
		return "no entries in the window yet; new ones appear here"
	}
	return "no entries in this window (a digit key widens it)"
}

// logsTextLine draws line k of an entry: the columns (first line) or
// their width in blanks, then the text with search matches highlighted.
func (ls *logsView) logsTextLine(l *logLine, k int, cursor bool, lsearch string) string {
	st := &ls.s.st
	var b strings.Builder
	b.Grow(ls.w + 32)
	text := l.text[k]
	if cursor {
		b.WriteString(st.cursor)
		if k == 0 {
			b.WriteByte('>')
			b.WriteString(l.head)
		} else {
			b.WriteString(strings.Repeat(" ", ls.headWidth()))
		}
		tw := max(ls.w-ls.headWidth(), 1)
		text = fit(text, cellWidth(text), tw, false)
		highlight(&b, text, lsearch, st.matchCur, st.cursor, st.reset)
		b.WriteString(st.reset)
		return b.String()
	}
	if k == 0 {
		b.WriteByte(' ')
		b.WriteString(l.shead)
	} else {
		b.WriteString(strings.Repeat(" ", ls.headWidth()))
	}
	highlight(&b, text, lsearch, st.match, "", st.reset)
	return b.String()
}

// highlight writes safe text with each case-insensitive occurrence of
// lsearch in style hl, returning to style base after each. When lowering
// changes the text's length (some non-ASCII letters), the whole text is
// highlighted instead.
func highlight(b *strings.Builder, text, lsearch, hl, base, reset string) {
	if lsearch == "" || hl == "" || !containsFold(text, lsearch) {
		b.WriteString(text)
		return
	}
	lower := strings.ToLower(text)
	if len(lower) != len(text) {
		b.WriteString(hl + text + reset + base)
		return
	}
	for {
		j := strings.Index(lower, lsearch)
		if j < 0 {
			b.WriteString(text)
			return
		}
		b.WriteString(text[:j])
		b.WriteString(hl + text[j:j+len(lsearch)] + reset + base)
		text, lower = text[j+len(lsearch):], lower[j+len(lsearch):]
	}
}

// markerLine is the incident marker drawn in the stream.
func (ls *logsView) markerLine() string {
	label := "opened"
	if ls.what != "" {
		label = "incident"
	}
	t := ls.q.Incident
	at := t.UTC().Format("15:04:05.000") + " UTC"
	if ls.tmode == timeLocal {
		at = t.Local().Format("15:04:05.000 MST")
	}
	s := "──── " + label + " " + at
	if ls.what != "" {
		s += " · " + sanitize(ls.what)
	}
	s += " "
	if w := cellWidth(s); w < ls.w {
		s += strings.Repeat("─", ls.w-w)
	}
	return ls.s.st.render(ls.s.st.bad, fitLine(s, ls.w))
}

// histGlyphs are the bar heights of the histogram, lowest first.
const histGlyphs = "▁▂▃▄▅▆▇█"

// histAxis returns the histogram's edge labels and the number of
// buckets that fit between them. A window that spans days (±12h, ±24h)
// is labelled with dates: a bare 09:58 at both ends would not say which
// day either is.
func (ls *logsView) histAxis() (from, to string, n int) {
	end := ls.histEnd
	switch {
	case ls.tmode == timeRel:
		from, to = relShort(ls.q.From.Sub(ls.q.Incident)), relShort(end.Sub(ls.q.Incident))
	case ls.spansDays(ls.q.From, end):
		from, to = ls.dateClock(ls.q.From), ls.dateClock(end)
	default:
		from, to = ls.clock(ls.q.From), ls.clock(end)
	}
	n = ls.w - 2 - cellWidth(from) - 1 - 1 - cellWidth(to) - 2 - len("errors 999999")
	return from, to, n
}

// spansDays reports whether a and b fall on different days in the view's
// zone, or are a day or more apart.
func (ls *logsView) spansDays(a, b time.Time) bool {
	loc := time.UTC
	if ls.tmode == timeLocal {
		loc = time.Local
	}
	ya, ma, da := a.In(loc).Date()
	yb, mb, db := b.In(loc).Date()
	return b.Sub(a) >= 24*time.Hour || ya != yb || ma != mb || da != db
}

// dateClock formats t with its date, to the minute, in the view's zone.
func (ls *logsView) dateClock(t time.Time) string {
	if ls.tmode == timeLocal {
		return t.Local().Format("Jan 02 15:04")
	}
	return t.UTC().Format("Jan 02 15:04")
}

// histLine draws the window's histogram (computed by refresh): one bar
// per bucket, height by count; buckets with errors in red, or as "!"
// without colour.
func (ls *logsView) histLine() string {
	st := &ls.s.st
	from, to, n := ls.histAxis()
	if n < 8 {
		return ""
	}
	peak, errs := 0, 0
	for _, bk := range ls.hist {
		peak = max(peak, bk.Total)
		errs += bk.Errors
	}
	var b strings.Builder
	b.WriteString("  " + from + " ")
	for _, bk := range ls.hist {
		switch {
		case bk.Total == 0:
			b.WriteByte(' ')
		case bk.Errors > 0 && st.mono:
			b.WriteString(st.bad + "!" + st.reset)
		default:
			lvl := (bk.Total*8 + peak - 1) / peak // 1..8
			g := histGlyphs[(lvl-1)*3 : lvl*3]
			if bk.Errors > 0 {
				b.WriteString(st.bad + g + st.reset)
			} else {
				b.WriteString(g)
			}
		}
	}
	if len(ls.hist) < n {
		b.WriteString(strings.Repeat(" ", n-len(ls.hist)))
	}
	b.WriteString(" " + to + "  ")
	b.WriteString(st.render(nonZero(errs, st.bad), "errors "+strconv.Itoa(errs)))
	return b.String()
}

// relShort renders a window edge relative to the incident: "-5m", "+1h".
func relShort(d time.Duration) string {
	if d < 0 {
		return "-" + shortDuration((-d).Round(time.Second))
	}
	return "+" + shortDuration(d.Round(time.Second))
}

// retryText tells when the next attempt comes and then the stream's last
// error, for a stream that is backing off ("" when it is not): the retry
// first, so that a narrow terminal cuts the error rather than it.
func retryText(s logview.Status, now time.Time) string {
	var t string
	if !s.RetryAt.IsZero() {
		if d := s.RetryAt.Sub(now); d > 0 {
			t += " · retry in " + strconv.Itoa(int((d+time.Second-1)/time.Second)) + "s"
		} else if s.Err != nil {
			t += " · retrying"
		}
	}
	if s.Err != nil {
		t += " · " + sanitize(s.Err.Error())
	}
	return t
}

// logsStatus is the stream's state: phase, then the counts.
func (ls *logsView) logsStatus(now time.Time) string {
	st := &ls.s.st
	s := ls.streamStatus
	var style, phase string
	switch {
	case ls.err != "":
		style, phase = st.bad, "✖ "+ls.err
	case !ls.opened:
		style, phase = st.warn, "◌ opening…"
	case s.Phase == logview.Listing:
		// A quota error while listing is retried after a backoff: say so,
		// or a slow window looks like a hung one.
		style, phase = st.warn, "◌ listing the window…"+retryText(s, now)
	case s.Phase == logview.Live:
		style, phase = st.ok, "● live"
		if !ls.q.To.IsZero() && now.After(ls.q.To) {
			// The window reached now: entries after its end keep coming.
			phase += " past " + ls.clock(ls.q.To)
		}
	case s.Phase == logview.Reconnecting:
		style, phase = st.warn, "▲ reconnecting"+retryText(s, now)
	case s.Phase == logview.Stalled:
		// The tail was found dead: entries may be missing right now. The
		// age and the retry come before the reason, so that a narrow
		// terminal cuts the reason rather than them.
		style, phase = st.bad, "▲ stalled"
		if !s.LastSign.IsZero() {
			phase += " · last answer " + ago(now, s.LastSign) + " ago"
		}
		phase += retryText(s, now)
	case s.Phase == logview.Done:
		style, phase = st.ok, "■ window listed"
	case s.Phase == logview.Failed:
		style, phase = st.bad, "✖ failed"
		if s.Err != nil {
			phase += ": " + sanitize(s.Err.Error())
		}
	}
	rest := ""
	if n := len(s.Unmapped); n > 0 {
		// Nodes the mapping cannot find (no instance id): their logs are
		// not in the view, which must not look like "no errors".
		rest += " · " + strconv.Itoa(n) + " of " + strconv.Itoa(len(ls.q.Nodes)) + " nodes unmapped: " + sanitize(strings.Join(s.Unmapped[:min(n, 3)], ", "))
		if n > 3 {
			rest += ", …"
		}
	}
	// Dropped: evicted by the view's cap, or discarded by the Service
	// while more than its cap waited for the view.
	rest += " · listed " + strconv.Itoa(s.Listed) + " · tailed " + strconv.Itoa(s.Tailed) +
		" · dup " + strconv.Itoa(s.Duplicates+ls.buf.Duplicates()) +
		" · dropped " + strconv.Itoa(ls.buf.Dropped()+s.Dropped) + " (cap " + strconv.Itoa(ls.buf.Cap()) + ")"
	if len(s.Suppressed) > 0 {
		var total int64
		var parts []string
		for _, r := range slices.Sorted(maps.Keys(s.Suppressed)) {
			total += s.Suppressed[r]
			parts = append(parts, sanitize(r)+" "+strconv.FormatInt(s.Suppressed[r], 10))
		}
		rest += " · suppressed " + strconv.FormatInt(total, 10) + " (" + strings.Join(parts, ", ") + ")"
	}
	phase = "  " + phase
	pw := cellWidth(phase)
	if pw >= ls.w {
		return st.render(style, truncate(phase, pw, ls.w))
	}
	return st.render(style, phase) + fitLine(rest, ls.w-pw)
}

// countShown works out the footer's position among the entries above
// the floor: counting them is a pass over the Buffer, done once per change
// (ver) or cursor move rather than every frame.
func (ls *logsView) countShown() {
	if ls.floor <= logview.Default {
		return
	}
	i := ls.selIndex()
	if c := &ls.shown; !c.ok || c.ver != ls.ver || c.sel != i {
		c.ok, c.ver, c.sel, c.pos, c.all = true, ls.ver, i, 0, 0
		for k := range ls.buf.Len() {
			if ls.keep(ls.buf.At(k)) {
				c.all++
				if k <= i {
					c.pos++
				}
			}
		}
	}
}

// status is the Logs view's part of the footer: position, follow or
// paused with what arrived since, the search: which match the cursor is
// on of how many ("3/12"), or how many there are.
func (ls *logsView) status() string {
	var b strings.Builder
	n := ls.buf.Len()
	pos := 0
	i := ls.selIndex()
	if i >= 0 {
		pos = i + 1
	}
	if ls.floor > logview.Default && ls.shown.ok {
		// Count only what the floor lets through, as the user sees it.
		pos, n = ls.shown.pos, ls.shown.all
	}
	b.WriteString(" " + strconv.Itoa(pos) + "/" + strconv.Itoa(n))
	if ls.follow {
		b.WriteString(" FOLLOW")
	} else {
		b.WriteString(" PAUSED")
		if ls.fresh > 0 {
			b.WriteString(" " + strconv.Itoa(ls.fresh) + " new")
		}
	}
	if ls.search != "" {
		b.WriteString(" /" + sanitize(ls.search) + " ")
		if ls.matchRank > 0 && i >= 0 && ls.buf.At(i) == ls.matchAt {
			b.WriteString(strconv.Itoa(ls.matchRank) + "/" + strconv.Itoa(ls.matches))
		} else {
			b.WriteString(pluralWord(ls.matches, "match", "matches"))
		}
	}
	return b.String()
}

// entryView is an expanded log entry: every field, then the payload.
type entryView struct {
	*textView
	entry *logview.Entry
}

// newEntryView returns the expanded view of entry e.
func newEntryView(s *shared, e *logview.Entry) *entryView {
	title := "Log entry · " + e.Severity.String()
	if e.Node != "" {
		title += " · " + sanitize(e.Node)
	}
	v := &entryView{entry: e}
	v.textView = newTextView(s, "entry", func() string { return title }, func(w int) []textLine { return s.entryLines(e, w) },
		action{keys: []string{"y"}, short: "copy", desc: "copy the entry as JSON (OSC 52, works over SSH)",
			do: func(tea.KeyPressMsg) tea.Cmd { return s.copyEntry(e) }})
	// The scroll key is the footer's first hint here.
	for i := range v.acts.list {
		if v.acts.list[i].keys[0] == "down" {
			v.acts.list[i].short = "scroll"
		}
	}
	return v
}

// entryLines renders entry e for width width.
func (s *shared) entryLines(e *logview.Entry, width int) []textLine {
	st := &s.st
	var out []textLine
	add := func(style, text string) { out = append(out, textLine{style: style, text: text}) }
	w := max(width-14, 10)
	field := func(name, raw string) {
		if raw == "" {
			return
		}
		for i, l := range wrap(sanitize(raw), w) {
			if i == 0 {
				add("", "  "+padWord(name, 12)+l)
			} else {
				add("", strings.Repeat(" ", 14)+l)
			}
		}
	}
	field("time", e.Time.UTC().Format(time.RFC3339Nano)+"  (local "+e.Time.Local().Format("2006-01-02 15:04:05.000 MST")+")")
	if !e.Received.IsZero() {
		field("received", e.Received.UTC().Format(time.RFC3339Nano))
	}
	field("severity", e.Severity.String())
	field("node", e.Node)
	field("project", e.Project)
	field("log", e.LogName)
	field("insertId", e.InsertID)
	field("resource", e.ResourceType)
	// Keys and values with control characters are shown quoted, as the
	// payload shows them escaped, rather than silently cleaned.
	kv := func(k, v string) string { return quoteUnsafe(k) + " = " + quoteUnsafe(v) }
	for _, k := range slices.Sorted(maps.Keys(e.ResourceLabels)) {
		field("", kv(k, e.ResourceLabels[k]))
	}
	if len(e.Labels) > 0 {
		add("", "")
		add(st.colHeader, "  Labels ("+strconv.Itoa(len(e.Labels))+")")
		for _, k := range slices.Sorted(maps.Keys(e.Labels)) {
			field("", kv(k, e.Labels[k]))
		}
	}
	if len(e.Context) > 0 {
		// Trace, source location, operation, HTTP request.
		add("", "")
		add(st.colHeader, "  Context")
		for _, k := range slices.Sorted(maps.Keys(e.Context)) {
			field("", kv(k, e.Context[k]))
		}
	}
	add("", "")
	add(st.colHeader, "  Payload")
	raw, cut := cutBytes(e.Payload, expandMax)
	pw := max(width-4, 10)
	for _, l := range sanitizeLines(raw) {
		for _, wl := range wrap(l, pw) {
			add("", "    "+wl)
		}
		if len(out) > expandMaxLines {
			cut = true
			break
		}
	}
	if cut {
		add(st.dim, "  (payload of "+strconv.Itoa(len(e.Payload))+" bytes cut here; y copies up to "+strconv.Itoa(copyMax/1024)+" KiB)")
	}
	add(st.dim, "")
	add(st.dim, "y copies this entry as JSON · esc goes back to the stream")
	return out
}

// copiedEntry is an entry as copied to the clipboard.
type copiedEntry struct {
	Timestamp string            `json:"timestamp"`
	Received  string            `json:"receiveTimestamp,omitempty"`
	Severity  string            `json:"severity"`
	Node      string            `json:"node,omitempty"`
	Project   string            `json:"project,omitempty"`
	LogName   string            `json:"logName,omitempty"`
	InsertID  string            `json:"insertId,omitempty"`
	Resource  *copiedResource   `json:"resource,omitempty"`
	Labels    map[string]string `json:"labels,omitempty"`
	Context   map[string]string `json:"context,omitempty"`
	Payload   json.RawMessage   `json:"payload,omitempty"`
}

type copiedResource struct {
	Type   string            `json:"type"`
	Labels map[string]string `json:"labels,omitempty"`
}

// entryJSON renders e as indented JSON for the clipboard, the payload cut
// to copyMax and other fields to copyFieldMax; it reports whether it cut. JSON escapes control characters, so the copy pastes safely
// into a terminal; DEL and the C1 controls, which JSON allows raw, are
// escaped too.
func entryJSON(e *logview.Entry) (string, bool) {
	cut := false
	// Every other field is cut too: any of them can be a megabyte.
	short := func(s string) string {
		t, c := cutBytes(s, copyFieldMax)
		if c {
			cut = true
			t += "…"
		}
		return t
	}
	shortMap := func(m map[string]string) map[string]string {
		if len(m) == 0 {
			return nil
		}
		out := make(map[string]string, len(m))
		for k, v := range m {
			out[short(k)] = short(v)
		}
		return out
	}
	c := copiedEntry{
		Timestamp: e.Time.UTC().Format(time.RFC3339Nano),
		Severity:  e.Severity.String(),
		Node:      short(e.Node),
		Project:   short(e.Project),
		LogName:   short(e.LogName),
		InsertID:  short(e.InsertID),
		Labels:    shortMap(e.Labels),
		Context:   shortMap(e.Context),
	}
	if !e.Received.IsZero() {
		c.Received = e.Received.UTC().Format(time.RFC3339Nano)
	}
	if e.ResourceType != "" || len(e.ResourceLabels) > 0 {
		c.Resource = &copiedResource{Type: short(e.ResourceType), Labels: shortMap(e.ResourceLabels)}
	}
	p, pcut := cutBytes(e.Payload, copyMax)
	cut = cut || pcut
	switch {
	case p == "":
	case !pcut && json.Valid([]byte(p)):
		c.Payload = json.RawMessage(p)
	default:
		if pcut {
			p += "…"
		}
		c.Payload, _ = json.Marshal(p)
	}
	out, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		// Only a broken RawMessage can fail; copy the payload as a string.
		c.Payload, _ = json.Marshal(p)
		out, _ = json.MarshalIndent(c, "", "  ")
	}
	return escapeRawControls(string(out)), cut
}

// escapeRawControls rewrites DEL, C1 controls and invalid UTF-8 as \u
// escapes. They can only occur inside JSON strings (the syntax is ASCII),
// where an escape means the same character.
func escapeRawControls(s string) string {
	clean := utf8.ValidString(s)
	for _, r := range s {
		if !clean || r == 0x7f || (r >= 0x80 && r <= 0x9f) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	for i, r := range s {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				// Invalid UTF-8 (only possible inside a string).
				b.WriteString(`\ufffd`)
				continue
			}
		}
		if r == 0x7f || (r >= 0x80 && r <= 0x9f) {
			b.WriteString(`\u00`)
			b.WriteString(strconv.FormatInt(int64(r)>>4, 16))
			b.WriteString(strconv.FormatInt(int64(r)&0xf, 16))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
