package server

import (
	"context"
	"net/url"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/exportd/exportd/authz"
	auditv1 "github.com/exportd/exportd/gen/go/audit/v1"
	"github.com/exportd/exportd/internal/fault"
	"github.com/exportd/exportd/internal/store"
)

func webhookProto(w *store.Webhook) *auditv1.Webhook {
	return &auditv1.Webhook{
		WebhookId:   w.ID,
		Url:         w.URL,
		Description: w.Description,
		Events:      w.Events,
		Enabled:     w.Enabled,
		CreatedAt:   timestamppb.New(w.CreatedAt),
		UpdatedAt:   timestamppb.New(w.UpdatedAt),
	}
}

// checkWebhookURL adds what protovalidate's uri rule lets through: an
// https URL must name a host, and one outside the service's own networks.
func (s *Server) checkWebhookURL(ctx context.Context, raw string, number int32) error {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.Hostname() == "" || u.User != nil {
		return fault.Invalid(fault.Violation{Field: "url", Number: number, Rule: "url.https_host",
			Message: "must be an https URL with a host and no credentials"})
	}
	if err := s.webhooks.CheckURL(ctx, raw); err != nil {
		return fault.Invalid(fault.Violation{Field: "url", Number: number, Rule: "url.public_host", Message: err.Error()})
	}
	return nil
}

func (h tenantService) CreateWebhook(ctx context.Context, req *connect.Request[auditv1.CreateWebhookRequest]) (*connect.Response[auditv1.CreateWebhookResponse], error) {
	c := authz.CallerFrom(ctx)
	m := req.Msg
	if err := h.s.checkWebhookURL(ctx, m.GetUrl(), 1); err != nil {
		return nil, err
	}
	w, secret, err := h.s.store.CreateWebhook(ctx, c.TenantID, store.WebhookChange{URL: m.GetUrl(), Description: m.GetDescription(), Events: m.GetEvents()})
	if err != nil {
		return nil, err
	}
	noteAudit(ctx, "", "webhook", w.ID, map[string]any{"url": w.URL, "events": w.Events})
	return connect.NewResponse(&auditv1.CreateWebhookResponse{Webhook: webhookProto(w), Secret: secret}), nil
}

func (h tenantService) ListWebhooks(ctx context.Context, _ *connect.Request[auditv1.ListWebhooksRequest]) (*connect.Response[auditv1.ListWebhooksResponse], error) {
	ws, err := h.s.store.Webhooks(ctx, authz.CallerFrom(ctx).TenantID)
	if err != nil {
		return nil, err
	}
	out := &auditv1.ListWebhooksResponse{Webhooks: make([]*auditv1.Webhook, 0, len(ws))}
	for _, w := range ws {
		out.Webhooks = append(out.Webhooks, webhookProto(w))
	}
	return connect.NewResponse(out), nil
}

func (h tenantService) UpdateWebhook(ctx context.Context, req *connect.Request[auditv1.UpdateWebhookRequest]) (*connect.Response[auditv1.UpdateWebhookResponse], error) {
	c := authz.CallerFrom(ctx)
	m := req.Msg
	if err := h.s.checkWebhookURL(ctx, m.GetUrl(), 2); err != nil {
		return nil, err
	}
	noteAudit(ctx, "", "webhook", m.GetWebhookId(), map[string]any{"url": m.GetUrl(), "events": m.GetEvents(), "enabled": m.GetEnabled()})
	w, err := h.s.store.UpdateWebhook(ctx, c.TenantID, m.GetWebhookId(), store.WebhookChange{
		URL: m.GetUrl(), Description: m.GetDescription(), Events: m.GetEvents(), Enabled: m.GetEnabled()})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&auditv1.UpdateWebhookResponse{Webhook: webhookProto(w)}), nil
}

func (h tenantService) DeleteWebhook(ctx context.Context, req *connect.Request[auditv1.DeleteWebhookRequest]) (*connect.Response[auditv1.DeleteWebhookResponse], error) {
	c := authz.CallerFrom(ctx)
	noteAudit(ctx, "", "webhook", req.Msg.GetWebhookId(), nil)
	if err := h.s.store.DeleteWebhook(ctx, c.TenantID, req.Msg.GetWebhookId()); err != nil {
		return nil, err
	}
	return connect.NewResponse(&auditv1.DeleteWebhookResponse{}), nil
}
