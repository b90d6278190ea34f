package consulagent

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestBinaryFromEnv(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "consul")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvBinary, exe)
	got, err := Binary(context.Background(), nil)
	if err != nil || got != exe {
		t.Fatalf("Binary = %q, %v; want %q", got, err, exe)
	}
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvBinary, plain)
	if _, err := Binary(context.Background(), nil); err == nil || !strings.Contains(err.Error(), EnvBinary) {
		t.Errorf("non-executable %s: err = %v", EnvBinary, err)
	}
}

func TestLockFileExcludes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	unlock, err := lockFile(context.Background(), path, func() {})
	if err != nil {
		t.Fatal(err)
	}
	// A second locker (another open file description, as in another
	// process) must wait until the first unlocks.
	ctx, cancel := context.WithTimeout(context.Background(), 600*time.Millisecond)
	defer cancel()
	waited := false
	if _, err := lockFile(ctx, path, func() { waited = true }); err == nil || !waited {
		t.Fatalf("second lock: err=%v waited=%v; want a timeout after waiting", err, waited)
	}
	unlock()
	unlock2, err := lockFile(context.Background(), path, func() {})
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	unlock2()
}

func TestPackageCounter(t *testing.T) {
	var b strings.Builder
	pc := &packageCounter{w: &b, start: time.Now()}
	for i := 0; i < 250; i++ {
		pc.Write([]byte("github.com/x/pkg\n"))
	}
	pc.Write([]byte("go: downloading github.com/x v1\n# github.com/x\n./a.go:1: oops"))
	pc.flush()
	out := b.String()
	for _, want := range []string{"100 packages", "200 packages", "go: downloading", "# github.com/x", "./a.go:1: oops"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "github.com/x/pkg") {
		t.Errorf("package lines were not condensed:\n%s", out)
	}
}
