package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/exportd/exportd/ent"
	"github.com/exportd/exportd/ent/exportjob"
	"github.com/exportd/exportd/ent/webhook"
	"github.com/exportd/exportd/ent/webhookdelivery"
	"github.com/exportd/exportd/internal/apikey"
)

// Webhook events.
const (
	EventExportCompleted = "export.completed"
	EventExportFailed    = "export.failed"
)

// WebhookPayload is the JSON body of a webhook POST.
type WebhookPayload struct {
	Event       string     `json:"event"`
	DeliveryID  string     `json:"delivery_id"`
	JobID       string     `json:"job_id"`
	TenantID    string     `json:"tenant_id"`
	Status      string     `json:"status"`
	ReportType  string     `json:"report_type"`
	Format      string     `json:"format"`
	Error       string     `json:"error,omitempty"`
	SizeBytes   int64      `json:"size_bytes,omitempty"`
	SHA256      string     `json:"sha256,omitempty"`
	CompletedAt *time.Time `json:"completed_at,omitempty"`
	ExpiresAt   *time.Time `json:"expires_at,omitempty"`
}

// DeliveryStatus is where a webhook delivery is.
type DeliveryStatus string

// The statuses of a delivery: PENDING until it is DELIVERED or, out of
// attempts or refused, FAILED.
const (
	DeliveryPending   DeliveryStatus = "PENDING"
	DeliveryDelivered DeliveryStatus = "DELIVERED"
	DeliveryFailed    DeliveryStatus = "FAILED"
)

func (st DeliveryStatus) String() string { return string(st) }

// WebhookDelivery is one event to deliver to one endpoint, with its attempts.
type WebhookDelivery struct {
	ID             string
	TenantID       string
	EndpointID     string
	JobID          string
	Event          string
	Payload        []byte // the JSON of a WebhookPayload
	Status         DeliveryStatus
	Attempts       int
	NextAttemptAt  time.Time
	LeaseOwner     string
	LeaseUntil     *time.Time
	LastStatusCode int
	LastError      string
	CreatedAt      time.Time
	DeliveredAt    *time.Time
}

func deliveryFromEnt(d *ent.WebhookDelivery) *WebhookDelivery {
	if d == nil {
		return nil
	}
	return &WebhookDelivery{ID: d.ID, TenantID: d.TenantID, EndpointID: d.EndpointID, JobID: d.JobID, Event: d.Event,
		Payload: d.Payload, Status: DeliveryStatus(d.Status), Attempts: d.Attempts, NextAttemptAt: d.NextAttemptAt,
		LeaseOwner: d.LeaseOwner, LeaseUntil: d.LeaseUntil, LastStatusCode: d.LastStatusCode, LastError: d.LastError,
		CreatedAt: d.CreatedAt, DeliveredAt: d.DeliveredAt}
}

// enqueueWebhooks queues, in the transaction that made the job terminal, one
// delivery of event per enabled endpoint of the tenant. The transition
// happens once (it is fenced), and the unique index stops a second delivery
// of the same event regardless.
func (s *Store) enqueueWebhooks(ctx context.Context, tx *ent.Tx, jobID, event string) error {
	j, err := tx.ExportJob.Get(ctx, jobID)
	if err != nil {
		return fmt.Errorf("load job for webhooks: %w", err)
	}
	eps, err := tx.Webhook.Query().
		Where(webhook.TenantID(j.TenantID), webhook.Enabled(true)).
		All(ctx)
	if err != nil {
		return fmt.Errorf("find webhook endpoints: %w", err)
	}
	now := micro(s.now())
	for _, ep := range eps {
		if len(ep.Events) > 0 && !slices.Contains(ep.Events, event) {
			continue // the endpoint asked for other events only
		}
		id := apikey.RandomID("dlv_", 20)
		p := WebhookPayload{Event: event, DeliveryID: id, JobID: j.ID, TenantID: j.TenantID, Status: j.Status.String(),
			ReportType: j.ReportType, Format: j.Format, Error: j.Error, CompletedAt: j.CompletedAt}
		if j.Status == exportjob.StatusCOMPLETED {
			p.SizeBytes, p.SHA256, p.ExpiresAt = j.ArtifactSize, j.ArtifactSha256, j.ExpiresAt
		}
		body, err := json.Marshal(p)
		if err != nil {
			return fmt.Errorf("encode webhook payload: %w", err)
		}
		err = tx.WebhookDelivery.Create().
			SetID(id).SetTenantID(j.TenantID).SetEndpointID(ep.ID).SetJobID(j.ID).SetEvent(event).
			SetPayload(body).SetNextAttemptAt(now).SetCreatedAt(now).
			Exec(ctx)
		if err != nil {
			return fmt.Errorf("queue webhook: %w", err)
		}
	}
	return nil
}

// deliveryQueue is the webhook delivery table as a queue: a PENDING delivery
// is due at its next attempt unless a live lease holds it.
var deliveryQueue = queue{
	table:   webhookdelivery.Table,
	columns: webhookdelivery.Columns,
	due:     "q.status = 'PENDING' AND q.next_attempt_at <= $1 AND (q.lease_until IS NULL OR q.lease_until < $1)",
	order:   "q.next_attempt_at, q.id",
	claim:   "attempts = q.attempts + 1, lease_owner = $2, lease_until = $3",
	leased:  webhookdelivery.StatusPENDING.String(),
	attempt: webhookdelivery.FieldAttempts,
}

// claimedDelivery is a row of a delivery claim.
type claimedDelivery struct {
	ent.WebhookDelivery
	Held bool `json:"held"`
}

// ClaimDelivery takes the lease of the oldest due webhook delivery for owner
// and returns it with its endpoint; nil when there is none.
func (s *Store) ClaimDelivery(ctx context.Context, owner string, lease time.Duration) (*WebhookDelivery, *Webhook, error) {
	// The deliverer serves every tenant.
	ctx = System(ctx)
	now := micro(s.now())
	c, err := claimRow[claimedDelivery](ctx, s.db, s.Dialect, deliveryQueue, claimFilter{}, []any{now, owner, now.Add(lease)})
	if err != nil {
		return nil, nil, fmt.Errorf("claim webhook delivery: %w", err)
	}
	if c == nil {
		return nil, nil, nil
	}
	d := c.WebhookDelivery
	ep, err := s.client.Webhook.Get(ctx, d.EndpointID)
	if err != nil {
		// The lease lapses and the delivery is tried again then.
		return nil, nil, fmt.Errorf("load webhook endpoint: %w", err)
	}
	return deliveryFromEnt(&d), webhookFromEnt(ep), nil
}

// DeliveryOutcome is what one delivery attempt got.
type DeliveryOutcome struct {
	StatusCode int
	Error      string
	// Next is when to try again; zero when the delivery succeeded or gave up.
	Next time.Time
	// Failed ends the delivery as FAILED.
	Failed bool
}

// RecordDelivery logs an attempt of d (fenced on its attempt and owner) and
// sets what happens next: DELIVERED, a retry at o.Next, or FAILED.
func (s *Store) RecordDelivery(ctx context.Context, d *WebhookDelivery, o DeliveryOutcome) error {
	ctx = scoped(ctx, d.TenantID)
	u := s.client.WebhookDelivery.Update().
		Where(deliveryQueue.fence(d.ID, d.Attempts, d.LeaseOwner)).
		SetLastStatusCode(o.StatusCode).
		SetLastError(o.Error).
		SetLeaseOwner("").
		ClearLeaseUntil()
	switch {
	case o.Error == "" && !o.Failed:
		u.SetStatus(webhookdelivery.StatusDELIVERED).SetDeliveredAt(micro(s.now()))
	case o.Failed:
		u.SetStatus(webhookdelivery.StatusFAILED)
	default:
		u.SetNextAttemptAt(micro(o.Next))
	}
	n, err := u.Save(ctx)
	if err != nil {
		return fmt.Errorf("record webhook delivery: %w", err)
	}
	if n == 0 {
		return ErrLeaseLost
	}
	return nil
}

// Deliveries returns the delivery log of a job's webhooks, oldest first.
func (s *Store) Deliveries(ctx context.Context, tenantID, jobID string) ([]*WebhookDelivery, error) {
	ctx = scoped(ctx, tenantID)
	ds, err := s.client.WebhookDelivery.Query().
		Where(webhookdelivery.TenantID(tenantID), webhookdelivery.JobID(jobID)).
		Order(webhookdelivery.ByCreatedAt(), webhookdelivery.ByID()).
		All(ctx)
	out := make([]*WebhookDelivery, len(ds))
	for i, d := range ds {
		out[i] = deliveryFromEnt(d)
	}
	return out, translate(err, "webhook deliveries")
}
