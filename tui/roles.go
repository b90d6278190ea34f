package tui

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/fleetdeck/fleetdeck/provision"
	"github.com/fleetdeck/fleetdeck/roles"
)

// Role reassignment and node maintenance (issue 9). The desired records
// are read from KV per datacenter (RolesService.List) when a view that
// shows them is on top and its data is older than rolesRefresh, while a
// change is being tracked, and after every apply; each node's state
// (roles.StateOf through roles.NodeStates) is computed here from the
// records, the snapshot and the run manager's runs, so a new snapshot or a
// run ending moves a node from Applying to Converged at once. Changes go
// form (roles_form.go) → preview (roles_preview.go) → Apply → the run
// view, and every node applied is tracked until it is Converged or Failed
// whatever view is on top (the header counts them, Node detail shows
// them, the footer says how each change ended).

// RolesService is what the console needs to change nodes' desired roles
// and maintenance: cmd wires it from the roles Applier (Plan, Apply,
// Discard, Who), the Store's reads (List, History) and the role catalog.
// With none (Options.Roles nil) the role keys say why (Options.RolesOff).
type RolesService interface {
	// Catalog is the role catalog (what the form offers).
	Catalog() *roles.Catalog
	// Who is who changes are recorded as (user@host).
	Who() string
	// List returns the desired records of every managed node of dc.
	List(ctx context.Context, dc string) ([]roles.Desired, error)
	// History returns a node's audit records, oldest first.
	History(ctx context.Context, dc, node string) ([]roles.Desired, error)
	// Plan prepares a change (nothing written) with its run's preview.
	Plan(ctx context.Context, req roles.Request) (*roles.Plan, error)
	// Apply records a plan and launches its run; a *roles.ConflictError
	// when another change won (nothing written, plan discarded).
	Apply(ctx context.Context, p *roles.Plan, typed string) (runID string, written []roles.Desired, err error)
	// Discard drops a plan that will not be applied.
	Discard(p *roles.Plan)
}

// rolesRefresh is how often desired records and a node's history are read
// again while a view showing them is on top (other consoles and the CLI
// change them without this console hearing of it).
const rolesRefresh = 3 * time.Second

// rolesState is the shared context's part for roles.
type rolesState struct {
	svc     RolesService
	off     string
	catalog *roles.Catalog
	who     string

	// desired holds the records by node key (dc/name); records is the
	// same, sorted by key. fresh holds generations this console wrote that
	// a List begun before the write may not show yet.
	desired map[string]roles.Desired
	records []roles.Desired
	fresh   map[string]uint64
	// listedAt is when the records were last asked for; listErr what the
	// last read said (per datacenter).
	listedAt        time.Time
	listed          bool
	listErr         string
	fetching, again bool

	// runsBy indexes the runs list by linked node; states is each
	// managed node's state.
	runsBy map[string][]provision.RunInfo
	states map[string]roles.NodeState
	// ver increases whenever records, states, histories or tracks change:
	// Node detail rebuilds on it.
	ver uint64

	hist   map[string]*roleHistory
	tracks []*roleTrack
}

// roleHistory is a node's audit trail as last read.
type roleHistory struct {
	recs     []roles.Desired
	err      string
	at       time.Time
	fetching bool
	read     bool
}

// roleTrack follows the nodes of one applied change to convergence.
type roleTrack struct {
	runID   string
	keys    []string
	gens    map[string]uint64
	started time.Time
	// final holds each node's state once it is final (Converged, Failed,
	// Drift, Pending after its run ended, or superseded).
	final map[string]roles.NodeState
	ended time.Time
}

func (t *roleTrack) done() bool { return len(t.final) == len(t.keys) }

// maxTracks bounds the finished tracks kept (Node detail shows a node's
// last one).
const maxTracks = 50

// stateLabel is a state as the Nodes view's STATE column and the filter
// show it: unmanaged is blank.
func stateLabel(st roles.State) string {
	if st == roles.StateUnmanaged {
		return ""
	}
	return string(st)
}

// setRoles installs the roles service (New).
func (s *shared) setRoles(svc RolesService, off string) {
	s.rl.off = sanitize(off)
	s.rl.desired = map[string]roles.Desired{}
	s.rl.fresh = map[string]uint64{}
	s.rl.states = map[string]roles.NodeState{}
	s.rl.hist = map[string]*roleHistory{}
	if svc == nil {
		return
	}
	s.rl.svc, s.rl.catalog, s.rl.who = svc, svc.Catalog(), svc.Who()
}

// rolesOffText says why roles cannot be changed here.
func (s *shared) rolesOffText() string {
	if s.rl.off != "" {
		return s.rl.off
	}
	if s.prov == nil {
		return "roles are off: " + strings.TrimPrefix(s.runsOffText(), "runs are off: ")
	}
	return "roles are off: no role catalog ([roles.NAME] in the config file or roles.toml in the playbook directory)"
}

// rolesCall runs f off the update loop with a bounded context.
func (s *shared) rolesCall(d time.Duration, f func(ctx context.Context, svc RolesService) tea.Msg) tea.Cmd {
	if s.rl.svc == nil {
		return nil
	}
	parent, svc := s.ctx, s.rl.svc
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(parent, d)
		defer cancel()
		return f(ctx, svc)
	}
}

// desiredMsg carries the records read per datacenter.
type desiredMsg struct {
	recs map[string][]roles.Desired
	errs []string
}

func (m desiredMsg) apply(s *shared) tea.Cmd { return s.desiredDone(m) }

// fetchDesired reads every datacenter's desired records; calls are
// coalesced so at most one is in flight.
func (s *shared) fetchDesired() tea.Cmd {
	if s.rl.svc == nil || len(s.snap.Datacenters) == 0 {
		return nil
	}
	if s.rl.fetching {
		s.rl.again = true
		return nil
	}
	s.rl.fetching = true
	s.rl.listedAt = s.now()
	dcs := slices.Clone(s.snap.Datacenters)
	return s.rolesCall(provTimeout, func(ctx context.Context, svc RolesService) tea.Msg {
		m := desiredMsg{recs: map[string][]roles.Desired{}}
		for _, dc := range dcs {
			recs, err := svc.List(ctx, dc)
			if err != nil {
				m.errs = append(m.errs, err.Error())
				if recs == nil {
					continue // this datacenter's records stay as they were
				}
			}
			m.recs[dc] = recs
		}
		return m
	})
}

// maybeFetchDesired reads the records again when they are older than
// rolesRefresh.
func (s *shared) maybeFetchDesired() tea.Cmd {
	if s.rl.svc == nil || s.rl.fetching || (s.rl.listed && s.now().Sub(s.rl.listedAt) < rolesRefresh) {
		return nil
	}
	return s.fetchDesired()
}

// desiredDone installs the records read.
func (s *shared) desiredDone(m desiredMsg) tea.Cmd {
	s.rl.fetching = false
	s.rl.listed = true
	s.rl.listErr = sanitize(strings.Join(m.errs, "; "))
	next := make(map[string]roles.Desired, len(s.rl.desired))
	for k, d := range s.rl.desired {
		if _, read := m.recs[d.Datacenter]; !read {
			next[k] = d
		}
	}
	for _, recs := range m.recs {
		for _, d := range recs {
			next[d.Datacenter+"/"+d.Node] = d
		}
	}
	// A record this console wrote after the read began wins over what the
	// read saw (or did not see yet).
	for k, gen := range s.rl.fresh {
		d, ok := next[k]
		switch {
		case ok && d.Generation >= gen:
			delete(s.rl.fresh, k)
		case s.rl.desired[k].Generation == gen:
			next[k] = s.rl.desired[k]
		}
	}
	s.setDesired(next)
	if s.rl.again {
		s.rl.again = false
		return s.fetchDesired()
	}
	return nil
}

// setDesired replaces the records when they changed.
func (s *shared) setDesired(next map[string]roles.Desired) {
	same := len(next) == len(s.rl.desired)
	if same {
		for k, d := range next {
			if o, ok := s.rl.desired[k]; !ok || !sameRecord(o, d) {
				same = false
				break
			}
		}
	}
	if same {
		return
	}
	s.rl.desired = next
	s.rl.records = s.rl.records[:0]
	for _, d := range next {
		s.rl.records = append(s.rl.records, d)
	}
	slices.SortFunc(s.rl.records, func(a, b roles.Desired) int {
		if c := strings.Compare(a.Datacenter, b.Datacenter); c != 0 {
			return c
		}
		return strings.Compare(a.Node, b.Node)
	})
	s.rl.ver++
	s.invalidate("roles")
	s.recomputeStates()
}

// sameRecord compares two records of a node.
func sameRecord(a, b roles.Desired) bool {
	return a.Generation == b.Generation && a.When.Equal(b.When) && a.Maintenance == b.Maintenance && slices.Equal(a.Roles, b.Roles) &&
		a.Who == b.Who && a.Reason == b.Reason
}

// recordWritten takes records this console just wrote, before a read
// shows them.
func (s *shared) recordWritten(written []roles.Desired) {
	if len(written) == 0 {
		return
	}
	next := make(map[string]roles.Desired, len(s.rl.desired)+len(written))
	for k, d := range s.rl.desired {
		next[k] = d
	}
	for _, d := range written {
		k := d.Datacenter + "/" + d.Node
		next[k] = d
		s.rl.fresh[k] = d.Generation
	}
	s.setDesired(next)
}

// indexRuns indexes the runs list by the nodes each run applies, after
// the list changed.
func (s *shared) indexRuns() {
	if s.rl.svc == nil {
		return
	}
	by := map[string][]provision.RunInfo{}
	for _, r := range s.runs {
		for _, k := range roles.LinkedNodes(r.Meta) {
			by[k] = append(by[k], r)
		}
	}
	s.rl.runsBy = by
	s.recomputeStates()
}

// recomputeStates computes every managed node's state from its record,
// the snapshot, its runs and the time (a run that succeeded has
// roles.SettleTime to show in the catalog), patches the Nodes rows whose
// state changed, and follows the tracked changes.
func (s *shared) recomputeStates() {
	if s.rl.svc == nil {
		return
	}
	if len(s.rl.records) == 0 && len(s.rl.states) == 0 {
		return
	}
	now := s.now()
	next := make(map[string]roles.NodeState, len(s.rl.records))
	one := make([]roles.Desired, 1)
	for _, d := range s.rl.records {
		k := d.Datacenter + "/" + d.Node
		one[0] = d
		for _, st := range roles.NodeStates(s.snap, one, s.rl.runsBy[k], s.rl.catalog, now) {
			next[k] = st
		}
	}
	changed, relabel := false, false
	for k, st := range next {
		old, ok := s.rl.states[k]
		if !ok || old.State != st.State {
			relabel = true
			s.patchRow(k, st.State)
		}
		if !ok || old.Reason != st.Reason || old.RunID != st.RunID {
			changed = true
		}
	}
	for k := range s.rl.states {
		if _, ok := next[k]; !ok {
			changed, relabel = true, true
			s.patchRow(k, roles.StateUnmanaged)
		}
	}
	s.rl.states = next
	if relabel {
		s.invalidate("nodes")
	}
	if changed || relabel {
		s.rl.ver++
	}
	s.followTracks()
}

// patchRow sets the STATE cell of node key's cached row, if it has one
// (a row built later looks its state up).
func (s *shared) patchRow(key string, st roles.State) {
	dc, name, _ := strings.Cut(key, "/")
	n := s.snap.Node(dc, name)
	if n == nil {
		return
	}
	if r := s.nodeCache[n]; r != nil {
		setRowState(r, stateLabel(st))
	}
}

// setRowState puts label in a node row's STATE cell; its rendered line
// and filter keys are rebuilt when next needed.
func setRowState(r *row, label string) {
	if r.state == label {
		return
	}
	r.state = label
	r.cells[ncState] = label
	r.widths[ncState] = len(label)
	r.lineLayout = 0
	r.filterable = false
}

// rowState sets a new node row's state from the states known.
func (s *shared) rowState(r *row) {
	if len(s.rl.states) == 0 {
		return
	}
	if st, ok := s.rl.states[r.id]; ok {
		setRowState(r, stateLabel(st.State))
	}
}

// nodeState returns a node's state (unmanaged when it has no record).
func (s *shared) nodeState(key string) roles.NodeState {
	if st, ok := s.rl.states[key]; ok {
		return st
	}
	return roles.NodeState{State: roles.StateUnmanaged, Reason: "no desired record"}
}

// startTrack follows the nodes of records, applied by run runID.
func (s *shared) startTrack(runID string, records []roles.Desired) {
	if len(records) == 0 {
		return
	}
	t := &roleTrack{runID: runID, gens: map[string]uint64{}, started: s.now(), final: map[string]roles.NodeState{}}
	for _, d := range records {
		k := d.Datacenter + "/" + d.Node
		t.keys = append(t.keys, k)
		t.gens[k] = d.Generation
	}
	s.rl.tracks = append(s.rl.tracks, t)
	if n := len(s.rl.tracks); n > maxTracks {
		for i, x := range s.rl.tracks {
			if x.done() {
				s.rl.tracks = slices.Delete(s.rl.tracks, i, i+1)
				break
			}
		}
	}
	s.rl.ver++
	s.followTracks()
}

// followTracks moves tracked nodes to their final state and says in the
// footer how each change ended.
func (s *shared) followTracks() {
	for _, t := range s.rl.tracks {
		if t.done() {
			continue
		}
		runEnded := false
		if ri := s.runInfo(t.runID); ri != nil && ri.Status.Final() {
			runEnded = true
		}
		for _, k := range t.keys {
			if _, ok := t.final[k]; ok {
				continue
			}
			if d, ok := s.rl.desired[k]; ok && d.Generation > t.gens[k] {
				t.final[k] = roles.NodeState{State: "superseded", Reason: fmt.Sprintf("generation %d replaced generation %d", d.Generation, t.gens[k])}
				continue
			}
			st, ok := s.rl.states[k]
			if !ok || s.rl.desired[k].Generation != t.gens[k] {
				continue // the record read is not the one applied yet
			}
			switch st.State {
			case roles.StateConverged, roles.StateFailed, roles.StateDrift:
				t.final[k] = st
			case roles.StatePending:
				if runEnded {
					t.final[k] = st
				}
			}
		}
		if t.done() {
			t.ended = s.now()
			s.rl.ver++
			s.trackEnded(t)
		}
	}
}

// trackEnded says in the footer how a tracked change ended.
func (s *shared) trackEnded(t *roleTrack) {
	var ok, bad []string
	for _, k := range t.keys {
		st := t.final[k]
		if st.State == roles.StateConverged {
			ok = append(ok, k)
			continue
		}
		bad = append(bad, k+" "+string(st.State)+" ("+st.Reason+")")
	}
	took := compactDuration(t.ended.Sub(t.started))
	if len(bad) == 0 {
		s.setFlash(fmt.Sprintf("roles: %s converged %s after confirm (run %s)", strings.Join(ok, ", "), took, t.runID), false)
		return
	}
	msg := "roles: " + strings.Join(bad, "; ")
	if len(ok) > 0 {
		msg += "; converged: " + strings.Join(ok, ", ")
	}
	s.setFlash(msg, true)
}

// tracking counts the nodes of changes not yet final.
func (s *shared) tracking() int {
	n := 0
	for _, t := range s.rl.tracks {
		n += len(t.keys) - len(t.final)
	}
	return n
}

// lastTrack returns the latest change tracked for node key.
func (s *shared) lastTrack(key string) *roleTrack {
	for i := len(s.rl.tracks) - 1; i >= 0; i-- {
		if slices.Contains(s.rl.tracks[i].keys, key) {
			return s.rl.tracks[i]
		}
	}
	return nil
}

// tickRoles runs every second: states depend on the time (a successful
// run's settle time), and a tracked change reads the records as often as
// a view showing them would.
func (s *shared) tickRoles() tea.Cmd {
	if s.rl.svc == nil {
		return nil
	}
	s.recomputeStates()
	if s.tracking() > 0 {
		return tea.Batch(s.maybeFetchDesired(), s.maybeFetchRuns())
	}
	return nil
}

// maybeFetchRoles is what a view showing desired state reads while on
// top: the records and, once some node is managed, the runs list too —
// the apply runs of other consoles and of the CLI make a node Applying
// or Failed, and are its "last apply", and this console hears of them
// only by reading the list.
func (s *shared) maybeFetchRoles() tea.Cmd {
	if len(s.rl.desired) == 0 {
		return s.maybeFetchDesired()
	}
	return tea.Batch(s.maybeFetchDesired(), s.maybeFetchRuns())
}

// maybeFetchRuns reads the runs list when it is older than rolesRefresh
// (other consoles' and the CLI's apply runs).
func (s *shared) maybeFetchRuns() tea.Cmd {
	if s.prov == nil || s.now().Sub(s.runsAt) < rolesRefresh {
		return nil
	}
	return s.fetchRuns()
}

// historyMsg carries a node's audit trail.
type historyMsg struct {
	key  string
	recs []roles.Desired
	err  error
}

func (m historyMsg) apply(s *shared) tea.Cmd {
	h := s.rl.hist[m.key]
	if h == nil {
		return nil
	}
	h.fetching, h.read = false, true
	h.err = ""
	if m.err != nil {
		h.err = sanitize(m.err.Error())
	}
	if m.err == nil || len(m.recs) > 0 {
		h.recs = m.recs
	}
	s.rl.ver++
	return nil
}

// maybeFetchHistory reads node dc/name's audit trail when it was never
// read or is older than rolesRefresh.
func (s *shared) maybeFetchHistory(dc, name string) tea.Cmd {
	if s.rl.svc == nil {
		return nil
	}
	key := dc + "/" + name
	h := s.rl.hist[key]
	if h == nil {
		h = &roleHistory{}
		s.rl.hist[key] = h
	}
	if h.fetching || (h.read && s.now().Sub(h.at) < rolesRefresh) {
		return nil
	}
	h.fetching, h.at = true, s.now()
	return s.rolesCall(provTimeout, func(ctx context.Context, svc RolesService) tea.Msg {
		recs, err := svc.History(ctx, dc, name)
		return historyMsg{key: key, recs: recs, err: err}
	})
}

// staleHistory makes the audit trails of keys read again when next shown.
func (s *shared) staleHistory(keys []string) {
	for _, k := range keys {
		if h := s.rl.hist[k]; h != nil {
			h.read = false
		}
	}
}

// conflictText says who won a conflict, or "" when err is none.
func conflictText(err error) string {
	var ce *roles.ConflictError
	if !errors.As(err, &ce) {
		return ""
	}
	if ce.Current == nil {
		return fmt.Sprintf("conflict: node %s/%s's desired record was deleted meanwhile; nothing was applied", ce.Datacenter, ce.Node)
	}
	c := ce.Current
	return fmt.Sprintf("conflict: %s/%s was changed by %s at %s to generation %d (%q); nothing was applied: esc, then preview again",
		ce.Datacenter, ce.Node, c.Who, c.When.Local().Format(time.DateTime), c.Generation, c.Reason)
}

// rolesList renders roles as "[a, b]".
func rolesList(rs []string) string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = sanitize(r)
	}
	return "[" + strings.Join(out, ", ") + "]"
}

// maintText renders a maintenance mode: off, on (reason).
func maintText(m roles.Maintenance) string {
	if !m.On {
		return "off"
	}
	if m.Reason == "" {
		return "on"
	}
	return "on (" + sanitize(m.Reason) + ")"
}

// managedRoles returns the roles of the node's managed services in the
// catalog (service ID fleetdeck-ROLE).
func managedRoles(services []string) []string {
	var out []string
	for _, id := range services {
		if r, ok := strings.CutPrefix(id, roles.ServicePrefix); ok {
			out = append(out, r)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
