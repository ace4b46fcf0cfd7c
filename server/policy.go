package server

import (
	"context"
	"strings"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/exportd/exportd/authz"
	auditv1 "github.com/exportd/exportd/gen/go/audit/v1"
	"github.com/exportd/exportd/gen/go/audit/v1/auditv1connect"
	"github.com/exportd/exportd/internal/store"
)

// policyService implements auditv1connect.PolicyServiceHandler.
type policyService struct{ s *Server }

func (h policyService) CreatePolicy(ctx context.Context, req *connect.Request[auditv1.CreatePolicyRequest]) (*connect.Response[auditv1.CreatePolicyResponse], error) {
	c := authz.CallerFrom(ctx)
	m := req.Msg
	p, err := h.s.store.CreatePolicy(ctx, store.NewPolicy{TenantID: c.TenantID, Name: m.GetName(), Kind: m.GetKind(),
		Effect: m.GetEffect(), IssuerMatch: m.GetIssuerMatch(), TrustTiers: m.GetTrustTiers(), Enabled: !m.GetDisabled()})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&auditv1.CreatePolicyResponse{Policy: policyProto(p)}), nil
}

func (h policyService) ListPolicies(ctx context.Context, _ *connect.Request[auditv1.ListPoliciesRequest]) (*connect.Response[auditv1.ListPoliciesResponse], error) {
	c := authz.CallerFrom(ctx)
	ps, err := h.s.store.Policies(ctx, c.TenantID)
	if err != nil {
		return nil, err
	}
	out := &auditv1.ListPoliciesResponse{}
	for _, p := range ps {
		out.Policies = append(out.Policies, policyProto(p))
	}
	return connect.NewResponse(out), nil
}

func (h policyService) GetPolicy(ctx context.Context, req *connect.Request[auditv1.GetPolicyRequest]) (*connect.Response[auditv1.GetPolicyResponse], error) {
	c := authz.CallerFrom(ctx)
	p, err := h.s.store.Policy(ctx, c.TenantID, req.Msg.GetPolicyId())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&auditv1.GetPolicyResponse{Policy: policyProto(p)}), nil
}

func (h policyService) UpdatePolicy(ctx context.Context, req *connect.Request[auditv1.UpdatePolicyRequest]) (*connect.Response[auditv1.UpdatePolicyResponse], error) {
	c := authz.CallerFrom(ctx)
	m := req.Msg
	var u store.PolicyUpdate
	u.Name, u.Effect, u.IssuerMatch, u.Enabled = m.Name, m.Effect, m.IssuerMatch, m.Enabled
	if m.GetReplaceTrustTiers() {
		tiers := m.GetTrustTiers()
		u.TrustTiers = &tiers
	}
	p, err := h.s.store.UpdatePolicy(ctx, c.TenantID, m.GetPolicyId(), u)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&auditv1.UpdatePolicyResponse{Policy: policyProto(p)}), nil
}

func (h policyService) DeletePolicy(ctx context.Context, req *connect.Request[auditv1.DeletePolicyRequest]) (*connect.Response[auditv1.DeletePolicyResponse], error) {
	c := authz.CallerFrom(ctx)
	if err := h.s.store.DeletePolicy(ctx, c.TenantID, req.Msg.GetPolicyId()); err != nil {
		return nil, err
	}
	return connect.NewResponse(&auditv1.DeletePolicyResponse{}), nil
}

func (h policyService) CreateIssuer(ctx context.Context, req *connect.Request[auditv1.CreateIssuerRequest]) (*connect.Response[auditv1.CreateIssuerResponse], error) {
	c := authz.CallerFrom(ctx)
	m := req.Msg
	is, err := h.s.store.CreateIssuer(ctx, c.TenantID, m.GetName(), m.GetUri(), m.GetTrustTier())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&auditv1.CreateIssuerResponse{Issuer: issuerProto(is)}), nil
}

func (h policyService) ListIssuers(ctx context.Context, _ *connect.Request[auditv1.ListIssuersRequest]) (*connect.Response[auditv1.ListIssuersResponse], error) {
	c := authz.CallerFrom(ctx)
	is, err := h.s.store.Issuers(ctx, c.TenantID)
	if err != nil {
		return nil, err
	}
	out := &auditv1.ListIssuersResponse{}
	for _, i := range is {
		out.Issuers = append(out.Issuers, issuerProto(i))
	}
	return connect.NewResponse(out), nil
}

// CheckExport runs CreateExport's gate for the calling key without creating
// anything.
func (h policyService) CheckExport(ctx context.Context, _ *connect.Request[auditv1.CheckExportRequest]) (*connect.Response[auditv1.CheckExportResponse], error) {
	c := authz.CallerFrom(ctx)
	probe := *c
	check, err := h.s.gate(ctx, &probe, rules[auditv1connect.ExportServiceCreateExportProcedure])
	out := &auditv1.CheckExportResponse{Allowed: err == nil, Check: check,
		PolicyId: probe.ExportDecision.PolicyID, PolicyName: probe.ExportDecision.PolicyName, Reason: probe.ExportDecision.Reason}
	if err != nil {
		var d *denial
		if !asDenial(err, &d) {
			return nil, err
		}
		ce := toConnect(ctx, h.s.log, err)
		out.Code, out.Reason = ce.Code().String(), ce.Message()
	} else {
		out.Check = authz.CheckPolicy
		// The gate passed; a GDPR or HIPAA export also needs its profile.
		notes, err := h.s.profileNotes(ctx, c.TenantID)
		if err != nil {
			return nil, err
		}
		if notes != "" {
			out.Reason = strings.TrimPrefix(out.Reason+"; "+notes, "; ")
		}
	}
	return connect.NewResponse(out), nil
}

func policyProto(p *store.Policy) *auditv1.Policy {
	return &auditv1.Policy{
		PolicyId: p.ID, Name: p.Name, Kind: p.Kind.String(), Effect: p.Effect.String(),
		IssuerMatch: p.IssuerMatch, TrustTiers: p.TrustTiers, Enabled: p.Enabled,
		CreateTime: timestamppb.New(p.CreatedAt), UpdateTime: timestamppb.New(p.UpdatedAt),
	}
}

func issuerProto(i *store.Issuer) *auditv1.Issuer {
	return &auditv1.Issuer{IssuerId: i.ID, Name: i.Name, Uri: i.URI, TrustTier: i.TrustTier.String(),
		CreateTime: timestamppb.New(i.CreatedAt)}
}
