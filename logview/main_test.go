package logview

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine (a tail, a lister, a
// gRPC connection) outlives them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
