package jobs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	"github.com/exportd/exportd/internal/fault"
	"github.com/exportd/exportd/internal/store"
)

// sweepLease names the maintenance lease the sweepers run under.
const sweepLease = "jobs.sweep"

// SweepResult counts what one sweep did.
type SweepResult struct {
	Expired        int // jobs set EXPIRED
	OrphansDeleted int // blobs of attempts that did not commit
}

// maintain runs Sweep every SweepInterval on whichever replica holds the
// sweep lease. The lease outlives two intervals, so a replica that dies
// hands the task over within that time.
func (r *Runner) maintain(ctx context.Context) {
	t := time.NewTicker(r.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ok, err := r.store.TryLease(ctx, sweepLease, r.owner, 2*r.cfg.SweepInterval)
		if err != nil {
			if ctx.Err() == nil {
				r.log.Error("take sweep lease", "err", err)
			}
			continue
		}
		if !ok {
			continue
		}
		res, err := r.Sweep(ctx)
		if err != nil && ctx.Err() == nil {
			r.log.Error("sweep", "err", err)
		}
		if res.Expired > 0 || res.OrphansDeleted > 0 {
			r.log.Info("sweep", "expired", res.Expired, "orphans_deleted", res.OrphansDeleted)
		}
	}
}

// Sweep expires the jobs whose download window has passed (status EXPIRED,
// artifact deleted) and deletes the blobs of attempts that never committed.
// It is safe to run on several replicas at once.
func (r *Runner) Sweep(ctx context.Context) (SweepResult, error) {
	var res SweepResult
	for {
		expired, err := r.store.ExpireJobs(ctx, 100)
		for _, j := range expired {
			res.Expired++
			if j.ArtifactKey == "" {
				continue
			}
			// A delete that fails here is retried by the orphan sweep: an
			// EXPIRED job keeps no blob.
			if derr := r.bucket.Delete(ctx, j.ArtifactKey); derr != nil && gcerrors.Code(derr) != gcerrors.NotFound {
				r.log.Warn("delete expired artifact", "job_id", j.ID, "err", derr)
			}
			r.log.Info("export expired", "job_id", j.ID, "tenant_id", j.TenantID)
		}
		if err != nil {
			return res, err
		}
		if len(expired) < 100 {
			break
		}
	}
	n, err := r.sweepOrphans(ctx)
	res.OrphansDeleted = n
	return res, err
}

// sweepOrphans deletes every blob under exports/ that no job needs. The
// listing comes before the job rows are read, so a blob listed for attempt
// a of a job that the row shows at attempt ≥ a is judged on current facts:
//   - COMPLETED: only the committed artifact_key is kept;
//   - RUNNING: blobs of earlier attempts go; the current attempt's stay,
//     even with a lapsed lease, because it may still commit;
//   - PENDING, FAILED, EXPIRED: every attempt's blobs go (none can commit).
//
// Blobs of jobs the database does not know are left alone: the bucket may be
// shared with something else.
func (r *Runner) sweepOrphans(ctx context.Context) (int, error) {
	type blobRef struct {
		key     string
		attempt int
	}
	byJob := map[string][]blobRef{}
	it := r.bucket.List(&blob.ListOptions{Prefix: "exports/"})
	for {
		obj, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, fmt.Errorf("list artifacts: %w", err)
		}
		jobID, attempt, ok := parseArtifactKey(obj.Key)
		if !ok {
			continue
		}
		byJob[jobID] = append(byJob[jobID], blobRef{obj.Key, attempt})
	}
	deleted := 0
	for jobID, refs := range byJob {
		j, err := r.store.JobByID(ctx, jobID)
		if fault.KindOf(err) == fault.NotFound {
			continue
		}
		if err != nil {
			return deleted, err
		}
		for _, ref := range refs {
			if !orphan(j, ref.key, ref.attempt) {
				continue
			}
			if err := r.bucket.Delete(ctx, ref.key); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
				return deleted, fmt.Errorf("delete orphan %s: %w", ref.key, err)
			}
			deleted++
		}
	}
	return deleted, nil
}

func orphan(j *store.Job, key string, attempt int) bool {
	switch j.Status {
	case store.JobCompleted:
		return key != j.ArtifactKey
	case store.JobRunning:
		return attempt < j.Attempt
	default:
		return true
	}
}

// parseArtifactKey reads exports/<tenant>/<job>/attempt-<n>/<file>, the
// layout ArtifactKey writes (the file may carry a blob driver's temporary
// suffix).
func parseArtifactKey(key string) (jobID string, attempt int, ok bool) {
	parts := strings.Split(key, "/")
	if len(parts) != 5 || parts[0] != "exports" {
		return "", 0, false
	}
	n, err := strconv.Atoi(strings.TrimPrefix(parts[3], "attempt-"))
	if err != nil || !strings.HasPrefix(parts[3], "attempt-") {
		return "", 0, false
	}
	return parts[2], n, true
}
