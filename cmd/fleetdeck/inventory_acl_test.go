package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/fleetdeck/fleetdeck/internal/consulagent"
)

// aclHarness is a real Consul with ACLs on and default_policy deny, and a
// token file per permission set.
type aclHarness struct {
	t     *testing.T
	agent *consulagent.Agent
	root  *api.Client
	dir   string
	// policies are the policy IDs by name.
	policies map[string]string
}

func newACLHarness(t *testing.T) *aclHarness {
	t.Helper()
	agent := consulagent.StartTest(t, consulagent.Options{
		ExtraHCL: `acl {
  enabled = true
  default_policy = "deny"
  tokens { initial_management = "root" }
}`,
		Token: "root",
	})
	root, err := agent.Client()
	if err != nil {
		t.Fatal(err)
	}
	h := &aclHarness{t: t, agent: agent, root: root, dir: t.TempDir(), policies: map[string]string{}}
	// web-1's service check fails: a token that may not read services
	// cannot see it.
	for _, reg := range []*api.CatalogRegistration{
		{Node: "web-1", Address: "10.3.0.1", Service: &api.AgentService{ID: "web", Service: "web", Port: 80},
			Checks: api.HealthChecks{
				{Node: "web-1", CheckID: "alive", Name: "alive", Status: api.HealthPassing},
				{Node: "web-1", CheckID: "web-http", Name: "web http", ServiceID: "web", Status: api.HealthCritical, Output: "HTTP 503"},
			}},
		{Node: "db-1", Address: "10.3.0.2", Service: &api.AgentService{ID: "db", Service: "db", Port: 5432}},
	} {
		if _, err := root.Catalog().Register(reg, nil); err != nil {
			t.Fatalf("registering %s: %v", reg.Node, err)
		}
	}
	for name, rules := range map[string]string{
		// May read KV only: no node:read at all.
		"kv-only":   `key_prefix "" { policy = "read" }`,
		"node-only": `node_prefix "" { policy = "read" }`,
		"full": `node_prefix "" { policy = "read" }
service_prefix "" { policy = "read" }`,
	} {
		pol, _, err := root.ACL().PolicyCreate(&api.ACLPolicy{Name: name, Rules: rules}, nil)
		if err != nil {
			t.Fatalf("creating policy %s: %v", name, err)
		}
		h.policies[name] = pol.ID
		tok, _, err := root.ACL().TokenCreate(&api.ACLToken{Policies: []*api.ACLTokenPolicyLink{{ID: pol.ID}}}, nil)
		if err != nil {
			t.Fatalf("creating a %s token: %v", name, err)
		}
		h.writeToken(name, tok.SecretID)
	}
	// A token Consul does not know (deleted, or from another cluster).
	h.writeToken("unknown", "8c4d0f6e-0000-4000-8000-00000000dead")
	t.Setenv("CONSUL_HTTP_ADDR", agent.HTTPAddr())
	t.Setenv(api.HTTPTokenEnvName, "")
	t.Setenv(api.HTTPTokenFileEnvName, "")
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("XDG_CACHE_HOME", filepath.Join(h.dir, "cache"))
	return h
}

func (h *aclHarness) tokenFile(name string) string { return filepath.Join(h.dir, name+".token") }

func (h *aclHarness) writeToken(name, secret string) {
	h.t.Helper()
	if err := os.WriteFile(h.tokenFile(name), []byte(secret+"\n"), 0o600); err != nil {
		h.t.Fatal(err)
	}
}

// inventory runs `fleetdeck inventory --list --verbose` through the real
// command tree.
func (h *aclHarness) inventory(args ...string) (stdout, stderr string, err error) {
	h.t.Helper()
	root := newRootCmd()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(append([]string{"inventory", "--list", "--verbose"}, args...))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = root.ExecuteContext(ctx)
	return out.String(), errOut.String(), err
}

// cacheEntries lists the inventory cache's entries.
func (h *aclHarness) cacheEntries() []string {
	h.t.Helper()
	m, err := filepath.Glob(filepath.Join(h.dir, "cache", "fleetdeck", "inventory", "*"+cacheSuffix))
	if err != nil {
		h.t.Fatal(err)
	}
	return m
}

// TestInventoryUnderACLs runs the inventory against a real Consul whose
// ACL default policy is deny, with no token and with tokens of every
// permission set, from each place a token can come from.
func TestInventoryUnderACLs(t *testing.T) {
	h := newACLHarness(t)

	t.Run("anonymous", func(t *testing.T) {
		out, errOut, err := h.inventory()
		t.Logf("error: %v", err)
		if err == nil || !strings.Contains(err.Error(), "no node is visible without an ACL token") ||
			!strings.Contains(err.Error(), "--token-file") {
			t.Errorf("anonymous read of a deny-by-default Consul: err = %v\n%s", err, errOut)
		}
		if out != "" {
			t.Errorf("printed an inventory: %s", out)
		}
		if e := h.cacheEntries(); len(e) != 0 {
			t.Errorf("cached: %v", e)
		}
	})

	// A token without node:read, and one Consul does not know: each error
	// names where the token came from, not the variables to set.
	cfg := filepath.Join(h.dir, "fleetdeck.toml")
	if err := os.WriteFile(cfg, []byte("[consul]\ntoken_file = \""+h.tokenFile("kv-only")+"\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, env string
		args      []string
		want      []string
	}{
		{"kv-only --token-file", "", []string{"--token-file", h.tokenFile("kv-only")},
			[]string{"the ACL token from --token-file " + h.tokenFile("kv-only") + " may read no node"}},
		{"kv-only [consul] token_file", "", []string{"--config", cfg},
			[]string{"the ACL token from [consul] token_file " + h.tokenFile("kv-only") + " in " + cfg + " may read no node"}},
		{"kv-only CONSUL_HTTP_TOKEN_FILE", h.tokenFile("kv-only"), nil,
			[]string{"the ACL token from CONSUL_HTTP_TOKEN_FILE " + h.tokenFile("kv-only") + " may read no node"}},
		{"unknown --token-file", "", []string{"--token-file", h.tokenFile("unknown")},
			[]string{"permission denied by Consul ACLs", "the token from --token-file " + h.tokenFile("unknown") + " is unknown to Consul or lacks node:read"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(api.HTTPTokenFileEnvName, tc.env)
			out, errOut, err := h.inventory(tc.args...)
			if err == nil {
				t.Fatalf("accepted; printed %s\n%s", out, errOut)
			}
			t.Logf("error: %v", err)
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "set CONSUL_HTTP_TOKEN") {
				t.Errorf("error tells to set the token variables although a token was given: %v", err)
			}
			if out != "" {
				t.Errorf("printed an inventory: %s", out)
			}
		})
	}
	if e := h.cacheEntries(); len(e) != 0 {
		t.Errorf("cached: %v", e)
	}

	t.Run("node:read only", func(t *testing.T) {
		for run := range 2 {
			out, errOut, err := h.inventory("--token-file", h.tokenFile("node-only"))
			if err != nil {
				t.Fatalf("run %d: %v\n%s", run, err, errOut)
			}
			t.Logf("run %d: stderr:\n%s", run, errOut)
			// What is visible is printed…
			if hosts := groupHosts(t, out, "dc_dc1"); len(hosts) != 3 {
				t.Errorf("run %d: dc_dc1 = %v, want the agent, web-1 and db-1", run, hosts)
			}
			// …with a warning where it is incomplete: web-1's failing
			// service check is not readable, so web-1 looks passing.
			if !strings.Contains(errOut, "warning: datacenter dc1: the ACL token (from --token-file "+h.tokenFile("node-only")+") may not read every check: health is incomplete") {
				t.Errorf("run %d: no health warning:\n%s", run, errOut)
			}
			if !strings.Contains(errOut, "roles (svc_* groups, consul_services)") {
				t.Errorf("run %d: no roles warning:\n%s", run, errOut)
			}
			if strings.Contains(errOut, "served from") || !strings.Contains(errOut, "not cached") {
				t.Errorf("run %d: an incomplete answer went through the cache:\n%s", run, errOut)
			}
		}
		if e := h.cacheEntries(); len(e) != 0 {
			t.Errorf("cached: %v", e)
		}
	})

	t.Run("full token", func(t *testing.T) {
		out, errOut, err := h.inventory("--token-file", h.tokenFile("full"))
		if err != nil {
			t.Fatalf("%v\n%s", err, errOut)
		}
		if crit := groupHosts(t, out, "health_critical"); len(crit) != 1 || crit[0] != "web-1" {
			t.Errorf("health_critical = %v, want [web-1]\n%s", crit, errOut)
		}
		if strings.Contains(errOut, "warning: datacenter") {
			t.Errorf("a complete read warned:\n%s", errOut)
		}
		// The cache works as without ACLs.
		again, errOut, err := h.inventory("--token-file", h.tokenFile("full"))
		if err != nil || again != out || !strings.Contains(errOut, "served from the cache") {
			t.Errorf("second run with the full token: %v\n%s", err, errOut)
		}

		// The token loses service:read: no catalog write, same index, but
		// the cached answer is no longer what it may see.
		if _, _, err := h.root.ACL().PolicyUpdate(&api.ACLPolicy{ID: h.policies["full"], Name: "full",
			Rules: `node_prefix "" { policy = "read" }`}, nil); err != nil {
			t.Fatalf("narrowing the policy: %v", err)
		}
		entries := h.cacheEntries()
		before, _ := os.ReadFile(entries[0])
		out, errOut, err = h.inventory("--token-file", h.tokenFile("full"))
		if err != nil {
			t.Fatalf("%v\n%s", err, errOut)
		}
		t.Logf("after the policy change:\n%s", errOut)
		if strings.Contains(errOut, "served from") || !strings.Contains(errOut, "may not read every") ||
			!strings.Contains(errOut, "health is incomplete") {
			t.Errorf("after the policy lost service:read:\n%s", errOut)
		}
		if len(groupHosts(t, out, "health_critical")) != 0 {
			t.Errorf("the answer is the cached one (web-1 critical), not what the token may read now")
		}
		if after, _ := os.ReadFile(entries[0]); !bytes.Equal(before, after) {
			t.Error("the incomplete answer was written to the cache")
		}
	})
}
