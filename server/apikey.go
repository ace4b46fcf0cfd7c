package server

import (
	"context"
	"strconv"

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
			Message: "unknown role " + strconv.Quote(nk.Role) + " (admin, auditor, viewer, ingester or a custom role of the tenant)"})
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
		return nil, fault.New(fault.NotFound, "role %s not found", strconv.Quote(name))
	}
	return connect.NewResponse(&auditv1.DeleteRoleResponse{}), nil
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
