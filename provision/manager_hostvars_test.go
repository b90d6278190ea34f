package provision_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fleetdeck/fleetdeck/provision"
	"github.com/fleetdeck/fleetdeck/roles"
)

// The playbook a roles-like caller would run: it writes each host's own
// variables out three ways — as JSON through a filter, a string as is, and
// nested values used inside a template — so the test can compare bytes.
const hvPlaybook = `# writes each host's per-host variables out
- hosts: all
  connection: local
  gather_facts: false
  tasks:
    - name: the value as JSON
      copy:
        content: "{{ fleetdeck_x | to_json }}"
        dest: "{{ out }}/{{ inventory_hostname }}.json"
    - name: the string as is
      copy:
        content: "{{ fleetdeck_s }}"
        dest: "{{ out }}/{{ inventory_hostname }}.txt"
    - name: nested values in a template
      template:
        src: hv.j2
        dest: "{{ out }}/{{ inventory_hostname }}.tpl"
`

// hvTemplate uses list items and map values of a host variable: they must
// stay literal text inside a template too.
const hvTemplate = `{% for item in fleetdeck_x.list %}<I>{{ item }}</I>{% endfor %}` +
	`{% for k, v in fleetdeck_x.map | dictsort %}<K>{{ k }}={{ v }}</K>{% endfor %}` +
	`<S>{{ fleetdeck_s }}</S>`

func TestManagerHostVarsReachEachHostLiterallyAndMetaIsKept(t *testing.T) {
	f := newMgrFixture(t, func(o *mgrOptions) {
		o.playbooks["hv.yml"] = hvPlaybook
		o.playbooks["hv.j2"] = hvTemplate
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	tmp := t.TempDir()
	out := filepath.Join(tmp, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	pwned := filepath.Join(tmp, "pwned")
	hostile := func(who string) string {
		return who + ": {{ lookup('pipe','touch " + pwned + "') }} {% raw %}{{ x }}{% endraw %} {% raw %} $(touch " + pwned + ") $(id) `id` " +
			`'single' "double" \back\slash` + "\nsecond line\r\n\ttab ü 日本 \u2028 {#c#} %}\n"
	}
	values := func(who string) map[string]any {
		return map[string]any{
			"fleetdeck_s": hostile(who),
			"fleetdeck_x": map[string]any{
				"list": []any{hostile(who + " item"), "{{ 7 * 7 }}", 42, true, nil},
				"map":  map[string]any{"cmd": "{{ lookup('pipe','touch " + pwned + "') }}", "who": who, "n": 1.5},
				"deep": []any{map[string]any{"k": []any{"{{ omit }}"}}},
			},
		}
	}
	meta := roles.RunLinks([]roles.Desired{{Node: "web-0", Datacenter: "dc1", Generation: 3}, {Node: "web-1", Datacenter: "dc1", Generation: 5}})
	meta["note"] = "role change by test"
	req := provision.LaunchRequest{Playbook: "hv.yml", Scope: provision.ScopeMarked, Subject: "2 nodes",
		Targets:   []string{"dc1/web-0", "dc1/web-1"},
		ExtraVars: []string{"out=" + out},
		Meta:      meta,
		HostVars:  map[string]map[string]any{"dc1/web-0": values("web-0"), "dc1/web-1": values("web-1")},
	}
	p, err := f.m.Preview(ctx, req)
	if err != nil {
		t.Fatalf("preview: %v", err)
	}
	if !slices.Equal(p.HostVarNames, []string{"fleetdeck_s", "fleetdeck_x"}) || p.HostVarHosts != 2 {
		t.Errorf("preview host vars %v on %d hosts", p.HostVarNames, p.HostVarHosts)
	}
	id, err := f.m.Launch(ctx, p.PlanID, "")
	if err != nil {
		t.Fatalf("launch: %v", err)
	}
	if v, err := f.m.Run(ctx, id); err != nil || !reflect.DeepEqual(v.Info.Meta, meta) {
		t.Errorf("live run's meta %v (%v), want %v", v.Info.Meta, err, meta)
	}
	view := f.waitRun(t, id, 2*time.Minute, ended)
	if view.Info.Status != provision.RunOK {
		t.Fatalf("run ended %s: %s\n%s", view.Info.Status, view.Info.QueueReason, strings.Join(view.Output, "\n"))
	}

	// Nothing was executed.
	if _, err := os.Stat(pwned); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a hostile value was executed: %s exists (%v)", pwned, err)
	}
	for _, host := range []string{"web-0", "web-1"} {
		want := values(host)
		// The string, byte for byte.
		got, err := os.ReadFile(filepath.Join(out, host+".txt"))
		if err != nil || string(got) != want["fleetdeck_s"] {
			t.Errorf("%s: fleetdeck_s landed as %q (%v), want %q", host, got, err, want["fleetdeck_s"])
		}
		// The nested value, through to_json: the same data, every string
		// unchanged.
		got, err = os.ReadFile(filepath.Join(out, host+".json"))
		if err != nil {
			t.Fatal(err)
		}
		var gotX, wantX any
		wb, _ := json.Marshal(want["fleetdeck_x"])
		if err := json.Unmarshal(wb, &wantX); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(got, &gotX); err != nil || !reflect.DeepEqual(gotX, wantX) {
			t.Errorf("%s: fleetdeck_x landed as %s (%v), want %s", host, got, err, wb)
		}
		// Inside a template, list items and map values stay literal.
		got, err = os.ReadFile(filepath.Join(out, host+".tpl"))
		if err != nil {
			t.Fatal(err)
		}
		x := want["fleetdeck_x"].(map[string]any)
		list, m := x["list"].([]any), x["map"].(map[string]any)
		for _, piece := range []string{
			"<I>" + list[0].(string) + "</I>", "<I>{{ 7 * 7 }}</I>", "<I>42</I>",
			"<K>cmd=" + m["cmd"].(string) + "</K>", "<K>who=" + host + "</K>",
			"<S>" + want["fleetdeck_s"].(string) + "</S>",
		} {
			if !strings.Contains(string(got), piece) {
				t.Errorf("%s: the template output lacks %q:\n%q", host, piece, got)
			}
		}
	}

	// The record says which host vars the run had; the inventory history
	// keeps is what Ansible got, wrapped.
	rec, err := f.hist.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rec.HostVars, []string{"fleetdeck_s", "fleetdeck_x"}) || !reflect.DeepEqual(rec.Meta, meta) {
		t.Errorf("record: host vars %v meta %v", rec.HostVars, rec.Meta)
	}
	if !strings.Contains(string(rec.Inventory), `"fleetdeck_s":{"__ansible_unsafe":"web-1: {{ lookup(`) {
		t.Errorf("history's inventory lacks web-1's wrapped variable")
	}
	if inv, err := os.ReadFile(filepath.Join(rec.Dir, "inventory.json")); err != nil || string(inv) != string(rec.Inventory) {
		t.Errorf("the run directory's inventory differs from history's (%v)", err)
	}

	// Re-running would apply stale values: refused, both ways.
	for _, onlyFailed := range []bool{false, true} {
		_, err := f.m.Rerun(ctx, id, onlyFailed)
		if !errors.Is(err, provision.ErrRerunHostVars) || !strings.Contains(err.Error(), "stale") || !strings.Contains(err.Error(), "fleetdeck_s, fleetdeck_x") {
			t.Errorf("rerun (onlyFailed %v): %v", onlyFailed, err)
		}
	}

	// The list carries the metadata; so does a fresh manager over the same
	// history (a restart), which reads it from disk.
	runs, err := f.m.Runs(ctx)
	if err != nil || len(runs) != 1 || !reflect.DeepEqual(runs[0].Meta, meta) || !slices.Equal(runs[0].HostVars, rec.HostVars) {
		t.Fatalf("runs = %+v, %v", runs, err)
	}
	runs[0].Meta["note"] = "changed by the caller"
	m2 := hvRestartedManager(t, f)
	runs, err = m2.Runs(ctx)
	if err != nil || len(runs) != 1 || !reflect.DeepEqual(runs[0].Meta, meta) || runs[0].Live {
		t.Fatalf("after a restart, runs = %+v, %v", runs, err)
	}
	if g := roles.LinkedGeneration(runs[0].Meta, "dc1", "web-1"); g != 5 {
		t.Errorf("LinkedGeneration(web-1) = %d, want 5", g)
	}
	v, err := m2.Run(ctx, id)
	if err != nil || !reflect.DeepEqual(v.Info.Meta, meta) {
		t.Errorf("after a restart, the run view's meta %v (%v)", v.Info.Meta, err)
	}
}

// hvRestartedManager is a second manager over f's history file, as a
// console started again would have.
func hvRestartedManager(t *testing.T, f *mgrFixture) *provision.Manager {
	t.Helper()
	hist, err := provision.OpenHistory(context.Background(), provision.HistoryConfig{Path: f.hist.Path()})
	if err != nil {
		t.Fatal(err)
	}
	cat, err := provision.NewPlaybookCatalog(f.books)
	if err != nil {
		t.Fatal(err)
	}
	runner, err := provision.NewRunner(provision.RunnerConfig{Catalog: cat, RunsDir: f.runs})
	if err != nil {
		t.Fatal(err)
	}
	queue := provision.NewRunQueue(provision.NewLockManager(f.client, provision.LockConfig{Prefix: "fdtest", LockDelay: -1}), provision.QueueConfig{Cap: 1})
	m, err := provision.NewManager(provision.ManagerConfig{Feed: f.feed, Runner: runner, History: hist, Queue: queue, KeepRuns: -1, KeepFor: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

// Refused requests are refused at preview, with what is wrong, and leave
// no run directory behind.
func TestManagerRefusesBadHostVarsAndMeta(t *testing.T) {
	f := newMgrFixture(t)
	ctx := context.Background()
	base := provision.LaunchRequest{Playbook: "hello.yml", Scope: provision.ScopeMarked, Subject: "2 nodes",
		Targets: []string{"dc1/web-0", "dc1/web-1"}}
	for _, tc := range []struct {
		name string
		mod  func(*provision.LaunchRequest)
		is   error
		want string
	}{
		{"meta key", func(r *provision.LaunchRequest) { r.Meta = map[string]string{"a key": "v"} }, provision.ErrRunMeta, `key "a key"`},
		{"meta value", func(r *provision.LaunchRequest) { r.Meta = map[string]string{"k": "line\nbreak"} }, provision.ErrRunMeta, "control characters"},
		{"not a target", func(r *provision.LaunchRequest) {
			r.HostVars = map[string]map[string]any{"dc1/web-2": {"fleetdeck_x": "1"}}
		}, provision.ErrHostVars, `node "dc1/web-2" is not one of the run's targets`},
		{"consul_ name", func(r *provision.LaunchRequest) {
			r.HostVars = map[string]map[string]any{"dc1/web-0": {"consul_services": "[]"}}
		}, provision.ErrHostVars, "node dc1/web-0: bad per-host variables: variable consul_services"},
		{"ansible_ name", func(r *provision.LaunchRequest) {
			r.HostVars = map[string]map[string]any{"dc1/web-0": {"ansible_connection": "ssh"}}
		}, provision.ErrHostVars, "ansible_connection"},
		{"key with a template", func(r *provision.LaunchRequest) {
			r.HostVars = map[string]map[string]any{"dc1/web-0": {"fleetdeck_x": map[string]any{"{{x}}": "1"}}}
		}, provision.ErrHostVars, "cannot be marked unsafe"},
		{"wide run", func(r *provision.LaunchRequest) {
			r.Scope, r.Subject = provision.ScopeRole, "web"
			r.HostVars = map[string]map[string]any{"dc1/web-0": {"fleetdeck_x": "1"}}
		}, provision.ErrHostVars, "role-wide run cannot carry per-host variables"},
		{"too big", func(r *provision.LaunchRequest) {
			r.HostVars = map[string]map[string]any{"dc1/web-0": {"fleetdeck_x": strings.Repeat("x", 3<<20)}, "dc1/web-1": {"fleetdeck_x": strings.Repeat("x", 2<<20)}}
		}, provision.ErrHostVars, "more than 4194304 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := base
			tc.mod(&req)
			p, err := f.m.Preview(ctx, req)
			if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("preview: %v, want %v with %q", err, tc.is, tc.want)
			}
			if p != nil {
				f.m.Discard(p.PlanID)
			}
		})
	}
	if entries, _ := os.ReadDir(f.runs); len(entries) > 0 {
		t.Errorf("refused previews left run directories: %v", entries)
	}
	if runs, err := f.m.Runs(ctx); err != nil || len(runs) != 0 {
		t.Errorf("refused previews left runs: %v, %v", runs, err)
	}
}
