package store

import (
	"context"
)

// UpdateRetention sets the tenant's audit retention and download window.
func (s *Store) UpdateRetention(ctx context.Context, tenantID string, auditDays, downloadDays int) (*Tenant, error) {
	ctx = scoped(ctx, tenantID)
	t, err := s.client.Tenant.UpdateOneID(tenantID).SetAuditRetentionDays(auditDays).SetDownloadWindowDays(downloadDays).Save(ctx)
	return tenantFromEnt(t), translate(err, "tenant "+tenantID)
}

// SetGDPRProfile replaces the tenant's GDPR profile; the caller has checked
// it with reports.ParseGDPRProfile.
func (s *Store) SetGDPRProfile(ctx context.Context, tenantID string, profile map[string]any) (*Tenant, error) {
	ctx = scoped(ctx, tenantID)
	t, err := s.client.Tenant.UpdateOneID(tenantID).SetGdprProfile(profile).Save(ctx)
	return tenantFromEnt(t), translate(err, "tenant "+tenantID)
}

// SetHIPAAProfile replaces the tenant's HIPAA profile; the caller has
// checked it with reports.ParseHIPAAProfile.
func (s *Store) SetHIPAAProfile(ctx context.Context, tenantID string, profile map[string]any) (*Tenant, error) {
	ctx = scoped(ctx, tenantID)
	t, err := s.client.Tenant.UpdateOneID(tenantID).SetHipaaProfile(profile).Save(ctx)
	return tenantFromEnt(t), translate(err, "tenant "+tenantID)
}
