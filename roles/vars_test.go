package roles_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fleetdeck/fleetdeck/roles"
)

func TestServiceDefinition(t *testing.T) {
	web := &roles.Role{Name: "web", Port: 8080, Tags: []string{"prod", "<b>"},
		Check: &roles.Check{HTTP: "http://{address}:8080/health", Interval: 10 * time.Second, Timeout: 1500 * time.Millisecond}}
	got, err := roles.ServiceDefinition(web, "10.0.0.7")
	if err != nil {
		t.Fatal(err)
	}
	want := `{
  "service": {
    "check": {
      "http": "http://10.0.0.7:8080/health",
      "interval": "10s",
      "timeout": "1.5s"
    },
    "id": "fleetdeck-web",
    "meta": {
      "managed-by": "fleetdeck"
    },
    "name": "web",
    "port": 8080,
    "tags": [
      "prod",
      "<b>"
    ]
  }
}
`
	if string(got) != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	again, _ := roles.ServiceDefinition(web, "10.0.0.7")
	if !bytes.Equal(got, again) {
		t.Error("not deterministic")
	}
	for addr, wantTCP := range map[string]string{"db-1.internal": "db-1.internal:5432", "::1": "[::1]:5432", "fe80::1": "[fe80::1]:5432"} {
		b, err := roles.ServiceDefinition(&roles.Role{Name: "db", Check: &roles.Check{TCP: "{address}:5432", Interval: time.Second}}, addr)
		if err != nil {
			t.Fatalf("%s: %v", addr, err)
		}
		var d struct{ Service map[string]any }
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatal(err)
		}
		if tcp := d.Service["check"].(map[string]any)["tcp"]; tcp != wantTCP {
			t.Errorf("%s: tcp %v, want %s", addr, tcp, wantTCP)
		}
		if _, ok := d.Service["port"]; ok {
			t.Errorf("port 0 is written")
		}
		if _, ok := d.Service["tags"]; ok {
			t.Errorf("empty tags are written")
		}
	}
	b, err := roles.ServiceDefinition(&roles.Role{Name: "w", Check: &roles.Check{TTL: time.Minute}}, "h")
	if err != nil || !strings.Contains(string(b), `"ttl": "1m0s"`) || strings.Contains(string(b), "interval") {
		t.Errorf("ttl check: %s %v", b, err)
	}
}

func TestServiceDefinitionRefuses(t *testing.T) {
	ok := func() *roles.Role { return &roles.Role{Name: "web", Port: 80} }
	cases := map[string]struct {
		r    *roles.Role
		addr string
	}{
		"nil role":          {nil, "10.0.0.1"},
		"upper name":        {&roles.Role{Name: "Web"}, "10.0.0.1"},
		"path name":         {&roles.Role{Name: "../x"}, "10.0.0.1"},
		"leading dash":      {&roles.Role{Name: "-x"}, "10.0.0.1"},
		"long name":         {&roles.Role{Name: strings.Repeat("a", 64)}, "10.0.0.1"},
		"port":              {&roles.Role{Name: "web", Port: 70000}, "10.0.0.1"},
		"empty address":     {ok(), ""},
		"address with port": {ok(), "10.0.0.1:80"},
		"address with path": {ok(), "evil.com/x"},
		"address userinfo":  {ok(), "a@evil.com"},
		"address jinja":     {ok(), "{{ lookup('pipe','id') }}"},
		"address space":     {ok(), "a b"},
		"bad ip":            {ok(), "10.0.0.999"},
		"two kinds":         {&roles.Role{Name: "w", Check: &roles.Check{HTTP: "http://x/", TCP: "x:1", Interval: time.Second}}, "h"},
		"no kind":           {&roles.Role{Name: "w", Check: &roles.Check{Interval: time.Second}}, "h"},
		"no interval":       {&roles.Role{Name: "w", Check: &roles.Check{HTTP: "http://{address}/"}}, "h"},
		"script scheme":     {&roles.Role{Name: "w", Check: &roles.Check{HTTP: "file:///etc/passwd", Interval: time.Second}}, "h"},
		"tcp no port":       {&roles.Role{Name: "w", Check: &roles.Check{TCP: "{address}", Interval: time.Second}}, "h"},
		"negative ttl":      {&roles.Role{Name: "w", Check: &roles.Check{TTL: -time.Second}}, "h"},
	}
	for name, c := range cases {
		if b, err := roles.ServiceDefinition(c.r, c.addr); err == nil || !errors.Is(err, roles.ErrApplyVars) {
			t.Errorf("%s: got %s, %v; want ErrApplyVars", name, b, err)
		}
	}
}

// unwrap returns the string inside {"__ansible_unsafe": s}, failing when v
// is anything else: every string in the document must be wrapped.
func unwrap(t *testing.T, v any) string {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		t.Fatalf("%#v is not an unsafe wrapper", v)
	}
	s, ok := m["__ansible_unsafe"].(string)
	if !ok {
		t.Fatalf("%#v is not an unsafe wrapper", v)
	}
	return s
}

func TestExtraVars(t *testing.T) {
	evil := "{{ lookup('pipe','id') }} $(id) \"q\"\n"
	web := &roles.Role{Name: "web", Tags: []string{evil}}
	nodes := []roles.ApplyNode{
		{Host: "b", Address: "10.0.0.2", Roles: []*roles.Role{web}, Maintenance: &roles.Maintenance{On: true, Reason: evil},
			Agent: roles.AgentPaths{ConfigDir: "/etc/consul.d", HTTPAddr: "127.0.0.1:8500", Bin: "/usr/bin/consul"}},
		{Host: "a", Address: "10.0.0.1"},
	}
	b, err := roles.ExtraVars(nodes)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := roles.ExtraVars(nodes)
	if !bytes.Equal(b, again) {
		t.Error("not deterministic")
	}
	var doc map[string]map[string]map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	hb := doc["fleetdeck_hosts"]["b"]
	svcs := hb["services"].(map[string]any)
	def, _ := roles.ServiceDefinition(web, "10.0.0.2")
	if len(svcs) != 1 || unwrap(t, svcs["fleetdeck-web.json"]) != string(def) {
		t.Errorf("services: %v", svcs)
	}
	m := hb["maintenance"].(map[string]any)
	if m["managed"] != true || m["on"] != true || unwrap(t, m["reason"]) != evil {
		t.Errorf("maintenance: %v", m)
	}
	for k, want := range map[string]string{"consul_config_dir": "/etc/consul.d", "consul_http_addr": "127.0.0.1:8500", "consul_bin": "/usr/bin/consul"} {
		if unwrap(t, hb[k]) != want {
			t.Errorf("%s: %v", k, hb[k])
		}
	}
	ha := doc["fleetdeck_hosts"]["a"]
	if len(ha["services"].(map[string]any)) != 0 || ha["maintenance"].(map[string]any)["managed"] != false {
		t.Errorf("host a: %v", ha)
	}
	// Unset agent paths are left to host_vars: extra vars would outrank them.
	for _, k := range []string{"consul_config_dir", "consul_http_addr", "consul_bin"} {
		if _, ok := ha[k]; ok {
			t.Errorf("host a: %s passed though unset", k)
		}
	}

	flat, err := roles.NodeExtraVars(nodes[0])
	if err != nil {
		t.Fatal(err)
	}
	var fd map[string]any
	if err := json.Unmarshal(flat, &fd); err != nil {
		t.Fatal(err)
	}
	if unwrap(t, fd["fleetdeck_services"].(map[string]any)["fleetdeck-web.json"]) != string(def) || fd["fleetdeck_maintenance"] == nil || unwrap(t, fd["consul_bin"]) != "/usr/bin/consul" {
		t.Errorf("flat: %s", flat)
	}
}

func TestExtraVarsRefuses(t *testing.T) {
	web := &roles.Role{Name: "web"}
	cases := map[string][]roles.ApplyNode{
		"no node":               nil,
		"no host":               {{Address: "10.0.0.1"}},
		"control in host":       {{Host: "a\nb", Address: "10.0.0.1"}},
		"duplicate host":        {{Host: "a", Address: "10.0.0.1"}, {Host: "a", Address: "10.0.0.1"}},
		"duplicate role":        {{Host: "a", Address: "10.0.0.1", Roles: []*roles.Role{web, web}}},
		"nil role":              {{Host: "a", Address: "10.0.0.1", Roles: []*roles.Role{nil}}},
		"bad address":           {{Host: "a", Address: "a b"}},
		"bad address, no roles": {{Host: "a", Address: ""}},
		"maint no reason":       {{Host: "a", Address: "10.0.0.1", Maintenance: &roles.Maintenance{On: true, Reason: " "}}},
		"relative cfg dir":      {{Host: "a", Address: "10.0.0.1", Agent: roles.AgentPaths{ConfigDir: "etc/consul.d"}}},
		"newline in addr":       {{Host: "a", Address: "10.0.0.1", Agent: roles.AgentPaths{HTTPAddr: "x\ny"}}},
	}
	for name, nodes := range cases {
		if b, err := roles.ExtraVars(nodes); err == nil || !errors.Is(err, roles.ErrApplyVars) {
			t.Errorf("%s: got %s, %v; want ErrApplyVars", name, b, err)
		}
	}
}
