package provision_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/fleetdeck/fleetdeck/fleet"
	"github.com/fleetdeck/fleetdeck/provision"
)

// snap builds a snapshot from nodes as the watcher would publish it.
func snap(nodes ...*fleet.Node) *fleet.Snapshot {
	return fleet.NewSnapshot(1, time.Unix(0, 0), nodes, nil, nil)
}

func node(dc, name, addr string, meta map[string]string, svcs ...fleet.Service) *fleet.Node {
	n := &fleet.Node{Datacenter: dc, Name: name, Address: addr, Meta: meta, Services: svcs}
	n.Group = meta["asg"]
	n.Zone = meta["zone"]
	n.InstanceID = meta["instance-id"]
	return n
}

// listJSON renders inv as --list JSON and decodes it generically.
func listJSON(t *testing.T, inv *provision.Inventory) map[string]any {
	t.Helper()
	var buf bytes.Buffer
	if err := inv.WriteList(&buf); err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(buf.Bytes(), &out); err != nil {
		t.Fatalf("--list output is not JSON: %v\n%s", err, buf.Bytes())
	}
	return out
}

// plainStrings returns the paths of every string in v that is not the
// value of an {"__ansible_unsafe": ...} wrapper.
func plainStrings(path string, v any) []string {
	switch v := v.(type) {
	case string:
		return []string{path}
	case []any:
		var out []string
		for i, x := range v {
			out = append(out, plainStrings(fmt.Sprintf("%s[%d]", path, i), x)...)
		}
		return out
	case map[string]any:
		if u, ok := v["__ansible_unsafe"]; ok && len(v) == 1 {
			if _, isStr := u.(string); isStr {
				return nil
			}
		}
		var out []string
		for k, x := range v {
			out = append(out, plainStrings(path+"."+k, x)...)
		}
		return out
	}
	return nil
}

func unsafeVal(t *testing.T, v any) string {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		t.Fatalf("value %#v is not an unsafe wrapper", v)
	}
	s, ok := m["__ansible_unsafe"].(string)
	if !ok {
		t.Fatalf("value %#v is not an unsafe wrapper", v)
	}
	return s
}

func TestBuildInventoryGroupsAndHostVars(t *testing.T) {
	web1 := node("dc1", "web-1", "10.0.0.1", map[string]string{"asg": "web-asg", "zone": "z1", "instance-id": "i-1", "team": "pay"},
		fleet.Service{ID: "node-exporter", Name: "node-exporter", Port: 9100},
		fleet.Service{ID: "web", Name: "web", Tags: []string{"v2", "canary"}, Port: 80})
	web1.Health = fleet.HealthCritical
	web1.Checks = []fleet.Check{{ID: "http", Name: "HTTP", Status: fleet.HealthCritical, Output: "503", ServiceID: "web", ServiceName: "web"},
		{ID: "serf", Name: "serf", Status: fleet.HealthPassing}}
	db1 := node("dc2", "db-1", "db-1.internal", map[string]string{"zone": "z2"},
		fleet.Service{ID: "pg", Name: "postgres", Tags: []string{"primary"}, Port: 5432})
	inv, warns := provision.BuildInventory(snap(web1, db1), provision.InventoryOptions{})
	if len(warns) != 0 {
		t.Errorf("unexpected warnings: %v", warns)
	}
	want := map[string][]string{
		"dc_dc1":                    {"web-1"},
		"dc_dc2":                    {"db-1"},
		"svc_web":                   {"web-1"},
		"svc_web__tag_v2":           {"web-1"},
		"svc_web__tag_canary":       {"web-1"},
		"svc_node_exporter":         {"web-1"},
		"svc_postgres":              {"db-1"},
		"svc_postgres__tag_primary": {"db-1"},
		"meta_asg_web_asg":          {"web-1"},
		"meta_zone_z1":              {"web-1"},
		"meta_zone_z2":              {"db-1"},
		"meta_team_pay":             {"web-1"},
		"asg_web_asg":               {"web-1"},
		"health_passing":            {"db-1"},
		"health_warning":            {},
		"health_critical":           {"web-1"},
		"health_maintenance":        {},
	}
	if !reflect.DeepEqual(inv.Groups, want) {
		t.Errorf("groups:\n got %v\nwant %v", inv.Groups, want)
	}
	if h, ok := inv.Resolve("dc1/web-1"); !ok || h != "web-1" {
		t.Errorf("Resolve(dc1/web-1) = %q, %v", h, ok)
	}
	if k, ok := inv.NodeKey("db-1"); !ok || k != "dc2/db-1" {
		t.Errorf("NodeKey(db-1) = %q, %v", k, ok)
	}

	out := listJSON(t, inv)
	if g, ok := out["svc_web"].(map[string]any); !ok || !reflect.DeepEqual(g["hosts"], []any{"web-1"}) {
		t.Errorf("--list svc_web = %#v", out["svc_web"])
	}
	hostvars := out["_meta"].(map[string]any)["hostvars"].(map[string]any)
	if p := plainStrings("hostvars", hostvars); len(p) != 0 {
		t.Errorf("strings not marked unsafe: %v", p)
	}
	hv := hostvars["web-1"].(map[string]any)
	checks := map[string]string{"ansible_host": "10.0.0.1", "consul_node": "web-1", "consul_dc": "dc1",
		"consul_health": "critical", "consul_group": "web-asg", "consul_zone": "z1", "consul_instance_id": "i-1"}
	for k, v := range checks {
		if got := unsafeVal(t, hv[k]); got != v {
			t.Errorf("web-1 %s = %q, want %q", k, got, v)
		}
	}
	if got := unsafeVal(t, hv["consul_meta"].(map[string]any)["team"]); got != "pay" {
		t.Errorf("consul_meta.team = %q", got)
	}
	svcs := hv["consul_services"].([]any)
	if len(svcs) != 2 {
		t.Fatalf("consul_services = %v", svcs)
	}
	s0 := svcs[1].(map[string]any) // services are sorted by ID: node-exporter, web
	if unsafeVal(t, s0["name"]) != "web" || s0["port"] != float64(80) || len(s0["tags"].([]any)) != 2 {
		t.Errorf("consul_services[1] = %v", s0)
	}
	var tags []string
	for _, x := range hv["consul_tags"].([]any) {
		tags = append(tags, unsafeVal(t, x))
	}
	if !slices.Equal(tags, []string{"canary", "v2"}) {
		t.Errorf("consul_tags = %v", tags)
	}
	fc := hv["consul_failing_checks"].([]any)
	if len(fc) != 1 || unsafeVal(t, fc[0].(map[string]any)["output"]) != "503" {
		t.Errorf("consul_failing_checks = %v", fc)
	}

	var hb bytes.Buffer
	if err := inv.WriteHost(&hb, "db-1"); err != nil {
		t.Fatal(err)
	}
	var one map[string]any
	if err := json.Unmarshal(hb.Bytes(), &one); err != nil {
		t.Fatal(err)
	}
	if unsafeVal(t, one["ansible_host"]) != "db-1.internal" {
		t.Errorf("--host db-1 = %s", hb.Bytes())
	}
	hb.Reset()
	if err := inv.WriteHost(&hb, "nope"); err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(hb.String()) != "{}" {
		t.Errorf("--host nope = %q, want {}", hb.String())
	}
}

var safeHost = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

func TestInventoryAliasesUntargetableHostNames(t *testing.T) {
	hostile := []string{"all", "ALL", "localhost", "ungrouped", "127.0.0.1", "@etc", "-x", "a,b", "with space", "tab\tname",
		"a:b", "::1", "web*", "web?", "web[0]", "~re", "!neg", "&and", "__ansible_unsafe", "_x", "dc_dc1", "svc_web",
		"naïve", "line\nbreak", ""}
	var nodes []*fleet.Node
	for i, name := range hostile {
		nodes = append(nodes, node("dc1", name, fmt.Sprintf("10.0.1.%d", i+1), nil, fleet.Service{ID: "web", Name: "web"}))
	}
	nodes = append(nodes, node("dc1", "fine-1.example", "10.0.2.1", nil))
	s := snap(nodes...)
	inv, warns := provision.BuildInventory(s, provision.InventoryOptions{})

	warned := map[string]string{}
	for _, w := range warns {
		warned[w.Node] = w.Host
	}
	seen := map[string]string{}
	for _, n := range s.Nodes {
		h, ok := inv.Resolve(n.Key())
		if !ok {
			t.Fatalf("Resolve(%q) failed", n.Key())
		}
		if prev, dup := seen[h]; dup {
			t.Errorf("nodes %q and %q share host name %q", prev, n.Key(), h)
		}
		seen[h] = n.Key()
		if k, _ := inv.NodeKey(h); k != n.Key() {
			t.Errorf("NodeKey(%q) = %q, want %q", h, k, n.Key())
		}
		if got := string(inv.Hosts[h].Node); got != n.Name {
			t.Errorf("consul_node of %q = %q, want %q", h, got, n.Name)
		}
		if n.Name == "fine-1.example" {
			if h != n.Name {
				t.Errorf("safe name %q was aliased to %q", n.Name, h)
			}
			if _, ok := warned[n.Key()]; ok {
				t.Errorf("warning for safe name %q", n.Name)
			}
			continue
		}
		if !strings.HasPrefix(h, "fd_") || !safeHost.MatchString(h) {
			t.Errorf("node %q got host name %q, want a safe fd_ alias", n.Name, h)
		}
		if warned[n.Key()] != h {
			t.Errorf("no warning naming the alias %q of %q (warnings: %v)", h, n.Name, warns)
		}
		if _, isGroup := inv.Groups[h]; isGroup {
			t.Errorf("alias %q is a group name", h)
		}
	}

	// The same fleet in another order gives the same inventory.
	shuffled := slices.Clone(nodes)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	inv2, warns2 := provision.BuildInventory(snap(shuffled...), provision.InventoryOptions{})
	if !reflect.DeepEqual(inv.Groups, inv2.Groups) || !reflect.DeepEqual(warns, warns2) {
		t.Errorf("inventory depends on node order")
	}
	for h := range inv.Hosts {
		if _, ok := inv2.Hosts[h]; !ok {
			t.Errorf("host %q missing from the rebuilt inventory", h)
		}
	}
}

func TestInventoryQualifiesNamesSharedByDatacenters(t *testing.T) {
	a := node("dc1", "web-1", "10.0.0.1", nil)
	b := node("dc2", "web-1", "10.1.0.1", nil)
	c := node("dc2", "web-2", "10.1.0.2", nil)
	inv, warns := provision.BuildInventory(snap(a, b, c), provision.InventoryOptions{})
	for key, want := range map[string]string{"dc1/web-1": "web-1.node.dc1.consul", "dc2/web-1": "web-1.node.dc2.consul", "dc2/web-2": "web-2"} {
		if h, _ := inv.Resolve(key); h != want {
			t.Errorf("Resolve(%s) = %q, want %q", key, h, want)
		}
	}
	if len(warns) != 2 {
		t.Errorf("want one warning per qualified node, got %v", warns)
	}
	if string(inv.Hosts["web-1.node.dc2.consul"].AnsibleHost) != "10.1.0.1" {
		t.Errorf("dc2's web-1 has the wrong address")
	}

	inv, warns = provision.BuildInventory(snap(a, b, c), provision.InventoryOptions{QualifyAll: true})
	if h, _ := inv.Resolve("dc2/web-2"); h != "web-2.node.dc2.consul" {
		t.Errorf("QualifyAll: Resolve(dc2/web-2) = %q", h)
	}
	if len(warns) != 0 {
		t.Errorf("QualifyAll warns: %v", warns)
	}
}

func TestInventoryGroupNameCollisions(t *testing.T) {
	n1 := node("dc1", "n1", "10.0.0.1", nil, fleet.Service{ID: "a", Name: "web_api"})
	n2 := node("dc1", "n2", "10.0.0.2", nil, fleet.Service{ID: "a", Name: "web-api"})
	n3 := node("dc1", "n3", "10.0.0.3", nil, fleet.Service{ID: "a", Name: "web.api"})
	inv, warns := provision.BuildInventory(snap(n1, n2, n3), provision.InventoryOptions{})
	if got := inv.Groups["svc_web_api"]; !slices.Equal(got, []string{"n1"}) {
		t.Errorf("svc_web_api = %v, want only the exact service's host", got)
	}
	var suffixed []string
	for g, hosts := range inv.Groups {
		if strings.HasPrefix(g, "svc_web_api_h") {
			if len(hosts) != 1 {
				t.Errorf("group %s merges hosts %v", g, hosts)
			}
			suffixed = append(suffixed, g)
		}
	}
	if len(suffixed) != 2 || len(warns) != 2 {
		t.Errorf("suffixed groups %v, warnings %v", suffixed, warns)
	}
	for g := range inv.Groups {
		if !regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`).MatchString(g) {
			t.Errorf("group %q is not an Ansible identifier", g)
		}
	}
	// Neither exact: both get suffixes, nobody gets the plain name.
	inv, _ = provision.BuildInventory(snap(n2, n3), provision.InventoryOptions{})
	if _, ok := inv.Groups["svc_web_api"]; ok {
		t.Errorf("svc_web_api given to one of two inexact sources")
	}
}

func TestInventoryHostVarsEdgeCases(t *testing.T) {
	evil := node("dc1", "evil", "-oProxyCommand=touch /tmp/x", map[string]string{"__ansible_vault": "x", "__ansible_unsafe": "y", "ok": "{{ 1 }}"})
	inv, warns := provision.BuildInventory(snap(evil), provision.InventoryOptions{})
	hv := inv.Hosts["evil"]
	if hv.AnsibleHost != "" {
		t.Errorf("ansible_host = %q for an address that is an ssh option", hv.AnsibleHost)
	}
	if _, ok := hv.Meta["__ansible_vault"]; ok {
		t.Errorf("__ansible_vault meta key kept")
	}
	if hv.Meta["ok"] != "{{ 1 }}" {
		t.Errorf("meta ok = %q", hv.Meta["ok"])
	}
	if len(warns) != 3 {
		t.Errorf("want 3 warnings (address, two meta keys), got %v", warns)
	}
	// The JSON escapes are right for hostile text and round-trip.
	for _, s := range []string{"a\"b\\c", "\x00\x1b[31m", "<&>", "\u2028\u2029", "naïve 漢字 😀", "bad\xffutf8"} {
		b, err := json.Marshal(provision.AnsibleUnsafe(s))
		if err != nil {
			t.Fatal(err)
		}
		var back provision.AnsibleUnsafe
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		want := strings.ToValidUTF8(s, "\uFFFD")
		if string(back) != want {
			t.Errorf("round trip of %q gave %q (%s)", s, back, b)
		}
	}
	// Meta groups skip instance-id by default and can be chosen.
	n := node("dc1", "n", "10.0.0.1", map[string]string{"instance-id": "i-1", "zone": "z", "role": "r"})
	inv, _ = provision.BuildInventory(snap(n), provision.InventoryOptions{})
	if _, ok := inv.Groups["meta_instance_id_i_1"]; ok {
		t.Errorf("instance-id made a group by default")
	}
	inv, _ = provision.BuildInventory(snap(n), provision.InventoryOptions{MetaGroupKeys: []string{"role"}})
	if _, ok := inv.Groups["meta_zone_z"]; ok || inv.Groups["meta_role_r"] == nil {
		t.Errorf("MetaGroupKeys not honoured: %v", inv.Groups)
	}
}

// synthetic builds an n-node snapshot shaped like fleetsim.ScaleSpec.
func synthetic(n int) *fleet.Snapshot {
	nodes := make([]*fleet.Node, n)
	for i := range nodes {
		meta := map[string]string{"asg": fmt.Sprintf("asg-%02d", i%10), "zone": fmt.Sprintf("us-east-1%c", 'a'+i%3),
			"instance-id": fmt.Sprintf("i-%08x", i), "image": "ami-0123"}
		var svcs []fleet.Service
		for j := range 5 {
			s := fmt.Sprintf("svc-%02d", (i+j*7)%50)
			svcs = append(svcs, fleet.Service{ID: s, Name: s, Tags: []string{"v1", fmt.Sprintf("shard-%d", i%4)}, Port: 8000 + j})
		}
		slices.SortFunc(svcs, func(a, b fleet.Service) int { return strings.Compare(a.ID, b.ID) })
		nd := node("dc1", fmt.Sprintf("ip-10-%d-%d-%d", i>>16&255, i>>8&255, i&255), fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255), meta, svcs...)
		if i%100 == 0 {
			nd.Health = fleet.HealthCritical
			nd.Checks = []fleet.Check{{ID: "c", Name: "c", Status: fleet.HealthCritical, Output: "connection refused"}}
		}
		nodes[i] = nd
	}
	return snap(nodes...)
}

func BenchmarkBuildInventory10k(b *testing.B) {
	s := synthetic(10000)
	b.ReportAllocs()
	for b.Loop() {
		provision.BuildInventory(s, provision.InventoryOptions{})
	}
}

func BenchmarkInventoryList10k(b *testing.B) {
	s := synthetic(10000)
	var buf bytes.Buffer
	b.ReportAllocs()
	for b.Loop() {
		buf.Reset()
		inv, _ := provision.BuildInventory(s, provision.InventoryOptions{})
		if err := inv.WriteList(&buf); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(buf.Len())/1e6, "MB")
}

// checkEncoding checks that WriteList gives the same JSON as encoding/json
// gives for Groups and Hosts.
func checkEncoding(t *testing.T, inv *provision.Inventory) {
	t.Helper()
	ref := map[string]any{"_meta": map[string]any{"hostvars": inv.Hosts}}
	for g, hosts := range inv.Groups {
		ref[g] = map[string]any{"hosts": hosts}
	}
	b, err := json.Marshal(ref)
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]any
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	if got := listJSON(t, inv); !reflect.DeepEqual(got, want) {
		t.Errorf("WriteList differs from encoding/json:\n got %v\nwant %v", got, want)
	}
	for h, hv := range inv.Hosts {
		var buf bytes.Buffer
		if err := inv.WriteHost(&buf, h); err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(hv)
		var got, want any
		if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
			t.Fatalf("--host %s: %v", h, err)
		}
		_ = json.Unmarshal(b, &want)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("--host %s differs from encoding/json", h)
		}
	}
}

func TestInventoryEncoding(t *testing.T) {
	inv, _ := provision.BuildInventory(synthetic(300), provision.InventoryOptions{})
	checkEncoding(t, inv)
	evil := node("dc1", "we\"ird\\name\x1b", "", map[string]string{"k": "\u2028<&>\x00", "z": "漢字"},
		fleet.Service{ID: "a\tb", Name: "s\"x", Tags: []string{"", "{{ x }}"}, Port: -1})
	evil.Checks = []fleet.Check{{ID: "c", Status: fleet.HealthWarning, Output: "multi\nline"}}
	inv, _ = provision.BuildInventory(snap(evil), provision.InventoryOptions{})
	checkEncoding(t, inv)
}

// The inventory JSON, which `fleetdeck inventory --list` prints, carries
// Consul's strings escaped: no byte of it drives a terminal, and it
// decodes to the same strings.
func TestInventoryJSONIsInertOnTheTerminal(t *testing.T) {
	evil := node("dc1", "web-1", "10.0.0.1", map[string]string{
		"esc": "\x1b]52;c;Y3VybA==\x07\x1b[2J", "c1": "a\u009b2J\u0085b", "del": "x\x7fy", "bidi": "evil\u202eexe.txt\u2066",
	}, fleet.Service{ID: "web", Name: "web\u202e", Tags: []string{"t\u009d0;x\u009c"}, Port: 80})
	evil.Checks = []fleet.Check{{ID: "c", Status: fleet.HealthCritical, Output: "HTTP 500\x1b[31m\u200b"}}
	inv, _ := provision.BuildInventory(snap(evil), provision.InventoryOptions{})
	var list, host bytes.Buffer
	if err := inv.WriteList(&list); err != nil {
		t.Fatal(err)
	}
	if err := inv.WriteHost(&host, "web-1"); err != nil {
		t.Fatal(err)
	}
	for what, b := range map[string][]byte{"--list": list.Bytes(), "--host": host.Bytes()} {
		if !utf8.Valid(b) || !json.Valid(b) {
			t.Fatalf("%s: not valid UTF-8 JSON", what)
		}
		for i, r := range string(b) {
			if (unicode.IsControl(r) && r != '\n') || unicode.Is(unicode.Bidi_Control, r) || r == 0x200b {
				t.Fatalf("%s: U+%04X written at byte %d", what, r, i)
			}
		}
		for _, esc := range []string{`\u001b]52;c;Y3VybA==\u0007\u001b[2J`, `a\u009b2J\u0085b`, `x\u007fy`, `evil\u202eexe.txt\u2066`, `web\u202e`} {
			if !bytes.Contains(b, []byte(esc)) {
				t.Errorf("%s lacks %s", what, esc)
			}
		}
	}
	// Decodes to the strings Consul gave.
	checkEncoding(t, inv)
	var hv struct {
		Meta map[string]provision.AnsibleUnsafe `json:"consul_meta"`
	}
	if err := json.Unmarshal(host.Bytes(), &hv); err != nil {
		t.Fatal(err)
	}
	for k, v := range evil.Meta {
		if string(hv.Meta[k]) != v {
			t.Errorf("meta %s decodes to %q, want %q", k, hv.Meta[k], v)
		}
	}
}

// Inventory warnings are printed as they are by `fleetdeck inventory`:
// what Consul put in a name or a datacenter cannot reach the terminal.
func TestInventoryWarningsAreSanitised(t *testing.T) {
	n := node("dc\x1b]0;t\x07\u202e1", "bad name\x1b[2J", "not an address\u009b2J", nil)
	_, warns := provision.BuildInventory(snap(n), provision.InventoryOptions{})
	if len(warns) == 0 {
		t.Fatal("no warning for an untargetable name and a bad address")
	}
	for _, w := range warns {
		for i, r := range w.Message {
			if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) {
				t.Errorf("warning %q: U+%04X at byte %d", w.Message, r, i)
				break
			}
		}
	}
}
