package notify

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: a
// retry's timer, Multi's sends, or a client connection to a receiver.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
