package tui

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/fleetdeck/fleetdeck/fleet"
	"github.com/fleetdeck/fleetdeck/provision"
	"github.com/fleetdeck/fleetdeck/roles"
)

// fakeRoles is a RolesService for the console's own logic (form,
// preview, tracking, display): records and histories the test sets,
// plans computed like the Store's (add, remove, maintenance, revert), and
// Apply answering from fields. The real Applier is tested end to end in
// e2e_roles_test.go.
type fakeRoles struct {
	mu       sync.Mutex
	cat      *roles.Catalog
	records  map[string]roles.Desired
	hist     map[string][]roles.Desired
	plans    []roles.Request
	applied  []roles.Request
	typed    []string
	discards int
	confirm  string
	planErr  error
	applyErr error
	lists    int
	runs     int
}

func newFakeRoles(t *testing.T) *fakeRoles {
	t.Helper()
	cat, err := roles.NewCatalog(roles.Role{Name: "web", Port: 8080}, roles.Role{Name: "api", Port: 9090}, roles.Role{Name: "search"})
	if err != nil {
		t.Fatal(err)
	}
	return &fakeRoles{cat: cat, records: map[string]roles.Desired{}, hist: map[string][]roles.Desired{}}
}

func (f *fakeRoles) Catalog() *roles.Catalog { return f.cat }
func (f *fakeRoles) Who() string             { return "alice@console" }

func (f *fakeRoles) List(_ context.Context, dc string) ([]roles.Desired, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lists++
	var out []roles.Desired
	for _, d := range f.records {
		if d.Datacenter == dc {
			out = append(out, d)
		}
	}
	return out, nil
}

func (f *fakeRoles) History(_ context.Context, dc, node string) ([]roles.Desired, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.hist[dc+"/"+node]), nil
}

// next computes a node's next record as the Store would.
func (f *fakeRoles) next(req roles.Request, n *fleet.Node) (*roles.Desired, roles.Desired) {
	cur, ok := f.records[n.Key()]
	var curp *roles.Desired
	if ok {
		c := cur
		curp = &c
	}
	if req.ApplyOnly {
		return curp, cur // the record as it is (the Applier's ApplyOnly)
	}
	next := roles.Desired{Node: n.Name, Datacenter: n.Datacenter, Generation: cur.Generation + 1, Who: "alice@console", When: t0, Reason: req.Reason,
		Roles: slices.Clone(cur.Roles), Maintenance: cur.Maintenance}
	if req.RevertTo != 0 {
		for _, h := range f.hist[n.Key()] {
			if h.Generation == req.RevertTo {
				next.Roles, next.Maintenance, next.RevertOf = slices.Clone(h.Roles), h.Maintenance, h.Generation
			}
		}
	}
	for _, r := range req.Add {
		if !slices.Contains(next.Roles, r) {
			next.Roles = append(next.Roles, r)
		}
	}
	next.Roles = slices.DeleteFunc(next.Roles, func(r string) bool { return slices.Contains(req.Remove, r) })
	slices.Sort(next.Roles)
	if req.Maintenance != nil {
		next.Maintenance = *req.Maintenance
	}
	return curp, next
}

func (f *fakeRoles) Plan(_ context.Context, req roles.Request) (*roles.Plan, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.plans = append(f.plans, req)
	if f.planErr != nil {
		return nil, f.planErr
	}
	p := &roles.Plan{Request: req, Who: "alice@console"}
	var hosts []string
	for _, n := range req.Targets {
		cur, next := f.next(req, n)
		np := roles.NodePlan{Node: n, Current: cur, Next: next, Write: !req.Check && !req.ApplyOnly}
		var held []string
		if cur != nil {
			held = cur.Roles
		}
		for _, r := range next.Roles {
			if !slices.Contains(held, r) {
				np.Added = append(np.Added, r)
			}
		}
		for _, r := range held {
			if !slices.Contains(next.Roles, r) {
				np.Removed = append(np.Removed, r)
			}
		}
		p.Nodes = append(p.Nodes, np)
		hosts = append(hosts, n.Name)
	}
	argv := []string{"/usr/bin/ansible-playbook", "-i", "/run/inventory.sh", "--limit=" + hosts[0], "/run/playbook/fleetdeck-apply.yml"}
	if req.Check {
		argv = append(argv, "--check", "--diff")
	}
	p.Preview = &provision.Preview{PlanID: fmt.Sprintf("plan-%d", len(f.plans)), Hosts: hosts, Argv: argv, Confirm: f.confirm,
		Request: provision.LaunchRequest{Playbook: "fleetdeck-apply.yml", Scope: provision.ScopeNode, Subject: p.Nodes[0].Key(), Check: req.Check}}
	return p, nil
}

func (f *fakeRoles) Apply(_ context.Context, p *roles.Plan, typed string) (string, []roles.Desired, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.typed = append(f.typed, typed)
	if c := p.Preview.Confirm; c != "" && typed != c {
		return "", nil, fmt.Errorf("applying: %w", provision.ErrConfirmation)
	}
	if f.applyErr != nil {
		return "", nil, f.applyErr
	}
	f.applied = append(f.applied, p.Request)
	f.runs++
	var written []roles.Desired
	for _, np := range p.Nodes {
		if !np.Write {
			continue
		}
		f.records[np.Key()] = np.Next
		f.hist[np.Key()] = append(f.hist[np.Key()], np.Next)
		written = append(written, np.Next)
	}
	return fmt.Sprintf("run-%d", f.runs), written, nil
}

func (f *fakeRoles) Discard(*roles.Plan) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.discards++
}

// newRolesHarness is a harness whose model has fake run manager p and
// roles service r.
func newRolesHarness(t *testing.T, snap *fleet.Snapshot, p Provisioner, r RolesService, ro bool, w, h int) *harness {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	clk := &clock{t: t0}
	pub := fleet.NewPublisher(snap)
	m := New(ctx, Options{Feed: pub, NoColor: true, Now: clk.now, Provisioner: p, ReadOnly: ro, Roles: r})
	h0 := &harness{t: t, m: m, clk: clk, pub: pub, w: w, h: h, ctx: ctx, cancel: cancel, msgs: make(chan tea.Msg, 64)}
	h0.do(tea.WindowSizeMsg{Width: w, Height: h}) // the Nodes view reads the desired records
	return h0
}

// withServices returns a copy of snap (version+1, time +d) in which node
// key has the managed services of rs (and keeps its others) and, with
// maint, Consul's maintenance check.
func withServices(snap *fleet.Snapshot, key string, rs []string, maint bool, d time.Duration) *fleet.Snapshot {
	nodes := make([]*fleet.Node, len(snap.Nodes))
	for i, n := range snap.Nodes {
		nodes[i] = n
		if n.Key() != key {
			continue
		}
		c := *n
		c.Services = nil
		for _, s := range n.Services {
			if !isManaged(s.ID) {
				c.Services = append(c.Services, s)
			}
		}
		for _, r := range rs {
			port := map[string]int{"web": 8080, "api": 9090}[r]
			c.Services = append(c.Services, fleet.Service{ID: roles.ServiceID(r), Name: r, Port: port})
		}
		c.Checks = slices.DeleteFunc(slices.Clone(n.Checks), func(ch fleet.Check) bool { return ch.ID == "_node_maintenance" })
		if maint {
			c.Checks = append(c.Checks, fleet.Check{ID: "_node_maintenance", Name: "Node Maintenance Mode", Status: fleet.HealthMaintenance})
			c.Health = fleet.HealthMaintenance
		}
		c.ChangedAt = snap.Time.Add(d)
		nodes[i] = &c
	}
	return fleet.NewSnapshot(snap.Version+1, snap.Time.Add(d), nodes, snap.Conn, nil)
}

func isManaged(id string) bool {
	return len(id) > len(roles.ServicePrefix) && id[:len(roles.ServicePrefix)] == roles.ServicePrefix
}
