package store_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/exportd/exportd/internal/store"
	"github.com/exportd/exportd/internal/store/storetest"
)

// BenchmarkIngest writes batches of 1,000 events, each with a client event
// id and metadata, into one tenant and reports events per second.
func BenchmarkIngest(b *testing.B) {
	for _, d := range storetest.Dialects {
		b.Run(d, func(b *testing.B) {
			st := storetest.Open(b, d)
			ctx := context.Background()
			tn, err := st.CreateTenant(ctx, "Bench", true, false)
			if err != nil {
				b.Fatal(err)
			}
			const size = 1000
			batches := make([][]store.NewEvent, b.N)
			for n := range batches {
				batches[n] = batch(fmt.Sprintf("b%d", n), n*size, size)
				for i := range batches[n] {
					if i%10 == 0 {
						batches[n][i].Metadata = map[string]any{"reason": "scheduled review", "ticket": "SEC-1234"}
					}
				}
			}
			b.ResetTimer()
			for n := range b.N {
				if _, err := st.Ingest(ctx, tn.ID, batches[n]); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkIngestParallel writes batches of 1,000 events from several
// writers at once, each to its own tenant (writers to one tenant take turns
// on its row lock), and reports the total events per second.
func BenchmarkIngestParallel(b *testing.B) {
	for _, d := range storetest.Dialects {
		b.Run(d, func(b *testing.B) {
			st := storetest.Open(b, d)
			ctx := context.Background()
			const size = 1000
			var next atomic.Int64
			b.SetParallelism(2)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				tn, err := st.CreateTenant(ctx, "Bench", true, false)
				if err != nil {
					b.Error(err)
					return
				}
				for pb.Next() {
					n := int(next.Add(1))
					if _, err := st.Ingest(ctx, tn.ID, batch(fmt.Sprintf("b%d", n), n*size, size)); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
