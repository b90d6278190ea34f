package tui

import (
	"strings"

	"github.com/fleetdeck/fleetdeck/provision"
)

// This file holds what the console needs from the run manager's issue-8
// API (see the contract) that this branch's provision package
// does not have yet. When the domain work is merged, previewExtraVars
// becomes `return p.ExtraVars` and hostNotRun becomes provision.HostNotRun.

// hostNotRun is the board status of a host a run never started
// (provision.HostNotRun).
const hostNotRun provision.HostStatus = "not run"

// previewExtraVars returns the extra vars of a preview as the run gets
// them, "key=value", secret values shown as "key=<redacted>"
// (provision.Preview.ExtraVars).
func previewExtraVars(p *provision.Preview) []string {
	out := make([]string, 0, len(p.Request.ExtraVars))
	for _, kv := range p.Request.ExtraVars {
		if k, _, ok := strings.Cut(kv, "="); ok && provision.IsSecretVar(k) {
			kv = k + "=<redacted>"
		}
		out = append(out, kv)
	}
	return out
}
