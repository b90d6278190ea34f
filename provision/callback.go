package provision

import (
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
)

// runCallbackName is the plugin's name for ANSIBLE_CALLBACKS_ENABLED; the
// file written out is runCallbackName + ".py".
const runCallbackName = "fleetdeck_events"

// runEventFDEnv names the environment variable that tells the plugin which
// inherited descriptor to write events to.
const runEventFDEnv = "FLEETDECK_EVENT_FD"

// runCallbackSource is the callback plugin, shipped inside the binary so a
// run never depends on files installed next to it.
//
//go:embed callback/fleetdeck_events.py
var runCallbackSource []byte

// CallbackPluginSource returns the Python source of fleetdeck's event
// callback plugin (for docs and for people who want to read what runs).
func CallbackPluginSource() []byte { return append([]byte(nil), runCallbackSource...) }

// runWriteCallback writes the plugin into dir (created 0700) and returns the
// directory for ANSIBLE_CALLBACK_PLUGINS. Each run gets its own copy so
// nothing outside the run directory can swap the plugin between runs.
func runWriteCallback(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("creating callback plugin dir: %w", err)
	}
	p := filepath.Join(dir, runCallbackName+".py")
	if err := os.WriteFile(p, runCallbackSource, 0o600); err != nil {
		return "", fmt.Errorf("writing callback plugin: %w", err)
	}
	return dir, nil
}
