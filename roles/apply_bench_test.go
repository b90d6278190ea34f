package roles_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/fleetdeck/fleetdeck/roles"
)

// BenchmarkApplyBare measures one apply with the bare ansible-playbook
// (default forks) on 1 and on 10 real client agents in one run: each
// iteration moves every node between {web} and {web, api}, so every run
// writes or removes a file, validates and reloads. playbook-s is the
// ansible-playbook wall time, converged-s until the server's catalog shows
// every node's new services.
//
//	go test -run '^$' -bench BenchmarkApplyBare -benchtime 5x ./roles/
func BenchmarkApplyBare(b *testing.B) {
	for _, n := range []int{1, 10} {
		b.Run(fmt.Sprintf("agents=%d", n), func(b *testing.B) {
			c := startCluster(b, n)
			pb := playbook(b)
			web := &roles.Role{Name: "web", Port: 8080, Tags: []string{"prod"},
				Check: &roles.Check{HTTP: "http://{address}:8080/health", Interval: 10 * time.Second}}
			apiRole := &roles.Role{Name: "api", Port: 9090, Check: &roles.Check{TCP: "{address}:9090", Interval: 10 * time.Second}}
			sets := [][]*roles.Role{{web, apiRole}, {web}}
			want := []map[string][]string{{"fleetdeck-web": {"prod"}, "fleetdeck-api": {}}, {"fleetdeck-web": {"prod"}}}
			var playbookTime, convergeTime time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				var hosts []host
				for j := range n {
					hosts = append(hosts, c.host(b, j, sets[i%2], nil))
				}
				b.StartTimer()
				start := time.Now()
				r := runApply(b, pb, hosts)
				playbookTime += time.Since(start)
				if r.rc != 0 {
					b.Fatalf("rc %d\n%s", r.rc, r.out)
				}
				for j := range n {
					c.waitServices(b, c.clients[j].NodeName(), want[i%2])
				}
				convergeTime += time.Since(start)
			}
			b.ReportMetric(playbookTime.Seconds()/float64(b.N), "playbook-s/op")
			b.ReportMetric(convergeTime.Seconds()/float64(b.N), "converged-s/op")
		})
	}
}
