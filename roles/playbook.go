package roles

import (
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
)

// PlaybookFile is the name the apply playbook is written under in a
// playbook directory (the demo's, or a user's before adapting it).
const PlaybookFile = "fleetdeck-apply.yml"

// applyPlaybook is the shipped apply playbook. A string, not a []byte, so
// no caller can change what every later caller gets.
//
//go:embed playbook/apply.yml
var applyPlaybook string

// Playbook returns the shipped apply playbook (`fleetdeck roles
// playbook` prints it). Its per-host variables are what HostVars
// produces; its header comment documents them for users adapting a copy.
func Playbook() []byte { return []byte(applyPlaybook) }

// WritePlaybook writes the shipped playbook into dir as PlaybookFile and
// returns its path. The file is replaced atomically (a temporary file in
// dir, then a rename), so a run starting meanwhile reads the old or the
// new playbook, never half of one.
func WritePlaybook(dir string) (string, error) {
	path := filepath.Join(dir, PlaybookFile)
	tmp, err := os.CreateTemp(dir, "."+PlaybookFile+".*")
	if err != nil {
		return "", fmt.Errorf("writing the apply playbook: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if _, err := tmp.WriteString(applyPlaybook); err != nil {
		tmp.Close()
		return "", fmt.Errorf("writing the apply playbook: %w", err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return "", fmt.Errorf("writing the apply playbook: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("writing the apply playbook: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", fmt.Errorf("writing the apply playbook: %w", err)
	}
	return path, nil
}
