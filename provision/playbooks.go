package provision

import (
	"bufio"
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
	if !runPlaybookName(name) {
		if runPlaybookName(name + ".yml") {
			if pb, err := c.Get(name + ".yml"); err == nil {
				return pb, nil
			}
			return c.Get(name + ".yaml")
		}
		return Playbook{}, fmt.Errorf("%w: %q (playbooks are *.yml / *.yaml files in %s)", ErrPlaybookNotFound, name, c.dir)
	}
	p := filepath.Join(c.dir, name)
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return Playbook{}, fmt.Errorf("%w: %q in %s", ErrPlaybookNotFound, name, c.dir)
	}
	if filepath.Dir(real) != c.dir && !strings.HasPrefix(real, c.dir+string(filepath.Separator)) {
		return Playbook{}, fmt.Errorf("%w: %q links outside %s", ErrPlaybookNotFound, name, c.dir)
	}
	f, err := os.Open(real)
	if err != nil {
		return Playbook{}, fmt.Errorf("opening playbook %s: %w", name, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return Playbook{}, fmt.Errorf("reading playbook %s: %w", name, err)
	}
	if !fi.Mode().IsRegular() {
		return Playbook{}, fmt.Errorf("%w: %q is not a regular file", ErrPlaybookNotFound, name)
	}
	h := sha256.New()
	desc := ""
	br := bufio.NewReader(io.TeeReader(f, h))
	for desc == "" {
		line, err := br.ReadString('\n')
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "#") {
			desc = strings.TrimSpace(strings.TrimLeft(t, "#"))
		} else if t != "" && t != "---" {
			break // descriptions are leading comments only
		}
		if err != nil {
			break
		}
	}
	if _, err := io.Copy(io.Discard, br); err != nil {
		return Playbook{}, fmt.Errorf("checksumming playbook %s: %w", name, err)
	}
	return Playbook{
		Name:        name,
		Path:        p,
		SHA256:      hex.EncodeToString(h.Sum(nil)),
		Size:        fi.Size(),
		ModTime:     fi.ModTime(),
		Description: desc,
	}, nil
}

// runFileSHA256 checksums a file (the playbook again right before it runs,
// so the record names the content that actually ran).
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
