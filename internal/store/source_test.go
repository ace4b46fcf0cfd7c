package store_test

import (
	"bytes"
	"context"
	"slices"
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
						GeneratedAt: from, Watermark: int64(len(evs)), HIPAA: reportstest.HIPAAProfile()}
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

// TestSourceAttestations checks, on both stores, that a report's
// attestation query selects the records created, revoked or superseded in
// the period, and no other: the period's bounds appear in it three times.
func TestSourceAttestations(t *testing.T) {
	t.Parallel()
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	to := from.AddDate(0, 3, 0)
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			st := storetest.Open(t, dialect)
			var now time.Time
			st.SetClock(func() time.Time { return now })
			tn, err := st.CreateTenant(ctx, "Attest", true, false)
			if err != nil {
				t.Fatal(err)
			}
			is, err := st.CreateIssuer(ctx, tn.ID, "Acme CA", "did:web:ca.example.com", "TIER_1")
			if err != nil {
				t.Fatal(err)
			}
			record := func(id string, created time.Time) {
				t.Helper()
				if _, err := st.RecordAttestation(ctx, tn.ID, store.NewAttestation{ID: id, IssuerID: is.ID, Subject: "did:example:" + id,
					Schema: "consent/v1", DataCategories: []string{"health"}, LegalBasis: "consent", CreatedAt: created}); err != nil {
					t.Fatal(err)
				}
			}
			record("before_revoked_in", from.AddDate(0, -1, 0))
			record("created_in", from.AddDate(0, 1, 0))
			record("superseded_in", from.Add(time.Hour))
			record("before_untouched", from.Add(-time.Microsecond))
			record("created_at_end", to)
			record("before_revoked_after", from.AddDate(0, -2, 0))
			now = from.AddDate(0, 0, 10)
			if _, err := st.RevokeAttestation(ctx, tn.ID, "before_revoked_in"); err != nil {
				t.Fatal(err)
			}
			now = from.AddDate(0, 2, 0)
			if _, _, err := st.SupersedeAttestation(ctx, tn.ID, "superseded_in", store.NewAttestation{ID: "replacement_in", IssuerID: is.ID,
				Subject: "did:example:superseded_in", Schema: "consent/v2", LegalBasis: "consent"}); err != nil {
				t.Fatal(err)
			}
			now = to
			if _, err := st.RevokeAttestation(ctx, tn.ID, "before_revoked_after"); err != nil {
				t.Fatal(err)
			}
			var got []string
			err = st.Source(tn.ID).Attestations(ctx, from, to, func(a *reports.Attestation) error {
				got = append(got, a.ID+":"+a.Status)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			want := []string{"before_revoked_in:REVOKED", "superseded_in:SUPERSEDED", "created_in:ACTIVE", "replacement_in:ACTIVE"}
			if !slices.Equal(got, want) {
				t.Errorf("attestations %v, want %v", got, want)
			}
		})
	}
}
