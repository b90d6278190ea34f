package deploy_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them (a
// renewer left behind by a Resign would).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
