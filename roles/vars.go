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
)

// ErrApplyVars is wrapped by every error of the vars builder: the input
// cannot be turned into the apply playbook's variables, and nothing should
// run.
var ErrApplyVars = errors.New("apply vars")

// ApplyNode is one node of an apply run: what its agent must end up with.
// Where the agent lives (consul_config_dir, consul_http_addr, consul_bin)
// is never passed by fleetdeck: it comes from the inventory and the
// playbook directory's host_vars/group_vars, which any variable fleetdeck
// passed would hide.
type ApplyNode struct {
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
}

// The variables of the apply playbook (see playbook/apply.yml). The first
// two are the per-host variables fleetdeck passes (HostVars); the consul_*
// ones are the inventory's or host_vars' and are only read.
const (
	VarServices    = "fleetdeck_services"
	VarMaintenance = "fleetdeck_maintenance"
	VarConfigDir   = "consul_config_dir"
	VarHTTPAddr    = "consul_http_addr"
	VarBin         = "consul_bin"
)

// HostVars returns node n's per-host variables for an apply run
// (provision.LaunchRequest.HostVars[node key]):
//
//	fleetdeck_services:    {"fleetdeck-R.json": "<ServiceDefinition>", ...}
//	fleetdeck_maintenance: {"managed": bool, "on": bool, "reason": "..."}
//
// Strings are plain here: the run manager writes every string of a host's
// variables into the run's inventory as {"__ansible_unsafe": ...}, so
// Ansible never templates a role's tag, a check URL or a reason. File
// names are map keys, which the manager holds to [A-Za-z0-9._-] (a role
// name is [a-z0-9-]). The same input gives the same variables.
func HostVars(n ApplyNode) (map[string]any, error) {
	services := map[string]any{}
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
		services[f] = string(def)
	}
	if len(n.Roles) == 0 {
		// Address is still checked: a bad one means the caller mixed up
		// nodes, and removing every role of the wrong node is the worst
		// outcome of that.
		if _, err := applyAddress(n.Address); err != nil {
			return nil, err
		}
	}
	maint := map[string]any{"managed": false, "on": false, "reason": ""}
	if m := n.Maintenance; m != nil {
		if m.On && strings.TrimSpace(m.Reason) == "" {
			return nil, fmt.Errorf("%w: maintenance on needs a reason", ErrApplyVars)
		}
		reason := m.Reason
		if !m.On {
			reason = ""
		}
		maint = map[string]any{"managed": true, "on": m.On, "reason": reason}
	}
	return map[string]any{VarServices: services, VarMaintenance: maint}, nil
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
