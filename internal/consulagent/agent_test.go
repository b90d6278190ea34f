package consulagent

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func binaryForTest(t *testing.T) string { return TestBinary(t) }

func startAgent(t *testing.T, opts Options) *Agent { return StartTest(t, opts) }

func processGone(pid int) bool {
	err := syscall.Kill(-pid, 0)
	return errors.Is(err, syscall.ESRCH)
}

func TestAcceptableVersion(t *testing.T) {
	for out, want := range map[string]bool{
		"Consul v1.15.4\nBuild Date ...": true,
		"Consul v1.14.0":                 true,
		"Consul v1.16.3":                 true,
		"Consul v1.16.4":                 false,
		"Consul v1.17.0":                 false,
		"Consul v1.22.1":                 false,
		"Consul v1.15.4+ent":             false,
		"Consul v1.13.9":                 false,
		"Consul v2.0.0":                  false,
		"garbage":                        false,
	} {
		if got, _ := acceptableVersion(out); got != want {
			t.Errorf("acceptableVersion(%q) = %v, want %v", out, got, want)
		}
	}
}

func TestStartStopLeavesNothing(t *testing.T) {
	bin := binaryForTest(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, err := Start(ctx, Options{Binary: bin})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	pid, dir := a.Pid(), a.Dir()
	c, err := a.Client()
	if err != nil {
		t.Fatal(err)
	}
	leader, err := c.Status().Leader()
	if err != nil || leader == "" {
		t.Fatalf("leader = %q, %v", leader, err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("temp dir: %v", err)
	}
	if err := a.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if !processGone(pid) {
		t.Errorf("process group %d still exists after Stop", pid)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("temp dir %s still exists after Stop (err=%v)", dir, err)
	}
	if err := a.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if _, err := c.Status().Leader(); err == nil {
		t.Errorf("agent still answers after Stop")
	}
}

func TestKillRestartSamePorts(t *testing.T) {
	a := startAgent(t, Options{})
	c, err := a.Client()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.KV().Put(&api.KVPair{Key: "probe", Value: []byte("1")}, nil); err != nil {
		t.Fatalf("KV put: %v", err)
	}
	_, meta, err := c.Catalog().Nodes(nil)
	if err != nil {
		t.Fatal(err)
	}
	before, ports, pid := meta.LastIndex, a.Ports(), a.Pid()

	if err := a.Kill(); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	if !processGone(pid) {
		t.Fatalf("process group %d survives Kill", pid)
	}
	if _, err := c.Status().Leader(); err == nil {
		t.Fatal("agent answers after Kill")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := a.Restart(ctx); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	if a.Ports() != ports {
		t.Fatalf("ports changed over Restart: %+v -> %+v", ports, a.Ports())
	}
	// Same client, same address: the restarted agent answers, with fresh
	// in-memory state.
	kv, _, err := c.KV().Get("probe", nil)
	if err != nil {
		t.Fatalf("KV get after restart: %v", err)
	}
	if kv != nil {
		t.Errorf("dev agent kept state over restart")
	}
	_, meta, err = c.Catalog().Nodes(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("catalog index before kill %d, after restart %d", before, meta.LastIndex)

	// Restart after a clean Stop works too (the temp dir is recreated).
	if err := a.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := a.Restart(ctx); err != nil {
		t.Fatalf("Restart after Stop: %v", err)
	}
	if _, err := c.Status().Leader(); err != nil {
		t.Fatalf("leader after second restart: %v", err)
	}
}

func TestWANFederation(t *testing.T) {
	dc1 := startAgent(t, Options{Datacenter: "dc1"})
	dc2 := startAgent(t, Options{Datacenter: "dc2", JoinWAN: []string{dc1.SerfWANAddr()}})
	for _, a := range []*Agent{dc1, dc2} {
		c, err := a.Client()
		if err != nil {
			t.Fatal(err)
		}
		// The dc1 side learns about dc2 through gossip; give it a moment.
		deadline := time.Now().Add(30 * time.Second)
		for {
			dcs, err := c.Catalog().Datacenters()
			if err == nil && slices.Contains(dcs, "dc1") && slices.Contains(dcs, "dc2") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: datacenters = %v, %v", a.Datacenter(), dcs, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		other := "dc2"
		if a.Datacenter() == "dc2" {
			other = "dc1"
		}
		// Cross-DC reads go through the WAN; the route can lag the
		// datacenter list by a gossip round.
		for {
			nodes, _, err := c.Catalog().Nodes(&api.QueryOptions{Datacenter: other})
			if err == nil && len(nodes) == 1 && nodes[0].Node == "consul-"+other {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s reading %s: nodes=%v err=%v", a.Datacenter(), other, nodes, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

func TestACLToken(t *testing.T) {
	a := startAgent(t, Options{
		ExtraHCL: `acl {
  enabled = true
  default_policy = "deny"
  tokens { initial_management = "root" }
}`,
		Token: "root",
	})
	c, err := a.Client()
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Catalog().Nodes(nil); err != nil {
		t.Fatalf("with management token: %v", err)
	}
	if _, err := c.KV().Put(&api.KVPair{Key: "x"}, &api.WriteOptions{Token: "not-a-token"}); err == nil {
		t.Errorf("write with a bogus token succeeded under default_policy=deny")
	}
}

// TestStartSweepsOrphans: a temp dir whose owner died without Stop is
// removed by the next Start; one owned by a live process is kept.
func TestStartSweepsOrphans(t *testing.T) {
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Skipf("cannot run true: %v", err)
	}
	orphan, err := os.MkdirTemp("", tempPrefix+"*")
	if err != nil {
		t.Fatal(err)
	}
	alive, err := os.MkdirTemp("", tempPrefix+"*")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(alive)
	os.WriteFile(filepath.Join(orphan, ownerFile), []byte(strconv.Itoa(dead.Process.Pid)), 0o644)
	os.WriteFile(filepath.Join(alive, ownerFile), []byte(strconv.Itoa(os.Getppid())), 0o644)
	startAgent(t, Options{})
	if _, err := os.Stat(orphan); !os.IsNotExist(err) {
		t.Errorf("orphaned dir %s survived Start (err=%v)", orphan, err)
		os.RemoveAll(orphan)
	}
	if _, err := os.Stat(alive); err != nil {
		t.Errorf("dir of a live owner was removed: %v", err)
	}
}

// TestClientAgents runs two client agents beside a server: both nodes
// join the server's catalog, the second with the node meta and service of
// its ConfigFiles, and a service file dropped into one client's ConfigDir
// and loaded by `consul reload` shows up on that node only.
func TestClientAgents(t *testing.T) {
	bin := binaryForTest(t)
	srv := startAgent(t, Options{Binary: bin})
	var clients []*Agent
	files := map[string]map[string][]byte{"node-b": {
		"10-meta.json":       []byte(`{"node_meta": {"asg": "app-asg"}}`),
		"fleetdeck-api.json": []byte(`{"service": {"id": "fleetdeck-api", "name": "api"}}`),
	}}
	for _, name := range []string{"node-a", "node-b"} {
		clients = append(clients, startAgent(t, Options{Binary: bin, NodeName: name, JoinLAN: []string{srv.SerfLANAddr()}, ConfigFiles: files[name]}))
	}
	sc, err := srv.Client()
	if err != nil {
		t.Fatal(err)
	}
	// A client is ready once its node is in the catalog; its services are
	// synced by anti-entropy right after, so wait for them.
	for deadline := time.Now().Add(20 * time.Second); ; {
		nb, _, err := sc.Catalog().Node("node-b", nil)
		if err != nil {
			t.Fatal(err)
		}
		if nb != nil && nb.Node.Meta["asg"] == "app-asg" && nb.Services["fleetdeck-api"] != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node-b lacks its ConfigFiles' meta and service: %+v", nb)
		}
		time.Sleep(100 * time.Millisecond)
	}
	nodes, _, err := sc.Catalog().Nodes(nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, n := range nodes {
		names = append(names, n.Node)
	}
	for _, want := range []string{"node-a", "node-b", srv.NodeName()} {
		if !slices.Contains(names, want) {
			t.Errorf("catalog nodes %v lack %s", names, want)
		}
	}
	a := clients[0]
	if !a.IsClient() || srv.IsClient() {
		t.Errorf("IsClient: client %v, server %v", a.IsClient(), srv.IsClient())
	}
	if a.ConfigDir() == "" || a.HTTPAddr() == clients[1].HTTPAddr() {
		t.Fatalf("ConfigDir %q, HTTP addrs %s %s", a.ConfigDir(), a.HTTPAddr(), clients[1].HTTPAddr())
	}
	def := `{"service": {"id": "fleetdeck-web", "name": "web", "port": 8080, "tags": ["t1"]}}`
	if err := os.WriteFile(filepath.Join(a.ConfigDir(), "fleetdeck-web.json"), []byte(def), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, bin, "validate", a.ConfigDir()).CombinedOutput(); err != nil {
		t.Fatalf("consul validate %s: %v\n%s", a.ConfigDir(), err, out)
	}
	if out, err := exec.CommandContext(ctx, bin, "reload", "-http-addr="+a.HTTPAddr()).CombinedOutput(); err != nil {
		t.Fatalf("consul reload: %v\n%s", err, out)
	}
	for {
		svcs, _, err := sc.Catalog().Service("web", "", &api.QueryOptions{AllowStale: false})
		if err != nil {
			t.Fatal(err)
		}
		if len(svcs) == 1 {
			if svcs[0].Node != "node-a" || svcs[0].ServiceID != "fleetdeck-web" || !slices.Equal(svcs[0].ServiceTags, []string{"t1"}) {
				t.Fatalf("service web: %+v", svcs[0])
			}
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("web never reached the catalog: %v", svcs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestConfigFileNames: a ConfigFiles name that would leave ConfigDir,
// replace a generated file or not be loaded is refused before anything
// starts.
func TestConfigFileNames(t *testing.T) {
	for _, name := range []string{"", "../x.json", "a/b.json", "00-fleetdeck.hcl", "50-extra.hcl", "notes.txt", ".."} {
		_, err := Start(context.Background(), Options{Binary: "/nonexistent", ConfigFiles: map[string][]byte{name: nil}})
		if err == nil || !strings.Contains(err.Error(), "config file name") {
			t.Errorf("%q: %v", name, err)
		}
	}
}

func TestClientNeedsNodeName(t *testing.T) {
	_, err := Start(context.Background(), Options{Binary: "/nonexistent", JoinLAN: []string{"127.0.0.1:1"}})
	if err == nil {
		t.Fatal("a client agent without NodeName started")
	}
}
