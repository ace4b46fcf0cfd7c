package store

import (
	"context"
	"fmt"

	"github.com/exportd/exportd/ent/attestationrecord"
	"github.com/exportd/exportd/ent/issuer"
)

// SeedIssuer stores an issuer exactly as given, its id and creation time
// included, for demo data and tests; CreateIssuer is the way of the service.
// It does not move the authorization version.
func (s *Store) SeedIssuer(ctx context.Context, is Issuer) error {
	ctx = scoped(ctx, is.TenantID)
	err := s.client.Issuer.Create().SetID(is.ID).SetTenantID(is.TenantID).SetName(is.Name).
		SetURI(is.URI).SetTrustTier(issuer.TrustTier(is.TrustTier)).SetCreatedAt(is.CreatedAt).Exec(ctx)
	if err != nil {
		return fmt.Errorf("seed issuer: %w", err)
	}
	return nil
}

// SeedAttestations stores attestation records exactly as given, revoked and
// superseded ones with their times, for demo data and tests;
// RecordAttestation and its kin are the way of the service.
func (s *Store) SeedAttestations(ctx context.Context, tenantID string, as []Attestation) error {
	ctx = scoped(ctx, tenantID)
	for _, a := range as {
		c := s.client.AttestationRecord.Create().SetID(a.ID).SetAttestationID(a.AttestationID).SetTenantID(tenantID).
			SetIssuerID(a.IssuerID).SetSubject(a.Subject).SetSchema(a.Schema).SetDataCategories(a.DataCategories).
			SetLegalBasis(a.LegalBasis).SetCreatedAt(a.CreatedAt).SetStatus(attestationrecord.Status(a.Status)).
			SetNillableRevokedAt(a.RevokedAt).SetNillableSupersededAt(a.SupersededAt).SetNillableSupersededBy(a.SupersededBy)
		if err := c.Exec(ctx); err != nil {
			return fmt.Errorf("seed attestations: %w", err)
		}
	}
	return nil
}
