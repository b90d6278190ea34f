package logserver_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	logging "cloud.google.com/go/logging/apiv2"
	"cloud.google.com/go/logging/apiv2/loggingpb"
	"google.golang.org/api/iterator"
	"google.golang.org/genproto/googleapis/api/monitoredres"
	ltype "google.golang.org/genproto/googleapis/logging/type"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/fleetdeck/fleetdeck/internal/logserver"
)

// A test starts the server, points the real apiv2 client at it, writes
// entries and reads them back with a filter.
func Example() {
	ctx := context.Background()
	srv, err := logserver.Start(ctx, logserver.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	client, err := logging.NewClient(ctx, srv.ClientOptions()...)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	now := time.Now()
	srv.Add(&loggingpb.LogEntry{
		LogName:   "projects/demo/logs/syslog",
		Resource:  &monitoredres.MonitoredResource{Type: "gce_instance", Labels: map[string]string{"instance_id": "web-17"}},
		Timestamp: timestamppb.New(now.Add(-time.Minute)),
		Severity:  ltype.LogSeverity_ERROR,
		Payload:   &loggingpb.LogEntry_TextPayload{TextPayload: "upstream timed out"},
	})
	it := client.ListLogEntries(ctx, &loggingpb.ListLogEntriesRequest{
		ResourceNames: []string{"projects/demo"},
		Filter: fmt.Sprintf(`(timestamp>=%q) AND (resource.labels.instance_id="web-17") AND (severity>=ERROR)`,
			now.Add(-5*time.Minute).UTC().Format(time.RFC3339)),
		PageSize: 1000,
	})
	for {
		e, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(e.GetSeverity(), e.GetTextPayload())
	}
	// Output: ERROR upstream timed out
}
