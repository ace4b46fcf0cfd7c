// Package authz decides who may do what: the roles and permissions of SPEC §2
// enforced with Casbin (RBAC with domains, one domain per tenant), and the
// identity of the caller carried in the request context.
package authz

import (
	"context"
	_ "embed"
	"fmt"
	"slices"

	"github.com/casbin/casbin/v2"
	"github.com/casbin/casbin/v2/model"
)

// Permissions of SPEC §2.
const (
	PermExport         = "tenant.audit.export"
	PermRead           = "tenant.audit.read"
	PermWrite          = "tenant.audit.write"
	PermPolicyManage   = "tenant.policy.manage"
	PermSettingsManage = "tenant.settings.manage"
	PermAPIKeyManage   = "tenant.apikey.manage"
)

// Built-in roles.
const (
	RoleAdmin    = "admin"
	RoleAuditor  = "auditor"
	RoleViewer   = "viewer"
	RoleIngester = "ingester"
)

// AddOnCompliancePack is the add-on that gates creating exports.
const AddOnCompliancePack = "compliance_pack"

// builtin is the role table of SPEC §2.
var builtin = map[string][]string{
	RoleAdmin:    {PermExport, PermRead, PermWrite, PermPolicyManage, PermSettingsManage, PermAPIKeyManage},
	RoleAuditor:  {PermExport, PermRead},
	RoleViewer:   {PermRead},
	RoleIngester: {PermWrite},
}

// BuiltinRoles lists the roles every tenant has.
func BuiltinRoles() []string { return []string{RoleAdmin, RoleAuditor, RoleViewer, RoleIngester} }

// IsBuiltinRole reports whether role is one of the built-in roles.
func IsBuiltinRole(role string) bool { _, ok := builtin[role]; return ok }

//go:embed model.conf
var modelText string

// Enforcer answers permission questions.
type Enforcer struct {
	e *casbin.SyncedCachedEnforcer
}

// NewEnforcer builds an enforcer holding the built-in roles.
func NewEnforcer() (*Enforcer, error) {
	m, err := model.NewModelFromString(modelText)
	if err != nil {
		return nil, fmt.Errorf("load casbin model: %w", err)
	}
	e, err := casbin.NewSyncedCachedEnforcer(m)
	if err != nil {
		return nil, fmt.Errorf("create enforcer: %w", err)
	}
	for role, perms := range builtin {
		for _, p := range perms {
			if _, err := e.AddPolicy(role, "*", p); err != nil {
				return nil, fmt.Errorf("add policy: %w", err)
			}
		}
	}
	if err := e.InvalidateCache(); err != nil {
		return nil, fmt.Errorf("reset enforcer cache: %w", err)
	}
	return &Enforcer{e: e}, nil
}

// Allowed reports whether role may use perm in tenant.
func (en *Enforcer) Allowed(tenant, role, perm string) bool {
	ok, err := en.e.Enforce(role, tenant, perm)
	return err == nil && ok
}

// Permissions lists what role may do in tenant, sorted.
func (en *Enforcer) Permissions(tenant, role string) []string {
	var out []string
	for _, p := range []string{PermExport, PermRead, PermWrite, PermPolicyManage, PermSettingsManage, PermAPIKeyManage} {
		if en.Allowed(tenant, role, p) {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// Caller is the authenticated identity behind a request.
type Caller struct {
	TenantID       string
	TenantName     string
	PrincipalID    string
	PrincipalName  string
	Role           string
	KeyID          string
	IssuerID       string
	CompliancePack bool
}

type callerKey struct{}

// WithCaller returns ctx carrying c.
func WithCaller(ctx context.Context, c *Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerFrom returns the caller in ctx, or nil.
func CallerFrom(ctx context.Context) *Caller {
	c, _ := ctx.Value(callerKey{}).(*Caller)
	return c
}
