// Package jobs runs export jobs: workers claim PENDING jobs from the
// database by taking a lease, generate the report straight into the blob
// store, and commit the artifact and its manifest.
package jobs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"gocloud.dev/blob"

	"github.com/exportd/exportd/ent"
	"github.com/exportd/exportd/internal/apikey"
	"github.com/exportd/exportd/internal/store"
	"github.com/exportd/exportd/reports"
)

// Config tunes a Runner.
type Config struct {
	Workers      int           // concurrent jobs in this process
	Lease        time.Duration // how long a claim lasts without a heartbeat
	PollInterval time.Duration // how often idle workers look for work
}

// Runner executes export jobs in this process.
type Runner struct {
	store  *store.Store
	bucket *blob.Bucket
	log    *slog.Logger
	cfg    Config
	owner  string
	wake   chan struct{}
}

// New returns a runner; call Run to start it.
func New(st *store.Store, bucket *blob.Bucket, log *slog.Logger, cfg Config) *Runner {
	if cfg.Workers <= 0 {
		cfg.Workers = 2
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 30 * time.Second
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	host, _ := os.Hostname()
	return &Runner{
		store:  st,
		bucket: bucket,
		log:    log,
		cfg:    cfg,
		owner:  host + "/" + strconv.Itoa(os.Getpid()) + "/" + apikey.RandomID("", 6),
		wake:   make(chan struct{}, 1),
	}
}

// Wake tells an idle worker that a job was queued.
func (r *Runner) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run works until ctx ends, then waits for running jobs to stop.
func (r *Runner) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for range r.cfg.Workers {
		wg.Go(func() { r.loop(ctx) })
	}
	wg.Wait()
}

func (r *Runner) loop(ctx context.Context) {
	t := time.NewTicker(r.cfg.PollInterval)
	defer t.Stop()
	for {
		for {
			j, err := r.store.ClaimJob(ctx, r.owner, r.cfg.Lease)
			if err != nil {
				if ctx.Err() == nil {
					r.log.Error("claim job", "err", err)
				}
				break
			}
			if j == nil {
				break
			}
			r.execute(ctx, j)
		}
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
		case <-t.C:
		}
	}
}

// execute runs one claimed job to COMPLETED or FAILED.
func (r *Runner) execute(ctx context.Context, j *ent.ExportJob) {
	log := r.log.With("job_id", j.ID, "tenant_id", j.TenantID, "attempt", j.Attempt)
	log.Info("export started", "report_type", j.ReportType, "format", j.Format)
	start := time.Now()
	art, err := r.generate(ctx, j)
	if errors.Is(err, store.ErrLeaseLost) {
		log.Warn("export lost its lease; another attempt owns it")
		return
	}
	if err != nil {
		if ctx.Err() != nil {
			// Shutting down: leave the lease to lapse so another worker resumes.
			log.Info("export interrupted by shutdown")
			return
		}
		log.Error("export failed", "err", err)
		if ferr := r.store.FailJob(context.WithoutCancel(ctx), j, failureMessage(err)); ferr != nil && !errors.Is(ferr, store.ErrLeaseLost) {
			log.Error("record failure", "err", ferr)
		}
		return
	}
	tenant, err := r.store.Tenant(ctx, j.TenantID)
	window := 7 * 24 * time.Hour
	if err == nil {
		window = time.Duration(tenant.DownloadWindowDays) * 24 * time.Hour
	}
	if err := r.store.CompleteJob(ctx, j, art, window); err != nil {
		log.Error("commit export", "err", err)
		return
	}
	log.Info("export completed", "rows", art.Rows, "bytes", art.Size, "duration", time.Since(start))
}

func failureMessage(err error) string {
	return "report generation failed: " + err.Error() + "; create the export again, and contact support if it keeps failing"
}

// ArtifactKey is where attempt n of a job writes its report. Each attempt has
// its own key, so a stale attempt can never overwrite the committed one.
func ArtifactKey(j *ent.ExportJob) string {
	return fmt.Sprintf("exports/%s/%s/attempt-%d/report.%s", j.TenantID, j.ID, j.Attempt, j.Format)
}

// generate writes the report to the blob store while heartbeating.
func (r *Runner) generate(ctx context.Context, j *ent.ExportJob) (store.Artifact, error) {
	tenant, err := r.store.Tenant(ctx, j.TenantID)
	if err != nil {
		return store.Artifact{}, err
	}
	watermark, err := r.store.LastSequence(ctx, j.TenantID)
	if err != nil {
		return store.Artifact{}, err
	}
	req := reports.Request{
		ReportType:         j.ReportType,
		Format:             j.Format,
		TenantID:           tenant.ID,
		TenantName:         tenant.Name,
		PeriodStart:        j.PeriodStart.UTC(),
		PeriodEnd:          j.PeriodEnd.UTC(),
		AppliedStart:       j.AppliedStart.UTC(),
		AppliedEnd:         j.AppliedEnd.UTC(),
		GeneratedAt:        r.store.Now().Truncate(time.Microsecond),
		Watermark:          watermark,
		GDPR:               tenant.GdprProfile,
		HIPAA:              tenant.HipaaProfile,
		RetentionDays:      tenant.AuditRetentionDays,
		DownloadWindowDays: tenant.DownloadWindowDays,
	}

	jobCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	var rows atomic.Int64
	started := time.Now()
	total := j.RowsTotal
	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		t := time.NewTicker(r.cfg.Lease / 3)
		defer t.Stop()
		for {
			select {
			case <-jobCtx.Done():
				return
			case <-t.C:
				done := rows.Load()
				if err := r.store.Heartbeat(jobCtx, j, r.cfg.Lease, done, max(total, done), eta(started, done, total)); err != nil {
					cancel(err)
					return
				}
			}
		}
	}()

	key := ArtifactKey(j)
	w, err := r.bucket.NewWriter(jobCtx, key, &blob.WriterOptions{ContentType: contentType(j.Format)})
	if err != nil {
		return store.Artifact{}, fmt.Errorf("open artifact writer: %w", err)
	}
	h := sha256.New()
	cw := &countingWriter{w: io.MultiWriter(w, h)}
	sum, genErr := reports.Generate(jobCtx, cw, req, r.store.Source(j.TenantID), func(n int64) { rows.Store(n) })
	if genErr != nil {
		// Closing a writer whose context is cancelled discards the upload.
		cancel(genErr)
		_ = w.Close()
		<-hbDone
		if cause := context.Cause(jobCtx); errors.Is(cause, store.ErrLeaseLost) {
			return store.Artifact{}, store.ErrLeaseLost
		}
		return store.Artifact{}, genErr
	}
	if err := w.Close(); err != nil {
		cancel(err)
		<-hbDone
		return store.Artifact{}, fmt.Errorf("commit artifact: %w", err)
	}
	cancel(nil)
	<-hbDone

	digest := hex.EncodeToString(h.Sum(nil))
	var chain string
	if sum.LastSequence > 0 {
		if chain, err = r.store.ChainHash(ctx, j.TenantID, sum.LastSequence); err != nil {
			return store.Artifact{}, fmt.Errorf("read chain hash: %w", err)
		}
	}
	m := reports.Manifest{
		ManifestVersion:  reports.ManifestVersion,
		JobID:            j.ID,
		ReportType:       j.ReportType,
		Format:           j.Format,
		TenantID:         j.TenantID,
		PeriodRequested:  reports.ManifestPeriod{Start: echo(req.PeriodStart), End: echo(req.PeriodEnd)},
		PeriodApplied:    reports.ManifestPeriod{Start: stamp(req.AppliedStart), End: stamp(req.AppliedEnd)},
		GeneratedAt:      stamp(req.GeneratedAt),
		AsOfSequence:     watermark,
		GeneratorVersion: reports.GeneratorVersion,
		CatalogVersion:   reports.CatalogVersion,
		Counts:           sum.Counts,
		FirstSequence:    sum.FirstSequence,
		LastSequence:     sum.LastSequence,
		ChainHash:        chain,
		Rows:             sum.Rows,
		ReportSHA256:     digest,
		ReportSize:       cw.n,
	}
	mb, err := json.Marshal(m)
	if err != nil {
		return store.Artifact{}, fmt.Errorf("encode manifest: %w", err)
	}
	return store.Artifact{Key: key, Size: cw.n, SHA256: digest, Manifest: mb, Rows: sum.Rows}, nil
}

func eta(started time.Time, done, total int64) time.Time {
	now := time.Now()
	if done <= 0 || total <= done {
		return now.Add(2 * time.Second)
	}
	per := time.Since(started) / time.Duration(done)
	return now.Add(per * time.Duration(total-done))
}

func contentType(format string) string {
	if format == reports.FormatCSV {
		return "text/csv; charset=utf-8"
	}
	return "application/json"
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000Z") }
func echo(t time.Time) string  { return t.UTC().Format(time.RFC3339Nano) }

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
