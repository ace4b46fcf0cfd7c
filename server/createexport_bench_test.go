package server_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	auditv1 "github.com/exportd/exportd/gen/go/audit/v1"
	"github.com/exportd/exportd/gen/go/audit/v1/auditv1connect"
	"github.com/exportd/exportd/server"
	"github.com/exportd/exportd/server/servertest"
)

// BenchmarkCreateExport runs CreateExport on PostgreSQL as make bench's
// load does, in process so a CPU profile sees the server: 16 clients, one
// tenant each (Compliance Pack, an auditor key, a seeded quarter), workers
// paused and no rate limit. It reports calls/s and the p50 and p99 latency.
//
//	go test ./server/ -run '^$' -bench CreateExport -benchtime 4000x
func BenchmarkCreateExport(b *testing.B) {
	const clients = 16
	env := servertest.Start(b, "postgres", servertest.Options{NoWorkers: true, Server: server.Config{RateLimit: -1}})
	var cs []auditv1connect.ExportServiceClient
	for i := range clients {
		tn := env.Tenant(b, fmt.Sprintf("Load %d", i), true)
		env.Seed(b, tn, 200, periodFrom, periodTo)
		key := env.Key(b, tn, "auditor", fmt.Sprintf("auditor%d@example.com", i))
		cs = append(cs, auditv1connect.NewExportServiceClient(env.Client, env.URL, withKey(key)))
	}
	call := func(c auditv1connect.ExportServiceClient) error {
		_, err := c.CreateExport(context.Background(), connect.NewRequest(&auditv1.CreateExportRequest{
			ReportType: "soc2", Format: "csv",
			StartDate: timestamppb.New(periodFrom), EndDate: timestamppb.New(periodTo.Add(-time.Second)),
		}))
		return err
	}
	for _, c := range cs { // warm up connections and caches
		if err := call(c); err != nil {
			b.Fatal(err)
		}
	}
	var (
		next atomic.Int64
		mu   sync.Mutex
		lat  []time.Duration
		wg   sync.WaitGroup
		fail atomic.Value
	)
	b.ResetTimer()
	start := time.Now()
	for _, c := range cs {
		wg.Go(func() {
			var mine []time.Duration
			for next.Add(1) <= int64(b.N) {
				t0 := time.Now()
				if err := call(c); err != nil {
					fail.Store(err)
					return
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if err, ok := fail.Load().(error); ok {
		b.Fatal(err)
	}
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "calls/s")
	b.ReportMetric(q(0.50), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
}
