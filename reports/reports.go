// Package reports is the domain core of exportd: it turns a tenant's audit
// events and attestation records into framework reports (SOC 2, GDPR, HIPAA)
// in JSON or CSV, streaming, so memory stays flat whatever the period holds.
//
// It knows nothing of the API or the database: rows come through a Source,
// bytes go to an io.Writer. Generate is the entry point. What a report holds
// is published beside the code: a JSON Schema per report type (JSONSchema)
// and the CSV column dictionary (CSVColumns). Which audit events are
// evidence for which control is data too: the embedded control catalog
// (DefaultCatalog, CatalogVersion).
package reports

import (
	"context"
	"encoding/json"
	"time"
)

// Report types and formats, as they appear on the wire.
const (
	TypeSOC2  = "soc2"
	TypeGDPR  = "gdpr"
	TypeHIPAA = "hipaa"

	FormatJSON = "json"
	FormatCSV  = "csv"
)

// Event is one audit log entry as reports see it.
type Event struct {
	Sequence     int64
	OccurredAt   time.Time
	ActorID      string
	ActorType    string
	Action       string
	ResourceType string
	ResourceID   string
	Outcome      string // success, failure, denied
	Category     string // api, access, data
	PHI          bool
	IP           string
	UserAgent    string
	RequestID    string
	Metadata     map[string]any
	// RawMetadata, when not nil, is Metadata already encoded as canonical
	// JSON (encoding/json's encoding of the decoded object: sorted keys, no
	// insignificant space; "{}" for none), and encoders copy it instead of
	// encoding Metadata. A Source that holds the encoded form sets it and
	// saves a decode and an encode per event.
	RawMetadata json.RawMessage
}

// Attestation is one attestation record as reports see it.
type Attestation struct {
	ID             string
	IssuerID       string
	IssuerName     string
	Subject        string
	Schema         string
	Status         string // ACTIVE, REVOKED, SUPERSEDED
	DataCategories []string
	LegalBasis     string
	CreatedAt      time.Time
	RevokedAt      *time.Time
	SupersededBy   string
	SupersededAt   *time.Time
}

// EventFilter selects events of one tenant: occurred_at in [From, To),
// sequence <= MaxSequence (the as-of watermark), and optionally one category
// or only those touching protected health information.
type EventFilter struct {
	From, To    time.Time
	MaxSequence int64
	Category    string // "" for every category
	PHIOnly     bool
}

// Source reads one tenant's rows for a report. Implementations stream: they
// read in bounded batches and never hold the whole period in memory.
type Source interface {
	// Events calls fn for each matching event in (occurred_at, sequence)
	// order, stopping at the first error fn returns. The *Event is reused
	// between calls.
	Events(ctx context.Context, f EventFilter, fn func(*Event) error) error
	// CountEvents counts the events Events would visit.
	CountEvents(ctx context.Context, f EventFilter) (int64, error)
	// Attestations calls fn for each attestation record created, revoked or
	// superseded in [from, to), ordered by created_at then id.
	Attestations(ctx context.Context, from, to time.Time, fn func(*Attestation) error) error
}

// CategoryCounter is an optional Source method: the number of events f
// selects in each category (f.Category is ignored), read at once. A report
// that announces several counts before its rows asks it once instead of
// calling CountEvents, and so scanning the period, once per count.
type CategoryCounter interface {
	CountByCategory(ctx context.Context, f EventFilter) (map[string]int64, error)
}

// Request is everything a report needs besides its rows.
type Request struct {
	ReportType string
	Format     string
	TenantID   string
	TenantName string
	// PeriodStart and PeriodEnd are echoed as the client wrote them (the end
	// inclusive); AppliedStart and AppliedEnd are the half-open range read.
	PeriodStart, PeriodEnd   time.Time
	AppliedStart, AppliedEnd time.Time
	GeneratedAt              time.Time
	// Watermark is the highest audit sequence that existed when generation
	// started: the report is as of that point.
	Watermark int64
	// GDPR and HIPAA are the tenant's profiles, as stored (JSON objects).
	GDPR  map[string]any
	HIPAA map[string]any
	// RetentionDays and DownloadWindowDays are the tenant's retention policy.
	RetentionDays      int
	DownloadWindowDays int
	// Transport is the generating exportd's own transport configuration,
	// which the HIPAA transmission-security control states.
	Transport Transport
}

// Transport is how exportd serves its API: whether it terminates TLS
// itself and the lowest version it accepts ("TLS 1.2"; empty without TLS).
// TLS terminated in front of exportd is not visible here.
type Transport struct {
	TLS        bool
	MinVersion string
}

// Summary is what a generated report holds, for its manifest.
type Summary struct {
	// Counts per section, by section name (e.g. "audit_log", "access_log").
	Counts map[string]int64
	// FirstSequence and LastSequence of the audit events included (0 when none).
	FirstSequence, LastSequence int64
	// Rows is the total number of records written: the data rows of a CSV
	// report (header excluded), and the same count for its JSON twin.
	Rows int64
}

// Progress is told how many rows have been written so far.
type Progress func(rows int64)
