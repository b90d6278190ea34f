package demoplaybooks_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/fleetdeck/fleetdeck/provision"
)

// TestMain fails the package's tests if any goroutine outlives them.
func TestMain(m *testing.M) {
	provision.SuperviseMain()
	goleak.VerifyTestMain(m)
}
