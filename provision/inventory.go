package provision

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/fleetdeck/fleetdeck/fleet"
	"github.com/fleetdeck/fleetdeck/internal/termtext"
)

// Group names.
//
// Every group name is an Ansible-valid identifier: [A-Za-z0-9_], never
// starting with a digit (each starts with a fixed lower-case prefix). The
// parts that come from Consul are mapped character by character: every
// character outside [A-Za-z0-9_] (including each non-ASCII character)
// becomes "_". Case is kept. The groups are
//
//	dc_<datacenter>
//	svc_<service>
//	svc_<service>__tag_<tag>
//	meta_<key>_<value>          (node meta; see InventoryOptions)
//	asg_<group>                 (the node's autoscaling group, fleet.Node.Group)
//	health_passing, health_warning, health_critical, health_maintenance
//
// The four health groups are always present, empty or not, so a play that
// targets health_critical matches nothing rather than failing on an unknown
// pattern.
//
// Two different sources can map to the same name (services "web-api" and
// "web.api" both give svc_web_api). Then the source whose unmapped name is
// already that identifier keeps it, and every other one gets a suffix
// "_h<8 hex digits of SHA-256 of the source>", with a warning; if none is
// exact, all of them get a suffix. Hosts of different sources are never
// merged into one group.

// Host names.
//
// A node keeps its Consul name as its inventory host name when Ansible can
// target that name exactly: it matches [A-Za-z0-9][A-Za-z0-9._-]*, is not
// "all", "ungrouped", "localhost" or "127.0.0.1" (in any case), is not a
// group name, and no other node has the same name. Everything else —
// names with ",", ":", whitespace, glob or regex characters, names starting
// with "-", "@", "!", "&", "~" or "_" (Ansible reads "__ansible_unsafe" and
// "__ansible_vault" keys specially), non-ASCII names — gets the alias
//
//	fd_<name mapped like a group part, at most 40 characters>_<8 hex digits>
//
// where the hex digits are the start of SHA-256("<dc>/<name>"), lengthened
// in the unlikely case the alias is taken. The real name stays in the
// consul_node host variable and every alias comes with a warning.
//
// A node name present in more than one datacenter is qualified as Consul's
// DNS name for it, "<name>.node.<dc>.consul", in every datacenter it is in
// (with a warning), so no datacenter's node silently takes another's name.
// InventoryOptions.QualifyAll qualifies every node that way.

// InventoryOptions tunes BuildInventory. The zero value is usable.
type InventoryOptions struct {
	// MetaGroupKeys limits the meta_<key>_<value> groups to these node-meta
	// keys. Nil means every key except those in SkipMetaGroupKeys.
	MetaGroupKeys []string
	// SkipMetaGroupKeys are node-meta keys that make no groups when
	// MetaGroupKeys is nil. Nil means {"instance-id"}: a key whose value is
	// unique per node would make one group per node (10,000 groups at 10k
	// nodes) for nothing a host name does not already do. Pass an empty
	// non-nil slice to group by every key.
	SkipMetaGroupKeys []string
	// QualifyAll names every host "<name>.node.<dc>.consul" instead of only
	// the names present in more than one datacenter.
	QualifyAll bool
}

// InventoryWarning is something about the inventory a user should know:
// an aliased or qualified host, a renamed group, a host without a usable
// address, a dropped meta key.
type InventoryWarning struct {
	// Node is the node key ("<dc>/<name>"); empty for group warnings.
	Node string
	// Host is the node's inventory host name, when the warning is about a
	// node.
	Host string
	// Group is the group name, when the warning is about a group.
	Group string
	// Message is one line, sanitised for a terminal (termtext.Sanitize):
	// it quotes Consul's names and `fleetdeck inventory` prints it as is.
	Message string
}

// String returns the warning as one line.
func (w InventoryWarning) String() string { return w.Message }

// AnsibleUnsafe is a string that Ansible must never template. It marshals
// to {"__ansible_unsafe": "..."}, which ansible-core's JSON decoder (used by
// the script inventory plugin and the YAML/JSON inventory plugin) turns
// into an AnsibleUnsafeText: "{{ ... }}" in it stays literal text.
type AnsibleUnsafe string

// MarshalJSON implements json.Marshaler.
func (u AnsibleUnsafe) MarshalJSON() ([]byte, error) {
	return u.appendJSON(make([]byte, 0, len(u)+24)), nil
}

func (u AnsibleUnsafe) appendJSON(b []byte) []byte {
	b = append(b, `{"__ansible_unsafe":`...)
	b = termtext.AppendJSONString(b, string(u))
	return append(b, '}')
}

// UnmarshalJSON implements json.Unmarshaler. It accepts the wrapped form
// and, for convenience, a plain JSON string.
func (u *AnsibleUnsafe) UnmarshalJSON(b []byte) error {
	var s string
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return fmt.Errorf("decoding an unsafe string: %w", err)
		}
		*u = AnsibleUnsafe(s)
		return nil
	}
	var w struct {
		V *string `json:"__ansible_unsafe"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return fmt.Errorf("decoding an unsafe string: %w", err)
	}
	if w.V == nil {
		return fmt.Errorf("decoding an unsafe string: no __ansible_unsafe key in %.60s", b)
	}
	*u = AnsibleUnsafe(*w.V)
	return nil
}

// InventoryService is one service instance in a host's consul_services.
type InventoryService struct {
	ID   AnsibleUnsafe   `json:"id"`
	Name AnsibleUnsafe   `json:"name"`
	Tags []AnsibleUnsafe `json:"tags"`
	Port int             `json:"port"`
}

// InventoryCheck is one failing check in a host's consul_failing_checks.
type InventoryCheck struct {
	ID      AnsibleUnsafe `json:"id"`
	Name    AnsibleUnsafe `json:"name"`
	Status  AnsibleUnsafe `json:"status"`
	Output  AnsibleUnsafe `json:"output"`
	Service AnsibleUnsafe `json:"service"`
}

// InventoryHostVars are one host's variables. Every string is an
// AnsibleUnsafe, including ansible_host: none of it is ever templated.
// Meta keys are not wrapped (JSON object keys cannot be), but Consul only
// allows [A-Za-z0-9_-] in them, so they cannot hold a template.
type InventoryHostVars struct {
	// AnsibleHost is the node's address; empty (and left out) when the
	// address is neither an IP address nor a DNS name, since ssh would
	// read an address such as "-oProxyCommand=…" as an option.
	AnsibleHost AnsibleUnsafe `json:"ansible_host,omitempty"`
	// Node and Datacenter are the node's real Consul name and datacenter.
	Node       AnsibleUnsafe `json:"consul_node"`
	Datacenter AnsibleUnsafe `json:"consul_dc"`
	Address    AnsibleUnsafe `json:"consul_address"`
	// Meta is the node meta, without the keys "__ansible_unsafe" and
	// "__ansible_vault", which Ansible's decoder would act on.
	Meta     map[string]AnsibleUnsafe `json:"consul_meta"`
	Services []InventoryService       `json:"consul_services"`
	// Roles are the distinct service names, Tags the distinct tags over all
	// services; both sorted.
	Roles  []AnsibleUnsafe `json:"consul_roles"`
	Tags   []AnsibleUnsafe `json:"consul_tags"`
	Health AnsibleUnsafe   `json:"consul_health"`
	// Group is the autoscaling group ("" when none).
	Group         AnsibleUnsafe    `json:"consul_group"`
	Zone          AnsibleUnsafe    `json:"consul_zone"`
	InstanceID    AnsibleUnsafe    `json:"consul_instance_id"`
	Image         AnsibleUnsafe    `json:"consul_image"`
	FailingChecks []InventoryCheck `json:"consul_failing_checks"`
	// Extra are variables a run adds to this host (the manager's
	// LaunchRequest.HostVars), by name, each already encoded as JSON with
	// every string wrapped as an AnsibleUnsafe (see hostvars.go). WriteList
	// and WriteHost write them after the consul_* variables, sorted by
	// name; BuildInventory never sets them. json.Marshal leaves them out:
	// encoding/json cannot flatten a map into the enclosing object.
	Extra map[string]json.RawMessage `json:"-"`
}

// Inventory is an Ansible inventory built from one snapshot. It is not
// modified after BuildInventory returns and may be shared.
type Inventory struct {
	// Groups maps each group name to its host names, sorted.
	Groups map[string][]string
	// Hosts maps each inventory host name to its variables.
	Hosts map[string]*InventoryHostVars

	hostOf map[string]string // node key → host name
	keyOf  map[string]string // host name → node key
}

// Resolve returns the inventory host name of the node with key
// "<dc>/<name>" (fleet.Node.Key). The runner passes these names to
// --limit, so exactly the previewed nodes run.
func (inv *Inventory) Resolve(key string) (host string, ok bool) {
	host, ok = inv.hostOf[key]
	return host, ok
}

// NodeKey returns the node key ("<dc>/<name>") of an inventory host name.
func (inv *Inventory) NodeKey(host string) (key string, ok bool) {
	key, ok = inv.keyOf[host]
	return key, ok
}

// HostNames returns every inventory host name, sorted.
func (inv *Inventory) HostNames() []string {
	names := make([]string, 0, len(inv.Hosts))
	for h := range inv.Hosts {
		names = append(names, h)
	}
	sort.Strings(names)
	return names
}

// WriteList writes the inventory in the dynamic-inventory --list format:
// {"<group>": {"hosts": [...]}, ..., "_meta": {"hostvars": {...}}}, with
// groups, hosts and meta keys sorted.
//
// It encodes by hand rather than through encoding/json: at 10,000 hosts
// the reflection and the validation of every AnsibleUnsafe's MarshalJSON
// output took about half a second, most of the inventory's time budget.
// The output decodes to what json.Marshal gives for Groups and Hosts (a
// test checks that). Strings are written by termtext.AppendJSONString, so
// the escapes, C1 and bidi controls a Consul node can carry are \u
// escapes: `fleetdeck inventory --list` is inert on a terminal, and
// Ansible decodes the same strings.
func (inv *Inventory) WriteList(w io.Writer) error {
	e := invEncoder{w: w, buf: make([]byte, 0, 1<<16)}
	groups := make([]string, 0, len(inv.Groups))
	for g := range inv.Groups {
		groups = append(groups, g)
	}
	sort.Strings(groups)
	e.buf = append(e.buf, '{')
	for _, g := range groups {
		e.buf = termtext.AppendJSONString(e.buf, g)
		e.buf = append(e.buf, `:{"hosts":[`...)
		for i, h := range inv.Groups[g] {
			if i > 0 {
				e.buf = append(e.buf, ',')
			}
			e.buf = termtext.AppendJSONString(e.buf, h)
		}
		e.buf = append(e.buf, "]},"...)
		e.flushIfFull()
	}
	e.buf = append(e.buf, `"_meta":{"hostvars":{`...)
	for i, h := range inv.HostNames() {
		if i > 0 {
			e.buf = append(e.buf, ',')
		}
		e.buf = termtext.AppendJSONString(e.buf, h)
		e.buf = append(e.buf, ':')
		e.buf = inv.Hosts[h].appendJSON(e.buf)
		e.flushIfFull()
	}
	e.buf = append(e.buf, "}}}\n"...)
	e.flush()
	if e.err != nil {
		return fmt.Errorf("writing the inventory: %w", e.err)
	}
	return nil
}

// WriteHost writes the variables of one host in the dynamic-inventory
// --host format: the host's variables, or {} for a host not in the
// inventory (as the protocol asks).
func (inv *Inventory) WriteHost(w io.Writer, host string) error {
	b := []byte("{}")
	if hv, ok := inv.Hosts[host]; ok {
		b = hv.appendJSON(nil)
	}
	if _, err := w.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("writing the variables of host %q: %w", host, err)
	}
	return nil
}

// invEncoder batches appends into large writes and keeps the first error.
type invEncoder struct {
	w   io.Writer
	buf []byte
	err error
}

func (e *invEncoder) flushIfFull() {
	if len(e.buf) >= 1<<16 {
		e.flush()
	}
}

func (e *invEncoder) flush() {
	if e.err == nil && len(e.buf) > 0 {
		_, e.err = e.w.Write(e.buf)
	}
	e.buf = e.buf[:0]
}

// appendJSON appends the variables as JSON, in the field order and with
// the names of the struct's json tags.
func (hv *InventoryHostVars) appendJSON(b []byte) []byte {
	str := func(b []byte, name string, v AnsibleUnsafe) []byte {
		b = append(b, '"')
		b = append(b, name...)
		b = append(b, `":`...)
		return v.appendJSON(b)
	}
	list := func(b []byte, xs []AnsibleUnsafe) []byte {
		b = append(b, '[')
		for i, x := range xs {
			if i > 0 {
				b = append(b, ',')
			}
			b = x.appendJSON(b)
		}
		return append(b, ']')
	}
	b = append(b, '{')
	if hv.AnsibleHost != "" {
		b = str(b, "ansible_host", hv.AnsibleHost)
		b = append(b, ',')
	}
	b = str(b, "consul_node", hv.Node)
	b = str(append(b, ','), "consul_dc", hv.Datacenter)
	b = str(append(b, ','), "consul_address", hv.Address)
	b = append(b, `,"consul_meta":{`...)
	keys := make([]string, 0, len(hv.Meta))
	for k := range hv.Meta {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = termtext.AppendJSONString(b, k)
		b = append(b, ':')
		b = hv.Meta[k].appendJSON(b)
	}
	b = append(b, `},"consul_services":[`...)
	for i, sv := range hv.Services {
		if i > 0 {
			b = append(b, ',')
		}
		b = str(append(b, '{'), "id", sv.ID)
		b = str(append(b, ','), "name", sv.Name)
		b = append(b, `,"tags":`...)
		b = list(b, sv.Tags)
		b = append(b, `,"port":`...)
		b = strconv.AppendInt(b, int64(sv.Port), 10)
		b = append(b, '}')
	}
	b = append(b, `],"consul_roles":`...)
	b = list(b, hv.Roles)
	b = append(b, `,"consul_tags":`...)
	b = list(b, hv.Tags)
	b = str(append(b, ','), "consul_health", hv.Health)
	b = str(append(b, ','), "consul_group", hv.Group)
	b = str(append(b, ','), "consul_zone", hv.Zone)
	b = str(append(b, ','), "consul_instance_id", hv.InstanceID)
	b = str(append(b, ','), "consul_image", hv.Image)
	b = append(b, `,"consul_failing_checks":[`...)
	for i, c := range hv.FailingChecks {
		if i > 0 {
			b = append(b, ',')
		}
		b = str(append(b, '{'), "id", c.ID)
		b = str(append(b, ','), "name", c.Name)
		b = str(append(b, ','), "status", c.Status)
		b = str(append(b, ','), "output", c.Output)
		b = str(append(b, ','), "service", c.Service)
		b = append(b, '}')
	}
	b = append(b, ']')
	if len(hv.Extra) > 0 {
		for _, k := range slices.Sorted(maps.Keys(hv.Extra)) {
			b = append(b, ',')
			b = termtext.AppendJSONString(b, k)
			b = append(b, ':')
			b = append(b, hv.Extra[k]...)
		}
	}
	return append(b, '}')
}

// invHealthGroups are always present; see the group names comment.
var invHealthGroups = [...]string{"passing", "warning", "critical", "maintenance"}

// invSafeHost is the shape of a host name Ansible targets exactly: no
// pattern separators (",", ":"), no operators ("!", "&", "~", "@" for
// --limit files, "-" for options), no glob or regex characters, no
// subscripts, no whitespace, no leading "_" (reserved JSON keys).
var invSafeHost = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// invDNSName is a DNS host name (labels of letters, digits and inner
// hyphens; underscores tolerated as some fleets use them).
var invDNSName = regexp.MustCompile(`^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$`)

// invReservedHost reports names that mean something else to Ansible: the
// built-in groups and the names of the implicit localhost (a node called
// localhost would receive every "delegate_to: localhost" task).
func invReservedHost(name string) bool {
	switch strings.ToLower(name) {
	case "all", "ungrouped", "localhost", "127.0.0.1", "::1":
		return true
	}
	return false
}

// invSanitize maps s to [A-Za-z0-9_]: every other character (each rune,
// so one non-ASCII character gives one "_") becomes "_".
func invSanitize(s string) string {
	ok := true
	for i := 0; i < len(s); i++ {
		if !invIdentByte(s[i]) {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		if r < utf8.RuneSelf && invIdentByte(byte(r)) {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

func invIdentByte(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// invHash returns the first n hex digits of SHA-256(s).
func invHash(s string, n int) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:n]
}

// invGroupKind says where a group comes from.
type invGroupKind uint8

const (
	invGroupDC invGroupKind = iota
	invGroupSvc
	invGroupTag
	invGroupMeta
	invGroupASG
	invGroupHealth
)

// invGroupKey identifies a group's source unambiguously: a map key of
// strings, so looking a group up per node and service allocates nothing.
type invGroupKey struct {
	kind invGroupKind
	a, b string
}

// display is the group's name before mapping to an identifier.
func (k invGroupKey) display() string {
	switch k.kind {
	case invGroupDC:
		return "dc_" + k.a
	case invGroupSvc:
		return "svc_" + k.a
	case invGroupTag:
		return "svc_" + k.a + "__tag_" + k.b
	case invGroupMeta:
		return "meta_" + k.a + "_" + k.b
	case invGroupASG:
		return "asg_" + k.a
	}
	return "health_" + k.a
}

// id is the key as one string, for hashing and ordering.
func (k invGroupKey) id() string {
	return fmt.Sprintf("%d\x00%s\x00%s", k.kind, k.a, k.b)
}

// invGroupSrc is one group before naming: its source, its unmapped
// display name and its members.
type invGroupSrc struct {
	key     invGroupKey
	id      string
	display string
	mapped  string
	nodes   []int // indexes into the snapshot's nodes, ascending
}

// BuildInventory builds the Ansible inventory of every node in s. It reads
// nothing but s. The warnings list every aliased or qualified host, every
// renamed group and every node without a usable ansible_host, sorted by
// node key then message, so that the same snapshot always gives the same
// inventory and the same warnings.
func BuildInventory(s *fleet.Snapshot, opts InventoryOptions) (*Inventory, []InventoryWarning) {
	var warns []InventoryWarning
	nodes := s.Nodes

	metaKeyOK := invMetaKeyFilter(opts)

	// Collect the groups by source.
	srcs := map[invGroupKey]*invGroupSrc{}
	add := func(k invGroupKey, i int) {
		g := srcs[k]
		if g == nil {
			g = &invGroupSrc{key: k}
			srcs[k] = g
		}
		if n := len(g.nodes); n == 0 || g.nodes[n-1] != i {
			g.nodes = append(g.nodes, i)
		}
	}
	for _, h := range invHealthGroups {
		add(invGroupKey{kind: invGroupHealth, a: h}, -1)
	}
	for i, n := range nodes {
		add(invGroupKey{kind: invGroupDC, a: n.Datacenter}, i)
		for _, sv := range n.Services {
			add(invGroupKey{kind: invGroupSvc, a: sv.Name}, i)
			for _, t := range sv.Tags {
				add(invGroupKey{kind: invGroupTag, a: sv.Name, b: t}, i)
			}
		}
		for k, v := range n.Meta {
			if metaKeyOK(k) {
				add(invGroupKey{kind: invGroupMeta, a: k, b: v}, i)
			}
		}
		if n.Group != "" {
			add(invGroupKey{kind: invGroupASG, a: n.Group}, i)
		}
		add(invGroupKey{kind: invGroupHealth, a: n.Health.String()}, i)
	}
	for _, g := range srcs {
		g.id = g.key.id()
		g.display = g.key.display()
		if len(g.nodes) > 0 && g.nodes[0] < 0 {
			g.nodes = g.nodes[1:] // the placeholder that made the health group exist
		}
	}
	groupNames, gw := invNameGroups(srcs)
	warns = append(warns, gw...)

	hostNames, hw := invNameHosts(nodes, groupNames, opts.QualifyAll)
	warns = append(warns, hw...)

	inv := &Inventory{
		Groups: make(map[string][]string, len(srcs)),
		Hosts:  make(map[string]*InventoryHostVars, len(nodes)),
		hostOf: make(map[string]string, len(nodes)),
		keyOf:  make(map[string]string, len(nodes)),
	}
	for _, g := range srcs {
		hosts := make([]string, len(g.nodes))
		for j, i := range g.nodes {
			hosts[j] = hostNames[i]
		}
		// Nodes come sorted by datacenter and name, so hosts mostly are.
		if !slices.IsSorted(hosts) {
			slices.Sort(hosts)
		}
		inv.Groups[groupNames[g.id]] = hosts
	}
	for i, n := range nodes {
		h := hostNames[i]
		hv, vw := invHostVars(n)
		for _, m := range vw {
			warns = append(warns, InventoryWarning{Node: n.Key(), Host: h, Message: m})
		}
		inv.Hosts[h] = hv
		inv.hostOf[n.Key()] = h
		inv.keyOf[h] = n.Key()
	}
	slices.SortStableFunc(warns, func(a, b InventoryWarning) int {
		if c := strings.Compare(a.Node, b.Node); c != 0 {
			return c
		}
		if c := strings.Compare(a.Group, b.Group); c != 0 {
			return c
		}
		return strings.Compare(a.Message, b.Message)
	})
	// Names are quoted with %q, but datacenter names and reasons are
	// not: one pass makes every message safe to print.
	for i := range warns {
		warns[i].Message = termtext.Sanitize(warns[i].Message)
	}
	return inv, warns
}

// invMetaKeyFilter returns which node-meta keys make groups.
func invMetaKeyFilter(opts InventoryOptions) func(string) bool {
	if opts.MetaGroupKeys != nil {
		return func(k string) bool { return slices.Contains(opts.MetaGroupKeys, k) }
	}
	skip := opts.SkipMetaGroupKeys
	if skip == nil {
		skip = []string{"instance-id"}
	}
	return func(k string) bool { return !slices.Contains(skip, k) }
}

// invNameGroups gives every group source its final name (see the group
// names comment) and returns the map from source id to name.
func invNameGroups(srcs map[invGroupKey]*invGroupSrc) (map[string]string, []InventoryWarning) {
	byMapped := map[string][]*invGroupSrc{}
	for _, g := range srcs {
		g.mapped = invSanitize(g.display)
		byMapped[g.mapped] = append(byMapped[g.mapped], g)
	}
	names := make(map[string]string, len(srcs))
	taken := make(map[string]bool, len(srcs))
	var suffixed []*invGroupSrc
	for mapped, gs := range byMapped {
		if len(gs) == 1 {
			names[gs[0].id] = mapped
			taken[mapped] = true
			continue
		}
		var exact []*invGroupSrc
		for _, g := range gs {
			if g.display == mapped {
				exact = append(exact, g)
			}
		}
		for _, g := range gs {
			if len(exact) == 1 && g == exact[0] {
				names[g.id] = mapped
				taken[mapped] = true
				continue
			}
			suffixed = append(suffixed, g)
		}
	}
	// Suffixed names are settled after all plain names, in id order, so
	// the result does not depend on map iteration.
	sort.Slice(suffixed, func(i, j int) bool { return suffixed[i].id < suffixed[j].id })
	var warns []InventoryWarning
	for _, g := range suffixed {
		var name string
		for n := 8; ; n += 4 {
			name = g.mapped + "_h" + invHash(g.id, min(n, 64))
			if !taken[name] || n >= 64 {
				break
			}
		}
		names[g.id] = name
		taken[name] = true
		warns = append(warns, InventoryWarning{Group: name, Message: fmt.Sprintf(
			"group %q is named %q: another Consul name maps to %q too", g.display, name, g.mapped)})
	}
	return names, warns
}

// invNameHosts gives every node its inventory host name (see the host
// names comment). The result is indexed like nodes.
func invNameHosts(nodes []*fleet.Node, groups map[string]string, qualifyAll bool) ([]string, []InventoryWarning) {
	taken := make(map[string]bool, len(groups)+len(nodes))
	for _, g := range groups {
		taken[g] = true
	}
	dcsOf := map[string][]string{}
	for _, n := range nodes {
		dcsOf[n.Name] = append(dcsOf[n.Name], n.Datacenter)
	}
	var warns []InventoryWarning
	cands := make([]string, len(nodes))
	count := make(map[string]int, len(nodes))
	for i, n := range nodes {
		c := n.Name
		if qualifyAll || len(dcsOf[n.Name]) > 1 {
			c = n.Name + ".node." + n.Datacenter + ".consul"
		}
		cands[i] = c
		count[c]++
	}
	names := make([]string, len(nodes))
	var rest []int
	for i, c := range cands {
		if invSafeHost.MatchString(c) && !invReservedHost(c) && count[c] == 1 && !taken[c] {
			names[i] = c
			taken[c] = true
			if c != nodes[i].Name && !qualifyAll {
				warns = append(warns, InventoryWarning{Node: nodes[i].Key(), Host: c, Message: fmt.Sprintf(
					"node %q is in datacenters %s: its inventory name in %s is %q",
					nodes[i].Name, strings.Join(dcsOf[nodes[i].Name], ", "), nodes[i].Datacenter, c)})
			}
			continue
		}
		rest = append(rest, i)
	}
	for _, i := range rest {
		n := nodes[i]
		part := invSanitize(n.Name)
		if len(part) > 40 {
			part = part[:40]
		}
		var alias string
		for k := 8; ; k += 4 {
			alias = "fd_" + part + "_" + invHash(n.Key(), min(k, 64))
			if !taken[alias] || k >= 64 {
				break
			}
		}
		names[i] = alias
		taken[alias] = true
		warns = append(warns, InventoryWarning{Node: n.Key(), Host: alias, Message: fmt.Sprintf(
			"node %q in %s cannot be targeted safely by Ansible as %q (%s): its inventory name is %q; consul_node holds the real name",
			n.Name, n.Datacenter, cands[i], invWhyUnsafe(cands[i], count[cands[i]], groups), alias)})
	}
	return names, warns
}

// invWhyUnsafe says why a candidate host name was not used.
func invWhyUnsafe(c string, count int, groups map[string]string) string {
	switch {
	case invReservedHost(c):
		return "a name Ansible reserves"
	case !invSafeHost.MatchString(c):
		return "characters Ansible's host patterns read as syntax"
	case count > 1:
		return "another node has the same name"
	}
	for _, g := range groups {
		if g == c {
			return "it is a group name"
		}
	}
	return "it is another node's alias"
}

// invHostVars builds a node's variables and returns warnings about them.
func invHostVars(n *fleet.Node) (*InventoryHostVars, []string) {
	var warns []string
	hv := &InventoryHostVars{
		Node:          AnsibleUnsafe(n.Name),
		Datacenter:    AnsibleUnsafe(n.Datacenter),
		Address:       AnsibleUnsafe(n.Address),
		Meta:          make(map[string]AnsibleUnsafe, len(n.Meta)),
		Services:      make([]InventoryService, 0, len(n.Services)),
		Health:        AnsibleUnsafe(n.Health.String()),
		Group:         AnsibleUnsafe(n.Group),
		Zone:          AnsibleUnsafe(n.Zone),
		InstanceID:    AnsibleUnsafe(n.InstanceID),
		Image:         AnsibleUnsafe(n.Image),
		FailingChecks: []InventoryCheck{},
	}
	if invUsableAddress(n.Address) {
		hv.AnsibleHost = AnsibleUnsafe(n.Address)
	} else {
		warns = append(warns, fmt.Sprintf("node %q in %s has address %q, which is neither an IP address nor a DNS name: ansible_host is left unset",
			n.Name, n.Datacenter, n.Address))
	}
	for k, v := range n.Meta {
		if k == "__ansible_unsafe" || k == "__ansible_vault" {
			// Ansible's JSON decoder would turn the whole consul_meta
			// object into an unsafe string or a vault blob.
			warns = append(warns, fmt.Sprintf("node %q in %s: node-meta key %q is left out of consul_meta (Ansible reads it as a marker)",
				n.Name, n.Datacenter, k))
			continue
		}
		hv.Meta[k] = AnsibleUnsafe(v)
	}
	for _, sv := range n.Services {
		is := InventoryService{ID: AnsibleUnsafe(sv.ID), Name: AnsibleUnsafe(sv.Name), Port: sv.Port,
			Tags: make([]AnsibleUnsafe, len(sv.Tags))}
		for j, t := range sv.Tags {
			is.Tags[j] = AnsibleUnsafe(t)
		}
		hv.Services = append(hv.Services, is)
	}
	hv.Roles = invUnsafeList(n.Roles())
	hv.Tags = invUnsafeList(n.Tags())
	for _, c := range n.Checks {
		if c.Status == fleet.HealthPassing {
			continue
		}
		hv.FailingChecks = append(hv.FailingChecks, InventoryCheck{ID: AnsibleUnsafe(c.ID), Name: AnsibleUnsafe(c.Name),
			Status: AnsibleUnsafe(c.Status.String()), Output: AnsibleUnsafe(c.Output), Service: AnsibleUnsafe(c.ServiceName)})
	}
	return hv, warns
}

func invUnsafeList(xs []string) []AnsibleUnsafe {
	out := make([]AnsibleUnsafe, len(xs))
	for i, x := range xs {
		out[i] = AnsibleUnsafe(x)
	}
	return out
}

// invUsableAddress reports whether addr can be handed to ssh as a host:
// an IP address or a DNS name (which cannot start with "-").
func invUsableAddress(addr string) bool {
	if net.ParseIP(addr) != nil {
		return true
	}
	return len(addr) <= 253 && invDNSName.MatchString(addr)
}
