package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	auditv1 "github.com/exportd/exportd/gen/go/audit/v1"
	"github.com/exportd/exportd/gen/go/audit/v1/auditv1connect"
)

// seed writes the N events of the one tenant through the ingestion path.
func (b *bench) seed(ctx context.Context) error {
	var err error
	if b.tenant, b.key, err = b.newTenant(ctx, "bench"); err != nil {
		return err
	}
	b.logf("seeding %d events over %s … %s through exportd seed-demo", b.o.events, quarterStart.Format(time.DateOnly), quarterEnd.Format(time.DateOnly))
	start := time.Now()
	if _, err := b.cli(ctx, "seed-demo", "--tenant", b.tenant, "--events", strconv.Itoa(b.o.events),
		"--from", quarterStart.Format(time.RFC3339), "--to", quarterEnd.Format(time.RFC3339)); err != nil {
		return err
	}
	took := time.Since(start)
	b.res.add(figure{Key: "seed_events_per_s", Name: "seed: events/s (exportd seed-demo, batches of 5,000)",
		Value: float64(b.o.events) / took.Seconds(), Unit: "events/s"})
	// Fresh statistics, as autovacuum would have them on a live system.
	if err := b.psql(ctx, "VACUUM ANALYZE audit_events"); err != nil {
		return err
	}
	return b.admin.QueryRowContext(ctx, "SELECT event_seq FROM "+b.schema+".tenants WHERE id = $1", b.tenant).Scan(&b.wm)
}

// copySQL is the baseline: the SOC 2 report's audit_log query (see
// store.source.Events), same columns, same rows, same order, as CSV.
func (b *bench) copySQL(to time.Time) string {
	return fmt.Sprintf("COPY (SELECT sequence, occurred_at, actor_id, actor_type, action, resource_type, resource_id, outcome, category, phi, ip, user_agent, request_id, metadata "+
		"FROM audit_events WHERE tenant_id = '%s' AND occurred_at >= '%s' AND occurred_at < '%s' AND sequence <= %d "+
		"ORDER BY occurred_at, sequence) TO STDOUT WITH CSV",
		b.tenant, quarterStart.Format(time.RFC3339Nano), to.Format(time.RFC3339Nano), b.wm)
}

// exports measures, at N and N/2: the COPY baseline, then SOC 2 CSV and
// JSON exports with exportd's peak RSS, restarting exportd before each so
// VmHWM belongs to that export alone.
func (b *bench) exports(ctx context.Context) error {
	sizes := []struct {
		label string
		to    time.Time
	}{{"N", quarterEnd}, {"N/2", halfEnd}}
	for _, sz := range sizes {
		var rows int64
		if err := b.admin.QueryRowContext(ctx, "SELECT count(*) FROM "+b.schema+".audit_events WHERE tenant_id = $1 AND occurred_at >= $2 AND occurred_at < $3 AND sequence <= $4",
			b.tenant, quarterStart, sz.to, b.wm).Scan(&rows); err != nil {
			return fmt.Errorf("count rows: %w", err)
		}
		// COPY, CSV and JSON take turns, run after run, so a machine whose
		// load drifts weighs on each figure alike.
		b.logf("%s = %d events: COPY, SOC 2 CSV, SOC 2 JSON, ×%d", sz.label, rows, b.o.runs)
		var copies []float64
		secs := map[string][]float64{}
		peaks := map[string]float64{}
		for range b.o.runs {
			start := time.Now()
			if err := b.psql(ctx, b.copySQL(sz.to)); err != nil {
				return err
			}
			copies = append(copies, time.Since(start).Seconds())
			for _, format := range []string{"csv", "json"} {
				r, err := b.measuredExport(ctx, format, sz.to)
				if err != nil {
					return err
				}
				secs[format] = append(secs[format], r.seconds)
				peaks[format] = max(peaks[format], float64(r.peakRSS))
				if sz.label == "N" && format == "csv" {
					b.csvJob = r.jobID
				}
			}
		}
		copySecs := median(copies)
		b.res.add(figure{Key: "copy_s_" + sz.label, Name: fmt.Sprintf("COPY … TO STDOUT CSV of the audit_log rows, %s=%d (psql)", sz.label, rows), Value: copySecs, Unit: "s"})
		for _, format := range []string{"csv", "json"} {
			key := format + "_" + sz.label
			took := median(secs[format])
			b.res.add(figure{Key: "export_s_" + key, Name: fmt.Sprintf("SOC 2 %s export, CreateExport → COMPLETED, %s", format, sz.label), Value: took, Unit: "s"})
			ratio := figure{Key: "export_vs_copy_" + key, Name: fmt.Sprintf("SOC 2 %s export ÷ COPY, %s", format, sz.label), Value: took / copySecs, Unit: "×"}
			if sz.label == "N" {
				limit := 1.5
				if format == "json" {
					limit = 2
				}
				ratio = ratio.target(le, limit)
			}
			b.res.add(ratio)
			b.res.add(figure{Key: "peak_rss_mib_" + key, Name: fmt.Sprintf("exportd peak RSS (VmHWM), SOC 2 %s, %s", format, sz.label),
				Value: peaks[format] / (1 << 20), Unit: "MiB"}.target(le, 150))
		}
	}
	for _, format := range []string{"csv", "json"} {
		n, h := b.res.value("peak_rss_mib_"+format+"_N"), b.res.value("peak_rss_mib_"+format+"_N/2")
		b.res.add(figure{Key: "peak_rss_growth_" + format, Name: fmt.Sprintf("peak RSS growth N/2 → N, SOC 2 %s", format),
			Value: (n/h - 1) * 100, Unit: "%"}.target(le, 15))
	}
	return nil
}

type exportRun struct {
	jobID   string
	seconds float64
	peakRSS int64
}

// measuredExport starts a fresh exportd, runs one SOC 2 export of
// [quarterStart, to) to completion, reads the server's peak RSS and stops it.
// The time is the job's own, created_at → completed_at, stamped by the
// server: the client's notification (WatchExport polls every 250 ms) is not
// part of the work.
func (b *bench) measuredExport(ctx context.Context, format string, to time.Time) (exportRun, error) {
	var r exportRun
	srv, err := b.startServer(ctx, b.dsn, 1)
	if err != nil {
		return r, err
	}
	defer srv.stop()
	r.jobID, err = b.createExport(ctx, srv.url, b.key, format, to)
	if err != nil {
		return r, err
	}
	job, err := b.waitExport(ctx, srv.url, b.key, r.jobID)
	if err != nil {
		return r, fmt.Errorf("%w (server log: %s)", err, srv.logTail())
	}
	if r.peakRSS, err = srv.peakRSS(); err != nil {
		return r, err
	}
	r.seconds = job.GetCompletedAt().AsTime().Sub(job.GetCreatedAt().AsTime()).Seconds()
	return r, nil
}

func exportClient(base string) auditv1connect.ExportServiceClient {
	return auditv1connect.NewExportServiceClient(http.DefaultClient, base)
}

func (b *bench) createExport(ctx context.Context, base, key, format string, to time.Time) (string, error) {
	req := connect.NewRequest(&auditv1.CreateExportRequest{ReportType: "soc2", Format: format,
		StartDate: timestamppb.New(quarterStart), EndDate: timestamppb.New(to.Add(-time.Second))})
	req.Header().Set("X-API-Key", key)
	res, err := exportClient(base).CreateExport(ctx, req)
	if err != nil {
		return "", fmt.Errorf("create export: %w", err)
	}
	return res.Msg.GetJobId(), nil
}

// waitExport follows the job with WatchExport until it ends, and returns it
// as GetExport shows it.
func (b *bench) waitExport(ctx context.Context, base, key, jobID string) (*auditv1.ExportJob, error) {
	c := exportClient(base)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	defer cancel()
	wreq := connect.NewRequest(&auditv1.WatchExportRequest{JobId: jobID})
	wreq.Header().Set("X-API-Key", key)
	stream, err := c.WatchExport(ctx, wreq)
	if err != nil {
		return nil, fmt.Errorf("watch export: %w", err)
	}
	for stream.Receive() {
	}
	if err := stream.Err(); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("watch export: %w", err)
	}
	_ = stream.Close()
	greq := connect.NewRequest(&auditv1.GetExportRequest{JobId: jobID})
	greq.Header().Set("X-API-Key", key)
	res, err := c.GetExport(ctx, greq)
	if err != nil {
		return nil, fmt.Errorf("get export: %w", err)
	}
	j := res.Msg.GetExport()
	if j.GetStatus() != auditv1.ExportStatus_COMPLETED {
		return nil, fmt.Errorf("export %s ended %s: %s", jobID, j.GetStatus(), j.GetError())
	}
	return j, nil
}

// median runs fn o.runs times and returns the median.
func (b *bench) median(fn func() (float64, error)) (float64, error) {
	vs := make([]float64, 0, b.o.runs)
	for range b.o.runs {
		v, err := fn()
		if err != nil {
			return 0, err
		}
		vs = append(vs, v)
	}
	return median(vs), nil
}

func median(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	vs = append([]float64(nil), vs...)
	sort.Float64s(vs)
	if len(vs)%2 == 1 {
		return vs[len(vs)/2]
	}
	return (vs[len(vs)/2-1] + vs[len(vs)/2]) / 2
}

// artifactPath finds a job's committed artifact in the data folder's
// local bucket.
func (b *bench) artifactPath(jobID string) (string, error) {
	m, err := filepath.Glob(filepath.Join(b.dir, "data", "artifacts", "exports", "*", jobID, "*", "report.csv"))
	if err != nil || len(m) == 0 {
		return "", fmt.Errorf("find the artifact of %s in %s: none", jobID, filepath.Join(b.dir, "data", "artifacts"))
	}
	sort.Strings(m)
	if _, err := os.Stat(m[len(m)-1]); err != nil {
		return "", fmt.Errorf("find artifact: %w", err)
	}
	return m[len(m)-1], nil
}
