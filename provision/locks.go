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

	"github.com/fleetdeck/fleetdeck/internal/consul"
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
	// (HostLock.Lost) and cancel. A run that loses its lock is dead within
	// the TTL of its last renewal (see HostLock.Expires), so a lock delay of
	// at least the TTL keeps the hosts exclusive even when an operator
	// destroys the session by hand.
	DefaultLockDelay = 15 * time.Second
	// DefaultLockReleaseTimeout bounds HostLock.Release, whatever Consul
	// does (a frozen agent, refused connections): quitting never hangs on
	// it. Hosts a release could not free are freed by the session TTL.
	DefaultLockReleaseTimeout = 4 * time.Second
	// lockCallTimeout bounds each Consul request of an acquire or a read.
	lockCallTimeout = 10 * time.Second
)

// LockConfig configures a LockManager. Zero values take the defaults.
type LockConfig struct {
	// Prefix of the lock keys: <Prefix>/locks/<dc>/<node>, kept in the KV
	// store of the node's own datacenter <dc>. Default "fleetdeck".
	Prefix string
	// TTL of the sessions (Consul's minimum is 10s); default 15s. A
	// session is renewed every TTL/5; one not renewed for TTL/2 counts as
	// lost (HostLock.Lost).
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

// HeldLock is a host lock and who holds it.
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
// two runs at once, across every console that uses the same Consul
// datacenters and LockConfig.Prefix.
//
// A node's lock is the key <prefix>/locks/<dc>/<node> in the KV store of
// the node's own datacenter, taken with a session created in that
// datacenter: KV and sessions are per datacenter, so this is the one place
// every console, whatever agent it talks to, looks for that node's lock.
// A run on hosts of several datacenters holds one session per datacenter,
// all or none: they are created and their keys locked in datacenter order,
// and any conflict or error frees what was taken.
//
// Sessions are TTL-only (no health checks; behavior "delete"), renewed in
// the background every TTL/5 with a deadline on each attempt. A console
// that dies stops renewing; Consul then invalidates the session and deletes
// its keys, so the hosts free themselves without anyone cleaning up by hand.
type LockManager struct {
	c    *consul.Client
	cfg  LockConfig
	host string
	pid  int
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
	return &LockManager{c: consul.New(client, consul.Options{}), cfg: cfg, host: host, pid: os.Getpid()}
}

// TTL is the sessions' TTL.
func (m *LockManager) TTL() time.Duration { return m.cfg.TTL }

// Key is the KV key that locks target (in the KV store of the target's
// datacenter).
func (m *LockManager) Key(t RunTarget) string {
	return m.dcPrefix(t.Datacenter) + t.Node
}

// dcPrefix is the key prefix of one datacenter's locks. A target without
// a datacenter is locked in the agent's own, under "_".
func (m *LockManager) dcPrefix(dc string) string {
	if dc == "" {
		dc = "_"
	}
	return m.cfg.Prefix + "/locks/" + dc + "/"
}

// renewEvery, renewLostAfter: a session is renewed every TTL/5 and is
// taken for lost when no renewal has succeeded for TTL/2. Consul promises
// not to expire a session before its TTL (it waits twice as long), so a
// run cancelled with a deadline of one TTL after its last renewal (see
// HostLock.Expires) is gone before any other console can lock its hosts.
func (m *LockManager) renewEvery() time.Duration     { return m.cfg.TTL / 5 }
func (m *LockManager) renewLostAfter() time.Duration { return m.cfg.TTL / 2 }

// lockSession is the session of one datacenter of a HostLock.
type lockSession struct {
	dc    string // "" for the agent's own datacenter
	id    string
	keys  []string
	taken int // keys[:taken] were locked
	// lastOK is when the last renewal that Consul confirmed was sent (the
	// creation for a new session): Consul restarted the TTL after that.
	lastOK time.Time
	gone   bool // Consul said the session no longer exists
}

// HostLock is the set of host locks one run holds.
type HostLock struct {
	m       *LockManager
	runID   string
	targets []RunTarget

	sessions []*lockSession // in datacenter order; set before the renewers start

	stopCtx  context.Context // cancelled by Release: stops the renewers and their requests
	stop     context.CancelFunc
	renewers sync.WaitGroup

	mu      sync.Mutex // guards the sessions' lastOK and gone
	lost    chan struct{}
	lostErr error // written before lost is closed
	lostMu  sync.Once

	releaseOnce sync.Once
	releaseErr  error
}

// Acquire locks every target for run runID, atomically: either it returns
// a HostLock holding all of them, or nothing is held. A conflict is a
// *LockConflict naming the holders. Targets are locked by Consul node
// (Datacenter, Node) in their own datacenter; duplicates are locked once.
// Every Consul request has a deadline of its own within ctx.
func (m *LockManager) Acquire(ctx context.Context, runID string, targets []RunTarget) (*HostLock, error) {
	targets = lockDedup(targets)
	if len(targets) == 0 {
		return nil, fmt.Errorf("locking hosts of run %s: no hosts", runID)
	}
	stopCtx, stop := context.WithCancel(context.Background())
	l := &HostLock{m: m, runID: runID, targets: targets, stopCtx: stopCtx, stop: stop, lost: make(chan struct{})}
	for _, t := range targets { // sorted by datacenter
		if n := len(l.sessions); n == 0 || l.sessions[n-1].dc != t.Datacenter {
			l.sessions = append(l.sessions, &lockSession{dc: t.Datacenter})
		}
		s := l.sessions[len(l.sessions)-1]
		s.keys = append(s.keys, m.Key(t))
	}
	fail := func(err error) (*HostLock, error) {
		// Free what was taken, with a context of its own: ctx may be what
		// ended this acquire.
		relErr := l.Release(context.WithoutCancel(ctx))
		var lc *LockConflict
		if !errors.As(err, &lc) {
			err = fmt.Errorf("locking hosts of run %s: %w", runID, err)
		}
		if relErr != nil {
			err = errors.Join(err, relErr)
		}
		return nil, err
	}
	// All sessions first, then the keys: a run on several datacenters holds
	// all its sessions (renewed from now on: acquiring thousands of hosts
	// can take longer than a TTL) before it takes any key.
	for _, s := range l.sessions {
		sent := time.Now()
		id, err := m.createSession(ctx, s.dc, runID)
		if err != nil {
			return fail(err)
		}
		l.mu.Lock()
		s.id, s.lastOK = id, sent
		l.mu.Unlock()
		l.renewers.Add(1)
		go l.renew(s)
	}
	now := time.Now().UTC()
	for _, s := range l.sessions {
		holder, err := json.Marshal(LockHolder{
			User: m.cfg.User, Identity: m.cfg.Identity, Host: m.host, PID: m.pid,
			RunID: runID, Since: now, Session: s.id,
		})
		if err != nil {
			return fail(err)
		}
		dcTargets := slices.DeleteFunc(slices.Clone(targets), func(t RunTarget) bool { return t.Datacenter != s.dc })
		// In transactions of MaxTxnOps keys, each all or nothing; a
		// refusal frees what earlier ones took (fail releases).
		taken, err := m.c.LockKeys(ctx, consul.Query{Datacenter: s.dc, Timeout: lockCallTimeout}, s.id, s.keys, holder, consul.MaxTxnOps)
		s.taken = taken
		var te *consul.TxnError
		if errors.As(err, &te) {
			err = m.conflict(ctx, s.dc, s.id, dcTargets, te)
		}
		if err != nil {
			var lc *LockConflict
			if !errors.As(err, &lc) && s.dc != "" {
				err = fmt.Errorf("in datacenter %s: %w", s.dc, err)
			}
			return fail(err)
		}
	}
	select {
	case <-l.lost:
		return fail(l.lostErr)
	default:
	}
	return l, nil
}

// createSession creates the run's session in datacenter dc ("" for the
// agent's). The session must name a node of that datacenter: Consul's
// default is the agent's own node, right in its own datacenter; elsewhere
// Consul answers "Missing node registration" and the session is put on a
// server node of dc instead (servers are the nodes least likely to leave;
// the session has no health checks, so the node only has to exist).
func (m *LockManager) createSession(ctx context.Context, dc, runID string) (string, error) {
	create := func(node string) (string, error) {
		return m.c.CreateSession(ctx, consul.Query{Datacenter: dc, Timeout: lockCallTimeout},
			consul.Session{Name: "fleetdeck run " + runID, Node: node, TTL: m.cfg.TTL, LockDelay: m.cfg.LockDelay})
	}
	where := ""
	if dc != "" {
		where = " in datacenter " + dc
	}
	id, err := create("")
	if err != nil && strings.Contains(err.Error(), "Missing node registration") && dc != "" {
		var node string
		node, err = m.serverNode(ctx, dc)
		if err == nil {
			id, err = create(node)
		}
	}
	if err != nil && strings.Contains(err.Error(), "cross datacenter lock must be created at server agent") {
		return "", fmt.Errorf("creating a Consul session%s: %w (Consul creates sessions in another datacenter only through a server: point fleetdeck at a Consul server, or run on hosts of the agent's own datacenter)", where, err)
	}
	if err != nil {
		return "", fmt.Errorf("creating a Consul session%s: %w", where, err)
	}
	return id, nil
}

// serverNode names a Consul server node of datacenter dc (the first by
// name, so every console picks the same one).
func (m *LockManager) serverNode(ctx context.Context, dc string) (string, error) {
	servers, _, err := m.c.Servers(ctx, consul.Query{Datacenter: dc, Timeout: lockCallTimeout})
	if err != nil {
		return "", fmt.Errorf("finding a server node to hold the session: %w", err)
	}
	if len(servers) == 0 {
		return "", errors.New("no Consul server node visible to hold the session (the token needs service:read on \"consul\" and node:read)")
	}
	return servers[0].Node, nil // sorted by name
}

// conflict explains a lock transaction Consul refused: who holds which
// of its targets (te.From to te.To of the datacenter's targets). Errors
// that are not about held locks (ACLs) are returned as they are.
// Every target held by another session is named, not only those of the
// refused batch: a run on 97 hosts, 96 of them held, must say 96, not the
// 63 of the batch that stopped it.
func (m *LockManager) conflict(ctx context.Context, dc, own string, dcTargets []RunTarget, te *consul.TxnError) error {
	targets := dcTargets[te.From:te.To]
	var whats []string
	lockOnly := true
	for _, e := range te.Errors {
		whats = append(whats, e.What)
		// "failed to lock key …, lock is already held" or "… due to
		// lock delay"; anything else (ACLs) is not a conflict.
		if !strings.Contains(e.What, "failed to lock key") {
			lockOnly = false
		}
	}
	if !lockOnly {
		return fmt.Errorf("transaction refused: %s", strings.Join(whats, "; "))
	}
	held, err := m.holders(ctx, dc)
	if err != nil {
		return fmt.Errorf("reading who holds the hosts: %w", err)
	}
	lc := &LockConflict{}
	for _, t := range dcTargets {
		if h, ok := held[m.Key(t)]; ok && h.Session != own {
			lc.Held = append(lc.Held, HeldLock{Target: t, Holder: h})
		}
	}
	if len(lc.Held) == 0 {
		// Released between our lock and our read, or in lock-delay: name
		// the keys the transaction refused.
		for _, e := range te.Errors {
			if e.Op >= te.From && e.Op < te.To {
				lc.Pending = append(lc.Pending, dcTargets[e.Op])
			}
		}
		if len(lc.Pending) == 0 {
			lc.Pending = targets
		}
	}
	return lc
}

// holders reads the held keys of one datacenter's locks: one prefix read,
// not one request per host.
func (m *LockManager) holders(ctx context.Context, dc string) (map[string]LockHolder, error) {
	pairs, _, err := m.c.KVList(ctx, m.dcPrefix(dc), consul.Query{Datacenter: dc, Timeout: lockCallTimeout})
	if err != nil {
		return nil, err
	}
	out := map[string]LockHolder{}
	for _, kv := range pairs {
		if kv.Session == "" {
			continue
		}
		out[kv.Key] = lockHolderOf(kv)
	}
	return out, nil
}

func lockHolderOf(kv *api.KVPair) LockHolder {
	var h LockHolder
	if err := json.Unmarshal(kv.Value, &h); err != nil {
		h = LockHolder{User: "unreadable lock value"}
	}
	h.Session = kv.Session
	return h
}

// Held lists the host locks held now in the given datacenters, each read
// from that datacenter's KV store (one list per datacenter), sorted by
// datacenter and node. With no datacenter it lists every lock key in the
// agent's own datacenter. A datacenter that cannot be read does not hide
// the others: what was read is returned with an error naming it.
func (m *LockManager) Held(ctx context.Context, datacenters ...string) ([]HeldLock, error) {
	type query struct{ dc, prefix string }
	var qs []query
	if len(datacenters) == 0 {
		qs = []query{{"", m.cfg.Prefix + "/locks/"}}
	}
	for _, dc := range datacenters {
		qs = append(qs, query{dc, m.dcPrefix(dc)})
	}
	var out []HeldLock
	var errs []error
	base := m.cfg.Prefix + "/locks/"
	for _, q := range qs {
		pairs, _, err := m.c.KVList(ctx, q.prefix, consul.Query{Datacenter: q.dc, Timeout: lockCallTimeout})
		if err != nil {
			where := "the agent's datacenter"
			if q.dc != "" {
				where = "datacenter " + q.dc
			}
			errs = append(errs, fmt.Errorf("listing host locks in %s: %w", where, err))
			continue
		}
		for _, kv := range pairs {
			if kv.Session == "" {
				continue
			}
			dc, node, ok := strings.Cut(strings.TrimPrefix(kv.Key, base), "/")
			if !ok || node == "" {
				continue
			}
			out = append(out, HeldLock{Target: RunTarget{Node: node, Datacenter: dc}, Holder: lockHolderOf(kv)})
		}
	}
	slices.SortFunc(out, func(a, b HeldLock) int {
		if c := strings.Compare(a.Target.Datacenter, b.Target.Datacenter); c != 0 {
			return c
		}
		return strings.Compare(a.Target.Node, b.Target.Node)
	})
	return out, errors.Join(errs...)
}

// renew keeps one session alive until Release. Each attempt has its own
// deadline, never past the moment the session counts as lost, so a hung
// request cannot hide a lost lock. The lock is lost when no renewal has
// succeeded for renewLostAfter, or at once when Consul says the session is
// gone.
func (l *HostLock) renew(s *lockSession) {
	defer l.renewers.Done()
	m := l.m
	q := consul.Query{Datacenter: s.dc}
	where := ""
	if s.dc != "" {
		where = " in datacenter " + s.dc
	}
	next := time.Now().Add(m.renewEvery())
	var lastErr error
	for {
		l.mu.Lock()
		lostAt := s.lastOK.Add(m.renewLostAfter())
		l.mu.Unlock()
		wait := time.Until(next)
		if d := time.Until(lostAt); d < wait {
			wait = d
		}
		t := time.NewTimer(max(wait, 0))
		select {
		case <-l.stopCtx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if !time.Now().Before(lostAt) {
			err := fmt.Errorf("lock session of run %s%s not renewed for %s (more than half its TTL of %s)", l.runID, where, m.renewLostAfter(), m.cfg.TTL)
			if lastErr != nil {
				err = fmt.Errorf("%w: %w", err, lastErr)
			}
			l.markLost(err)
			return
		}
		sent := time.Now()
		dl := sent.Add(m.renewEvery())
		if dl.After(lostAt) {
			dl = lostAt
		}
		ctx, cancel := context.WithDeadline(l.stopCtx, dl)
		gone, err := m.c.RenewSession(ctx, q, s.id)
		cancel()
		if l.stopCtx.Err() != nil {
			return
		}
		switch {
		case err == nil && gone:
			l.mu.Lock()
			s.gone = true
			l.mu.Unlock()
			l.markLost(fmt.Errorf("lock session of run %s%s lost: %w (Consul no longer knows it)", l.runID, where, api.ErrSessionExpired))
			return
		case err == nil:
			l.mu.Lock()
			s.lastOK = sent
			l.mu.Unlock()
			lastErr = nil
			next = sent.Add(m.renewEvery())
		default:
			// Try again soon: the session is not lost until lostAt.
			lastErr = err
			next = time.Now().Add(min(m.renewEvery(), time.Second))
		}
	}
}

// markLost closes Lost once, with err as the reason.
func (l *HostLock) markLost(err error) {
	l.lostMu.Do(func() {
		l.lostErr = err
		close(l.lost)
	})
}

// Lost is closed when the lock was lost without Release: a session was not
// renewed for half its TTL (Consul unreachable or frozen) or Consul says it
// is gone (invalidated, destroyed by an operator). Another console may take
// the hosts once Consul expires the session: the run must be gone by
// Expires.
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

// Expires is the earliest moment any of the lock's sessions may expire: one
// TTL after the sending of its last renewal that Consul confirmed. Consul
// does not expire a session before its TTL, so a run whose processes are
// gone by then never overlaps with a run that takes its hosts next.
func (l *HostLock) Expires() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	var first time.Time
	for _, s := range l.sessions {
		if s.id == "" {
			continue
		}
		if e := s.lastOK.Add(l.m.cfg.TTL); first.IsZero() || e.Before(first) {
			first = e
		}
	}
	return first
}

// Session is the Consul session id of the lock's first datacenter (the
// only one for a run on one datacenter).
func (l *HostLock) Session() string {
	if len(l.sessions) == 0 {
		return ""
	}
	return l.sessions[0].id
}

// Sessions maps each datacenter of the lock ("" for the agent's own) to
// its session id.
func (l *HostLock) Sessions() map[string]string {
	out := make(map[string]string, len(l.sessions))
	for _, s := range l.sessions {
		if s.id != "" {
			out[s.dc] = s.id
		}
	}
	return out
}

// Targets are the locked hosts.
func (l *HostLock) Targets() []RunTarget { return slices.Clone(l.targets) }

// Release frees every host and ends the sessions: per datacenter the keys
// are deleted first (a clean release, no lock-delay for the next run), then
// the session is destroyed. It returns within DefaultLockReleaseTimeout
// whatever Consul does (and earlier if ctx ends); hosts it could not free
// are freed when Consul expires the sessions. Release is idempotent; the
// first call's error is returned.
func (l *HostLock) Release(ctx context.Context) error {
	l.releaseOnce.Do(func() {
		ctx, cancel := context.WithTimeout(ctx, DefaultLockReleaseTimeout)
		defer cancel()
		// Stop renewing first: a renewal in flight is cancelled, and none
		// can race the destroy.
		l.stop()
		l.renewers.Wait()
		var errs []error
		for _, s := range l.sessions {
			if s.id == "" {
				continue
			}
			l.mu.Lock()
			gone := s.gone
			l.mu.Unlock()
			if gone {
				continue // Consul deleted the keys with the session
			}
			if err := l.deleteKeys(ctx, s); err != nil {
				errs = append(errs, err)
			}
			// Destroying deletes any key a failed delete left (behavior
			// "delete").
			if err := l.m.c.DestroySession(ctx, consul.Query{Datacenter: s.dc}, s.id); err != nil {
				errs = append(errs, fmt.Errorf("releasing hosts of run %s: destroying session %s: %w", l.runID, s.id, err))
			}
		}
		l.releaseErr = errors.Join(errs...)
	})
	return l.releaseErr
}

// deleteKeys deletes the keys this session still holds, in transactions of
// check-session + delete pairs, so a key that another run took after we
// lost it is never deleted.
func (l *HostLock) deleteKeys(ctx context.Context, s *lockSession) error {
	if err := l.m.c.UnlockKeys(ctx, consul.Query{Datacenter: s.dc}, s.id, s.keys[:s.taken], consul.MaxTxnOps); err != nil {
		return fmt.Errorf("releasing hosts of run %s: %w", l.runID, err)
	}
	return nil
}

// lockDedup sorts targets by datacenter and node and drops duplicates. A
// fixed order means two runs contend for their first shared host in the
// same batch rather than each taking part of the other's set, and
// datacenters are always locked in the same order.
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
