package consulagent

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// ConsulVersion is the Consul release that tools/consul builds. It is the
// newest line that is still MPL-2.0 and that the project has verified; Consul
// v1.16.4 and later (and all of 1.17+) are BUSL-licensed and must never be
// used.
const ConsulVersion = "v1.15.4"

// EnvBinary names the environment variable that points at a Consul binary to
// use instead of looking one up or building one.
const EnvBinary = "FLEETDECK_CONSUL_BIN"

// modulePath identifies the fleetdeck checkout when walking up from the
// working directory to find tools/consul.
const modulePath = "github.com/fleetdeck/fleetdeck"

// Binary returns the path of a Consul agent binary that is safe to run
// (MPL-2.0 licensed), in this order of preference:
//
//  1. the file named by FLEETDECK_CONSUL_BIN;
//  2. `consul` on PATH, but only if `consul version` reports v1.14.0 to
//     v1.16.3 (older agents lack config keys Start relies on; newer ones are
//     BUSL);
//  3. a build of tools/consul from the enclosing fleetdeck checkout, cached
//     under os.UserCacheDir()/fleetdeck/ so only the first call pays for it.
//
// Progress of a build (which takes minutes) is written to progress, which
// may be nil. Concurrent callers, including other processes such as
// parallel `go test` package runs, share one build through a lock file.
func Binary(ctx context.Context, progress io.Writer) (string, error) {
	if progress == nil {
		progress = io.Discard
	}
	if p := os.Getenv(EnvBinary); p != "" {
		st, err := os.Stat(p)
		if err != nil {
			return "", fmt.Errorf("consulagent: %s=%q: %w", EnvBinary, p, err)
		}
		if st.IsDir() || st.Mode()&0o111 == 0 {
			return "", fmt.Errorf("consulagent: %s=%q is not an executable file", EnvBinary, p)
		}
		return p, nil
	}
	if p, err := exec.LookPath("consul"); err == nil {
		ok, ver, err := acceptableOnPath(ctx, p)
		if err != nil {
			if ctx.Err() != nil {
				return "", ctx.Err()
			}
			fmt.Fprintf(progress, "ignoring %s: %v\n", p, err)
		} else if ok {
			return p, nil
		} else {
			fmt.Fprintf(progress, "ignoring %s: version %s is not an MPL-2.0 release between v1.14.0 and v1.16.3\n", p, ver)
		}
	}
	return buildCached(ctx, progress)
}

var versionRE = regexp.MustCompile(`Consul v(\d+)\.(\d+)\.(\d+)(\S*)`)

// acceptableOnPath runs `consul version` and reports whether that binary is
// an MPL-2.0 release new enough for the flags and config Start uses.
func acceptableOnPath(ctx context.Context, path string) (bool, string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "version").Output()
	if err != nil {
		return false, "", fmt.Errorf("running %s version: %w", path, err)
	}
	ok, ver := acceptableVersion(string(out))
	return ok, ver, nil
}

// acceptableVersion parses `consul version` output. Enterprise builds
// ("+ent") are proprietary and rejected.
func acceptableVersion(out string) (bool, string) {
	m := versionRE.FindStringSubmatch(out)
	if m == nil {
		return false, "unknown"
	}
	ver := strings.TrimPrefix(m[0], "Consul ")
	major, _ := strconv.Atoi(m[1])
	minor, _ := strconv.Atoi(m[2])
	patch, _ := strconv.Atoi(m[3])
	if strings.Contains(m[4], "ent") || major != 1 {
		return false, ver
	}
	switch {
	case minor == 14 || minor == 15:
		return true, ver
	case minor == 16 && patch <= 3:
		return true, ver
	}
	return false, ver
}

// ModuleRoot walks up from the working directory to the fleetdeck checkout,
// the directory whose go.mod declares module github.com/fleetdeck/fleetdeck.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("consulagent: finding the working directory: %w", err)
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && declaresModule(data, modulePath) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("consulagent: no fleetdeck checkout (go.mod with module %s) above the working directory; "+
				"run from inside the fleetdeck repository or set %s to a Consul v1.15.x binary", modulePath, EnvBinary)
		}
		dir = parent
	}
}

func declaresModule(gomod []byte, path string) bool {
	sc := bufio.NewScanner(bytes.NewReader(gomod))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "module" && strings.Trim(f[1], `"`) == path {
			return true
		}
	}
	return false
}

// CachePath returns where Binary keeps its build of tools/consul for the
// checkout at root. The directory name carries a hash of the build inputs,
// so editing tools/consul invalidates the cached binary.
func CachePath(root string) (string, error) {
	h := sha256.New()
	// go.mod is hashed too: a version bump there changes the binary even when
	// go.sum happens to keep the old lines.
	for _, name := range []string{"go.mod", "go.sum", "main.go"} {
		data, err := os.ReadFile(filepath.Join(root, "tools", "consul", name))
		if err != nil {
			return "", fmt.Errorf("consulagent: reading the Consul build inputs: %w", err)
		}
		fmt.Fprintf(h, "%s %d\n", name, len(data))
		h.Write(data)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("consulagent: no user cache directory (set XDG_CACHE_HOME or %s): %w", EnvBinary, err)
	}
	dir := "consul-" + ConsulVersion + "-" + hex.EncodeToString(h.Sum(nil))[:12]
	return filepath.Join(cache, "fleetdeck", dir, "consul"), nil
}

// buildCached returns the cached build of tools/consul, building it first
// if needed.
func buildCached(ctx context.Context, progress io.Writer) (string, error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	bin, err := CachePath(root)
	if err != nil {
		return "", err
	}
	if isExecutable(bin) {
		return bin, nil
	}
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		return "", fmt.Errorf("consulagent: creating the Consul cache directory: %w", err)
	}
	unlock, err := lockFile(ctx, bin+".lock", func() {
		fmt.Fprintf(progress, "waiting for another process that is building Consul %s…\n", ConsulVersion)
	})
	if err != nil {
		return "", fmt.Errorf("consulagent: locking the Consul build: %w", err)
	}
	defer unlock()
	// Another process may have finished the build while we waited.
	if isExecutable(bin) {
		return bin, nil
	}
	// Temp outputs of builds whose process died (killed by a test timeout)
	// are garbage now that we hold the lock.
	if stale, _ := filepath.Glob(filepath.Join(filepath.Dir(bin), ".consul-build-*")); len(stale) > 0 {
		for _, f := range stale {
			os.Remove(f)
		}
	}
	if err := build(ctx, filepath.Join(root, "tools", "consul"), bin, progress); err != nil {
		return "", err
	}
	return bin, nil
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}

// build compiles tools/consul into bin via a temporary file in the same
// directory, renamed into place only after success, so a killed build never
// leaves a half-written binary that a later run would trust.
func build(ctx context.Context, srcDir, bin string, progress io.Writer) error {
	gobin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("consulagent: no Consul binary: `go` is not on PATH to build tools/consul; "+
			"install Go (https://go.dev/dl/) or set %s to a Consul v1.15.x binary: %w", EnvBinary, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(bin), ".consul-build-*")
	if err != nil {
		return fmt.Errorf("consulagent: creating the build output file: %w", err)
	}
	tmpName := tmp.Name()
	tmp.Close()
	defer os.Remove(tmpName) // no-op after the rename

	fmt.Fprintf(progress, "building Consul %s (first run only, ~3 min)…\n", ConsulVersion)
	start := time.Now()
	pw := &packageCounter{w: progress, start: start}
	cmd := exec.CommandContext(ctx, gobin, "build", "-v", "-trimpath", "-o", tmpName, ".")
	cmd.Dir = srcDir
	// tools/consul is its own module; a go.work in a parent directory must
	// not pull it into the main module's build list.
	cmd.Env = append(os.Environ(), "GOWORK=off")
	cmd.Stdout = pw
	cmd.Stderr = pw
	// go build starts compiler and linker processes; cancelling must stop
	// all of them, not just the go command, and so must our own death
	// (a test binary killed by -timeout), or an orphaned build keeps
	// burning the CPU that the retry needs.
	setProcessGroup(cmd)
	cmd.Cancel = func() error { killGroup(cmd); return nil }
	err = cmd.Run()
	pw.flush()
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("consulagent: building Consul %s: %w", ConsulVersion, ctx.Err())
		}
		return fmt.Errorf("consulagent: building Consul %s in %s failed (output above; it needs the Go module proxy "+
			"or a warm module cache), or set %s to a Consul v1.15.x binary: %w", ConsulVersion, srcDir, EnvBinary, err)
	}
	if err := os.Chmod(tmpName, 0o755); err != nil {
		return fmt.Errorf("consulagent: making the Consul build executable: %w", err)
	}
	if err := os.Rename(tmpName, bin); err != nil {
		return fmt.Errorf("consulagent: moving the Consul build into the cache: %w", err)
	}
	fmt.Fprintf(progress, "built Consul %s in %s: %s\n", ConsulVersion, time.Since(start).Round(time.Second), bin)
	return nil
}

// packageCounter condenses `go build -v` output: the hundreds of package
// paths become a running count every 100 packages, while anything else
// (downloads, compiler errors) passes through so failures stay readable.
type packageCounter struct {
	w     io.Writer
	start time.Time
	buf   []byte
	n     int
}

func (p *packageCounter) Write(b []byte) (int, error) {
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 {
			break
		}
		p.line(string(p.buf[:i]))
		p.buf = p.buf[i+1:]
	}
	return len(b), nil
}

func (p *packageCounter) line(l string) {
	if l == "" {
		return
	}
	if strings.ContainsAny(l, " \t:") || strings.HasPrefix(l, "#") {
		fmt.Fprintln(p.w, l)
		return
	}
	p.n++
	if p.n%100 == 0 {
		fmt.Fprintf(p.w, "  … %d packages compiled (%s)\n", p.n, time.Since(p.start).Round(time.Second))
	}
}

func (p *packageCounter) flush() {
	if len(p.buf) > 0 {
		p.line(string(p.buf))
		p.buf = nil
	}
}
