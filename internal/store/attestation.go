package store

import (
	"context"
	"encoding/base64"
	"strings"
	"time"

	"entgo.io/ent/dialect"
	"github.com/google/uuid"

	"github.com/exportd/exportd/ent"
	"github.com/exportd/exportd/ent/attestationrecord"
	"github.com/exportd/exportd/ent/issuer"
	"github.com/exportd/exportd/internal/fault"
)

// NewAttestation is an attestation record to store.
type NewAttestation struct {
	ID             string // generated when empty
	IssuerID       string
	Subject        string
	Schema         string
	DataCategories []string
	LegalBasis     string
	CreatedAt      time.Time // now when zero
}

// AttestationStatus is where an attestation record is.
type AttestationStatus string

// The statuses of an attestation record: only ACTIVE records change.
const (
	AttestationActive     AttestationStatus = "ACTIVE"
	AttestationRevoked    AttestationStatus = "REVOKED"
	AttestationSuperseded AttestationStatus = "SUPERSEDED"
)

func (st AttestationStatus) String() string { return string(st) }

// Attestation is an attestation record. ID is the row's own key;
// AttestationID is the id the tenant gave it (or ID when it gave none).
type Attestation struct {
	ID             string
	TenantID       string
	AttestationID  string
	IssuerID       string
	Subject        string
	Schema         string
	Status         AttestationStatus
	DataCategories []string
	LegalBasis     string
	CreatedAt      time.Time
	RevokedAt      *time.Time
	SupersededBy   *string
	SupersededAt   *time.Time
}

func attestationFromEnt(a *ent.AttestationRecord) *Attestation {
	if a == nil {
		return nil
	}
	return &Attestation{ID: a.ID, TenantID: a.TenantID, AttestationID: a.AttestationID, IssuerID: a.IssuerID,
		Subject: a.Subject, Schema: a.Schema, Status: AttestationStatus(a.Status), DataCategories: a.DataCategories,
		LegalBasis: a.LegalBasis, CreatedAt: a.CreatedAt, RevokedAt: a.RevokedAt, SupersededBy: a.SupersededBy,
		SupersededAt: a.SupersededAt}
}

// RecordAttestation stores a new ACTIVE record. The issuer must be one of
// the tenant's.
func (s *Store) RecordAttestation(ctx context.Context, tenantID string, na NewAttestation) (*Attestation, error) {
	ctx = scoped(ctx, tenantID)
	var out *ent.AttestationRecord
	err := s.tx(ctx, func(tx *ent.Tx) error {
		var err error
		out, err = recordAttestation(ctx, tx, tenantID, na, s.now())
		return err
	})
	return attestationFromEnt(out), err
}

func recordAttestation(ctx context.Context, tx *ent.Tx, tenantID string, na NewAttestation, now time.Time) (*ent.AttestationRecord, error) {
	ok, err := tx.Issuer.Query().Where(issuer.ID(na.IssuerID), issuer.TenantID(tenantID)).Exist(ctx)
	if err != nil {
		return nil, translate(err, "issuer")
	}
	if !ok {
		return nil, fault.New(fault.NotFound, "issuer %s not found", fault.Echo(na.IssuerID))
	}
	key := "att_" + strings.ReplaceAll(uuid.NewString(), "-", "")
	if na.ID == "" {
		na.ID = key
	}
	if na.CreatedAt.IsZero() {
		na.CreatedAt = now
	}
	a, err := tx.AttestationRecord.Create().
		SetID(key).SetAttestationID(na.ID).SetTenantID(tenantID).SetIssuerID(na.IssuerID).SetSubject(na.Subject).SetSchema(na.Schema).
		SetDataCategories(na.DataCategories).SetLegalBasis(na.LegalBasis).SetCreatedAt(micro(na.CreatedAt)).
		Save(ctx)
	if ent.IsConstraintError(err) {
		return nil, fault.New(fault.AlreadyExists, "attestation %s already exists", na.ID)
	}
	return a, translate(err, "attestation")
}

// Attestation returns one record of the tenant; another tenant's is not found.
func (s *Store) Attestation(ctx context.Context, tenantID, id string) (*Attestation, error) {
	ctx = scoped(ctx, tenantID)
	a, err := s.client.AttestationRecord.Query().Where(attestationrecord.AttestationID(id), attestationrecord.TenantID(tenantID)).Only(ctx)
	return attestationFromEnt(a), translate(err, "attestation "+fault.Echo(id))
}

// activeAttestation reads a record for a change, locking its row on
// PostgreSQL (SQLite's immediate transaction already excludes writers).
func (s *Store) activeAttestation(ctx context.Context, tx *ent.Tx, tenantID, id string) (*ent.AttestationRecord, error) {
	q := tx.AttestationRecord.Query().Where(attestationrecord.AttestationID(id), attestationrecord.TenantID(tenantID))
	if s.Dialect == dialect.Postgres {
		q.ForUpdate()
	}
	a, err := q.Only(ctx)
	if err != nil {
		return nil, translate(err, "attestation "+fault.Echo(id))
	}
	if a.Status != attestationrecord.StatusACTIVE {
		return nil, fault.New(fault.FailedPrecondition, "attestation %s is %s; only ACTIVE records change", fault.Echo(id), a.Status)
	}
	return a, nil
}

// RevokeAttestation marks an ACTIVE record REVOKED.
func (s *Store) RevokeAttestation(ctx context.Context, tenantID, id string) (*Attestation, error) {
	ctx = scoped(ctx, tenantID)
	var out *ent.AttestationRecord
	err := s.tx(ctx, func(tx *ent.Tx) error {
		a, err := s.activeAttestation(ctx, tx, tenantID, id)
		if err != nil {
			return err
		}
		out, err = a.Update().SetStatus(attestationrecord.StatusREVOKED).SetRevokedAt(s.now()).Save(ctx)
		return translate(err, "attestation "+id)
	})
	return attestationFromEnt(out), err
}

// SupersedeAttestation records replacement and marks the ACTIVE record id
// SUPERSEDED by it, in one transaction.
func (s *Store) SupersedeAttestation(ctx context.Context, tenantID, id string, replacement NewAttestation) (old, repl *Attestation, err error) {
	ctx = scoped(ctx, tenantID)
	var o, r *ent.AttestationRecord
	err = s.tx(ctx, func(tx *ent.Tx) error {
		a, err := s.activeAttestation(ctx, tx, tenantID, id)
		if err != nil {
			return err
		}
		now := s.now()
		if r, err = recordAttestation(ctx, tx, tenantID, replacement, now); err != nil {
			return err
		}
		o, err = a.Update().SetStatus(attestationrecord.StatusSUPERSEDED).SetSupersededBy(r.AttestationID).SetSupersededAt(now).Save(ctx)
		return translate(err, "attestation "+id)
	})
	return attestationFromEnt(o), attestationFromEnt(r), err
}

// AttestationFilter selects and pages records; zero fields do not filter.
type AttestationFilter struct {
	Status, IssuerID, Subject string
	PageSize                  int
	PageToken                 string
}

// ListAttestations returns one page of the tenant's records, newest first,
// and the token of the next page.
func (s *Store) ListAttestations(ctx context.Context, tenantID string, f AttestationFilter) ([]*Attestation, string, error) {
	ctx = scoped(ctx, tenantID)
	q := s.client.AttestationRecord.Query().Where(attestationrecord.TenantID(tenantID))
	if f.Status != "" {
		q.Where(attestationrecord.StatusEQ(attestationrecord.Status(f.Status)))
	}
	if f.IssuerID != "" {
		q.Where(attestationrecord.IssuerID(f.IssuerID))
	}
	if f.Subject != "" {
		q.Where(attestationrecord.Subject(f.Subject))
	}
	if f.PageToken != "" {
		at, id, ok := decodeAttestationToken(f.PageToken)
		if !ok {
			return nil, "", fault.Invalid(fault.Violation{Field: "page_token", Rule: "page_token.valid", Message: "is not a page token of this listing"})
		}
		q.Where(attestationrecord.Or(attestationrecord.CreatedAtLT(at),
			attestationrecord.And(attestationrecord.CreatedAt(at), attestationrecord.IDLT(id))))
	}
	size := f.PageSize
	if size <= 0 {
		size = 50
	}
	rows, err := q.Order(ent.Desc(attestationrecord.FieldCreatedAt), ent.Desc(attestationrecord.FieldID)).Limit(size + 1).All(ctx)
	if err != nil {
		return nil, "", translate(err, "attestations")
	}
	next := ""
	if len(rows) > size {
		rows = rows[:size]
		last := rows[size-1]
		next = base64.RawURLEncoding.EncodeToString([]byte(last.CreatedAt.UTC().Format(time.RFC3339Nano) + "|" + last.ID))
	}
	out := make([]*Attestation, len(rows))
	for i, a := range rows {
		out[i] = attestationFromEnt(a)
	}
	return out, next, nil
}

func decodeAttestationToken(tok string) (time.Time, string, bool) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return time.Time{}, "", false
	}
	ts, id, ok := strings.Cut(string(b), "|")
	if !ok {
		return time.Time{}, "", false
	}
	at, err := time.Parse(time.RFC3339Nano, ts)
	return at, id, err == nil
}
