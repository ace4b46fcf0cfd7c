package store

import (
	"context"
	"fmt"

	"github.com/exportd/exportd/authz"
	"github.com/exportd/exportd/ent"
	"github.com/exportd/exportd/ent/authzversion"
	"github.com/exportd/exportd/ent/casbinrule"
	"github.com/exportd/exportd/ent/predicate"
	"github.com/exportd/exportd/internal/tenancy"
)

// The store keeps the authorization policy for authz: the custom roles in
// casbin_rules and, in authz_versions, a counter every change of keys, roles
// or policies moves so that other processes reload.
var _ authz.RuleStore = (*Store)(nil)

// CasbinRules returns the stored rules in the order they were added; with
// tenants non-nil, only the rules of those tenants.
func (s *Store) CasbinRules(ctx context.Context, tenants []string) ([]authz.Rule, error) {
	// The rules of every tenant are one policy.
	ctx = tenancy.System(ctx)
	q := s.client.CasbinRule.Query()
	if tenants != nil {
		q.Where(casbinrule.TenantIDIn(tenants...))
	}
	rows, err := q.Order(casbinrule.ByID()).All(ctx)
	if err != nil {
		return nil, fmt.Errorf("load casbin rules: %w", err)
	}
	out := make([]authz.Rule, len(rows))
	for i, r := range rows {
		out[i] = authz.Rule{ID: r.ID, Tenant: r.TenantID, Ptype: r.Ptype, V: [6]string{r.V0, r.V1, r.V2, r.V3, r.V4, r.V5}}
	}
	return out, nil
}

// AddCasbinRules stores rules in one transaction; a rule already stored is
// left as it is.
func (s *Store) AddCasbinRules(ctx context.Context, rules []authz.Rule) error {
	return s.tx(tenancy.System(ctx), func(tx *ent.Tx) error {
		for _, r := range rules {
			n, err := tx.CasbinRule.Query().Where(ruleIs(r.Ptype, r.V)...).Count(tenancy.System(ctx))
			if err != nil {
				return fmt.Errorf("add policy: %w", err)
			}
			if n > 0 {
				continue
			}
			err = tx.CasbinRule.Create().
				SetTenantID(r.Tenant).SetPtype(r.Ptype).
				SetV0(r.V[0]).SetV1(r.V[1]).SetV2(r.V[2]).SetV3(r.V[3]).SetV4(r.V[4]).SetV5(r.V[5]).
				Exec(tenancy.WithTenant(ctx, r.Tenant))
			if err != nil {
				return fmt.Errorf("add policy: %w", err)
			}
		}
		return nil
	})
}

// RemoveCasbinRules deletes rules (each matched on every value) in one
// transaction.
func (s *Store) RemoveCasbinRules(ctx context.Context, rules []authz.Rule) error {
	ctx = tenancy.System(ctx)
	return s.tx(ctx, func(tx *ent.Tx) error {
		for _, r := range rules {
			if _, err := tx.CasbinRule.Delete().Where(ruleIs(r.Ptype, r.V)...).Exec(ctx); err != nil {
				return fmt.Errorf("remove policy: %w", err)
			}
		}
		return nil
	})
}

// RemoveCasbinRulesMatching deletes the rules of ptype whose values equal
// match where match is not empty (an empty value matches anything).
func (s *Store) RemoveCasbinRulesMatching(ctx context.Context, ptype string, match [6]string) error {
	cols := []func(string) predicate.CasbinRule{casbinrule.V0, casbinrule.V1, casbinrule.V2, casbinrule.V3, casbinrule.V4, casbinrule.V5}
	where := []predicate.CasbinRule{casbinrule.Ptype(ptype)}
	for i, val := range match {
		if val != "" {
			where = append(where, cols[i](val))
		}
	}
	if _, err := s.client.CasbinRule.Delete().Where(where...).Exec(tenancy.System(ctx)); err != nil {
		return fmt.Errorf("remove filtered policy: %w", err)
	}
	return nil
}

func ruleIs(ptype string, v [6]string) []predicate.CasbinRule {
	return []predicate.CasbinRule{casbinrule.Ptype(ptype), casbinrule.V0(v[0]), casbinrule.V1(v[1]),
		casbinrule.V2(v[2]), casbinrule.V3(v[3]), casbinrule.V4(v[4]), casbinrule.V5(v[5])}
}

// versionID is the one row of authz_versions.
const versionID = "global"

// AuthzVersion reads the authorization version (0 before the first change).
func (s *Store) AuthzVersion(ctx context.Context) (int64, error) {
	return authzVersion(ctx, s.client)
}

// BumpAuthzVersion records that keys, roles or policies changed, and returns
// the new version.
func (s *Store) BumpAuthzVersion(ctx context.Context) (int64, error) {
	return bumpAuthzVersion(ctx, s.client)
}

func authzVersion(ctx context.Context, client *ent.Client) (int64, error) {
	v, err := client.AuthzVersion.Get(tenancy.System(ctx), versionID)
	if ent.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read authorization version: %w", err)
	}
	return v.Version, nil
}

// bumpAuthzVersion moves the version; called with a transaction's client it
// commits with the change it announces.
func bumpAuthzVersion(ctx context.Context, client *ent.Client) (int64, error) {
	ctx = tenancy.System(ctx)
	err := client.AuthzVersion.Create().SetID(versionID).SetVersion(1).
		OnConflictColumns(authzversion.FieldID).AddVersion(1).Exec(ctx)
	if err != nil {
		return 0, fmt.Errorf("bump authorization version: %w", err)
	}
	return authzVersion(ctx, client)
}
