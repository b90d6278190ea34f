package roles_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
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

func TestHostVars(t *testing.T) {
	evil := "{{ lookup('pipe','id') }} $(id) \"q\"\n"
	web := &roles.Role{Name: "web", Tags: []string{evil}}
	n := roles.ApplyNode{Address: "10.0.0.2", Roles: []*roles.Role{web}, Maintenance: &roles.Maintenance{On: true, Reason: evil}}
	hv, err := roles.HostVars(n)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := roles.HostVars(n)
	if !reflect.DeepEqual(hv, again) {
		t.Error("not deterministic")
	}
	if len(hv) != 2 {
		t.Errorf("variables %v, want fleetdeck_services and fleetdeck_maintenance only (agent paths come from the inventory)", hv)
	}
	def, _ := roles.ServiceDefinition(web, "10.0.0.2")
	svcs := hv["fleetdeck_services"].(map[string]any)
	if len(svcs) != 1 || svcs["fleetdeck-web.json"] != string(def) {
		t.Errorf("services: %v", svcs)
	}
	m := hv["fleetdeck_maintenance"].(map[string]any)
	if m["managed"] != true || m["on"] != true || m["reason"] != evil {
		t.Errorf("maintenance: %v", m)
	}
	// Unmanaged maintenance, and maintenance off drops a stale reason.
	hv, err = roles.HostVars(roles.ApplyNode{Address: "10.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(hv["fleetdeck_services"].(map[string]any)) != 0 || hv["fleetdeck_maintenance"].(map[string]any)["managed"] != false {
		t.Errorf("no roles: %v", hv)
	}
	hv, _ = roles.HostVars(roles.ApplyNode{Address: "10.0.0.1", Maintenance: &roles.Maintenance{Reason: "old"}})
	if m := hv["fleetdeck_maintenance"].(map[string]any); m["managed"] != true || m["on"] != false || m["reason"] != "" {
		t.Errorf("maintenance off: %v", m)
	}
	// What the run manager makes of them: accepted, every string unsafe in
	// the inventory (provision's own tests check the wrapping).
	b, err := json.Marshal(hv)
	if err != nil || bytes.Contains(b, []byte("__")) {
		t.Errorf("%s %v", b, err)
	}
}

func TestHostVarsRefuses(t *testing.T) {
	web := &roles.Role{Name: "web"}
	cases := map[string]roles.ApplyNode{
		"duplicate role":        {Address: "10.0.0.1", Roles: []*roles.Role{web, web}},
		"nil role":              {Address: "10.0.0.1", Roles: []*roles.Role{nil}},
		"bad address":           {Address: "a b"},
		"bad address, no roles": {Address: ""},
		"jinja address":         {Address: "{{ x }}", Roles: []*roles.Role{web}},
		"maint no reason":       {Address: "10.0.0.1", Maintenance: &roles.Maintenance{On: true, Reason: " "}},
	}
	for name, n := range cases {
		if hv, err := roles.HostVars(n); err == nil || !errors.Is(err, roles.ErrApplyVars) {
			t.Errorf("%s: got %v, %v; want ErrApplyVars", name, hv, err)
		}
	}
}
