package tui

import (
	"sort"
	"strconv"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/fleetdeck/fleetdeck/fleet"
	"github.com/fleetdeck/fleetdeck/provision"
)

// newDetailView returns the detail view of node name in datacenter dc.
// The node is looked up by key in every snapshot, so the view follows the
// node live and says so when it has left.
func newDetailView(s *shared, dc, name string) *textView {
	v := newTextView(s, "node",
		func() string { return "Node " + sanitize(name) + " (" + sanitize(dc) + ")" },
		func(w int) []textLine { return s.detailLines(dc, name, w) },
		s.runAction("run a playbook on this node (form, then preview)", func() (launchTarget, bool) {
			n := s.snap.Node(dc, name)
			if n == nil {
				s.setFlash("node "+name+" has left the fleet", true)
				return launchTarget{}, false
			}
			return launchTarget{provision.ScopeNode, n.Key(), []string{n.Key()}}, true
		}),
		s.logsAction("logs around the node's last warning/critical transition (else now)", func() (logTarget, bool) {
			t := logTarget{title: "node " + name}
			if n := s.nodeOrDeparted(dc, name); n != nil {
				t.nodes = []*fleet.Node{n}
			} else {
				t.names = []string{name}
			}
			return t.withIncident(s), true
		}),
		s.sshAction(func() *fleet.Node { return s.nodeOrDeparted(dc, name) }),
		s.copyAction(func() *fleet.Node { return s.nodeOrDeparted(dc, name) }),
		s.rolesAction("change the node's roles (catalog roles to add and remove, reason; preview, then apply and track)", func() (rolesTarget, bool) {
			return s.detailTarget(dc, name)
		}),
		s.maintAction("turn the node's maintenance on or off (reason; preview, then apply and track)", func() (rolesTarget, bool) {
			return s.detailTarget(dc, name)
		}),
		s.reapplyAction(dc, name),
		action{keys: []string{"h"}, short: "history", desc: historyDesc(s.ro),
			do: func(tea.KeyPressMsg) tea.Cmd {
				if s.rl.svc == nil {
					s.setFlash(s.rolesOffText(), true)
					return nil
				}
				s.push(newHistoryView(s, dc, name))
				return nil
			}},
	)
	v.live = true
	v.ver = func() uint64 { return s.gen + s.rl.ver + s.dp.ver }
	v.onTop = func() tea.Cmd {
		return tea.Batch(s.maybeFetchHistory(dc, name), s.maybeFetchRoles(), s.fetchNodeRecords(dc+"/"+name))
	}
	return v
}

// historyDesc is h's help: a read-only console cannot revert.
func historyDesc(ro bool) string {
	if ro {
		return "the node's desired-state history (generations, who, why)"
	}
	return "the node's desired-state history (generations, who, why); pick one to revert to"
}

// detailTarget is node dc/name as a roles target.
func (s *shared) detailTarget(dc, name string) (rolesTarget, bool) {
	n := s.snap.Node(dc, name)
	if n == nil {
		s.setFlash("node "+name+" has left the fleet", true)
		return rolesTarget{}, false
	}
	return rolesTarget{subject: "node " + n.Key(), nodes: []string{n.Key()}}, true
}

// detailLines renders everything known about one node: identity, services
// with tags and ports, checks with their output, meta, recent events.
func (s *shared) detailLines(dc, name string, w int) []textLine {
	st := &s.st
	var out []textLine
	add := func(style, text string) { out = append(out, textLine{style: style, text: text}) }
	blank := func() { add("", "") }
	width := max(w, 20)
	now := s.now()

	n := s.snap.Node(dc, name)
	if n == nil {
		add(st.bad, "node "+sanitize(name)+" ("+sanitize(dc)+") is not in the current snapshot (it left)")
	} else {
		add(st.healthStyle(n.Health), "Node "+sanitize(n.Name)+"  dc "+sanitize(n.Datacenter)+"  health "+n.Health.String())
		add("", "Address "+orDash(sanitize(n.Address))+"  Group "+orDash(sanitize(n.Group))+"  Zone "+orDash(sanitize(n.Zone)))
		add("", "Instance "+orDash(sanitize(n.InstanceID))+"  Image "+orDash(sanitize(n.Image)))
		if !n.ChangedAt.IsZero() {
			add(st.dim, "Changed "+ago(now, n.ChangedAt)+" ago ("+n.ChangedAt.Format(time.DateTime)+")")
		}

		blank()
		add(st.colHeader, "Services ("+strconv.Itoa(len(n.Services))+")")
		for _, svc := range n.Services {
			line := "  " + sanitize(svc.Name)
			if svc.ID != svc.Name {
				line += " [" + sanitize(svc.ID) + "]"
			}
			if svc.Port != 0 {
				line += "  port " + strconv.Itoa(svc.Port)
			}
			if len(svc.Tags) > 0 {
				tags := make([]string, len(svc.Tags))
				for i, t := range svc.Tags {
					tags[i] = sanitize(t)
				}
				line += "  tags " + strings.Join(tags, ",")
			}
			add("", line)
		}

		blank()
		add(st.colHeader, "Checks ("+strconv.Itoa(len(n.Checks))+")")
		checks := append([]fleet.Check(nil), n.Checks...)
		// Worst first: the failing check is what the reader came for.
		sort.SliceStable(checks, func(i, j int) bool { return checks[i].Status > checks[j].Status })
		for _, c := range checks {
			label := sanitize(c.Name)
			if label == "" {
				label = sanitize(c.ID)
			}
			line := "  " + padWord(c.Status.String(), 11) + " " + label
			if c.ServiceName != "" {
				line += "  (service " + sanitize(c.ServiceName) + ")"
			}
			add(st.healthStyle(c.Status), line)
			for _, ol := range sanitizeLines(c.Output) {
				for _, wl := range wrap(ol, width-6) {
					add(st.dim, "      "+wl)
				}
			}
		}

		out = append(out, s.desiredLines(n, width)...)
		out = append(out, s.deployDetailLines(n)...)

		blank()
		add(st.colHeader, "Meta ("+strconv.Itoa(len(n.Meta))+")")
		keys := make([]string, 0, len(n.Meta))
		for k := range n.Meta {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			add("", "  "+sanitize(k)+" = "+sanitize(n.Meta[k]))
		}
	}

	blank()
	evs := s.snap.NodeEvents(dc, name)
	add(st.colHeader, "Recent events ("+strconv.Itoa(len(evs))+")")
	for i := range evs {
		e := &evs[i]
		style := ""
		if e.Kind == fleet.HealthChanged {
			style = st.healthStyle(e.To)
		}
		add(style, "  "+e.Time.Format(time.DateTime)+"  "+padWord(e.Kind.String(), 10)+" "+sanitize(eventDetail(e)))
	}
	return out
}

// orDash returns s, or "-" when it is empty.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// padWord pads ASCII word w to n cells.
func padWord(w string, n int) string {
	if len(w) >= n {
		return w
	}
	return w + strings.Repeat(" ", n-len(w))
}

// ago renders the duration since t compactly: 5s, 3m, 2h, 4d.
func ago(now, t time.Time) string {
	return compactDuration(now.Sub(t))
}

// compactDuration renders d compactly: 5s, 3m10s, 2h5m, 4d.
func compactDuration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Minute:
		return strconv.Itoa(int(d/time.Second)) + "s"
	case d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + "m" + strconv.Itoa(int(d%time.Minute/time.Second)) + "s"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d/time.Hour)) + "h" + strconv.Itoa(int(d%time.Hour/time.Minute)) + "m"
	}
	return strconv.Itoa(int(d/(24*time.Hour))) + "d"
}
