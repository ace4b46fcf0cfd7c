package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"entgo.io/ent/dialect"

	"github.com/exportd/exportd/internal/fault"
	"github.com/exportd/exportd/reports"
)

// eventColumns are written in this order by both insert paths.
var eventColumns = []string{"tenant_id", "sequence", "occurred_at", "actor_id", "actor_type", "action",
	"resource_type", "resource_id", "outcome", "category", "phi", "ip", "user_agent", "request_id", "metadata"}

// copyThreshold is the batch size from which PostgreSQL gets COPY instead of
// multi-row INSERTs.
const copyThreshold = 200

// AppendEvents writes events to the tenant's log, giving them the next
// sequences. The tenant's counter is bumped inside the same transaction, so
// its row lock serialises writers and a rolled-back batch leaves no gap.
func (s *Store) AppendEvents(ctx context.Context, tenantID string, evs []reports.Event) (first, last int64, err error) {
	if len(evs) == 0 {
		return 0, 0, nil
	}
	for i := range evs {
		if err := checkEvent(&evs[i]); err != nil {
			return 0, 0, err
		}
	}
	tx, err := s.DB.BeginTx(ctx, nil)
	if err != nil {
		return 0, 0, fmt.Errorf("begin transaction: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	err = tx.QueryRowContext(ctx,
		"UPDATE tenants SET event_seq = event_seq + "+s.ph(1)+" WHERE id = "+s.ph(2)+" RETURNING event_seq",
		len(evs), tenantID).Scan(&last)
	if err == sql.ErrNoRows {
		return 0, 0, fault.New(fault.NotFound, "tenant %s not found", tenantID)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("reserve sequences: %w", err)
	}
	first = last - int64(len(evs)) + 1
	if s.Dialect == dialect.Postgres && len(evs) >= copyThreshold {
		err = copyEvents(ctx, tx, tenantID, first, evs)
	} else {
		err = s.insertEvents(ctx, tx, tenantID, first, evs)
	}
	if err != nil {
		return 0, 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, 0, fmt.Errorf("commit events: %w", err)
	}
	return first, last, nil
}

func checkEvent(e *reports.Event) error {
	switch e.Category {
	case "api", "access", "data":
	default:
		return fault.Invalid(fault.Violation{Field: "category", Rule: "category.known", Message: "unknown category " + strconv.Quote(e.Category)})
	}
	switch e.Outcome {
	case "success", "failure", "denied":
	default:
		return fault.Invalid(fault.Violation{Field: "outcome", Rule: "outcome.known", Message: "unknown outcome " + strconv.Quote(e.Outcome)})
	}
	if e.Action == "" {
		return fault.Invalid(fault.Violation{Field: "action", Rule: "required", Message: "value is required"})
	}
	return nil
}

func eventRow(tenantID string, seq int64, e *reports.Event) ([]any, error) {
	meta := "{}"
	if len(e.Metadata) > 0 {
		b, err := json.Marshal(e.Metadata)
		if err != nil {
			return nil, fault.Wrap(fault.InvalidArgument, err, "metadata is not JSON")
		}
		meta = string(b)
	}
	return []any{tenantID, seq, micro(e.OccurredAt), e.ActorID, e.ActorType, e.Action,
		e.ResourceType, e.ResourceID, e.Outcome, e.Category, e.PHI, e.IP, e.UserAgent, e.RequestID, meta}, nil
}

func (s *Store) insertEvents(ctx context.Context, tx *sql.Tx, tenantID string, first int64, evs []reports.Event) error {
	// SQLite allows 32766 parameters per statement; 15 columns × 500 rows fits.
	const batch = 500
	for i := 0; i < len(evs); i += batch {
		end := min(i+batch, len(evs))
		var sb strings.Builder
		sb.WriteString("INSERT INTO audit_events (" + strings.Join(eventColumns, ", ") + ") VALUES ")
		args := make([]any, 0, (end-i)*len(eventColumns))
		for j := i; j < end; j++ {
			row, err := eventRow(tenantID, first+int64(j), &evs[j])
			if err != nil {
				return err
			}
			if j > i {
				sb.WriteString(", ")
			}
			sb.WriteByte('(')
			for k := range row {
				if k > 0 {
					sb.WriteString(", ")
				}
				sb.WriteString(s.ph(len(args) + k + 1))
			}
			sb.WriteByte(')')
			args = append(args, row...)
		}
		if _, err := tx.ExecContext(ctx, sb.String(), args...); err != nil {
			return fmt.Errorf("insert events: %w", err)
		}
	}
	return nil
}

// copyEvents streams a batch into audit_events with COPY FROM STDIN.
func copyEvents(ctx context.Context, tx *sql.Tx, tenantID string, first int64, evs []reports.Event) error {
	stmt, err := tx.PrepareContext(ctx, "COPY audit_events ("+strings.Join(eventColumns, ", ")+") FROM STDIN")
	if err != nil {
		return fmt.Errorf("copy events: %w", err)
	}
	for i := range evs {
		row, err := eventRow(tenantID, first+int64(i), &evs[i])
		if err != nil {
			stmt.Close()
			return err
		}
		if _, err := stmt.ExecContext(ctx, row...); err != nil {
			stmt.Close()
			return fmt.Errorf("copy events: %w", err)
		}
	}
	if _, err := stmt.ExecContext(ctx); err != nil {
		stmt.Close()
		return fmt.Errorf("copy events: %w", err)
	}
	return stmt.Close()
}

// ph is the n-th (1-based) bind parameter in the store's dialect.
func (s *Store) ph(n int) string {
	if s.Dialect == dialect.Postgres {
		return "$" + strconv.Itoa(n)
	}
	return "?"
}

// LastSequence is the tenant's highest audit sequence: the as-of watermark of
// a report started now.
func (s *Store) LastSequence(ctx context.Context, tenantID string) (int64, error) {
	var n int64
	err := s.DB.QueryRowContext(ctx, "SELECT event_seq FROM tenants WHERE id = "+s.ph(1), tenantID).Scan(&n)
	if err == sql.ErrNoRows {
		return 0, fault.New(fault.NotFound, "tenant %s not found", tenantID)
	}
	return n, err
}

// Source reads one tenant's rows for a report, streaming from the database.
func (s *Store) Source(tenantID string) reports.Source {
	return &source{s: s, tenant: tenantID}
}

type source struct {
	s      *Store
	tenant string
}

func (src *source) where(f reports.EventFilter) (string, []any) {
	s := src.s
	q := "tenant_id = " + s.ph(1) + " AND occurred_at >= " + s.ph(2) + " AND occurred_at < " + s.ph(3) + " AND sequence <= " + s.ph(4)
	args := []any{src.tenant, micro(f.From), micro(f.To), f.MaxSequence}
	if f.Category != "" {
		args = append(args, f.Category)
		q += " AND category = " + s.ph(len(args))
	}
	if f.PHIOnly {
		q += " AND phi"
		if s.Dialect != dialect.Postgres {
			q += " = 1"
		}
	}
	return q, args
}

// CountEvents counts the events Events would visit.
func (src *source) CountEvents(ctx context.Context, f reports.EventFilter) (int64, error) {
	w, args := src.where(f)
	var n int64
	if err := src.s.DB.QueryRowContext(ctx, "SELECT count(*) FROM audit_events WHERE "+w, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count events: %w", err)
	}
	return n, nil
}

// CountByCategory counts the events f selects per category (f.Category
// ignored) with one scan, where CountEvents takes one per count.
func (src *source) CountByCategory(ctx context.Context, f reports.EventFilter) (map[string]int64, error) {
	f.Category = ""
	w, args := src.where(f)
	rows, err := src.s.DB.QueryContext(ctx, "SELECT category, count(*) FROM audit_events WHERE "+w+" GROUP BY category", args...)
	if err != nil {
		return nil, fmt.Errorf("count events: %w", err)
	}
	defer rows.Close()
	m := map[string]int64{}
	for rows.Next() {
		var (
			c string
			n int64
		)
		if err := rows.Scan(&c, &n); err != nil {
			return nil, fmt.Errorf("count events: %w", err)
		}
		m[c] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count events: %w", err)
	}
	return m, nil
}

// Events streams matching events in (occurred_at, sequence) order with one
// query whose rows are read as they arrive, never all at once.
func (src *source) Events(ctx context.Context, f reports.EventFilter, fn func(*reports.Event) error) error {
	w, args := src.where(f)
	rows, err := src.s.DB.QueryContext(ctx,
		"SELECT sequence, occurred_at, actor_id, actor_type, action, resource_type, resource_id, outcome, category, phi, ip, user_agent, request_id, metadata FROM audit_events WHERE "+
			w+" ORDER BY occurred_at, sequence", args...)
	if err != nil {
		return fmt.Errorf("query events: %w", err)
	}
	defer rows.Close()
	var (
		e    reports.Event
		meta []byte
	)
	for rows.Next() {
		if err := rows.Scan(&e.Sequence, &e.OccurredAt, &e.ActorID, &e.ActorType, &e.Action, &e.ResourceType,
			&e.ResourceID, &e.Outcome, &e.Category, &e.PHI, &e.IP, &e.UserAgent, &e.RequestID, &meta); err != nil {
			return fmt.Errorf("scan event: %w", err)
		}
		e.OccurredAt = e.OccurredAt.UTC()
		e.Metadata = nil
		if len(meta) > 2 { // "{}" carries nothing
			if err := json.Unmarshal(meta, &e.Metadata); err != nil {
				return fmt.Errorf("decode event %d metadata: %w", e.Sequence, err)
			}
		}
		if err := fn(&e); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read events: %w", err)
	}
	return nil
}

// Attestations streams attestation records created, revoked or superseded in
// [from, to).
func (src *source) Attestations(ctx context.Context, from, to time.Time, fn func(*reports.Attestation) error) error {
	s := src.s
	in := func(col string, a, b int) string {
		return "(" + col + " >= " + s.ph(a) + " AND " + col + " < " + s.ph(b) + ")"
	}
	q := "SELECT a.id, a.issuer_id, COALESCE(i.name, ''), a.subject, a.schema, a.status, a.data_categories, a.legal_basis, a.created_at, a.revoked_at, a.superseded_by, a.superseded_at " +
		"FROM attestation_records a LEFT JOIN issuers i ON i.id = a.issuer_id " +
		"WHERE a.tenant_id = " + s.ph(1) + " AND (" + in("a.created_at", 2, 3) + " OR " + in("a.revoked_at", 2, 3) + " OR " + in("a.superseded_at", 2, 3) + ") " +
		"ORDER BY a.created_at, a.id"
	if s.Dialect == dialect.Postgres {
		q = strings.ReplaceAll(q, "a.schema", `a."schema"`)
	}
	rows, err := s.DB.QueryContext(ctx, q, src.tenant, micro(from), micro(to))
	if err != nil {
		return fmt.Errorf("query attestations: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			a            reports.Attestation
			cats         []byte
			revoked, sup sql.NullTime
			supBy        sql.NullString
		)
		if err := rows.Scan(&a.ID, &a.IssuerID, &a.IssuerName, &a.Subject, &a.Schema, &a.Status, &cats, &a.LegalBasis,
			&a.CreatedAt, &revoked, &supBy, &sup); err != nil {
			return fmt.Errorf("scan attestation: %w", err)
		}
		a.CreatedAt = a.CreatedAt.UTC()
		if len(cats) > 0 {
			if err := json.Unmarshal(cats, &a.DataCategories); err != nil {
				return fmt.Errorf("decode attestation %s categories: %w", a.ID, err)
			}
		}
		if revoked.Valid {
			t := revoked.Time.UTC()
			a.RevokedAt = &t
		}
		if sup.Valid {
			t := sup.Time.UTC()
			a.SupersededAt = &t
		}
		a.SupersededBy = supBy.String
		if err := fn(&a); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read attestations: %w", err)
	}
	return nil
}

// EstimateEvents guesses how many events lie in [from, to) from two index
// probes: sequences grow with time, so the first and last sequence in the
// range bound the count without scanning it.
func (s *Store) EstimateEvents(ctx context.Context, tenantID string, from, to time.Time) (int64, error) {
	probe := func(order string) (int64, error) {
		var seq int64
		err := s.DB.QueryRowContext(ctx,
			"SELECT sequence FROM audit_events WHERE tenant_id = "+s.ph(1)+" AND occurred_at >= "+s.ph(2)+" AND occurred_at < "+s.ph(3)+
				" ORDER BY occurred_at "+order+", sequence "+order+" LIMIT 1", tenantID, micro(from), micro(to)).Scan(&seq)
		if err == sql.ErrNoRows {
			return 0, nil
		}
		if err != nil {
			return 0, fmt.Errorf("estimate events: %w", err)
		}
		return seq, nil
	}
	first, err := probe("ASC")
	if err != nil || first == 0 {
		return 0, err
	}
	last, err := probe("DESC")
	if err != nil {
		return 0, err
	}
	return max(last-first+1, 1), nil
}
