package logserver

import (
	"context"
	"testing"

	logging "cloud.google.com/go/logging/apiv2"
)

// StartTest starts a server for a test or benchmark, with a real apiv2
// client connected to it; both are closed when it ends, and failing to
// start fails it.
func StartTest(tb testing.TB, opts Options) (*Server, *logging.Client) {
	tb.Helper()
	ctx := context.Background()
	srv, err := Start(ctx, opts)
	if err != nil {
		tb.Fatalf("starting the local Cloud Logging endpoint: %v", err)
	}
	c, err := logging.NewClient(ctx, srv.ClientOptions()...)
	if err != nil {
		_ = srv.Close()
		tb.Fatalf("creating a logging client for the local endpoint: %v", err)
	}
	tb.Cleanup(func() {
		if err := c.Close(); err != nil {
			tb.Errorf("closing the logging client: %v", err)
		}
		if err := srv.Close(); err != nil {
			tb.Errorf("closing the local Cloud Logging endpoint: %v", err)
		}
	})
	return srv, c
}
