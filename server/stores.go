package server

import (
	"context"
	"time"

	"github.com/exportd/exportd/authz"
	"github.com/exportd/exportd/internal/apikey"
	"github.com/exportd/exportd/internal/store"
	"github.com/exportd/exportd/reports"
)

// Store is what the API needs of storage, one small interface per aggregate
// (the rooms of internal/store), so that each handler's dependencies can be
// read here and a test may put any one of them behind a fake. *store.Store
// is one.
type Store interface {
	JobStore
	EventLog
	KeyStore
	SettingsStore
	PolicyStore
	DownloadStore
	WebhookStore
	AttestationStore
	// Now is the store's clock; Ping says whether the database answers.
	Now() time.Time
	Ping(ctx context.Context) error
}

// JobStore is the export job queue as the API sees it.
type JobStore interface {
	CreateJob(ctx context.Context, nj store.NewJob) (job *store.Job, created bool, err error)
	Job(ctx context.Context, tenantID, jobID string) (*store.Job, error)
	JobsOf(ctx context.Context, refs []store.JobRef) (map[store.JobRef]*store.Job, error)
	ListJobs(ctx context.Context, tenantID string, f store.JobFilter) ([]*store.Job, string, error)
	CancelJob(ctx context.Context, tenantID, jobID, by string) (*store.Job, error)
}

// EventLog is a tenant's audit events and their hash chain.
type EventLog interface {
	Ingest(ctx context.Context, tenantID string, evs []store.NewEvent) (store.Ingested, error)
	AppendEvents(ctx context.Context, tenantID string, evs []reports.Event) (first, last int64, err error)
	QueryEvents(ctx context.Context, tenantID string, q store.EventQuery) (store.EventPage, error)
	StreamEvents(ctx context.Context, tenantID string, q store.EventQuery, fn func(store.StoredEvent) error) error
	VerifyChain(ctx context.Context, tenantID string, from, to int64) (store.ChainReport, error)
	EstimateEvents(ctx context.Context, tenantID string, from, to time.Time) (int64, error)
}

// KeyStore is API keys and the principals holding them.
type KeyStore interface {
	Authenticate(ctx context.Context, raw string) (*authz.Caller, error)
	CreateAPIKey(ctx context.Context, nk store.NewKey) (apikey.Key, *store.APIKey, error)
	APIKey(ctx context.Context, tenantID, keyID string) (*store.APIKey, error)
	APIKeys(ctx context.Context, tenantID string) ([]store.KeyInfo, error)
	RevokeAPIKey(ctx context.Context, tenantID, keyID string) (store.KeyInfo, error)
	PrincipalNames(ctx context.Context, tenantID string, ids []string) (map[string]string, error)
}

// SettingsStore is a tenant's settings and compliance profiles.
type SettingsStore interface {
	Tenant(ctx context.Context, id string) (*store.Tenant, error)
	UpdateRetention(ctx context.Context, tenantID string, auditDays, downloadDays int) (*store.Tenant, error)
	SetGDPRProfile(ctx context.Context, tenantID string, profile map[string]any) (*store.Tenant, error)
	SetHIPAAProfile(ctx context.Context, tenantID string, profile map[string]any) (*store.Tenant, error)
	SetCompliancePack(ctx context.Context, tenantID string, on bool) error
}

// PolicyStore is issuance policies and the issuers they name.
type PolicyStore interface {
	CreatePolicy(ctx context.Context, np store.NewPolicy) (*store.Policy, error)
	Policy(ctx context.Context, tenantID, id string) (*store.Policy, error)
	Policies(ctx context.Context, tenantID string) ([]*store.Policy, error)
	UpdatePolicy(ctx context.Context, tenantID, id string, u store.PolicyUpdate) (*store.Policy, error)
	DeletePolicy(ctx context.Context, tenantID, id string) error
	ExportPolicies(ctx context.Context, tenantID string) ([]authz.IssuancePolicy, error)
	CreateIssuer(ctx context.Context, tenantID, name, uri, tier string) (*store.Issuer, error)
	Issuers(ctx context.Context, tenantID string) ([]*store.Issuer, error)
	KeyIssuer(ctx context.Context, tenantID, issuerID string) (authz.KeyIssuer, error)
}

// DownloadStore is download records and single-use links.
type DownloadStore interface {
	RecordDownload(ctx context.Context, d store.Download) (*store.DownloadRecord, error)
	Downloads(ctx context.Context, tenantID, jobID string) ([]*store.DownloadRecord, error)
	CreateLink(ctx context.Context, nl store.NewLink) (string, *store.Link, error)
	Link(ctx context.Context, token string) (*store.Link, error)
	UseLink(ctx context.Context, l *store.Link) error
}

// WebhookStore is a tenant's completion webhook endpoints.
type WebhookStore interface {
	CreateWebhook(ctx context.Context, tenantID string, c store.WebhookChange) (*store.Webhook, string, error)
	Webhooks(ctx context.Context, tenantID string) ([]*store.Webhook, error)
	UpdateWebhook(ctx context.Context, tenantID, id string, c store.WebhookChange) (*store.Webhook, error)
	DeleteWebhook(ctx context.Context, tenantID, id string) error
}

// AttestationStore is a tenant's attestation records.
type AttestationStore interface {
	RecordAttestation(ctx context.Context, tenantID string, na store.NewAttestation) (*store.Attestation, error)
	Attestation(ctx context.Context, tenantID, id string) (*store.Attestation, error)
	ListAttestations(ctx context.Context, tenantID string, f store.AttestationFilter) ([]*store.Attestation, string, error)
	RevokeAttestation(ctx context.Context, tenantID, id string) (*store.Attestation, error)
	SupersedeAttestation(ctx context.Context, tenantID, id string, replacement store.NewAttestation) (old, repl *store.Attestation, err error)
}

var _ Store = (*store.Store)(nil)
