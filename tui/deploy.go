package tui

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/fleetdeck/fleetdeck/deploy"
	"github.com/fleetdeck/fleetdeck/fleet"
)

// The Provisioner view (:provisioner) shows the deployment server of the
// console's datacenter as its KV has it — from any machine, leader or
// not: who leads, whether it launches, and every node that waits (held,
// in backoff, queued) or runs, with why and until when; :decisions lists
// its decisions, newest first. Node detail shows the node's stage
// records. The operator actions (pause/resume, release, rerun) are
// requests the leader takes at its next pass, and dangerous: read-only
// unbinds them.

// Deployer is what the console needs of the deployment server; cmd
// implements it over deploy.Store for the agent's datacenter.
type Deployer interface {
	Status(ctx context.Context) (deploy.Status, error)
	NodeRecords(ctx context.Context, node string) ([]deploy.Record, error)
	Ask(ctx context.Context, r deploy.Request) (deploy.Request, error)
	// Who is recorded with the requests (user@host; the SSH user when
	// served).
	Who() string
}

// deployRefresh is how often the Provisioner views read the status while
// one is on top.
const deployRefresh = 2 * time.Second

// deployState is the console's copy of the deployment server's status.
type deployState struct {
	svc Deployer
	off string

	st              deploy.Status
	at              time.Time
	err             string
	fetching, again bool
	// recs are nodes' stage records (Node detail), by node key, with when
	// each was read.
	recs   map[string][]deploy.Record
	recsAt map[string]time.Time
	ver    uint64
}

const (
	provisionerName = "provisioner"
	decisionsName   = "decisions"
)

func (s *shared) setDeploy(svc Deployer, off string) {
	s.dp = deployState{svc: svc, off: sanitize(off), recs: map[string][]deploy.Record{}, recsAt: map[string]time.Time{}}
}

// deployOffText says why the Provisioner view has nothing.
func (s *shared) deployOffText() string {
	if s.dp.off != "" {
		return s.dp.off
	}
	return "the provisioner's state is not available here"
}

// deployCall runs f off the update loop with a bounded context.
func (s *shared) deployCall(f func(ctx context.Context, svc Deployer) func(s *shared) tea.Cmd) tea.Cmd {
	if s.dp.svc == nil {
		return nil
	}
	parent, svc := s.ctx, s.dp.svc
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(parent, provTimeout)
		defer cancel()
		return deployMsg(f(ctx, svc))
	}
}

// deployMsg applies a deployment call's result on the update loop.
type deployMsg func(s *shared) tea.Cmd

func (m deployMsg) apply(s *shared) tea.Cmd { return m(s) }

// fetchDeploy reads the status; calls are coalesced.
func (s *shared) fetchDeploy() tea.Cmd {
	if s.dp.svc == nil {
		return nil
	}
	if s.dp.fetching {
		s.dp.again = true
		return nil
	}
	s.dp.fetching = true
	now := s.now
	return s.deployCall(func(ctx context.Context, svc Deployer) func(*shared) tea.Cmd {
		st, err := svc.Status(ctx)
		at := now()
		return func(s *shared) tea.Cmd {
			s.dp.fetching = false
			s.dp.at = at
			if err != nil {
				s.dp.err = sanitize(err.Error())
			} else {
				s.dp.err, s.dp.st = "", st
			}
			s.dp.ver++
			s.invalidate(provisionerName)
			s.invalidate(decisionsName)
			if s.dp.again {
				s.dp.again = false
				return s.fetchDeploy()
			}
			return nil
		}
	})
}

// tickDeploy reads the status again while a Provisioner view is on top.
func (s *shared) tickDeploy() tea.Cmd {
	switch s.top().title() {
	case provisionerName, decisionsName:
	default:
		return nil
	}
	if s.now().Sub(s.dp.at) < deployRefresh {
		return nil
	}
	return s.fetchDeploy()
}

// fetchNodeRecords reads one node's stage records (Node detail).
func (s *shared) fetchNodeRecords(key string) tea.Cmd {
	if s.dp.svc == nil || s.now().Sub(s.dp.recsAt[key]) < deployRefresh {
		return nil
	}
	s.dp.recsAt[key] = s.now()
	return s.deployCall(func(ctx context.Context, svc Deployer) func(*shared) tea.Cmd {
		recs, err := svc.NodeRecords(ctx, key)
		return func(s *shared) tea.Cmd {
			if err != nil {
				s.setFlash("stage records of "+key+": "+err.Error(), true)
				return nil
			}
			s.dp.recs[key] = recs
			s.dp.ver++
			return nil
		}
	})
}

// ask sends an operator's request and says what became of it.
func (s *shared) ask(r deploy.Request) tea.Cmd {
	if s.dp.svc == nil {
		s.setFlash(s.deployOffText(), true)
		return nil
	}
	r.Who = s.dp.svc.Who()
	return s.deployCall(func(ctx context.Context, svc Deployer) func(*shared) tea.Cmd {
		got, err := svc.Ask(ctx, r)
		return func(s *shared) tea.Cmd {
			if err != nil {
				s.setFlash(string(r.Kind)+": "+err.Error(), true)
				return nil
			}
			what := string(got.Kind)
			if got.Node != "" {
				what += " " + got.Node
			}
			if got.Stage != "" {
				what += " (stage " + got.Stage + ")"
			}
			if s.dp.st.Leader == nil {
				s.setFlash(what+": asked; no provisioner leads now, the next leader takes it", false)
			} else {
				s.setFlash(what+": asked; "+s.dp.st.Leader.ID+" takes it at its next pass", false)
			}
			return s.fetchDeploy()
		}
	})
}

// askReason opens a reason prompt, then sends the request it completes.
func (s *shared) askReason(label, initial string, build func(reason string) deploy.Request) {
	s.openOverlay(newPrompt(s, promptReason, initial, promptHooks{label: label, enter: func(text string) tea.Cmd {
		text = strings.TrimSpace(text)
		if text == "" {
			s.setFlash("nothing asked: a reason is required", true)
			return nil
		}
		return s.ask(build(text))
	}}))
}

// openProvisioner is :provisioner.
func openProvisioner(s *shared, _ []string) tea.Cmd {
	s.switchTo(newTable(s, provisionerKind(), ""))
	if s.dp.svc == nil {
		s.setFlash(s.deployOffText(), true)
	}
	return s.fetchDeploy()
}

// openDecisions is :decisions.
func openDecisions(s *shared, _ []string) tea.Cmd {
	s.switchTo(newTable(s, decisionsKind(), ""))
	if s.dp.svc == nil {
		s.setFlash(s.deployOffText(), true)
	}
	return s.fetchDeploy()
}

// Provisioner view columns.
const (
	pvWhat = iota
	pvNode
	pvStage
	pvSince
	pvUntil
	pvWhy
	pvCount
)

func provisionerKind() *tableKind {
	return &tableKind{name: provisionerName, cols: provisionerColumns, rows: (*shared).provisionerRows, nameField: fieldName,
		banner:  (*shared).provisionerBanner,
		actions: provisionerActions,
		empty: func(t *tableView) string {
			s := t.s
			switch {
			case s.dp.svc == nil:
				return s.deployOffText()
			case s.dp.err != "":
				return "provisioner: " + s.dp.err
			case s.dp.at.IsZero():
				return "reading the provisioner's state from Consul…"
			case t.total == 0:
				return "nothing waits and nothing runs: every node is applied or not selected (:decisions for what happened)"
			}
			return ""
		},
		onTop: func(t *tableView) tea.Cmd { return t.s.fetchDeploy() }}
}

func provisionerColumns() []column {
	return []column{
		pvWhat:  {title: "WHAT", min: 7, max: 9, prio: 100},
		pvNode:  {title: "NODE", min: 10, max: 40, flex: true, prio: 95},
		pvStage: {title: "STAGE", min: 5, max: 20, prio: 90},
		pvSince: {title: "SINCE", min: 5, max: 8, prio: 60, sortBy: sortTime, descFirst: true},
		pvUntil: {title: "UNTIL", min: 5, max: 8, prio: 50, sortBy: sortTime},
		pvWhy:   {title: "WHY", min: 10, max: 200, flex: true, prio: 80},
	}
}

// provisionerBanner is the view's summary: leader, state, counts.
func (s *shared) provisionerBanner() []string {
	if s.dp.svc == nil || s.dp.at.IsZero() {
		return nil
	}
	st := &s.dp.st
	leader := "no leader (nothing launches)"
	if st.Leader != nil {
		leader = "leader " + st.Leader.ID
	}
	line1 := "dc " + st.Datacenter + " · " + leader + " · " + st.State +
		" · runs " + strconv.Itoa(st.Guards.RunsLastHour) + "/" + strconv.Itoa(st.Guards.RunsPerHour) + " this hour"
	line2 := fmt.Sprintf("held %d · backoff %d · queued %d · running %d · requests waiting %d · read %s ago",
		len(st.Held), len(st.Backoff), len(st.Queue), len(st.Running), len(st.Requests), ago(s.now(), s.dp.at))
	if n := len(st.Decisions); n > 0 {
		d := st.Decisions[n-1]
		line2 += " · last: " + string(d.Kind) + " " + d.Reason
	}
	return []string{sanitize(line1), sanitize(line2)}
}

// provisionerRows: held first, then backoff, running, queued.
func (s *shared) provisionerRows() []*row {
	st := &s.dp.st
	var rows []*row
	add := func(id, what, node, stage string, since, until time.Time, why string, health fleet.Health) {
		hm := func(t time.Time) string {
			if t.IsZero() {
				return "-"
			}
			return t.Local().Format("15:04:05")
		}
		r := newRow(id, []string{pvWhat: what, pvNode: node, pvStage: stage, pvSince: hm(since), pvUntil: hm(until), pvWhy: why})
		r.nums = make([]int, pvCount)
		r.nums[pvSince], r.nums[pvUntil] = int(since.UnixNano()), int(until.UnixNano())
		r.health = health
		if dc, name, ok := strings.Cut(node, "/"); ok {
			r.dc, r.name = dc, name
			r.node = s.snap.Node(dc, name)
		}
		rows = append(rows, r)
	}
	for _, h := range st.Held {
		add("held/"+h.Node+"/"+h.Stage, "held", h.Node, orDash(h.Stage), h.At, time.Time{}, h.Reason+" (u releases)", fleet.HealthCritical)
	}
	for _, b := range st.Backoff {
		add("backoff/"+b.Node+"/"+b.Stage, "backoff", b.Node, b.Stage, time.Time{}, b.Until,
			fmt.Sprintf("failed %d of %d attempts", b.Failures, st.Guards.MaxAttempts), fleet.HealthWarning)
	}
	for _, r := range st.Running {
		for _, n := range r.Nodes {
			add("running/"+n+"/"+r.Stage, "running", n, r.Stage, r.Started, time.Time{}, "batch "+r.Batch+" of "+strconv.Itoa(len(r.Nodes))+" nodes", fleet.HealthPassing)
		}
	}
	for _, q := range st.Queue {
		why := "ready: launches as the guards allow"
		if !q.ReadyAt.IsZero() {
			why = "quiet period"
		}
		if q.Waiting != "" {
			why = q.Waiting
		}
		for _, n := range q.Nodes {
			add("queued/"+n+"/"+q.Stage, "queued", n, q.Stage, q.Since, q.ReadyAt, why, fleet.HealthPassing)
		}
	}
	return rows
}

// provisionerActions: enter opens the node, p pauses or resumes, u
// releases a held node, R reruns a node's stage, d the decisions.
func provisionerActions(t *tableView) []action {
	s := t.s
	sel := func() (node, stage string, held bool) {
		r := t.selected()
		if r == nil {
			return "", "", false
		}
		return r.cells[pvNode], r.cells[pvStage], r.cells[pvWhat] == "held"
	}
	return []action{
		{keys: []string{"enter"}, short: "open", desc: "the node's detail (with its stage records)",
			when: func() bool { r := t.selected(); return r != nil && r.node != nil },
			do: func(tea.KeyPressMsg) tea.Cmd {
				r := t.selected()
				s.push(newDetailView(s, r.dc, r.name))
				return nil
			}},
		{keys: []string{"d"}, short: "decisions", desc: "the provisioner's decisions, newest first, with their reasons",
			do: func(tea.KeyPressMsg) tea.Cmd { s.push(newTable(s, decisionsKind(), "")); return s.fetchDeploy() }},
		{keys: []string{"p"}, short: "pause/resume", desc: "pause launching (running runs go on), or resume it (asks a reason)", dangerous: true,
			when: func() bool { return s.dp.svc != nil && !s.dp.at.IsZero() },
			do: func(tea.KeyPressMsg) tea.Cmd {
				kind, label := deploy.RequestPause, "pause launching, reason: "
				if s.dp.st.Paused != "" {
					kind, label = deploy.RequestResume, "resume launching, reason: "
				}
				s.askReason(label, "", func(reason string) deploy.Request { return deploy.Request{Kind: kind, Reason: reason} })
				return nil
			}},
		{keys: []string{"u"}, short: "release", desc: "release the held node (its every held stage; asks a reason)", dangerous: true,
			when: func() bool { _, _, held := sel(); return held },
			do: func(tea.KeyPressMsg) tea.Cmd {
				node, _, _ := sel()
				s.askReason("release "+node+", reason: ", "released from the console", func(reason string) deploy.Request {
					return deploy.Request{Kind: deploy.RequestRelease, Node: node, Reason: reason}
				})
				return nil
			}},
		{keys: []string{"R"}, short: "rerun", desc: "run the node's stage again: forgets its record (asks a reason)", dangerous: true,
			when: func() bool { n, st, _ := sel(); return n != "" && st != "-" && st != "" },
			do: func(tea.KeyPressMsg) tea.Cmd {
				node, stage, _ := sel()
				s.askReason("rerun "+stage+" on "+node+", reason: ", "", func(reason string) deploy.Request {
					return deploy.Request{Kind: deploy.RequestRerun, Node: node, Stage: stage, Reason: reason}
				})
				return nil
			}},
	}
}

// Decisions view columns.
const (
	dcAt = iota
	dcKind
	dcStage
	dcNode
	dcReason
	dcCount
)

func decisionsKind() *tableKind {
	return &tableKind{name: decisionsName, cols: decisionsColumns, rows: (*shared).decisionRows, nameField: fieldName,
		banner: (*shared).provisionerBanner,
		actions: func(t *tableView) []action {
			return []action{{keys: []string{"enter"}, short: "open", desc: "the whole decision (its reason unabridged, its batch); n there opens the node",
				when: func() bool { return t.selected() != nil },
				do: func(tea.KeyPressMsg) tea.Cmd {
					seq, err := strconv.ParseUint(strings.TrimPrefix(t.selected().id, "decision/"), 10, 64)
					if err == nil {
						t.s.push(newDecisionView(t.s, seq))
					}
					return nil
				}}}
		},
		empty: func(t *tableView) string {
			if t.s.dp.svc == nil {
				return t.s.deployOffText()
			}
			if t.s.dp.err != "" {
				return "provisioner: " + t.s.dp.err
			}
			return "no decision recorded yet"
		},
		onTop: func(t *tableView) tea.Cmd { return t.s.fetchDeploy() }}
}

func decisionsColumns() []column {
	return []column{
		dcAt:     {title: "AT", min: 8, max: 14, prio: 90, sortBy: sortTime, descFirst: true},
		dcKind:   {title: "KIND", min: 6, max: 14, prio: 100},
		dcStage:  {title: "STAGE", min: 5, max: 20, prio: 80},
		dcNode:   {title: "NODE", min: 8, max: 40, flex: true, prio: 85},
		dcReason: {title: "REASON", min: 10, max: 300, flex: true, prio: 95},
	}
}

// decisionRows: newest first.
func (s *shared) decisionRows() []*row {
	ds := s.dp.st.Decisions
	rows := make([]*row, 0, len(ds))
	for i := len(ds) - 1; i >= 0; i-- {
		d := &ds[i]
		reason := d.Reason
		if !d.Until.IsZero() {
			reason += " (until " + d.Until.Local().Format("15:04:05") + ")"
		}
		if d.RunID != "" && !strings.Contains(reason, d.RunID) {
			reason += " [run " + d.RunID + "]"
		}
		node := d.Node
		switch {
		case node == "" && len(d.Batch) == 1:
			node = d.Batch[0].Node
		case node == "" && len(d.Batch) > 1:
			node = strconv.Itoa(len(d.Batch)) + " nodes"
		}
		r := newRow("decision/"+strconv.FormatUint(d.Seq, 10), []string{dcAt: d.At.Local().Format("01-02 15:04:05"),
			dcKind: string(d.Kind), dcStage: orDash(d.Stage), dcNode: orDash(node), dcReason: reason})
		r.nums = make([]int, dcCount)
		r.nums[dcAt] = int(d.At.UnixNano())
		r.health = fleet.HealthPassing
		switch d.Kind {
		case deploy.KindHeld, deploy.KindBreakerOpened:
			r.health = fleet.HealthCritical
		case deploy.KindFailed, deploy.KindStopped:
			r.health = fleet.HealthWarning
		}
		if dc, name, ok := strings.Cut(node, "/"); ok {
			r.dc, r.name = dc, name
			r.node = s.snap.Node(dc, name)
		}
		rows = append(rows, r)
	}
	return rows
}

// newDecisionView shows one decision whole, wrapped to the screen: on 80
// columns the table cuts the reason, which is the point of a decision.
func newDecisionView(s *shared, seq uint64) *textView {
	find := func() *deploy.Decision {
		for i := range s.dp.st.Decisions {
			if s.dp.st.Decisions[i].Seq == seq {
				return &s.dp.st.Decisions[i]
			}
		}
		return nil
	}
	node := func() (string, string, bool) {
		d := find()
		if d == nil {
			return "", "", false
		}
		key := d.Node
		if key == "" && len(d.Batch) == 1 {
			key = d.Batch[0].Node
		}
		dc, name, ok := strings.Cut(key, "/")
		return dc, name, ok && s.snap.Node(dc, name) != nil
	}
	v := newTextView(s, "decision", func() string { return "Decision " + strconv.FormatUint(seq, 10) },
		func(w int) []textLine {
			d := find()
			if d == nil {
				return []textLine{{style: s.st.dim, text: "this decision is no longer among the last ones kept"}}
			}
			var out []textLine
			add := func(k, v string) {
				if v != "" {
					out = append(out, textLine{text: padWord(k, 10) + sanitize(v)})
				}
			}
			add("at", d.At.Local().Format(time.DateTime))
			add("kind", string(d.Kind))
			add("stage", d.Stage)
			add("node", d.Node)
			add("incarnation", d.Incarnation)
			add("run", d.RunID)
			if !d.Until.IsZero() {
				add("until", d.Until.Local().Format(time.DateTime))
			}
			out = append(out, textLine{}, textLine{style: s.st.colHeader, text: "Reason"})
			for _, l := range wrap(sanitize(d.Reason), max(w-2, 20)) {
				out = append(out, textLine{text: "  " + l})
			}
			if len(d.Batch) > 0 {
				out = append(out, textLine{}, textLine{style: s.st.colHeader, text: "Batch (" + strconv.Itoa(len(d.Batch)) + " nodes)"})
				for _, it := range d.Batch {
					out = append(out, textLine{text: "  " + sanitize(it.Node) + "  " + sanitize(it.Incarnation)})
				}
			}
			return out
		},
		action{keys: []string{"n"}, short: "node", desc: "the decision's node's detail",
			when: func() bool { _, _, ok := node(); return ok },
			do: func(tea.KeyPressMsg) tea.Cmd {
				dc, name, _ := node()
				s.push(newDetailView(s, dc, name))
				return nil
			}})
	v.live = true
	v.ver = func() uint64 { return s.dp.ver }
	return v
}

// deployDetailLines is Node detail's "Provisioner stages" section: each
// stage record of the node's current incarnation (older incarnations
// counted), with its run.
func (s *shared) deployDetailLines(n *fleet.Node) []textLine {
	if s.dp.svc == nil {
		return nil
	}
	st := &s.st
	out := []textLine{{}, {style: st.colHeader, text: "Provisioner stages"}}
	recs, ok := s.dp.recs[n.Key()]
	if !ok {
		return append(out, textLine{style: st.dim, text: "  reading…"})
	}
	inc := deploy.Incarnation(n)
	older := 0
	shown := 0
	for _, r := range recs {
		if r.Incarnation != inc {
			older++
			continue
		}
		shown++
		style := ""
		switch r.Outcome {
		case deploy.Failed:
			style = st.bad
		case deploy.Succeeded:
			style = st.healthStyle(fleet.HealthPassing)
		}
		out = append(out, textLine{style: style, text: "  " + padWord(sanitize(r.Stage), 12) + " " + padWord(sanitize(string(r.Outcome)), 10) +
			" " + r.At.Local().Format(time.DateTime) + "  run " + sanitize(r.RunID)})
	}
	if shown == 0 {
		out = append(out, textLine{style: st.dim, text: "  no stage applied to this incarnation yet"})
	}
	for _, h := range s.dp.st.Held {
		if h.Node == n.Key() {
			out = append(out, textLine{style: st.bad, text: "  held (" + orDash(sanitize(h.Stage)) + "): " + sanitize(h.Reason) + " — :provisioner, u releases"})
		}
	}
	if older > 0 {
		out = append(out, textLine{style: st.dim, text: fmt.Sprintf("  (%d records of earlier incarnations: a replaced server with this name)", older)})
	}
	return out
}
