// Package authz decides who may do what: the roles and permissions of SPEC §2
// enforced with Casbin (RBAC with domains, one domain per tenant), and the
// identity of the caller carried in the request context.
package authz

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

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

// Enforcer answers permission questions. Built on a RuleStore (Open), it
// persists custom roles there and follows the changes other processes make
// (Watch); NewEnforcer holds the built-in roles only.
type Enforcer struct {
	e       *casbin.SyncedCachedEnforcer
	rules   RuleStore
	mu      sync.Mutex // serialises changes and reloads
	version atomic.Int64
	// decided caches answers in front of Casbin's own cache, whose string
	// keys cost about a microsecond; a change swaps in an empty map, so an
	// answer computed before it can only land in the discarded one.
	decided atomic.Pointer[sync.Map]
}

type decisionKey struct{ tenant, role, perm string }

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
	en := &Enforcer{e: e}
	en.decided.Store(new(sync.Map))
	return en, nil
}

// Open builds an enforcer over rules: built-in roles plus every tenant's
// custom roles.
func Open(ctx context.Context, rules RuleStore) (*Enforcer, error) {
	m, err := model.NewModelFromString(modelText)
	if err != nil {
		return nil, fmt.Errorf("load casbin model: %w", err)
	}
	en := &Enforcer{rules: rules}
	en.decided.Store(new(sync.Map))
	v, err := rules.AuthzVersion(ctx)
	if err != nil {
		return nil, err
	}
	e, err := casbin.NewSyncedCachedEnforcer(m, NewAdapter(rules))
	if err != nil {
		return nil, fmt.Errorf("create enforcer: %w", err)
	}
	en.e = e
	en.version.Store(v)
	return en, nil
}

// Allowed reports whether role may use perm in tenant.
func (en *Enforcer) Allowed(tenant, role, perm string) bool {
	m := en.decided.Load()
	k := decisionKey{tenant, role, perm}
	if v, ok := m.Load(k); ok {
		return v.(bool)
	}
	ok, err := en.e.Enforce(role, tenant, perm)
	if err != nil {
		return false
	}
	m.Store(k, ok)
	return ok
}

// invalidate drops every cached decision, Casbin's and ours.
func (en *Enforcer) invalidate() error {
	err := en.e.InvalidateCache()
	en.decided.Store(new(sync.Map))
	if err != nil {
		return fmt.Errorf("reset enforcer cache: %w", err)
	}
	return nil
}

// Permissions lists what role may do in tenant, sorted.
func (en *Enforcer) Permissions(tenant, role string) []string {
	var out []string
	for _, p := range AllPermissions() {
		if en.Allowed(tenant, role, p) {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// AllPermissions lists the permissions of SPEC §2.
func AllPermissions() []string {
	return []string{PermExport, PermRead, PermWrite, PermPolicyManage, PermSettingsManage, PermAPIKeyManage}
}

// IsPermission reports whether p is a permission of SPEC §2.
func IsPermission(p string) bool { return slices.Contains(AllPermissions(), p) }

// Role is a role of a tenant with what it grants.
type Role struct {
	Name        string
	Permissions []string
	Builtin     bool
}

// Roles lists the built-in roles, then the tenant's custom roles by name.
func (en *Enforcer) Roles(tenant string) []Role {
	out := make([]Role, 0, len(builtin))
	for _, r := range BuiltinRoles() {
		out = append(out, Role{Name: r, Permissions: en.Permissions(tenant, r), Builtin: true})
	}
	rules, err := en.e.GetFilteredPolicy(1, tenant)
	if err != nil {
		return out
	}
	var names []string
	for _, r := range rules {
		if !slices.Contains(names, r[0]) {
			names = append(names, r[0])
		}
	}
	slices.Sort(names)
	for _, n := range names {
		out = append(out, Role{Name: n, Permissions: en.Permissions(tenant, n)})
	}
	return out
}

// HasRole reports whether role is built in or a custom role of tenant.
func (en *Enforcer) HasRole(tenant, role string) bool {
	if IsBuiltinRole(role) {
		return true
	}
	rules, err := en.e.GetFilteredPolicy(0, role, tenant)
	return err == nil && len(rules) > 0
}

// ErrNotPersistent says an enforcer without a database cannot change roles.
var ErrNotPersistent = errors.New("authorization changes need a database")

// CreateRole defines (or redefines) a custom role of tenant.
func (en *Enforcer) CreateRole(ctx context.Context, tenant, role string, perms []string) error {
	if en.rules == nil {
		return ErrNotPersistent
	}
	en.mu.Lock()
	defer en.mu.Unlock()
	if _, err := en.e.RemoveFilteredPolicy(0, role, tenant); err != nil {
		return fmt.Errorf("replace role %s: %w", role, err)
	}
	rules := make([][]string, 0, len(perms))
	for _, p := range perms {
		rules = append(rules, []string{role, tenant, p})
	}
	if _, err := en.e.AddPolicies(rules); err != nil {
		return fmt.Errorf("create role %s: %w", role, err)
	}
	return en.changed(ctx)
}

// DeleteRole removes a custom role of tenant; it reports whether it existed.
func (en *Enforcer) DeleteRole(ctx context.Context, tenant, role string) (bool, error) {
	if en.rules == nil {
		return false, ErrNotPersistent
	}
	en.mu.Lock()
	defer en.mu.Unlock()
	ok, err := en.e.RemoveFilteredPolicy(0, role, tenant)
	if err != nil {
		return false, fmt.Errorf("delete role %s: %w", role, err)
	}
	if !ok {
		return false, nil
	}
	return true, en.changed(ctx)
}

// changed drops cached decisions (Casbin removes only the exact keys a
// change names) and tells the other processes.
func (en *Enforcer) changed(ctx context.Context) error {
	if err := en.invalidate(); err != nil {
		return err
	}
	v, err := en.rules.BumpAuthzVersion(ctx)
	if err != nil {
		return err
	}
	en.version.Store(v)
	return nil
}

// Reload rereads the policy when the authorization version moved since the
// last look; it reports whether it reloaded.
func (en *Enforcer) Reload(ctx context.Context) (bool, error) {
	if en.rules == nil {
		return false, nil
	}
	v, err := en.rules.AuthzVersion(ctx)
	if err != nil {
		return false, err
	}
	if v == en.version.Load() {
		return false, nil
	}
	en.mu.Lock()
	defer en.mu.Unlock()
	if err := en.e.LoadPolicy(); err != nil {
		return false, fmt.Errorf("reload policy: %w", err)
	}
	if err := en.invalidate(); err != nil {
		return false, err
	}
	en.version.Store(v)
	return true, nil
}

// Watch polls the authorization version every interval until ctx ends and
// reloads on change, so a role changed by another process (the CLI, another
// replica) applies here within interval plus one reload.
func (en *Enforcer) Watch(ctx context.Context, interval time.Duration, log *slog.Logger) {
	if en.rules == nil {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := en.Reload(ctx); err != nil && ctx.Err() == nil {
			log.WarnContext(ctx, "reload authorization policy", "err", err)
		}
	}
}

// WatchInterval is how often a process looks for authorization changes:
// well inside the 2 seconds SPEC §2 allows.
const WatchInterval = 500 * time.Millisecond

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
	// NoExportPolicies is true when authentication saw that the tenant has
	// no enabled BUNDLE_EXPORT policy, so the export gate need not read
	// them again; false (unknown) makes the gate read them.
	NoExportPolicies bool
	// ExportDecision is what the BUNDLE_EXPORT policies decided, once an
	// export request passed them; it is recorded on the job.
	ExportDecision Decision
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

// ModelText is the embedded Casbin model, for tools and tests.
func ModelText() string { return modelText }
