package provision

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// PruneReport says what Manager.Prune removed.
type PruneReport struct {
	// Runs are the ids of the run records removed from history.
	Runs []string
	// Dirs counts the run directories removed.
	Dirs int
	// ExtraVars counts the extra-vars files (RunExtraVarsFile) that
	// crashed consoles had left behind and that were removed.
	ExtraVars int
}

// runOrphanAge is how old a run directory that no record names and whose
// owner is unknown (a directory from before owner files) must be before it
// is removed.
const runOrphanAge = 24 * time.Hour

// Prune cleans up after this and earlier consoles; the Manager runs it at
// start and after each run. It
//   - removes the extra-vars file (RunExtraVarsFile, which may hold
//     secrets) from every run directory whose console is gone: a crash
//     leaves it behind;
//   - removes the final run records beyond ManagerConfig.KeepRuns or older
//     than KeepFor from history, with their run directories;
//   - removes run directories no record names whose console is gone
//     (previews of a crashed console).
//
// A queued or running record, and a directory whose console may still be
// running (another console on this machine, or this one), are never
// touched. Only directories inside RunnerConfig.RunsDir, or fleetdeck's
// own temporary run directories, are ever removed.
func (m *Manager) Prune(ctx context.Context) (PruneReport, error) {
	m.pruning.Lock()
	defer m.pruning.Unlock()
	return m.prune(ctx)
}

func (m *Manager) prune(ctx context.Context) (PruneReport, error) {
	var rep PruneReport
	h := m.cfg.History
	self := h.Owner()
	recs, err := h.summaries(ctx)
	if err != nil {
		return rep, fmt.Errorf("pruning runs: %w", err)
	}
	byDir := map[string]RunRecord{}
	for _, r := range recs {
		if r.Dir != "" {
			byDir[filepath.Clean(r.Dir)] = r
		}
	}
	runsDir := m.cfg.Runner.cfg.RunsDir
	var listed []string
	if runsDir != "" {
		ents, err := os.ReadDir(runsDir)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return rep, fmt.Errorf("pruning runs: listing %s: %w", runsDir, err)
		}
		for _, e := range ents {
			if e.IsDir() {
				listed = append(listed, filepath.Join(runsDir, e.Name()))
			}
		}
	}
	// ownerGone: the console that prepared dir is provably not running.
	ownerGone := func(dir string) bool {
		if r, ok := byDir[dir]; ok && !r.Status.Final() {
			return !histOwnerAlive(r.Owner, self)
		}
		b, err := os.ReadFile(filepath.Join(dir, runOwnerFile))
		if err != nil {
			return false
		}
		var o RunOwner
		if json.Unmarshal(b, &o) != nil || o.PID == 0 {
			return false
		}
		return !histOwnerAlive(o, self)
	}

	// Secrets first: they must not outlive a crash by more than a start.
	seen := map[string]bool{}
	for _, dir := range append(listed, keysOf(byDir)...) {
		if seen[dir] {
			continue
		}
		seen[dir] = true
		xf := filepath.Join(dir, RunExtraVarsFile)
		if _, err := os.Lstat(xf); err != nil {
			continue
		}
		r, recorded := byDir[dir]
		if (recorded && r.Status.Final()) || ownerGone(dir) {
			if err := os.Remove(xf); err == nil {
				rep.ExtraVars++
			}
		}
	}

	var errs []error
	pruned, err := h.Prune(ctx, PruneOptions{Keep: m.cfg.KeepRuns, MaxAge: m.cfg.KeepFor})
	if err != nil {
		errs = append(errs, fmt.Errorf("pruning runs: %w", err))
	}
	for _, r := range pruned {
		rep.Runs = append(rep.Runs, r.ID)
		if r.Dir == "" {
			continue
		}
		dir := filepath.Clean(r.Dir)
		delete(byDir, dir)
		if m.runDirRemovable(dir) {
			if err := os.RemoveAll(dir); err != nil {
				errs = append(errs, fmt.Errorf("pruning run %s: %w", r.ID, err))
			} else {
				rep.Dirs++
			}
		}
	}
	for _, dir := range listed {
		if _, named := byDir[dir]; named {
			continue
		}
		remove := ownerGone(dir)
		if _, err := os.Lstat(filepath.Join(dir, runOwnerFile)); errors.Is(err, os.ErrNotExist) {
			if fi, err := os.Stat(dir); err == nil && time.Since(fi.ModTime()) > runOrphanAge {
				remove = true
			}
		}
		if remove && m.runDirRemovable(dir) {
			if err := os.RemoveAll(dir); err != nil {
				errs = append(errs, fmt.Errorf("pruning run directory %s: %w", dir, err))
			} else {
				rep.Dirs++
			}
		}
	}
	return rep, errors.Join(errs...)
}

// runDirRemovable says whether dir is a run directory fleetdeck made, so
// that a damaged record can never make Prune remove anything else: a
// directory right inside RunsDir, or a "fleetdeck-run-" temporary one.
func (m *Manager) runDirRemovable(dir string) bool {
	if !filepath.IsAbs(dir) {
		return false
	}
	parent, base := filepath.Dir(dir), filepath.Base(dir)
	if rd := m.cfg.Runner.cfg.RunsDir; rd != "" {
		if abs, err := filepath.Abs(rd); err == nil && parent == filepath.Clean(abs) {
			return true
		}
	}
	return parent == filepath.Clean(os.TempDir()) && strings.HasPrefix(base, "fleetdeck-run-")
}

func keysOf(m map[string]RunRecord) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
