package roles

import "strings"

// LinkedNodes returns the nodes ("dc/name") whose generations a run with
// metadata meta applies (see RunLinks), in no particular order. A console
// that follows many nodes indexes its runs by node with it, so that each
// node's LatestRun looks at its own runs only.
func LinkedNodes(meta map[string]string) []string {
	var out []string
	for k := range meta {
		if key, ok := strings.CutPrefix(k, linkPrefix); ok && strings.Contains(key, "/") {
			out = append(out, key)
		}
	}
	return out
}
