package reports_test

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/exportd/exportd/reports"
	"github.com/exportd/exportd/reports/reportstest"
)

func benchmarkReport(b *testing.B, typ, format string) {
	src := reportstest.Synthetic{N: 100_000, Start: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	req := reportstest.Request(typ, format)
	req.AppliedEnd = src.Start.Add(time.Duration(src.N) * time.Second)
	req.Watermark = src.N
	var rows int64
	b.ReportAllocs()
	start := time.Now()
	for b.Loop() {
		sum, err := reports.Generate(context.Background(), io.Discard, req, src, nil)
		if err != nil {
			b.Fatal(err)
		}
		rows += sum.Rows
	}
	b.ReportMetric(float64(rows)/time.Since(start).Seconds(), "rows/s")
}

// BenchmarkSOC2CSV generates a SOC 2 CSV report over 100k synthetic events.
func BenchmarkSOC2CSV(b *testing.B) { benchmarkReport(b, reports.TypeSOC2, reports.FormatCSV) }

// BenchmarkSOC2JSON is the JSON counterpart of BenchmarkSOC2CSV.
func BenchmarkSOC2JSON(b *testing.B) { benchmarkReport(b, reports.TypeSOC2, reports.FormatJSON) }

// BenchmarkHIPAACSV exercises the multi-pass evidence merge.
func BenchmarkHIPAACSV(b *testing.B) { benchmarkReport(b, reports.TypeHIPAA, reports.FormatCSV) }
