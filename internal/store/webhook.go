package store

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"net/url"
	"time"

	"github.com/exportd/exportd/ent"
	"github.com/exportd/exportd/ent/webhook"
	"github.com/exportd/exportd/internal/apikey"
	"github.com/exportd/exportd/internal/fault"
)

// Webhook is an endpoint the tenant asked to be told about its exports.
type Webhook struct {
	ID          string
	TenantID    string
	URL         string
	Description string
	Events      []string // empty: every event
	Enabled     bool
	// Secret signs the deliveries; it never leaves the service after
	// CreateWebhook.
	Secret    string
	CreatedAt time.Time
	UpdatedAt time.Time
}

func webhookFromEnt(w *ent.Webhook) *Webhook {
	if w == nil {
		return nil
	}
	return &Webhook{ID: w.ID, TenantID: w.TenantID, URL: w.URL, Description: w.Description, Events: w.Events,
		Enabled: w.Enabled, Secret: w.Secret, CreatedAt: w.CreatedAt, UpdatedAt: w.UpdatedAt}
}

// WebhookChange is what CreateWebhook and UpdateWebhook set.
type WebhookChange struct {
	URL         string
	Description string
	Events      []string
	Enabled     bool
}

// CreateWebhook adds a webhook with a fresh 32-byte signing secret, which
// it returns; nothing returns it again.
func (s *Store) CreateWebhook(ctx context.Context, tenantID string, c WebhookChange) (*Webhook, string, error) {
	ctx = scoped(ctx, tenantID)
	if err := checkWebhookURL(c.URL); err != nil {
		return nil, "", err
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, "", err
	}
	secret := "whsec_" + base64.RawURLEncoding.EncodeToString(b)
	now := s.now()
	w, err := s.client.Webhook.Create().
		SetID(apikey.RandomID("wh_", 20)).SetTenantID(tenantID).SetURL(c.URL).SetDescription(c.Description).
		SetEvents(c.Events).SetEnabled(true).SetSecret(secret).SetCreatedAt(now).SetUpdatedAt(now).
		Save(ctx)
	if err != nil {
		return nil, "", translate(err, "webhook")
	}
	return webhookFromEnt(w), secret, nil
}

// Webhooks lists the tenant's webhooks, oldest first.
func (s *Store) Webhooks(ctx context.Context, tenantID string) ([]*Webhook, error) {
	ctx = scoped(ctx, tenantID)
	ws, err := s.client.Webhook.Query().Where(webhook.TenantID(tenantID)).
		Order(ent.Asc(webhook.FieldCreatedAt), ent.Asc(webhook.FieldID)).All(ctx)
	out := make([]*Webhook, len(ws))
	for i, w := range ws {
		out[i] = webhookFromEnt(w)
	}
	return out, translate(err, "webhooks")
}

// UpdateWebhook changes one of the tenant's webhooks; another tenant's is
// not found.
func (s *Store) UpdateWebhook(ctx context.Context, tenantID, id string, c WebhookChange) (*Webhook, error) {
	ctx = scoped(ctx, tenantID)
	n, err := s.client.Webhook.Update().Where(webhook.ID(id), webhook.TenantID(tenantID)).
		SetURL(c.URL).SetDescription(c.Description).SetEvents(c.Events).SetEnabled(c.Enabled).SetUpdatedAt(s.now()).
		Save(ctx)
	if err != nil {
		return nil, translate(err, "webhook "+fault.Echo(id))
	}
	if n == 0 {
		return nil, translate(&ent.NotFoundError{}, "webhook "+fault.Echo(id))
	}
	w, err := s.client.Webhook.Get(ctx, id)
	return webhookFromEnt(w), translate(err, "webhook "+fault.Echo(id))
}

// DeleteWebhook removes one of the tenant's webhooks.
func (s *Store) DeleteWebhook(ctx context.Context, tenantID, id string) error {
	ctx = scoped(ctx, tenantID)
	n, err := s.client.Webhook.Delete().Where(webhook.ID(id), webhook.TenantID(tenantID)).Exec(ctx)
	if err != nil {
		return translate(err, "webhook "+fault.Echo(id))
	}
	if n == 0 {
		return translate(&ent.NotFoundError{}, "webhook "+fault.Echo(id))
	}
	return nil
}

// checkWebhookURL admits only absolute https URLs with a host and no
// credentials: deliveries carry report metadata and are signed, never sent
// in clear.
func checkWebhookURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.Hostname() == "" || u.User != nil {
		return fault.Invalid(fault.Violation{Field: "url", Rule: "url.https_host", Message: "must be an https URL with a host and no credentials"})
	}
	return nil
}
