package authz

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/casbin/casbin/v2/model"
	"github.com/casbin/casbin/v2/persist"
)

// Rule is a stored Casbin rule: its type (p or g), the tenant it belongs to
// and its values, the unused ones empty.
type Rule struct {
	ID     int
	Tenant string
	Ptype  string
	V      [6]string
}

// RuleStore keeps the custom roles and the authorization version, which
// every change of keys, roles or policies moves so that other processes
// reload. The store implements it; authz knows no table.
type RuleStore interface {
	// CasbinRules returns the rules in the order they were added; with
	// tenants non-nil, only those tenants' rules.
	CasbinRules(ctx context.Context, tenants []string) ([]Rule, error)
	// AddCasbinRules stores rules in one transaction, skipping stored ones.
	AddCasbinRules(ctx context.Context, rules []Rule) error
	// RemoveCasbinRules deletes rules, matched on every value, in one
	// transaction.
	RemoveCasbinRules(ctx context.Context, rules []Rule) error
	// RemoveCasbinRulesMatching deletes the rules of ptype whose values
	// equal the non-empty values of match.
	RemoveCasbinRulesMatching(ctx context.Context, ptype string, match [6]string) error
	// AuthzVersion reads the version, 0 before the first change.
	AuthzVersion(ctx context.Context) (int64, error)
	// BumpAuthzVersion moves the version and returns the new one.
	BumpAuthzVersion(ctx context.Context) (int64, error)
}

// Adapter persists the Casbin policy in a RuleStore. Built-in roles (domain
// "*") are part of the model, never stored: LoadPolicy adds them to what it
// reads.
type Adapter struct {
	rules    RuleStore
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

// NewAdapter returns an adapter over rules.
func NewAdapter(rules RuleStore) *Adapter { return &Adapter{rules: rules} }

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
	// No tenants loads no rules, not every rule.
	return a.load(m, append([]string{}, f.Tenants...))
}

// IsFiltered reports whether the last load was filtered; Casbin then refuses
// SavePolicy, which would drop the rules not loaded.
func (a *Adapter) IsFiltered() bool { return a.filtered }

// load reads the rules of tenants, or of every tenant when tenants is nil.
// Casbin's interface has no context.
func (a *Adapter) load(m model.Model, tenants []string) error {
	for role, perms := range builtin {
		for _, p := range perms {
			if err := persist.LoadPolicyArray([]string{"p", role, "*", p}, m); err != nil {
				return fmt.Errorf("load built-in role %s: %w", role, err)
			}
		}
	}
	rows, err := a.rules.CasbinRules(context.Background(), tenants)
	if err != nil {
		return err
	}
	for _, r := range rows {
		line := append([]string{r.Ptype}, r.V[:]...)
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
	out := make([]Rule, 0, len(rules))
	for _, rule := range rules {
		tenant := ruleTenant(ptype, rule)
		if tenant == "" || tenant == "*" {
			return fmt.Errorf("add policy: rule %v has no tenant", rule)
		}
		if len(rule) > 6 {
			return fmt.Errorf("add policy: rule %v has more than 6 values", rule)
		}
		r := Rule{Tenant: tenant, Ptype: ptype}
		copy(r.V[:], rule)
		out = append(out, r)
	}
	return a.rules.AddCasbinRules(context.Background(), out)
}

// RemovePolicy deletes one rule.
func (a *Adapter) RemovePolicy(sec, ptype string, rule []string) error {
	return a.RemovePolicies(sec, ptype, [][]string{rule})
}

// RemovePolicies deletes rules in one transaction.
func (a *Adapter) RemovePolicies(_ string, ptype string, rules [][]string) error {
	out := make([]Rule, 0, len(rules))
	for _, rule := range rules {
		r := Rule{Tenant: ruleTenant(ptype, rule), Ptype: ptype}
		copy(r.V[:], rule)
		out = append(out, r)
	}
	return a.rules.RemoveCasbinRules(context.Background(), out)
}

// RemoveFilteredPolicy deletes the rules whose values from fieldIndex on
// equal fieldValues (an empty value matches anything).
func (a *Adapter) RemoveFilteredPolicy(_ string, ptype string, fieldIndex int, fieldValues ...string) error {
	var match [6]string
	for i, val := range fieldValues {
		if val == "" || fieldIndex+i >= len(match) {
			continue
		}
		match[fieldIndex+i] = val
	}
	if match == ([6]string{}) && !slices.ContainsFunc(fieldValues, func(s string) bool { return s != "" }) {
		return errors.New("remove filtered policy: refusing to delete every rule")
	}
	return a.rules.RemoveCasbinRulesMatching(context.Background(), ptype, match)
}
