package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
)

// A queue is a table whose rows workers lease: export jobs and webhook
// deliveries. Both are claimed alike, in one statement: the oldest due row
// that no other claimer holds (SKIP LOCKED on PostgreSQL; SQLite runs one
// writing statement at a time) gets an owner and a lease and comes back.
// A lease that lapses makes the row due again, and whoever claims it then
// changes its attempt and owner: the fence of the holder before, whose
// heartbeats and outcomes then change nothing.
type queue struct {
	table string
	// columns are every column of the table, as the ent struct names them.
	columns []string
	// due says which rows may be claimed at the claim's clock $1, over alias
	// q: a row waiting out its backoff (next_attempt_at) is not due yet.
	due string
	// order is the claim order, oldest first; its last key is unique.
	order string
	// claim assigns a claimed row, over alias q: $1 is the clock, $2 the
	// owner and $3 the end of the lease.
	claim string
	// held, when set, marks due rows a claim must not start but hand back
	// instead, over alias q: export jobs started too often.
	held string
	// leased is the status of a leased row, and attempt the column a claim
	// counts up: with the owner they make the fence.
	leased, attempt string
}

// claimFilter narrows one claim.
type claimFilter struct {
	// where is a further condition on the rows that may be claimed, over
	// alias q; its arguments follow the claim's three.
	where string
	// lock, on PostgreSQL, is a locking expression evaluated once on the
	// claimed row (alias q) before the statement returns it.
	lock string
}

// fence selects the row only while the claim that returned attempt to owner
// still holds it.
func (q queue) fence(id string, attempt int, owner string) func(*entsql.Selector) {
	return func(s *entsql.Selector) {
		s.Where(entsql.And(
			entsql.EQ(s.C("id"), id),
			entsql.EQ(s.C("status"), q.leased),
			entsql.EQ(s.C(q.attempt), attempt),
			entsql.EQ(s.C("lease_owner"), owner),
		))
	}
}

// claimSQL is the claim statement of dialect d. Its first column, held,
// says whether the row it returns was claimed (false) or found held (true).
//
// PostgreSQL: the oldest due row nobody has locked is locked and, unless
// held, updated, both in one statement; a row another claimer updated
// meanwhile is re-read when locked and skipped if no longer due.
// SQLite: the write lock, taken when the statement starts, makes the pick
// and the update one step; RETURNING cannot report a held row there, so
// heldSQL does when nothing was claimed.
func (q queue) claimSQL(d string, f claimFilter) string {
	eligible := "TRUE"
	if f.where != "" {
		eligible = f.where
	}
	held := "FALSE"
	if q.held != "" {
		held = q.held
		// A held row is handed back whatever the filter says: it is never
		// started, so no limit on starts applies to it.
		eligible = "(" + q.held + ") OR (" + eligible + ")"
	}
	var b strings.Builder
	if d != dialect.Postgres {
		fmt.Fprintf(&b, "UPDATE %s AS q SET %s WHERE q.id = (SELECT q.id FROM %s q WHERE (%s) AND (%s) ORDER BY %s LIMIT 1) AND NOT (%s) RETURNING FALSE AS held, %s",
			q.table, q.claim, q.table, q.due, eligible, q.order, held, strings.Join(q.columns, ", "))
		return b.String()
	}
	cols := "q." + strings.Join(q.columns, ", q.")
	fmt.Fprintf(&b, "WITH picked AS MATERIALIZED (SELECT q.id, (%s) AS held FROM %s q WHERE (%s) AND (%s) ORDER BY %s LIMIT 1 FOR UPDATE OF q SKIP LOCKED), ",
		held, q.table, q.due, eligible, q.order)
	fmt.Fprintf(&b, "claimed AS (UPDATE %s q SET %s FROM picked WHERE q.id = picked.id AND NOT picked.held RETURNING %s) ",
		q.table, q.claim, cols)
	fmt.Fprintf(&b, "SELECT FALSE AS held, %s FROM claimed q", cols)
	if f.lock != "" {
		// Once per claimed row, after the update: void is never NULL.
		fmt.Fprintf(&b, " WHERE %s IS NOT NULL", f.lock)
	}
	if q.held != "" {
		fmt.Fprintf(&b, " UNION ALL SELECT TRUE, %s FROM %s q JOIN picked ON q.id = picked.id WHERE picked.held", cols, q.table)
	}
	return b.String()
}

// heldSQL finds the oldest due held row at $1, on SQLite.
func (q queue) heldSQL() string {
	return fmt.Sprintf("SELECT TRUE AS held, %s FROM %s q WHERE (%s) AND (%s) ORDER BY %s LIMIT 1",
		strings.Join(q.columns, ", "), q.table, q.due, q.held, q.order)
}

// querier runs a statement on a database or in a transaction.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// claimRow runs q's claim on db and scans what it returns into T, a struct
// embedding the ent entity and a Held field; nil when nothing was due.
// args are the clock, the owner, the lease's end and those of f.where.
func claimRow[T any](ctx context.Context, db querier, d string, q queue, f claimFilter, args []any) (*T, error) {
	got, err := queryRows[T](ctx, db, q.claimSQL(d, f), args...)
	if err != nil || len(got) > 0 || q.held == "" || d == dialect.Postgres {
		return first(got), err
	}
	got, err = queryRows[T](ctx, db, q.heldSQL(), args[0])
	return first(got), err
}

func queryRows[T any](ctx context.Context, db querier, query string, args ...any) ([]T, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	if err := entsql.ScanSlice(rows, &out); err != nil {
		return nil, err
	}
	return out, nil
}

func first[T any](s []T) *T {
	if len(s) == 0 {
		return nil
	}
	return &s[0]
}
