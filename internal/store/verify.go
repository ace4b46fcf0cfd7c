package store

import (
	"context"
	"database/sql"
	"encoding/hex"
	"fmt"
	"time"

	"entgo.io/ent/dialect"

	"github.com/exportd/exportd/internal/fault"
)

// ChainReport is the outcome of VerifyChain.
type ChainReport struct {
	// OK is true when every link in [From, To] recomputes.
	OK bool
	// From and To are the sequences checked, after clamping to what the log
	// holds (the first remaining event after retention, the last written).
	From, To int64
	// Checked counts the events recomputed.
	Checked int64
	// BrokenAt is the first sequence whose link fails, and Reason says why.
	BrokenAt int64
	Reason   string
	// Hash is the chain hash at To when OK.
	Hash string
	// Repaired counts the events checked against the bytes a chain repair
	// recorded (see RepairChain).
	Repaired int64
}

// chainState is the chain bookkeeping on a tenant row.
type chainState struct {
	seq, baseSeq   int64
	head, baseHash string
}

func (s *Store) chainState(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, tenantID, lock string) (chainState, error) {
	var c chainState
	err := q.QueryRowContext(ctx, "SELECT event_seq, chain_head, chain_base_seq, chain_base_hash FROM tenants WHERE id = "+s.ph(1)+lock, tenantID).
		Scan(&c.seq, &c.head, &c.baseSeq, &c.baseHash)
	if err == sql.ErrNoRows {
		return c, fault.New(fault.NotFound, "tenant %s not found", tenantID)
	}
	if err != nil {
		return c, fmt.Errorf("read chain state: %w", err)
	}
	return c, nil
}

// ChainHash is the chain hash at sequence seq of the tenant's log: the hash
// of that event, or the retention base when seq is where the remaining chain
// starts. It is "" for seq 0.
func (s *Store) ChainHash(ctx context.Context, tenantID string, seq int64) (string, error) {
	ctx = scoped(ctx, tenantID)
	c, err := s.chainState(ctx, s.db, tenantID, "")
	if err != nil {
		return "", err
	}
	if seq == c.baseSeq {
		return c.baseHash, nil
	}
	var h string
	err = s.db.QueryRowContext(ctx, "SELECT hash FROM audit_events WHERE tenant_id = "+s.ph(1)+" AND sequence = "+s.ph(2), tenantID, seq).Scan(&h)
	if err == sql.ErrNoRows {
		return "", fault.New(fault.NotFound, "audit event %d not found", seq)
	}
	if err != nil {
		return "", fmt.Errorf("read chain hash: %w", err)
	}
	return h, nil
}

// VerifyChain recomputes the hash chain over the sequences [from, to] of the
// tenant's log (0 means "from the first remaining event" and "to the last")
// and reports the first broken link: a missing sequence, an event whose
// bytes or hash changed, or a head that no longer matches the tenant row.
// The link into from is taken from the stored hash of from-1 (or the
// retention base), so a range is checked against its predecessor; checking
// from the start anchors everything.
func (s *Store) VerifyChain(ctx context.Context, tenantID string, from, to int64) (ChainReport, error) {
	ctx = scoped(ctx, tenantID)
	c, err := s.chainState(ctx, s.db, tenantID, "")
	if err != nil {
		return ChainReport{}, err
	}
	if from <= c.baseSeq {
		from = c.baseSeq + 1
	}
	if to <= 0 || to > c.seq {
		to = c.seq
	}
	r := ChainReport{From: from, To: to}
	if from > to {
		r.OK, r.Hash = true, c.head
		if to > c.baseSeq {
			r.Hash, err = s.ChainHash(ctx, tenantID, to)
		}
		return r, err
	}
	broken := func(seq int64, format string, args ...any) (ChainReport, error) {
		r.BrokenAt, r.Reason = seq, fmt.Sprintf(format, args...)
		return r, nil
	}
	prevHex := c.baseHash
	if from-1 > c.baseSeq {
		prevHex, err = s.ChainHash(ctx, tenantID, from-1)
		if fault.KindOf(err) == fault.NotFound {
			return broken(from-1, "event %d is missing", from-1)
		}
		if err != nil {
			return r, err
		}
	}
	prev, err := decodeHash(prevHex)
	if err != nil {
		return broken(from-1, "event %d has a malformed hash", from-1)
	}
	repairs, err := s.chainRepairs(ctx, tenantID, from, to)
	if err != nil {
		return r, err
	}
	rows, err := s.db.QueryContext(ctx, "SELECT "+storedColumns+" FROM audit_events WHERE tenant_id = "+s.ph(1)+
		" AND sequence >= "+s.ph(2)+" AND sequence <= "+s.ph(3)+" ORDER BY sequence", tenantID, from, to)
	if err != nil {
		return r, fmt.Errorf("read events: %w", err)
	}
	defer rows.Close()
	want := from
	var l linker
	for rows.Next() {
		e, err := scanStored(rows)
		if err != nil {
			return r, err
		}
		if e.Sequence != want {
			return broken(want, "event %d is missing", want)
		}
		ok, err := l.matches(prev, tenantID, &e, repairs[e.Sequence])
		if err != nil {
			return broken(want, "event %d has metadata that is not JSON", want)
		}
		if !ok {
			return broken(want, "event %d does not match its hash: the event or its hash was changed after it was written", want)
		}
		prev, _ = decodeHash(e.Hash)
		if _, repaired := repairs[e.Sequence]; repaired {
			r.Repaired++
		}
		r.Checked++
		want++
	}
	if err := rows.Err(); err != nil {
		return r, fmt.Errorf("read events: %w", err)
	}
	if want <= to {
		return broken(want, "event %d is missing", want)
	}
	r.Hash = hex.EncodeToString(prev[:])
	if to == c.seq && r.Hash != c.head {
		return broken(to, "the chain ends at %s but the tenant's recorded head is %s: events up to %d were rewritten", r.Hash, c.head, to)
	}
	r.OK = true
	return r, nil
}

// PurgeEvents deletes the tenant's events past its audit retention and
// returns how many it removed. It removes only a prefix of the log (the
// events before the first one still inside retention), and never reaches
// into the period of a PENDING or RUNNING export, so the remaining log stays
// one chain: the tenant row records the sequence and hash it starts from.
func (s *Store) PurgeEvents(ctx context.Context, tenantID string) (int64, error) {
	ctx = scoped(ctx, tenantID)
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("begin transaction: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	lock := ""
	if s.Dialect == dialect.Postgres {
		lock = " FOR UPDATE"
	}
	c, err := s.chainState(ctx, tx, tenantID, lock)
	if err != nil {
		return 0, err
	}
	var days int
	if err := tx.QueryRowContext(ctx, "SELECT audit_retention_days FROM tenants WHERE id = "+s.ph(1), tenantID).Scan(&days); err != nil {
		return 0, fmt.Errorf("read retention: %w", err)
	}
	cutoff := micro(s.now().AddDate(0, 0, -days))
	// ORDER BY … LIMIT 1 rather than min(): SQLite's min() forgets the
	// column is a time.
	var busy time.Time
	err = tx.QueryRowContext(ctx, "SELECT applied_start FROM export_jobs WHERE tenant_id = "+s.ph(1)+
		" AND status IN ('PENDING', 'RUNNING') ORDER BY applied_start LIMIT 1", tenantID).Scan(&busy)
	switch {
	case err == sql.ErrNoRows:
	case err != nil:
		return 0, fmt.Errorf("read open exports: %w", err)
	case busy.Before(cutoff):
		cutoff = micro(busy)
	}
	var keep sql.NullInt64
	if err := tx.QueryRowContext(ctx, "SELECT min(sequence) FROM audit_events WHERE tenant_id = "+s.ph(1)+" AND occurred_at >= "+s.ph(2),
		tenantID, cutoff).Scan(&keep); err != nil {
		return 0, fmt.Errorf("find retention boundary: %w", err)
	}
	last := c.seq
	if keep.Valid {
		last = keep.Int64 - 1
	}
	if last <= c.baseSeq {
		return 0, nil
	}
	var base string
	if err := tx.QueryRowContext(ctx, "SELECT hash FROM audit_events WHERE tenant_id = "+s.ph(1)+" AND sequence = "+s.ph(2),
		tenantID, last).Scan(&base); err != nil {
		return 0, fmt.Errorf("read new chain base: %w", err)
	}
	res, err := tx.ExecContext(ctx, "DELETE FROM audit_events WHERE tenant_id = "+s.ph(1)+" AND sequence <= "+s.ph(2), tenantID, last)
	if err != nil {
		return 0, fmt.Errorf("delete expired events: %w", err)
	}
	n, _ := res.RowsAffected()
	if _, err := tx.ExecContext(ctx, "UPDATE tenants SET chain_base_seq = "+s.ph(1)+", chain_base_hash = "+s.ph(2)+" WHERE id = "+s.ph(3),
		last, base, tenantID); err != nil {
		return 0, fmt.Errorf("record chain base: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("commit purge: %w", err)
	}
	return n, nil
}

// PurgeAll applies PurgeEvents to every tenant and returns how many events
// it removed in all.
func (s *Store) PurgeAll(ctx context.Context) (int64, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT id FROM tenants ORDER BY id")
	if err != nil {
		return 0, fmt.Errorf("list tenants: %w", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, fmt.Errorf("scan tenant: %w", err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("list tenants: %w", err)
	}
	var total int64
	for _, id := range ids {
		n, err := s.PurgeEvents(ctx, id)
		if err != nil {
			return total, fmt.Errorf("purge tenant %s: %w", id, err)
		}
		total += n
	}
	return total, nil
}

// RetentionLoop purges expired events every interval until ctx ends,
// reporting each round's outcome to report.
func (s *Store) RetentionLoop(ctx context.Context, every time.Duration, report func(removed int64, err error)) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		n, err := s.PurgeAll(ctx)
		report(n, err)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
