package demoplaybooks_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fleetdeck/fleetdeck/internal/demoplaybooks"
	"github.com/fleetdeck/fleetdeck/provision"
)

// TestDemoPlaybooksMixedResults runs every demo playbook with the real
// ansible-playbook against three local hosts, one marked to fail.
func TestDemoPlaybooksMixedResults(t *testing.T) {
	if _, err := exec.LookPath("ansible-playbook"); err != nil {
		if os.Getenv("FLEETDECK_REQUIRE_CONSUL") == "1" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	dir := t.TempDir()
	if err := demoplaybooks.Write(filepath.Join(dir, "pb")); err != nil {
		t.Fatal(err)
	}
	cat, err := provision.NewPlaybookCatalog(filepath.Join(dir, "pb"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := provision.NewRunner(provision.RunnerConfig{Catalog: cat, RunsDir: filepath.Join(dir, "runs")})
	if err != nil {
		t.Fatal(err)
	}
	hv := func(fail bool) map[string]any {
		return map[string]any{"ansible_connection": "local", "ansible_python_interpreter": "/usr/bin/python3",
			demoplaybooks.RootVar: filepath.Join(dir, "root"), demoplaybooks.FailVar: fail}
	}
	inv, _ := json.Marshal(map[string]any{
		"svc_web": map[string]any{"hosts": []string{"web-1", "web-2", "web-3"}},
		"_meta":   map[string]any{"hostvars": map[string]any{"web-1": hv(false), "web-2": hv(false), "web-3": hv(true)}},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for _, name := range demoplaybooks.Names() {
		plan, err := r.Preview(ctx, provision.RunSpec{Playbook: name, Inventory: inv})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		run, err := r.Start(ctx, plan)
		if err != nil {
			t.Fatal(err)
		}
		res, err := run.Wait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		st := res.State
		if st.Hosts["web-3"].Status != provision.HostFailed || !strings.Contains(st.Hosts["web-3"].LastFailure.Result.Msg, "simulated failure") {
			t.Errorf("%s: web-3 = %+v", name, st.Hosts["web-3"])
		}
		if s := st.Hosts["web-1"].Status; s != provision.HostChanged && s != provision.HostOK {
			t.Errorf("%s: web-1 = %s", name, s)
		}
		if res.End.Outcome != provision.OutcomeFailed {
			t.Errorf("%s: outcome %s", name, res.End.Outcome)
		}
	}
}
