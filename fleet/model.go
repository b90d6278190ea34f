// Package fleet owns fleetdeck's domain model — nodes, their roles,
// autoscaling groups, health and the event journal — and the live feed that
// keeps that model current from Consul with blocking queries.
//
// Everything a Watcher publishes is immutable: a *Snapshot and the *Node
// values it points to are never modified after publication, so readers (the
// console, several SSH sessions) can share them without locks. Unchanged
// nodes keep their pointer from one snapshot to the next, which lets callers
// cache derived data (rendered rows, search keys) by pointer.
package fleet

import (
	"slices"
	"sort"
	"strings"
	"time"
)

// Health is the aggregated state of a check, a node or a group of nodes.
// The order is meaningful: a larger value is worse, and a node's health is
// the worst of its checks.
type Health uint8

// Health values, from best to worst.
const (
	HealthPassing Health = iota
	HealthWarning
	HealthCritical
	// HealthMaintenance marks a node or service put in maintenance mode
	// (Consul's _node_maintenance / _service_maintenance checks). It ranks
	// above critical because it explains the critical checks it causes.
	HealthMaintenance
)

var healthNames = [...]string{"passing", "warning", "critical", "maintenance"}

// String returns Consul's name for the status ("passing", "warning", ...).
func (h Health) String() string {
	if int(h) < len(healthNames) {
		return healthNames[h]
	}
	return "unknown"
}

// ParseHealth maps a Consul check status or one of Health's names to a
// Health. ok is false for anything else.
func ParseHealth(s string) (h Health, ok bool) {
	for i, n := range healthNames {
		if strings.EqualFold(s, n) {
			return Health(i), true
		}
	}
	return HealthPassing, false
}

// Check is one Consul health check on a node. A check with an empty
// ServiceID is a node-level check.
type Check struct {
	ID          string
	Name        string
	Status      Health
	Output      string
	ServiceID   string
	ServiceName string
}

// Service is one service instance registered on a node. Its Name is the
// role that the instance gives the node.
type Service struct {
	ID   string
	Name string
	Tags []string
	Port int
}

// Node is one Consul node with everything fleetdeck knows about it.
// Node values are immutable once published in a Snapshot.
type Node struct {
	Name string
	// ID is the Consul node ID (a UUID the agent keeps in its data
	// directory): a new server with an old server's name has a new one.
	ID         string
	Datacenter string
	Address    string
	Meta       map[string]string
	// Services is sorted by ID.
	Services []Service
	// Checks holds the node's checks sorted by ID. Failing checks are always
	// current; passing checks come from the periodic full check read and may
	// lag behind it (see Watcher).
	Checks []Check
	Health Health
	// Group is the autoscaling group read from node meta ("" when none).
	Group      string
	InstanceID string
	Zone       string
	Image      string
	// ChangedAt is when fleetdeck last saw this node change or join; zero
	// for a node unchanged since fleetdeck started watching.
	ChangedAt time.Time
	// Pending says which of the node's facts are not read yet: the node
	// list comes first, its roles and health follow (see
	// ConnState.Pending). Zero once all are known.
	Pending NodePending
}

// NodePending is a set of a node's facts that are still loading.
type NodePending uint8

// What may be pending.
const (
	// PendingRoles: Services (roles, tags, ports) are not read yet.
	PendingRoles NodePending = 1 << iota
	// PendingHealth: Checks and Health are not read yet; Health says
	// passing meanwhile, which means nothing.
	PendingHealth
)

// Key identifies a node across datacenters.
func (n *Node) Key() string { return n.Datacenter + "/" + n.Name }

// Roles returns the distinct service names on the node, sorted.
func (n *Node) Roles() []string {
	roles := make([]string, 0, len(n.Services))
	for _, s := range n.Services {
		roles = append(roles, s.Name)
	}
	sort.Strings(roles)
	return slices.Compact(roles)
}

// HasRole reports whether the node runs an instance of service role.
func (n *Node) HasRole(role string) bool {
	for _, s := range n.Services {
		if s.Name == role {
			return true
		}
	}
	return false
}

// Tags returns the distinct tags over all of the node's services, sorted.
func (n *Node) Tags() []string {
	var tags []string
	for _, s := range n.Services {
		tags = append(tags, s.Tags...)
	}
	sort.Strings(tags)
	return slices.Compact(tags)
}

// FailingChecks returns the checks that are not passing.
func (n *Node) FailingChecks() []Check {
	var out []Check
	for _, c := range n.Checks {
		if c.Status != HealthPassing {
			out = append(out, c)
		}
	}
	return out
}

// Counts tallies nodes by health.
type Counts struct {
	Nodes       int
	Passing     int
	Warning     int
	Critical    int
	Maintenance int
}

// Add counts one node of health h.
func (c *Counts) Add(h Health) {
	c.Nodes++
	switch h {
	case HealthPassing:
		c.Passing++
	case HealthWarning:
		c.Warning++
	case HealthCritical:
		c.Critical++
	case HealthMaintenance:
		c.Maintenance++
	}
}

// Worst returns the worst health present in the tally (passing when empty).
func (c Counts) Worst() Health {
	switch {
	case c.Maintenance > 0:
		return HealthMaintenance
	case c.Critical > 0:
		return HealthCritical
	case c.Warning > 0:
		return HealthWarning
	}
	return HealthPassing
}

// Role summarises the nodes that run one service.
type Role struct {
	Name string
	Counts
}

// Group summarises one autoscaling group.
type Group struct {
	Name string
	Counts
	// Datacenters and Zones the group's nodes are in, sorted.
	Datacenters []string
	Zones       []string
	// Joins and Leaves count node joins and leaves in the journal window
	// passed to Snapshot.Groups.
	Joins  int
	Leaves int
}
