package tui

import (
	"slices"
	"testing"

	"github.com/fleetdeck/fleetdeck/fleet"
)

func TestParseFilter(t *testing.T) {
	f := parseFilter(`web !health:passing role:API meta:env=Prod meta:asg group:"my group" zone:z1 dc:dc1 name:node tag:canary fe80::1 health:maint`)
	want := []filterTerm{
		{field: fieldText, value: "web"},
		{field: fieldHealth, neg: true, value: "passing", health: fleet.HealthPassing},
		{field: fieldRole, value: "api"},
		{field: fieldMeta, key: "env", value: "prod", hasVal: true},
		{field: fieldMeta, key: "asg"},
		{field: fieldGroup, value: "my group"},
		{field: fieldZone, value: "z1"},
		{field: fieldDC, value: "dc1"},
		{field: fieldName, value: "node"},
		{field: fieldTag, value: "canary"},
		{field: fieldText, value: "fe80::1"},
		{field: fieldHealth, value: "maint", health: fleet.HealthMaintenance},
	}
	// Terms come back cheapest first; order does not change an AND.
	slices.SortStableFunc(want, func(a, b filterTerm) int { return termCost(a.field) - termCost(b.field) })
	if len(f.terms) != len(want) {
		t.Fatalf("got %d terms, want %d: %+v", len(f.terms), len(want), f.terms)
	}
	for i := range want {
		if f.terms[i] != want[i] {
			t.Errorf("term %d = %+v, want %+v", i, f.terms[i], want[i])
		}
	}
	if !parseFilter("   ").empty() {
		t.Error("blank filter should be empty")
	}
	if f := parseFilter("health:failing"); !f.terms[0].failing {
		t.Error("health:failing should match any non-passing health")
	}
}

func TestFilterMatchNode(t *testing.T) {
	n := &fleet.Node{
		Name: "Web-01", Datacenter: "dc1", Group: "web-asg", Zone: "z1", Health: fleet.HealthCritical,
		Meta:     map[string]string{"env": "prod"},
		Services: []fleet.Service{{ID: "web", Name: "web", Tags: []string{"canary"}}},
	}
	r := nodeRow(n)
	cases := map[string]bool{
		"":                        true,
		"web-01":                  true,
		"WEB":                     true,
		"prod":                    true, // meta is searched
		"canary":                  true, // tags are searched
		"role:web":                true,
		"role:we":                 false, // roles match exactly
		"!role:web":               false,
		"!role:db":                true,
		"health:critical":         true,
		"health:failing":          true,
		"!health:passing":         true,
		"health:bogus":            false,
		"group:web-asg":           true,
		"group:web":               false,
		"dc:DC1":                  true,
		"dc:dc2":                  false,
		"zone:z1":                 true,
		"name:eb-0":               true,
		"meta:env=prod":           true,
		"meta:env=PROD":           true,
		"meta:env=dev":            false,
		"meta:env":                true,
		"meta:nope":               false,
		"!meta:env=dev":           true,
		"tag:canary":              true,
		"role:web health:passing": false, // terms are ANDed
		"role:web dc:dc1 z1":      true,
	}
	for q, want := range cases {
		if got := parseFilter(q).matchNode(r); got != want {
			t.Errorf("filter %q on node: got %v, want %v", q, got, want)
		}
	}
}

func TestQuoteTermRoundTrip(t *testing.T) {
	for _, v := range []string{"web", "my svc", `we"ird`} {
		f := parseFilter(quoteTerm("role", v))
		if len(f.terms) != 1 || f.terms[0].field != fieldRole {
			t.Fatalf("quoteTerm(%q) parsed as %+v", v, f.terms)
		}
	}
}
