package logview

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
)

// Save writes entries as JSON Lines, one object per entry with all its
// fields (timestamps in RFC 3339 UTC, severity by name, the payload as a
// JSON value). Strings are written as received, JSON-escaped: ASCII
// control characters (ESC included) become \u escapes and invalid UTF-8
// becomes U+FFFD, so the file holds no raw escape sequences.
func Save(w io.Writer, entries []*Entry) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	for i, e := range entries {
		if e == nil {
			continue
		}
		err := enc.Encode(savedEntry{
			InsertID:       e.InsertID,
			Project:        e.Project,
			LogName:        e.LogName,
			Time:           rfc3339(e.Time),
			Received:       rfc3339(e.Received),
			Severity:       e.Severity.String(),
			Node:           e.Node,
			ResourceType:   e.ResourceType,
			ResourceLabels: e.ResourceLabels,
			Labels:         e.Labels,
			Context:        e.Context,
			Text:           e.Text,
			Payload:        savedPayload(e.Payload),
		})
		if err != nil {
			return fmt.Errorf("logview: saving entry %d: %w", i, err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("logview: saving entries: %w", err)
	}
	return nil
}
