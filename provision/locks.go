package provision

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"
)

// Defaults of a LockManager.
const (
	DefaultLockPrefix = "fleetdeck"
	// DefaultLockTTL is the session TTL. Consul invalidates a session that
	// was not renewed for up to twice its TTL, so a dead console's hosts are
	// free again within about 30 s.
	DefaultLockTTL = 15 * time.Second
	// DefaultLockDelay is Consul's own default: after a session is
	// invalidated (not after a clean release), its keys cannot be locked
	// for this long, which gives a console that lost its session — but may
	// still be running ansible-playbook behind a partition — time to notice
	// (HostLock.Lost) and cancel.
	DefaultLockDelay = 15 * time.Second
	// lockTxnOps is Consul's limit on the operations of one transaction.
	lockTxnOps = 64
)

// LockConfig configures a LockManager. Zero values take the defaults.
type LockConfig struct {
	// Prefix of the lock keys: <Prefix>/locks/<dc>/<node>. Default
	// "fleetdeck".
	Prefix string
	// Datacenter whose KV store holds the locks; default the agent's.
	// Every console must use the same one: KV is per datacenter, and two
	// consoles locking in different datacenters do not exclude each other.
	// The session is created there too, which requires the console's
	// agent to be in that datacenter.
	Datacenter string
	// TTL of the session (Consul's minimum is 10s); default 15s.
	TTL time.Duration
	// LockDelay of the session; default 15s. A negative value asks for the
	// smallest delay Consul has (1 ms).
	LockDelay time.Duration
	// User and Identity name the holder in the lock values; User defaults
	// to the OS user.
	User     string
	Identity string
}

// LockHolder is the value of a lock key: who holds the host.
type LockHolder struct {
	User     string    `json:"user"`
	Identity string    `json:"identity,omitempty"`
	Host     string    `json:"host"` // the machine the console runs on
	PID      int       `json:"pid"`
	RunID    string    `json:"run_id"`
	Since    time.Time `json:"since"`
	Session  string    `json:"session"`
}

// String is "alice@bastion-1 (pid 4242, run 01J…, since 15:04:05)".
func (h LockHolder) String() string {
	who := h.User
	if h.Identity != "" {
		who = h.Identity
	}
	if who == "" {
		who = "unknown"
	}
	s := who
	if h.Host != "" {
		s += "@" + h.Host
	}
	var det []string
	if h.PID != 0 {
		det = append(det, fmt.Sprintf("pid %d", h.PID))
	}
	if h.RunID != "" {
		det = append(det, "run "+h.RunID)
	}
	if !h.Since.IsZero() {
		det = append(det, "since "+h.Since.Local().Format(time.DateTime))
	}
	if len(det) > 0 {
		s += " (" + strings.Join(det, ", ") + ")"
	}
	return s
}

// HeldLock is a host held by another run.
type HeldLock struct {
	Target RunTarget
	Holder LockHolder
}

// LockConflict is the error of an Acquire that found some of its hosts
// held: nothing of the run is locked then. Held names who holds which
// hosts; Pending lists hosts that were free when read back but could not
// be locked (just released, or in Consul's lock-delay after a holder's
// session ended) — retrying shortly will likely succeed.
type LockConflict struct {
	Held    []HeldLock
	Pending []RunTarget
}

// Error says which hosts are held by whom, grouped by holder.
func (e *LockConflict) Error() string {
	var b strings.Builder
	n := len(e.Held) + len(e.Pending)
	fmt.Fprintf(&b, "%d host", n)
	if n != 1 {
		b.WriteString("s")
	}
	b.WriteString(" locked by other runs: ")
	type group struct {
		holder LockHolder
		hosts  []string
	}
	var groups []*group
	bySession := map[string]*group{}
	for _, h := range e.Held {
		g := bySession[h.Holder.Session+"\x00"+h.Holder.RunID]
		if g == nil {
			g = &group{holder: h.Holder}
			bySession[h.Holder.Session+"\x00"+h.Holder.RunID] = g
			groups = append(groups, g)
		}
		g.hosts = append(g.hosts, lockTargetName(h.Target))
	}
	var parts []string
	for _, g := range groups {
		parts = append(parts, lockHostList(g.hosts)+" by "+g.holder.String())
	}
	if len(e.Pending) > 0 {
		var hosts []string
		for _, t := range e.Pending {
			hosts = append(hosts, lockTargetName(t))
		}
		parts = append(parts, lockHostList(hosts)+" just released or in Consul's lock-delay (retry shortly)")
	}
	b.WriteString(strings.Join(parts, "; "))
	return b.String()
}

func lockTargetName(t RunTarget) string {
	if t.Datacenter != "" {
		return t.Node + "." + t.Datacenter
	}
	return t.Node
}

// lockHostList names at most five hosts.
func lockHostList(hosts []string) string {
	if len(hosts) <= 5 {
		return strings.Join(hosts, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(hosts[:5], ", "), len(hosts)-5)
}

// LockManager takes and releases the Consul locks that keep a node out of
// two runs at once, across every console that uses the same Consul (and
// LockConfig.Prefix and Datacenter).
//
// Each run gets its own Consul session (TTL, renewed in the background,
// behavior "delete") and locks the key <prefix>/locks/<dc>/<node> of every
// host with it, all or nothing. A console that dies stops renewing; Consul
// then invalidates the session and deletes its keys, so the hosts free
// themselves without anyone cleaning up by hand.
type LockManager struct {
	client *api.Client
	cfg    LockConfig
	host   string
	pid    int
}

// NewLockManager returns a manager that locks through client.
func NewLockManager(client *api.Client, cfg LockConfig) *LockManager {
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultLockPrefix
	}
	cfg.Prefix = strings.Trim(cfg.Prefix, "/")
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultLockTTL
	}
	if cfg.LockDelay == 0 {
		cfg.LockDelay = DefaultLockDelay
	}
	if cfg.LockDelay < 0 {
		cfg.LockDelay = time.Millisecond
	}
	if cfg.User == "" {
		cfg.User = histUser()
	}
	host, _ := os.Hostname()
	return &LockManager{client: client, cfg: cfg, host: host, pid: os.Getpid()}
}

// Key is the KV key that locks target.
func (m *LockManager) Key(t RunTarget) string {
	dc := t.Datacenter
	if dc == "" {
		dc = "_"
	}
	return m.cfg.Prefix + "/locks/" + dc + "/" + t.Node
}

// HostLock is the set of host locks one run holds.
type HostLock struct {
	m       *LockManager
	runID   string
	session string
	keys    []string
	taken   int // keys[:taken] were locked
	targets []RunTarget

	renewCancel context.CancelFunc // ends a renewer stuck on an unreachable Consul

	stop      chan struct{} // closed by Release: the renewer destroys the session
	renewDone chan struct{} // closed when the renewer returned
	lost      chan struct{} // closed when the session is gone without Release
	lostErr   error         // why; written before lost is closed

	releaseOnce sync.Once
	releaseErr  error
}

// Acquire locks every target for run runID, atomically: either it returns
// a HostLock holding all of them, or nothing is held. A conflict is a
// *LockConflict naming the holders. Targets are locked by Consul node
// (Datacenter, Node); duplicates are locked once.
func (m *LockManager) Acquire(ctx context.Context, runID string, targets []RunTarget) (*HostLock, error) {
	targets = lockDedup(targets)
	if len(targets) == 0 {
		return nil, fmt.Errorf("locking hosts of run %s: no hosts", runID)
	}
	wo := (&api.WriteOptions{Datacenter: m.cfg.Datacenter}).WithContext(ctx)
	session, _, err := m.client.Session().Create(&api.SessionEntry{
		Name:      "fleetdeck run " + runID,
		TTL:       m.cfg.TTL.String(),
		LockDelay: m.cfg.LockDelay,
		Behavior:  api.SessionBehaviorDelete,
	}, wo)
	if err != nil {
		return nil, fmt.Errorf("locking hosts of run %s: creating a Consul session: %w", runID, err)
	}
	l := &HostLock{
		m: m, runID: runID, session: session, targets: targets,
		stop: make(chan struct{}), renewDone: make(chan struct{}), lost: make(chan struct{}),
	}
	for _, t := range targets {
		l.keys = append(l.keys, m.Key(t))
	}
	// Renew from now on: acquiring thousands of hosts in batches can take
	// longer than a TTL.
	renewCtx, cancel := context.WithCancel(context.Background())
	l.renewCancel = cancel
	go l.renew(renewCtx)

	holder, err := json.Marshal(LockHolder{
		User: m.cfg.User, Identity: m.cfg.Identity, Host: m.host, PID: m.pid,
		RunID: runID, Since: time.Now().UTC(), Session: session,
	})
	if err != nil {
		l.abandon()
		return nil, fmt.Errorf("locking hosts of run %s: %w", runID, err)
	}
	for start := 0; start < len(l.keys); start += lockTxnOps {
		end := min(start+lockTxnOps, len(l.keys))
		ops := make(api.TxnOps, 0, end-start)
		for _, k := range l.keys[start:end] {
			ops = append(ops, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVLock, Key: k, Value: holder, Session: session}})
		}
		ok, resp, _, err := m.client.Txn().Txn(ops, (&api.QueryOptions{Datacenter: m.cfg.Datacenter}).WithContext(ctx))
		if err == nil && !ok {
			err = m.conflict(ctx, targets[start:end], resp)
		}
		if err == nil {
			l.taken = end
		}
		if err != nil {
			// Free what earlier batches took, with a context of its own:
			// ctx may be what ended this acquire.
			relCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			relErr := l.Release(relCtx)
			cancel()
			var lc *LockConflict
			if !errors.As(err, &lc) {
				err = fmt.Errorf("locking hosts of run %s: %w", runID, err)
			}
			if relErr != nil {
				err = errors.Join(err, relErr)
			}
			return nil, err
		}
	}
	return l, nil
}

// conflict explains a failed lock transaction: who holds which of
// targets. Errors that are not about held locks (ACLs) are returned as
// they are.
func (m *LockManager) conflict(ctx context.Context, targets []RunTarget, resp *api.TxnResponse) error {
	var whats []string
	lockOnly := true
	if resp != nil {
		for _, e := range resp.Errors {
			whats = append(whats, e.What)
			// "failed to lock key …, lock is already held" or "… due to
			// lock delay"; anything else (ACLs) is not a conflict.
			if !strings.Contains(e.What, "failed to lock key") {
				lockOnly = false
			}
		}
	}
	if !lockOnly {
		return fmt.Errorf("transaction refused: %s", strings.Join(whats, "; "))
	}
	held, err := m.holders(ctx, targets)
	if err != nil {
		return fmt.Errorf("reading who holds the hosts: %w", err)
	}
	lc := &LockConflict{}
	for _, t := range targets {
		if h, ok := held[m.Key(t)]; ok {
			lc.Held = append(lc.Held, HeldLock{Target: t, Holder: h})
		}
	}
	if len(lc.Held) == 0 {
		// Released between our lock and our read, or in lock-delay: name
		// the keys the transaction refused.
		for _, e := range resp.Errors {
			if e.OpIndex >= 0 && e.OpIndex < len(targets) {
				lc.Pending = append(lc.Pending, targets[e.OpIndex])
			}
		}
		if len(lc.Pending) == 0 {
			lc.Pending = targets
		}
	}
	return lc
}

// holders reads the holders of the keys of targets: one prefix read per
// datacenter, not one request per host.
func (m *LockManager) holders(ctx context.Context, targets []RunTarget) (map[string]LockHolder, error) {
	want := map[string]bool{}
	var prefixes []string
	for _, t := range targets {
		k := m.Key(t)
		want[k] = true
		p := k[:strings.LastIndexByte(k, '/')+1]
		if !slices.Contains(prefixes, p) {
			prefixes = append(prefixes, p)
		}
	}
	out := map[string]LockHolder{}
	for _, p := range prefixes {
		pairs, _, err := m.client.KV().List(p, (&api.QueryOptions{Datacenter: m.cfg.Datacenter}).WithContext(ctx))
		if err != nil {
			return nil, err
		}
		for _, kv := range pairs {
			if !want[kv.Key] || kv.Session == "" {
				continue
			}
			var h LockHolder
			if err := json.Unmarshal(kv.Value, &h); err != nil {
				h = LockHolder{User: "unreadable lock value"}
			}
			h.Session = kv.Session
			out[kv.Key] = h
		}
	}
	return out, nil
}

// Held lists every host lock currently held (for a locks view).
func (m *LockManager) Held(ctx context.Context) ([]HeldLock, error) {
	prefix := m.cfg.Prefix + "/locks/"
	pairs, _, err := m.client.KV().List(prefix, (&api.QueryOptions{Datacenter: m.cfg.Datacenter}).WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("listing host locks: %w", err)
	}
	var out []HeldLock
	for _, kv := range pairs {
		if kv.Session == "" {
			continue
		}
		dc, node, ok := strings.Cut(strings.TrimPrefix(kv.Key, prefix), "/")
		if !ok {
			continue
		}
		var h LockHolder
		if err := json.Unmarshal(kv.Value, &h); err != nil {
			h = LockHolder{User: "unreadable lock value"}
		}
		h.Session = kv.Session
		out = append(out, HeldLock{Target: RunTarget{Node: node, Datacenter: dc}, Holder: h})
	}
	return out, nil
}

// renew keeps the session alive until Release; if the session is lost
// (invalidated, or not renewed for a TTL) it closes lost.
func (l *HostLock) renew(ctx context.Context) {
	defer close(l.renewDone)
	err := l.m.client.Session().RenewPeriodic(l.m.cfg.TTL.String(), l.session,
		(&api.WriteOptions{Datacenter: l.m.cfg.Datacenter}).WithContext(ctx), l.stop)
	select {
	case <-l.stop:
		return // released
	default:
	}
	if err == nil {
		err = api.ErrSessionExpired
	}
	l.lostErr = fmt.Errorf("lock session of run %s lost: %w", l.runID, err)
	close(l.lost)
}

// abandon stops the renewer and destroys the session (no keys held yet).
func (l *HostLock) abandon() {
	l.releaseOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		l.stopRenewer(ctx)
	})
}

// stopRenewer makes the renewer destroy the session and return, waiting
// for that at most until ctx ends.
func (l *HostLock) stopRenewer(ctx context.Context) {
	close(l.stop)
	select {
	case <-l.renewDone:
	case <-ctx.Done():
	}
	l.renewCancel()
	<-l.renewDone
}

// Lost is closed when the lock was lost without Release: the session
// expired or was invalidated (Consul unreachable for a TTL, the agent's node
// failed). Another console may then take the hosts: the run should stop.
func (l *HostLock) Lost() <-chan struct{} { return l.lost }

// Err says why the lock was lost, once Lost is closed.
func (l *HostLock) Err() error {
	select {
	case <-l.lost:
		return l.lostErr
	default:
		return nil
	}
}

// Session is the Consul session id of the lock.
func (l *HostLock) Session() string { return l.session }

// Targets are the locked hosts.
func (l *HostLock) Targets() []RunTarget { return slices.Clone(l.targets) }

// Release frees every host and ends the session. The keys are deleted
// first (a clean release, no lock-delay for the next run), then the session
// is destroyed. Release is idempotent; the first call's error is returned.
func (l *HostLock) Release(ctx context.Context) error {
	l.releaseOnce.Do(func() {
		select {
		case <-l.lost:
			// Consul deleted the keys with the session.
		default:
			l.releaseErr = l.deleteKeys(ctx)
		}
		l.stopRenewer(ctx) // RenewPeriodic destroys the session on stop
		// RenewPeriodic ignores the destroy's error; if the session is
		// still there, destroy it (deleting any key a failed delete left).
		if se, _, err := l.m.client.Session().Info(l.session, (&api.QueryOptions{Datacenter: l.m.cfg.Datacenter}).WithContext(ctx)); err == nil && se != nil {
			if _, err := l.m.client.Session().Destroy(l.session, (&api.WriteOptions{Datacenter: l.m.cfg.Datacenter}).WithContext(ctx)); err != nil && l.releaseErr == nil {
				l.releaseErr = fmt.Errorf("releasing hosts of run %s: destroying session: %w", l.runID, err)
			}
		}
	})
	return l.releaseErr
}

// deleteKeys deletes the keys this session still holds, in transactions of
// check-session + delete pairs, so a key that another run took after we
// lost it is never deleted.
func (l *HostLock) deleteKeys(ctx context.Context) error {
	held := func(key string) api.TxnOps {
		return api.TxnOps{
			{KV: &api.KVTxnOp{Verb: api.KVCheckSession, Key: key, Session: l.session}},
			{KV: &api.KVTxnOp{Verb: api.KVDelete, Key: key}},
		}
	}
	qo := (&api.QueryOptions{Datacenter: l.m.cfg.Datacenter}).WithContext(ctx)
	keys := l.keys[:l.taken]
	for start := 0; start < len(keys); start += lockTxnOps / 2 {
		batch := keys[start:min(start+lockTxnOps/2, len(keys))]
		var ops api.TxnOps
		for _, k := range batch {
			ops = append(ops, held(k)...)
		}
		ok, _, _, err := l.m.client.Txn().Txn(ops, qo)
		if err != nil {
			return fmt.Errorf("releasing hosts of run %s: %w", l.runID, err)
		}
		if ok {
			continue
		}
		// Some key is not ours (never taken, or lost): one at a time.
		for _, k := range batch {
			if _, _, _, err := l.m.client.Txn().Txn(held(k), qo); err != nil {
				return fmt.Errorf("releasing host lock %s of run %s: %w", k, l.runID, err)
			}
		}
	}
	return nil
}

// lockDedup sorts targets by key order and drops duplicates. A fixed
// order means two runs contend for their first shared host in the same
// batch rather than each taking part of the other's set.
func lockDedup(targets []RunTarget) []RunTarget {
	out := make([]RunTarget, 0, len(targets))
	seen := map[[2]string]bool{}
	for _, t := range targets {
		k := [2]string{t.Datacenter, t.Node}
		if t.Node == "" || seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b RunTarget) int {
		if c := strings.Compare(a.Datacenter, b.Datacenter); c != 0 {
			return c
		}
		return strings.Compare(a.Node, b.Node)
	})
	return out
}
