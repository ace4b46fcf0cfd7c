package store_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/exportd/exportd/internal/demo"
	"github.com/exportd/exportd/internal/store/storetest"
	"github.com/exportd/exportd/reports"
)

// BenchmarkSOC2CSVPostgres generates a SOC 2 CSV report from PostgreSQL at
// two sizes and reports rows/s and the peak heap during generation: the heap
// must stay flat as the period grows. EXPORTD_BENCH_EVENTS sets the larger
// size (default 1,000,000); the smaller is a quarter of it.
func BenchmarkSOC2CSVPostgres(b *testing.B) { benchmarkSOC2Postgres(b, reports.FormatCSV) }

// BenchmarkSOC2JSONPostgres is BenchmarkSOC2CSVPostgres for the JSON report.
func BenchmarkSOC2JSONPostgres(b *testing.B) { benchmarkSOC2Postgres(b, reports.FormatJSON) }

func benchmarkSOC2Postgres(b *testing.B, format string) {
	n := 1_000_000
	if v := os.Getenv("EXPORTD_BENCH_EVENTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	st := storetest.Open(b, "postgres")
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	to := from.AddDate(0, 3, 0)
	for _, size := range []int{n / 4, n} {
		tn, err := st.CreateTenant(ctx, fmt.Sprintf("bench-%d", size), true, false)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := demo.Seed(ctx, st, tn.ID, demo.Options{Events: size, From: from, To: to, Seed: 1}); err != nil {
			b.Fatal(err)
		}
		if _, err := st.RawDB().ExecContext(ctx, "ANALYZE audit_events"); err != nil {
			b.Fatal(err)
		}
		wm, err := st.LastSequence(ctx, tn.ID)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("events=%d", size), func(b *testing.B) {
			req := reports.Request{ReportType: reports.TypeSOC2, Format: format, TenantID: tn.ID,
				PeriodStart: from, PeriodEnd: to.Add(-time.Second), AppliedStart: from, AppliedEnd: to,
				GeneratedAt: time.Now(), Watermark: wm}
			var peak atomic.Uint64
			stop := sampleHeap(&peak)
			defer stop()
			runtime.GC()
			b.ResetTimer()
			var rows int64
			for b.Loop() {
				sum, err := reports.Generate(ctx, io.Discard, req, st.Source(tn.ID), nil)
				if err != nil {
					b.Fatal(err)
				}
				rows = sum.Rows
			}
			b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
			b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MiB")
		})
	}
}

// sampleHeap records the largest live heap seen until stop is called.
func sampleHeap(peak *atomic.Uint64) (stop func()) {
	done := make(chan struct{})
	go func() {
		var ms runtime.MemStats
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > peak.Load() {
					peak.Store(ms.HeapInuse)
				}
			}
		}
	}()
	return func() { close(done) }
}
