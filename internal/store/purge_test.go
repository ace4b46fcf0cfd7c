package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/exportd/exportd/internal/store"
	"github.com/exportd/exportd/internal/store/storetest"
)

// TestPurgeEvents: retention removes the oldest prefix of the log, stops at
// the period of an open export, and leaves a chain that verifies from the
// first remaining event.
func TestPurgeEvents(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			st := storetest.Open(t, d)
			ctx := context.Background()
			tn := tenant(t, st)
			now := t0.Add(90 * 24 * time.Hour)
			st.SetClock(func() time.Time { return now })
			if _, err := st.UpdateRetention(ctx, tn, 30, 7); err != nil {
				t.Fatal(err)
			}
			old := batch("", 0, 100) // t0 + i seconds: all past retention
			recent := batch("", 0, 20)
			for i := range recent {
				recent[i].OccurredAt = now.Add(-time.Duration(i+1) * time.Hour)
			}
			late := batch("", 500, 1) // an old event written after recent ones
			for _, b := range [][]store.NewEvent{old, recent, late} {
				if _, err := st.Ingest(ctx, tn, b); err != nil {
					t.Fatal(err)
				}
			}
			job, _, err := st.CreateJob(ctx, store.NewJob{TenantID: tn, RequestedBy: "p", ReportType: "soc2", Format: "json",
				PeriodStart: t0.Add(50 * time.Second), PeriodEnd: now, AppliedStart: t0.Add(50 * time.Second), AppliedEnd: now, Estimate: now})
			if err != nil {
				t.Fatal(err)
			}
			n, err := st.PurgeAll(ctx)
			if err != nil || n != 50 {
				t.Fatalf("purge with an open export = %d, %v; want 50 (events before its period)", n, err)
			}
			r, err := st.VerifyChain(ctx, tn, 0, 0)
			if err != nil || !r.OK || r.From != 51 || r.Checked != 71 {
				t.Fatalf("verify after purge = %+v, %v", r, err)
			}
			if _, err := st.CancelJob(ctx, tn, job.ID, "tester"); err != nil {
				t.Fatal(err)
			}
			base, err := st.ChainHash(ctx, tn, 100)
			if err != nil {
				t.Fatal(err)
			}
			n, err = st.PurgeEvents(ctx, tn)
			if err != nil || n != 50 {
				t.Fatalf("purge after the export ended = %d, %v; want 50", n, err)
			}
			if h, err := st.ChainHash(ctx, tn, 100); err != nil || h != base {
				t.Fatalf("chain base = %q, %v; want %q", h, err, base)
			}
			r, err = st.VerifyChain(ctx, tn, 0, 0)
			if err != nil || !r.OK || r.From != 101 || r.Checked != 21 {
				t.Fatalf("verify after second purge = %+v, %v", r, err)
			}
			// Nothing more is due: the late old event sits behind recent ones.
			if n, err := st.PurgeEvents(ctx, tn); err != nil || n != 0 {
				t.Fatalf("third purge = %d, %v", n, err)
			}
			// Deleting the first remaining event is still caught.
			if _, err := st.RawDB().ExecContext(ctx, "DELETE FROM audit_events WHERE tenant_id = '"+tn+"' AND sequence = 101"); err != nil {
				t.Fatal(err)
			}
			if r, err := st.VerifyChain(ctx, tn, 0, 0); err != nil || r.OK || r.BrokenAt != 101 {
				t.Fatalf("verify after deleting 101 = %+v, %v", r, err)
			}
		})
	}
}
