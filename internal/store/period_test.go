package store_test

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/exportd/exportd/internal/store/storetest"
	"github.com/exportd/exportd/reports"
)

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

// TestPeriodBoundaries checks which events a period includes, through the
// real database, on both stores: the inclusive whole-second end, the last
// microsecond, a leap day, a one-second period, an empty one and an end with
// a fraction.
func TestPeriodBoundaries(t *testing.T) {
	t.Parallel()
	at := []string{
		"2024-02-28T23:59:59.999999Z",
		"2024-02-29T00:00:00Z",
		"2024-02-29T12:00:00.5Z",
		"2024-02-29T23:59:59.999999Z",
		"2024-03-01T00:00:00Z",
		"2026-03-31T23:59:58.999999Z",
		"2026-03-31T23:59:59Z",
		"2026-03-31T23:59:59.5Z",
		"2026-03-31T23:59:59.500001Z",
		"2026-03-31T23:59:59.999999Z",
		"2026-04-01T00:00:00Z",
	}
	cases := []struct {
		name       string
		start, end string
		want       []string // occurred_at of the events included
	}{
		{"inclusive whole-second end keeps the last microsecond", "2026-03-01T00:00:00Z", "2026-03-31T23:59:59Z",
			[]string{"2026-03-31T23:59:58.999999Z", "2026-03-31T23:59:59Z", "2026-03-31T23:59:59.5Z", "2026-03-31T23:59:59.500001Z", "2026-03-31T23:59:59.999999Z"}},
		{"leap day", "2024-02-29T00:00:00Z", "2024-02-29T23:59:59Z",
			[]string{"2024-02-29T00:00:00Z", "2024-02-29T12:00:00.5Z", "2024-02-29T23:59:59.999999Z"}},
		{"one second", "2026-03-31T23:59:59Z", "2026-03-31T23:59:59Z",
			[]string{"2026-03-31T23:59:59Z", "2026-03-31T23:59:59.5Z", "2026-03-31T23:59:59.500001Z", "2026-03-31T23:59:59.999999Z"}},
		{"fractional end is inclusive to the microsecond", "2026-03-31T23:59:59Z", "2026-03-31T23:59:59.5Z",
			[]string{"2026-03-31T23:59:59Z", "2026-03-31T23:59:59.5Z"}},
		{"empty period", "2025-06-01T00:00:00Z", "2025-06-30T23:59:59Z", nil},
	}
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			st := storetest.Open(t, dialect)
			tn, err := st.CreateTenant(ctx, "Boundaries", true, false)
			if err != nil {
				t.Fatal(err)
			}
			var evs []reports.Event
			for _, s := range at {
				evs = append(evs, reports.Event{OccurredAt: ts(s), ActorID: "a@example.com", ActorType: "user",
					Action: "record.read", Outcome: "success", Category: "data"})
			}
			if _, _, err := st.AppendEvents(ctx, tn.ID, evs); err != nil {
				t.Fatal(err)
			}
			for _, tc := range cases {
				from, to := reports.AppliedPeriod(ts(tc.start), ts(tc.end))
				var got []string
				err := st.Source(tn.ID).Events(ctx, reports.EventFilter{From: from, To: to, MaxSequence: 1 << 62}, func(e *reports.Event) error {
					got = append(got, e.OccurredAt.Format(time.RFC3339Nano))
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(got, tc.want) {
					t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
				}
				// The report agrees, and echoes the period as written.
				var buf bytes.Buffer
				req := reports.Request{ReportType: reports.TypeSOC2, Format: reports.FormatJSON, TenantID: tn.ID,
					PeriodStart: ts(tc.start), PeriodEnd: ts(tc.end), AppliedStart: from, AppliedEnd: to,
					GeneratedAt: time.Now(), Watermark: 1 << 62}
				if _, err := reports.Generate(ctx, &buf, req, st.Source(tn.ID), nil); err != nil {
					t.Fatal(err)
				}
				var r struct {
					PeriodStart  string `json:"period_start"`
					PeriodEnd    string `json:"period_end"`
					AuditEntries int    `json:"audit_entries"`
				}
				if err := json.Unmarshal(buf.Bytes(), &r); err != nil {
					t.Fatal(err)
				}
				if r.AuditEntries != len(tc.want) || r.PeriodStart != tc.start || r.PeriodEnd != tc.end {
					t.Errorf("%s: report says %+v", tc.name, r)
				}
			}
		})
	}
}
