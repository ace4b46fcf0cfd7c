package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/exportd/exportd/authz"
	auditv1 "github.com/exportd/exportd/gen/go/audit/v1"
	"github.com/exportd/exportd/internal/fault"
	"github.com/exportd/exportd/internal/store"
	"github.com/exportd/exportd/reports"
)

// tenantService implements auditv1connect.TenantServiceHandler.
type tenantService struct{ s *Server }

func tenantProto(t *store.Tenant) *auditv1.Tenant {
	out := &auditv1.Tenant{
		TenantId:           t.ID,
		Name:               t.Name,
		AuditRetentionDays: int32(t.AuditRetentionDays), //nolint:gosec // validated to a small range
		DownloadWindowDays: int32(t.DownloadWindowDays), //nolint:gosec // idem
		AddOns:             []string{},
	}
	if t.CompliancePack {
		out.AddOns = append(out.AddOns, authz.AddOnCompliancePack)
	}
	return out
}

func (h tenantService) GetTenant(ctx context.Context, _ *connect.Request[auditv1.GetTenantRequest]) (*connect.Response[auditv1.GetTenantResponse], error) {
	t, err := h.s.store.Tenant(ctx, authz.CallerFrom(ctx).TenantID)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&auditv1.GetTenantResponse{Tenant: tenantProto(t)}), nil
}

// SetAddOn switches an add-on. The authenticating interceptor reads the
// tenant row on every call, so the next CreateExport sees the change.
func (h tenantService) SetAddOn(ctx context.Context, req *connect.Request[auditv1.SetAddOnRequest]) (*connect.Response[auditv1.SetAddOnResponse], error) {
	c := authz.CallerFrom(ctx)
	on := req.Msg.GetEnabled()
	action := reports.ActionAddOnDisable
	if on {
		action = reports.ActionAddOnEnable
	}
	noteAudit(ctx, action, "tenant", c.TenantID, map[string]any{"add_on": req.Msg.GetAddOn(), "enabled": on})
	if err := h.s.store.SetCompliancePack(ctx, c.TenantID, on); err != nil {
		return nil, err
	}
	t, err := h.s.store.Tenant(ctx, c.TenantID)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&auditv1.SetAddOnResponse{Tenant: tenantProto(t)}), nil
}

func (h tenantService) UpdateRetention(ctx context.Context, req *connect.Request[auditv1.UpdateRetentionRequest]) (*connect.Response[auditv1.UpdateRetentionResponse], error) {
	c := authz.CallerFrom(ctx)
	m := req.Msg
	noteAudit(ctx, reports.ActionRetentionUpdate, "tenant", c.TenantID, map[string]any{
		"audit_retention_days": m.GetAuditRetentionDays(), "download_window_days": m.GetDownloadWindowDays()})
	t, err := h.s.store.UpdateRetention(ctx, c.TenantID, int(m.GetAuditRetentionDays()), int(m.GetDownloadWindowDays()))
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&auditv1.UpdateRetentionResponse{Tenant: tenantProto(t)}), nil
}

func (h tenantService) GetGDPRProfile(ctx context.Context, _ *connect.Request[auditv1.GetGDPRProfileRequest]) (*connect.Response[auditv1.GetGDPRProfileResponse], error) {
	t, err := h.s.store.Tenant(ctx, authz.CallerFrom(ctx).TenantID)
	if err != nil {
		return nil, err
	}
	out := &auditv1.GetGDPRProfileResponse{}
	if len(t.GdprProfile) > 0 {
		out.Profile = &auditv1.GDPRProfile{}
		if err := profileFromMap(t.GdprProfile, out.Profile); err != nil {
			return nil, err
		}
	}
	return connect.NewResponse(out), nil
}

func (h tenantService) UpdateGDPRProfile(ctx context.Context, req *connect.Request[auditv1.UpdateGDPRProfileRequest]) (*connect.Response[auditv1.UpdateGDPRProfileResponse], error) {
	c := authz.CallerFrom(ctx)
	noteAudit(ctx, reports.ActionGDPRProfileUpdate, "tenant", c.TenantID, nil)
	m, err := profileToMap(req.Msg.GetProfile(), func(m map[string]any) error {
		_, err := reports.ParseGDPRProfile(m)
		return err
	})
	if err != nil {
		return nil, err
	}
	if _, err := h.s.store.SetGDPRProfile(ctx, c.TenantID, m); err != nil {
		return nil, err
	}
	return connect.NewResponse(&auditv1.UpdateGDPRProfileResponse{Profile: req.Msg.GetProfile()}), nil
}

func (h tenantService) GetHIPAAProfile(ctx context.Context, _ *connect.Request[auditv1.GetHIPAAProfileRequest]) (*connect.Response[auditv1.GetHIPAAProfileResponse], error) {
	t, err := h.s.store.Tenant(ctx, authz.CallerFrom(ctx).TenantID)
	if err != nil {
		return nil, err
	}
	out := &auditv1.GetHIPAAProfileResponse{}
	if len(t.HipaaProfile) > 0 {
		out.Profile = &auditv1.HIPAAProfile{}
		if err := profileFromMap(t.HipaaProfile, out.Profile); err != nil {
			return nil, err
		}
	}
	return connect.NewResponse(out), nil
}

func (h tenantService) UpdateHIPAAProfile(ctx context.Context, req *connect.Request[auditv1.UpdateHIPAAProfileRequest]) (*connect.Response[auditv1.UpdateHIPAAProfileResponse], error) {
	c := authz.CallerFrom(ctx)
	noteAudit(ctx, reports.ActionHIPAAProfileUpdate, "tenant", c.TenantID, nil)
	m, err := profileToMap(req.Msg.GetProfile(), func(m map[string]any) error {
		_, err := reports.ParseHIPAAProfile(m)
		return err
	})
	if err != nil {
		return nil, err
	}
	if _, err := h.s.store.SetHIPAAProfile(ctx, c.TenantID, m); err != nil {
		return nil, err
	}
	return connect.NewResponse(&auditv1.UpdateHIPAAProfileResponse{Profile: req.Msg.GetProfile()}), nil
}

// profileToMap turns a profile message into the JSON object reports read
// (the proto field names are the JSON names of reports.GDPRProfile and
// reports.HIPAAProfile), checked by parse; its complaints become field
// violations under `profile`.
func profileToMap(p proto.Message, parse func(map[string]any) error) (map[string]any, error) {
	b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("encode profile: %w", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("decode profile: %w", err)
	}
	if err := parse(m); err != nil {
		var vs []fault.Violation
		for _, line := range strings.Split(errors.Unwrap(err).Error(), "\n") {
			field, _, _ := strings.Cut(line, " ")
			vs = append(vs, fault.Violation{Field: "profile." + field, Number: 1, Rule: "profile.valid", Message: line})
		}
		return nil, fault.Invalid(vs...)
	}
	return m, nil
}

func profileFromMap(m map[string]any, into proto.Message) error {
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode stored profile: %w", err)
	}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(b, into); err != nil {
		return fmt.Errorf("decode stored profile: %w", err)
	}
	return nil
}
