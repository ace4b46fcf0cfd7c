package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/exportd/exportd/internal/store"
	"github.com/exportd/exportd/internal/store/storetest"
)

// newJob queues a job of tenant tn created at at, with maxAttempts failed
// attempts allowed (0: the default).
func newJob(t *testing.T, st *store.Store, tn string, at time.Time, maxAttempts int) string {
	t.Helper()
	st.SetClock(func() time.Time { return at })
	j, _, err := st.CreateJob(context.Background(), store.NewJob{TenantID: tn, RequestedBy: "p", ReportType: "soc2", Format: "json",
		PeriodStart: t0, PeriodEnd: t0.Add(time.Hour), AppliedStart: t0, AppliedEnd: t0.Add(time.Hour), Estimate: at, MaxAttempts: maxAttempts})
	if err != nil {
		t.Fatal(err)
	}
	return j.ID
}

// clock is a settable store clock, safe for concurrent claims.
type clock struct{ ns atomic.Int64 }

func setClock(st *store.Store, at time.Time) *clock {
	c := &clock{}
	c.set(at)
	st.SetClock(func() time.Time { return time.Unix(0, c.ns.Load()).UTC() })
	return c
}

func (c *clock) set(at time.Time)    { c.ns.Store(at.UnixNano()) }
func (c *clock) add(d time.Duration) { c.ns.Add(int64(d)) }
func (c *clock) now() time.Time      { return time.Unix(0, c.ns.Load()).UTC() }
func claim(t *testing.T, st *store.Store, owner string, lease time.Duration, limit int) string {
	t.Helper()
	j, err := st.ClaimJob(context.Background(), owner, lease, limit)
	if err != nil {
		t.Fatalf("claim as %s: %v", owner, err)
	}
	if j == nil {
		return ""
	}
	return j.ID
}

// TestQueueOldestFirst: jobs are claimed in the order they were created,
// whatever the order of their ids, across tenants; deliveries in the order
// they are due.
func TestQueueOldestFirst(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			st := storetest.Open(t, d)
			a, b := tenant(t, st), tenant(t, st)
			var want []string
			for i, tn := range []string{a, b, a, b, a} {
				want = append(want, newJob(t, st, tn, t0.Add(time.Duration(i)*time.Second), 0))
			}
			setClock(st, t0.Add(time.Minute))
			for i, id := range want {
				if got := claim(t, st, "w", time.Minute, 0); got != id {
					t.Fatalf("claim %d = %q; want %q (created %d.)", i, got, id, i+1)
				}
			}
			if got := claim(t, st, "w", time.Minute, 0); got != "" {
				t.Fatalf("claim of an empty queue = %q", got)
			}
		})
	}
}

// TestQueueLapsedLease: a live lease keeps the job from others; once it
// lapses the next claim takes the job over as a new attempt, and the old
// holder's heartbeat, release and completion change nothing.
func TestQueueLapsedLease(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			st := storetest.Open(t, d)
			ctx := context.Background()
			id := newJob(t, st, tenant(t, st), t0, 0)
			c := setClock(st, t0.Add(time.Minute))
			old, err := st.ClaimJob(ctx, "w1", time.Minute, 0)
			if err != nil || old == nil || old.ID != id || old.Attempt != 1 || old.LeaseOwner != "w1" || old.Status != store.JobRunning {
				t.Fatalf("first claim = %v, %v", old, err)
			}
			c.add(59 * time.Second)
			if got := claim(t, st, "w2", time.Minute, 0); got != "" {
				t.Fatalf("claim under a live lease took %s", got)
			}
			if err := st.Heartbeat(ctx, old, time.Minute, 1, 2, c.now()); err != nil {
				t.Fatalf("heartbeat of the holder: %v", err)
			}
			c.add(61 * time.Second) // the renewed lease has lapsed
			taken, err := st.ClaimJob(ctx, "w2", time.Minute, 0)
			if err != nil || taken == nil || taken.ID != id || taken.Attempt != 2 || taken.LeaseOwner != "w2" || taken.RowsDone != 0 {
				t.Fatalf("takeover = %v, %v; want attempt 2 of w2 with progress reset", taken, err)
			}
			if !taken.StartedAt.Equal(c.now().Truncate(time.Microsecond)) || taken.LeaseUntil == nil || !taken.LeaseUntil.Equal(c.now().Add(time.Minute).Truncate(time.Microsecond)) {
				t.Fatalf("takeover started %v with lease until %v; want now and now + 1m", taken.StartedAt, taken.LeaseUntil)
			}
			for name, err := range map[string]error{
				"heartbeat": st.Heartbeat(ctx, old, time.Minute, 5, 5, c.now()),
				"release":   st.ReleaseJob(ctx, old),
				"retry":     st.RetryJob(ctx, old, "late", c.now()),
				"fail":      st.FailJob(ctx, old, "late"),
				"complete":  st.CompleteJob(ctx, old, store.Artifact{Key: "k", Rows: 5}, time.Hour),
			} {
				if !errors.Is(err, store.ErrLeaseLost) {
					t.Errorf("%s of the fenced-out attempt = %v; want ErrLeaseLost", name, err)
				}
			}
			if err := st.CompleteJob(ctx, taken, store.Artifact{Key: "k2", Rows: 7}, time.Hour); err != nil {
				t.Fatalf("complete by the new holder: %v", err)
			}
			j, err := st.JobByID(ctx, id)
			if err != nil || j.Status != store.JobCompleted || j.CompletedBy != "w2" || j.ArtifactKey != "k2" {
				t.Fatalf("job = %v, %v; want COMPLETED by w2", j, err)
			}
		})
	}
}

// TestQueueNextAttempt: a job put back for a retry is not claimed before its
// next attempt is due, and younger jobs go first meanwhile.
func TestQueueNextAttempt(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			st := storetest.Open(t, d)
			ctx := context.Background()
			tn := tenant(t, st)
			first := newJob(t, st, tn, t0, 0)
			second := newJob(t, st, tn, t0.Add(time.Second), 0)
			c := setClock(st, t0.Add(time.Minute))
			j, err := st.ClaimJob(ctx, "w", time.Minute, 0)
			if err != nil || j == nil || j.ID != first {
				t.Fatalf("claim = %v, %v", j, err)
			}
			if err := st.RetryJob(ctx, j, "disk full", c.now().Add(30*time.Second)); err != nil {
				t.Fatal(err)
			}
			if got := claim(t, st, "w", time.Minute, 0); got != second {
				t.Fatalf("claim while the first waits = %q; want the second, %s", got, second)
			}
			c.add(29 * time.Second)
			if got := claim(t, st, "w", time.Minute, 0); got != "" {
				t.Fatalf("claim a second before the retry = %q", got)
			}
			c.add(time.Second)
			r, err := st.ClaimJob(ctx, "w", time.Minute, 0)
			if err != nil || r == nil || r.ID != first || r.Attempt != 2 || r.Failures != 1 || r.NextAttemptAt != nil {
				t.Fatalf("claim when the retry is due = %v, %v; want attempt 2 with the retry time cleared", r, err)
			}
		})
	}
}

// TestQueueExhausted: a job started max_attempts × StartsPerAttempt times
// is FAILED when it is due again, with its export.failed webhook queued, and
// the same claim goes on to the next job.
func TestQueueExhausted(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			st := storetest.Open(t, d)
			ctx := context.Background()
			tn := tenant(t, st)
			if _, _, err := st.CreateWebhook(ctx, tn, store.WebhookChange{URL: "https://hooks.example/x", Enabled: true}); err != nil {
				t.Fatal(err)
			}
			crashing := newJob(t, st, tn, t0, 1)
			next := newJob(t, st, tn, t0.Add(time.Second), 0)
			c := setClock(st, t0.Add(time.Minute))
			for start := 1; start <= store.StartsPerAttempt; start++ {
				// Every lease lapses at once, as if its worker died.
				j, err := st.ClaimJob(ctx, "w", -time.Second, 0)
				if err != nil || j == nil || j.ID != crashing || j.Attempt != start {
					t.Fatalf("start %d = %v, %v", start, j, err)
				}
				c.add(time.Second)
			}
			if got := claim(t, st, "w", time.Minute, 0); got != next {
				t.Fatalf("claim past the bound = %q; want the next job, %s", got, next)
			}
			j, err := st.JobByID(ctx, crashing)
			if err != nil || j.Status != store.JobFailed || j.LeaseOwner != "" || j.LeaseUntil != nil ||
				!strings.Contains(j.Error, fmt.Sprintf("started %d times", store.StartsPerAttempt)) {
				t.Fatalf("exhausted job = %v, %v; want FAILED for its starts", j, err)
			}
			ds, err := st.Deliveries(ctx, tn, crashing)
			if err != nil || len(ds) != 1 || ds[0].Event != store.EventExportFailed {
				t.Fatalf("deliveries = %v, %v; want one export.failed", ds, err)
			}
		})
	}
}

// TestQueueRunningCap: however many workers claim at once, a tenant never
// has more than the cap running, and a tenant at its cap does not stop the
// jobs of another behind it. Round after round, 12 claimers race for a tenant
// with a cap of 2 (on PostgreSQL the race the claim's re-check closes: the
// statement's own count cannot see a claim committed while it ran).
func TestQueueRunningCap(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			st := storetest.Open(t, d)
			ctx := context.Background()
			busy, other := tenant(t, st), tenant(t, st)
			const (
				limit    = 2
				claimers = 12
				rounds   = 8
			)
			for i := range rounds * limit {
				newJob(t, st, busy, t0.Add(time.Duration(i)*time.Second), 0)
			}
			for i := range rounds * limit {
				newJob(t, st, other, t0.Add(time.Hour+time.Duration(i)*time.Second), 0)
			}
			c := setClock(st, t0.Add(2*time.Hour))
			for round := range rounds {
				var (
					wg    sync.WaitGroup
					start = make(chan struct{})
					mu    sync.Mutex
					got   = map[string][]string{}
				)
				for w := range claimers {
					wg.Go(func() {
						<-start
						j, err := st.ClaimJob(ctx, fmt.Sprintf("w%d", w), time.Hour, limit)
						if err != nil {
							t.Errorf("claim: %v", err)
							return
						}
						if j != nil {
							mu.Lock()
							got[j.TenantID] = append(got[j.TenantID], j.ID)
							mu.Unlock()
						}
					})
				}
				close(start)
				wg.Wait()
				if len(got[busy]) != limit || len(got[other]) != limit {
					t.Fatalf("round %d: claimed %d of the busy tenant and %d of the other; want %d of each",
						round, len(got[busy]), len(got[other]), limit)
				}
				for _, id := range append(got[busy], got[other]...) {
					j, err := st.JobByID(ctx, id)
					if err != nil {
						t.Fatal(err)
					}
					if err := st.FailJob(ctx, j, "done"); err != nil {
						t.Fatal(err)
					}
				}
				c.add(time.Second)
			}
		})
	}
}

// TestQueueDeliveriesOnce: concurrent deliverers claim every due delivery
// exactly once, oldest due first per deliverer, and a claimed delivery is
// fenced on its attempt.
func TestQueueDeliveriesOnce(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			st := storetest.Open(t, d)
			ctx := context.Background()
			tn := tenant(t, st)
			if _, _, err := st.CreateWebhook(ctx, tn, store.WebhookChange{URL: "https://hooks.example/x", Enabled: true}); err != nil {
				t.Fatal(err)
			}
			const jobs = 24
			for i := range jobs {
				id := newJob(t, st, tn, t0.Add(time.Duration(i)*time.Second), 0)
				if _, err := st.CancelJob(ctx, tn, id, "tester"); err != nil {
					t.Fatal(err)
				}
			}
			setClock(st, t0.Add(time.Hour))
			var (
				wg   sync.WaitGroup
				mu   sync.Mutex
				seen = map[string]int{}
			)
			for w := range 8 {
				wg.Go(func() {
					var last time.Time
					for {
						dl, ep, err := st.ClaimDelivery(ctx, fmt.Sprintf("d%d", w), time.Hour)
						if err != nil {
							t.Errorf("claim delivery: %v", err)
							return
						}
						if dl == nil {
							return
						}
						if ep == nil || ep.ID != dl.EndpointID || dl.Attempts != 1 || dl.LeaseOwner != fmt.Sprintf("d%d", w) {
							t.Errorf("claimed %v with endpoint %v", dl, ep)
						}
						if dl.NextAttemptAt.Before(last) {
							t.Errorf("delivery due at %v claimed after one due at %v", dl.NextAttemptAt, last)
						}
						last = dl.NextAttemptAt
						mu.Lock()
						seen[dl.ID]++
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			if len(seen) != jobs {
				t.Fatalf("claimed %d deliveries; want %d", len(seen), jobs)
			}
			for id, n := range seen {
				if n != 1 {
					t.Errorf("delivery %s claimed %d times", id, n)
				}
			}
		})
	}
}

// TestQueueDeliveryLease: a delivery whose lease lapsed is claimed again as
// its next attempt, and the outcome of the attempt before is refused.
func TestQueueDeliveryLease(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			st := storetest.Open(t, d)
			ctx := context.Background()
			tn := tenant(t, st)
			if _, _, err := st.CreateWebhook(ctx, tn, store.WebhookChange{URL: "https://hooks.example/x", Enabled: true}); err != nil {
				t.Fatal(err)
			}
			id := newJob(t, st, tn, t0, 0)
			if _, err := st.CancelJob(ctx, tn, id, "tester"); err != nil {
				t.Fatal(err)
			}
			c := setClock(st, t0.Add(time.Minute))
			old, _, err := st.ClaimDelivery(ctx, "d1", time.Minute)
			if err != nil || old == nil {
				t.Fatalf("claim: %v, %v", old, err)
			}
			if dl, _, err := st.ClaimDelivery(ctx, "d2", time.Minute); err != nil || dl != nil {
				t.Fatalf("claim under a live lease = %v, %v", dl, err)
			}
			c.add(2 * time.Minute)
			taken, _, err := st.ClaimDelivery(ctx, "d2", time.Minute)
			if err != nil || taken == nil || taken.ID != old.ID || taken.Attempts != 2 {
				t.Fatalf("takeover = %v, %v; want attempt 2", taken, err)
			}
			if err := st.RecordDelivery(ctx, old, store.DeliveryOutcome{StatusCode: 200}); !errors.Is(err, store.ErrLeaseLost) {
				t.Fatalf("outcome of the lapsed attempt = %v; want ErrLeaseLost", err)
			}
			if err := st.RecordDelivery(ctx, taken, store.DeliveryOutcome{StatusCode: 200}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestClaimJobStatements counts the statements the store sends the database
// per claimed job and per empty poll, and logs them. With the one-statement
// claim: 1 per job (2 on PostgreSQL under a running cap: the claim and its
// re-count), however many due jobs of a tenant at its cap come first;
// before it, 4 to 6 per job and 30 behind a capped tenant's 8 jobs.
func TestClaimJobStatements(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		for _, limit := range []int{0, 4} {
			t.Run(fmt.Sprintf("%s/cap=%d", d, limit), func(t *testing.T) {
				t.Parallel()
				var n atomic.Int64
				st := storetest.OpenRewriting(t, d, func(q string) string { n.Add(1); return q })
				ctx := context.Background()
				tn := tenant(t, st)
				const jobs = 4
				for i := range jobs {
					newJob(t, st, tn, t0.Add(time.Duration(i)*time.Second), 0)
				}
				setClock(st, t0.Add(time.Minute))
				n.Store(0)
				for i := range jobs {
					j, err := st.ClaimJob(ctx, "w", time.Minute, limit)
					if err != nil || j == nil {
						t.Fatalf("claim %d: %v, %v", i, j, err)
					}
				}
				perJob := n.Load() / jobs
				n.Store(0)
				if j, err := st.ClaimJob(ctx, "w", time.Minute, limit); err != nil || j != nil {
					t.Fatalf("claim of an empty queue: %v, %v", j, err)
				}
				t.Logf("%s, cap %d: statements per claimed job: %d; per empty poll: %d", d, limit, perJob, n.Load())
				want := int64(1)
				if d == "postgres" && limit > 0 {
					want = 2
				}
				if perJob != want {
					t.Errorf("%d statements per claimed job; want %d", perJob, want)
				}
			})
		}
		// A tenant at its cap with 8 due jobs queued ahead of another
		// tenant's job: the claim must look past them.
		t.Run(d+"/behind-capped-tenant", func(t *testing.T) {
			t.Parallel()
			var n atomic.Int64
			st := storetest.OpenRewriting(t, d, func(q string) string { n.Add(1); return q })
			ctx := context.Background()
			busy, other := tenant(t, st), tenant(t, st)
			for i := range 9 {
				newJob(t, st, busy, t0.Add(time.Duration(i)*time.Second), 0)
			}
			want := newJob(t, st, other, t0.Add(time.Minute), 0)
			setClock(st, t0.Add(time.Hour))
			if j, err := st.ClaimJob(ctx, "w", time.Minute, 1); err != nil || j == nil {
				t.Fatalf("first claim: %v, %v", j, err)
			}
			n.Store(0)
			j, err := st.ClaimJob(ctx, "w", time.Minute, 1)
			if err != nil || j == nil || j.ID != want {
				t.Fatalf("claim behind a capped tenant = %v, %v; want %s", j, err, want)
			}
			t.Logf("%s: statements for a claim behind a capped tenant's 8 due jobs: %d", d, n.Load())
			if n.Load() > 2 {
				t.Errorf("%d statements; want at most 2", n.Load())
			}
		})
	}
}
