package store

import (
	"context"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
	"github.com/lib/pq"

	"github.com/exportd/exportd/ent"
	"github.com/exportd/exportd/ent/exportjob"
	"github.com/exportd/exportd/ent/predicate"
	"github.com/exportd/exportd/internal/apikey"
	"github.com/exportd/exportd/internal/fault"
	"github.com/exportd/exportd/internal/tenancy"
)

// NewJob is a validated export request.
type NewJob struct {
	TenantID        string
	RequestedBy     string // principal id
	RequestedByName string
	ReportType      string
	Format          string
	PeriodStart     time.Time // as requested
	PeriodEnd       time.Time // as requested, inclusive
	AppliedStart    time.Time
	AppliedEnd      time.Time // exclusive
	IdempotencyKey  string
	RequestHash     string
	PolicyDecision  string
	Estimate        time.Time
	RowsTotal       int64
	// TraceParent is the W3C traceparent of the creating request.
	TraceParent string
	// MaxAttempts is how many attempts the job gets before it is FAILED;
	// 0 keeps the schema default.
	MaxAttempts int
	// MaxQueued caps the tenant's PENDING jobs; 0 means no cap.
	MaxQueued int
}

// JobStatus is where an export job is in its life.
type JobStatus string

// The statuses of a job. PENDING and RUNNING are live; the others are final,
// except that COMPLETED becomes EXPIRED when its download window passes.
// A cancelled job is FAILED.
const (
	JobPending   JobStatus = "PENDING"
	JobRunning   JobStatus = "RUNNING"
	JobCompleted JobStatus = "COMPLETED"
	JobFailed    JobStatus = "FAILED"
	JobExpired   JobStatus = "EXPIRED"
)

func (st JobStatus) String() string { return string(st) }

// Job is an export job as the store keeps it.
type Job struct {
	ID                  string
	TenantID            string
	RequestedBy         string // principal id
	RequestedByName     string
	ReportType          string
	Format              string
	PeriodStart         time.Time // as requested
	PeriodEnd           time.Time // as requested, inclusive
	AppliedStart        time.Time
	AppliedEnd          time.Time // exclusive
	Status              JobStatus
	Error               string
	RowsDone            int64
	RowsTotal           int64
	EstimatedCompletion *time.Time
	CreatedAt           time.Time
	StartedAt           *time.Time
	CompletedAt         *time.Time
	ExpiresAt           *time.Time
	// Attempt counts starts and Failures failed attempts (see RetryJob).
	Attempt        int
	Failures       int
	LeaseOwner     string
	LeaseUntil     *time.Time
	IdempotencyKey *string
	RequestHash    string
	PolicyDecision string
	ArtifactKey    string
	ArtifactSize   int64
	ArtifactSha256 string
	Manifest       []byte
	TraceParent    string
	MaxAttempts    int
	NextAttemptAt  *time.Time
	CompletedBy    string
}

func jobFromEnt(j *ent.ExportJob) *Job {
	if j == nil {
		return nil
	}
	return &Job{
		ID: j.ID, TenantID: j.TenantID, RequestedBy: j.RequestedBy, RequestedByName: j.RequestedByName,
		ReportType: j.ReportType, Format: j.Format,
		PeriodStart: j.PeriodStart, PeriodEnd: j.PeriodEnd, AppliedStart: j.AppliedStart, AppliedEnd: j.AppliedEnd,
		Status: JobStatus(j.Status), Error: j.Error, RowsDone: j.RowsDone, RowsTotal: j.RowsTotal,
		EstimatedCompletion: j.EstimatedCompletion, CreatedAt: j.CreatedAt, StartedAt: j.StartedAt,
		CompletedAt: j.CompletedAt, ExpiresAt: j.ExpiresAt, Attempt: j.Attempt, Failures: j.Failures,
		LeaseOwner: j.LeaseOwner, LeaseUntil: j.LeaseUntil, IdempotencyKey: j.IdempotencyKey,
		RequestHash: j.RequestHash, PolicyDecision: j.PolicyDecision,
		ArtifactKey: j.ArtifactKey, ArtifactSize: j.ArtifactSize, ArtifactSha256: j.ArtifactSha256,
		Manifest: j.Manifest, TraceParent: j.TraceParent, MaxAttempts: j.MaxAttempts,
		NextAttemptAt: j.NextAttemptAt, CompletedBy: j.CompletedBy,
	}
}

func jobsFromEnt(js []*ent.ExportJob) []*Job {
	out := make([]*Job, len(js))
	for i, j := range js {
		out[i] = jobFromEnt(j)
	}
	return out
}

// queuedRetryAfter is the retry delay of a create refused by the queue cap.
const queuedRetryAfter = 10 * time.Second

// CreateJob queues a job. With an idempotency key, a retry of the same request
// returns the existing job (created = false) and a different request under the
// same key is refused.
//
// With MaxQueued set, a tenant that already has that many PENDING jobs is
// refused with ResourceExhausted; the count and the insert are serialised per
// tenant so concurrent creates cannot overshoot.
func (s *Store) CreateJob(ctx context.Context, nj NewJob) (job *Job, created bool, err error) {
	ctx = scoped(ctx, nj.TenantID)
	if nj.IdempotencyKey != "" {
		if j, err := s.jobByIdempotencyKey(ctx, nj); j != nil || err != nil {
			return j, false, err
		}
	}
	var j *ent.ExportJob
	create := func(jobs *ent.ExportJobClient) error {
		c := jobs.Create().
			SetID(apikey.RandomID("job_", 24)).
			SetTenantID(nj.TenantID).
			SetRequestedBy(nj.RequestedBy).
			SetRequestedByName(nj.RequestedByName).
			SetReportType(nj.ReportType).
			SetFormat(nj.Format).
			SetPeriodStart(micro(nj.PeriodStart)).
			SetPeriodEnd(micro(nj.PeriodEnd)).
			SetAppliedStart(micro(nj.AppliedStart)).
			SetAppliedEnd(micro(nj.AppliedEnd)).
			SetStatus(exportjob.StatusPENDING).
			SetRowsTotal(nj.RowsTotal).
			SetEstimatedCompletion(micro(nj.Estimate)).
			SetCreatedAt(micro(s.now())).
			SetRequestHash(nj.RequestHash).
			SetPolicyDecision(nj.PolicyDecision).
			SetTraceParent(nj.TraceParent)
		if nj.IdempotencyKey != "" {
			c.SetIdempotencyKey(nj.IdempotencyKey)
		}
		if nj.MaxAttempts > 0 {
			c.SetMaxAttempts(nj.MaxAttempts)
		}
		var err error
		j, err = c.Save(ctx)
		return err
	}
	if nj.MaxQueued > 0 {
		err = s.tx(ctx, func(tx *ent.Tx) error {
			if err := s.lockTenant(ctx, tx, nj.TenantID); err != nil {
				return err
			}
			n, err := tx.ExportJob.Query().
				Where(exportjob.TenantID(nj.TenantID), exportjob.StatusEQ(exportjob.StatusPENDING)).
				Count(ctx)
			if err != nil {
				return fmt.Errorf("count queued jobs: %w", err)
			}
			if n >= nj.MaxQueued {
				e := fault.New(fault.ResourceExhausted,
					"%d exports are already queued for this tenant, the most allowed; wait for some to finish or cancel them, then try again", n)
				// A queued export takes seconds to minutes: a client that
				// waits this long before retrying does not hammer the cap.
				e.RetryAfter = queuedRetryAfter
				return e
			}
			return create(tx.ExportJob)
		})
	} else {
		// Without a cap there is nothing to count: the insert alone, with
		// no transaction around it (two round trips fewer).
		err = create(s.client.ExportJob)
	}
	if ent.IsConstraintError(err) && nj.IdempotencyKey != "" {
		// Another request with the same key won the race.
		if j, err := s.jobByIdempotencyKey(ctx, nj); j != nil || err != nil {
			return j, false, err
		}
	}
	if err != nil {
		return nil, false, translate(err, "export job")
	}
	return jobFromEnt(j), true, nil
}

// tenantLockPrefix prefixes the tenant id in the key of its advisory lock.
const tenantLockPrefix = "exportd.tenant:"

// lockTenant serialises, until tx ends, the transactions that count a
// tenant's jobs against a limit (PostgreSQL; SQLite's immediate transactions
// are serial already).
func (s *Store) lockTenant(ctx context.Context, tx *ent.Tx, tenantID string) error {
	if s.Dialect != dialect.Postgres {
		return nil
	}
	if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(hashtext($1))", tenantLockPrefix+tenantID); err != nil {
		return fmt.Errorf("lock tenant: %w", err)
	}
	return nil
}

func (s *Store) jobByIdempotencyKey(ctx context.Context, nj NewJob) (*Job, error) {
	j, err := s.client.ExportJob.Query().
		Where(exportjob.TenantID(nj.TenantID), exportjob.IdempotencyKey(nj.IdempotencyKey)).
		Only(ctx)
	if ent.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, translate(err, "export job")
	}
	if j.RequestHash != nj.RequestHash {
		return nil, fault.New(fault.FailedPrecondition,
			"Idempotency-Key %q was already used for a different request (job %s); use a new key for a new export", nj.IdempotencyKey, j.ID)
	}
	return jobFromEnt(j), nil
}

// Job returns a job of the tenant. A job of another tenant answers exactly as
// a missing one.
func (s *Store) Job(ctx context.Context, tenantID, jobID string) (*Job, error) {
	ctx = scoped(ctx, tenantID)
	j, err := s.client.ExportJob.Query().Where(exportjob.ID(jobID), exportjob.TenantID(tenantID)).Only(ctx)
	if ent.IsNotFound(err) {
		return nil, JobNotFound(jobID)
	}
	return jobFromEnt(j), translate(err, "export job")
}

// JobNotFound is the one answer for a missing, foreign or malformed job id.
func JobNotFound(jobID string) error {
	return fault.New(fault.NotFound, "export %s not found", fault.Echo(jobID))
}

// JobFilter narrows ListJobs.
type JobFilter struct {
	Status     string
	ReportType string
	PageSize   int
	PageToken  string
}

// ListJobs returns the tenant's jobs newest first, and the token of the next
// page ("" on the last).
func (s *Store) ListJobs(ctx context.Context, tenantID string, f JobFilter) ([]*Job, string, error) {
	ctx = scoped(ctx, tenantID)
	if f.PageSize <= 0 {
		f.PageSize = 20
	}
	ps := []predicate.ExportJob{exportjob.TenantID(tenantID)}
	if f.Status != "" {
		ps = append(ps, exportjob.StatusEQ(exportjob.Status(f.Status)))
	}
	if f.ReportType != "" {
		ps = append(ps, exportjob.ReportType(f.ReportType))
	}
	if f.PageToken != "" {
		at, id, ok := decodeToken(f.PageToken)
		if !ok {
			return nil, "", fault.Invalid(fault.Violation{Field: "page_token", Number: 4, Rule: "page_token.valid", Message: "is not a token from a previous page"})
		}
		ps = append(ps, exportjob.Or(
			exportjob.CreatedAtLT(at),
			exportjob.And(exportjob.CreatedAtEQ(at), exportjob.IDLT(id))))
	}
	jobs, err := s.client.ExportJob.Query().Where(ps...).
		Order(exportjob.ByCreatedAt(entsql.OrderDesc()), exportjob.ByID(entsql.OrderDesc())).
		Limit(f.PageSize + 1).
		All(ctx)
	if err != nil {
		return nil, "", translate(err, "export jobs")
	}
	next := ""
	if len(jobs) > f.PageSize {
		jobs = jobs[:f.PageSize]
		last := jobs[len(jobs)-1]
		next = encodeToken(last.CreatedAt, last.ID)
	}
	return jobsFromEnt(jobs), next, nil
}

func encodeToken(at time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(at.UnixMicro(), 10) + "|" + id))
}

func decodeToken(tok string) (time.Time, string, bool) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return time.Time{}, "", false
	}
	us, id, ok := strings.Cut(string(b), "|")
	if !ok {
		return time.Time{}, "", false
	}
	n, err := strconv.ParseInt(us, 10, 64)
	if err != nil {
		return time.Time{}, "", false
	}
	return time.UnixMicro(n).UTC(), id, true
}

// CancelJob ends a PENDING or RUNNING job as FAILED.
func (s *Store) CancelJob(ctx context.Context, tenantID, jobID, by string) (*Job, error) {
	ctx = scoped(ctx, tenantID)
	j, err := s.Job(ctx, tenantID, jobID)
	if err != nil {
		return nil, err
	}
	var n int
	err = s.tx(ctx, func(tx *ent.Tx) error {
		var err error
		n, err = tx.ExportJob.Update().
			Where(exportjob.ID(j.ID), exportjob.StatusIn(exportjob.StatusPENDING, exportjob.StatusRUNNING)).
			SetStatus(exportjob.StatusFAILED).
			SetError("cancelled by " + by).
			SetCompletedAt(micro(s.now())).
			SetLeaseOwner("").
			ClearLeaseUntil().
			Save(ctx)
		if err != nil || n == 0 {
			return err
		}
		return s.enqueueWebhooks(ctx, tx, j.ID, EventExportFailed)
	})
	if err != nil {
		return nil, translate(err, "export job")
	}
	if n == 0 {
		return nil, fault.New(fault.FailedPrecondition, "export %s is %s; only PENDING or RUNNING exports can be cancelled", j.ID, j.Status)
	}
	return s.Job(ctx, tenantID, jobID)
}

// claimTries bounds the rounds of one ClaimJob: failing a job started too
// often, or finding a tenant at its running limit only when re-checking it,
// costs a round and the claim goes on with the next due job.
const claimTries = 16

// StartsPerAttempt bounds how often a job may be started at all, as a
// multiple of its max_attempts. A worker that dies (its lease lapses) costs
// the job no attempt, since the job did not fail; but a job that takes its
// worker down every time (out of memory, say) must not take replicas down
// forever, so after max_attempts × StartsPerAttempt starts a lapsed job is
// FAILED when it is due again.
const StartsPerAttempt = 10

// jobQueue is the export job table as a queue. Due means PENDING with its
// retry time reached, or RUNNING with a lapsed lease; a due job already
// started max_attempts × StartsPerAttempt times is held, to be FAILED.
var jobQueue = queue{
	table:   exportjob.Table,
	columns: exportjob.Columns,
	due:     "(q.status = 'PENDING' AND (q.next_attempt_at IS NULL OR q.next_attempt_at <= $1)) OR (q.status = 'RUNNING' AND q.lease_until < $1)",
	order:   "q.created_at, q.id",
	claim:   "status = 'RUNNING', attempt = q.attempt + 1, lease_owner = $2, lease_until = $3, started_at = $1, next_attempt_at = NULL, rows_done = 0",
	held:    fmt.Sprintf("q.attempt >= q.max_attempts * %d", StartsPerAttempt),
	leased:  exportjob.StatusRUNNING.String(),
	attempt: exportjob.FieldAttempt,
}

// runningBelow admits jobs of tenants with fewer than $4 jobs running under
// a live lease.
const runningBelow = "(SELECT count(*) FROM export_jobs r WHERE r.tenant_id = q.tenant_id AND r.status = 'RUNNING' AND r.lease_until >= $1) < $4"

// tenantLock is the advisory lock, on PostgreSQL, of the transactions that
// count a tenant's jobs against a limit; lockTenant takes the same.
const tenantLock = "pg_advisory_xact_lock(hashtext('" + tenantLockPrefix + "' || q.tenant_id))"

// claimedJob is a row of a job claim.
type claimedJob struct {
	ent.ExportJob
	Held bool `json:"held"`
	// full: the tenant was at its limit after all (see claimJob).
	full bool
}

// ClaimJob takes the lease of the oldest due job for owner and returns it;
// nil when there is none. Due means PENDING with its retry time reached, or
// RUNNING with a lapsed lease (its worker crashed or stalled): taking one over
// starts a new attempt, and the old attempt is fenced out. Starts are counted
// in attempt, failures apart (see RetryJob): a lapsed lease is not a failure.
// A due job that already had max_attempts × StartsPerAttempt starts is
// FAILED instead. maxRunningPerTenant > 0 skips jobs of tenants that already
// have that many running.
func (s *Store) ClaimJob(ctx context.Context, owner string, lease time.Duration, maxRunningPerTenant int) (*Job, error) {
	// Workers serve every tenant: the claim reads and writes the jobs of all.
	ctx = tenancy.System(ctx)
	var full []string
	for range claimTries {
		c, err := s.claimJob(ctx, owner, lease, maxRunningPerTenant, full)
		switch {
		case err != nil:
			return nil, fmt.Errorf("claim job: %w", err)
		case c == nil:
			return nil, nil
		case c.Held:
			if err := s.failExhausted(ctx, c.ID); err != nil {
				return nil, err
			}
		case c.full:
			full = append(full, c.TenantID)
		default:
			j := c.ExportJob
			return jobFromEnt(&j), nil
		}
	}
	return nil, nil
}

// claimJob runs one claim statement, skipping the tenants in full.
//
// Under a running limit on PostgreSQL, the count in the statement comes from
// the statement's snapshot: two claimers that start together both see the
// tenant one below its limit and would both claim. No lock taken within the
// statement helps, since its snapshot predates the lock. So the statement
// also takes the tenant's advisory lock on the row it claims, held until the
// transaction ends, and a second statement counts again: it starts after
// every earlier claimer of the tenant committed, sees their jobs, and undoes
// the claim (full) if they already fill the limit. SQLite runs one writing
// statement at a time, so its count is current.
func (s *Store) claimJob(ctx context.Context, owner string, lease time.Duration, limit int, full []string) (*claimedJob, error) {
	now := micro(s.now())
	args := []any{now, owner, now.Add(lease)}
	var f claimFilter
	if limit > 0 {
		f.where = runningBelow
		args = append(args, limit)
	}
	if limit <= 0 || s.Dialect != dialect.Postgres {
		return claimRow[claimedJob](ctx, s.db, s.Dialect, jobQueue, f, args)
	}
	f.lock = tenantLock
	if len(full) > 0 {
		f.where += " AND q.tenant_id <> ALL($5)"
		args = append(args, pq.Array(full))
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("begin transaction: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it does nothing
	c, err := claimRow[claimedJob](ctx, tx, s.Dialect, jobQueue, f, args)
	if err != nil || c == nil || c.Held {
		return c, err
	}
	var others int
	err = tx.QueryRowContext(ctx,
		"SELECT count(*) FROM export_jobs WHERE tenant_id = $1 AND status = 'RUNNING' AND lease_until >= $2 AND id <> $3",
		c.TenantID, now, c.ID).Scan(&others)
	if err != nil {
		return nil, fmt.Errorf("count running jobs: %w", err)
	}
	if others >= limit {
		c.full = true
		return c, nil // rolled back
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	return c, nil
}

// jobDue selects the jobs a claim may take at now (jobQueue.due).
func jobDue(now time.Time) predicate.ExportJob {
	return exportjob.Or(
		exportjob.And(exportjob.StatusEQ(exportjob.StatusPENDING),
			exportjob.Or(exportjob.NextAttemptAtIsNil(), exportjob.NextAttemptAtLTE(now))),
		exportjob.And(exportjob.StatusEQ(exportjob.StatusRUNNING), exportjob.LeaseUntilLT(now)),
	)
}

// failExhausted ends job id FAILED, with its webhooks, if it is still due and
// started too often: whatever its status, since a job released by a
// restarted replica is PENDING, and a job that crashes its replica each time
// must stop.
func (s *Store) failExhausted(ctx context.Context, id string) error {
	return s.tx(ctx, func(tx *ent.Tx) error {
		now := micro(s.now())
		q := tx.ExportJob.Query().Where(exportjob.ID(id), jobDue(now))
		if s.Dialect == dialect.Postgres {
			q = q.ForUpdate(entsql.WithLockAction(entsql.SkipLocked))
		}
		j, err := q.Only(ctx)
		if ent.IsNotFound(err) {
			return nil // another worker got there first
		}
		if err != nil {
			return fmt.Errorf("lock exhausted job: %w", err)
		}
		if j.Attempt < j.MaxAttempts*StartsPerAttempt {
			return nil
		}
		err = tx.ExportJob.UpdateOne(j).
			SetStatus(exportjob.StatusFAILED).
			SetError(interruptedError(j)).
			SetCompletedAt(now).
			SetLeaseOwner("").
			ClearLeaseUntil().
			Exec(ctx)
		if err != nil {
			return fmt.Errorf("fail exhausted job: %w", err)
		}
		return s.enqueueWebhooks(ctx, tx, j.ID, EventExportFailed)
	})
}

// interruptedError is the error of a job FAILED because it was started too
// often without finishing; it names the last real failure, if there was one.
func interruptedError(j *ent.ExportJob) string {
	msg := fmt.Sprintf("the export was started %d times and its worker stopped responding each time without finishing (crashed, killed or stalled); create it again with a shorter period, and contact support if it keeps failing", j.Attempt)
	if j.Error != "" {
		msg += "; the last failed attempt said: " + j.Error
	}
	return msg
}

// fenced selects the row only while attempt still holds the job: a worker
// that lost its lease changes nothing.
func fenced(j *Job) []predicate.ExportJob {
	return []predicate.ExportJob{jobQueue.fence(j.ID, j.Attempt, j.LeaseOwner)}
}

// ErrLeaseLost says a worker no longer holds the job.
var ErrLeaseLost = fault.New(fault.FailedPrecondition, "lease lost")

// Heartbeat renews the lease and records progress.
func (s *Store) Heartbeat(ctx context.Context, j *Job, lease time.Duration, rowsDone, rowsTotal int64, eta time.Time) error {
	ctx = scoped(ctx, j.TenantID)
	n, err := s.client.ExportJob.Update().Where(fenced(j)...).
		SetLeaseUntil(micro(s.now()).Add(lease)).
		SetRowsDone(rowsDone).
		SetRowsTotal(rowsTotal).
		SetEstimatedCompletion(micro(eta)).
		Save(ctx)
	if err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	if n == 0 {
		return ErrLeaseLost
	}
	return nil
}

// Artifact is a committed report.
type Artifact struct {
	Key      string
	Size     int64
	SHA256   string
	Manifest []byte
	Rows     int64
}

// CompleteJob marks the job COMPLETED with its artifact, if attempt still
// holds it.
func (s *Store) CompleteJob(ctx context.Context, j *Job, a Artifact, window time.Duration) error {
	ctx = scoped(ctx, j.TenantID)
	now := micro(s.now())
	return s.tx(ctx, func(tx *ent.Tx) error {
		n, err := tx.ExportJob.Update().Where(fenced(j)...).
			SetStatus(exportjob.StatusCOMPLETED).
			SetArtifactKey(a.Key).
			SetArtifactSize(a.Size).
			SetArtifactSha256(a.SHA256).
			SetManifest(a.Manifest).
			SetRowsDone(a.Rows).
			SetRowsTotal(a.Rows).
			SetCompletedAt(now).
			SetEstimatedCompletion(now).
			SetExpiresAt(now.Add(window)).
			SetCompletedBy(j.LeaseOwner).
			SetError("").
			SetLeaseOwner("").
			ClearLeaseUntil().
			Save(ctx)
		if err != nil {
			return fmt.Errorf("complete job: %w", err)
		}
		if n == 0 {
			return ErrLeaseLost
		}
		return s.enqueueWebhooks(ctx, tx, j.ID, EventExportCompleted)
	})
}

// FailJob marks the job FAILED with a message a person can act on, and
// counts the attempt as failed.
func (s *Store) FailJob(ctx context.Context, j *Job, msg string) error {
	ctx = scoped(ctx, j.TenantID)
	return s.tx(ctx, func(tx *ent.Tx) error {
		n, err := tx.ExportJob.Update().Where(fenced(j)...).
			SetStatus(exportjob.StatusFAILED).
			SetError(msg).
			AddFailures(1).
			SetCompletedAt(micro(s.now())).
			SetLeaseOwner("").
			ClearLeaseUntil().
			Save(ctx)
		if err != nil {
			return fmt.Errorf("fail job: %w", err)
		}
		if n == 0 {
			return ErrLeaseLost
		}
		return s.enqueueWebhooks(ctx, tx, j.ID, EventExportFailed)
	})
}

// RetryJob puts the job back in the queue after a failed attempt, to be
// claimed again at next, if attempt still holds it, and counts the attempt
// as failed: failures, not starts, decide when a job has used up its
// attempts. msg says what failed.
func (s *Store) RetryJob(ctx context.Context, j *Job, msg string, next time.Time) error {
	ctx = scoped(ctx, j.TenantID)
	n, err := s.client.ExportJob.Update().Where(fenced(j)...).
		SetStatus(exportjob.StatusPENDING).
		SetError(msg).
		AddFailures(1).
		SetNextAttemptAt(micro(next)).
		SetEstimatedCompletion(micro(next)).
		SetLeaseOwner("").
		ClearLeaseUntil().
		Save(ctx)
	if err != nil {
		return fmt.Errorf("requeue job: %w", err)
	}
	if n == 0 {
		return ErrLeaseLost
	}
	return nil
}

// ReleaseJob gives the job up at once, if attempt still holds it, so that
// another worker takes it over without waiting for the lease to lapse (on a
// graceful shutdown).
func (s *Store) ReleaseJob(ctx context.Context, j *Job) error {
	ctx = scoped(ctx, j.TenantID)
	n, err := s.client.ExportJob.Update().Where(fenced(j)...).
		SetLeaseUntil(micro(s.now()).Add(-time.Microsecond)).
		Save(ctx)
	if err != nil {
		return fmt.Errorf("release job: %w", err)
	}
	if n == 0 {
		return ErrLeaseLost
	}
	return nil
}

// ReleaseOwnerJobs puts back in the queue, at once, every RUNNING job whose
// lease owner starts with prefix but is not owner: the jobs a previous
// process of the same replica held when it died. They become PENDING and
// due now, with no failure counted, so that they need not wait for their
// leases to lapse. It returns the jobs released.
func (s *Store) ReleaseOwnerJobs(ctx context.Context, prefix, owner string) ([]*Job, error) {
	// The replica worked for every tenant.
	ctx = tenancy.System(ctx)
	held, err := s.client.ExportJob.Query().
		Where(exportjob.StatusEQ(exportjob.StatusRUNNING), exportjob.LeaseOwnerHasPrefix(prefix), exportjob.LeaseOwnerNEQ(owner)).
		All(ctx)
	if err != nil {
		return nil, fmt.Errorf("find jobs of previous process: %w", err)
	}
	var out []*Job
	for _, j := range jobsFromEnt(held) {
		// LIKE ignores case on SQLite: compare exactly here.
		if !strings.HasPrefix(j.LeaseOwner, prefix) {
			continue
		}
		n, err := s.client.ExportJob.Update().Where(fenced(j)...).
			SetStatus(exportjob.StatusPENDING).
			SetLeaseOwner("").
			ClearLeaseUntil().
			ClearNextAttemptAt().
			Save(ctx)
		if err != nil {
			return out, fmt.Errorf("release job of previous process: %w", err)
		}
		if n == 1 {
			out = append(out, j)
		}
	}
	return out, nil
}

// ExpireJobs marks up to limit COMPLETED jobs whose download window has
// passed EXPIRED and returns them, so the caller deletes their artifacts.
// Downloads stop at once: they check the status.
func (s *Store) ExpireJobs(ctx context.Context, limit int) ([]*Job, error) {
	// The sweeper serves every tenant.
	ctx = tenancy.System(ctx)
	now := micro(s.now())
	due, err := s.client.ExportJob.Query().
		Where(exportjob.StatusEQ(exportjob.StatusCOMPLETED), exportjob.ExpiresAtLTE(now)).
		Order(exportjob.ByExpiresAt()).
		Limit(limit).
		All(ctx)
	if err != nil {
		return nil, fmt.Errorf("find expired jobs: %w", err)
	}
	var out []*Job
	for _, j := range jobsFromEnt(due) {
		n, err := s.client.ExportJob.Update().
			Where(exportjob.ID(j.ID), exportjob.StatusEQ(exportjob.StatusCOMPLETED)).
			SetStatus(exportjob.StatusEXPIRED).
			Save(ctx)
		if err != nil {
			return out, fmt.Errorf("expire job: %w", err)
		}
		if n == 1 {
			j.Status = JobExpired
			out = append(out, j)
		}
	}
	return out, nil
}

// JobByID returns a job whatever its tenant, for workers.
func (s *Store) JobByID(ctx context.Context, id string) (*Job, error) {
	ctx = tenancy.System(ctx)
	j, err := s.client.ExportJob.Get(ctx, id)
	return jobFromEnt(j), translate(err, "export job")
}

// CountJobs counts a tenant's jobs, for tests and limits.
func (s *Store) CountJobs(ctx context.Context, tenantID string) (int, error) {
	ctx = scoped(ctx, tenantID)
	n, err := s.client.ExportJob.Query().Where(exportjob.TenantID(tenantID)).Count(ctx)
	return n, translate(err, "export jobs")
}

// JobRef names a job as a tenant asks for it.
type JobRef struct{ TenantID, ID string }

// jobsOfBatch bounds the ids one JobsOf query lists.
const jobsOfBatch = 500

// JobsOf reads many jobs of possibly many tenants in few queries, for the
// watches of WatchExport. A job is in the answer only under the tenant that
// owns it: a ref naming another tenant's job is missing, as is a missing job.
func (s *Store) JobsOf(ctx context.Context, refs []JobRef) (map[JobRef]*Job, error) {
	// One query serves every tenant; the owner is checked below, per ref.
	ctx = tenancy.System(ctx)
	out := make(map[JobRef]*Job, len(refs))
	for len(refs) > 0 {
		batch := refs[:min(len(refs), jobsOfBatch)]
		refs = refs[len(batch):]
		ids := make([]string, len(batch))
		for i, r := range batch {
			ids[i] = r.ID
		}
		jobs, err := s.client.ExportJob.Query().Where(exportjob.IDIn(ids...)).All(ctx)
		if err != nil {
			return out, translate(err, "export jobs")
		}
		byID := make(map[string]*ent.ExportJob, len(jobs))
		for _, j := range jobs {
			byID[j.ID] = j
		}
		for _, r := range batch {
			if j := byID[r.ID]; j != nil && j.TenantID == r.TenantID {
				out[r] = jobFromEnt(j)
			}
		}
	}
	return out, nil
}
