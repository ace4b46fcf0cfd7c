package store

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	"entgo.io/ent/dialect"

	"github.com/exportd/exportd/reports"
)

// BenchmarkCopyBaseline is the floor under BenchmarkIngest on PostgreSQL:
// the same rows of 1,000 events, already hashed, sent with COPY and
// committed, without the tenant lock, the chain or the counter. Set
// EXPORTD_TEST_DATABASE_URL to run it.
func BenchmarkCopyBaseline(b *testing.B) {
	ctx := context.Background()
	st := openForBench(b)
	if st.Dialect != dialect.Postgres {
		b.Skip("COPY is PostgreSQL only")
	}
	tn, err := st.CreateTenant(ctx, "Bench", true, false)
	if err != nil {
		b.Fatal(err)
	}
	const size = 1000
	at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	rows := make([][]pending, b.N)
	for n := range rows {
		rows[n] = make([]pending, size)
		for i := range rows[n] {
			e := &NewEvent{ClientEventID: fmt.Sprintf("b%d-%d", n, i), Event: reports.Event{
				Sequence: int64(n*size + i + 1), OccurredAt: at.Add(time.Duration(n*size+i) * time.Second),
				ActorID: "user1@example.com", ActorType: "user", Action: "record.read", ResourceType: "record",
				ResourceID: fmt.Sprintf("rec_%d", i), Outcome: "success", Category: "data", IP: "203.0.113.9",
				UserAgent: "test/1", RequestID: fmt.Sprintf("req_%d", i)}}
			rows[n][i] = pending{e: e, meta: []byte("{}"), hash: fmt.Sprintf("%064x", n*size+i)}
		}
	}
	b.ResetTimer()
	for n := range b.N {
		tx, err := st.db.BeginTx(ctx, nil)
		if err != nil {
			b.Fatal(err)
		}
		if err := copyEvents(ctx, tx, tn.ID, rows[n]); err != nil {
			b.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "events/s")
}

// openForBench opens PostgreSQL in a schema of its own (storetest cannot be
// imported from inside the package it tests).
func openForBench(b *testing.B) *Store {
	base := os.Getenv("EXPORTD_TEST_DATABASE_URL")
	if base == "" {
		b.Skip("set EXPORTD_TEST_DATABASE_URL to run this benchmark")
	}
	schema := fmt.Sprintf("bench_%d", time.Now().UnixNano())
	admin, err := sql.Open("postgres", base)
	if err != nil {
		b.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if db, err := sql.Open("postgres", base); err == nil {
			_, _ = db.Exec("DROP SCHEMA " + schema + " CASCADE")
			db.Close()
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		b.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	st, err := Open(context.Background(), u.String(), "")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	return st
}
