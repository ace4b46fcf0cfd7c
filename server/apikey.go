package server

import (
	"context"
	"slices"
	"strconv"
	"strings"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/exportd/exportd/authz"
	auditv1 "github.com/exportd/exportd/gen/go/audit/v1"
	"github.com/exportd/exportd/internal/fault"
	"github.com/exportd/exportd/internal/store"
)

// apikeyService implements auditv1connect.ApiKeyServiceHandler.
type apikeyService struct{ s *Server }

func (h apikeyService) CreateApiKey(ctx context.Context, req *connect.Request[auditv1.CreateApiKeyRequest]) (*connect.Response[auditv1.CreateApiKeyResponse], error) {
	c := authz.CallerFrom(ctx)
	m := req.Msg
	nk := store.NewKey{TenantID: c.TenantID, Role: m.GetRole(), Principal: m.GetPrincipal(), Name: m.GetName(), IssuerID: m.GetIssuerId()}
	if m.GetExpireTime() != nil {
		t := m.GetExpireTime().AsTime().UTC()
		nk.ExpiresAt = &t
	}
	if !h.s.enforcer.HasRole(c.TenantID, nk.Role) {
		return nil, fault.Invalid(fault.Violation{Field: "role", Number: 2, Rule: "role.known",
			Message: "unknown role " + fault.Echo(nk.Role) + " (admin, auditor, viewer, ingester or a custom role of the tenant)"})
	}
	if err := h.s.grantable(ctx, c, h.s.enforcer.Permissions(c.TenantID, nk.Role), "a key of role "+strconv.Quote(nk.Role)); err != nil {
		return nil, err
	}
	if err := h.s.bindable(ctx, c, nk.IssuerID); err != nil {
		return nil, err
	}
	key, row, err := h.s.store.CreateAPIKey(ctx, nk)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&auditv1.CreateApiKeyResponse{
		ApiKey: keyProto(store.KeyInfo{APIKey: row, Principal: m.GetPrincipal()}),
		Secret: key.String(),
	}), nil
}

func (h apikeyService) ListApiKeys(ctx context.Context, _ *connect.Request[auditv1.ListApiKeysRequest]) (*connect.Response[auditv1.ListApiKeysResponse], error) {
	c := authz.CallerFrom(ctx)
	keys, err := h.s.store.APIKeys(ctx, c.TenantID)
	if err != nil {
		return nil, err
	}
	out := &auditv1.ListApiKeysResponse{}
	for _, k := range keys {
		out.ApiKeys = append(out.ApiKeys, keyProto(k))
	}
	return connect.NewResponse(out), nil
}

func (h apikeyService) RevokeApiKey(ctx context.Context, req *connect.Request[auditv1.RevokeApiKeyRequest]) (*connect.Response[auditv1.RevokeApiKeyResponse], error) {
	c := authz.CallerFrom(ctx)
	k, err := h.s.store.RevokeAPIKey(ctx, c.TenantID, req.Msg.GetKeyId())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&auditv1.RevokeApiKeyResponse{ApiKey: keyProto(k)}), nil
}

func (h apikeyService) CreateRole(ctx context.Context, req *connect.Request[auditv1.CreateRoleRequest]) (*connect.Response[auditv1.CreateRoleResponse], error) {
	c := authz.CallerFrom(ctx)
	name := req.Msg.GetName()
	if authz.IsBuiltinRole(name) {
		return nil, fault.Invalid(fault.Violation{Field: "name", Number: 1, Rule: "role.custom",
			Message: strconv.Quote(name) + " is a built-in role and cannot be redefined"})
	}
	// Redefining an existing role goes through here too, so the same
	// check covers role updates.
	if err := h.s.grantable(ctx, c, req.Msg.GetPermissions(), "role "+strconv.Quote(name)); err != nil {
		return nil, err
	}
	if err := h.s.enforcer.CreateRole(ctx, c.TenantID, name, req.Msg.GetPermissions()); err != nil {
		return nil, err
	}
	return connect.NewResponse(&auditv1.CreateRoleResponse{Role: &auditv1.Role{
		Name: name, Permissions: h.s.enforcer.Permissions(c.TenantID, name)}}), nil
}

func (h apikeyService) ListRoles(ctx context.Context, _ *connect.Request[auditv1.ListRolesRequest]) (*connect.Response[auditv1.ListRolesResponse], error) {
	c := authz.CallerFrom(ctx)
	out := &auditv1.ListRolesResponse{}
	for _, r := range h.s.enforcer.Roles(c.TenantID) {
		out.Roles = append(out.Roles, &auditv1.Role{Name: r.Name, Permissions: r.Permissions, Builtin: r.Builtin})
	}
	return connect.NewResponse(out), nil
}

func (h apikeyService) DeleteRole(ctx context.Context, req *connect.Request[auditv1.DeleteRoleRequest]) (*connect.Response[auditv1.DeleteRoleResponse], error) {
	c := authz.CallerFrom(ctx)
	name := req.Msg.GetName()
	if authz.IsBuiltinRole(name) {
		return nil, fault.Invalid(fault.Violation{Field: "name", Number: 1, Rule: "role.custom",
			Message: strconv.Quote(name) + " is a built-in role and cannot be deleted"})
	}
	ok, err := h.s.enforcer.DeleteRole(ctx, c.TenantID, name)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fault.New(fault.NotFound, "role %s not found", fault.Echo(name))
	}
	return connect.NewResponse(&auditv1.DeleteRoleResponse{}), nil
}

// grantable refuses a grant of permissions the caller's own role does not
// hold: without it a role trusted only to manage keys could mint an admin
// key, or define a role with every permission and mint a key of that, and
// so climb to anything. The refusal is a denial, audited as one, and names
// what is missing so the caller knows whom to ask.
func (s *Server) grantable(ctx context.Context, c *authz.Caller, perms []string, what string) error {
	var missing []string
	for _, p := range perms {
		if !s.enforcer.Allowed(c.TenantID, c.Role, p) && !slices.Contains(missing, p) {
			missing = append(missing, p)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	slices.Sort(missing)
	s.cfg.Telemetry.Metrics.Deny(ctx, "escalation")
	return &denial{err: fault.New(fault.PermissionDenied,
		"%s would grant %s, which your role %q does not hold: a key or role may grant only permissions its creator holds",
		what, strings.Join(missing, ", "), c.Role)}
}

// bindable refuses to bind a new key to an issuer other than the one the
// caller's key acts for, unless the caller manages issuance policies: the
// issuer a key acts for is what the BUNDLE_EXPORT policies judge, so
// choosing it (or dropping it) would let a key manager sidestep a policy
// that denies its own issuer.
func (s *Server) bindable(ctx context.Context, c *authz.Caller, issuerID string) error {
	if issuerID == c.IssuerID || s.enforcer.Allowed(c.TenantID, c.Role, authz.PermPolicyManage) {
		return nil
	}
	s.cfg.Telemetry.Metrics.Deny(ctx, "escalation")
	own := "no issuer"
	if c.IssuerID != "" {
		own = "issuer " + strconv.Quote(c.IssuerID)
	}
	return &denial{err: fault.New(fault.PermissionDenied,
		"your key acts for %s, so the keys it mints must too: binding a key to another issuer (or to none) needs the %s permission",
		own, authz.PermPolicyManage)}
}

func keyProto(k store.KeyInfo) *auditv1.ApiKey {
	out := &auditv1.ApiKey{
		KeyId:        k.ID,
		Name:         k.Name,
		Role:         k.Role,
		Principal:    k.Principal,
		CreateTime:   timestamppb.New(k.CreatedAt),
		LastUsedTime: ts(k.LastUsedAt),
		ExpireTime:   ts(k.ExpiresAt),
		RevokeTime:   ts(k.RevokedAt),
	}
	if k.IssuerID != nil {
		out.IssuerId = *k.IssuerID
	}
	return out
}
