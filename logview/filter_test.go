package logview

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/logging/apiv2/loggingpb"
	"google.golang.org/genproto/googleapis/api/monitoredres"
	"google.golang.org/protobuf/types/known/structpb"
)

func node(name, id string) NodeRef {
	n := NodeRef{Name: name, Address: "10.0.0.1"}
	if id != "" {
		n.Meta = map[string]string{"instance-id": id}
	}
	return n
}

func TestFiltersDefault(t *testing.T) {
	from := time.Date(2026, 11, 26, 9, 55, 0, 0, time.FixedZone("CET", 3600))
	to := from.Add(10*time.Minute + 500*time.Millisecond)
	q := Query{Nodes: []NodeRef{node("web-1", "111"), node("web-2", "222"), node("web-3", "")}, MinSeverity: Warning}
	p, err := BuildPlan(q, Mapping{}, from, to)
	if err != nil {
		t.Fatal(err)
	}
	want := `(resource.type="gce_instance") AND (timestamp>="2026-11-26T08:55:00Z") AND (timestamp<"2026-11-26T09:05:00.5Z") AND (severity>=WARNING) AND (resource.labels.instance_id="111" OR resource.labels.instance_id="222")`
	if len(p.Filters) != 1 || p.Filters[0] != want {
		t.Fatalf("filters =\n%q\nwant\n%q", p.Filters, want)
	}
	if fmt.Sprint(p.Unmapped) != "[web-3]" {
		t.Fatalf("unmapped = %v", p.Unmapped)
	}
	if fmt.Sprint(p.NodesFor("222")) != "[web-2]" {
		t.Fatalf("NodesFor(222) = %v", p.NodesFor("222"))
	}
}

func TestFiltersNoBoundsNoSeverity(t *testing.T) {
	m := Mapping{Field: `labels."compute.googleapis.com/resource_name"`, From: "name"}
	fs, err := Filters(Query{Nodes: []NodeRef{node("web-1", ""), node("web-1", "")}}, m, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	// No resource type (a custom field without one means any), the key
	// quoted, the duplicate value once.
	want := `(labels."compute.googleapis.com/resource_name"="web-1")`
	if len(fs) != 1 || fs[0] != want {
		t.Fatalf("filters = %q, want %q", fs, want)
	}
}

func TestFiltersEscaping(t *testing.T) {
	m := Mapping{Field: "labels.hostname", From: "name", ResourceType: `we"ird`}
	q := Query{Nodes: []NodeRef{{Name: "a\"b\\c\nd\x01e\u2028) OR (true"}}}
	fs, err := Filters(q, m, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	want := `(resource.type="we\"ird") AND (labels.hostname="a\"b\\c\nd\u0001e\u2028) OR (true")`
	if fs[0] != want {
		t.Fatalf("filter =\n%s\nwant\n%s", fs[0], want)
	}
}

func TestFiltersSplitAt20k(t *testing.T) {
	var nodes []NodeRef
	for i := range 2000 {
		nodes = append(nodes, node(fmt.Sprintf("n%d", i), fmt.Sprintf("%019d", i)))
	}
	from := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	p, err := BuildPlan(Query{Nodes: nodes, MinSeverity: Error}, Mapping{}, from, from.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Filters) < 3 {
		t.Fatalf("%d filters for 2000 nodes; want a split", len(p.Filters))
	}
	seen := map[string]int{}
	for _, f := range p.Filters {
		if len(f) > MaxFilterLen {
			t.Fatalf("filter of %d bytes", len(f))
		}
		if !strings.HasPrefix(f, `(resource.type="gce_instance") AND (timestamp>=`) || !strings.HasSuffix(f, `")`) {
			t.Fatalf("filter shape: %.120s...%s", f, f[len(f)-40:])
		}
		for _, part := range strings.Split(f, `resource.labels.instance_id="`)[1:] {
			seen[part[:19]]++
		}
	}
	if len(seen) != 2000 {
		t.Fatalf("%d distinct ids across filters, want 2000", len(seen))
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("id %s in %d filters", id, n)
		}
	}
	// Packing is tight: every filter but the last could not take one more.
	for _, f := range p.Filters[:len(p.Filters)-1] {
		if len(f)+len(` OR resource.labels.instance_id="0000000000000000000"`) <= MaxFilterLen {
			t.Fatalf("filter of %d bytes had room for another id", len(f))
		}
	}
}

func TestFiltersUnmappable(t *testing.T) {
	huge := strings.Repeat("x", MaxFilterLen)
	q := Query{Nodes: []NodeRef{node("bad-utf8", "\xff"), node("huge", huge), node("none", "")}}
	p, err := BuildPlan(q, Mapping{}, time.Time{}, time.Time{})
	if err == nil || !strings.Contains(err.Error(), "none of the 3 nodes has a value for instance-id") {
		t.Fatalf("err = %v", err)
	}
	if fmt.Sprint(p.Unmapped) != "[bad-utf8 huge none]" {
		t.Fatalf("unmapped = %v", p.Unmapped)
	}
	if _, err := Filters(Query{}, Mapping{}, time.Time{}, time.Time{}); err == nil {
		t.Fatal("no error for a query without nodes")
	}
	if _, err := Filters(Query{Nodes: []NodeRef{node("a", "1")}, MinSeverity: 450}, Mapping{}, time.Time{}, time.Time{}); err == nil {
		t.Fatal("no error for an unknown severity")
	}
}

func TestMappingValidate(t *testing.T) {
	for _, c := range []struct {
		m  Mapping
		ok bool
	}{
		{Mapping{}, true},
		{Mapping{Field: "labels.hostname", From: "name"}, true},
		{Mapping{Field: `labels."compute.googleapis.com/resource_name"`, From: "address"}, true},
		{Mapping{Field: "jsonPayload.host.name", From: "meta:host"}, true},
		{Mapping{Field: `labels."a\"b"`}, true},
		{Mapping{Field: "labels"}, false},
		{Mapping{Field: "labels.a.b"}, false},
		{Mapping{Field: "resource.type"}, false},
		{Mapping{Field: "textPayload"}, false},
		{Mapping{Field: "labels.a b"}, false},
		{Mapping{Field: `labels."unterminated`}, false},
		{Mapping{Field: "labels..x"}, false},
		{Mapping{From: "meta:"}, false},
		{Mapping{From: "id"}, false},
	} {
		if err := c.m.Validate(); (err == nil) != c.ok {
			t.Errorf("Validate(%+v) = %v, want ok=%v", c.m, err, c.ok)
		}
	}
}

func TestMappingValueAndEntryValue(t *testing.T) {
	n := NodeRef{Name: "web-1", Address: "10.0.0.7", Meta: map[string]string{"instance-id": "42", "host": "h1"}}
	for _, c := range []struct {
		from, want string
	}{{"", "42"}, {"name", "web-1"}, {"address", "10.0.0.7"}, {"meta:host", "h1"}} {
		if v, ok := (Mapping{From: c.from}).Value(n); !ok || v != c.want {
			t.Errorf("Value(from %q) = %q, %v", c.from, v, ok)
		}
	}
	if _, ok := (Mapping{From: "meta:nope"}).Value(n); ok {
		t.Error("missing meta key reported present")
	}

	js, _ := structpb.NewStruct(map[string]any{"host": map[string]any{"name": "h1"}, "n": 5})
	e := &loggingpb.LogEntry{
		Resource: &monitoredres.MonitoredResource{Type: "gce_instance", Labels: map[string]string{"instance_id": "42"}},
		Labels:   map[string]string{"compute.googleapis.com/resource_name": "web-1"},
		Payload:  &loggingpb.LogEntry_JsonPayload{JsonPayload: js},
	}
	for _, c := range []struct {
		m    Mapping
		want string
		ok   bool
	}{
		{Mapping{}, "42", true},
		{Mapping{ResourceType: "k8s_container", Field: "resource.labels.instance_id"}, "", false},
		{Mapping{Field: `labels."compute.googleapis.com/resource_name"`}, "web-1", true},
		{Mapping{Field: "jsonPayload.host.name"}, "h1", true},
		{Mapping{Field: "jsonPayload.n"}, "", false},
		{Mapping{Field: "jsonPayload.host.name.deeper"}, "", false},
		{Mapping{Field: "labels.none"}, "", false},
	} {
		v, ok := c.m.EntryValue(e)
		if v != c.want || ok != c.ok {
			t.Errorf("EntryValue(%+v) = %q, %v; want %q, %v", c.m, v, ok, c.want, c.ok)
		}
	}
}

func TestOrFilters(t *testing.T) {
	f, ok := orFilters([]string{"(a)", "(b)", "(a)"})
	if !ok || f != "((a)) OR ((b))" {
		t.Fatalf("orFilters = %q, %v", f, ok)
	}
	if _, ok := orFilters([]string{strings.Repeat("a", 15000), strings.Repeat("b", 6000)}); ok {
		t.Fatal("orFilters accepted a filter over the limit")
	}
}
