package demoplaybooks

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// The demo's real nodes are Consul client agents on this machine (see
// `fleetdeck demo --agents`). The files below let the apply playbook
// (fleetdeck-apply.yml, written beside the demo playbooks) move them
// between the roles of the demo's catalog:
//
//   - roles.toml: the role catalog. The real nodes' address is 127.0.0.1,
//     where the demo serves a stand-in for every role's service
//     (StandIn), so the http and tcp checks of web, api and worker pass
//     on them; search's TTL check stays critical, as a role whose service
//     never reports does.
//   - host_vars/<node>.yml: per real node, the local connection and where
//     its agent is (consul_config_dir, consul_http_addr, consul_bin).
//   - group_vars/all.yml: a consul_config_dir that does not exist for
//     every other host: a simulated node has no agent, and applying a role
//     to one must fail with the playbook's "cannot read consul_config_dir"
//     rather than write into this machine's /etc/consul.d.

// RolesFile is the role catalog's file name (roles.RolesFile; not imported
// so that this package stays free of the domain packages).
const RolesFile = "roles.toml"

// NoAgentDir is the consul_config_dir of every host without host_vars of
// its own: it does not exist, so the apply playbook refuses the host.
const NoAgentDir = "/nonexistent/fleetdeck-demo/simulated-node-has-no-consul-agent"

// InitialRole is the role the demo's i-th real node (from 0) starts with:
// web, api, worker, web, … — each a role whose check passes on it.
func InitialRole(i int) string {
	return [...]string{"web", "api", "worker"}[i%3]
}

// Roles returns the demo's role catalog (roles.toml) whose http and tcp
// checks probe the stand-in services at 127.0.0.1:standInPort through
// {address}: a real node's address is 127.0.0.1.
func Roles(standInPort int) []byte {
	return fmt.Appendf(nil, `# The role catalog of `+"`fleetdeck demo`"+`: only these roles can be assigned.
#
# The demo's real nodes (app-01, …) are Consul client agents on this machine
# with the address 127.0.0.1, where the demo serves a stand-in for each role's
# service on port %[1]d (GET /health/<role> answers 200). So web, api and
# worker are healthy on a real node within a check interval of the agent
# loading their definition (a new check is critical until its first run: the
# short interval keeps that moment short); search's TTL check stays critical,
# as a role whose service never reports does. The ports below are what the
# services announce; nothing listens on them.

[roles.web]
port = 8080
tags = ["demo", "v1.4.2"]
check = { http = "http://{address}:%[1]d/health/web", interval = "2s", timeout = "1s" }

[roles.api]
port = 9090
tags = ["demo", "v2.11.0"]
check = { http = "http://{address}:%[1]d/health/api", interval = "2s", timeout = "1s" }

[roles.worker]
port = 9100
tags = ["demo"]
check = { tcp = "{address}:%[1]d", interval = "2s", timeout = "1s" }

[roles.search]
port = 9200
tags = ["demo"]
check = { ttl = "1m" }
`, standInPort)
}

// Agent is one real node of the demo: where its agent is.
type Agent struct {
	// Node is the agent's node name, its inventory host name.
	Node string
	// ConfigDir is the agent's config dir (absolute).
	ConfigDir string
	// HTTPAddr is the agent's HTTP API, "http://127.0.0.1:PORT".
	HTTPAddr string
	// ConsulBin is the consul executable.
	ConsulBin string
}

// hostName is what may name a host_vars file: the demo's own node names,
// nothing that could leave the directory.
var hostName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// WriteRoles writes the role catalog (Roles(standInPort)), the real
// nodes' host_vars and group_vars/all.yml into the playbook directory dir.
func WriteRoles(dir string, standInPort int, agents []Agent) error {
	files := map[string][]byte{
		RolesFile: Roles(standInPort),
		filepath.Join("group_vars", "all.yml"): fmt.Appendf(nil, `# Written by `+"`fleetdeck demo`"+`. The simulated nodes have no Consul agent: with
# this consul_config_dir the apply playbook refuses them instead of touching
# this machine's /etc/consul.d. The real nodes' host_vars set their own.
consul_config_dir: %s
`, yamlUnsafe(NoAgentDir)),
	}
	for _, a := range agents {
		if !hostName.MatchString(a.Node) {
			return fmt.Errorf("writing the demo's host_vars: node name %q", a.Node)
		}
		if !filepath.IsAbs(a.ConfigDir) {
			return fmt.Errorf("writing the demo's host_vars for %s: config dir %q is not absolute", a.Node, a.ConfigDir)
		}
		files[filepath.Join("host_vars", a.Node+".yml")] = fmt.Appendf(nil, `# Written by `+"`fleetdeck demo`"+`: %[1]s is a real Consul client agent on this machine.
ansible_connection: local
ansible_python_interpreter: auto_silent
consul_config_dir: %[2]s
consul_http_addr: %[3]s
consul_bin: %[4]s
`, a.Node, yamlUnsafe(a.ConfigDir), yamlUnsafe(a.HTTPAddr), yamlUnsafe(a.ConsulBin))
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("writing the demo's %s: %w", name, err)
		}
		if err := os.WriteFile(p, content, 0o644); err != nil {
			return fmt.Errorf("writing the demo's %s: %w", name, err)
		}
	}
	return nil
}

// yamlUnsafe quotes s as a YAML double-quoted scalar (a JSON string is
// one) tagged !unsafe: a path holding "{{" must stay a path, not become a
// template Ansible runs.
func yamlUnsafe(s string) string {
	b, _ := json.Marshal(s) // a string always marshals
	return "!unsafe " + string(b)
}

// StandIn serves the stand-ins of the demo roles' services: GET or HEAD
// /health/<role> answers 200 for any role name, so a real node's http
// check passes once its agent runs the role, and the tcp check finds a
// listener. Anything else is 404.
func StandIn() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		role, ok := strings.CutPrefix(r.URL.Path, "/health/")
		if !ok || !hostName.MatchString(role) || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "ok: the fleetdeck demo's stand-in for the %s service\n", role)
	})
}
