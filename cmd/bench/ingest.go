package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/exportd/exportd/internal/store"
	"github.com/exportd/exportd/reports"
)

// ingestBatch is the batch size the ingest target is stated for.
const ingestBatch = 1000

// ingester writes one batch of events to a tenant's log. Each way of
// ingesting (the store in process today; the WriteEvents RPC when it exists)
// is one implementation, picked by -ingest-via.
type ingester interface {
	name() string
	write(ctx context.Context, evs []reports.Event) error
	close()
}

// storeIngester calls store.AppendEvents in this process: the path every
// writer goes through (COPY on PostgreSQL, the tenant's sequence bumped in
// the same transaction).
type storeIngester struct {
	st     *store.Store
	tenant string
}

func (s *storeIngester) name() string { return "store.AppendEvents in process" }

func (s *storeIngester) write(ctx context.Context, evs []reports.Event) error {
	_, _, err := s.st.AppendEvents(ctx, s.tenant, evs)
	return err
}

func (s *storeIngester) close() { s.st.Close() }

func (b *bench) newIngester(ctx context.Context, tenant string) (ingester, error) {
	switch b.o.ingestVia {
	case "store":
		st, err := store.Open(ctx, b.dsn, "")
		if err != nil {
			return nil, err
		}
		return &storeIngester{st: st, tenant: tenant}, nil
	}
	return nil, fmt.Errorf("ingest via %q: unknown", b.o.ingestVia)
}

// ingestRate writes o.ingest events in batches of 1,000 from one writer to
// a fresh tenant and reports events/s. The events are made before the clock
// starts.
func (b *bench) ingestRate(ctx context.Context) error {
	tenant, _, err := b.newTenant(ctx, "ingest")
	if err != nil {
		return err
	}
	ing, err := b.newIngester(ctx, tenant)
	if err != nil {
		return err
	}
	defer ing.close()
	batches := syntheticBatches(b.o.ingest, ingestBatch)
	b.logf("ingest: %d events in batches of %d via %s", b.o.ingest, ingestBatch, ing.name())
	start := time.Now()
	for _, batch := range batches {
		if err := ing.write(ctx, batch); err != nil {
			return fmt.Errorf("ingest: %w", err)
		}
	}
	took := time.Since(start)
	b.res.add(figure{Key: "ingest_events_per_s", Name: fmt.Sprintf("ingest events/s, batches of %d, one writer (%s)", ingestBatch, ing.name()),
		Value: float64(b.o.ingest) / took.Seconds(), Unit: "events/s"}.target(ge, 50_000))
	return nil
}

// syntheticBatches makes n events shaped like a tenant's traffic (the same
// kinds of values seed-demo writes), split into batches.
func syntheticBatches(n, size int) [][]reports.Event {
	rng := rand.New(rand.NewPCG(7, 11))
	actions := []struct{ action, category, resource string }{
		{"attestation.create", "api", "attestation"}, {"record.read", "data", "record"},
		{"patient.read", "data", "patient_record"}, {"auth.login", "access", "session"},
	}
	at := time.Now().UTC().Add(-time.Hour).Truncate(time.Microsecond)
	var out [][]reports.Event
	for i := 0; i < n; i += size {
		batch := make([]reports.Event, 0, min(size, n-i))
		for j := i; j < min(i+size, n); j++ {
			a := actions[rng.IntN(len(actions))]
			e := reports.Event{
				OccurredAt: at.Add(time.Duration(j) * time.Millisecond), ActorID: "user@example.com", ActorType: "user",
				Action: a.action, Category: a.category, ResourceType: a.resource,
				ResourceID: fmt.Sprintf("%s_%06d", a.resource, rng.IntN(50000)), Outcome: "success",
				PHI: a.resource == "patient_record", IP: fmt.Sprintf("203.0.113.%d", 1+rng.IntN(250)),
				UserAgent: "exportctl/1.0", RequestID: fmt.Sprintf("req_%016x", rng.Uint64()),
			}
			if rng.IntN(10) == 0 {
				e.Metadata = map[string]any{"reason": "scheduled review", "ticket": fmt.Sprintf("SEC-%d", 1000+rng.IntN(9000))}
			}
			batch = append(batch, e)
		}
		out = append(out, batch)
	}
	return out
}
