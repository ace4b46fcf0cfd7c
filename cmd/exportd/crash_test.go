package main_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/exportd/exportd/internal/store"
)

// running waits until p runs the cluster's only job and has made progress
// on it, and returns the job as it was then.
func (c *cluster) running(p *proc, what string) *store.Job {
	c.t.Helper()
	var j *store.Job
	waitUntil(c.t, 90*time.Second, what, func() bool {
		j = c.jobs()[0]
		if j.Status == store.JobCompleted || j.Status == store.JobFailed {
			c.t.Fatalf("job ended %s (%q) before %s: the export is too short for this test", j.Status, j.Error, what)
		}
		return j.Status == store.JobRunning && j.LeaseOwner == p.owner && j.RowsDone > 0
	})
	return j
}

// complete waits for the cluster's only job to end, failing the test only
// when it stops making progress, and returns it.
func (c *cluster) complete() *store.Job {
	c.t.Helper()
	waitProgress(c.t, 90*time.Second, "the job to end", func() (int64, bool) {
		j := c.jobs()[0]
		return j.RowsDone + int64(j.Attempt)<<40, j.Status == store.JobCompleted || j.Status == store.JobFailed
	})
	return c.jobs()[0]
}

// TestCrashesUseNoAttempts kills the worker of one long export with SIGKILL
// five times, with --max-attempts 3: were a lapsed lease counted as a
// failed attempt, the job would be FAILED after the third kill. It must
// complete, with no failure counted, an artifact that matches its manifest,
// and one start per kill more than the one that committed.
func TestCrashesUseNoAttempts(t *testing.T) {
	t.Parallel()
	const (
		kills = 5
		lease = 2 * time.Second
	)
	c := newCluster(t, 500000, "--lease", lease.String(), "--workers", "1", "--sweep-interval", "1s", "--max-attempts", "3", "--retry-base", "100ms")
	p := c.start()
	procs := []*proc{p}
	ids := c.create(p, 1)
	for kill := 1; kill <= kills; kill++ {
		c.running(p, fmt.Sprintf("progress before kill %d", kill))
		p.kill(t)
		// Without --replica-id the new process cannot tell its
		// predecessor's lease from a live one: it waits for it to lapse.
		time.Sleep(lease)
		p = c.start()
		procs = append(procs, p)
	}
	j := c.complete()
	if j.Status != store.JobCompleted {
		t.Fatalf("job ended %s after %d kills: %q (failures %d, attempt %d)", j.Status, kills, j.Error, j.Failures, j.Attempt)
	}
	if j.Failures != 0 || j.Attempt != kills+1 || j.Error != "" {
		t.Errorf("job completed with failures %d, attempt %d, error %q; want failures 0, attempt %d, no error", j.Failures, j.Attempt, j.Error, kills+1)
	}
	c.verifyArtifacts(ids)
	if n := len(completions(procs)[j.ID]); n != 1 {
		t.Errorf("job completed %d times", n)
	}
	t.Logf("RELIABILITY kills_survived=%d jobs=1 lost=0 duplicated=0 failures_counted=%d max_attempts=3", kills, j.Failures)
}

// TestRestartReleasesLeases kills a replica with SIGKILL in the middle of an
// export under a 60 s lease and restarts it with the same --replica-id: the
// new process must release its predecessor's job at once and take it over
// while the old lease still holds, not a lease later, with no failure
// counted.
func TestRestartReleasesLeases(t *testing.T) {
	t.Parallel()
	const lease = 60 * time.Second
	c := newCluster(t, 500000, "--lease", lease.String(), "--workers", "1", "--sweep-interval", "1s", "--max-attempts", "3", "--replica-id", "r1")
	p := c.start()
	if !strings.HasPrefix(p.owner, "r1/") {
		t.Fatalf("lease owner %q does not start with the replica id", p.owner)
	}
	ids := c.create(p, 1)
	before := c.running(p, "progress before the kill")
	p.kill(t)
	killed := time.Now()
	// The last heartbeat's lease: without the release, nothing could take
	// the job before then.
	held := c.jobs()[0]
	if held.LeaseUntil == nil || held.LeaseOwner != p.owner {
		t.Fatalf("after the kill the job is held by %q until %v", held.LeaseOwner, held.LeaseUntil)
	}
	leaseUntil := *held.LeaseUntil

	q := c.start()
	if q.owner == p.owner || !strings.HasPrefix(q.owner, "r1/") {
		t.Fatalf("restarted owner %q, previous %q", q.owner, p.owner)
	}
	var takenAt time.Time
	waitUntil(t, lease, "the restarted replica to take the job over", func() bool {
		j := c.jobs()[0]
		if j.Attempt > before.Attempt && j.LeaseOwner == q.owner {
			takenAt = time.Now()
			return true
		}
		return false
	})
	if !takenAt.Before(leaseUntil) {
		t.Errorf("taken over at %s, not before the old lease lapsed at %s", takenAt.UTC().Format(time.RFC3339Nano), leaseUntil.UTC().Format(time.RFC3339Nano))
	}
	released := q.logs.messages("released job of the replica's previous process")
	if len(released) != 1 || released[0]["job_id"] != before.ID || released[0]["previous_owner"] != p.owner {
		t.Errorf("release log lines: %v", released)
	}
	j := c.complete()
	if j.Status != store.JobCompleted || j.Failures != 0 || j.Attempt != before.Attempt+1 || j.CompletedBy != q.owner {
		t.Errorf("job ended %s (%q) with failures %d at attempt %d by %s; want COMPLETED, 0 failures, attempt %d by %s",
			j.Status, j.Error, j.Failures, j.Attempt, j.CompletedBy, before.Attempt+1, q.owner)
	}
	c.verifyArtifacts(ids)
	took := takenAt.Sub(killed)
	t.Logf("RELIABILITY kills_survived=1 jobs=1 lost=0 duplicated=0 failures_counted=%d restart_takeover=%s lease=%s",
		j.Failures, took.Round(time.Millisecond), lease)
}
