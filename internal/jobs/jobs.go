// Package jobs runs export jobs: workers claim due jobs from the database by
// taking a lease they renew by heartbeat, generate the report straight into
// the blob store under a key of their own attempt, and commit the artifact
// and its manifest with a compare-and-set on the attempt. Failed attempts are
// retried with exponential backoff and jitter unless the failure is
// permanent; periodic sweepers, leased so one replica runs each at a time,
// expire artifacts past their download window and delete the blobs of
// attempts that never committed.
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
	"gocloud.dev/gcerrors"

	"github.com/exportd/exportd/ent"
	"github.com/exportd/exportd/internal/apikey"
	"github.com/exportd/exportd/internal/fault"
	"github.com/exportd/exportd/internal/store"
	"github.com/exportd/exportd/reports"
)

// Config tunes a Runner.
type Config struct {
	Workers      int           // concurrent jobs in this process
	Lease        time.Duration // how long a claim lasts without a heartbeat
	PollInterval time.Duration // how often idle workers look for work
	// MaxRunningPerTenant caps one tenant's jobs running at once across all
	// replicas; 0 means no cap.
	MaxRunningPerTenant int
	// RetryBase is the delay before the first retry; each further retry
	// doubles it, up to RetryMax, with jitter.
	RetryBase time.Duration
	RetryMax  time.Duration
	// SweepInterval is how often the expiry and orphan sweepers run (on one
	// replica at a time); negative disables them.
	SweepInterval time.Duration
	// Owner names this process in job leases; default host/pid/random.
	Owner string
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
	if cfg.RetryBase <= 0 {
		cfg.RetryBase = 5 * time.Second
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = 5 * time.Minute
	}
	if cfg.SweepInterval == 0 {
		cfg.SweepInterval = time.Minute
	}
	if cfg.Owner == "" {
		host, _ := os.Hostname()
		cfg.Owner = host + "/" + strconv.Itoa(os.Getpid()) + "/" + apikey.RandomID("", 6)
	}
	return &Runner{
		store:  st,
		bucket: bucket,
		log:    log,
		cfg:    cfg,
		owner:  cfg.Owner,
		wake:   make(chan struct{}, 1),
	}
}

// Owner is the name this runner takes leases under.
func (r *Runner) Owner() string { return r.owner }

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
	if r.cfg.SweepInterval > 0 {
		wg.Go(func() { r.maintain(ctx) })
	}
	wg.Wait()
}

func (r *Runner) loop(ctx context.Context) {
	t := time.NewTicker(r.cfg.PollInterval)
	defer t.Stop()
	for {
		for {
			j, err := r.store.ClaimJob(ctx, r.owner, r.cfg.Lease, r.cfg.MaxRunningPerTenant)
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

// execute runs one claimed attempt of a job to COMPLETED, to a retry, or to
// FAILED.
func (r *Runner) execute(ctx context.Context, j *ent.ExportJob) {
	log := r.log.With("job_id", j.ID, "tenant_id", j.TenantID, "attempt", j.Attempt)
	log.Info("export started", "report_type", j.ReportType, "format", j.Format)
	start := time.Now()
	art, err := r.generate(ctx, j)
	if errors.Is(err, store.ErrLeaseLost) {
		log.Warn("export stopped: it was cancelled or another attempt took it over")
		r.discard(ctx, j, log)
		return
	}
	if err != nil {
		if ctx.Err() != nil {
			// Shutting down: hand the job over now rather than when the
			// lease would lapse.
			log.Info("export interrupted by shutdown; released for another worker")
			r.discard(ctx, j, log)
			if err := r.store.ReleaseJob(context.WithoutCancel(ctx), j); err != nil && !errors.Is(err, store.ErrLeaseLost) {
				log.Warn("release export", "err", err)
			}
			return
		}
		r.fail(ctx, j, err, log)
		return
	}
	window := 7 * 24 * time.Hour
	if tenant, err := r.store.Tenant(ctx, j.TenantID); err == nil {
		window = time.Duration(tenant.DownloadWindowDays) * 24 * time.Hour
	}
	if err := r.store.CompleteJob(context.WithoutCancel(ctx), j, art, window); err != nil {
		if errors.Is(err, store.ErrLeaseLost) {
			log.Warn("export finished after another attempt took it over; its artifact is discarded")
			r.discard(ctx, j, log)
			return
		}
		// Whether the commit happened is unknown: keep the artifact (the
		// orphan sweeper decides from the job row) and retry if it did not.
		r.fail(ctx, j, fmt.Errorf("commit export: %w", err), log)
		return
	}
	log.Info("export completed", "rows", art.Rows, "bytes", art.Size, "duration", time.Since(start))
}

// fail retries the attempt later when its error is transient and attempts
// remain, and otherwise ends the job FAILED with a reason a person can act on.
func (r *Runner) fail(ctx context.Context, j *ent.ExportJob, err error, log *slog.Logger) {
	ctx = context.WithoutCancel(ctx)
	reason := Reason(err)
	if !IsPermanent(err) && j.Attempt < j.MaxAttempts {
		next := r.store.Now().Add(Backoff(r.cfg.RetryBase, r.cfg.RetryMax, j.Attempt))
		msg := fmt.Sprintf("attempt %d of %d failed: %s; retrying at %s", j.Attempt, j.MaxAttempts, reason, next.UTC().Format(time.RFC3339))
		log.Warn("export attempt failed; will retry", "err", err, "next_attempt_at", next)
		if rerr := r.store.RetryJob(ctx, j, msg, next); rerr != nil && !errors.Is(rerr, store.ErrLeaseLost) {
			log.Error("requeue export", "err", rerr)
		}
		return
	}
	var msg string
	if IsPermanent(err) {
		msg = reason
	} else {
		msg = fmt.Sprintf("failed after %d attempts: %s; create the export again, and contact support if it keeps failing", j.Attempt, reason)
	}
	log.Error("export failed", "err", err, "permanent", IsPermanent(err))
	if ferr := r.store.FailJob(ctx, j, msg); ferr != nil && !errors.Is(ferr, store.ErrLeaseLost) {
		log.Error("record failure", "err", ferr)
	}
}

// discard deletes what this attempt wrote. Each attempt has a key of its
// own, so this never touches the artifact of another attempt.
func (r *Runner) discard(ctx context.Context, j *ent.ExportJob, log *slog.Logger) {
	if err := r.bucket.Delete(context.WithoutCancel(ctx), ArtifactKey(j)); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
		log.Warn("delete artifact of abandoned attempt; the orphan sweeper will retry", "err", err)
	}
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
	if !tenant.CompliancePack {
		return store.Artifact{}, Permanent(fault.New(fault.FailedPrecondition,
			"the tenant no longer has the Compliance Pack add-on; enable it from Settings › Billing › Add-ons in the console (or ask your account manager), then create the export again"))
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
		t := time.NewTicker(heartbeatEvery(r.cfg.Lease))
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

// heartbeatEvery renews a lease three times per period, and at least every
// two seconds so that a cancelled job stops promptly.
func heartbeatEvery(lease time.Duration) time.Duration {
	return min(lease/3, 2*time.Second)
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
