package store_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/exportd/exportd/internal/store"
	"github.com/exportd/exportd/internal/store/storetest"
)

// newJob queues a job of tenant tn created at at.
func newJob(t *testing.T, st *store.Store, tn string, at time.Time) string {
	t.Helper()
	st.SetClock(func() time.Time { return at })
	j, _, err := st.CreateJob(context.Background(), store.NewJob{TenantID: tn, RequestedBy: "p", ReportType: "soc2", Format: "json",
		PeriodStart: t0, PeriodEnd: t0.Add(time.Hour), AppliedStart: t0, AppliedEnd: t0.Add(time.Hour), Estimate: at})
	if err != nil {
		t.Fatal(err)
	}
	return j.ID
}

// TestClaimJobStatements counts the statements the store sends the database
// per claimed job and per empty poll, and logs them.
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
					newJob(t, st, tn, t0.Add(time.Duration(i)*time.Second))
				}
				st.SetClock(func() time.Time { return t0.Add(time.Minute) })
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
				t.Logf("statements per claimed job: %d; per empty poll: %d", perJob, n.Load())
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
				newJob(t, st, busy, t0.Add(time.Duration(i)*time.Second))
			}
			want := newJob(t, st, other, t0.Add(time.Minute))
			st.SetClock(func() time.Time { return t0.Add(time.Hour) })
			if j, err := st.ClaimJob(ctx, "w", time.Minute, 1); err != nil || j == nil {
				t.Fatalf("first claim: %v, %v", j, err)
			}
			n.Store(0)
			j, err := st.ClaimJob(ctx, "w", time.Minute, 1)
			if err != nil || j == nil || j.ID != want {
				t.Fatalf("claim behind a capped tenant = %v, %v; want %s", j, err, want)
			}
			t.Logf("statements for a claim behind a capped tenant's 8 due jobs: %d", n.Load())
		})
	}
}
