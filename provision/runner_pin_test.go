package provision_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fleetdeck/fleetdeck/provision"
)

func sha(b string) string {
	s := sha256.Sum256([]byte(b))
	return hex.EncodeToString(s[:])
}

// runOutput is the human output of a finished run.
func runOutput(t *testing.T, res provision.RunReport) string {
	t.Helper()
	b, err := os.ReadFile(res.OutputPath)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The playbook that runs is the one previewed: re-pointing its link after
// the preview (even outside the playbook directory) changes nothing, roles
// next to it still resolve, and --list-hosts read the same copy.
func TestRunPinsThePreviewedPlaybookThroughALink(t *testing.T) {
	rtNeed(t, "ansible-playbook")
	books := filepath.Join(t.TempDir(), "books")
	v1 := `# the reviewed version
- hosts: web
  gather_facts: false
  roles: [greet]
  tasks:
    - name: say which
      debug:
        msg: "pinned-v1"
`
	outside := `- hosts: db
  gather_facts: false
  tasks:
    - name: say which
      debug:
        msg: "outside-file"
`
	for p, body := range map[string]string{
		"versions/v1.yml":              v1,
		"roles/greet/tasks/main.yml":   "- name: greet\n  debug:\n    msg: role-greets\n",
		"../outside/evil.yml":          outside,
		"versions/also-in-the-dir.yml": outside,
	} {
		full := filepath.Join(books, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	link := filepath.Join(books, "site.yml")
	if err := os.Symlink("versions/v1.yml", link); err != nil {
		t.Fatal(err)
	}
	cat, err := provision.NewPlaybookCatalog(books)
	if err != nil {
		t.Fatal(err)
	}
	r, err := provision.NewRunner(provision.RunnerConfig{Catalog: cat, RunsDir: filepath.Join(t.TempDir(), "runs")})
	if err != nil {
		t.Fatal(err)
	}
	inv := rtInventory(t, rtHost{name: "w1", groups: []string{"web"}}, rtHost{name: "d1", groups: []string{"db"}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	repoint := func(target string) {
		t.Helper()
		if err := os.Remove(link); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
	}

	// Between Prepare and --list-hosts.
	plan, err := r.Prepare(ctx, provision.RunSpec{Playbook: "site", Inventory: inv})
	if err != nil {
		t.Fatal(err)
	}
	repoint("versions/also-in-the-dir.yml")
	if err := plan.ListHosts(ctx); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(plan.Hosts, []string{"w1"}) {
		t.Errorf("--list-hosts saw %v, want the previewed play's [w1]", plan.Hosts)
	}
	// Between the preview and the start, to a file outside the directory.
	repoint(filepath.Join(books, "../outside/evil.yml"))
	run, err := r.Start(ctx, plan)
	if err != nil {
		t.Fatal(err)
	}
	res, err := run.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := runOutput(t, res)
	if !strings.Contains(out, "pinned-v1") || !strings.Contains(out, "role-greets") || strings.Contains(out, "outside-file") {
		t.Errorf("the run did not run the previewed playbook (with its role):\n%s", out)
	}
	if plan.Playbook.SHA256 != sha(v1) || res.PlaybookSHA256 != sha(v1) {
		t.Errorf("checksums: preview %s, run %s, want %s", plan.Playbook.SHA256, res.PlaybookSHA256, sha(v1))
	}
	if got := plan.Argv[len(plan.Argv)-1]; !strings.HasPrefix(got, plan.Dir+string(filepath.Separator)) {
		t.Errorf("the argv runs %s, not the copy in the run directory", got)
	}
	// The catalog itself now refuses the link.
	if _, err := r.Prepare(ctx, provision.RunSpec{Playbook: "site", Inventory: inv}); !errors.Is(err, provision.ErrPlaybookNotFound) {
		t.Errorf("a link leaving the directory: %v", err)
	}
}

// A playbook edited after its preview runs as previewed, and history
// records the checksum of what ran.
func TestManagerRunsThePreviewedTextAfterAnEdit(t *testing.T) {
	v1 := "- hosts: all\n  connection: local\n  gather_facts: false\n  tasks:\n    - debug:\n        msg: text-of-the-preview\n"
	v2 := "- hosts: all\n  connection: local\n  gather_facts: false\n  tasks:\n    - debug:\n        msg: text-edited-later\n"
	f := newMgrFixture(t, func(o *mgrOptions) { o.playbooks["edit.yml"] = v1 })
	ctx := context.Background()
	p, err := f.m.Preview(ctx, provision.LaunchRequest{Playbook: "edit.yml", Scope: provision.ScopeNode, Subject: "dc1/web-0",
		Targets: []string{"dc1/web-0"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.books, "edit.yml"), []byte(v2), 0o644); err != nil {
		t.Fatal(err)
	}
	id, err := f.m.Launch(ctx, p.PlanID, "")
	if err != nil {
		t.Fatal(err)
	}
	v := f.waitRun(t, id, 2*time.Minute, ended)
	out := strings.Join(v.Output, "\n")
	if v.Info.Status != provision.RunOK || !strings.Contains(out, "text-of-the-preview") || strings.Contains(out, "text-edited-later") {
		t.Errorf("run %s:\n%s", v.Info.Status, out)
	}
	rec, err := f.hist.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if rec.PlaybookSHA256 != sha(v1) {
		t.Errorf("history records %s, the previewed text is %s", rec.PlaybookSHA256, sha(v1))
	}
}

// Runs get an allow-listed environment: what Ansible and ssh need, the
// ANSIBLE_* settings, [ansible] env and the variables named in pass_env —
// and nothing else of the console's (no Consul, Google or AWS credentials).
// The preview shows names only for values taken from the console.
func TestRunEnvironmentIsAllowListed(t *testing.T) {
	for k, v := range map[string]string{
		"CONSUL_HTTP_TOKEN": "consul-secret-value", "GOOGLE_APPLICATION_CREDENTIALS": "/creds/google.json",
		"AWS_SECRET_ACCESS_KEY": "aws-secret-value", "VAULT_ADDR": "https://vault.example", "MY_DEPLOY_TOKEN": "deploy-secret-value",
		"ANSIBLE_TIMEOUT": "33", "UNRELATED": "x",
	} {
		t.Setenv(k, v)
	}
	pb := "- hosts: all\n  gather_facts: false\n  tasks:\n    - name: env\n      command: env\n"
	r := rtRunner(t, map[string]string{"env.yml": pb}, func(c *provision.RunnerConfig) {
		c.PassEnv = []string{"VAULT_ADDR", "MY_DEPLOY_TOKEN"}
		c.Env = []string{"DEPLOY_ENV=staging", "API_TOKEN=configured-secret-value"}
	})
	_, res := rtRun(t, r, provision.RunSpec{Playbook: "env", Inventory: rtInventory(t, rtHost{name: "e1"})})
	var env string
	b, _ := os.ReadFile(res.EventsPath)
	for _, line := range bytes.Split(b, []byte("\n")) {
		if ev, err := provision.ParseRunEvent(line); err == nil && ev.Event == provision.EventRunnerOK && ev.Result != nil {
			env = ev.Result.Stdout
		}
	}
	have := map[string]string{}
	for _, l := range strings.Split(env, "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			have[k] = v
		}
	}
	for k, want := range map[string]string{"VAULT_ADDR": "https://vault.example", "MY_DEPLOY_TOKEN": "deploy-secret-value",
		"DEPLOY_ENV": "staging", "API_TOKEN": "configured-secret-value", "ANSIBLE_TIMEOUT": "33"} {
		if have[k] != want {
			t.Errorf("%s = %q in the run, want %q", k, have[k], want)
		}
	}
	for _, k := range []string{"PATH", "HOME"} {
		if have[k] == "" {
			t.Errorf("%s not passed", k)
		}
	}
	for _, k := range []string{"CONSUL_HTTP_TOKEN", "GOOGLE_APPLICATION_CREDENTIALS", "AWS_SECRET_ACCESS_KEY", "UNRELATED", "FLEETDECK_RUN_SUPERVISOR"} {
		if v, ok := have[k]; ok {
			t.Errorf("%s=%s reached the playbook", k, v)
		}
	}
	if len(have) == 0 {
		t.Fatalf("no environment printed:\n%s", b)
	}

	plan, err := r.Prepare(context.Background(), provision.RunSpec{Playbook: "env", Inventory: rtInventory(t, rtHost{name: "e1"})})
	if err != nil {
		t.Fatal(err)
	}
	defer plan.Discard()
	shown := strings.Join(plan.Env, "\n")
	for _, want := range []string{"VAULT_ADDR", "MY_DEPLOY_TOKEN", "PATH", "DEPLOY_ENV=staging", "API_TOKEN=" + provision.RedactedValue, "ANSIBLE_STDOUT_CALLBACK=default"} {
		if !slices.Contains(plan.Env, want) {
			t.Errorf("the preview's env lacks %q:\n%s", want, shown)
		}
	}
	for _, secret := range []string{"secret-value", "CONSUL_HTTP_TOKEN", "vault.example"} {
		if strings.Contains(shown, secret) {
			t.Errorf("the preview's env shows %q:\n%s", secret, shown)
		}
	}
	cat, err := provision.NewPlaybookCatalog(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]string{{"ANSIBLE_INVENTORY"}, {"A=B"}, {"FLEETDECK_EVENT_FD"}} {
		if _, err := provision.NewRunner(provision.RunnerConfig{Catalog: cat, PassEnv: bad}); !errors.Is(err, provision.ErrRunSpec) {
			t.Errorf("pass_env %v: %v", bad, err)
		}
	}
}
