package reportstest

import (
	"time"

	"github.com/exportd/exportd/reports"
)

// The fixed dataset covers the vendor page's example period, 1 January to
// 31 March 2026 (end inclusive at whole seconds).
var (
	PeriodStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	PeriodEnd   = time.Date(2026, 3, 31, 23, 59, 59, 0, time.UTC)
	AppliedEnd  = PeriodEnd.Add(time.Second)
	GeneratedAt = time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)
)

// Watermark is the as-of sequence of the fixed dataset's requests; one
// event in the period lies above it and must not appear.
const Watermark = 24

// TenantID is the tenant of the fixed dataset.
const TenantID = "tenant-7f3c"

func at(month time.Month, day, hour, minute, second, micro int) time.Time {
	return time.Date(2026, month, day, hour, minute, second, micro*1000, time.UTC)
}

func ptr[T any](v T) *T { return &v }

// Events returns the fixed audit events: every action the product writes,
// in all three categories and outcomes, PHI and not, events just outside
// the period and above the watermark, and hostile values (spreadsheet
// formulas, quotes, control characters, invalid UTF-8).
func Events() []reports.Event {
	ev := func(seq int64, t time.Time, cat, action, outcome string, phi bool) reports.Event {
		return reports.Event{
			Sequence: seq, OccurredAt: t, Category: cat, Action: action, Outcome: outcome, PHI: phi,
			ActorID: "usr_alice", ActorType: "user", ResourceType: "tenant", ResourceID: TenantID,
			IP: "198.51.100.20", UserAgent: "Mozilla/5.0", RequestID: "req-" + string(rune('a'+seq%26)),
		}
	}
	events := []reports.Event{
		ev(1, time.Date(2025, 12, 31, 23, 59, 59, 999999000, time.UTC), "access", "auth.login", "success", false), // before the period
		ev(2, at(1, 1, 0, 0, 0, 0), "access", "auth.login", "success", false),
		ev(3, at(1, 2, 9, 30, 0, 250), "access", "auth.login_failed", "failure", false),
		ev(4, at(1, 3, 10, 0, 0, 0), "access", "apikey.create", "success", false),
		ev(5, at(1, 3, 10, 5, 0, 0), "access", "role.assign", "success", false),
		ev(6, at(1, 10, 8, 0, 0, 0), "data", "patient.read", "success", true),
		ev(7, at(1, 10, 8, 0, 0, 0), "data", "patient.update", "success", true), // same instant: ordered by sequence
		ev(8, at(1, 15, 14, 0, 0, 1), "data", "record.read", "success", false),
		ev(9, at(1, 15, 14, 1, 0, 0), "data", "record.write", "success", true),
		ev(10, at(2, 1, 11, 0, 0, 0), "api", "export.create", "success", false),
		ev(11, at(2, 1, 11, 10, 0, 0), "api", "export.download", "success", false),
		ev(12, at(2, 2, 12, 0, 0, 0), "access", "export.denied", "denied", false),
		ev(13, at(2, 3, 9, 0, 0, 0), "access", "apikey.auth_failed", "failure", false),
		ev(14, at(2, 4, 9, 0, 0, 0), "access", "role.change", "success", false),
		ev(15, at(2, 5, 9, 0, 0, 0), "access", "apikey.revoke", "success", false),
		ev(16, at(2, 6, 9, 0, 0, 0), "api", "attestation.create", "success", false),
		ev(17, at(2, 7, 9, 0, 0, 0), "api", "attestation.revoke", "success", false),
		ev(18, at(2, 8, 9, 0, 0, 0), "api", "policy.update", "success", false),
		ev(19, at(2, 9, 9, 0, 0, 0), "api", "settings.update", "success", false),
		ev(20, at(2, 10, 9, 0, 0, 0), "api", "addon.enable", "success", false),
		ev(21, at(3, 1, 16, 20, 0, 0), "data", "patient.read", "denied", true),
		ev(22, at(3, 31, 23, 59, 59, 999999), "data", "record.read", "success", false), // last µs of the inclusive end
		ev(23, at(4, 1, 0, 0, 0, 0), "access", "auth.login", "success", false),         // first µs after the period
		ev(24, at(3, 15, 10, 0, 0, 0), "data", "record.write", "success", false),       // out of order in time
		ev(25, at(3, 20, 10, 0, 0, 0), "data", "record.read", "success", true),         // above the watermark
	}
	events[20].ActorID = "=cmd|' /C calc'!A0"
	events[20].ActorType = "service"
	events[20].ResourceType = "patient"
	events[20].ResourceID = "+1"
	events[20].UserAgent = "-1"
	events[20].RequestID = "@SUM(1)"
	events[20].IP = "\t=1"
	events[20].Metadata = map[string]any{"note": "＝1", "quote": "'already quoted", "lines": "a\r\nb", "n": -5}
	events[5].Metadata = map[string]any{"patient": "p-001", "fields": []any{"name", "dob"}}
	events[3].Metadata = map[string]any{"principal": "ann@example.com", "key_id": "key_01"} // as exportd records its own events
	events[8].Metadata = map[string]any{"reason": "Änderung der Adresse — “Zeile 2”"}
	events[9].Metadata = map[string]any{"report_type": "soc2", "format": "csv"}
	events[2].UserAgent = "bad\xffutf8 \x01ctl"
	return events
}

// Attestations returns the fixed attestation records: created, revoked and
// superseded in the period, one created before but revoked in it, and one
// entirely outside it.
func Attestations() []reports.Attestation {
	return []reports.Attestation{
		{ID: "att_001", IssuerID: "iss_1", IssuerName: "Acme Health CA", Subject: "did:example:123", Schema: "consent/v1",
			Status: "ACTIVE", DataCategories: []string{"contact", "health"}, LegalBasis: "consent",
			CreatedAt: at(1, 5, 9, 0, 0, 0)},
		{ID: "att_002", IssuerID: "iss_1", IssuerName: "Acme Health CA", Subject: "did:example:456", Schema: "consent/v1",
			Status: "REVOKED", DataCategories: []string{"health"}, LegalBasis: "consent",
			CreatedAt: time.Date(2025, 11, 1, 0, 0, 0, 0, time.UTC), RevokedAt: ptr(at(2, 7, 9, 0, 0, 0))},
		{ID: "att_003", IssuerID: "iss_2", IssuerName: "=HYPERLINK(\"http://x\")", Subject: "did:example:789", Schema: "employment/v2",
			Status: "SUPERSEDED", DataCategories: []string{"employment"}, LegalBasis: "contract",
			CreatedAt: at(1, 20, 9, 0, 0, 0), SupersededBy: "att_004", SupersededAt: ptr(at(3, 1, 9, 0, 0, 0))},
		{ID: "att_004", IssuerID: "iss_2", IssuerName: "Globex HR", Subject: "did:example:789", Schema: "employment/v2",
			Status: "ACTIVE", DataCategories: []string{"employment", "identity"}, LegalBasis: "legal_obligation",
			CreatedAt: at(3, 1, 9, 0, 0, 0)},
		{ID: "att_005", IssuerID: "iss_1", IssuerName: "Acme Health CA", Subject: "did:example:000", Schema: "consent/v1",
			Status: "ACTIVE", DataCategories: []string{"outside"}, LegalBasis: "vital_interests",
			CreatedAt: at(4, 2, 0, 0, 0, 0)},
	}
}

// GDPRProfile is the fixed tenant's GDPR profile as stored (a JSON object).
func GDPRProfile() map[string]any {
	return map[string]any{
		"controller": map[string]any{
			"name": "Acme Health GmbH", "address": "Hauptstraße 1, 10115 Berlin", "email": "privacy@acme.example",
			"dpo":            map[string]any{"name": "Dana Pohl", "email": "dpo@acme.example", "phone": "+49 30 1234567"},
			"representative": map[string]any{"name": "Acme EU Rep Ltd", "email": "rep@acme.example"},
		},
		"processing_activities": []any{
			map[string]any{
				"name": "care", "purpose": "Patient care coordination", "legal_basis": "consent",
				"data_categories": []any{"health", "contact"}, "data_subjects": []any{"patients"},
				"recipients": []any{"Partner clinics"}, "third_party_disclosures": []any{"=Insurer AG"},
				"international_transfers": []any{map[string]any{"country": "US", "recipient": "Cloud Host Inc", "safeguards": "standard contractual clauses"}},
				"retention_period":        "10 years after last treatment", "security_measures": []any{"encryption at rest", "RBAC"},
			},
			map[string]any{
				"name": "payroll", "purpose": "Payroll", "legal_basis": "legal_obligation",
				"data_categories": []any{"employment", "bank details"}, "data_subjects": []any{"employees"},
				"recipients": []any{"Tax office", "Partner clinics"}, "retention_period": "6 years",
			},
		},
	}
}

// HIPAAProfile is the fixed tenant's HIPAA profile as stored.
func HIPAAProfile() map[string]any {
	return map[string]any{
		"name": "Acme Health Inc", "type": "covered_entity",
		"identifiers":      []any{map[string]any{"type": "NPI", "value": "1234567893"}, map[string]any{"type": "EIN", "value": "12-3456789"}},
		"privacy_officer":  map[string]any{"name": "Pat Privacy", "email": "privacy@acme.example"},
		"security_officer": map[string]any{"name": "Sam Secure", "email": "security@acme.example", "phone": "-1 555 0100"},
	}
}

// Request returns the request for a report of the fixed dataset.
func Request(reportType, format string) reports.Request {
	return reports.Request{
		ReportType: reportType, Format: format,
		TenantID: TenantID, TenantName: "Acme Health",
		PeriodStart: PeriodStart, PeriodEnd: PeriodEnd,
		AppliedStart: PeriodStart, AppliedEnd: AppliedEnd,
		GeneratedAt: GeneratedAt, Watermark: Watermark,
		GDPR: GDPRProfile(), HIPAA: HIPAAProfile(),
		RetentionDays: 365, DownloadWindowDays: 7,
		Transport: reports.Transport{TLS: true, MinVersion: "TLS 1.2"},
	}
}

// Dataset returns a Source over the fixed events and attestations.
func Dataset() *Source {
	return NewSource(Events(), Attestations())
}
