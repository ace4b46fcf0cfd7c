package store_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/exportd/exportd/internal/fault"
	"github.com/exportd/exportd/internal/store"
	"github.com/exportd/exportd/internal/store/storetest"
	"github.com/exportd/exportd/reports"
)

var t0 = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

// event is a valid event at t0 + i seconds.
func event(i int) reports.Event {
	return reports.Event{
		OccurredAt: t0.Add(time.Duration(i) * time.Second).Add(123456 * time.Nanosecond),
		ActorID:    fmt.Sprintf("user%d@example.com", i%3), ActorType: "user",
		Action: "record.read", ResourceType: "record", ResourceID: fmt.Sprintf("rec_%d", i),
		Outcome: "success", Category: "data", IP: "203.0.113.9", UserAgent: "test/1", RequestID: fmt.Sprintf("req_%d", i),
	}
}

func batch(prefix string, from, n int) []store.NewEvent {
	out := make([]store.NewEvent, n)
	for i := range out {
		out[i].Event = event(from + i)
		if prefix != "" {
			out[i].ClientEventID = fmt.Sprintf("%s-%d", prefix, from+i)
		}
	}
	return out
}

func tenant(t *testing.T, st *store.Store) string {
	t.Helper()
	tn, err := st.CreateTenant(context.Background(), "Acme", true, false)
	if err != nil {
		t.Fatalf("create tenant: %v", err)
	}
	return tn.ID
}

func verifyOK(t *testing.T, st *store.Store, tenantID string, want int64) {
	t.Helper()
	r, err := st.VerifyChain(context.Background(), tenantID, 0, 0)
	if err != nil {
		t.Fatalf("verify chain: %v", err)
	}
	if !r.OK || r.Checked != want {
		t.Fatalf("verify chain = %+v, want OK over %d events", r, want)
	}
}

// TestIngestIdempotent writes the same batch twice (and a batch repeating an
// id within itself): each event is stored once and keeps its sequence.
func TestIngestIdempotent(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			st := storetest.Open(t, d)
			ctx := context.Background()
			tn := tenant(t, st)
			for _, size := range []int{10, 1000} { // multi-row INSERT and COPY
				b := batch(fmt.Sprintf("s%d", size), 0, size)
				first, err := st.Ingest(ctx, tn, b)
				if err != nil {
					t.Fatalf("ingest: %v", err)
				}
				if first.Duplicates != 0 || first.Last-first.First != int64(size-1) {
					t.Fatalf("first write = %+v", first)
				}
				again, err := st.Ingest(ctx, tn, batch(fmt.Sprintf("s%d", size), 0, size))
				if err != nil {
					t.Fatalf("ingest again: %v", err)
				}
				if again.Duplicates != size || again.First != 0 || again.ChainHead != first.ChainHead {
					t.Fatalf("second write = %+v, want all %d duplicates", again, size)
				}
				for i := range again.Sequences {
					if again.Sequences[i] != first.Sequences[i] {
						t.Fatalf("event %d: sequence %d on retry, %d first", i, again.Sequences[i], first.Sequences[i])
					}
				}
			}
			// Half old, half new, and one id twice in the batch.
			mixed := append(batch("s10", 5, 10), batch("s10", 14, 1)...)
			r, err := st.Ingest(ctx, tn, mixed)
			if err != nil {
				t.Fatalf("ingest mixed: %v", err)
			}
			if r.Duplicates != 6 || r.First != 1011 || r.Last != 1015 {
				t.Fatalf("mixed write = %+v, want 6 duplicates and sequences 1011..1015", r)
			}
			if r.Sequences[10] != r.Sequences[9] {
				t.Fatalf("repeated id got sequences %d and %d", r.Sequences[9], r.Sequences[10])
			}
			n, err := st.LastSequence(ctx, tn)
			if err != nil || n != 1015 {
				t.Fatalf("last sequence = %d, %v; want 1015", n, err)
			}
			verifyOK(t, st, tn, 1015)
		})
	}
}

// TestIngestInvalidStoresNothing: one bad event rejects the whole batch.
func TestIngestInvalidStoresNothing(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			st := storetest.Open(t, d)
			tn := tenant(t, st)
			b := batch("x", 0, 300)
			b[250].Category = "billing"
			_, err := st.Ingest(context.Background(), tn, b)
			if fault.KindOf(err) != fault.InvalidArgument {
				t.Fatalf("ingest = %v, want invalid argument", err)
			}
			if n, _ := st.LastSequence(context.Background(), tn); n != 0 {
				t.Fatalf("last sequence = %d after a rejected batch", n)
			}
		})
	}
}

// TestConcurrentWriters: writers racing on one tenant get unique, gap-free
// sequences and one unbroken chain, retries included.
func TestConcurrentWriters(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			st := storetest.Open(t, d)
			ctx := context.Background()
			tn := tenant(t, st)
			const writers, batches = 6, 8
			size := 250
			if d == "sqlite" {
				size = 40 // SQLite serialises writers on one file lock; keep the race run short
			}
			var wg sync.WaitGroup
			errs := make(chan error, writers)
			seqs := make([][]int64, writers)
			for w := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for b := range batches {
						evs := batch(fmt.Sprintf("w%d-b%d", w, b), b*size, size)
						if b%3 == 0 {
							for i := range evs {
								evs[i].ClientEventID = "" // some writers send no ids
							}
						}
						r, err := st.Ingest(ctx, tn, evs)
						if err != nil {
							errs <- err
							return
						}
						seqs[w] = append(seqs[w], r.Sequences...)
						if b%3 != 0 { // a retry of a batch with ids stores nothing
							evs := batch(fmt.Sprintf("w%d-b%d", w, b), b*size, size)
							again, err := st.Ingest(ctx, tn, evs)
							if err != nil {
								errs <- err
								return
							}
							if again.Duplicates != size {
								errs <- fmt.Errorf("retry stored %d events", size-again.Duplicates)
								return
							}
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			total := int64(writers * batches * size)
			seen := make(map[int64]bool, total)
			for _, ss := range seqs {
				for _, q := range ss {
					if seen[q] {
						t.Fatalf("sequence %d handed out twice", q)
					}
					seen[q] = true
				}
			}
			for q := range total {
				q++
				if !seen[q] {
					t.Fatalf("sequence %d missing", q)
				}
			}
			if n, _ := st.LastSequence(ctx, tn); n != total {
				t.Fatalf("last sequence = %d, want %d", n, total)
			}
			verifyOK(t, st, tn, total)
		})
	}
}

// TestTamper changes the log behind the store's back: VerifyChain names the
// sequence where the chain breaks.
func TestTamper(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		sql    string // %s is the tenant id; run with the placeholders inlined
		broken int64
		reason string
	}{
		{"edit action", "UPDATE audit_events SET action = 'record.delete' WHERE tenant_id = '%s' AND sequence = 37", 37, "does not match"},
		{"edit time", "UPDATE audit_events SET occurred_at = occurred_at + interval '1 second' WHERE tenant_id = '%s' AND sequence = 12", 12, "does not match"},
		{"edit metadata", "UPDATE audit_events SET metadata = '{\"ticket\":\"SEC-2\"}' WHERE tenant_id = '%s' AND sequence = 5", 5, "does not match"},
		{"edit hash", "UPDATE audit_events SET hash = '00' || substr(hash, 3) WHERE tenant_id = '%s' AND sequence = 50", 50, "does not match"},
		{"delete one", "DELETE FROM audit_events WHERE tenant_id = '%s' AND sequence = 64", 64, "missing"},
		{"delete tail", "DELETE FROM audit_events WHERE tenant_id = '%s' AND sequence >= 98", 98, "missing"},
		{"rewrite head", "UPDATE tenants SET chain_head = 'aa' || substr(chain_head, 3) WHERE id = '%s'", 100, "recorded head"},
	}
	for _, d := range storetest.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			st := storetest.Open(t, d)
			ctx := context.Background()
			for _, c := range cases {
				tn := tenant(t, st)
				evs := batch("", 0, 100)
				evs[4].Metadata = map[string]any{"ticket": "SEC-1", "n": 1e21, "x": 1.5, "s": "<a&b> ü", "nested": map[string]any{"k": []any{1, true, nil}}}
				if _, err := st.Ingest(ctx, tn, evs); err != nil {
					t.Fatalf("ingest: %v", err)
				}
				verifyOK(t, st, tn, 100)
				q := fmt.Sprintf(c.sql, tn)
				if d == "sqlite" {
					q = strings.ReplaceAll(q, "occurred_at + interval '1 second'", "strftime('%Y-%m-%d %H:%M:%f', occurred_at, '+1 second')")
				}
				if _, err := st.RawDB().ExecContext(ctx, q); err != nil {
					t.Fatalf("%s: tamper: %v", c.name, err)
				}
				r, err := st.VerifyChain(ctx, tn, 0, 0)
				if err != nil {
					t.Fatalf("%s: verify: %v", c.name, err)
				}
				if r.OK || r.BrokenAt != c.broken || !strings.Contains(r.Reason, c.reason) {
					t.Errorf("%s: verify = %+v, want broken at %d (%s)", c.name, r, c.broken, c.reason)
				}
				// A range before the damage still verifies.
				if r, err := st.VerifyChain(ctx, tn, 1, 4); err != nil || !r.OK || r.Checked != 4 {
					t.Errorf("%s: verify 1..4 = %+v, %v", c.name, r, err)
				}
			}
		})
	}
}
