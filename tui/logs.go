package tui

import (
	"context"
	"errors"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/fleetdeck/fleetdeck/fleet"
	"github.com/fleetdeck/fleetdeck/logview"
)

// The Logs view shows one logview.Stream: the entries of a window around
// an incident, then (when the window reaches now) the live tail. Entries
// go into a logview.Buffer, one Add per batch; the view keeps its place by
// entry pointers (the cursor entry, the entry at the top), not indexes,
// because a gap fill inserts older entries and the cap evicts the oldest.
// Only the visible window is rendered, from lines cached per entry.
//
// One command at a time waits in Stream.Next with the view's context; its
// batch comes back as a message and the next wait is issued. Closing the
// view (esc, a ":" view command) cancels that context and closes the
// stream; a context.AfterFunc closes it too if the console's context ends
// first, so no stream outlives the console.

// timeMode is how the Logs view shows timestamps.
type timeMode uint8

const (
	timeUTC timeMode = iota
	timeLocal
	timeRel // relative to the incident
	numTimeModes
)

func (t timeMode) String() string {
	switch t {
	case timeLocal:
		return "local"
	case timeRel:
		return "relative"
	}
	return "UTC"
}

// lookback is the half-width of the window of digit key d (1-9); 0 means
// live from now.
func lookback(d int) time.Duration {
	switch d {
	case 1:
		return time.Minute
	case 2:
		return 5 * time.Minute
	case 3:
		return 15 * time.Minute
	case 4:
		return 30 * time.Minute
	case 5:
		return time.Hour
	case 6:
		return 3 * time.Hour
	case 7:
		return 6 * time.Hour
	case 8:
		return 12 * time.Hour
	case 9:
		return 24 * time.Hour
	}
	return 0
}

// severity floors the v key cycles through.
func severityFloors() []logview.Severity {
	return []logview.Severity{logview.Default, logview.Info, logview.Warning, logview.Error}
}

// logsView is the Logs view component: one logview.Stream.
type logsView struct {
	base
	// q is the query of the current stream; title and nodes never change,
	// the window does (digit keys).
	q logview.Query
	// what describes the incident ("passing → critical: check http"), raw;
	// empty when the view was opened at "now" with no incident known.
	what string
	// before and after are the current window around q.Incident; live
	// is set by the 0 key (from now on, no end).
	before, after time.Duration
	live          bool

	// gen numbers the streams this view opened; messages of an older
	// stream are ignored.
	gen    uint64
	ctx    context.Context
	cancel context.CancelFunc
	stream logview.Stream
	// stop unregisters the AfterFunc that closes stream when ctx ends.
	stop   func() bool
	closed bool

	buf          *logview.Buffer
	streamStatus logview.Status
	// opened: the stream was opened; got: a batch arrived. err is the last
	// Open or Next error (sanitised).
	opened, got bool
	err         string

	// Nodes: several means a node column (and a colour per node).
	multi     bool
	nodeStyle map[string]string
	nodeW     int

	// Position. follow keeps the cursor on the newest entry; paused, sel
	// and top hold the place and fresh counts entries that arrived since.
	follow bool
	fresh  int
	sel    *logview.Entry
	top    *logview.Entry
	skip   int // lines of the top entry scrolled off (wrapped entries)
	// seek, while set, puts the cursor at seekT as entries arrive: the
	// incident while its window is being listed, and after, until an
	// entry at or after it has arrived (the view opens on the incident
	// marker, where i goes, even when the entries after the incident come
	// with the tail).
	seek  bool
	seekT time.Time

	floor  logview.Severity
	wrap   bool
	tmode  timeMode
	search string
	// matches counts the entries matching search (kept by the floor);
	// matchAt is the match the cursor was put on and matchRank its rank
	// among them (0: unknown).
	matches   int
	matchAt   *logview.Entry
	matchRank int

	// frameSel and frameTop are the cursor and the first entry shown, as
	// refresh laid them out for the frame; histEnd the histogram's end.
	frameSel, frameTop int
	histEnd            time.Time

	// Rendering caches: lines per entry for layout lgen (width, time
	// mode, wrap, node column); the histogram line.
	lgen      uint64
	lkey      int
	lines     map[*logview.Entry]*logLine
	hist      []logview.Bucket
	histStale bool
	histN     int
	// markIdx is the entry the incident marker is drawn above (markEnd:
	// below, after the last entry); -1 when there is none. Valid for
	// markVer.
	markIdx int
	markEnd bool
	markVer uint64
	// ver increases with every change of buf or the floor.
	ver uint64
	// shown caches the footer's position among the entries above the
	// floor: counting them is a pass over the Buffer, done once per
	// change (ver) or cursor move rather than every frame.
	shown struct {
		ok       bool
		ver      uint64
		sel      int
		pos, all int
	}
}

// Messages of the Logs view's commands.
type (
	logsOpenedMsg struct {
		ls     *logsView
		gen    uint64
		stream logview.Stream
		stop   func() bool
		err    error
	}
	logsBatchMsg struct {
		ls    *logsView
		gen   uint64
		batch logview.Batch
		err   error
	}
	logsSavedMsg struct {
		path string
		n    int
		err  error
	}
)

// logsOffText explains why the log key does nothing.
func (s *shared) logsOffText() string {
	if s.logsOff != "" {
		return "logs are off: " + s.logsOff
	}
	return "logs are off: no Cloud Logging project configured"
}

// logTarget is what the log key opens: a title, nodes and the incident.
type logTarget struct {
	title    string
	nodes    []*fleet.Node
	names    []string // for nodes no longer in the snapshot
	incident time.Time
	what     string
}

// withIncident sets the incident to the latest transition of t's nodes
// to warning or critical in the journal (none: the view opens at now).
func (t logTarget) withIncident(s *shared) logTarget {
	if e := s.lastIncident(t.nodes); e != nil {
		t.incident, t.what = e.Time, e.Node+" "+eventDetail(e)
	}
	return t
}

// logsAction is l in the views whose selection has logs (a node, an
// event, a role, a group): the Logs view of what target returns.
func (s *shared) logsAction(desc string, target func() (logTarget, bool)) action {
	return action{keys: []string{"l"}, short: "logs", desc: desc, do: func(tea.KeyPressMsg) tea.Cmd {
		if s.logs == nil {
			s.setFlash(s.logsOffText(), true)
			return nil
		}
		t, ok := target()
		if !ok {
			return nil
		}
		if len(t.nodes)+len(t.names) == 0 {
			s.setFlash("no nodes to show logs for", true)
			return nil
		}
		ls := newLogsView(s, t)
		s.push(ls)
		return ls.startLogs()
	}}
}

// nodeOrDeparted returns the node, or, for a node that has left (an
// auto-healed one, say), the node as last seen before it left, so that its
// logs can still be found by its instance id. Nil when neither is known.
func (s *shared) nodeOrDeparted(dc, name string) *fleet.Node {
	if n := s.snap.Node(dc, name); n != nil {
		return n
	}
	if s.snap == nil {
		return nil
	}
	evs := s.snap.Events
	for i := len(evs) - 1; i >= 0; i-- {
		if e := &evs[i]; e.Kind == fleet.NodeLeft && e.Last != nil && e.Datacenter == dc && e.Node == name {
			return e.Last
		}
	}
	return nil
}

// lastIncident returns the newest journal event in which one of nodes went
// to warning or critical, or nil.
func (s *shared) lastIncident(nodes []*fleet.Node) *fleet.Event {
	if len(nodes) == 0 {
		return nil
	}
	keys := make(map[string]bool, len(nodes))
	for _, n := range nodes {
		keys[n.Key()] = true
	}
	evs := s.snap.Events
	for i := len(evs) - 1; i >= 0; i-- {
		e := &evs[i]
		if e.Kind == fleet.HealthChanged && (e.To == fleet.HealthWarning || e.To == fleet.HealthCritical) &&
			keys[e.Datacenter+"/"+e.Node] {
			return e
		}
	}
	return nil
}

// newLogsView returns the Logs view of t (not yet streaming).
func newLogsView(s *shared, t logTarget) *logsView {
	now := s.now()
	ls := &logsView{
		base:   base{s: s},
		before: s.logsBefore, after: s.logsAfter,
		what:    t.what,
		lines:   map[*logview.Entry]*logLine{},
		markIdx: -1,
	}
	inc := t.incident
	if inc.IsZero() {
		// No incident known: the moment the view was opened is marked,
		// and the view follows the newest entries.
		inc = now
		ls.follow = true
	} else {
		ls.seek, ls.seekT = true, inc
	}
	refs := make([]logview.NodeRef, 0, len(t.nodes)+len(t.names))
	for _, n := range t.nodes {
		refs = append(refs, logview.NodeRef{Name: n.Name, Address: n.Address, Meta: n.Meta})
	}
	for _, name := range t.names {
		refs = append(refs, logview.NodeRef{Name: name})
	}
	ls.q = logview.Query{Title: t.title, Nodes: refs, Incident: inc}
	ls.multi = len(refs) > 1
	if ls.multi {
		ls.nodeStyle = make(map[string]string, len(refs))
		for i, r := range refs {
			st := ""
			if len(s.st.nodes) > 0 {
				st = s.st.nodes[i%len(s.st.nodes)]
			}
			ls.nodeStyle[r.Name] = st
			ls.nodeW = max(ls.nodeW, cellWidth(sanitize(r.Name)))
		}
		ls.nodeW = min(ls.nodeW, maxNodeCol)
	}
	ls.setWindow(now)
	ls.acts = s.register(ls.actions()...)
	return ls
}

// maxNodeCol bounds the node column of a multi-node view.
const maxNodeCol = 16

// setWindow sets the query's window from the incident and the widths.
func (ls *logsView) setWindow(now time.Time) {
	if ls.live {
		ls.q.From, ls.q.To = now, time.Time{}
		return
	}
	ls.q.From, ls.q.To = ls.q.Incident.Add(-ls.before), ls.q.Incident.Add(ls.after)
}

// windowEnd is the end of the window as the histogram draws it: a window
// that ends in the future is drawn whole (its future is empty), an open
// one up to now.
func (ls *logsView) windowEnd(now time.Time) time.Time {
	if ls.q.To.IsZero() {
		return now
	}
	return ls.q.To
}

// startLogs (re)opens the view's stream with its current query, into a
// fresh Buffer.
func (ls *logsView) startLogs() tea.Cmd {
	ls.closeStream()
	ls.gen++
	ls.closed = false
	ls.ctx, ls.cancel = context.WithCancel(ls.s.ctx)
	ls.buf = logview.NewBuffer(ls.s.logsCap)
	ls.streamStatus = logview.Status{}
	ls.opened, ls.got, ls.err = false, false, ""
	ls.fresh, ls.matches, ls.matchAt, ls.matchRank = 0, 0, nil, 0
	ls.sel, ls.top, ls.skip = nil, nil, 0
	ls.ver++
	ls.histStale = true
	clear(ls.lines)
	ctx, gen, op, q := ls.ctx, ls.gen, ls.s.logs, ls.q
	return func() tea.Msg {
		s, err := op.Open(ctx, q)
		if err != nil {
			return logsOpenedMsg{ls: ls, gen: gen, err: err}
		}
		// Whatever happens to this message (the view closed meanwhile,
		// the program ended), the stream is closed when ctx ends.
		stop := context.AfterFunc(ctx, s.Close)
		return logsOpenedMsg{ls: ls, gen: gen, stream: s, stop: stop}
	}
}

// closeStream ends the current stream: closes it (which ends the Next in
// flight) and cancels its context. Close comes first so that the stream
// is closed once, here, rather than also by an AfterFunc of the context.
func (ls *logsView) closeStream() {
	if ls.cancel == nil {
		return
	}
	if ls.stop != nil && ls.stop() {
		ls.stream.Close()
	}
	ls.cancel()
	ls.stream, ls.stop, ls.cancel = nil, nil, nil
	ls.closed = true
}

// close ends the stream when the view leaves the stack.
func (ls *logsView) close() { ls.closeStream() }

func (ls *logsView) title() string { return "logs" }

// update takes the messages of the view's stream, and the tick.
func (ls *logsView) update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case logsOpenedMsg:
		if msg.ls == ls {
			return ls.logsOpened(msg)
		}
	case logsBatchMsg:
		if msg.ls == ls {
			return ls.logsBatch(msg)
		}
	case tickMsg:
		// The histogram is refreshed once a second: a live window's end
		// moves with the clock, and big buffers are not recounted with
		// every batch.
		ls.histStale = true
	}
	return nil
}

// logsOpened installs an opened stream and starts reading it.
func (ls *logsView) logsOpened(msg logsOpenedMsg) tea.Cmd {
	if ls.closed || msg.gen != ls.gen {
		// A stream of a closed view or of an older window: its context is
		// cancelled, so the AfterFunc closes it.
		return nil
	}
	if msg.err != nil {
		if errors.Is(msg.err, context.Canceled) {
			return nil
		}
		ls.err = sanitize("opening the logs: " + msg.err.Error())
		return nil
	}
	ls.stream, ls.stop, ls.opened = msg.stream, msg.stop, true
	return ls.next()
}

// next waits for the stream's next batch.
func (ls *logsView) next() tea.Cmd {
	ctx, s, gen := ls.ctx, ls.stream, ls.gen
	return func() tea.Msg {
		b, err := s.Next(ctx)
		return logsBatchMsg{ls: ls, gen: gen, batch: b, err: err}
	}
}

// logsBatch takes one batch into the view and waits for the next.
func (ls *logsView) logsBatch(msg logsBatchMsg) tea.Cmd {
	if ls.closed || msg.gen != ls.gen {
		return nil
	}
	switch {
	case msg.err == nil:
	case ls.ctx.Err() != nil:
		return nil
	case errors.Is(msg.err, io.EOF):
		// The window is listed (Done) or the stream gave up (Failed):
		// the batch carries the final status and nothing more comes.
		ls.got, ls.streamStatus = true, msg.batch.Status
		ls.ingest(msg.batch.Entries)
		return nil
	case errors.Is(msg.err, logview.ErrClosed):
		ls.err = "the log stream was closed"
		return nil
	default:
		// Next fails otherwise only if the Opener breaks its contract;
		// say so and try again after a pause.
		ls.err = sanitize("reading the logs: " + msg.err.Error())
		return ls.retryNext()
	}
	ls.err = ""
	ls.got = true
	ls.streamStatus = msg.batch.Status
	ls.ingest(msg.batch.Entries)
	if ls.streamStatus.Phase != logview.Listing && ls.nextKept(ls.buf.Search(ls.seekT)) >= 0 {
		// The window is listed and the cursor is on the incident's place:
		// what arrives from now on is new.
		ls.seek = false
	}
	return ls.next()
}

// retryNext waits a second before reading the stream again, unless the
// view closes first.
func (ls *logsView) retryNext() tea.Cmd {
	ctx, next := ls.ctx, ls.next()
	return func() tea.Msg {
		t := time.NewTimer(time.Second)
		defer t.Stop()
		select {
		case <-t.C:
			return next()
		case <-ctx.Done():
			return nil
		}
	}
}

// histSmall is the buffer size up to which the histogram is recomputed
// with every batch; above it, once a second (tick), since a pass over a
// full buffer costs a couple of milliseconds.
const histSmall = 10_000

// ingest adds entries in one Buffer.Add and keeps the match count, the
// paused view's "new" count and the incident position up to date.
func (ls *logsView) ingest(entries []*logview.Entry) {
	if len(entries) == 0 {
		return
	}
	b := ls.buf
	prevLen := b.Len()
	var prevLast *logview.Entry
	if prevLen > 0 {
		prevLast = b.At(prevLen - 1)
	}
	// Matches among the entries the cap may evict (the oldest), counted
	// before they go: the match count stays exact without a full pass.
	var doomed []int
	if ls.search != "" && prevLen+len(entries) > b.Cap() && prevLen > 0 {
		doomed = ls.matchesBelow(min(len(entries), prevLen))
	}
	res := b.Add(entries)
	if res.Added == 0 && res.Evicted == 0 {
		return
	}
	ls.ver++
	if b.Len() <= histSmall {
		ls.histStale = true
	}
	if ls.search != "" {
		appended := prevLast == nil || b.IndexOf(prevLast) == prevLen-1-res.Evicted
		if ls.matchAt != nil && (!appended || b.IndexOf(ls.matchAt) < 0) {
			// Entries went in before the match, or it was evicted: its
			// rank is no longer known.
			ls.matchAt, ls.matchRank = nil, 0
		}
		if appended && res.Evicted <= prevLen {
			for _, i := range doomed {
				if i < res.Evicted {
					ls.matches--
					if ls.matchRank > 0 {
						ls.matchRank--
					}
				}
			}
			from := 0
			if prevLast != nil {
				from = prevLen - res.Evicted
			}
			ls.matches += ls.matchesFrom(from)
		} else {
			ls.matches = b.CountMatches(ls.search, ls.keepFunc())
		}
	}
	if !ls.follow && !ls.seek {
		ls.fresh += res.Added
	}
	if ls.seek {
		ls.seekTo(ls.seekT)
	}
}

// keep reports whether e passes the severity floor.
func (ls *logsView) keep(e *logview.Entry) bool { return e.Severity >= ls.floor }

// keepFunc is keep for Buffer searches (nil when everything is kept).
func (ls *logsView) keepFunc() func(*logview.Entry) bool {
	if ls.floor <= logview.Default {
		return nil
	}
	return ls.keep
}

// matchesBelow returns the indexes below n of entries matching the search,
// scanning backward from n-1 (Find stops at 0, so the pass is bounded).
func (ls *logsView) matchesBelow(n int) []int {
	var out []int
	keep := ls.keepFunc()
	for i := n - 1; i >= 0; {
		j := ls.buf.Find(ls.search, i, false, keep)
		if j < 0 {
			break
		}
		out = append(out, j)
		i = j - 1
	}
	return out
}

// matchesFrom counts the entries matching the search at or after from.
func (ls *logsView) matchesFrom(from int) int {
	n := 0
	keep := ls.keepFunc()
	for i := from; ; {
		j := ls.buf.Find(ls.search, i, true, keep)
		if j < 0 {
			return n
		}
		n++
		i = j + 1
	}
}

// Navigation. Indexes are Buffer indexes; entries below the floor are
// skipped.

// nextKept returns the first kept index at or after i, or -1.
func (ls *logsView) nextKept(i int) int {
	n := ls.buf.Len()
	for i = max(i, 0); i < n; i++ {
		if ls.keep(ls.buf.At(i)) {
			return i
		}
	}
	return -1
}

// prevKept returns the last kept index at or before i, or -1.
func (ls *logsView) prevKept(i int) int {
	for i = min(i, ls.buf.Len()-1); i >= 0; i-- {
		if ls.keep(ls.buf.At(i)) {
			return i
		}
	}
	return -1
}

// selIndex returns the cursor's index: the newest kept entry when
// following, else the cursor entry (or the nearest kept one when it was
// evicted or is below the floor). -1 when nothing is shown.
func (ls *logsView) selIndex() int {
	if ls.follow || ls.sel == nil {
		if ls.follow {
			return ls.prevKept(ls.buf.Len() - 1)
		}
		return ls.nextKept(0)
	}
	i := ls.buf.IndexOf(ls.sel)
	if i < 0 {
		return ls.nextKept(0)
	}
	if ls.keep(ls.sel) {
		return i
	}
	if j := ls.nextKept(i); j >= 0 {
		return j
	}
	return ls.prevKept(i)
}

// setSel puts the cursor on index i (paused).
func (ls *logsView) setSel(i int) {
	if i < 0 {
		return
	}
	ls.sel = ls.buf.At(i)
	if ls.follow {
		ls.follow = false
		ls.fresh = 0
	}
}

// moveLogs moves the cursor by delta kept entries; moving pauses the
// view, and reaching the end with End resumes following.
func (ls *logsView) moveLogs(delta int) {
	ls.seek = false
	i := ls.selIndex()
	if i < 0 {
		return
	}
	switch {
	case delta >= 1<<29:
		ls.followLogs(true)
		return
	case delta <= -1<<29:
		ls.setSel(ls.nextKept(0))
		return
	}
	for ; delta > 0; delta-- {
		j := ls.nextKept(i + 1)
		if j < 0 {
			break
		}
		i = j
	}
	for ; delta < 0; delta++ {
		j := ls.prevKept(i - 1)
		if j < 0 {
			break
		}
		i = j
	}
	ls.setSel(i)
}

// followLogs turns following on or off.
func (ls *logsView) followLogs(on bool) {
	ls.seek = false
	if on {
		ls.follow, ls.fresh, ls.sel = true, 0, nil
		return
	}
	if ls.follow {
		ls.setSel(ls.selIndex())
		ls.follow = false
	}
}

// seekTo puts the cursor on the first kept entry at or after t (or the
// last one before it) and scrolls it to a third of the screen, so what
// led up to t is in view too.
func (ls *logsView) seekTo(t time.Time) {
	i := ls.nextKept(ls.buf.Search(t))
	if i < 0 {
		i = ls.prevKept(ls.buf.Len() - 1)
	}
	if i < 0 {
		return
	}
	ls.setSel(i)
	ls.scrollAbove(i, ls.logsHeight()/3)
}

// scrollAbove scrolls so that about n lines precede entry i on screen.
func (ls *logsView) scrollAbove(i, n int) {
	top, acc := i, 0
	for acc < n {
		j := ls.prevKept(top - 1)
		if j < 0 {
			break
		}
		acc += ls.entryHeight(j)
		top = j
	}
	ls.top, ls.skip = ls.buf.At(top), max(acc-n, 0)
}

// logsHeight is the number of stream lines the Logs view shows: the
// screen minus the console header (2), the view's own header (3) and the
// footer.
func (ls *logsView) logsHeight() int { return max(ls.h-3, 1) }

// layoutLogs resolves the cursor and the first line shown, keeping the
// cursor entry entirely on screen. It returns the cursor index and the
// top index (-1, -1 when nothing is shown).
func (ls *logsView) layoutLogs() (sel, top int) {
	ls.checkLayout()
	h := ls.logsHeight()
	sel = ls.selIndex()
	if sel < 0 {
		ls.top, ls.skip = nil, 0
		return -1, -1
	}
	if ls.follow {
		ls.bottomAlign(sel, h)
		return sel, ls.buf.IndexOf(ls.top)
	}
	top = -1
	if ls.top != nil {
		top = ls.buf.IndexOf(ls.top)
	}
	if top >= 0 && !ls.keep(ls.top) {
		top = ls.nextKept(top)
		ls.skip = 0
	}
	if top < 0 || sel < top || (sel == top && ls.skip > 0) {
		ls.top, ls.skip = ls.buf.At(sel), 0
		return sel, sel
	}
	// Is the cursor entry's last line within the screen? Walk back from
	// it at most a screenful.
	acc := 0
	for i := sel; i >= 0; {
		acc += ls.entryHeight(i)
		if i == top {
			if acc-ls.skip <= h {
				return sel, top
			}
			break
		}
		if acc >= h {
			break
		}
		i = ls.prevKept(i - 1)
	}
	ls.bottomAlign(sel, h)
	return sel, ls.buf.IndexOf(ls.top)
}

// bottomAlign scrolls so that entry i's last line is the screen's last.
func (ls *logsView) bottomAlign(i, h int) {
	acc := 0
	top := i
	for j := i; j >= 0; j = ls.prevKept(j - 1) {
		acc += ls.entryHeight(j)
		top = j
		if acc >= h {
			break
		}
	}
	ls.top, ls.skip = ls.buf.At(top), max(acc-h, 0)
}

// marker returns the entry the incident marker is drawn with and whether
// it goes after that entry (the incident is after every entry shown);
// -1 when nothing is shown.
func (ls *logsView) marker() (int, bool) {
	if ls.markVer == ls.ver {
		return ls.markIdx, ls.markEnd
	}
	ls.markVer = ls.ver
	ls.markIdx, ls.markEnd = ls.nextKept(ls.buf.Search(ls.q.Incident)), false
	if ls.markIdx < 0 {
		ls.markIdx, ls.markEnd = ls.prevKept(ls.buf.Len()-1), true
	}
	return ls.markIdx, ls.markEnd
}

// entryHeight is the number of screen lines entry i takes, the incident
// marker included.
func (ls *logsView) entryHeight(i int) int {
	n := len(ls.logLineOf(ls.buf.At(i)).text)
	if mi, _ := ls.marker(); mi == i {
		n++
	}
	if _, gap := ls.gapFrom(i); gap {
		n++
	}
	return n
}

// setLogsSearch changes the search, counts its matches and moves to the
// first one at or after the cursor.
func (ls *logsView) setLogsSearch(s string) {
	if s != ls.search {
		ls.s.clearFlash() // what it said (a wrap, no match) was about the old search
	}
	ls.search = s
	ls.matches = 0
	if s == "" {
		return
	}
	ls.matches = ls.buf.CountMatches(s, ls.keepFunc())
	ls.matchAt, ls.matchRank = nil, 0
	if ls.matches == 0 {
		return
	}
	from := max(ls.selIndex(), 0)
	i := ls.buf.Find(s, from, true, ls.keepFunc())
	if i < 0 {
		i = ls.buf.Find(s, 0, true, ls.keepFunc())
	}
	ls.showEntry(i)
	ls.matchAt, ls.matchRank = ls.buf.At(i), ls.rankOf(i)
}

// rankOf returns the rank of the match at index i among the matches (1
// for the first): a pass over the entries before it, done when the rank
// is not known from the last move.
func (ls *logsView) rankOf(i int) int {
	n := 0
	for j := 0; ; j++ {
		j = ls.buf.Find(ls.search, j, true, ls.keepFunc())
		if j < 0 || j > i {
			return n
		}
		n++
	}
}

// showEntry moves the cursor to i (paused) and scrolls it into view,
// with some context above when it was off screen.
func (ls *logsView) showEntry(i int) {
	if i < 0 {
		return
	}
	ls.seek = false
	_, top := ls.layoutLogs()
	ls.setSel(i)
	if top < 0 || i < top || !ls.onScreen(top, i) {
		ls.scrollAbove(i, ls.logsHeight()/3)
	}
}

// onScreen reports whether entry i is entirely visible with the screen
// starting at top.
func (ls *logsView) onScreen(top, i int) bool {
	h, acc := ls.logsHeight(), -ls.skip
	for j := top; j >= 0 && j <= i; j = ls.nextKept(j + 1) {
		acc += ls.entryHeight(j)
		if acc > h {
			return false
		}
	}
	return true
}

// findNext moves to the next (or previous) entry matching needle and
// kept by keep, wrapping around; it says so when there is none.
func (ls *logsView) findNext(needle string, forward bool, keep func(*logview.Entry) bool, what string) {
	i := ls.selIndex()
	var j int
	if forward {
		j = ls.buf.Find(needle, i+1, true, keep)
		if j < 0 {
			j = ls.buf.Find(needle, 0, true, keep)
		}
	} else {
		j = ls.buf.Find(needle, i-1, false, keep)
		if j < 0 {
			j = ls.buf.Find(needle, ls.buf.Len()-1, false, keep)
		}
	}
	if j < 0 {
		ls.s.setFlash("no "+what, true)
		return
	}
	wrapped := (forward && j <= i) || (!forward && j >= i)
	if wrapped {
		if forward {
			ls.s.setFlash("search wrapped to the top", false)
		} else {
			ls.s.setFlash("search wrapped to the bottom", false)
		}
	}
	ls.showEntry(j)
	if needle == "" || needle != ls.search {
		return
	}
	// The rank of the new match: one more or less than the last one's, or
	// the first or last after a wrap; counted when not known.
	known := ls.matchRank > 0 && i >= 0 && ls.buf.At(i) == ls.matchAt
	switch {
	case wrapped && forward:
		ls.matchRank = 1
	case wrapped:
		ls.matchRank = ls.matches
	case known && forward:
		ls.matchRank++
	case known:
		ls.matchRank--
	default:
		ls.matchRank = ls.rankOf(j)
	}
	ls.matchAt = ls.buf.At(j)
}

// reopenLogs re-opens the stream for the window of digit key d, keeping
// the cursor's moment when paused.
func (ls *logsView) reopenLogs(d int) tea.Cmd {
	now := ls.s.now()
	if d == 0 {
		ls.live = true
	} else {
		ls.live = false
		ls.before, ls.after = lookback(d), lookback(d)
	}
	ls.setWindow(now)
	switch {
	case ls.live:
		ls.follow, ls.seek = true, false
	case !ls.follow:
		t := ls.q.Incident
		if i := ls.selIndex(); i >= 0 {
			t = ls.buf.At(i).Time
		}
		ls.seek, ls.seekT = true, t
	}
	ls.s.setFlash("logs window "+ls.windowText(), false)
	return ls.startLogs()
}

// windowText describes the window ("±5m around 10:02:13", "live from 10:05:00").
func (ls *logsView) windowText() string {
	at := func(t time.Time) string { return ls.clock(t) }
	if ls.live {
		return "live from " + at(ls.q.From)
	}
	w := "-" + shortDuration(ls.before) + "/+" + shortDuration(ls.after)
	if ls.before == ls.after {
		w = "±" + shortDuration(ls.before)
	}
	return w + " around " + at(ls.q.Incident)
}

// tailing reports whether the stream delivers live entries beyond the
// listed window.
func (ls *logsView) tailing() bool {
	switch ls.streamStatus.Phase {
	case logview.Live, logview.Reconnecting, logview.Stalled:
		return true
	}
	return false
}

// clock formats t to the second in the view's time mode (relative mode
// names wall times in UTC, since offsets need an anchor to read).
func (ls *logsView) clock(t time.Time) string {
	if ls.tmode == timeLocal {
		return t.Local().Format(time.TimeOnly)
	}
	return t.UTC().Format(time.TimeOnly)
}

// shortDuration renders a window width: 1m, 30m, 1h, 24h, 90s.
func shortDuration(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return strconv.Itoa(int(d/time.Hour)) + "h"
	case d%time.Minute == 0:
		return strconv.Itoa(int(d/time.Minute)) + "m"
	}
	return strconv.Itoa(int(d/time.Second)) + "s"
}

// parseJumpTime reads the jump prompt: "10:02", "10:02:13" (in the time
// mode's zone, on the day nearest the incident), RFC 3339, a signed
// duration from the incident ("-5m", "+90s"), or "now".
func parseJumpTime(s string, incident, now time.Time, loc *time.Location) (time.Time, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return time.Time{}, errors.New("type a time")
	case strings.EqualFold(s, "now"):
		return now, nil
	case s[0] == '-' || s[0] == '+':
		d, err := time.ParseDuration(s)
		if err != nil {
			return time.Time{}, errors.New("not a duration: " + s)
		}
		return incident.Add(d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, time.DateTime, "2006-01-02T15:04:05"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	for _, layout := range []string{"15:04:05.999999999", "15:04"} {
		c, err := time.ParseInLocation(layout, s, loc)
		if err != nil {
			continue
		}
		ref := incident.In(loc)
		day := time.Date(ref.Year(), ref.Month(), ref.Day(), c.Hour(), c.Minute(), c.Second(), c.Nanosecond(), loc)
		// The day nearest the incident: a window can cross midnight.
		best := day
		for _, d := range []time.Time{day.AddDate(0, 0, -1), day.AddDate(0, 0, 1)} {
			if absDur(d.Sub(incident)) < absDur(best.Sub(incident)) {
				best = d
			}
		}
		return best, nil
	}
	return time.Time{}, errors.New("not a time: " + s + " (try 10:02, 10:02:13, 2026-03-04T10:02:13Z, -5m, now)")
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// jumpLogs handles the jump prompt's line.
func (ls *logsView) jumpLogs(text string) {
	s := ls.s
	loc := time.UTC
	if ls.tmode == timeLocal {
		loc = time.Local
	}
	t, err := parseJumpTime(text, ls.q.Incident, s.now(), loc)
	if err != nil {
		s.setFlash(err.Error(), true)
		return
	}
	// A live view holds entries past its window's end, up to now.
	end := ls.q.To
	if ls.tailing() && s.now().After(end) {
		end = s.now()
	}
	if t.Before(ls.q.From) || (!ls.q.To.IsZero() && t.After(end)) {
		s.setFlash(ls.clock(t)+" is outside the window ("+ls.windowText()+"): a digit key widens it", true)
	} else {
		s.clearFlash() // an earlier complaint no longer applies
	}
	if ls.buf.Len() == 0 {
		return
	}
	ls.followLogs(false)
	ls.seekTo(t)
}

// actions are the Logs view's keys.
func (ls *logsView) actions() []action {
	s := ls.s
	do := func(fn func()) func(tea.KeyPressMsg) tea.Cmd {
		return func(tea.KeyPressMsg) tea.Cmd { fn(); return nil }
	}
	acts := moveActions(ls.logsHeight, ls.moveLogs)
	acts[len(acts)-1].desc = "last entry, and follow the newest"
	acts = append(acts,
		action{keys: []string{"p"}, short: "pause", desc: "pause / follow (paused keeps receiving: N new)", when: func() bool { return ls.follow },
			do: do(func() { ls.followLogs(false) })},
		action{keys: []string{"p"}, short: "follow", when: func() bool { return !ls.follow }, do: do(func() { ls.followLogs(true) })},
		action{keys: []string{"/"}, short: "search", desc: "search text, node and payload (applies as typed; esc restores the previous search)",
			do: do(ls.openSearch)},
		action{keys: []string{"n"}, desc: "next search match", when: func() bool { return ls.search != "" },
			do: do(func() { ls.findNext(ls.search, true, ls.keepFunc(), "match for "+ls.search) })},
		action{keys: []string{"N"}, desc: "previous search match", when: func() bool { return ls.search != "" },
			do: do(func() { ls.findNext(ls.search, false, ls.keepFunc(), "match for "+ls.search) })},
		action{keys: []string{"n", "N"}, when: func() bool { return ls.search == "" },
			do: do(func() { s.setFlash("search first with /", false) })},
		action{keys: []string{"e"}, desc: "next error (ERROR or worse)", do: do(func() { ls.findNext("", true, isError, "error (ERROR or worse) in the view") })},
		action{keys: []string{"E"}, desc: "previous error", do: do(func() { ls.findNext("", false, isError, "error (ERROR or worse) in the view") })},
		action{keys: []string{"i"}, desc: "back to the incident marker", do: do(ls.toIncident)},
		action{keys: []string{"v"}, short: "level", desc: "severity floor: all, ≥INFO, ≥WARN, ≥ERR", do: do(ls.nextFloor)},
		action{keys: []string{"w"}, desc: "wrap long lines (up to 8 lines an entry)", do: do(func() { ls.wrap = !ls.wrap })},
		action{keys: []string{"t"}, desc: "timestamps: UTC, local, relative to the incident", do: do(func() {
			ls.tmode = (ls.tmode + 1) % numTimeModes
			ls.histStale = true
		})},
		action{keys: []string{"1", "2", "3", "4", "5", "6", "7", "8", "9", "0"}, label: "0-9", short: "window",
			desc: "window ±1m 5m 15m 30m 1h 3h 6h 12h 24h around the incident; 0 live from now",
			do: func(msg tea.KeyPressMsg) tea.Cmd {
				d, _ := strconv.Atoi(msg.String())
				return ls.reopenLogs(d)
			}},
		action{keys: []string{"@"}, desc: "jump to a time (10:02, 10:02:13, RFC3339, -5m, now)", do: do(func() {
			s.openOverlay(newPrompt(s, promptJump, "", promptHooks{enter: func(text string) tea.Cmd { ls.jumpLogs(text); return nil }}))
		})},
		action{keys: []string{"enter"}, short: "expand", desc: "expand the entry: every field, the payload", when: func() bool { return ls.selIndex() >= 0 },
			do: do(func() { s.push(newEntryView(s, ls.buf.At(ls.selIndex()))) })},
		action{keys: []string{"y"}, short: "copy", desc: "copy the entry as JSON (OSC 52, works over SSH)", when: func() bool { return ls.selIndex() >= 0 },
			do: func(tea.KeyPressMsg) tea.Cmd { return s.copyEntry(ls.buf.At(ls.selIndex())) }},
		action{keys: []string{"ctrl+s"}, desc: "save the entries shown (the floor applied) to a file", do: func(tea.KeyPressMsg) tea.Cmd { return ls.saveLogsCmd() }},
	)
	return append(acts, s.viewActions(ls, "back to where l was pressed (closes the stream)")...)
}

// isError reports entries at ERROR or worse.
func isError(e *logview.Entry) bool { return e.Severity >= logview.Error }

// openSearch opens the "/" prompt: as in less, the search starts empty and
// applies as typed; esc restores the previous one.
func (ls *logsView) openSearch() {
	prev := ls.search
	ls.s.openOverlay(newPrompt(ls.s, promptSearch, "", promptHooks{
		change: ls.setLogsSearch,
		enter:  func(text string) tea.Cmd { ls.setLogsSearch(text); return nil },
		cancel: func() { ls.setLogsSearch(prev) },
	}))
}

// toIncident puts the cursor on the incident marker's entry.
func (ls *logsView) toIncident() {
	if i, _ := ls.marker(); i >= 0 {
		ls.followLogs(false)
		ls.setSel(i)
		ls.scrollAbove(i, ls.logsHeight()/3)
	}
}

// nextFloor moves the severity floor to the next level.
func (ls *logsView) nextFloor() {
	floors := severityFloors()
	i := slices.Index(floors, ls.floor)
	ls.floor = floors[(i+1)%len(floors)]
	ls.ver++
	ls.matches, ls.matchAt, ls.matchRank = 0, nil, 0
	if ls.search != "" {
		ls.matches = ls.buf.CountMatches(ls.search, ls.keepFunc())
	}
}

// copyEntry puts the entry on the clipboard as JSON through OSC 52, which
// the terminal (local or at the far end of SSH) applies.
func (s *shared) copyEntry(e *logview.Entry) tea.Cmd {
	text, cut := entryJSON(e)
	if cut {
		s.setFlash("copied the entry, cut to "+strconv.Itoa(copyMax/1024)+" KiB of payload (the whole entry: ctrl+s); the terminal must allow OSC 52", false)
	} else {
		s.setFlash("copied the entry ("+strconv.Itoa(len(text))+" bytes) if the terminal allows OSC 52", false)
	}
	return tea.SetClipboard(text)
}

// saveLogsCmd saves the entries the view shows (the floor applied)
// through Options.SaveLogs, off the update loop.
func (ls *logsView) saveLogsCmd() tea.Cmd {
	if ls.s.saveLogs == nil {
		ls.s.setFlash("saving logs is off in this console", true)
		return nil
	}
	entries := make([]*logview.Entry, 0, ls.buf.Len())
	for i := range ls.buf.Len() {
		if e := ls.buf.At(i); ls.keep(e) {
			entries = append(entries, e)
		}
	}
	save, title := ls.s.saveLogs, ls.q.Title
	ls.s.setFlash("saving "+strconv.Itoa(len(entries))+" entries…", false)
	return func() tea.Msg {
		path, err := save(title, entries)
		return logsSavedMsg{path: path, n: len(entries), err: err}
	}
}

// logsSaved reports where the entries went.
func (s *shared) logsSaved(msg logsSavedMsg) {
	if msg.err != nil {
		s.setFlash("saving logs: "+msg.err.Error(), true)
		return
	}
	s.setFlash("saved "+strconv.Itoa(msg.n)+" entries to "+msg.path, false)
}

// helpExtra documents what the Logs view shows beyond its keys.
func (ls *logsView) helpExtra() []helpSection {
	return []helpSection{{title: "Logs view", lines: [][2]string{
		{"l", "opened on a node (Nodes, detail): around its last warning/critical (else now)"},
		{"", "on an event: the event's node (or group) at its time"},
		{"", "on a role or group: all their nodes, interleaved, a colour per node"},
		{"@ -5m, +90s", "from the incident; 10:02 in the zone shown (t)"},
		{"histogram", "the window's volume; ! (red in colour) has errors; dates when it spans days"},
		{"────", "the incident's moment in the stream"},
		{"····", "a silence: no entries between two times (a minute or more)"},
		{"/x 3/12", "the cursor is on the 3rd of 12 matches; n and N say when they wrap"},
	}}}
}
