package roles

import "time"

// ServicePrefix is the prefix of a managed role's service ID and of its
// definition file's name in the agent's config dir.
const ServicePrefix = "fleetdeck-"

// ServiceID returns the service ID of managed role name.
func ServiceID(role string) string { return ServicePrefix + role }

// FileName returns the name of managed role name's service definition
// file in the agent's config dir.
func FileName(role string) string { return ServicePrefix + role + ".json" }

// DefaultKVPrefix is the default of [roles] kv_prefix.
const DefaultKVPrefix = "fleetdeck/desired/"

// Role is one entry of the role catalog: the service a node with the role
// runs.
type Role struct {
	// Name is the role's and the service's name: [a-z0-9-], 1–63
	// characters, starting with a letter or digit.
	Name string
	// Port is the service's port (0: none).
	Port int
	// Tags are the service's tags, in order.
	Tags []string
	// Check is the service's health check (nil: none).
	Check *Check
	// Source names where the role was defined ("[roles.web] in FILE"),
	// for messages.
	Source string
}

// Check is a role's health check: exactly one of HTTP, TCP or TTL.
// Script checks do not exist here on purpose: a check is run by the
// agent, and a catalog entry must not become code on every node.
type Check struct {
	// HTTP is the URL the agent GETs; "{address}" is replaced with the
	// node's address when the service definition is built.
	HTTP string
	// TCP is the host:port the agent connects to; "{address}" as above.
	TCP string
	// TTL is the check's time to live: the service must report itself.
	TTL time.Duration
	// Interval and Timeout apply to HTTP and TCP checks.
	Interval, Timeout time.Duration
}

// Maintenance is a node's desired maintenance mode.
type Maintenance struct {
	On     bool   `json:"on"`
	Reason string `json:"reason,omitempty"`
}

// Desired is a node's desired state as recorded in KV (and, identical, in
// each audit record: the audit record of generation G is the desired
// record as G set it).
type Desired struct {
	Node       string `json:"node"`
	Datacenter string `json:"datacenter"`
	// Roles are the managed roles the node must run, sorted, distinct.
	Roles       []string    `json:"roles"`
	Maintenance Maintenance `json:"maintenance"`
	// Generation counts the node's changes from 1.
	Generation uint64 `json:"generation"`
	// Who made the change: user@host (the SSH user when served).
	Who string `json:"who"`
	// When the change was recorded.
	When time.Time `json:"when"`
	// Reason is required: why the change was made.
	Reason string `json:"reason"`
	// RevertOf is the generation this one restores (0: not a revert).
	RevertOf uint64 `json:"revert_of,omitempty"`
	// Change identifies the change that recorded this generation (random,
	// made by the plan). An apply run's link names it along with the
	// generation, so that a run recorded for generation G of another
	// lineage — the KV wiped, another cluster with the same node names, a
	// demo's history outliving its Consul — never counts for this one.
	Change string `json:"change,omitempty"`
}
