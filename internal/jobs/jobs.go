// Package jobs runs export jobs: workers claim due jobs from the database by
// taking a lease they renew by heartbeat, generate the report straight into
// the blob store under a key of their own attempt, and commit the artifact
// and its signed manifest with a compare-and-set on the attempt. Failed
// attempts are retried with exponential backoff and jitter unless the
// failure is permanent; periodic sweepers, leased so one replica runs each at
// a time, expire artifacts past their download window and delete the blobs
// of attempts that never committed.
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

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	"github.com/exportd/exportd/internal/apikey"
	"github.com/exportd/exportd/internal/fault"
	"github.com/exportd/exportd/internal/store"
	"github.com/exportd/exportd/internal/telemetry"
	"github.com/exportd/exportd/reports"
)

// Config tunes a Runner.
type Config struct {
	Workers      int           // concurrent jobs in this process
	Lease        time.Duration // how long a claim lasts without a heartbeat
	PollInterval time.Duration // how often idle workers look for work
	// Telemetry traces each job's stages and meters jobs; nil records
	// nothing.
	Telemetry *telemetry.Telemetry
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
	// Owner names this process in job leases; default host/pid/random, or
	// ReplicaID/pid/random.
	Owner string
	// ReplicaID names the replica this process is, stably across its
	// restarts (a StatefulSet pod's name): when set, it begins the lease
	// owner, and Run first releases the jobs a previous process of the
	// same replica still held, instead of leaving them until their leases
	// lapse. Two live processes must never share one.
	ReplicaID string
	// Transport is how this process serves its API, stated in reports
	// (HIPAA transmission security).
	Transport reports.Transport
}

// Store is what the runner needs of the job queue and the event log;
// *store.Store is one.
type Store interface {
	Now() time.Time
	ClaimJob(ctx context.Context, owner string, lease time.Duration, maxRunningPerTenant int) (*store.Job, error)
	Heartbeat(ctx context.Context, j *store.Job, lease time.Duration, rowsDone, rowsTotal int64, eta time.Time) error
	CompleteJob(ctx context.Context, j *store.Job, a store.Artifact, window time.Duration) error
	FailJob(ctx context.Context, j *store.Job, msg string) error
	RetryJob(ctx context.Context, j *store.Job, msg string, next time.Time) error
	ReleaseJob(ctx context.Context, j *store.Job) error
	ReleaseOwnerJobs(ctx context.Context, prefix, owner string) ([]*store.Job, error)
	ExpireJobs(ctx context.Context, limit int) ([]*store.Job, error)
	JobByID(ctx context.Context, id string) (*store.Job, error)
	TryLease(ctx context.Context, name, owner string, ttl time.Duration) (bool, error)
	Tenant(ctx context.Context, id string) (*store.Tenant, error)
	LastSequence(ctx context.Context, tenantID string) (int64, error)
	ChainHash(ctx context.Context, tenantID string, seq int64) (string, error)
	Source(tenantID string) reports.Source
}

// Runner executes export jobs in this process.
type Runner struct {
	store  Store
	bucket *blob.Bucket
	log    *slog.Logger
	cfg    Config
	owner  string
	wake   chan struct{}
	signer Signer
	tracer trace.Tracer
}

// Signer signs manifests.
type Signer interface {
	Sign(m *reports.Manifest) error
}

// New returns a runner; call Run to start it.
func New(st Store, bucket *blob.Bucket, log *slog.Logger, cfg Config) *Runner {
	if cfg.Workers <= 0 {
		cfg.Workers = 2
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 30 * time.Second
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.Telemetry == nil {
		cfg.Telemetry = telemetry.Nop()
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
		name := cfg.ReplicaID
		if name == "" {
			name, _ = os.Hostname()
		}
		cfg.Owner = name + "/" + strconv.Itoa(os.Getpid()) + "/" + apikey.RandomID("", 6)
	}
	return &Runner{
		store:  st,
		bucket: bucket,
		log:    log,
		cfg:    cfg,
		owner:  cfg.Owner,
		wake:   make(chan struct{}, 1),
		tracer: cfg.Telemetry.Tracer.Tracer("github.com/exportd/exportd/internal/jobs"),
	}
}

// SignWith makes the runner sign every manifest it commits.
func (r *Runner) SignWith(s Signer) { r.signer = s }

// Owner is the name this runner takes leases under.
func (r *Runner) Owner() string { return r.owner }

// Wake tells an idle worker that a job was queued.
func (r *Runner) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run works until ctx ends, then waits for running jobs to stop. With a
// ReplicaID it first releases what a previous process of the replica held.
func (r *Runner) Run(ctx context.Context) {
	r.releasePrevious(ctx)
	var wg sync.WaitGroup
	for range r.cfg.Workers {
		wg.Go(func() { r.loop(ctx) })
	}
	if r.cfg.SweepInterval > 0 {
		wg.Go(func() { r.maintain(ctx) })
	}
	wg.Wait()
}

// releasePrevious puts back in the queue the jobs that a previous process of
// this replica held: it died (it would have released them on a clean
// shutdown), so nothing runs them, and waiting for their leases to lapse
// would only delay them. Not a failure of the jobs. Without a ReplicaID
// nothing tells this replica's earlier processes from other live ones (on
// the same host, say), so nothing is released.
func (r *Runner) releasePrevious(ctx context.Context) {
	if r.cfg.ReplicaID == "" {
		return
	}
	released, err := r.store.ReleaseOwnerJobs(ctx, r.cfg.ReplicaID+"/", r.owner)
	if err != nil && ctx.Err() == nil {
		// Their leases lapse all the same: later, not never.
		r.log.WarnContext(ctx, "release jobs of the replica's previous process", "err", err)
	}
	for _, j := range released {
		r.log.InfoContext(ctx, "released job of the replica's previous process", "job_id", j.ID, "tenant_id", j.TenantID,
			"previous_owner", j.LeaseOwner, "attempt", j.Attempt, "lease_until", j.LeaseUntil)
	}
}

func (r *Runner) loop(ctx context.Context) {
	t := time.NewTicker(r.cfg.PollInterval)
	defer t.Stop()
	for {
		for {
			claimed := time.Now()
			j, err := r.store.ClaimJob(ctx, r.owner, r.cfg.Lease, r.cfg.MaxRunningPerTenant)
			if err != nil {
				if ctx.Err() == nil {
					r.log.ErrorContext(ctx, "claim job", "err", err)
				}
				break
			}
			if j == nil {
				break
			}
			r.execute(ctx, j, claimed)
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
// FAILED. The job's trace is
// a new one, linked to the request that created the job: a job outlives its
// request and may run on another replica, after a retry.
func (r *Runner) execute(ctx context.Context, j *store.Job, claimed time.Time) {
	attrs := []attribute.KeyValue{
		attribute.String("exportd.job_id", j.ID), attribute.String("exportd.report_type", j.ReportType),
		attribute.String("exportd.format", j.Format), attribute.Int("exportd.attempt", j.Attempt),
	}
	opts := []trace.SpanStartOption{trace.WithNewRoot(), trace.WithTimestamp(claimed), trace.WithAttributes(attrs...)}
	if l, ok := telemetry.LinkTo(j.TraceParent); ok {
		opts = append(opts, trace.WithLinks(l))
	}
	ctx, span := r.tracer.Start(ctx, "export.job", opts...)
	defer span.End()
	// The claim already happened; its span is recorded after the fact so
	// that idle polls leave no traces.
	_, claim := r.tracer.Start(ctx, "export.claim", trace.WithTimestamp(claimed))
	claim.End()

	log := r.log.With("job_id", j.ID, "tenant_id", j.TenantID, "attempt", j.Attempt, "failures", j.Failures)
	log.InfoContext(ctx, "export started", "report_type", j.ReportType, "format", j.Format)
	start := claimed
	m := r.cfg.Telemetry.Metrics
	kind := metric.WithAttributes(attribute.String("report_type", j.ReportType), attribute.String("format", j.Format))
	art, err := r.generate(ctx, j)
	if errors.Is(err, store.ErrLeaseLost) {
		log.WarnContext(ctx, "export stopped: it was cancelled or another attempt took it over")
		span.SetStatus(codes.Error, "lease lost")
		r.discard(ctx, j, log)
		return
	}
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "generation failed")
		if ctx.Err() != nil {
			// Shutting down: hand the job over now rather than when the
			// lease would lapse.
			log.InfoContext(ctx, "export interrupted by shutdown; released for another worker")
			r.discard(ctx, j, log)
			if err := r.store.ReleaseJob(context.WithoutCancel(ctx), j); err != nil && !errors.Is(err, store.ErrLeaseLost) {
				log.WarnContext(ctx, "release export", "err", err)
			}
			return
		}
		if r.fail(ctx, j, err, log) {
			m.JobsFinished.Add(ctx, 1, kind, metric.WithAttributes(attribute.String("status", "FAILED")))
			m.JobDuration.Record(ctx, time.Since(start).Seconds(), kind, metric.WithAttributes(attribute.String("status", "FAILED")))
		}
		return
	}
	cctx, commit := r.tracer.Start(ctx, "export.commit")
	tenant, err := r.store.Tenant(cctx, j.TenantID)
	window := 7 * 24 * time.Hour
	if err == nil {
		window = time.Duration(tenant.DownloadWindowDays) * 24 * time.Hour
	}
	err = r.store.CompleteJob(context.WithoutCancel(cctx), j, art, window)
	commit.End()
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "commit failed")
		if errors.Is(err, store.ErrLeaseLost) {
			log.WarnContext(ctx, "export finished after another attempt took it over; its artifact is discarded")
			r.discard(ctx, j, log)
			return
		}
		// Whether the commit happened is unknown: keep the artifact (the
		// orphan sweeper decides from the job row) and retry if it did not.
		r.fail(ctx, j, fmt.Errorf("commit export: %w", err), log)
		return
	}
	took := time.Since(start)
	span.SetAttributes(attribute.Int64("exportd.rows", art.Rows), attribute.Int64("exportd.bytes", art.Size))
	m.JobsFinished.Add(ctx, 1, kind, metric.WithAttributes(attribute.String("status", "COMPLETED")))
	m.JobDuration.Record(ctx, took.Seconds(), kind, metric.WithAttributes(attribute.String("status", "COMPLETED")))
	if took > 0 {
		m.JobRowsPerSecond.Record(ctx, float64(art.Rows)/took.Seconds(), kind)
	}
	log.InfoContext(ctx, "export completed", "rows", art.Rows, "bytes", art.Size, "duration", took)
}

// fail retries the attempt later when its error is transient and attempts
// remain, and otherwise ends the job FAILED with a reason a person can act
// on. It reports whether the job is now FAILED. Attempts are counted in
// failures: starts that ended because a worker died failed nothing.
func (r *Runner) fail(ctx context.Context, j *store.Job, err error, log *slog.Logger) bool {
	ctx = context.WithoutCancel(ctx)
	v := Classify(err, j.ID)
	failures := j.Failures + 1 // this one
	if !v.Permanent && failures < j.MaxAttempts {
		next := r.store.Now().Add(Backoff(r.cfg.RetryBase, r.cfg.RetryMax, failures))
		log.WarnContext(ctx, "export attempt failed; will retry", "err", err, "next_attempt_at", next)
		if rerr := r.store.RetryJob(ctx, j, v.Reason, next); rerr != nil && !errors.Is(rerr, store.ErrLeaseLost) {
			log.ErrorContext(ctx, "requeue export", "err", rerr)
		}
		return false
	}
	msg := v.Reason
	if !v.Permanent {
		msg = fmt.Sprintf("failed after %d attempts: %s; create the export again, and contact support if it keeps failing", failures, v.Reason)
	}
	log.ErrorContext(ctx, "export failed", "err", err, "permanent", v.Permanent)
	if ferr := r.store.FailJob(ctx, j, msg); ferr != nil {
		if !errors.Is(ferr, store.ErrLeaseLost) {
			log.ErrorContext(ctx, "record failure", "err", ferr)
		}
		return false
	}
	return true
}

// discard deletes what this attempt wrote. Each attempt has a key of its
// own, so this never touches the artifact of another attempt.
func (r *Runner) discard(ctx context.Context, j *store.Job, log *slog.Logger) {
	if err := r.bucket.Delete(context.WithoutCancel(ctx), ArtifactKey(j)); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
		log.WarnContext(ctx, "delete artifact of abandoned attempt; the orphan sweeper will retry", "err", err)
	}
}

// ArtifactKey is where attempt n of a job writes its report. Each attempt has
// its own key, so a stale attempt can never overwrite the committed one.
func ArtifactKey(j *store.Job) string {
	return fmt.Sprintf("exports/%s/%s/attempt-%d/report.%s", j.TenantID, j.ID, j.Attempt, j.Format)
}

// generate writes the report to the blob store while heartbeating.
func (r *Runner) generate(ctx context.Context, j *store.Job) (store.Artifact, error) {
	qctx, query := r.tracer.Start(ctx, "export.query")
	tenant, err := r.store.Tenant(qctx, j.TenantID)
	if err != nil {
		query.End()
		return store.Artifact{}, err
	}
	if !tenant.CompliancePack {
		query.End()
		return store.Artifact{}, Permanent(fault.New(fault.FailedPrecondition,
			"the tenant no longer has the Compliance Pack add-on; enable it from Settings › Billing › Add-ons in the console (or ask your account manager), then create the export again"))
	}
	if err := reports.RequireProfile(j.ReportType, tenant.GdprProfile, tenant.HipaaProfile); err != nil {
		// CreateExport refuses such jobs; one queued before profiles were
		// required fails here rather than produce a report naming no one.
		query.End()
		return store.Artifact{}, Permanent(fault.New(fault.FailedPrecondition, "%s; set it, then create the export again", err))
	}
	watermark, err := r.store.LastSequence(qctx, j.TenantID)
	query.End()
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
		Transport:          r.cfg.Transport,
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
	// Generation reads the log and streams the encoded report into the
	// upload as it goes; "upload" is the final flush that commits the object.
	gctx, gen := r.tracer.Start(jobCtx, "export.generate")
	sum, genErr := reports.Generate(gctx, cw, req, r.store.Source(j.TenantID), func(n int64) { rows.Store(n) })
	gen.SetAttributes(attribute.Int64("exportd.rows", rows.Load()))
	if genErr != nil {
		gen.RecordError(genErr)
		gen.SetStatus(codes.Error, "generate failed")
	}
	gen.End()
	if genErr != nil {
		// Closing a writer whose context is cancelled discards the upload.
		cancel(genErr)
		_ = w.Close()
		<-hbDone
		cause := context.Cause(jobCtx)
		if errors.Is(cause, store.ErrLeaseLost) {
			return store.Artifact{}, store.ErrLeaseLost
		}
		if errors.Is(genErr, context.Canceled) && cause != nil && !errors.Is(cause, genErr) && ctx.Err() == nil {
			// The heartbeat failed and stopped the work: its error, not
			// "context canceled", is what went wrong.
			return store.Artifact{}, cause
		}
		return store.Artifact{}, genErr
	}
	_, upload := r.tracer.Start(jobCtx, "export.upload", trace.WithAttributes(attribute.Int64("exportd.bytes", cw.n)))
	err = w.Close()
	upload.End()
	if err != nil {
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
	m := reports.NewManifest(j.ID, req, sum, digest, cw.n)
	m.ChainHash = chain
	if r.signer != nil {
		_, sign := r.tracer.Start(ctx, "export.sign")
		err := r.signer.Sign(&m)
		sign.End()
		if err != nil {
			return store.Artifact{}, err
		}
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

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// heartbeatEvery renews a lease three times per period, and at least every
// two seconds so that a cancelled job stops promptly.
func heartbeatEvery(lease time.Duration) time.Duration {
	return min(lease/3, 2*time.Second)
}
