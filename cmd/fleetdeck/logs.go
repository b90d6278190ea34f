package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fleetdeck/fleetdeck/logview"
	"github.com/fleetdeck/fleetdeck/provision"
)

// logsOptions configure the Logs view (Cloud Logging).
type logsOptions struct {
	projects      []string
	endpoint      string
	insecure      bool
	mapping       logview.Mapping
	listPerMinute int
	cap           int
	before, after time.Duration
	// saveDir is where saved views go (default <state dir>/logs).
	saveDir string
}

// newLogService wires the Cloud Logging client from the options. When logs
// cannot be offered (no project configured, no credentials) it returns a
// nil service and the reason (the console prefixes "logs are off: "),
// shown where the log keys are: the fleet view works without Cloud Logging.
func newLogService(ctx context.Context, l logsOptions) (s *logview.Service, off string, err error) {
	if len(l.projects) == 0 {
		return nil, "no Cloud Logging project (set --logs-project, [logs] projects or GOOGLE_CLOUD_PROJECT)", nil
	}
	if err := l.mapping.Validate(); err != nil {
		return nil, "", fmt.Errorf("config [logs]: %w", err)
	}
	s, err = logview.New(ctx, logview.Config{
		Projects:      l.projects,
		Endpoint:      l.endpoint,
		Insecure:      l.insecure,
		Mapping:       l.mapping,
		ListPerMinute: l.listPerMinute,
		Cap:           l.cap,
	})
	if err != nil {
		// Missing Application Default Credentials is the common case on a
		// bastion: say so in the console rather than refusing to start.
		return nil, err.Error(), nil
	}
	return s, "", nil
}

// logSaver returns the console's "save view" action: JSON Lines in dir,
// named for the view's title and the moment, readable by the user only
// (logs may hold secrets).
func logSaver(dir string) func(title string, entries []*logview.Entry) (string, error) {
	return func(title string, entries []*logview.Entry) (string, error) {
		if dir == "" {
			state, err := provision.DefaultStateDir()
			if err != nil {
				return "", err
			}
			dir = filepath.Join(state, "logs")
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return "", fmt.Errorf("creating the log save directory: %w", err)
		}
		name := fileSafe(title) + "-" + time.Now().UTC().Format("20060102T150405Z") + ".jsonl"
		path := filepath.Join(dir, name)
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return "", fmt.Errorf("saving the log view: %w", err)
		}
		if err := logview.Save(f, entries); err != nil {
			f.Close()
			os.Remove(path)
			return "", fmt.Errorf("saving the log view to %s: %w", path, err)
		}
		if err := f.Close(); err != nil {
			return "", fmt.Errorf("saving the log view to %s: %w", path, err)
		}
		return path, nil
	}
}

// fileSafe turns a view title (which holds untrusted node names) into a
// file-name fragment: letters, digits, '-', '_' and '.', at most 64 bytes.
func fileSafe(title string) string {
	var b strings.Builder
	for _, r := range title {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
		if b.Len() >= 64 {
			break
		}
	}
	s := strings.Trim(b.String(), "._")
	if s == "" {
		return "logs"
	}
	return s
}
