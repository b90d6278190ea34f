package deploy

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/fleetdeck/fleetdeck/fleet"
)

// roleSel is a fake Selector ("role:X" matches nodes with service X, "!X"
// negates, "" all): tests need a filter, not the console's.
type roleSel struct {
	role string
	neg  bool
}

func (s roleSel) Match(n *fleet.Node) bool {
	return s.role == "" || (slicesContains(n.Roles(), s.role) != s.neg)
}

func slicesContains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func compileFake(s string) (Selector, error) {
	neg := strings.HasPrefix(s, "!")
	s = strings.TrimPrefix(s, "!")
	r, ok := strings.CutPrefix(s, "role:")
	if !ok {
		return nil, errors.New("bad filter")
	}
	return roleSel{role: r, neg: neg}, nil
}

func decode(t *testing.T, doc string) (Config, error) {
	t.Helper()
	var fc struct {
		Provisioner *toml.Primitive `toml:"provisioner"`
	}
	md, err := toml.Decode(doc, &fc)
	if err != nil {
		t.Fatal(err)
	}
	return DecodeConfig(md, fc.Provisioner, "test.toml", compileFake)
}

func TestDecodeConfig(t *testing.T) {
	chain := `
[provisioner]
quiet_min = "2s"
batch_max = 10
[provisioner.defaults]
web-asg = ["web"]
[[provisioner.stage]]
name = "web"
select = "role:web"
playbook = "web.yml"
after = ["roles"]
[[provisioner.stage]]
name = "base"
playbook = "base.yml"
[[provisioner.stage]]
name = "roles"
playbook = "@roles"
after = ["base"]
`
	cases := []struct {
		name, doc string
		want      []string // substrings of the error; nil: no error
	}{
		{"chain", chain, nil},
		{"none", ``, nil},
		{"bad name", "[[provisioner.stage]]\nname = \"Base\"\nplaybook = \"b.yml\"", []string{`stage name "Base" has 'B'`}},
		{"dup", "[[provisioner.stage]]\nname = \"a\"\nplaybook = \"b.yml\"\n[[provisioner.stage]]\nname = \"a\"\nplaybook = \"b.yml\"", []string{`stage "a": defined twice`}},
		{"playbook path", "[[provisioner.stage]]\nname = \"a\"\nplaybook = \"../x.yml\"", []string{`playbook "../x.yml"`}},
		{"after unknown", "[[provisioner.stage]]\nname = \"a\"\nplaybook = \"a.yml\"\nafter = [\"zz\"]", []string{`after names "zz"`}},
		{"cycle", "[[provisioner.stage]]\nname = \"a\"\nplaybook = \"a.yml\"\nafter = [\"c\"]\n[[provisioner.stage]]\nname = \"b\"\nplaybook = \"a.yml\"\nafter = [\"a\"]\n[[provisioner.stage]]\nname = \"c\"\nplaybook = \"a.yml\"\nafter = [\"b\"]", []string{"cycle through after: a → c → b → a"}},
		{"self", "[[provisioner.stage]]\nname = \"a\"\nplaybook = \"a.yml\"\nafter = [\"a\"]", []string{`"a" comes after itself`}},
		{"select", "[[provisioner.stage]]\nname = \"a\"\nplaybook = \"a.yml\"\nselect = \"tag:x\"", []string{`select "tag:x": bad filter`}},
		{"unknown key", "[provisioner]\nquite_min = \"1s\"\n[[provisioner.stage]]\nname = \"a\"\nplaybook = \"a.yml\"\nplaybok = 1", []string{"unknown key provisioner.quite_min", "unknown key provisioner.stage.playbok"}},
		{"guards", "[provisioner]\nquiet_min = \"1m\"\nbatch_max = 0\nbreaker_ratio = 1.5\nbackoff_base = \"x\"", []string{"quiet_max (30s) is less than quiet_min (1m0s)", "batch_max = 0", "breaker_ratio = 1.5", `backoff_base = "x"`}},
		{"defaults", "[provisioner.defaults]\ng = [\"Web\"]", []string{"provisioner.defaults.g"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := decode(t, c.doc)
			if c.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, config %+v", cfg)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	cfg, _ := decode(t, chain)
	var names []string
	for _, s := range cfg.Stages {
		names = append(names, s.Name)
	}
	if got := strings.Join(names, ","); got != "base,roles,web" {
		t.Errorf("order %s, want base,roles,web", got)
	}
	if cfg.Guards.QuietMin != 2*time.Second || cfg.Guards.BatchMax != 10 || cfg.Guards.QuietMax != DefaultQuietMax {
		t.Errorf("guards %+v", cfg.Guards)
	}
	if cfg.Defaults["web-asg"][0] != "web" {
		t.Errorf("defaults %v", cfg.Defaults)
	}
	if err := cfg.CheckPlaybooks(func(n string) bool { return n == "base.yml" }); err == nil || !strings.Contains(err.Error(), `"web.yml"`) || strings.Contains(err.Error(), "@roles") {
		t.Errorf("CheckPlaybooks: %v", err)
	}
}
