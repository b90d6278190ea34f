package roles_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them (the
// concurrent changers, the recording proxy, the API client's transports).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
