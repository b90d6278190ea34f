package roles_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/fleetdeck/fleetdeck/roles"
)

const goodCatalog = `
[roles.web]
port = 8080
tags = ["prod", "v1"]
check = { http = "http://{address}:8080/health", interval = "10s", timeout = "2s" }

[roles.db]
port = 5432
[roles.db.check]
tcp = "{address}:5432"

[roles.worker]
check = { ttl = "30s" }

[roles.plain]
`

func TestParseCatalog(t *testing.T) {
	c, err := roles.Parse([]byte(goodCatalog), "pb/roles.toml")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Names(); !slices.Equal(got, []string{"db", "plain", "web", "worker"}) {
		t.Fatalf("names %v", got)
	}
	web, ok := c.Lookup("web")
	if !ok || web.Port != 8080 || !slices.Equal(web.Tags, []string{"prod", "v1"}) || web.Check == nil ||
		web.Check.HTTP != "http://{address}:8080/health" || web.Check.Interval != 10*time.Second || web.Check.Timeout != 2*time.Second ||
		web.Source != "[roles.web] in pb/roles.toml" {
		t.Errorf("web: %+v %+v", web, web.Check)
	}
	db, _ := c.Lookup("db")
	if db.Check == nil || db.Check.TCP != "{address}:5432" || db.Check.Interval != roles.DefaultInterval {
		t.Errorf("db: %+v (the interval defaults to %s)", db.Check, roles.DefaultInterval)
	}
	w, _ := c.Lookup("worker")
	if w.Check == nil || w.Check.TTL != 30*time.Second || w.Check.Interval != 0 {
		t.Errorf("worker: %+v", w.Check)
	}
	if p, _ := c.Lookup("plain"); p.Check != nil || p.Port != 0 || p.Tags != nil {
		t.Errorf("plain: %+v", p)
	}
	// Lookup returns copies: the catalog is immutable.
	web.Tags[0] = "changed"
	web.Check.HTTP = "changed"
	if again, _ := c.Lookup("web"); again.Tags[0] != "prod" || again.Check.HTTP == "changed" {
		t.Errorf("changing a looked-up role changed the catalog: %+v", again)
	}
	if err := c.Validate([]string{"web", "db"}); err != nil {
		t.Errorf("Validate known roles: %v", err)
	}
}

// Every refusal names the source, the role and the key, and says why.
func TestParseCatalogRefusals(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		want      []string
	}{
		{"uppercase name", "[roles.Web]\n", []string{"f.toml", `role "Web"`, "only a-z, 0-9 and '-'"}},
		{"dot in name", "[roles.\"a.b\"]\n", []string{`role "a.b"`, "only a-z"}},
		{"slash in name", "[roles.\"a/b\"]\n", []string{`role "a/b"`, "only a-z"}},
		{"leading dash", "[roles.-web]\n", []string{"starts with '-'"}},
		{"empty name", "[roles.\"\"]\n", []string{"role name is empty"}},
		{"long name", "[roles." + strings.Repeat("a", 64) + "]\n", []string{"more than 63"}},
		{"script args", "[roles.web]\ncheck = { args = [\"/bin/sh\", \"-c\", \"id\"], interval = \"10s\" }\n",
			[]string{`role "web"`, "check.args", "script checks are not allowed"}},
		{"script key", "[roles.web.check]\nscript = \"id\"\n", []string{"check.script", "script checks are not allowed"}},
		{"shell key", "[roles.web.check]\nshell = \"/bin/sh\"\nttl = \"10s\"\n", []string{"check.shell", "script checks are not allowed"}},
		{"no kind", "[roles.web]\ncheck = { interval = \"10s\" }\n", []string{`role "web"`, "has 0 of http, tcp and ttl"}},
		{"two kinds", "[roles.web]\ncheck = { http = \"http://{address}/\", tcp = \"{address}:80\" }\n", []string{"has 2 of http, tcp and ttl"}},
		{"bad duration", "[roles.web]\ncheck = { http = \"http://{address}/\", interval = \"ten\" }\n", []string{"check.interval \"ten\"", "not a duration"}},
		{"short interval", "[roles.web]\ncheck = { http = \"http://{address}/\", interval = \"500ms\" }\n", []string{"check.interval 500ms", "at least 1s"}},
		{"zero ttl", "[roles.web]\ncheck = { ttl = \"0s\" }\n", []string{"check.ttl", "positive"}},
		{"short ttl", "[roles.web]\ncheck = { ttl = \"100ms\" }\n", []string{"check.ttl", "at least 1s"}},
		{"ttl with interval", "[roles.web]\ncheck = { ttl = \"10s\", interval = \"10s\" }\n", []string{"not ttl"}},
		{"negative timeout", "[roles.web]\ncheck = { tcp = \"{address}:1\", timeout = \"-1s\" }\n", []string{"check.timeout", "positive"}},
		{"ftp url", "[roles.web]\ncheck = { http = \"ftp://{address}/\" }\n", []string{"check.http", "http or https"}},
		{"no host", "[roles.web]\ncheck = { http = \"http:///health\" }\n", []string{"check.http", "no host"}},
		{"bad url", "[roles.web]\ncheck = { http = \"http://{address}:99999/\" }\n", []string{"check.http"}},
		{"space in url", "[roles.web]\ncheck = { http = \"http://{address}/ x\" }\n", []string{"check.http", "spaces or control"}},
		{"unknown placeholder", "[roles.web]\ncheck = { http = \"http://{host}:80/\" }\n", []string{"check.http", `unknown placeholder "{host}"`}},
		{"stray brace", "[roles.web]\ncheck = { tcp = \"{address:80\" }\n", []string{"check.tcp", "unknown placeholder"}},
		{"tcp no port", "[roles.web]\ncheck = { tcp = \"{address}\" }\n", []string{"check.tcp", "not host:port"}},
		{"tcp bad port", "[roles.web]\ncheck = { tcp = \"{address}:http\" }\n", []string{"check.tcp", "not a number"}},
		{"empty tag", "[roles.web]\ntags = [\"\"]\n", []string{"tags[0]", "empty tag"}},
		{"control tag", "[roles.web]\ntags = [\"ok\", \"a\\u001b[31mb\"]\n", []string{"tags[1]", "control characters"}},
		{"newline tag", "[roles.web]\ntags = [\"a\\nb\"]\n", []string{"tags[0]", "control characters"}},
		{"long tag", "[roles.web]\ntags = [\"" + strings.Repeat("x", 256) + "\"]\n", []string{"tags[0]", "more than 255"}},
		{"duplicate tag", "[roles.web]\ntags = [\"a\", \"a\"]\n", []string{"tags[1]", "twice"}},
		{"port high", "[roles.web]\nport = 65536\n", []string{`role "web"`, "port 65536", "0..65535"}},
		{"port negative", "[roles.web]\nport = -1\n", []string{"port -1"}},
		{"port string", "[roles.web]\nport = \"8080\"\n", []string{`role "web"`, "port"}},
		{"unknown role key", "[roles.web]\nprot = 8080\n", []string{"f.toml", `role "web"`, "unknown key prot"}},
		{"unknown check key", "[roles.web]\ncheck = { grpc = \"x:1\", ttl = \"5s\" }\n", []string{`role "web"`, "unknown key check.grpc"}},
		{"unknown sub-table", "[roles.web.meta]\na = \"1\"\nb = \"2\"\n", []string{"unknown key meta "}},
		{"setting in roles.toml", "[roles]\nkv_prefix = \"x/\"\n", []string{"roles.kv_prefix is not a role table", "config file"}},
		{"unknown top-level", "[ansible]\nplaybook_dir = \"x\"\n", []string{"unknown key ansible", "only [roles.NAME]"}},
		{"roles not a table", "roles = 3\n", []string{"roles is a integer"}},
		{"not toml", "[roles.web\n", []string{"f.toml"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := roles.Parse([]byte(tc.doc), "f.toml")
			if err == nil {
				t.Fatalf("accepted: %v", c.Names())
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if !strings.Contains(err.Error(), "f.toml") {
				t.Errorf("error %q does not name the source", err)
			}
		})
	}
}

// All errors of a file come back at once, so that one edit fixes them.
func TestParseCatalogReportsEveryError(t *testing.T) {
	_, err := roles.Parse([]byte("[roles.Bad]\n[roles.web]\nport = 70000\n[roles.ok]\n[roles.ok.check]\nargs = [\"id\"]\n"), "f.toml")
	if err == nil {
		t.Fatal("accepted")
	}
	for _, w := range []string{`role "Bad"`, `role "web": port 70000`, `role "ok": check.args: script checks`} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
}

// The config file's [roles] table: settings beside the role tables; its
// keys are marked decoded so the config file's own unknown-key check does
// not see them, and a role named like a setting is still a role.
func TestDecodeConfig(t *testing.T) {
	var fc struct {
		UI struct {
			ReadOnly bool `toml:"read_only"`
		} `toml:"ui"`
		Roles *toml.Primitive `toml:"roles,omitempty"`
	}
	doc := `
[ui]
read_only = true
[roles]
kv_prefix = "ops/desired/"
playbook = "apply.yml"
[roles.web]
check = { http = "https://{address}/", interval = "5s" }
`
	md, err := toml.Decode(doc, &fc)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := roles.DecodeConfig(md, fc.Roles, "/etc/fleetdeck.toml")
	if err != nil {
		t.Fatal(err)
	}
	if rc.KVPrefix != "ops/desired/" || rc.Playbook != "apply.yml" || !slices.Equal(rc.Catalog.Names(), []string{"web"}) {
		t.Errorf("config %+v, roles %v", rc, rc.Catalog.Names())
	}
	if r, _ := rc.Catalog.Lookup("web"); r.Source != "[roles.web] in /etc/fleetdeck.toml" {
		t.Errorf("source %q", r.Source)
	}
	if u := md.Undecoded(); len(u) != 0 {
		t.Errorf("left undecoded for the config file's own check: %v", u)
	}

	// A role may be called like a setting: it is a table, not a string.
	md, err = toml.Decode("[roles.playbook]\nport = 1\n", &fc)
	if err != nil {
		t.Fatal(err)
	}
	if rc, err := roles.DecodeConfig(md, fc.Roles, "c.toml"); err != nil || rc.Playbook != "" || !slices.Equal(rc.Catalog.Names(), []string{"playbook"}) {
		t.Errorf("role named playbook: %+v, %v", rc, err)
	}

	// No [roles] table: an empty catalog.
	var empty struct {
		Roles *toml.Primitive `toml:"roles,omitempty"`
	}
	md, _ = toml.Decode("", &empty)
	rc, err = roles.DecodeConfig(md, empty.Roles, "c.toml")
	if err != nil || rc.Catalog.Len() != 0 || rc.KVPrefix != "" {
		t.Errorf("no table: %+v, %v", rc, err)
	}

	for _, tc := range []struct{ doc, want string }{
		{"[roles]\nkv_prefx = \"x/\"\n", "c.toml: unknown key roles.kv_prefx"},
		{"[roles]\nkv_prefix = 3\n", "c.toml: roles.kv_prefix"},
		{"[roles.web]\ncheck = { script = \"id\" }\n", `c.toml: role "web": check.script: script checks are not allowed`},
		{"[roles.web]\ncolor = \"red\"\n", `c.toml: role "web": unknown key color`},
	} {
		md, err := toml.Decode(tc.doc, &empty)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := roles.DecodeConfig(md, empty.Roles, "c.toml"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.doc, err, tc.want)
		}
	}
}

// A role defined in the config file and in roles.toml is an error naming
// both places.
func TestMergeRefusesARoleDefinedTwice(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, roles.RolesFile), []byte("[roles.web]\nport = 80\n[roles.db]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fromDir, err := roles.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	fromFile, err := roles.Parse([]byte("[roles.web]\nport = 81\n[roles.api]\n"), "/etc/fleetdeck.toml")
	if err != nil {
		t.Fatal(err)
	}
	_, err = roles.Merge(fromFile, fromDir)
	if err == nil || !strings.Contains(err.Error(), `role "web" is defined twice: [roles.web] in /etc/fleetdeck.toml and [roles.web] in `+filepath.Join(dir, "roles.toml")) {
		t.Fatalf("merge: %v", err)
	}
	other, _ := roles.Parse([]byte("[roles.api]\n"), "c.toml")
	m, err := roles.Merge(other, fromDir, nil)
	if err != nil || !slices.Equal(m.Names(), []string{"api", "db", "web"}) {
		t.Errorf("merge: %v, %v", m.Names(), err)
	}

	// A playbook directory without roles.toml has an empty catalog.
	none, err := roles.ReadDir(t.TempDir())
	if err != nil || none.Len() != 0 {
		t.Errorf("no roles.toml: %v, %v", none.Names(), err)
	}
}

func TestValidateNamesKnownRoles(t *testing.T) {
	c, err := roles.Parse([]byte("[roles.web]\n[roles.db]\n"), "f")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate([]string{"web", "serch"}); err == nil || err.Error() != `unknown role "serch" (known roles: db, web)` {
		t.Errorf("unknown: %v", err)
	}
	if err := c.Validate([]string{"a", "b"}); err == nil || !strings.Contains(err.Error(), `unknown roles "a", "b"`) {
		t.Errorf("two unknown: %v", err)
	}
	if err := c.Validate([]string{"../etc"}); err == nil || !strings.Contains(err.Error(), "only a-z") {
		t.Errorf("bad name: %v", err)
	}
	var empty *roles.Catalog
	if err := empty.Validate([]string{"web"}); err == nil || !strings.Contains(err.Error(), "the role catalog is empty") {
		t.Errorf("empty catalog: %v", err)
	}
}

func TestExpandAddress(t *testing.T) {
	for _, tc := range []struct{ in, addr, want string }{
		{"http://{address}:8080/health", "10.0.0.1", "http://10.0.0.1:8080/health"},
		{"http://{address}:8080/health", "2001:db8::1", "http://[2001:db8::1]:8080/health"},
		{"{address}:5432", "[::1]", "[::1]:5432"},
	} {
		if got := roles.ExpandAddress(tc.in, tc.addr); got != tc.want {
			t.Errorf("ExpandAddress(%q, %q) = %q, want %q", tc.in, tc.addr, got, tc.want)
		}
	}
}
