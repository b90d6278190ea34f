package fleet

import (
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

func TestMergeChecksFailingWatchIsAuthoritative(t *testing.T) {
	all := indexChecks(toChecks(api.HealthChecks{
		{Node: "n", CheckID: "serf", Name: "Serf", Status: api.HealthPassing, Output: "alive"},
		{Node: "n", CheckID: "http", Name: "HTTP", Status: api.HealthCritical, Output: "old 503"},
	}))["n"]
	// http has recovered since the full read; disk went warning; a node in
	// maintenance is maintenance, not just critical.
	failing := indexChecks(toChecks(api.HealthChecks{
		{Node: "n", CheckID: "disk", Name: "Disk", Status: api.HealthWarning, Output: "91%"},
		{Node: "n", CheckID: "_node_maintenance", Status: api.HealthCritical},
	}))["n"]
	checks, h := mergeChecks(all, failing, nil)
	if h != HealthMaintenance {
		t.Errorf("health = %v, want maintenance", h)
	}
	byID := map[string]Check{}
	for _, c := range checks {
		byID[c.ID] = c
	}
	if c := byID["http"]; c.Status != HealthPassing || c.Output != "" {
		t.Errorf("recovered check = %+v, want passing without the stale output", c)
	}
	if c := byID["serf"]; c.Output != "alive" {
		t.Errorf("passing check lost its output: %+v", c)
	}
	if c := byID["disk"]; c.Status != HealthWarning || c.Output != "91%" {
		t.Errorf("failing check = %+v", c)
	}
	if len(checks) != 4 {
		t.Errorf("got %d checks, want 4", len(checks))
	}
}

func TestJournalIsBoundedAndSnapshotsStayImmutable(t *testing.T) {
	r := &runner{cfg: Config{JournalSize: 3}.withDefaults()}
	now := time.Now()
	var views [][]Event
	for i := range 10 {
		r.record(Event{Kind: NodeJoined, Node: string(rune('a' + i))}, now)
		lo := max(0, len(r.events)-r.cfg.JournalSize)
		views = append(views, r.events[lo:len(r.events):len(r.events)])
	}
	last := views[len(views)-1]
	if len(last) != 3 || last[0].Node != "h" || last[2].Node != "j" || last[2].Seq != 10 {
		t.Errorf("journal = %+v, want h..j with seq 10 last", last)
	}
	// Earlier views must still read what they read then.
	if v := views[2]; len(v) != 3 || v[0].Node != "a" || v[2].Node != "c" {
		t.Errorf("an earlier view changed: %+v", v)
	}
}

func TestBootstrapAnswerShapeIsChecked(t *testing.T) {
	good := []uiNode{{Node: "n1",
		Services: []uiService{{ID: "web-1", Service: "web", Tags: []string{"v1"}, Port: 80}, {ID: "web-2", Service: "web", Tags: []string{"v1"}, Port: 81}},
		Checks:   []uiCheck{{CheckID: "_node_maintenance", Status: "critical"}, {CheckID: "http", Name: "HTTP", Status: "passing", Output: "ok", ServiceID: "web-1", ServiceName: "web"}}}}
	b, err := toBoot(good)
	if err != nil {
		t.Fatal(err)
	}
	if got := b.services["web"]; len(got) != 2 || got[1].svc.Port != 81 || got[0].node != "n1" || &got[0].svc.Tags[0] != &got[1].svc.Tags[0] {
		t.Errorf("instances %+v (identical tag lists are shared)", got)
	}
	if len(b.checks) != 2 || b.checks[0].Status != HealthMaintenance || b.checks[1].Output != "ok" {
		t.Errorf("checks %+v", b.checks)
	}
	// Another Consul's shape (renamed fields decode as empty): refuse it,
	// so the public reads take over instead of showing a fleet without roles.
	for name, bad := range map[string][]uiNode{
		"node without a name":    {{Services: good[0].Services}},
		"service without a name": {{Node: "n1", Services: []uiService{{ID: "x"}}}},
		"check without an ID":    {{Node: "n1", Checks: []uiCheck{{Status: "passing"}}}},
		"unknown status":         {{Node: "n1", Checks: []uiCheck{{CheckID: "c", Status: "sideways"}}}},
	} {
		if _, err := toBoot(bad); !errors.Is(err, errBootShape) {
			t.Errorf("%s: err = %v, want errBootShape", name, err)
		}
	}
}
