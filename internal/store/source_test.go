package store_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/exportd/exportd/internal/store"
	"github.com/exportd/exportd/internal/store/storetest"
	"github.com/exportd/exportd/reports"
	"github.com/exportd/exportd/reports/reportstest"
)

// TestSourceReportsMatchDecodedEvents checks, on both stores, that reports
// generated straight from the database (times as integers, metadata handed
// on as canonical JSON) are byte for byte the reports of the same events
// decoded the ordinary way (QueryEvents: time.Time, metadata as a map),
// for metadata of every shape the fast path takes or leaves.
func TestSourceReportsMatchDecodedEvents(t *testing.T) {
	t.Parallel()
	metas := []map[string]any{
		nil,
		{},
		{"reason": "scheduled review", "ticket": "SEC-1234"},
		{"b": 1, "aa": -2, "a": true, "c": nil, "d": false},
		{"html": "<a href='x'>&</a>", "u": "Änderung — “Zeile 2”", "sep": "\u2028", "ctl": "a\r\nb\t\"c\""},
		{"n": 1.5, "big": 1e21, "small": 1e-7, "int": 1234567890123456.0, "zero": 0},
		{"nested": map[string]any{"z": 1, "y": []any{"x", 2.5, nil}}, "list": []any{}},
		{"formula": "=1+1", "lead": " x", "": "empty key"},
	}
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	to := from.AddDate(0, 3, 0)
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			st := storetest.Open(t, dialect)
			tn, err := st.CreateTenant(ctx, "Raw", true, false)
			if err != nil {
				t.Fatal(err)
			}
			var evs []reports.Event
			for i := range 3 * len(metas) {
				cat := [...]string{"access", "api", "data"}[i%3]
				evs = append(evs, reports.Event{
					OccurredAt: from.Add(time.Duration(i) * 37 * time.Hour).Add(time.Duration(i*7919) * time.Microsecond),
					ActorID:    "a@example.com", ActorType: "user", Action: "record.read", Outcome: "success",
					Category: cat, PHI: i%2 == 0, ResourceType: "record", ResourceID: "-r1", IP: "203.0.113.9",
					UserAgent: "ua, \"quoted\"", RequestID: "req", Metadata: metas[i%len(metas)],
				})
			}
			if _, _, err := st.AppendEvents(ctx, tn.ID, evs); err != nil {
				t.Fatal(err)
			}
			var decoded []reports.Event
			err = st.StreamEvents(ctx, tn.ID, store.EventQuery{}, func(e store.StoredEvent) error {
				decoded = append(decoded, e.Event)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, typ := range []string{reports.TypeSOC2, reports.TypeHIPAA} {
				for _, format := range []string{reports.FormatCSV, reports.FormatJSON} {
					req := reports.Request{ReportType: typ, Format: format, TenantID: tn.ID,
						PeriodStart: from, PeriodEnd: to.Add(-time.Second), AppliedStart: from, AppliedEnd: to,
						GeneratedAt: from, Watermark: int64(len(evs))}
					var got, want bytes.Buffer
					if _, err := reports.Generate(ctx, &got, req, st.Source(tn.ID), nil); err != nil {
						t.Fatal(err)
					}
					if _, err := reports.Generate(ctx, &want, req, reportstest.NewSource(decoded, nil), nil); err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(got.Bytes(), want.Bytes()) {
						t.Errorf("%s %s from the database differs from the decoded events\n--- got ---\n%s\n--- want ---\n%s", typ, format, got.Bytes(), want.Bytes())
					}
				}
			}
		})
	}
}

// TestEstimateEvents checks the estimate's two index probes on both stores:
// nothing in the period, one event, and a range of them.
func TestEstimateEvents(t *testing.T) {
	t.Parallel()
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			st := storetest.Open(t, dialect)
			tn, err := st.CreateTenant(ctx, "Estimate", true, false)
			if err != nil {
				t.Fatal(err)
			}
			var evs []reports.Event
			for i := range 10 {
				evs = append(evs, reports.Event{OccurredAt: from.Add(time.Duration(i) * time.Hour), ActorID: "a", ActorType: "user",
					Action: "record.read", Outcome: "success", Category: "data"})
			}
			if _, _, err := st.AppendEvents(ctx, tn.ID, evs); err != nil {
				t.Fatal(err)
			}
			for _, tc := range []struct {
				from, to time.Time
				want     int64
			}{
				{from.Add(-time.Hour), from, 0},
				{from.Add(3 * time.Hour), from.Add(3*time.Hour + time.Microsecond), 1},
				{from.Add(2 * time.Hour), from.Add(7 * time.Hour), 5},
				{from, from.AddDate(0, 1, 0), 10},
			} {
				got, err := st.EstimateEvents(ctx, tn.ID, tc.from, tc.to)
				if err != nil {
					t.Fatal(err)
				}
				if got != tc.want {
					t.Errorf("EstimateEvents(%s, %s) = %d, want %d", tc.from, tc.to, got, tc.want)
				}
			}
		})
	}
}
