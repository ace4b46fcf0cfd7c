package authz

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/casbin/casbin/v2/model"
	"github.com/casbin/casbin/v2/persist"

	"github.com/exportd/exportd/ent"
	"github.com/exportd/exportd/ent/casbinrule"
	"github.com/exportd/exportd/ent/predicate"
	"github.com/exportd/exportd/internal/tenancy"
)

// Adapter persists the Casbin policy in the casbin_rules table. Built-in
// roles (domain "*") are part of the model, never stored: LoadPolicy adds
// them to what it reads.
type Adapter struct {
	client   *ent.Client
	filtered bool
}

// Filter restricts LoadFilteredPolicy to some tenants (and the built-ins).
type Filter struct {
	Tenants []string
}

var (
	_ persist.Adapter         = (*Adapter)(nil)
	_ persist.FilteredAdapter = (*Adapter)(nil)
	_ persist.BatchAdapter    = (*Adapter)(nil)
)

// NewAdapter returns an adapter over client.
func NewAdapter(client *ent.Client) *Adapter { return &Adapter{client: client} }

// system scopes the adapter's queries: Casbin's interface has no context,
// and the rules of every tenant are one policy.
func system() context.Context { return tenancy.System(context.Background()) }

// LoadPolicy loads the built-in roles and every tenant's rules.
func (a *Adapter) LoadPolicy(m model.Model) error {
	a.filtered = false
	return a.load(m, nil)
}

// LoadFilteredPolicy loads the built-in roles and the rules of the tenants
// named by filter (a Filter or *Filter).
func (a *Adapter) LoadFilteredPolicy(m model.Model, filter any) error {
	var f Filter
	switch v := filter.(type) {
	case Filter:
		f = v
	case *Filter:
		if v != nil {
			f = *v
		}
	case nil:
		return a.LoadPolicy(m)
	default:
		return fmt.Errorf("load filtered policy: unsupported filter %T", filter)
	}
	a.filtered = true
	return a.load(m, []predicate.CasbinRule{casbinrule.TenantIDIn(f.Tenants...)})
}

// IsFiltered reports whether the last load was filtered; Casbin then refuses
// SavePolicy, which would drop the rules not loaded.
func (a *Adapter) IsFiltered() bool { return a.filtered }

func (a *Adapter) load(m model.Model, where []predicate.CasbinRule) error {
	for role, perms := range builtin {
		for _, p := range perms {
			if err := persist.LoadPolicyArray([]string{"p", role, "*", p}, m); err != nil {
				return fmt.Errorf("load built-in role %s: %w", role, err)
			}
		}
	}
	rows, err := a.client.CasbinRule.Query().Where(where...).
		Order(casbinrule.ByID()).All(system())
	if err != nil {
		return fmt.Errorf("load casbin rules: %w", err)
	}
	for _, r := range rows {
		line := []string{r.Ptype, r.V0, r.V1, r.V2, r.V3, r.V4, r.V5}
		// Trailing empty values are absent fields, not empty ones.
		for len(line) > 1 && line[len(line)-1] == "" {
			line = line[:len(line)-1]
		}
		if err := persist.LoadPolicyArray(line, m); err != nil {
			return fmt.Errorf("load casbin rule %d: %w", r.ID, err)
		}
	}
	return nil
}

// SavePolicy is not supported: rules change one at a time through the
// enforcer, which keeps the table the single source of truth.
func (a *Adapter) SavePolicy(model.Model) error {
	return errors.New("save policy: not supported; change rules one at a time")
}

// ruleTenant is the domain of a rule: p = role, tenant, perm;
// g = role, parent role, tenant.
func ruleTenant(ptype string, rule []string) string {
	i := 1
	if ptype != "" && ptype[0] == 'g' {
		i = 2
	}
	if len(rule) > i {
		return rule[i]
	}
	return ""
}

// AddPolicy stores one rule. Built-in rules (domain "*") are refused.
func (a *Adapter) AddPolicy(sec, ptype string, rule []string) error {
	return a.AddPolicies(sec, ptype, [][]string{rule})
}

// AddPolicies stores rules in one transaction; a rule already stored is
// left as it is.
func (a *Adapter) AddPolicies(_ string, ptype string, rules [][]string) error {
	return a.inTx(func(tx *ent.Client) error {
		for _, rule := range rules {
			tenant := ruleTenant(ptype, rule)
			if tenant == "" || tenant == "*" {
				return fmt.Errorf("add policy: rule %v has no tenant", rule)
			}
			if len(rule) > 6 {
				return fmt.Errorf("add policy: rule %v has more than 6 values", rule)
			}
			v := make([]string, 6)
			copy(v, rule)
			n, err := tx.CasbinRule.Query().Where(ruleIs(ptype, v)...).Count(system())
			if err != nil {
				return fmt.Errorf("add policy: %w", err)
			}
			if n > 0 {
				continue
			}
			err = tx.CasbinRule.Create().
				SetTenantID(tenant).SetPtype(ptype).
				SetV0(v[0]).SetV1(v[1]).SetV2(v[2]).SetV3(v[3]).SetV4(v[4]).SetV5(v[5]).
				Exec(tenancy.WithTenant(context.Background(), tenant))
			if err != nil {
				return fmt.Errorf("add policy: %w", err)
			}
		}
		return nil
	})
}

// RemovePolicy deletes one rule.
func (a *Adapter) RemovePolicy(sec, ptype string, rule []string) error {
	return a.RemovePolicies(sec, ptype, [][]string{rule})
}

// RemovePolicies deletes rules in one transaction.
func (a *Adapter) RemovePolicies(_ string, ptype string, rules [][]string) error {
	return a.inTx(func(tx *ent.Client) error {
		for _, rule := range rules {
			v := make([]string, 6)
			copy(v, rule)
			if _, err := tx.CasbinRule.Delete().Where(ruleIs(ptype, v)...).Exec(system()); err != nil {
				return fmt.Errorf("remove policy: %w", err)
			}
		}
		return nil
	})
}

func ruleIs(ptype string, v []string) []predicate.CasbinRule {
	return []predicate.CasbinRule{casbinrule.Ptype(ptype), casbinrule.V0(v[0]), casbinrule.V1(v[1]),
		casbinrule.V2(v[2]), casbinrule.V3(v[3]), casbinrule.V4(v[4]), casbinrule.V5(v[5])}
}

func (a *Adapter) inTx(fn func(tx *ent.Client) error) error {
	tx, err := a.client.Tx(context.Background())
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	if err := fn(tx.Client()); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit rules: %w", err)
	}
	return nil
}

// RemoveFilteredPolicy deletes the rules whose values from fieldIndex on
// equal fieldValues (an empty value matches anything).
func (a *Adapter) RemoveFilteredPolicy(_ string, ptype string, fieldIndex int, fieldValues ...string) error {
	cols := []func(string) predicate.CasbinRule{casbinrule.V0, casbinrule.V1, casbinrule.V2, casbinrule.V3, casbinrule.V4, casbinrule.V5}
	where := []predicate.CasbinRule{casbinrule.Ptype(ptype)}
	for i, val := range fieldValues {
		if val == "" || fieldIndex+i >= len(cols) {
			continue
		}
		where = append(where, cols[fieldIndex+i](val))
	}
	if len(where) == 1 && !slices.ContainsFunc(fieldValues, func(s string) bool { return s != "" }) {
		return errors.New("remove filtered policy: refusing to delete every rule")
	}
	if _, err := a.client.CasbinRule.Delete().Where(where...).Exec(system()); err != nil {
		return fmt.Errorf("remove filtered policy: %w", err)
	}
	return nil
}
