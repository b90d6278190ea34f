package provision

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// ErrPlaybookDir reports a playbook directory that is missing or unreadable.
var ErrPlaybookDir = errors.New("playbook directory unusable")

// ErrPlaybookNotFound reports a playbook name that is not in the catalog.
var ErrPlaybookNotFound = errors.New("playbook not in the playbook directory")

// Playbook is one allow-listed playbook.
type Playbook struct {
	Name        string // file name without directory, e.g. "base.yml"
	Path        string // absolute path inside the catalog directory
	SHA256      string // hex checksum of the playbook file (not of its roles)
	Size        int64
	ModTime     time.Time
	Description string // the first "# " comment line, if any
}

// PlaybookCatalog is the allow-list of playbooks: the *.yml and *.yaml files
// directly inside one configured directory. Runs name a playbook from it;
// there is no way to run a path or a command that is not in it.
//
// Symbolic links are followed only when their target stays inside the
// directory, so the allow-list is what an operator sees with `ls`. Files
// whose name starts with "." or "_" are not listed (editor swap files,
// include-only snippets by convention).
type PlaybookCatalog struct {
	dir string // absolute, symlinks resolved
}

// NewPlaybookCatalog opens the playbook directory. It fails with
// ErrPlaybookDir when the directory does not exist or is not a directory.
func NewPlaybookCatalog(dir string) (*PlaybookCatalog, error) {
	if dir == "" {
		return nil, fmt.Errorf("%w: no playbook directory configured (set playbook_dir / --playbook-dir)", ErrPlaybookDir)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("%w: resolving %s: %v", ErrPlaybookDir, dir, err)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrPlaybookDir, dir, err)
	}
	fi, err := os.Stat(real)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrPlaybookDir, dir, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%w: %s is not a directory", ErrPlaybookDir, dir)
	}
	return &PlaybookCatalog{dir: real}, nil
}

// Dir returns the catalog's directory (absolute, symlinks resolved).
func (c *PlaybookCatalog) Dir() string { return c.dir }

// List returns the catalog's playbooks sorted by name, with checksums.
func (c *PlaybookCatalog) List(ctx context.Context) ([]Playbook, error) {
	entries, err := os.ReadDir(c.dir)
	if err != nil {
		return nil, fmt.Errorf("%w: listing %s: %v", ErrPlaybookDir, c.dir, err)
	}
	var out []Playbook
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("listing playbooks: %w", err)
		}
		if !runPlaybookName(e.Name()) {
			continue
		}
		pb, err := c.Get(e.Name())
		if err != nil {
			if errors.Is(err, ErrPlaybookNotFound) {
				continue // a directory named x.yml, a link leaving the dir
			}
			return nil, err
		}
		out = append(out, pb)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// runPlaybookName says whether a file name can be a catalog entry.
func runPlaybookName(name string) bool {
	if name == "" || strings.ContainsAny(name, "/\\\x00") || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") {
		return false
	}
	ext := strings.ToLower(filepath.Ext(name))
	return ext == ".yml" || ext == ".yaml"
}

// Get returns the named playbook with a fresh checksum. The name is a file
// name in the catalog directory, with or without its extension ("base" finds
// base.yml). Anything else — a path, "..", a file outside the directory — is
// ErrPlaybookNotFound.
func (c *PlaybookCatalog) Get(name string) (Playbook, error) {
	pb, _, err := c.read(name)
	return pb, err
}

// playbookMaxBytes bounds a playbook file (a playbook is read whole, to
// pin it for a run).
const playbookMaxBytes = 16 << 20

// read returns the named playbook (see Get) and its bytes, read once: the
// checksum is of exactly these bytes, which is what a run executes (see
// RunPlan). A link is followed only while it stays inside the directory,
// and the file read must still be the one the name resolves to after the
// read, so re-pointing a link at the wrong moment cannot slip another file
// in.
func (c *PlaybookCatalog) read(name string) (Playbook, []byte, error) {
	if !runPlaybookName(name) {
		if runPlaybookName(name + ".yml") {
			if pb, body, err := c.read(name + ".yml"); err == nil {
				return pb, body, nil
			}
			return c.read(name + ".yaml")
		}
		return Playbook{}, nil, fmt.Errorf("%w: %q (playbooks are *.yml / *.yaml files in %s)", ErrPlaybookNotFound, name, c.dir)
	}
	p := filepath.Join(c.dir, name)
	resolve := func() (string, error) {
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			return "", fmt.Errorf("%w: %q in %s", ErrPlaybookNotFound, name, c.dir)
		}
		if filepath.Dir(real) != c.dir && !strings.HasPrefix(real, c.dir+string(filepath.Separator)) {
			return "", fmt.Errorf("%w: %q links outside %s", ErrPlaybookNotFound, name, c.dir)
		}
		return real, nil
	}
	real, err := resolve()
	if err != nil {
		return Playbook{}, nil, err
	}
	f, err := os.Open(real)
	if err != nil {
		return Playbook{}, nil, fmt.Errorf("opening playbook %s: %w", name, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return Playbook{}, nil, fmt.Errorf("reading playbook %s: %w", name, err)
	}
	if !fi.Mode().IsRegular() {
		return Playbook{}, nil, fmt.Errorf("%w: %q is not a regular file", ErrPlaybookNotFound, name)
	}
	body, err := io.ReadAll(io.LimitReader(f, playbookMaxBytes+1))
	if err != nil {
		return Playbook{}, nil, fmt.Errorf("reading playbook %s: %w", name, err)
	}
	if len(body) > playbookMaxBytes {
		return Playbook{}, nil, fmt.Errorf("reading playbook %s: larger than %d MiB", name, playbookMaxBytes>>20)
	}
	again, err := resolve()
	if err != nil {
		return Playbook{}, nil, err
	}
	if fi2, err := os.Stat(again); err != nil || !os.SameFile(fi, fi2) {
		return Playbook{}, nil, fmt.Errorf("reading playbook %s: it changed while being read; try again", name)
	}
	sum := sha256.Sum256(body)
	return Playbook{
		Name:        name,
		Path:        p,
		SHA256:      hex.EncodeToString(sum[:]),
		Size:        int64(len(body)),
		ModTime:     fi.ModTime(),
		Description: playbookDescription(body),
	}, body, nil
}

// playbookDescription is the first "# " comment line of a playbook, if it
// comes before anything else.
func playbookDescription(body []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		t := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(t, "#") {
			return strings.TrimSpace(strings.TrimLeft(t, "#"))
		}
		if t != "" && t != "---" {
			return "" // descriptions are leading comments only
		}
	}
	return ""
}

// runFileSHA256 checksums a file (the pinned playbook copy again right
// before it runs, so the record names the content that actually ran).
func runFileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
