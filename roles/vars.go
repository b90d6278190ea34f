package roles

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/fleetdeck/fleetdeck/provision"
)

// ErrApplyVars is wrapped by every error of the vars builder: the input
// cannot be turned into the apply playbook's variables, and nothing should
// run.
var ErrApplyVars = errors.New("apply vars")

// ApplyNode is one node of an apply run: what its agent must end up with.
type ApplyNode struct {
	// Host is the node's inventory_hostname in the run's inventory (the
	// key of its entry in fleetdeck_hosts). Required by ExtraVars; ignored
	// by NodeExtraVars.
	Host string
	// Address is the node's address (an IP or a DNS name), substituted
	// for "{address}" in check URLs and TCP targets.
	Address string
	// Roles are the managed roles the node must run, looked up in the
	// catalog by the caller. Roles not listed are taken away: their
	// fleetdeck-*.json files are removed. Empty: no managed role at all.
	Roles []*Role
	// Maintenance is the node's desired maintenance mode; nil leaves the
	// agent's maintenance alone (managed=false).
	Maintenance *Maintenance
	// Agent overrides where the node's agent lives; empty fields are left
	// to the inventory (host_vars) and the playbook's defaults.
	Agent AgentPaths
}

// AgentPaths say where a node's Consul agent is. Empty fields are not
// passed: extra vars outrank host_vars, so passing a default would hide a
// per-host setting.
type AgentPaths struct {
	// ConfigDir is consul_config_dir (playbook default /etc/consul.d).
	ConfigDir string
	// HTTPAddr is consul_http_addr, given to `consul reload` and `consul
	// maint` as -http-addr (playbook default: the CLI's own, i.e.
	// CONSUL_HTTP_ADDR or 127.0.0.1:8500).
	HTTPAddr string
	// Bin is consul_bin (playbook default "consul", found in PATH).
	Bin string
}

// The extra variables of the apply playbook (see playbook/apply.yml).
const (
	VarHosts       = "fleetdeck_hosts"
	VarServices    = "fleetdeck_services"
	VarMaintenance = "fleetdeck_maintenance"
	VarConfigDir   = "consul_config_dir"
	VarHTTPAddr    = "consul_http_addr"
	VarBin         = "consul_bin"
)

// ExtraVars returns the extra-vars JSON document (for --extra-vars @FILE)
// of one apply run over nodes:
//
//	{"fleetdeck_hosts": {HOST: {
//	    "services": {"fleetdeck-R.json": U(content), ...},
//	    "maintenance": {"managed": bool, "on": bool, "reason": U(reason)},
//	    "consul_config_dir": U(dir), "consul_http_addr": U(addr), "consul_bin": U(path)}}}
//
// where U(s) is {"__ansible_unsafe": s}: Ansible never templates it. The
// consul_* keys appear only when set. Per-host entries let one run move
// several nodes whose desired roles differ (extra vars are global, so the
// flat form of NodeExtraVars cannot). Keys are sorted, so the same input
// gives the same bytes.
func ExtraVars(nodes []ApplyNode) ([]byte, error) {
	if len(nodes) == 0 {
		return nil, fmt.Errorf("%w: no node", ErrApplyVars)
	}
	hosts := map[string]any{}
	for _, n := range nodes {
		if err := checkInventoryHost(n.Host); err != nil {
			return nil, err
		}
		if _, dup := hosts[n.Host]; dup {
			return nil, fmt.Errorf("%w: host %q twice", ErrApplyVars, n.Host)
		}
		v, err := nodeVars(n, "services", "maintenance")
		if err != nil {
			return nil, fmt.Errorf("%w (host %q)", err, n.Host)
		}
		hosts[n.Host] = v
	}
	return marshalVars(map[string]any{VarHosts: hosts})
}

// NodeExtraVars returns the flat extra-vars document for a run on one
// node (or on nodes that must all end up the same):
//
//	{"fleetdeck_services": {...}, "fleetdeck_maintenance": {...},
//	 "consul_config_dir": U(dir), ...}
//
// with the same values as an entry of ExtraVars. n.Host is not used.
func NodeExtraVars(n ApplyNode) ([]byte, error) {
	v, err := nodeVars(n, VarServices, VarMaintenance)
	if err != nil {
		return nil, err
	}
	return marshalVars(v)
}

// ServiceDefinition returns the content of role r's service definition
// file (FileName(r.Name)) on a node at address: an indented JSON object
// with sorted keys and a final newline,
//
//	{"service": {"check": {...}, "id": "fleetdeck-R", "meta": {"managed-by": "fleetdeck"},
//	             "name": "R", "port": P, "tags": [...]}}
//
// "port" is left out when 0, "tags" when empty and "check" when r has
// none; "{address}" in the check is replaced with address (IPv6 in
// brackets, as URLs and host:port need it).
func ServiceDefinition(r *Role, address string) ([]byte, error) {
	if r == nil {
		return nil, fmt.Errorf("%w: nil role", ErrApplyVars)
	}
	if !applyRoleName.MatchString(r.Name) {
		return nil, fmt.Errorf("%w: role name %q: want 1–63 of [a-z0-9-], starting with a letter or digit", ErrApplyVars, r.Name)
	}
	host, err := applyAddress(address)
	if err != nil {
		return nil, err
	}
	if r.Port < 0 || r.Port > 65535 {
		return nil, fmt.Errorf("%w: role %s: port %d outside 0–65535", ErrApplyVars, r.Name, r.Port)
	}
	svc := map[string]any{
		"id":   ServiceID(r.Name),
		"name": r.Name,
		// Lets anyone reading the catalog tell fleetdeck's services from
		// hand-made ones without knowing the ID convention.
		"meta": map[string]string{"managed-by": "fleetdeck"},
	}
	if r.Port != 0 {
		svc["port"] = r.Port
	}
	if len(r.Tags) > 0 {
		svc["tags"] = r.Tags
	}
	if r.Check != nil {
		c, err := applyCheck(r.Name, r.Check, host)
		if err != nil {
			return nil, err
		}
		svc["check"] = c
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	// Tags and URLs are shown in check-mode diffs; "<" is easier to read
	// than "\u003c", and both mean the same to Consul.
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(map[string]any{"service": svc}); err != nil {
		return nil, fmt.Errorf("%w: role %s: %v", ErrApplyVars, r.Name, err)
	}
	return buf.Bytes(), nil
}

// nodeVars builds one node's variables under the given key names.
func nodeVars(n ApplyNode, servicesKey, maintKey string) (map[string]any, error) {
	services := map[string]provision.AnsibleUnsafe{}
	for _, r := range n.Roles {
		if r == nil {
			return nil, fmt.Errorf("%w: nil role", ErrApplyVars)
		}
		def, err := ServiceDefinition(r, n.Address)
		if err != nil {
			return nil, err
		}
		f := FileName(r.Name)
		if _, dup := services[f]; dup {
			return nil, fmt.Errorf("%w: role %s listed twice", ErrApplyVars, r.Name)
		}
		services[f] = provision.AnsibleUnsafe(def)
	}
	if len(n.Roles) == 0 {
		// Address is still checked: a bad one means the caller mixed up
		// nodes, and removing every role of the wrong node is the worst
		// outcome of that.
		if _, err := applyAddress(n.Address); err != nil {
			return nil, err
		}
	}
	maint := map[string]any{"managed": false, "on": false, "reason": provision.AnsibleUnsafe("")}
	if m := n.Maintenance; m != nil {
		if m.On && strings.TrimSpace(m.Reason) == "" {
			return nil, fmt.Errorf("%w: maintenance on needs a reason", ErrApplyVars)
		}
		maint = map[string]any{"managed": true, "on": m.On, "reason": provision.AnsibleUnsafe(m.Reason)}
	}
	v := map[string]any{servicesKey: services, maintKey: maint}
	for k, s := range map[string]string{VarConfigDir: n.Agent.ConfigDir, VarHTTPAddr: n.Agent.HTTPAddr, VarBin: n.Agent.Bin} {
		if s == "" {
			continue
		}
		if strings.ContainsAny(s, "\x00\n\r") {
			return nil, fmt.Errorf("%w: %s %q holds a NUL or a line break", ErrApplyVars, k, s)
		}
		v[k] = provision.AnsibleUnsafe(s)
	}
	if d := n.Agent.ConfigDir; d != "" && !strings.HasPrefix(d, "/") {
		return nil, fmt.Errorf("%w: %s %q is not an absolute path", ErrApplyVars, VarConfigDir, d)
	}
	return v, nil
}

func marshalVars(v map[string]any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("%w: encoding: %v", ErrApplyVars, err)
	}
	return buf.Bytes(), nil
}

// applyRoleName is Role.Name's rule. The vars builder checks it itself
// because the name becomes a file name on the node: whatever the catalog
// let through, nothing else may reach the config dir.
var applyRoleName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// applyDNSLabel is one label of a DNS name (RFC 1123: letters, digits and
// inner hyphens, 1–63 characters).
var applyDNSLabel = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)

// applyAddress checks that address is an IP or a DNS name and returns it
// as it goes into a URL or host:port (IPv6 in brackets). Anything else —
// spaces, slashes, "@", ports, Jinja — would change what the check
// probes, so it is refused rather than escaped.
func applyAddress(address string) (string, error) {
	if ip := net.ParseIP(address); ip != nil {
		if ip.To4() == nil {
			return "[" + ip.String() + "]", nil
		}
		return address, nil
	}
	if address == "" || len(address) > 253 {
		return "", fmt.Errorf("%w: node address %q: want an IP or a DNS name", ErrApplyVars, address)
	}
	labels := strings.Split(address, ".")
	for _, l := range labels {
		if !applyDNSLabel.MatchString(l) {
			return "", fmt.Errorf("%w: node address %q: want an IP or a DNS name", ErrApplyVars, address)
		}
	}
	// A name of digits and dots only is a malformed IP, not a host name.
	if _, err := strconv.Atoi(labels[len(labels)-1]); err == nil {
		return "", fmt.Errorf("%w: node address %q: not a valid IP", ErrApplyVars, address)
	}
	return address, nil
}

// applyCheck returns the check's JSON object for a node whose address (as
// it goes into a URL) is host.
func applyCheck(role string, c *Check, host string) (map[string]any, error) {
	kinds := 0
	for _, set := range []bool{c.HTTP != "", c.TCP != "", c.TTL != 0} {
		if set {
			kinds++
		}
	}
	if kinds != 1 {
		return nil, fmt.Errorf("%w: role %s: a check needs exactly one of http, tcp or ttl", ErrApplyVars, role)
	}
	dur := func(d time.Duration) string { return d.String() }
	out := map[string]any{}
	switch {
	case c.TTL != 0:
		if c.TTL < 0 {
			return nil, fmt.Errorf("%w: role %s: negative ttl", ErrApplyVars, role)
		}
		out["ttl"] = dur(c.TTL)
		return out, nil
	case c.HTTP != "":
		u := strings.ReplaceAll(c.HTTP, "{address}", host)
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return nil, fmt.Errorf("%w: role %s: check url %q: want http(s)://host…", ErrApplyVars, role, u)
		}
		out["http"] = u
	default:
		t := strings.ReplaceAll(c.TCP, "{address}", host)
		h, port, err := net.SplitHostPort(t)
		if err != nil || h == "" || port == "" {
			return nil, fmt.Errorf("%w: role %s: tcp check %q: want host:port", ErrApplyVars, role, t)
		}
		out["tcp"] = t
	}
	// Consul refuses an HTTP or TCP check without an interval; say so here,
	// where the role is named, rather than in consul validate's output.
	if c.Interval <= 0 {
		return nil, fmt.Errorf("%w: role %s: an http or tcp check needs an interval", ErrApplyVars, role)
	}
	if c.Timeout < 0 {
		return nil, fmt.Errorf("%w: role %s: negative timeout", ErrApplyVars, role)
	}
	out["interval"] = dur(c.Interval)
	if c.Timeout > 0 {
		out["timeout"] = dur(c.Timeout)
	}
	return out, nil
}

// checkInventoryHost refuses host names the playbook could not look up
// safely: fleetdeck_hosts is indexed by inventory_hostname, and a name is
// only ever a dictionary key there, but empty or control-character names
// are a caller's bug.
func checkInventoryHost(h string) error {
	if h == "" || strings.ContainsFunc(h, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return fmt.Errorf("%w: inventory host %q", ErrApplyVars, h)
	}
	return nil
}
