package demoplaybooks_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleetdeck/fleetdeck/internal/demoplaybooks"
	"github.com/fleetdeck/fleetdeck/roles"
)

// TestRolesCatalog: the demo's catalog parses as a roles.toml does, holds
// every initial role, and its checks probe the stand-in's port on the
// node's address.
func TestRolesCatalog(t *testing.T) {
	cat, err := roles.Parse(demoplaybooks.Roles(18123), "roles.toml")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cat.Names(), ","); got != "api,search,web,worker" {
		t.Errorf("roles %s", got)
	}
	for i := range 6 {
		if _, ok := cat.Lookup(demoplaybooks.InitialRole(i)); !ok {
			t.Errorf("initial role %d: %s not in the catalog", i, demoplaybooks.InitialRole(i))
		}
	}
	web, _ := cat.Lookup("web")
	def, err := roles.ServiceDefinition(&web, "127.0.0.1")
	if err != nil || !strings.Contains(string(def), `"http": "http://127.0.0.1:18123/health/web"`) {
		t.Errorf("web's definition: %v\n%s", err, def)
	}
	worker, _ := cat.Lookup("worker")
	if worker.Check == nil || worker.Check.TCP != "{address}:18123" {
		t.Errorf("worker's check %+v", worker.Check)
	}
	if s, _ := cat.Lookup("search"); s.Check == nil || s.Check.TTL == 0 {
		t.Errorf("search's check %+v", s.Check)
	}
}

// TestWriteRoles: the catalog, the real nodes' host_vars (values tagged
// !unsafe) and the group_vars that make simulated nodes fail; a node name
// that could leave host_vars/ is refused.
func TestWriteRoles(t *testing.T) {
	dir := t.TempDir()
	agents := []demoplaybooks.Agent{{Node: "app-01", ConfigDir: "/tmp/x/{{ evil }}/config", HTTPAddr: "http://127.0.0.1:1234", ConsulBin: "/opt/consul"}}
	if err := demoplaybooks.WriteRoles(dir, 18123, agents); err != nil {
		t.Fatal(err)
	}
	if _, err := roles.ReadDir(dir); err != nil {
		t.Errorf("reading the written catalog: %v", err)
	}
	hv, err := os.ReadFile(filepath.Join(dir, "host_vars", "app-01.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"ansible_connection: local\n", "ansible_python_interpreter: auto_silent\n",
		`consul_config_dir: !unsafe "/tmp/x/{{ evil }}/config"` + "\n",
		`consul_http_addr: !unsafe "http://127.0.0.1:1234"` + "\n", `consul_bin: !unsafe "/opt/consul"` + "\n",
	} {
		if !strings.Contains(string(hv), want) {
			t.Errorf("host_vars lack %q:\n%s", want, hv)
		}
	}
	gv, err := os.ReadFile(filepath.Join(dir, "group_vars", "all.yml"))
	if err != nil || !strings.Contains(string(gv), demoplaybooks.NoAgentDir) {
		t.Errorf("group_vars/all.yml: %v\n%s", err, gv)
	}
	for _, bad := range []demoplaybooks.Agent{{Node: "../evil", ConfigDir: "/x"}, {Node: "app-02", ConfigDir: "relative"}} {
		if err := demoplaybooks.WriteRoles(t.TempDir(), 1, []demoplaybooks.Agent{bad}); err == nil {
			t.Errorf("%+v was written", bad)
		}
	}
}

// TestStandIn: any role's health path answers 200, anything else 404.
func TestStandIn(t *testing.T) {
	srv := httptest.NewServer(demoplaybooks.StandIn())
	defer srv.Close()
	for path, want := range map[string]int{"/health/web": 200, "/health/search": 200, "/health/": 404, "/": 404, "/health/a/b": 404} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, want)
		}
	}
	srv.Client().CloseIdleConnections()
}
