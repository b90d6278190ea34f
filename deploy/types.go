package deploy

import (
	"time"

	"github.com/fleetdeck/fleetdeck/fleet"
)

// This file holds the values the deployment server keeps in KV (records,
// the scheduler's State) and shows (Decisions). They are plain data with
// JSON-friendly shapes (string map keys, no pointers into other values) so
// the store (store.go, written apart) can persist them as they are and a
// new leader continues exactly where the old one stopped.

// Selector decides whether a stage applies to a node. It is the console's
// filter language compiled by package tui; deploy never imports tui (domain
// packages do not import the console), so cmd passes tui's compiler to
// DecodeConfig.
type Selector interface {
	Match(*fleet.Node) bool
}

// Inputs are what a stage's run on a node depended on. A successful record
// counts only while the inputs it was made with are the current ones: a
// changed playbook, changed stage settings or (for @roles stages) a new
// desired generation make the stage due again.
type Inputs struct {
	// PlaybookSum is the hex SHA-256 of the stage's playbook file.
	PlaybookSum string `json:"playbook_sum"`
	// SettingsSum is Stage.SettingsSum: the settings that change what a
	// run does.
	SettingsSum string `json:"settings_sum"`
	// DesiredGen is the node's desired-roles generation; always 0 for a
	// stage that does not run @roles, so a roles change does not re-run
	// every stage.
	DesiredGen uint64 `json:"desired_gen,omitempty"`
}

// Outcome is how a stage's run ended on one node.
type Outcome string

// Outcomes of a run on one node.
const (
	Succeeded Outcome = "succeeded"
	Failed    Outcome = "failed"
	// Cancelled: the run was stopped (shutdown, lost leadership); it
	// counts neither as an attempt nor against the breaker.
	Cancelled Outcome = "cancelled"
)

// Record is the result of one stage on one node incarnation: the store
// keeps the latest per RecordKey(incarnation, stage).
type Record struct {
	Incarnation string    `json:"incarnation"`
	Node        string    `json:"node"` // fleet.Node.Key(): datacenter/name
	Stage       string    `json:"stage"`
	Inputs      Inputs    `json:"inputs"`
	Outcome     Outcome   `json:"outcome"`
	RunID       string    `json:"run_id"`
	At          time.Time `json:"at"`
}

// RecordKey is the key of a node incarnation's record of a stage, in the
// records map Due reads and in the scheduler's State. A string (not a
// struct) so the maps encode as JSON objects.
func RecordKey(incarnation, stage string) string { return incarnation + "|" + stage }

// DueItem is one stage due on one node: the node matches the stage's
// select, every stage it comes after is applied with current inputs, and
// it has no successful record with these inputs.
type DueItem struct {
	Node        string `json:"node"` // datacenter/name
	Name        string `json:"name"` // the node name, the run's --limit host
	Incarnation string `json:"incarnation"`
	Stage       string `json:"stage"`
	Inputs      Inputs `json:"inputs"`
}

// Key is the item's RecordKey.
func (d DueItem) Key() string { return RecordKey(d.Incarnation, d.Stage) }

// Kind says what a Decision is.
type Kind string

// Decision kinds: every one is recorded and shown with its reason.
const (
	KindDue           Kind = "due"            // a node became due for a stage
	KindBatched       Kind = "batched"        // a stage's quiet period ended; its due nodes form batches
	KindLaunched      Kind = "launched"       // a run was started for a batch
	KindSkipped       Kind = "skipped"        // a ready batch waits: Reason and Until say why and until when
	KindSucceeded     Kind = "succeeded"      // a node's stage run succeeded
	KindFailed        Kind = "failed"         // a node's stage run failed; retried after Until
	KindHeld          Kind = "held"           // a node (Stage "" for every stage) waits for an operator
	KindReleased      Kind = "released"       // an operator released a hold
	KindBreakerOpened Kind = "breaker-opened" // too many of the last runs failed: nothing launches until Until
	KindBreakerClosed Kind = "breaker-closed" // the cool-down ended
	KindPaused        Kind = "paused"         // an operator paused launching
	KindResumed       Kind = "resumed"        // an operator resumed launching
	KindRerun         Kind = "rerun"          // an operator asked a node's stage to run again
	KindLeader        Kind = "leader"         // an instance became leader, or stopped leading
	KindStopped       Kind = "stopped"        // launching stopped: why (Consul unreachable, shutdown)
	KindDefaults      Kind = "defaults"       // a new node got its group's default roles
	KindForgotten     Kind = "forgotten"      // records of an incarnation gone from the fleet were dropped
)

// Decision is one thing the scheduler decided, with why and until when.
type Decision struct {
	// Seq numbers the decisions of a datacenter (the store assigns it).
	Seq   uint64    `json:"seq"`
	At    time.Time `json:"at"`
	Kind  Kind      `json:"kind"`
	Stage string    `json:"stage,omitempty"`
	// Node and Incarnation are set for decisions about one node.
	Node        string `json:"node,omitempty"`
	Incarnation string `json:"incarnation,omitempty"`
	RunID       string `json:"run_id,omitempty"`
	// Batch is the run's nodes (KindLaunched).
	Batch  []DueItem `json:"batch,omitempty"`
	Reason string    `json:"reason"`
	// Until is when what is decided ends (backoff, skip, breaker); zero
	// for "until an operator acts" or "not applicable".
	Until time.Time `json:"until,omitzero"`
}

// Hold is a node (Stage "") or a node's stage kept from running until an
// operator releases it.
type Hold struct {
	Node        string    `json:"node"`
	Incarnation string    `json:"incarnation"`
	Stage       string    `json:"stage,omitempty"`
	Reason      string    `json:"reason"`
	At          time.Time `json:"at"`
}

// Attempt counts a node's failed runs of a stage since its last success.
type Attempt struct {
	Failures int       `json:"failures"`
	LastAt   time.Time `json:"last_at"`
	// NextAt is when the backoff ends and the stage may run again.
	NextAt time.Time `json:"next_at"`
}

// Pending is one stage's due nodes waiting out the quiet period.
type Pending struct {
	// FirstAt is when the first of them became due; LastNewAt when the
	// latest new one did.
	FirstAt   time.Time `json:"first_at"`
	LastNewAt time.Time `json:"last_new_at"`
	// Items by RecordKey, with when each became due.
	Items map[string]PendingItem `json:"items"`
	// Formed: the quiet period ended, the items launch as capacity allows
	// (a later new item joins without a new quiet period).
	Formed bool `json:"formed,omitempty"`
}

// PendingItem is a due node waiting in a stage's Pending.
type PendingItem struct {
	Item  DueItem   `json:"item"`
	Since time.Time `json:"since"`
}

// Running is a launched run not finished yet.
type Running struct {
	Stage     string    `json:"stage"`
	StartedAt time.Time `json:"started_at"`
	Items     []DueItem `json:"items"`
}

// Breaker is the circuit breaker's state.
type Breaker struct {
	// Window holds the outcomes of the last runs (true: failed), oldest
	// first, at most Guards.BreakerWindow.
	Window   []bool    `json:"window"`
	Open     bool      `json:"open"`
	OpenedAt time.Time `json:"opened_at,omitzero"`
	Until    time.Time `json:"until,omitzero"`
}

// State is everything the scheduler remembers between passes; the store
// keeps it in KV so a new leader continues from it.
type State struct {
	Seq      uint64              `json:"seq"` // numbers run IDs
	Paused   string              `json:"paused,omitempty"`
	Pending  map[string]*Pending `json:"pending"`  // by stage
	Running  map[string]Running  `json:"running"`  // by run ID
	Attempts map[string]Attempt  `json:"attempts"` // by RecordKey
	Holds    map[string]Hold     `json:"holds"`    // by RecordKey (stage "" for the node)
	// Launches are the start times of the runs of the last hour
	// (runs_per_hour).
	Launches []time.Time `json:"launches"`
	Breaker  Breaker     `json:"breaker"`
	// Due, LeftAt and Flips detect oscillation: the stages each
	// incarnation is due for, when each stage last left that set, and
	// when a stage came back into it within the hour.
	Due    map[string][]string             `json:"due"`
	LeftAt map[string]map[string]time.Time `json:"left_at"`
	Flips  map[string][]time.Time          `json:"flips"`
	// Skips is the last skip reason shown per stage, so a batch that keeps
	// waiting for the same reason is one decision, not one per pass.
	Skips map[string]string `json:"skips"`
	// Guards are the leader's guards as it last saved the state: the
	// status shows what the leader enforces, not the reader's config.
	Guards *Guards `json:"guards,omitempty"`
}
