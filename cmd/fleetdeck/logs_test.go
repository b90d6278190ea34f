package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleetdeck/fleetdeck/logview"
)

// Without a project, or without credentials, the console runs with the
// Logs view off and says why; neither is an error.
func TestLogServiceOffSaysWhy(t *testing.T) {
	ctx := context.Background()
	s, off, err := newLogService(ctx, logsOptions{})
	if s != nil || err != nil || !strings.Contains(off, "no Cloud Logging project") {
		t.Fatalf("no project: %v %q %v", s, off, err)
	}
	// Application Default Credentials pointing at a missing file: the
	// lookup fails at once (no metadata-server probe).
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", filepath.Join(t.TempDir(), "missing.json"))
	s, off, err = newLogService(ctx, logsOptions{projects: []string{"acme-prod"}})
	if s != nil {
		s.Close()
	}
	if s != nil || err != nil || !strings.Contains(off, "missing.json") {
		t.Fatalf("no credentials: %v %q %v", s, off, err)
	}
	t.Logf("shown: %s", off)
}

func TestLogSaverWritesPrivateJSONLines(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "logs")
	save := logSaver(dir)
	path, err := save("node a/../../b\x1b[2J", []*logview.Entry{{InsertID: "1", Text: "hello\x1b]52;c;x\x07"}})
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(path) != dir || strings.ContainsAny(filepath.Base(path), "/\x1b ") {
		t.Fatalf("saved to %q", path)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsRune(string(b), 0x1b) || !strings.Contains(string(b), `"insertId":"1"`) {
		t.Errorf("file: %s", b)
	}
}
