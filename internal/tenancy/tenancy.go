// Package tenancy carries the tenant a piece of work acts for in its
// context. The data layer scopes every read and write to that tenant and
// refuses queries whose context names none; the few cross-tenant paths
// (workers claiming jobs, key lookup, authorization reloads, the operator
// CLI) mark their context as system work explicitly.
package tenancy

import "context"

type scope struct {
	tenant string
	system bool
}

type scopeKey struct{}

// WithTenant returns ctx scoped to tenant id.
func WithTenant(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, scopeKey{}, scope{tenant: id})
}

// System returns ctx marked as cross-tenant system work.
func System(ctx context.Context) context.Context {
	return context.WithValue(ctx, scopeKey{}, scope{system: true})
}

// Tenant returns the tenant ctx is scoped to, or "".
func Tenant(ctx context.Context) string {
	s, _ := ctx.Value(scopeKey{}).(scope)
	return s.tenant
}

// IsSystem reports whether ctx is marked as system work.
func IsSystem(ctx context.Context) bool {
	s, _ := ctx.Value(scopeKey{}).(scope)
	return s.system
}
