package tui

import (
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/fleetdeck/fleetdeck/fleet"
)

// newDetail returns the detail view of node name in datacenter dc.
func newDetail(dc, name string) *view {
	v := newView(viewDetail)
	v.dc, v.node = dc, name
	return v
}

// refreshDetail rebuilds the detail text when the snapshot or the width
// changed. The node is looked up by key in every snapshot, so the view
// follows the node live and says so when it has left.
func (m *Model) refreshDetail(v *view) {
	if v.linesGen == m.gen && v.linesWidth == m.width && !v.dirty {
		return
	}
	v.lines = m.detailLines(v.dc, v.node)
	v.linesGen, v.linesWidth, v.dirty = m.gen, m.width, false
	m.clampCursor(v)
}

// detailLines renders everything known about one node: identity, services
// with tags and ports, checks with their output, meta, recent events.
func (m *Model) detailLines(dc, name string) []textLine {
	st := &m.st
	var out []textLine
	add := func(style, text string) { out = append(out, textLine{style: style, text: text}) }
	blank := func() { add("", "") }
	width := max(m.width, 20)
	now := m.now()

	n := m.snap.Node(dc, name)
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
		for _, s := range n.Services {
			line := "  " + sanitize(s.Name)
			if s.ID != s.Name {
				line += " [" + sanitize(s.ID) + "]"
			}
			if s.Port != 0 {
				line += "  port " + strconv.Itoa(s.Port)
			}
			if len(s.Tags) > 0 {
				tags := make([]string, len(s.Tags))
				for i, t := range s.Tags {
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
	evs := m.snap.NodeEvents(dc, name)
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
