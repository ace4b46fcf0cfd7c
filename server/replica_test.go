package server_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	auditv1 "github.com/exportd/exportd/gen/go/audit/v1"
	"github.com/exportd/exportd/internal/jobs"
	"github.com/exportd/exportd/internal/store"
	"github.com/exportd/exportd/internal/store/storetest"
	"github.com/exportd/exportd/internal/telemetry"
	"github.com/exportd/exportd/server"
	"github.com/exportd/exportd/server/servertest"
)

// TestReplicaReleasesPreviousLeases leaves three jobs RUNNING under hour-long
// leases of dead processes: one of replica r1, one of replica r10 and one of
// R1. A runner started as replica r1 must release only the first, at once
// and without counting a failure, and complete it; the others stay held
// (a replica id is a whole name, compared exactly).
func TestReplicaReleasesPreviousLeases(t *testing.T) {
	t.Parallel()
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			env := servertest.Start(t, dialect, servertest.Options{NoWorkers: true})
			f := newFixture(t, env)
			ctx := context.Background()
			owners := []string{"r1/4242/old", "r10/4242/old", "R1/4242/old"}
			ids := make([]string, len(owners))
			for i, owner := range owners {
				ids[i] = f.create(t)
				j, err := env.Store.ClaimJob(ctx, owner, time.Hour, 0)
				if err != nil || j == nil || j.ID != ids[i] {
					t.Fatalf("claim as %s: %v, %v", owner, j, err)
				}
			}

			log := telemetry.NewLogger(env.Log, "text", slog.LevelDebug)
			runner := jobs.New(env.Store, env.Bucket, log, jobs.Config{ReplicaID: "r1", PollInterval: 20 * time.Millisecond, SweepInterval: -1})
			runCtx, stop := context.WithCancel(ctx)
			var wg sync.WaitGroup
			wg.Go(func() { runner.Run(runCtx) })
			defer func() { stop(); wg.Wait() }()

			got := f.watch(t, ids[0])
			if got.GetStatus() != auditv1.ExportStatus_COMPLETED || got.GetAttempt() != 2 || got.GetFailedAttempts() != 0 {
				t.Errorf("released job ended %s at attempt %d with %d failed attempts (%q); want COMPLETED at attempt 2, none failed",
					got.GetStatus(), got.GetAttempt(), got.GetFailedAttempts(), got.GetError())
			}
			for i, owner := range owners[1:] {
				j, err := env.Store.JobByID(ctx, ids[i+1])
				if err != nil {
					t.Fatal(err)
				}
				if j.Status != store.JobRunning || j.LeaseOwner != owner || j.Attempt != 1 {
					t.Errorf("job of %s is %s held by %q at attempt %d; want still RUNNING under its owner", owner, j.Status, j.LeaseOwner, j.Attempt)
				}
			}
		})
	}
}

// TestStartsBounded: a job whose worker stops responding every time (its
// lease lapses) uses up no attempt, but after max_attempts × 10 starts it is
// FAILED, saying so and naming its last real failure.
func TestStartsBounded(t *testing.T) {
	t.Parallel()
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			env := servertest.Start(t, dialect, servertest.Options{NoWorkers: true, Server: server.Config{MaxAttempts: 2}})
			f := newFixture(t, env)
			ctx := context.Background()
			id := f.create(t)
			// One real failure first, retried at once.
			j, err := env.Store.ClaimJob(ctx, "w/1/a", time.Hour, 0)
			if err != nil || j == nil {
				t.Fatalf("claim: %v, %v", j, err)
			}
			if err := env.Store.RetryJob(ctx, j, "report generation failed: disk full", env.Store.Now()); err != nil {
				t.Fatal(err)
			}
			// Then every start's lease lapses at once, as if its worker died.
			for start := 2; start <= 2*store.StartsPerAttempt; start++ {
				j, err := env.Store.ClaimJob(ctx, "w/1/a", -time.Second, 0)
				if err != nil || j == nil {
					t.Fatalf("start %d: %v, %v", start, j, err)
				}
				if j.Attempt != start || j.Failures != 1 {
					t.Fatalf("start %d: attempt %d, failures %d; want failures to stay 1", start, j.Attempt, j.Failures)
				}
			}
			if j, err := env.Store.ClaimJob(ctx, "w/1/a", time.Hour, 0); err != nil || j != nil {
				t.Fatalf("claim past the bound: %v, %v; want nothing claimed", j, err)
			}
			got := f.watch(t, id)
			if got.GetStatus() != auditv1.ExportStatus_FAILED || got.GetFailedAttempts() != 1 ||
				!strings.Contains(got.GetError(), "started 20 times") || !strings.HasSuffix(got.GetError(), "the last failed attempt said: report generation failed: disk full") {
				t.Errorf("job ended %s with %d failed attempts: %q", got.GetStatus(), got.GetFailedAttempts(), got.GetError())
			}
		})
	}
}
