package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"entgo.io/ent/dialect"
	"github.com/lib/pq"

	"github.com/exportd/exportd/internal/fault"
	"github.com/exportd/exportd/reports"
)

// eventColumns are written in this order by both insert paths.
var eventColumns = []string{"tenant_id", "sequence", "occurred_at", "actor_id", "actor_type", "action",
	"resource_type", "resource_id", "outcome", "category", "phi", "ip", "user_agent", "request_id", "metadata",
	"client_event_id", "hash"}

// copyThreshold is the batch size from which PostgreSQL gets COPY instead of
// multi-row INSERTs.
const copyThreshold = 200

// NewEvent is an event to write, with the writer's optional id for it.
type NewEvent struct {
	reports.Event
	// ClientEventID, when set, makes a retry idempotent: an event whose id the
	// tenant's log already holds is not written again.
	ClientEventID string
}

// Ingested says what a write did.
type Ingested struct {
	// Sequences holds, for each event given, the sequence it has in the log:
	// a new one, or the one it got when it was first written.
	Sequences []int64
	// First and Last bound the sequences written now; both 0 when every event
	// was a duplicate.
	First, Last int64
	// Duplicates counts the events already in the log (or repeated in the
	// batch) that were not written again.
	Duplicates int
	// ChainHead is the hash of the tenant's last event after the write.
	ChainHead string
}

// AppendEvents writes events to the tenant's log, giving them the next
// sequences and chaining their hashes. It is Ingest without client event ids.
func (s *Store) AppendEvents(ctx context.Context, tenantID string, evs []reports.Event) (first, last int64, err error) {
	in := make([]NewEvent, len(evs))
	for i := range evs {
		in[i].Event = evs[i]
	}
	r, err := s.Ingest(ctx, tenantID, in)
	if err != nil {
		return 0, 0, err
	}
	return r.First, r.Last, nil
}

// pending is one row to insert, fully computed.
type pending struct {
	e    *NewEvent
	meta []byte
	hash string
}

// Ingest writes a batch to the tenant's log in one transaction. It locks the
// tenant row first, so writers to one tenant take turns; then it drops the
// events whose client event id the log (or the batch) already holds, before
// any sequence is handed out, so sequences stay gap-free; then it hashes each
// new event onto the chain (the previous hash is the chain_head on the
// tenant row, no extra read) and writes the events (COPY on PostgreSQL) and
// the new counter and chain head in the same transaction. Nothing is written
// when any event is invalid.
func (s *Store) Ingest(ctx context.Context, tenantID string, evs []NewEvent) (Ingested, error) {
	var r Ingested
	if len(evs) == 0 {
		return r, nil
	}
	metas := make([][]byte, len(evs))
	for i := range evs {
		if err := checkEvent(&evs[i].Event); err != nil {
			return r, err
		}
		m, err := canonicalMetadata(evs[i].Metadata)
		if err != nil {
			return r, fault.Wrap(fault.InvalidArgument, err, "metadata of event %d is not JSON", i)
		}
		metas[i] = m
	}
	// On PostgreSQL the first attempt skips looking the batch's client event
	// ids up: retries are rare, and the unique index refuses the COPY of a
	// batch that holds a known id, which then runs again with the lookup.
	lookup := s.Dialect != dialect.Postgres
	r, err := s.ingest(ctx, tenantID, evs, metas, lookup)
	if !lookup && isClientIDConflict(err) {
		r, err = s.ingest(ctx, tenantID, evs, metas, true)
	}
	return r, err
}

// isClientIDConflict tells whether err is the unique index on
// (tenant_id, client_event_id) refusing a row.
func isClientIDConflict(err error) bool {
	var pe *pq.Error
	return errors.As(err, &pe) && pe.Code == "23505" && strings.Contains(pe.Constraint, "client_event_id")
}

// ingest is one attempt of Ingest; without lookup it assumes no event of
// the batch is in the log yet.
func (s *Store) ingest(ctx context.Context, tenantID string, evs []NewEvent, metas [][]byte, lookup bool) (Ingested, error) {
	var r Ingested
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return r, fmt.Errorf("begin transaction: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	lock := ""
	if s.Dialect == dialect.Postgres {
		lock = " FOR UPDATE" // SQLite's immediate transaction already holds the write lock
	}
	var (
		seq  int64
		head string
	)
	err = tx.QueryRowContext(ctx, "SELECT event_seq, chain_head FROM tenants WHERE id = "+s.ph(1)+lock, tenantID).Scan(&seq, &head)
	if err == sql.ErrNoRows {
		return r, fault.New(fault.NotFound, "tenant %s not found", tenantID)
	}
	if err != nil {
		return r, fmt.Errorf("lock tenant: %w", err)
	}
	known := map[string]int64{}
	if lookup {
		if known, err = s.knownClientIDs(ctx, tx, tenantID, evs); err != nil {
			return r, err
		}
	}
	prev, err := decodeHash(head)
	if err != nil {
		return r, err
	}
	ch := chainer{prev: prev}
	r.Sequences = make([]int64, len(evs))
	rows := make([]pending, 0, len(evs))
	for i := range evs {
		e := &evs[i]
		if id := e.ClientEventID; id != "" {
			if q, ok := known[id]; ok {
				r.Sequences[i] = q
				r.Duplicates++
				continue
			}
		}
		seq++
		e.Sequence = seq
		e.OccurredAt = micro(e.OccurredAt)
		rows = append(rows, pending{e: e, meta: metas[i], hash: ch.next(tenantID, &e.Event, metas[i], e.ClientEventID)})
		r.Sequences[i] = seq
		if e.ClientEventID != "" {
			known[e.ClientEventID] = seq
		}
	}
	if len(rows) == 0 {
		r.ChainHead = head
		return r, nil // nothing new: leave the tenant row alone
	}
	r.First, r.Last = rows[0].e.Sequence, seq
	r.ChainHead = rows[len(rows)-1].hash
	advance := "UPDATE tenants SET event_seq = " + s.ph(1) + ", chain_head = " + s.ph(2) + " WHERE id = " + s.ph(3)
	switch {
	case s.Dialect == dialect.Postgres && len(rows) >= copyThreshold:
		err = copyEvents(ctx, tx, tenantID, rows)
	case s.Dialect == dialect.Postgres:
		// A small batch (the server's own audit event of each request is one
		// row) goes in one statement with the counter and chain head: the
		// tenant row stays locked for one round trip fewer.
		query, args := s.insertSQL(tenantID, rows)
		n := len(args)
		args = append(args, seq, r.ChainHead, tenantID)
		query = "WITH ins AS (" + query + ") UPDATE tenants SET event_seq = " + s.ph(n+1) + ", chain_head = " + s.ph(n+2) + " WHERE id = " + s.ph(n+3)
		if _, err = tx.ExecContext(ctx, query, args...); err != nil {
			err = fmt.Errorf("insert events: %w", err)
		}
		advance = ""
	default:
		err = s.insertEvents(ctx, tx, tenantID, rows)
	}
	if err != nil {
		return Ingested{}, err
	}
	if advance != "" {
		if _, err := tx.ExecContext(ctx, advance, seq, r.ChainHead, tenantID); err != nil {
			return Ingested{}, fmt.Errorf("advance chain: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return Ingested{}, fmt.Errorf("commit events: %w", err)
	}
	return r, nil
}

// knownClientIDs returns the sequences of the batch's client event ids that
// the tenant's log already holds. The caller holds the tenant lock, so no
// other writer can add one meanwhile.
func (s *Store) knownClientIDs(ctx context.Context, tx *sql.Tx, tenantID string, evs []NewEvent) (map[string]int64, error) {
	known := map[string]int64{}
	var ids []string
	seen := map[string]bool{}
	for i := range evs {
		if id := evs[i].ClientEventID; id != "" && !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return known, nil
	}
	scan := func(rows *sql.Rows, err error) error {
		if err != nil {
			return fmt.Errorf("look up client event ids: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var (
				id string
				q  int64
			)
			if err := rows.Scan(&id, &q); err != nil {
				return fmt.Errorf("scan client event id: %w", err)
			}
			known[id] = q
		}
		return rows.Err()
	}
	if s.Dialect == dialect.Postgres {
		err := scan(tx.QueryContext(ctx, "SELECT client_event_id, sequence FROM audit_events WHERE tenant_id = $1 AND client_event_id = ANY($2)",
			tenantID, pq.Array(ids)))
		return known, err
	}
	const chunk = 500
	for i := 0; i < len(ids); i += chunk {
		part := ids[i:min(i+chunk, len(ids))]
		args := make([]any, 0, len(part)+1)
		args = append(args, tenantID)
		for _, id := range part {
			args = append(args, id)
		}
		q := "SELECT client_event_id, sequence FROM audit_events WHERE tenant_id = ? AND client_event_id IN (?" + strings.Repeat(", ?", len(part)-1) + ")"
		if err := scan(tx.QueryContext(ctx, q, args...)); err != nil {
			return nil, err
		}
	}
	return known, nil
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

func eventRow(tenantID string, p *pending) []any {
	e := p.e
	var cid any
	if e.ClientEventID != "" {
		cid = e.ClientEventID
	}
	return []any{tenantID, e.Sequence, e.OccurredAt, e.ActorID, e.ActorType, e.Action,
		e.ResourceType, e.ResourceID, e.Outcome, e.Category, e.PHI, e.IP, e.UserAgent, e.RequestID, string(p.meta),
		cid, p.hash}
}

func (s *Store) insertEvents(ctx context.Context, tx *sql.Tx, tenantID string, rows []pending) error {
	// SQLite allows 32766 parameters per statement; 17 columns × 500 rows fits.
	const batch = 500
	for i := 0; i < len(rows); i += batch {
		query, args := s.insertSQL(tenantID, rows[i:min(i+batch, len(rows))])
		if _, err := tx.ExecContext(ctx, query, args...); err != nil {
			return fmt.Errorf("insert events: %w", err)
		}
	}
	return nil
}

// insertSQL is one multi-row INSERT of rows and its arguments.
func (s *Store) insertSQL(tenantID string, rows []pending) (string, []any) {
	var sb strings.Builder
	sb.WriteString("INSERT INTO audit_events (" + strings.Join(eventColumns, ", ") + ") VALUES ")
	args := make([]any, 0, len(rows)*len(eventColumns)+3)
	for j := range rows {
		row := eventRow(tenantID, &rows[j])
		if j > 0 {
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
	return sb.String(), args
}

// copyEvents streams a batch into audit_events with COPY FROM STDIN. The
// client event ids were deduplicated under the tenant lock, so the unique
// index cannot refuse a row here; if it ever did, the whole batch rolls back.
func copyEvents(ctx context.Context, tx *sql.Tx, tenantID string, rows []pending) error {
	stmt, err := tx.PrepareContext(ctx, "COPY audit_events ("+strings.Join(eventColumns, ", ")+") FROM STDIN")
	if err != nil {
		return fmt.Errorf("copy events: %w", err)
	}
	for i := range rows {
		if _, err := stmt.ExecContext(ctx, eventRow(tenantID, &rows[i])...); err != nil {
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

// ph is the n-th (1-based) bind parameter in the store's dialect: $n on
// PostgreSQL, ?n on SQLite. Both are numbered, so a statement may use one
// parameter twice with one argument; a bare ? is positional on SQLite and
// would take the next argument instead.
func (s *Store) ph(n int) string {
	if s.Dialect == dialect.Postgres {
		return "$" + strconv.Itoa(n)
	}
	return "?" + strconv.Itoa(n)
}

// LastSequence is the tenant's highest audit sequence: the as-of watermark of
// a report started now.
func (s *Store) LastSequence(ctx context.Context, tenantID string) (int64, error) {
	var n int64
	err := s.db.QueryRowContext(ctx, "SELECT event_seq FROM tenants WHERE id = "+s.ph(1), tenantID).Scan(&n)
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
	if err := src.s.db.QueryRowContext(ctx, "SELECT count(*) FROM audit_events WHERE "+w, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count events: %w", err)
	}
	return n, nil
}

// CountByCategory counts the events f selects per category (f.Category
// ignored) with one scan, where CountEvents takes one per count.
func (src *source) CountByCategory(ctx context.Context, f reports.EventFilter) (map[string]int64, error) {
	f.Category = ""
	w, args := src.where(f)
	rows, err := src.s.db.QueryContext(ctx, "SELECT category, count(*) FROM audit_events WHERE "+w+" GROUP BY category", args...)
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
//
// This is the loop every report spends its time in, so it avoids work per
// row: on PostgreSQL occurred_at comes as integer microseconds (lib/pq
// parses timestamptz text through a string per row), metadata is scanned
// without a copy and handed on as canonical JSON (reports.Event.RawMetadata)
// rather than decoded into a map for the encoders to encode again.
func (src *source) Events(ctx context.Context, f reports.EventFilter, fn func(*reports.Event) error) error {
	w, args := src.where(f)
	at := "occurred_at"
	pg := src.s.Dialect == dialect.Postgres
	if pg {
		at = "(extract(epoch from occurred_at) * 1000000)::bigint"
	}
	rows, err := src.s.db.QueryContext(ctx,
		"SELECT sequence, "+at+", actor_id, actor_type, action, resource_type, resource_id, outcome, category, phi, ip, user_agent, request_id, metadata FROM audit_events WHERE "+
			w+" ORDER BY occurred_at, sequence", args...)
	if err != nil {
		return fmt.Errorf("query events: %w", err)
	}
	defer rows.Close()
	var (
		e      reports.Event
		micros int64
		when   any = &e.OccurredAt
		meta   sql.RawBytes
		canon  []byte
	)
	if pg {
		when = &micros
	}
	for rows.Next() {
		if err := rows.Scan(&e.Sequence, when, &e.ActorID, &e.ActorType, &e.Action, &e.ResourceType,
			&e.ResourceID, &e.Outcome, &e.Category, &e.PHI, &e.IP, &e.UserAgent, &e.RequestID, &meta); err != nil {
			return fmt.Errorf("scan event: %w", err)
		}
		if pg {
			e.OccurredAt = time.UnixMicro(micros).UTC()
		} else {
			e.OccurredAt = e.OccurredAt.UTC()
		}
		if canon, err = appendCanonical(canon[:0], meta); err != nil {
			return fmt.Errorf("decode event %d metadata: %w", e.Sequence, err)
		}
		e.RawMetadata = canon
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
	q := "SELECT a.attestation_id, a.issuer_id, COALESCE(i.name, ''), a.subject, a.schema, a.status, a.data_categories, a.legal_basis, a.created_at, a.revoked_at, a.superseded_by, a.superseded_at " +
		"FROM attestation_records a LEFT JOIN issuers i ON i.id = a.issuer_id " +
		"WHERE a.tenant_id = " + s.ph(1) + " AND (" + in("a.created_at", 2, 3) + " OR " + in("a.revoked_at", 2, 3) + " OR " + in("a.superseded_at", 2, 3) + ") " +
		"ORDER BY a.created_at, a.attestation_id"
	if s.Dialect == dialect.Postgres {
		q = strings.ReplaceAll(q, "a.schema", `a."schema"`)
	}
	rows, err := s.db.QueryContext(ctx, q, src.tenant, micro(from), micro(to))
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
// range bound the count without scanning it. Both probes go in one
// statement: CreateExport waits for it.
func (s *Store) EstimateEvents(ctx context.Context, tenantID string, from, to time.Time) (int64, error) {
	probe := func(order string) string {
		return "(SELECT sequence FROM audit_events WHERE tenant_id = " + s.ph(1) + " AND occurred_at >= " + s.ph(2) + " AND occurred_at < " + s.ph(3) +
			" ORDER BY occurred_at " + order + ", sequence " + order + " LIMIT 1)"
	}
	var first, last sql.NullInt64
	if err := s.db.QueryRowContext(ctx, "SELECT "+probe("ASC")+", "+probe("DESC"), tenantID, micro(from), micro(to)).Scan(&first, &last); err != nil {
		return 0, fmt.Errorf("estimate events: %w", err)
	}
	if !first.Valid || !last.Valid || first.Int64 == 0 {
		return 0, nil
	}
	return max(last.Int64-first.Int64+1, 1), nil
}
