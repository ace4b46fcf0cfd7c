package store

import (
	"context"
	"fmt"

	entsql "entgo.io/ent/dialect/sql"

	"github.com/exportd/exportd/ent"
	"github.com/exportd/exportd/ent/intercept"
	"github.com/exportd/exportd/internal/tenancy"
)

// tenantColumn names, per entity, the column that says which tenant a row
// belongs to. Entities missing here (authz_versions) are system-only.
var tenantColumn = map[string]string{
	ent.TypeTenant:            "id",
	ent.TypeAPIKey:            "tenant_id",
	ent.TypeAttestationRecord: "tenant_id",
	ent.TypeAuditEvent:        "tenant_id",
	ent.TypeChainRepair:       "tenant_id",
	ent.TypeCasbinRule:        "tenant_id",
	ent.TypeDownloadRecord:    "tenant_id",
	ent.TypeDownloadLink:      "tenant_id",
	ent.TypeExportJob:         "tenant_id",
	ent.TypeIssuancePolicy:    "tenant_id",
	ent.TypeIssuer:            "tenant_id",
	ent.TypePrincipal:         "tenant_id",
	ent.TypeWebhook:           "tenant_id",
	ent.TypeWebhookDelivery:   "tenant_id",
}

// ErrNoTenant refuses data access whose context names no tenant and is not
// marked as system work: a missing scope is a bug, never "all tenants".
type ErrNoTenant struct{ Entity string }

func (e *ErrNoTenant) Error() string {
	return fmt.Sprintf("tenant isolation: %s access without a tenant in the context", e.Entity)
}

// isolate scopes every ent query and mutation of the client to the tenant in
// its context (tenancy.WithTenant), as ent's privacytenant example does:
// reads get a tenant_id predicate, creates must name the context's tenant,
// updates and deletes get the predicate too. tenancy.System contexts pass.
// Raw SQL paths (events, report sources) take the tenant as an argument.
func isolate(c *ent.Client) {
	c.Intercept(intercept.TraverseFunc(func(ctx context.Context, q intercept.Query) error {
		if tenancy.IsSystem(ctx) {
			return nil
		}
		col, ok := tenantColumn[q.Type()]
		tid := tenancy.Tenant(ctx)
		if !ok || tid == "" {
			return &ErrNoTenant{Entity: q.Type()}
		}
		q.WhereP(entsql.FieldEQ(col, tid))
		return nil
	}))
	c.Use(func(next ent.Mutator) ent.Mutator {
		return ent.MutateFunc(func(ctx context.Context, m ent.Mutation) (ent.Value, error) {
			if tenancy.IsSystem(ctx) {
				return next.Mutate(ctx, m)
			}
			col, ok := tenantColumn[m.Type()]
			tid := tenancy.Tenant(ctx)
			if !ok || tid == "" || m.Type() == ent.TypeTenant && m.Op().Is(ent.OpCreate) {
				return nil, &ErrNoTenant{Entity: m.Type()}
			}
			if m.Op().Is(ent.OpCreate) {
				if v, _ := m.Field(col); v != tid {
					return nil, fmt.Errorf("tenant isolation: %s of tenant %v created in the scope of tenant %s", m.Type(), v, tid)
				}
				return next.Mutate(ctx, m)
			}
			w, ok := m.(interface {
				WhereP(...func(*entsql.Selector))
			})
			if !ok {
				return nil, &ErrNoTenant{Entity: m.Type()}
			}
			w.WhereP(entsql.FieldEQ(col, tid))
			return next.Mutate(ctx, m)
		})
	})
}

// scoped returns ctx scoped to tenantID, unless it is already scoped to a
// tenant: then that narrower scope stays, and a call about another tenant
// finds nothing.
func scoped(ctx context.Context, tenantID string) context.Context {
	if tenancy.Tenant(ctx) != "" {
		return ctx
	}
	return tenancy.WithTenant(ctx, tenantID)
}

// WithTenant returns ctx scoped to tenant id, for callers that work for one
// tenant outside a request (seeding demo data).
func WithTenant(ctx context.Context, id string) context.Context { return tenancy.WithTenant(ctx, id) }

// System returns ctx marked as cross-tenant system work (workers, the
// operator CLI).
func System(ctx context.Context) context.Context { return tenancy.System(ctx) }
