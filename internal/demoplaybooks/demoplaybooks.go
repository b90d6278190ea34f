// Package demoplaybooks is the playbook set of `fleetdeck demo`: base, web,
// deploy-app and restart-service. They are harmless — they only write under
// demo_root (default /tmp/fleetdeck-demo/<host>) and run `true` / `sleep 1`
// — and meant for a local connection. A host whose hostvar
// fleetdeck_demo_fail is true, or whose Consul node meta has the key
// fleetdeck_demo_fail (the demo marks one simulated node that way: see
// fleetsim.DemoFailMetaKey), fails in every playbook, so a run shows a mix of ok, changed, skipped
// and failed. No task templates a Consul-sourced value.
//
// For the demo's real nodes (Consul client agents on this machine) it also
// writes the role catalog, their host_vars and a group_vars default that
// keeps the apply playbook off the simulated nodes, and serves the roles'
// stand-in services (agents.go).
package demoplaybooks

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// FailVar is the hostvar that makes a demo host fail.
const FailVar = "fleetdeck_demo_fail"

// RootVar is the hostvar naming the directory the playbooks write under.
const RootVar = "demo_root"

//go:embed playbooks/*.yml
var files embed.FS

// Names lists the playbooks (file names).
func Names() []string {
	ents, _ := fs.ReadDir(files, "playbooks")
	out := make([]string, 0, len(ents))
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// Write copies the playbooks into dir (created if needed) so it can serve
// as the demo's playbook directory.
func Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating demo playbook dir: %w", err)
	}
	for _, name := range Names() {
		b, err := files.ReadFile("playbooks/" + name)
		if err != nil {
			return fmt.Errorf("reading demo playbook %s: %w", name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return fmt.Errorf("writing demo playbook %s: %w", name, err)
		}
	}
	return nil
}
