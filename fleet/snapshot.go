package fleet

import (
	"slices"
	"sort"
	"strings"
	"time"
)

// EventKind says what an Event records.
type EventKind uint8

// Event kinds.
const (
	NodeJoined EventKind = iota + 1
	NodeLeft
	HealthChanged
	RolesChanged
	GroupSizeChanged
)

var eventKindNames = map[EventKind]string{
	NodeJoined:       "joined",
	NodeLeft:         "left",
	HealthChanged:    "health",
	RolesChanged:     "roles",
	GroupSizeChanged: "group-size",
}

// String returns a short lower-case name for the kind.
func (k EventKind) String() string {
	if s, ok := eventKindNames[k]; ok {
		return s
	}
	return "unknown"
}

// Event is one entry of the journal: something that changed in the fleet,
// stamped with the time fleetdeck saw it. These are the incident timestamps
// that logs and runs jump from.
type Event struct {
	// Seq increases by one per event over the life of a Watcher.
	Seq        uint64
	Time       time.Time
	Kind       EventKind
	Datacenter string
	Node       string
	Group      string
	// For HealthChanged: the check (empty CheckID means the node's
	// aggregate), its old and new status and the new output.
	CheckID   string
	CheckName string
	From, To  Health
	Output    string
	// For RolesChanged: the roles before and after. For GroupSizeChanged:
	// the group's old and new size in Before/After.
	OldRoles, NewRoles []string
	Before, After      int
	// Last is, for NodeLeft, the node as last seen: its meta (instance id,
	// zone) stays reachable after it left, e.g. to read its logs.
	Last *Node
}

// ConnStatus is the state of fleetdeck's connection to Consul.
type ConnStatus uint8

// Connection states, from best to worst.
const (
	// Connecting: no answer yet.
	Connecting ConnStatus = iota
	// Connected: answers arrive and the data is fresh.
	Connected
	// Stale: answers arrive but the answering server has lost contact with
	// the leader (or there is none), so the data may be old.
	Stale
	// Unresponsive: requests neither succeed nor fail — Consul (or a proxy
	// in front of it) has gone silent: a frozen agent, a black-holed
	// connection. Nothing has answered for LivenessTimeout; the last
	// snapshot is kept and shown as last known.
	Unresponsive
	// Degraded: requests fail; the last snapshot is kept and retried.
	Degraded
)

// String returns a lower-case name for the status.
func (s ConnStatus) String() string {
	switch s {
	case Connecting:
		return "connecting"
	case Connected:
		return "connected"
	case Stale:
		return "stale"
	case Unresponsive:
		return "unresponsive"
	case Degraded:
		return "degraded"
	}
	return "unknown"
}

// ConnState describes the connection to one datacenter.
type ConnState struct {
	Datacenter string
	Status     ConnStatus
	// LastError is the most recent error, with what was being done.
	LastError string
	// NextRetry is when the failing request will be tried again.
	NextRetry time.Time
	// LastSuccess is when a request last succeeded.
	LastSuccess time.Time
	// LastContact is how long ago the answering server heard from the
	// leader, as Consul reports it on stale reads.
	LastContact time.Duration
	KnownLeader bool
	// FilteredByACL is set when Consul left results out because the token
	// may not read them: the fleet shown is then incomplete.
	FilteredByACL bool
	// HealthIncomplete is set when the checks were filtered by ACLs: a
	// node may show passing while a check the token cannot read fails.
	HealthIncomplete bool
	// AnonymousEmpty is set when fleetdeck reads without a token and the
	// catalog answered with no node at all. A reachable Consul always has
	// nodes (its servers), and Consul never reports filtering to anonymous
	// requests, so this means an ACL default policy of "deny".
	AnonymousEmpty bool
	// Pending names what has not been read yet: "nodes", "roles",
	// "health", "check details". Nodes are published as soon as the node
	// list arrives, before their roles and health; a consumer that needs
	// them complete waits until Pending is empty (Complete).
	Pending []string
}

// Complete reports whether the datacenter's data is all there: connected
// (or stale) and nothing pending.
func (c ConnState) Complete() bool {
	return (c.Status == Connected || c.Status == Stale) && len(c.Pending) == 0
}

// Loading reports whether what is still pending includes what (one of
// the Pending words).
func (c ConnState) Loading(what string) bool { return slices.Contains(c.Pending, what) }

// Snapshot is one immutable, versioned view of the whole fleet.
type Snapshot struct {
	// Version increases with every published snapshot.
	Version uint64
	// Time is when the snapshot was built.
	Time time.Time
	// Nodes is sorted by datacenter, then name.
	Nodes []*Node
	// Datacenters lists the datacenters watched, sorted.
	Datacenters []string
	Counts      Counts
	// Conn has one entry per watched datacenter, in Datacenters order.
	Conn []ConnState
	// Events is the journal, oldest first, bounded by the journal size.
	Events []Event
	// Checks is the number of checks known (all statuses) from the last
	// full check read plus failing checks seen since.
	Checks int

	byKey map[string]*Node
}

// Node returns the node name in datacenter dc, or nil.
func (s *Snapshot) Node(dc, name string) *Node {
	if s == nil {
		return nil
	}
	return s.byKey[dc+"/"+name]
}

// Status returns the worst connection status over all datacenters, and
// the state of the datacenter that has it.
func (s *Snapshot) Status() ConnState {
	if s == nil || len(s.Conn) == 0 {
		return ConnState{Status: Connecting}
	}
	worst := s.Conn[0]
	for _, c := range s.Conn[1:] {
		if c.Status > worst.Status {
			worst = c
		}
	}
	return worst
}

// Complete reports whether every datacenter's data is all there (see
// ConnState.Complete): what a consumer that needs roles and health, not
// just the first rows, waits for.
func (s *Snapshot) Complete() bool {
	if s == nil || len(s.Conn) == 0 {
		return false
	}
	for _, c := range s.Conn {
		if !c.Complete() {
			return false
		}
	}
	return true
}

// Loading returns what is still pending in any datacenter, in the order
// of ConnState.Pending, without repeats.
func (s *Snapshot) Loading() []string {
	var out []string
	for _, c := range s.Conn {
		for _, p := range c.Pending {
			if !slices.Contains(out, p) {
				out = append(out, p)
			}
		}
	}
	return out
}

// Roles summarises every role (service name) in the fleet, sorted by name.
func (s *Snapshot) Roles() []Role {
	idx := map[string]int{}
	var roles []Role
	for _, n := range s.Nodes {
		for _, r := range n.Roles() {
			i, ok := idx[r]
			if !ok {
				i = len(roles)
				idx[r] = i
				roles = append(roles, Role{Name: r})
			}
			roles[i].Add(n.Health)
		}
	}
	sort.Slice(roles, func(i, j int) bool { return roles[i].Name < roles[j].Name })
	return roles
}

// Groups summarises every autoscaling group, sorted by name. Joins and
// leaves are counted from journal events newer than since. Nodes without a
// group are not included.
func (s *Snapshot) Groups(since time.Time) []Group {
	idx := map[string]int{}
	var groups []Group
	get := func(name string) *Group {
		i, ok := idx[name]
		if !ok {
			i = len(groups)
			idx[name] = i
			groups = append(groups, Group{Name: name})
		}
		return &groups[i]
	}
	for _, n := range s.Nodes {
		if n.Group == "" {
			continue
		}
		g := get(n.Group)
		g.Add(n.Health)
		g.Datacenters = addSorted(g.Datacenters, n.Datacenter)
		if n.Zone != "" {
			g.Zones = addSorted(g.Zones, n.Zone)
		}
	}
	for _, e := range s.Events {
		if e.Group == "" || e.Time.Before(since) {
			continue
		}
		switch e.Kind {
		case NodeJoined:
			get(e.Group).Joins++
		case NodeLeft:
			get(e.Group).Leaves++
		}
	}
	sort.Slice(groups, func(i, j int) bool { return groups[i].Name < groups[j].Name })
	return groups
}

// addSorted inserts v into the sorted set xs.
func addSorted(xs []string, v string) []string {
	i := sort.SearchStrings(xs, v)
	if i < len(xs) && xs[i] == v {
		return xs
	}
	xs = append(xs, "")
	copy(xs[i+1:], xs[i:])
	xs[i] = v
	return xs
}

// NodeEvents returns the journal events about one node, newest first.
func (s *Snapshot) NodeEvents(dc, name string) []Event {
	var out []Event
	for i := len(s.Events) - 1; i >= 0; i-- {
		e := s.Events[i]
		if e.Node == name && e.Datacenter == dc {
			out = append(out, e)
		}
	}
	return out
}

// NewSnapshot assembles a Snapshot from its parts: it sorts nodes by
// datacenter and name and derives the counts, datacenter list and index.
// The caller hands over ownership of nodes, conn and events.
func NewSnapshot(version uint64, at time.Time, nodes []*Node, conn []ConnState, events []Event) *Snapshot {
	cmp := func(a, b *Node) int {
		if c := strings.Compare(a.Datacenter, b.Datacenter); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	}
	// The Watcher hands over nodes already in order; checking is O(n).
	if !slices.IsSortedFunc(nodes, cmp) {
		slices.SortFunc(nodes, cmp)
	}
	s := &Snapshot{
		Version: version,
		Time:    at,
		Nodes:   nodes,
		Conn:    conn,
		Events:  events,
		byKey:   make(map[string]*Node, len(nodes)),
	}
	for _, c := range conn {
		s.Datacenters = addSorted(s.Datacenters, c.Datacenter)
	}
	for _, n := range nodes {
		s.byKey[n.Key()] = n
		s.Counts.Add(n.Health)
		s.Checks += len(n.Checks)
		s.Datacenters = addSorted(s.Datacenters, n.Datacenter)
	}
	return s
}
