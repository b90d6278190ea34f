package provision

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
)

// Every string at any depth is wrapped; numbers, bools and null are not;
// map keys are plain; the output is deterministic.
func TestEncodeHostVarsWrapsEveryString(t *testing.T) {
	enc, err := encodeHostVars(map[string]map[string]any{
		"dc1/web-0": {
			"fleetdeck_x": map[string]any{
				"list": []any{"{{ a }}", 1, 2.5, true, nil, []string{"b"}},
				"map":  map[string]string{"k.1": "v"},
				"n":    json.Number("12"),
			},
			"fleetdeck_s": "plain",
		},
		"dc1/web-1": {"fleetdeck_s": "other"},
	}, []string{"dc1/web-0", "dc1/web-1", "dc1/web-2"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := string(enc.vars["dc1/web-0"]["fleetdeck_x"])
	want := `{"list":[{"__ansible_unsafe":"{{ a }}"},1,2.5,true,null,[{"__ansible_unsafe":"b"}]],"map":{"k.1":{"__ansible_unsafe":"v"}},"n":12}`
	if got != want {
		t.Errorf("encoded\n got %s\nwant %s", got, want)
	}
	if s := string(enc.vars["dc1/web-1"]["fleetdeck_s"]); s != `{"__ansible_unsafe":"other"}` {
		t.Errorf("string var encoded %s", s)
	}
	if strings.Join(enc.names, ",") != "fleetdeck_s,fleetdeck_x" {
		t.Errorf("names %v", enc.names)
	}
}

// The inventory writes a host's extra variables after its own, and the
// document stays valid JSON whose strings decode unchanged.
func TestInventoryWritesExtraHostVars(t *testing.T) {
	hostile := "{{ lookup('pipe','id') }}\n\"q\" $(id) ü \u2028"
	enc, err := encodeHostVars(map[string]map[string]any{"dc1/a": {"fleetdeck_s": hostile}}, []string{"dc1/a"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	inv := &Inventory{Groups: map[string][]string{"all_a": {"a"}}, Hosts: map[string]*InventoryHostVars{
		"a": {Node: "a", Datacenter: "dc1", Extra: enc.vars["dc1/a"]},
		"b": {Node: "b", Datacenter: "dc1"},
	}}
	var buf bytes.Buffer
	if err := inv.WriteList(&buf); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Meta struct {
			Hostvars map[string]map[string]json.RawMessage `json:"hostvars"`
		} `json:"_meta"`
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatalf("inventory is not JSON: %v\n%s", err, buf.Bytes())
	}
	var u AnsibleUnsafe
	if err := json.Unmarshal(doc.Meta.Hostvars["a"]["fleetdeck_s"], &u); err != nil || string(u) != hostile {
		t.Errorf("fleetdeck_s = %q (%v), want %q", u, err, hostile)
	}
	if _, ok := doc.Meta.Hostvars["b"]["fleetdeck_s"]; ok {
		t.Error("host b got a's variable")
	}
	if !bytes.Contains(doc.Meta.Hostvars["a"]["fleetdeck_s"], []byte(`{"__ansible_unsafe":`)) {
		t.Errorf("not wrapped: %s", doc.Meta.Hostvars["a"]["fleetdeck_s"])
	}
	// WriteHost writes the same.
	buf.Reset()
	if err := inv.WriteHost(&buf, "a"); err != nil {
		t.Fatal(err)
	}
	if !json.Valid(buf.Bytes()) || !bytes.Contains(buf.Bytes(), []byte(`"fleetdeck_s":{"__ansible_unsafe":`)) {
		t.Errorf("--host output: %s", buf.Bytes())
	}
}

func TestEncodeHostVarsRefusals(t *testing.T) {
	self := map[string]any{}
	self["me"] = self
	deep := any("x")
	for range hostVarDepth + 2 {
		deep = []any{deep}
	}
	targets := []string{"dc1/a"}
	for _, tc := range []struct {
		name  string
		vars  map[string]map[string]any
		extra []string
		want  string
	}{
		{"not a target", map[string]map[string]any{"dc1/b": {"x": "1"}}, nil, `node "dc1/b" is not one of the run's targets`},
		{"not an identifier", map[string]map[string]any{"dc1/a": {"fleet-x": "1"}}, nil, "must be an identifier"},
		{"digit first", map[string]map[string]any{"dc1/a": {"1x": "1"}}, nil, "must be an identifier"},
		{"consul_", map[string]map[string]any{"dc1/a": {"consul_node": "1"}}, nil, "inventory's own variables"},
		{"CONSUL_", map[string]map[string]any{"dc1/a": {"Consul_Node": "1"}}, nil, "inventory's own variables"},
		{"ansible_", map[string]map[string]any{"dc1/a": {"ansible_host": "1"}}, nil, "connection and behaviour settings"},
		{"magic", map[string]map[string]any{"dc1/a": {"hostvars": "1"}}, nil, "reserved by Ansible"},
		{"secret name", map[string]map[string]any{"dc1/a": {"db_password": "1"}}, nil, "looks like a secret"},
		{"also an extra var", map[string]map[string]any{"dc1/a": {"version": "1"}}, []string{"version=2"}, "also an extra var"},
		{"bad map key", map[string]map[string]any{"dc1/a": {"x": map[string]any{"{{ k }}": 1}}}, nil, `x: map key "{{ k }}"`},
		{"space in key", map[string]map[string]any{"dc1/a": {"x": map[string]any{"a b": 1}}}, nil, "only letters, digits and . _ -"},
		{"__ansible key", map[string]map[string]any{"dc1/a": {"x": map[string]any{"__ansible_vault": "1"}}}, nil, "read specially"},
		{"secret key", map[string]map[string]any{"dc1/a": {"x": []any{map[string]any{"token": "1"}}}}, nil, `x[0]: map key "token" looks like a secret`},
		{"pem", map[string]map[string]any{"dc1/a": {"x": "-----BEGIN RSA PRIVATE KEY-----"}}, nil, "PEM block"},
		{"invalid utf-8", map[string]map[string]any{"dc1/a": {"x": []any{"ok", "\xff"}}}, nil, "x[1]: a string is not UTF-8"},
		{"nul", map[string]map[string]any{"dc1/a": {"x": "a\x00b"}}, nil, "NUL"},
		{"nan", map[string]map[string]any{"dc1/a": {"x": math.NaN()}}, nil, "not a JSON number"},
		{"bad number", map[string]map[string]any{"dc1/a": {"x": json.Number("1e")}}, nil, "not a JSON number"},
		{"struct", map[string]map[string]any{"dc1/a": {"x": struct{ A int }{1}}}, nil, "struct { A int } is not supported"},
		{"int keys", map[string]map[string]any{"dc1/a": {"x": map[int]string{1: "a"}}}, nil, "map[int]string is not supported"},
		{"cycle", map[string]map[string]any{"dc1/a": {"x": self}}, nil, "nested more than"},
		{"deep", map[string]map[string]any{"dc1/a": {"x": deep}}, nil, "nested more than"},
		{"too big", map[string]map[string]any{"dc1/a": {"x": strings.Repeat("a", HostVarsMaxBytes)}}, nil, "more than 4194304 bytes"},
		{"too big together", map[string]map[string]any{"dc1/a": {
			"x": strings.Repeat("a", HostVarsMaxBytes/2), "y": strings.Repeat("a", HostVarsMaxBytes/2)}}, nil, "y: the run's per-host variables are more than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := encodeHostVars(tc.vars, targets, tc.extra)
			if !errors.Is(err, ErrHostVars) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want ErrHostVars with %q", err, tc.want)
			}
		})
	}
	names := map[string]any{}
	for i := range HostVarsMaxNames + 1 {
		names["v"+strings.Repeat("x", i)] = 1
	}
	if _, err := encodeHostVars(map[string]map[string]any{"dc1/a": names}, targets, nil); err == nil || !strings.Contains(err.Error(), "distinct variable names") {
		t.Errorf("%d names: %v", len(names), err)
	}
	// Just under the limit is fine.
	if _, err := encodeHostVars(map[string]map[string]any{"dc1/a": {"x": strings.Repeat("a", HostVarsMaxBytes-40)}}, targets, nil); err != nil {
		t.Errorf("just under the limit: %v", err)
	}
}

func TestValidateRunMeta(t *testing.T) {
	ok := map[string]string{"fleetdeck.roles/dc1/web-1": "7", "a_b-c.d": "", "x": strings.Repeat("ü", RunMetaMaxValue/2)}
	if err := ValidateRunMeta(ok); err != nil {
		t.Errorf("valid metadata refused: %v", err)
	}
	if err := ValidateRunMeta(nil); err != nil {
		t.Errorf("no metadata refused: %v", err)
	}
	many := map[string]string{}
	for i := range RunMetaMaxEntries + 1 {
		many[strings.Repeat("k", i+1)] = ""
	}
	for _, tc := range []struct {
		name string
		meta map[string]string
		want string
	}{
		{"empty key", map[string]string{"": "v"}, "an empty key"},
		{"long key", map[string]string{strings.Repeat("k", RunMetaMaxKeyBytes+1): "v"}, "is 257 bytes, at most 256"},
		{"space", map[string]string{"a b": "v"}, `key "a b": only letters, digits and . _ / -`},
		{"unicode key", map[string]string{"nöde": "v"}, "only letters"},
		{"long value", map[string]string{"k": strings.Repeat("v", RunMetaMaxValue+1)}, "the value of k is 1025 bytes"},
		{"newline", map[string]string{"k": "a\nb"}, "control characters"},
		{"escape", map[string]string{"k": "\x1b[31m"}, "control characters"},
		{"c1", map[string]string{"k": "\u009b"}, "control characters"},
		{"not utf-8", map[string]string{"k": "\xff"}, "not UTF-8"},
		{"too many", many, "1001 entries, at most 1000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateRunMeta(tc.meta)
			if !errors.Is(err, ErrRunMeta) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want ErrRunMeta with %q", err, tc.want)
			}
		})
	}
}
