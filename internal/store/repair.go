package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/exportd/exportd/ent"
	entrepair "github.com/exportd/exportd/ent/chainrepair"
	"github.com/exportd/exportd/internal/fault"
)

// Chain repair.
//
// Before negative zero was written 0 in canonical metadata, an event whose
// metadata held -0 was hashed over "-0" while PostgreSQL's jsonb stored 0:
// such an event can never be re-hashed from the database, and VerifyChain
// reported its tenant's chain broken there for good (the log is append-only).
// RepairChain finds those events and proves, for each, that the stored hash
// is the hash of the stored event with some of its zeros written -0; it
// records the proof (the bytes that hash) beside the event, never changing
// the event or its hash, and VerifyChain then checks that event against the
// recorded bytes. An event whose mismatch no such spelling explains is not
// repaired: that is a changed event, and stays reported.

// repairReason says what a chain repair explains.
const repairReason = "negative zero: the hash covers -0 where the database stores 0"

// maxRepairZeros bounds the zeros whose spellings a repair tries (2^n
// hashes for one event).
const maxRepairZeros = 16

// Repair is one event a chain repair explains.
type Repair struct {
	Sequence       int64
	StoredHash     string
	HashedMetadata string // the canonical metadata the stored hash covers
	StoredMetadata string // the canonical metadata the database gives back
}

// RepairReport is the outcome of RepairChain.
type RepairReport struct {
	// Checked counts the events read.
	Checked int64
	// Found lists the events whose mismatch a repair explains (recorded
	// when applied), and Existing counts those recorded before.
	Found    []Repair
	Existing int64
	// BrokenAt is the first event no repair explains, and Reason says why;
	// 0 when every link holds. A repair with such a break records nothing.
	BrokenAt int64
	Reason   string
	// Applied says the found repairs were recorded.
	Applied bool
}

// linker checks one link of a chain against its stored hash.
type linker struct{ buf []byte }

// hash is the link of e over prev with meta as its metadata.
func (l *linker) hash(prev [sha256.Size]byte, tenantID string, e *StoredEvent, meta []byte) string {
	l.buf = CanonicalEvent(l.buf[:0], tenantID, &e.Event, meta, e.ClientEventID)
	h := sha256.New()
	h.Write(prev[:])
	h.Write(l.buf)
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0]))
}

// matches says whether e's stored hash is its link over prev: with its
// metadata in today's canonical form, in the form of before negative zero
// was written 0, or with the bytes a chain repair recorded for it.
func (l *linker) matches(prev [sha256.Size]byte, tenantID string, e *StoredEvent, repaired []byte) (bool, error) {
	meta, err := CanonicalJSON(e.rawMeta)
	if err != nil {
		// Metadata written before NUL was refused (on SQLite) is checked
		// in its old form only.
		meta = nil
	}
	if meta != nil && l.hash(prev, tenantID, e, meta) == e.Hash {
		return true, nil
	}
	legacy, lerr := legacyCanonicalJSON(e.rawMeta)
	if lerr != nil {
		return false, lerr
	}
	if string(legacy) != string(meta) && l.hash(prev, tenantID, e, legacy) == e.Hash {
		return true, nil
	}
	return repaired != nil && l.hash(prev, tenantID, e, repaired) == e.Hash, nil
}

// chainRepairs reads the recorded repairs of the tenant's events in
// [from, to], by sequence.
func (s *Store) chainRepairs(ctx context.Context, tenantID string, from, to int64) (map[int64][]byte, error) {
	rs, err := s.client.ChainRepair.Query().
		Where(entrepair.TenantID(tenantID), entrepair.SequenceGTE(from), entrepair.SequenceLTE(to)).
		All(scoped(ctx, tenantID))
	if err != nil {
		return nil, fmt.Errorf("read chain repairs: %w", err)
	}
	out := make(map[int64][]byte, len(rs))
	for _, r := range rs {
		out[r.Sequence] = []byte(r.HashedMetadata)
	}
	return out, nil
}

// RepairChain walks the tenant's whole remaining log and explains every
// link that does not re-hash (see the comment at the top of this file).
// With apply, and only when every broken link is explained, it records the
// repairs; by names who ran it. It writes nothing else: the caller audits
// the repair in the tenant's log.
func (s *Store) RepairChain(ctx context.Context, tenantID, by string, apply bool) (RepairReport, error) {
	ctx = scoped(ctx, tenantID)
	var r RepairReport
	c, err := s.chainState(ctx, s.db, tenantID, "")
	if err != nil {
		return r, err
	}
	existing, err := s.chainRepairs(ctx, tenantID, 0, c.seq)
	if err != nil {
		return r, err
	}
	r.Existing = int64(len(existing))
	prev, err := decodeHash(c.baseHash)
	if err != nil {
		return r, fault.New(fault.FailedPrecondition, "the tenant's chain base hash is malformed")
	}
	rows, err := s.db.QueryContext(ctx, "SELECT "+storedColumns+" FROM audit_events WHERE tenant_id = "+s.ph(1)+
		" AND sequence > "+s.ph(2)+" ORDER BY sequence", tenantID, c.baseSeq)
	if err != nil {
		return r, fmt.Errorf("read events: %w", err)
	}
	defer rows.Close()
	var l linker
	want := c.baseSeq + 1
	for rows.Next() {
		e, err := scanStored(rows)
		if err != nil {
			return r, err
		}
		r.Checked++
		if e.Sequence != want {
			r.BrokenAt, r.Reason = want, fmt.Sprintf("event %d is missing", want)
			break
		}
		want++
		ok, err := l.matches(prev, tenantID, &e, existing[e.Sequence])
		if err != nil {
			r.BrokenAt, r.Reason = e.Sequence, fmt.Sprintf("event %d has metadata that is not JSON", e.Sequence)
			break
		}
		if !ok {
			rep, found := l.explain(prev, tenantID, &e)
			if !found {
				r.BrokenAt, r.Reason = e.Sequence, fmt.Sprintf("event %d does not match its hash, and no spelling of its zeros explains it: the event or its hash was changed after it was written", e.Sequence)
				break
			}
			r.Found = append(r.Found, rep)
		}
		if prev, err = decodeHash(e.Hash); err != nil {
			r.BrokenAt, r.Reason = e.Sequence, fmt.Sprintf("event %d has a malformed hash", e.Sequence)
			break
		}
	}
	if err := rows.Err(); err != nil {
		return r, fmt.Errorf("read events: %w", err)
	}
	if !apply || r.BrokenAt != 0 || len(r.Found) == 0 {
		return r, nil
	}
	err = s.tx(ctx, func(tx *ent.Tx) error {
		for _, f := range r.Found {
			if err := tx.ChainRepair.Create().SetTenantID(tenantID).SetSequence(f.Sequence).SetStoredHash(f.StoredHash).
				SetHashedMetadata(f.HashedMetadata).SetStoredMetadata(f.StoredMetadata).SetReason(repairReason).
				SetRepairedBy(by).Exec(ctx); err != nil {
				return fmt.Errorf("record chain repair of event %d: %w", f.Sequence, err)
			}
		}
		return nil
	})
	if err != nil {
		return r, err
	}
	r.Applied = true
	return r, nil
}

// explain looks for the spelling of e's zeros that its stored hash covers:
// each subset of the numbers 0 in its canonical metadata written -0.
func (l *linker) explain(prev [sha256.Size]byte, tenantID string, e *StoredEvent) (Repair, bool) {
	meta, err := CanonicalJSON(e.rawMeta)
	if err != nil {
		return Repair{}, false
	}
	zeros := zeroNumbers(meta)
	if len(zeros) == 0 || len(zeros) > maxRepairZeros {
		return Repair{}, false
	}
	variant := make([]byte, 0, len(meta)+len(zeros))
	for mask := 1; mask < 1<<len(zeros); mask++ {
		variant = variant[:0]
		last := 0
		for i, at := range zeros {
			if mask&(1<<i) != 0 {
				variant = append(variant, meta[last:at]...)
				variant = append(variant, '-')
				last = at
			}
		}
		variant = append(variant, meta[last:]...)
		if l.hash(prev, tenantID, e, variant) == e.Hash {
			return Repair{Sequence: e.Sequence, StoredHash: e.Hash, HashedMetadata: string(variant), StoredMetadata: string(meta)}, true
		}
	}
	return Repair{}, false
}

// zeroNumbers lists the offsets of the JSON numbers that are exactly 0 in
// canonical JSON (outside strings).
func zeroNumbers(b []byte) []int {
	var out []int
	inString, escaped := false, false
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '-' || (c >= '0' && c <= '9'):
			j := i
			for j < len(b) && (b[j] == '-' || b[j] == '+' || b[j] == '.' || b[j] == 'e' || b[j] == 'E' || (b[j] >= '0' && b[j] <= '9')) {
				j++
			}
			if string(b[i:j]) == "0" {
				out = append(out, i)
			}
			i = j - 1
		}
	}
	return out
}
