// Command consulbin prints the path of the Consul agent binary that
// fleetdeck's tests and demo use, building tools/consul first if needed
// (progress on stderr). The project's test command runs it before
// `go test` so the one-off ~3 minute build is not charged to a test's
// timeout:
//
//	go run ./internal/consulagent/cmd/consulbin
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/fleetdeck/fleetdeck/internal/consulagent"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	bin, err := consulagent.Binary(ctx, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(bin)
}
