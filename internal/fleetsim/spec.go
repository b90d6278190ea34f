// Package fleetsim simulates a fleet of cloud servers in a Consul catalog:
// nodes in autoscaling groups with roles (services), tags, health checks and
// the node meta (asg or mig, instance-id, zone, image) that fleetdeck reads.
//
// The simulated nodes have no agent of their own, so they are written
// straight into the catalog through the HTTP API (/v1/txn); anti-entropy
// does not revert them. Load registers a fleet in bulk and Run keeps it
// alive: checks flap, a group scales out and back in, and failed nodes are
// replaced the way an autoscaling group auto-heals. Everything generated is
// deterministic for a given Spec.Seed; only wall time varies.
package fleetsim

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
)

// Spec describes a simulated fleet.
type Spec struct {
	// Datacenter to register into; "" means the agent's own.
	Datacenter string
	// Seed makes the fleet and Run's choices reproducible.
	Seed uint64
	// Nodes is the number of nodes Load registers (hostile nodes included).
	Nodes int
	// Services is the number of distinct service names in the generic pool
	// that fills nodes up to ServicesPerNode. Names come from ServiceNames,
	// then "svc-NN". Zero means no pool: nodes run only their group's roles.
	Services int
	// ServiceNames optionally names the pool's services.
	ServiceNames []string
	// ServicesPerNode tops every node up to this many services from the
	// pool (after its group's roles). Zero means just the group's roles.
	ServicesPerNode int
	// ChecksPerNode is the exact number of checks per node: one node-level
	// check plus service checks spread over the node's services. Zero means
	// one node check plus one check per service.
	ChecksPerNode int
	// Groups the nodes are spread over, by Weight. A group with an empty
	// Name holds nodes outside any autoscaling group.
	Groups []Group
	// Zones nodes are balanced over within each group.
	Zones []string
	// Hostile gives three nodes meta values and check output with escape
	// sequences, RTL text, emoji and CJK, to exercise the console's
	// sanitising. Node names stay DNS-valid.
	Hostile bool
}

// Group is an autoscaling group (or, with an empty Name, unmanaged nodes).
type Group struct {
	// Name is the group name, stored in node meta under MetaKey.
	Name string
	// MetaKey is "asg" (AWS: ip-style node names, i-… instance ids, ami-…
	// images) or "mig" (GCE: <group>-xxxx names, numeric ids, image paths).
	MetaKey string
	// Roles are the services every member runs.
	Roles []string
	// OptionalRoles are each added to a member with probability 1/3.
	OptionalRoles []string
	// Weight is the group's share of Spec.Nodes.
	Weight int
	// Image overrides the generated image name.
	Image string
	// Scalable groups take part in Run's scale-out/in and auto-healing.
	Scalable bool
}

// DemoSpec is the fleet `fleetdeck demo` shows: 320 nodes with 8 roles in 4
// autoscaling groups (three AWS ASGs and a GCE managed instance group) plus
// unmanaged database/search nodes, over two zones, with a few hostile nodes.
func DemoSpec() Spec {
	return Spec{
		Seed:  20261126,
		Nodes: 320,
		Zones: []string{"eu-west-1a", "eu-west-1b"},
		Groups: []Group{
			{Name: "web-asg", MetaKey: "asg", Roles: []string{"web"}, OptionalRoles: []string{"lb"}, Weight: 30, Scalable: true},
			{Name: "api-asg", MetaKey: "asg", Roles: []string{"api"}, OptionalRoles: []string{"queue"}, Weight: 25, Scalable: true},
			{Name: "worker-mig", MetaKey: "mig", Roles: []string{"worker", "queue"}, Weight: 25, Scalable: true},
			{Name: "cache-asg", MetaKey: "asg", Roles: []string{"cache"}, Weight: 10, Scalable: true},
			{Name: "", Roles: []string{"db"}, OptionalRoles: []string{"search"}, Weight: 6},
			{Name: "", Roles: []string{"search", "lb"}, Weight: 4},
		},
		Hostile: true,
	}
}

// ScaleSpec is the fleet used for load tests and benchmarks: n nodes, 50
// services, 5 services and 3 checks per node, 10 groups, 3 zones.
func ScaleSpec(n int) Spec {
	groups := make([]Group, 10)
	for i := range groups {
		groups[i] = Group{Name: fmt.Sprintf("asg-%02d", i), MetaKey: "asg", Weight: 1, Scalable: true}
	}
	return Spec{
		Seed:            1,
		Nodes:           n,
		Services:        50,
		ServicesPerNode: 5,
		ChecksPerNode:   3,
		Groups:          groups,
		Zones:           []string{"us-east-1a", "us-east-1b", "us-east-1c"},
	}
}

// Node is one generated node, as registered in the catalog.
type Node struct {
	Name    string
	Address string
	// Meta holds asg or mig, instance-id, zone and image (plus hostile
	// extras).
	Meta     map[string]string
	Group    string // "" for unmanaged nodes
	Zone     string
	Services []Service
	Checks   []Check
}

// Service is one service instance on a Node.
type Service struct {
	ID   string
	Name string
	Tags []string
	Port int
}

// Check is one health check on a Node; ServiceID is "" for the node check.
type Check struct {
	ID          string
	Name        string
	Status      string // "passing", "warning" or "critical"
	Output      string
	ServiceID   string
	ServiceName string
}

// NodeCheckID is the ID of every simulated node's node-level check. It
// plays the part of a real agent's "serfHealth" check but must not use that
// ID: the Consul leader periodically deregisters ("reaps") every catalog
// node that has a serfHealth check but is not a gossip member, which would
// silently delete simulated nodes about once a minute.
const NodeCheckID = "node-health"

// Fleet returns the nodes Load registers for the spec, in registration
// order. It is deterministic.
func (s Spec) Fleet() ([]Node, error) {
	g, err := newGenerator(s)
	if err != nil {
		return nil, err
	}
	return g.initial(), nil
}

func (s Spec) validate() error {
	switch {
	case s.Nodes < 0:
		return errors.New("fleetsim: Spec.Nodes is negative")
	case len(s.Groups) == 0:
		return errors.New("fleetsim: Spec.Groups is empty")
	case len(s.Zones) == 0:
		return errors.New("fleetsim: Spec.Zones is empty")
	case s.ServicesPerNode > 0 && s.Services == 0:
		return errors.New("fleetsim: Spec.ServicesPerNode needs a Services pool")
	case s.ServicesPerNode > s.Services+maxRoles(s.Groups):
		return errors.New("fleetsim: Spec.ServicesPerNode exceeds the distinct services available")
	case s.ChecksPerNode < 0 || s.ServicesPerNode < 0 || s.Services < 0:
		return errors.New("fleetsim: negative count in Spec")
	}
	total := 0
	for _, g := range s.Groups {
		if g.Weight < 0 {
			return fmt.Errorf("fleetsim: group %q has a negative weight", g.Name)
		}
		if g.Name != "" && g.MetaKey != "asg" && g.MetaKey != "mig" {
			return fmt.Errorf("fleetsim: group %q: MetaKey must be asg or mig", g.Name)
		}
		total += g.Weight
	}
	if total == 0 {
		return errors.New("fleetsim: all group weights are zero")
	}
	return nil
}

func maxRoles(gs []Group) int {
	m := 0
	for _, g := range gs {
		m = max(m, len(g.Roles)+len(g.OptionalRoles))
	}
	return m
}

// roleProfile gives the demo's roles a realistic port and release tag;
// ok is false for other (pool) services. A switch rather than a map keeps
// the package free of mutable globals.
func roleProfile(role string) (port int, version string, ok bool) {
	switch role {
	case "web":
		return 8080, "v1.4.2", true
	case "api":
		return 9090, "v2.11.0", true
	case "worker":
		return 9100, "v1.4.2", true
	case "cache":
		return 6379, "v7.2.4", true
	case "db":
		return 5432, "v16.3", true
	case "search":
		return 9200, "v8.13.1", true
	case "queue":
		return 5672, "v3.13.2", true
	case "lb":
		return 443, "v2.9.7", true
	}
	return 0, "", false
}

// tcpRole reports whether a role answers TCP checks rather than HTTP ones.
func tcpRole(role string) bool {
	switch role {
	case "cache", "db", "queue":
		return true
	}
	return false
}

// generator holds the state needed to create nodes deterministically: the
// initial fleet and, in Run, the nodes that join later.
type generator struct {
	spec     Spec
	rng      *rand.Rand
	pool     []string
	images   []string       // per group
	zoneSeq  []int          // per zone: next address
	groupSeq []int          // per group: members created (zone balancing)
	roleSeq  map[string]int // unmanaged node numbering by first role
	names    map[string]bool
	nodeSeq  int // nodes created, for pool rotation
}

func newGenerator(s Spec) (*generator, error) {
	if err := s.validate(); err != nil {
		return nil, err
	}
	g := &generator{
		spec:     s,
		rng:      rand.New(rand.NewPCG(s.Seed, 0x666c656574646b)),
		zoneSeq:  make([]int, len(s.Zones)),
		groupSeq: make([]int, len(s.Groups)),
		roleSeq:  map[string]int{},
		names:    map[string]bool{},
	}
	for i := 0; i < s.Services; i++ {
		if i < len(s.ServiceNames) {
			g.pool = append(g.pool, s.ServiceNames[i])
		} else {
			g.pool = append(g.pool, fmt.Sprintf("svc-%02d", i))
		}
	}
	for _, gr := range s.Groups {
		img := gr.Image
		switch {
		case img != "":
		case gr.MetaKey == "mig":
			img = fmt.Sprintf("projects/fleetdeck-prod/global/images/%s-debian-12-v2026%02d%02d", strings.TrimSuffix(gr.Name, "-mig"), 1+g.rng.IntN(11), 1+g.rng.IntN(28))
		default:
			img = "ami-" + g.hex(17)
		}
		g.images = append(g.images, img)
	}
	return g, nil
}

func (g *generator) hex(n int) string {
	const digits = "0123456789abcdef"
	b := make([]byte, n)
	for i := range b {
		b[i] = digits[g.rng.IntN(16)]
	}
	return string(b)
}

// initial creates the spec's nodes, spreading them over groups by weight
// with a deterministic largest-remainder walk so small fleets still get
// every group.
func (g *generator) initial() []Node {
	s := g.spec
	total := 0
	for _, gr := range s.Groups {
		total += gr.Weight
	}
	counts := make([]int, len(s.Groups))
	assigned := 0
	for i, gr := range s.Groups {
		counts[i] = s.Nodes * gr.Weight / total
		assigned += counts[i]
	}
	for i := 0; assigned < s.Nodes; i = (i + 1) % len(counts) {
		if s.Groups[i].Weight > 0 {
			counts[i]++
			assigned++
		}
	}
	nodes := make([]Node, 0, s.Nodes)
	// Interleave groups so any prefix of the fleet looks like the whole.
	for len(nodes) < s.Nodes {
		for gi := range s.Groups {
			if counts[gi] > 0 {
				counts[gi]--
				nodes = append(nodes, g.newNode(gi))
			}
		}
	}
	if s.Hostile {
		makeHostile(nodes)
	}
	return nodes
}

// newNode creates the next member of group gi with a fresh name, address and
// instance id.
func (g *generator) newNode(gi int) Node {
	s := g.spec
	gr := s.Groups[gi]
	zi := g.groupSeq[gi] % len(s.Zones)
	g.groupSeq[gi]++
	seq := g.zoneSeq[zi]
	g.zoneSeq[zi]++
	addr := fmt.Sprintf("10.%d.%d.%d", 1+zi, seq/250, 4+seq%250)

	n := Node{Address: addr, Group: gr.Name, Zone: s.Zones[zi], Meta: map[string]string{}}
	switch {
	case gr.Name == "":
		role := "node"
		if len(gr.Roles) > 0 {
			role = gr.Roles[0]
		}
		g.roleSeq[role]++
		n.Name = fmt.Sprintf("%s-%02d", role, g.roleSeq[role])
		n.Meta["instance-id"] = "i-" + g.hex(17)
	case gr.MetaKey == "mig":
		for n.Name == "" || g.names[n.Name] {
			n.Name = gr.Name + "-" + g.base36(4)
		}
		n.Meta["mig"] = gr.Name
		n.Meta["instance-id"] = fmt.Sprintf("%d", 1_000_000_000_000_000_000+g.rng.Int64N(8_000_000_000_000_000_000))
	default:
		n.Name = "ip-" + strings.ReplaceAll(addr, ".", "-")
		n.Meta["asg"] = gr.Name
		n.Meta["instance-id"] = "i-" + g.hex(17)
	}
	for g.names[n.Name] { // unmanaged names could clash with a hand-made spec
		n.Name += "-x"
	}
	g.names[n.Name] = true
	n.Meta["zone"] = n.Zone
	n.Meta["image"] = g.images[gi]

	g.addServices(&n, gr, g.groupSeq[gi] == 1)
	g.addChecks(&n)
	g.nodeSeq++
	return n
}

func (g *generator) base36(n int) string {
	const digits = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	for i := range b {
		b[i] = digits[g.rng.IntN(len(digits))]
	}
	return string(b)
}

func (g *generator) addServices(n *Node, gr Group, firstInGroup bool) {
	roles := append([]string(nil), gr.Roles...)
	for _, r := range gr.OptionalRoles {
		if g.rng.IntN(3) == 0 {
			roles = append(roles, r)
		}
	}
	// Top up from the pool in rotation, so every pool service is used once
	// the fleet has Services/ServicesPerNode nodes.
	for k := 0; len(roles) < g.spec.ServicesPerNode && k < len(g.pool); k++ {
		name := g.pool[(g.nodeSeq*g.spec.ServicesPerNode+k)%len(g.pool)]
		if !contains(roles, name) {
			roles = append(roles, name)
		}
	}
	canary := g.rng.IntN(20) == 0
	for i, r := range roles {
		port, ver, ok := roleProfile(r)
		if !ok {
			port, ver = 20000+i, "v1.0.0"
			for pi, p := range g.pool {
				if p == r {
					port = 20000 + pi
				}
			}
		}
		tags := []string{ver}
		switch r {
		case "web", "api":
			if canary {
				tags = []string{"v1.5.0-rc.1", "canary"}
			}
		case "db", "cache":
			if firstInGroup {
				tags = append(tags, "primary")
			} else {
				tags = append(tags, "replica")
			}
		}
		n.Services = append(n.Services, Service{ID: r, Name: r, Tags: tags, Port: port})
	}
}

func (g *generator) addChecks(n *Node) {
	n.Checks = append(n.Checks, Check{
		ID: NodeCheckID, Name: "Node health (simulated agent)", Status: "passing",
		Output: "Agent alive and reachable",
	})
	want := g.spec.ChecksPerNode
	if want == 0 {
		want = 1 + len(n.Services)
	}
	perService := map[string]int{}
	for i := 1; i < want; i++ {
		if len(n.Services) == 0 {
			n.Checks = append(n.Checks, Check{ID: fmt.Sprintf("disk-%d", i), Name: "Disk usage", Status: "passing", Output: "DISK OK - free space: / 41%"})
			continue
		}
		svc := n.Services[(i-1)%len(n.Services)]
		perService[svc.ID]++
		id := "service:" + svc.ID
		if k := perService[svc.ID]; k > 1 {
			id = fmt.Sprintf("%s:%d", id, k)
		}
		n.Checks = append(n.Checks, Check{
			ID: id, Name: fmt.Sprintf("Service '%s' check", svc.Name), Status: "passing",
			Output: passingOutput(n.Address, svc), ServiceID: svc.ID, ServiceName: svc.Name,
		})
	}
}

func passingOutput(addr string, svc Service) string {
	if tcpRole(svc.Name) {
		return fmt.Sprintf("TCP connect %s:%d: Success", addr, svc.Port)
	}
	return fmt.Sprintf("HTTP GET http://%s:%d/health: 200 OK Output: ok", addr, svc.Port)
}

// failingOutput is what a service check says when it goes bad.
func failingOutput(addr string, svc Check, port int, status string, variant int) string {
	if tcpRole(svc.ServiceName) {
		if status == "warning" {
			return fmt.Sprintf("TCP connect %s:%d: slow response (1.8s > 1s)", addr, port)
		}
		return fmt.Sprintf("dial tcp %s:%d: connect: connection refused", addr, port)
	}
	if status == "warning" {
		return fmt.Sprintf("HTTP GET http://%s:%d/health: 429 Too Many Requests Output: {\"status\":\"degraded\",\"queue_depth\":%d}", addr, port, 900+variant%400)
	}
	if variant%2 == 0 {
		return fmt.Sprintf("HTTP GET http://%s:%d/health: 503 Service Unavailable Output: upstream connect error", addr, port)
	}
	return fmt.Sprintf("Get \"http://%s:%d/health\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)", addr, port)
}

// hostileMetaKey is the node-meta key holding the hostile strings.
const hostileMetaKey = "owner"

// makeHostile puts terminal-hostile strings into three nodes' meta and
// check output, leaving names alone (Consul wants DNS-valid node names).
func makeHostile(nodes []Node) {
	hostile := []struct{ meta, output string }{
		// Escape sequences: colour, window title, clear screen, cursor home.
		{"\x1b[31mALERT\x1b[0m \x1b]0;pwned\x07\x1b[2J\x1b[H owner=ops", "\x1b[1;31mFAIL\x1b[0m\r\nfake: everything is fine\x08\x08\x08\x1b[K"},
		// Right-to-left override and Hebrew/Arabic.
		{"\u202egnp.exe\u202c צוות-תשתיות فريق", "\u202eKO\u202c שרת תקין"},
		// Emoji (wide, ZWJ sequences) and CJK.
		{"🔥🚒 数据库チーム 데이터베이스 👩‍💻", "✅ 全部正常 — 🐢 レイテンシ高め"},
	}
	for i, h := range hostile {
		// Spread over the fleet but deterministic.
		idx := (i*len(nodes))/len(hostile) + 1
		if idx >= len(nodes) {
			continue
		}
		n := &nodes[idx]
		n.Meta[hostileMetaKey] = h.meta
		n.Checks[0].Output = h.output
		if i == 1 {
			// The demo playbooks fail on a node with this meta key, so a
			// run shows a failed host; hostile nodes are never healed away.
			n.Meta[DemoFailMetaKey] = "true"
		}
	}
}

// DemoFailMetaKey marks the one demo node on which the demo playbooks fail
// (they test for the key in consul_meta, never templating its value).
const DemoFailMetaKey = "fleetdeck_demo_fail"

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
