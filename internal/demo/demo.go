// Package demo writes realistic synthetic audit events and attestation
// records into a tenant, for trying exportd out and for benchmarks.
package demo

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"

	"github.com/exportd/exportd/internal/store"
	"github.com/exportd/exportd/reports"
)

// kind is one sort of event with its relative weight.
type kind struct {
	weight       int
	action       string
	category     string
	resourceType string
	phi          bool
	failRate     float64 // share of outcomes that are failures or denials
	failOutcome  string
}

// kinds mirror a tenant's day: mostly API calls and record reads, some
// logins (a few failing), occasional key and role changes, and reads of
// protected health information.
var kinds = []kind{
	{300, "attestation.create", "api", "attestation", false, 0.01, "failure"},
	{120, "attestation.verify", "api", "attestation", false, 0.02, "failure"},
	{20, "attestation.revoke", "api", "attestation", false, 0.0, ""},
	{180, "record.read", "data", "record", false, 0.0, ""},
	{60, "record.write", "data", "record", false, 0.01, "failure"},
	{90, "patient.read", "data", "patient_record", true, 0.0, ""},
	{25, "patient.update", "data", "patient_record", true, 0.01, "failure"},
	{100, "auth.login", "access", "session", false, 0.0, ""},
	{15, "auth.login_failed", "access", "session", false, 1.0, "failure"},
	{4, "apikey.create", "access", "api_key", false, 0.0, ""},
	{2, "apikey.revoke", "access", "api_key", false, 0.0, ""},
	{6, "apikey.auth_failed", "access", "api_key", false, 1.0, "denied"},
	{3, "role.assign", "access", "role", false, 0.0, ""},
	{2, "role.change", "access", "role", false, 0.0, ""},
	{8, "permission.denied", "access", "export_job", false, 1.0, "denied"},
	{5, "export.create", "api", "export_job", false, 0.0, ""},
	{5, "export.download", "access", "export_job", false, 0.0, ""},
	{3, "policy.update", "api", "issuance_policy", false, 0.0, ""},
	{2, "settings.update", "api", "tenant", false, 0.0, ""},
}

var (
	users  = []string{"alice@example.com", "bob@example.com", "carol@example.com", "dan@example.com", "erin@example.com"}
	agents = []string{"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/605.1.15",
		"exportctl/1.0", "grpc-go/1.70.0", "curl/8.5.0", "python-requests/2.32.3"}
	services = []string{"minting-service", "verifier", "ehr-sync"}
)

// Options says what to write.
type Options struct {
	Events   int
	From, To time.Time
	Seed     uint64
	Batch    int
}

// Seed writes o.Events events spread evenly over [o.From, o.To) in time
// order, plus attestation records and issuers, and returns how many events it
// wrote.
func Seed(ctx context.Context, st *store.Store, tenantID string, o Options) (int, error) {
	ctx = store.WithTenant(ctx, tenantID)
	if o.Batch <= 0 {
		o.Batch = 5000
	}
	if !o.To.After(o.From) {
		return 0, fmt.Errorf("seed: --to must be after --from")
	}
	rng := rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15))
	total := 0
	for _, k := range kinds {
		total += k.weight
	}
	span := o.To.Sub(o.From)
	batch := make([]reports.Event, 0, o.Batch)
	written := 0
	for i := 0; i < o.Events; i++ {
		at := o.From.Add(time.Duration(float64(span) * (float64(i) + rng.Float64()*0.5) / float64(o.Events)))
		k := pick(rng, total)
		e := reports.Event{
			OccurredAt:   at.UTC().Truncate(time.Microsecond),
			Action:       k.action,
			Category:     k.category,
			ResourceType: k.resourceType,
			ResourceID:   fmt.Sprintf("%s_%06d", k.resourceType, rng.IntN(50000)),
			Outcome:      "success",
			PHI:          k.phi,
			IP:           fmt.Sprintf("203.0.113.%d", 1+rng.IntN(250)),
			UserAgent:    agents[rng.IntN(len(agents))],
			RequestID:    fmt.Sprintf("req_%016x", rng.Uint64()),
		}
		if k.failRate > 0 && rng.Float64() < k.failRate {
			e.Outcome = k.failOutcome
		}
		if k.category == "api" && rng.IntN(3) == 0 {
			e.ActorType, e.ActorID = "service", services[rng.IntN(len(services))]
		} else {
			e.ActorType, e.ActorID = "user", users[rng.IntN(len(users))]
		}
		if rng.IntN(10) == 0 {
			e.Metadata = map[string]any{"reason": "scheduled review", "ticket": fmt.Sprintf("SEC-%d", 1000+rng.IntN(9000))}
		}
		batch = append(batch, e)
		if len(batch) == o.Batch || i == o.Events-1 {
			if _, _, err := st.AppendEvents(ctx, tenantID, batch); err != nil {
				return written, fmt.Errorf("seed events: %w", err)
			}
			written += len(batch)
			batch = batch[:0]
		}
	}
	if err := seedAttestations(ctx, st, tenantID, rng, o); err != nil {
		return written, err
	}
	if err := seedProfiles(ctx, st, tenantID); err != nil {
		return written, err
	}
	return written, nil
}

// seedProfiles gives the tenant a GDPR and a HIPAA profile where it has
// none, so that every report type can be exported from demo data (GDPR and
// HIPAA exports are refused without them). Profiles already set are kept.
func seedProfiles(ctx context.Context, st *store.Store, tenantID string) error {
	t, err := st.Tenant(ctx, tenantID)
	if err != nil {
		return err
	}
	if len(t.GdprProfile) == 0 {
		if _, err := st.SetGDPRProfile(ctx, tenantID, map[string]any{
			"controller": map[string]any{
				"name": "Acme Health Credentials GmbH", "address": "Hauptstraße 1, 10115 Berlin, Germany",
				"email": "privacy@acme.example", "dpo": map[string]any{"name": "Dana Ortiz", "email": "dpo@acme.example"},
			},
			"processing_activities": []any{map[string]any{
				"name": "Credential issuance", "purpose": "issuing and verifying health credentials", "legal_basis": "contract",
				"data_categories": []any{"identity", "health"}, "data_subjects": []any{"patients"},
				"recipients": []any{"verifiers"}, "third_party_disclosures": []any{}, "international_transfers": []any{},
				"retention_period": "6 years after the credential expires", "security_measures": []any{"encryption at rest", "role-based access"},
			}},
		}); err != nil {
			return fmt.Errorf("seed gdpr profile: %w", err)
		}
	}
	if len(t.HipaaProfile) == 0 {
		if _, err := st.SetHIPAAProfile(ctx, tenantID, map[string]any{
			"name": "Acme Health Credentials", "type": "business_associate",
			"identifiers":      []any{map[string]any{"type": "EIN", "value": "12-3456789"}},
			"privacy_officer":  map[string]any{"name": "Dana Ortiz", "email": "privacy@acme.example"},
			"security_officer": map[string]any{"name": "Sam Lee", "email": "security@acme.example"},
		}); err != nil {
			return fmt.Errorf("seed hipaa profile: %w", err)
		}
	}
	return nil
}

func pick(rng *rand.Rand, total int) kind {
	n := rng.IntN(total)
	for _, k := range kinds {
		if n < k.weight {
			return k
		}
		n -= k.weight
	}
	return kinds[0]
}

// seedAttestations writes issuers and attestation records, some revoked and
// some superseded.
func seedAttestations(ctx context.Context, st *store.Store, tenantID string, rng *rand.Rand, o Options) error {
	tiers := []string{"TIER_1", "TIER_2", "TIER_3"}
	var issuers []string
	for i, name := range []string{"Acme Health Credentials", "Northwind Identity", "Contoso Labs"} {
		id := uuid.NewString()
		if err := st.SeedIssuer(ctx, store.Issuer{ID: id, TenantID: tenantID, Name: fmt.Sprintf("%s %s", name, id[:4]),
			URI: "did:web:issuer" + fmt.Sprint(i) + ".example.com", TrustTier: store.TrustTier(tiers[i]),
			CreatedAt: o.From}); err != nil {
			return err
		}
		issuers = append(issuers, id)
	}
	n := max(10, min(o.Events/100, 2000))
	schemas := []string{"vaccination-record/v2", "employment-verification/v1", "lab-result/v3", "consent/v1"}
	cats := [][]string{{"health"}, {"identity", "employment"}, {"health", "genetic"}, {"contact"}}
	bases := []string{"consent", "contract", "legal_obligation", "legitimate_interests"}
	span := o.To.Sub(o.From)
	bulk := make([]*seedAttestation, 0, n)
	for i := 0; i < n; i++ {
		at := o.From.Add(time.Duration(rng.Int64N(int64(span)))).UTC().Truncate(time.Microsecond)
		a := &seedAttestation{id: uuid.NewString(), issuer: issuers[rng.IntN(len(issuers))], subject: fmt.Sprintf("did:example:subject%05d", rng.IntN(100000)),
			schema: schemas[i%len(schemas)], cats: cats[i%len(cats)], basis: bases[rng.IntN(len(bases))], created: at, status: "ACTIVE"}
		switch r := rng.IntN(10); {
		case r == 0:
			t := at.Add(time.Duration(rng.Int64N(int64(o.To.Sub(at))/2 + 1)))
			a.status, a.revoked = "REVOKED", &t
		case r == 1 && len(bulk) > 0:
			prev := bulk[rng.IntN(len(bulk))]
			if prev.status == "ACTIVE" && prev.created.Before(at) {
				prev.status, prev.supersededBy, prev.supersededAt = "SUPERSEDED", a.id, &at
			}
		}
		bulk = append(bulk, a)
	}
	rows := make([]store.Attestation, len(bulk))
	for i, a := range bulk {
		rows[i] = store.Attestation{ID: a.id, AttestationID: a.id, TenantID: tenantID, IssuerID: a.issuer, Subject: a.subject,
			Schema: a.schema, DataCategories: a.cats, LegalBasis: a.basis, CreatedAt: a.created,
			Status: store.AttestationStatus(a.status), RevokedAt: a.revoked, SupersededAt: a.supersededAt}
		if a.supersededBy != "" {
			rows[i].SupersededBy = &a.supersededBy
		}
	}
	return st.SeedAttestations(ctx, tenantID, rows)
}

type seedAttestation struct {
	id, issuer, subject, schema, basis, status string
	cats                                       []string
	created                                    time.Time
	revoked, supersededAt                      *time.Time
	supersededBy                               string
}
