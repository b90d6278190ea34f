package fleet

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/consul/api"
)

// Once reads one complete snapshot of the fleet — every watched datacenter
// fully loaded — and stops. It is for one-shot readers such as the
// Ansible inventory, which must fail clearly rather than wait out an
// outage: the first error Consul gives ends it.
func Once(ctx context.Context, client *api.Client, cfg Config) (*Snapshot, error) {
	// Plain reads, not blocking queries: a blocking query that has
	// answered would come back for more, re-reading a ~1 MB service at 10k
	// nodes each time its wait ends, and one still waiting when we return
	// keeps a Consul connection slot until its wait time is over.
	cfg.oneShot = true
	w := NewWatcher(client, cfg)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = w.Run(ctx) // returns when ctx ends; errors are in the snapshots
	}()
	defer func() {
		cancel()
		<-done
	}()
	s := w.Current()
	for {
		if complete(s) {
			return s, nil
		}
		if st := s.Status(); st.Status == Degraded {
			return nil, errors.New(st.LastError)
		}
		next, err := w.Next(ctx, s.Version)
		if err != nil {
			return nil, fmt.Errorf("reading the fleet from Consul: %w", err)
		}
		s = next
	}
}

// complete reports whether every datacenter in s has loaded.
func complete(s *Snapshot) bool {
	if len(s.Conn) == 0 {
		return false
	}
	for _, c := range s.Conn {
		if c.Status != Connected && c.Status != Stale {
			return false
		}
	}
	return true
}
