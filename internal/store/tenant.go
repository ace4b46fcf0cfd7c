package store

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/exportd/exportd/ent"
	"github.com/exportd/exportd/ent/principal"
	"github.com/exportd/exportd/internal/fault"
	"github.com/exportd/exportd/internal/tenancy"
)

// Tenant is a customer of the service, with its settings and the head of its
// audit chain.
type Tenant struct {
	ID                 string
	Name               string
	Sandbox            bool
	CompliancePack     bool
	AuditRetentionDays int
	DownloadWindowDays int
	GdprProfile        map[string]any
	HipaaProfile       map[string]any
	EventSeq           int64
	ChainHead          string
	ChainBaseSeq       int64
	ChainBaseHash      string
	CreatedAt          time.Time
}

func tenantFromEnt(t *ent.Tenant) *Tenant {
	if t == nil {
		return nil
	}
	return &Tenant{ID: t.ID, Name: t.Name, Sandbox: t.Sandbox, CompliancePack: t.CompliancePack,
		AuditRetentionDays: t.AuditRetentionDays, DownloadWindowDays: t.DownloadWindowDays,
		GdprProfile: t.GdprProfile, HipaaProfile: t.HipaaProfile, EventSeq: t.EventSeq, ChainHead: t.ChainHead,
		ChainBaseSeq: t.ChainBaseSeq, ChainBaseHash: t.ChainBaseHash, CreatedAt: t.CreatedAt}
}

// Principal is a person (by email) or a service acting in a tenant.
type Principal struct {
	ID        string
	TenantID  string
	Kind      string // user or service
	Name      string
	CreatedAt time.Time
}

func principalFromEnt(p *ent.Principal) *Principal {
	if p == nil {
		return nil
	}
	return &Principal{ID: p.ID, TenantID: p.TenantID, Kind: string(p.Kind), Name: p.Name, CreatedAt: p.CreatedAt}
}

// CreateTenant creates a tenant; compliancePack enables the add-on at once.
func (s *Store) CreateTenant(ctx context.Context, name string, compliancePack, sandbox bool) (*Tenant, error) {
	ctx = tenancy.System(ctx)
	t, err := s.client.Tenant.Create().
		SetID(uuid.NewString()).
		SetName(name).
		SetCompliancePack(compliancePack).
		SetSandbox(sandbox).
		SetCreatedAt(s.now()).
		Save(ctx)
	return tenantFromEnt(t), translate(err, "tenant")
}

// Tenant returns one tenant.
func (s *Store) Tenant(ctx context.Context, id string) (*Tenant, error) {
	ctx = scoped(ctx, id)
	t, err := s.client.Tenant.Get(ctx, id)
	return tenantFromEnt(t), translate(err, "tenant "+id)
}

// SetCompliancePack enables or disables the Compliance Pack add-on.
func (s *Store) SetCompliancePack(ctx context.Context, tenantID string, on bool) error {
	ctx = scoped(ctx, tenantID)
	err := s.client.Tenant.UpdateOneID(tenantID).SetCompliancePack(on).Exec(ctx)
	return translate(err, "tenant "+tenantID)
}

// EnsurePrincipal returns the principal named name in the tenant, creating it
// (as a user when name looks like an email, else a service) when missing.
func (s *Store) EnsurePrincipal(ctx context.Context, tenantID, name string) (*Principal, error) {
	ctx = scoped(ctx, tenantID)
	p, err := s.client.Principal.Query().
		Where(principal.TenantID(tenantID), principal.Name(name)).
		Only(ctx)
	if err == nil {
		return principalFromEnt(p), nil
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
	p, err = s.client.Principal.Create().
		SetID(uuid.NewString()).
		SetTenantID(tenantID).
		SetName(name).
		SetKind(kind).
		SetCreatedAt(s.now()).
		Save(ctx)
	if ent.IsConstraintError(err) { // created concurrently
		p, err = s.client.Principal.Query().Where(principal.TenantID(tenantID), principal.Name(name)).Only(ctx)
		return principalFromEnt(p), err
	}
	return principalFromEnt(p), translate(err, "principal")
}

// requireTenant fails with NotFound when the tenant does not exist.
func (s *Store) requireTenant(ctx context.Context, id string) (*Tenant, error) {
	if _, err := uuid.Parse(id); err != nil {
		return nil, fault.New(fault.NotFound, "tenant %s not found", id)
	}
	return s.Tenant(ctx, id)
}
