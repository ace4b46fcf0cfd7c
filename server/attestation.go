package server

import (
	"context"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/exportd/exportd/authz"
	auditv1 "github.com/exportd/exportd/gen/go/audit/v1"
	"github.com/exportd/exportd/internal/store"
)

// attestationService implements auditv1connect.AttestationServiceHandler.
type attestationService struct{ s *Server }

func newAttestation(n *auditv1.NewAttestation) store.NewAttestation {
	na := store.NewAttestation{
		ID:             n.GetAttestationId(),
		IssuerID:       n.GetIssuerId(),
		Subject:        n.GetSubject(),
		Schema:         n.GetSchema(),
		DataCategories: n.GetDataCategories(),
		LegalBasis:     n.GetLegalBasis(),
	}
	if n.GetCreatedAt() != nil {
		na.CreatedAt = n.GetCreatedAt().AsTime()
	}
	return na
}

func attestationProto(a *store.Attestation) *auditv1.Attestation {
	out := &auditv1.Attestation{
		AttestationId:  a.AttestationID,
		IssuerId:       a.IssuerID,
		Subject:        a.Subject,
		Schema:         a.Schema,
		Status:         a.Status.String(),
		DataCategories: a.DataCategories,
		LegalBasis:     a.LegalBasis,
		CreatedAt:      timestamppb.New(a.CreatedAt),
		RevokedAt:      ts(a.RevokedAt),
		SupersededAt:   ts(a.SupersededAt),
	}
	if a.SupersededBy != nil {
		out.SupersededBy = *a.SupersededBy
	}
	return out
}

func (h attestationService) RecordAttestation(ctx context.Context, req *connect.Request[auditv1.RecordAttestationRequest]) (*connect.Response[auditv1.RecordAttestationResponse], error) {
	c := authz.CallerFrom(ctx)
	a, err := h.s.store.RecordAttestation(ctx, c.TenantID, newAttestation(req.Msg.GetAttestation()))
	if err != nil {
		return nil, err
	}
	noteAudit(ctx, "", "attestation", a.AttestationID, nil)
	return connect.NewResponse(&auditv1.RecordAttestationResponse{Attestation: attestationProto(a)}), nil
}

func (h attestationService) RevokeAttestation(ctx context.Context, req *connect.Request[auditv1.RevokeAttestationRequest]) (*connect.Response[auditv1.RevokeAttestationResponse], error) {
	c := authz.CallerFrom(ctx)
	a, err := h.s.store.RevokeAttestation(ctx, c.TenantID, req.Msg.GetAttestationId())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&auditv1.RevokeAttestationResponse{Attestation: attestationProto(a)}), nil
}

func (h attestationService) SupersedeAttestation(ctx context.Context, req *connect.Request[auditv1.SupersedeAttestationRequest]) (*connect.Response[auditv1.SupersedeAttestationResponse], error) {
	c := authz.CallerFrom(ctx)
	old, repl, err := h.s.store.SupersedeAttestation(ctx, c.TenantID, req.Msg.GetAttestationId(), newAttestation(req.Msg.GetReplacement()))
	if err != nil {
		return nil, err
	}
	noteAudit(ctx, "", "attestation", old.AttestationID, map[string]any{"superseded_by": repl.AttestationID})
	return connect.NewResponse(&auditv1.SupersedeAttestationResponse{Superseded: attestationProto(old), Replacement: attestationProto(repl)}), nil
}

func (h attestationService) ListAttestations(ctx context.Context, req *connect.Request[auditv1.ListAttestationsRequest]) (*connect.Response[auditv1.ListAttestationsResponse], error) {
	c := authz.CallerFrom(ctx)
	m := req.Msg
	rows, next, err := h.s.store.ListAttestations(ctx, c.TenantID, store.AttestationFilter{
		Status: m.GetStatus(), IssuerID: m.GetIssuerId(), Subject: m.GetSubject(), PageSize: int(m.GetPageSize()), PageToken: m.GetPageToken(),
	})
	if err != nil {
		return nil, err
	}
	out := &auditv1.ListAttestationsResponse{NextPageToken: next}
	for _, a := range rows {
		out.Attestations = append(out.Attestations, attestationProto(a))
	}
	return connect.NewResponse(out), nil
}

func (h attestationService) GetAttestation(ctx context.Context, req *connect.Request[auditv1.GetAttestationRequest]) (*connect.Response[auditv1.GetAttestationResponse], error) {
	c := authz.CallerFrom(ctx)
	a, err := h.s.store.Attestation(ctx, c.TenantID, req.Msg.GetAttestationId())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&auditv1.GetAttestationResponse{Attestation: attestationProto(a)}), nil
}
