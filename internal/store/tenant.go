package store

import (
	"context"

	"github.com/google/uuid"

	"github.com/exportd/exportd/ent"
	"github.com/exportd/exportd/ent/principal"
	"github.com/exportd/exportd/internal/fault"
	"github.com/exportd/exportd/internal/tenancy"
)

// CreateTenant creates a tenant; compliancePack enables the add-on at once.
func (s *Store) CreateTenant(ctx context.Context, name string, compliancePack, sandbox bool) (*ent.Tenant, error) {
	ctx = tenancy.System(ctx)
	t, err := s.Ent.Tenant.Create().
		SetID(uuid.NewString()).
		SetName(name).
		SetCompliancePack(compliancePack).
		SetSandbox(sandbox).
		SetCreatedAt(s.now()).
		Save(ctx)
	return t, translate(err, "tenant")
}

// Tenant returns one tenant.
func (s *Store) Tenant(ctx context.Context, id string) (*ent.Tenant, error) {
	ctx = scoped(ctx, id)
	t, err := s.Ent.Tenant.Get(ctx, id)
	return t, translate(err, "tenant "+id)
}

// SetCompliancePack enables or disables the Compliance Pack add-on.
func (s *Store) SetCompliancePack(ctx context.Context, tenantID string, on bool) error {
	ctx = scoped(ctx, tenantID)
	err := s.Ent.Tenant.UpdateOneID(tenantID).SetCompliancePack(on).Exec(ctx)
	return translate(err, "tenant "+tenantID)
}

// EnsurePrincipal returns the principal named name in the tenant, creating it
// (as a user when name looks like an email, else a service) when missing.
func (s *Store) EnsurePrincipal(ctx context.Context, tenantID, name string) (*ent.Principal, error) {
	ctx = scoped(ctx, tenantID)
	p, err := s.Ent.Principal.Query().
		Where(principal.TenantID(tenantID), principal.Name(name)).
		Only(ctx)
	if err == nil {
		return p, nil
	}
	if !ent.IsNotFound(err) {
		return nil, translate(err, "principal")
	}
	kind := principal.KindService
	for _, c := range name {
		if c == '@' {
			kind = principal.KindUser
		}
	}
	p, err = s.Ent.Principal.Create().
		SetID(uuid.NewString()).
		SetTenantID(tenantID).
		SetName(name).
		SetKind(kind).
		SetCreatedAt(s.now()).
		Save(ctx)
	if ent.IsConstraintError(err) { // created concurrently
		return s.Ent.Principal.Query().Where(principal.TenantID(tenantID), principal.Name(name)).Only(ctx)
	}
	return p, translate(err, "principal")
}

// requireTenant fails with NotFound when the tenant does not exist.
func (s *Store) requireTenant(ctx context.Context, id string) (*ent.Tenant, error) {
	if _, err := uuid.Parse(id); err != nil {
		return nil, fault.New(fault.NotFound, "tenant %s not found", id)
	}
	return s.Tenant(ctx, id)
}
