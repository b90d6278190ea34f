//go:build !unix

package consulagent

import "context"

// lockFile is a no-op where flock is unavailable: concurrent builds then
// duplicate work, but the atomic rename in build keeps the result correct.
func lockFile(ctx context.Context, path string, onWait func()) (unlock func(), err error) {
	return func() {}, ctx.Err()
}
