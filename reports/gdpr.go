package reports

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Attestation statuses.
const (
	StatusActive     = "ACTIVE"
	StatusRevoked    = "REVOKED"
	StatusSuperseded = "SUPERSEDED"
)

// gdpr writes the GDPR report: an Article 30 record of processing
// activities from the tenant's profile, then the attestation records
// created, revoked or superseded in the period and their counts.
//
// data_categories and legal_basis also cover the attestation records, and
// come before them, so attestations are read twice: once for those
// (bounded) vocabularies, once to stream the records. Counts are taken on
// the streaming pass and written after the records, so they always agree
// with the records above them.
func (g *gen) gdpr() error {
	p := lenientGDPR(g.req.GDPR)
	categories := map[string]bool{}
	bases := map[string]bool{}
	for _, a := range p.ProcessingActivities {
		for _, c := range a.DataCategories {
			categories[c] = true
		}
		if a.LegalBasis != "" {
			bases[a.LegalBasis] = true
		}
	}
	err := g.src.Attestations(g.ctx, g.req.AppliedStart, g.req.AppliedEnd, func(a *Attestation) error {
		for _, c := range a.DataCategories {
			categories[c] = true
		}
		if a.LegalBasis != "" {
			bases[a.LegalBasis] = true
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read attestation records: %w", err)
	}
	r := retention{
		AuditLogDays:       g.req.RetentionDays,
		DownloadWindowDays: g.req.DownloadWindowDays,
		Activities:         []activityRetention{},
	}
	for _, a := range p.ProcessingActivities {
		r.Activities = append(r.Activities, activityRetention{a.Purpose, a.RetentionPeriod})
	}
	sections := gdprSections{
		profile:     p,
		categories:  sortedKeys(categories),
		bases:       sortedKeys(bases),
		retention:   r,
		disclosures: disclosuresOf(p.ProcessingActivities),
	}
	if g.csv != nil {
		err = g.gdprCSVHead(sections)
	} else {
		err = g.gdprJSONHead(sections)
	}
	if err != nil {
		return err
	}
	counts, err := g.attestations()
	if err != nil {
		return err
	}
	if err := g.attestationCounts(counts); err != nil {
		return err
	}
	if g.csv == nil {
		return g.endObject()
	}
	return nil
}

type gdprSections struct {
	profile     GDPRProfile
	categories  []string
	bases       []string
	retention   retention
	disclosures []disclosure
}

type retention struct {
	AuditLogDays       int                 `json:"audit_log_retention_days"`
	DownloadWindowDays int                 `json:"export_download_window_days"`
	Activities         []activityRetention `json:"processing_activities"`
}

type activityRetention struct {
	Purpose         string `json:"purpose"`
	RetentionPeriod string `json:"retention_period"`
}

type disclosure struct {
	Recipient string   `json:"recipient"`
	Purposes  []string `json:"purposes"`
}

// disclosuresOf lists each recipient and third party once, with the
// purposes for which it receives data.
func disclosuresOf(activities []ProcessingActivity) []disclosure {
	purposes := map[string][]string{}
	for _, a := range activities {
		for _, r := range slices.Concat(a.Recipients, a.ThirdPartyDisclosures) {
			if r != "" && !slices.Contains(purposes[r], a.Purpose) {
				purposes[r] = append(purposes[r], a.Purpose)
			}
		}
	}
	out := []disclosure{}
	for _, r := range sortedKeys(purposes) {
		out = append(out, disclosure{r, purposes[r]})
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// rows counts n records written as one JSON value, to keep Summary.Rows the
// same in both formats.
func (g *gen) rows(n int) error {
	for range n {
		if err := g.row(); err != nil {
			return err
		}
	}
	return nil
}

func (g *gen) gdprJSONHead(s gdprSections) error {
	if err := g.header(); err != nil {
		return err
	}
	c := s.profile.Controller
	contacts := 1
	if c.Representative != nil {
		contacts++
	}
	for _, kv := range []struct {
		key  string
		v    any
		rows int
	}{
		{"controller", c, 1 + contacts},
		{"processing_activities", s.profile.ProcessingActivities, len(s.profile.ProcessingActivities)},
		{"data_categories", s.categories, len(s.categories)},
		{"legal_basis", s.bases, len(s.bases)},
		{"retention_periods", s.retention, 2 + len(s.retention.Activities)},
		{"third_party_disclosures", s.disclosures, len(s.disclosures)},
	} {
		if err := g.value(kv.key, kv.v); err != nil {
			return err
		}
		if err := g.rows(kv.rows); err != nil {
			return err
		}
	}
	g.sum.Counts["processing_activities"] = int64(len(s.profile.ProcessingActivities))
	return g.row() // the summary row of the CSV
}

func (g *gen) gdprCSVHead(s gdprSections) error {
	if err := g.csvHeader(-1, -1); err != nil {
		return err
	}
	c := s.profile.Controller
	g.begin("controller")
	g.rec[colEntityType] = "controller"
	g.text(colName, c.Name)
	g.text(colEmail, c.Email)
	g.text(colPhone, c.Phone)
	g.text(colAddress, c.Address)
	if err := g.flushRow(); err != nil {
		return err
	}
	if err := g.csvContact("dpo", c.DPO); err != nil {
		return err
	}
	if c.Representative != nil {
		if err := g.csvContact("representative", *c.Representative); err != nil {
			return err
		}
	}
	for _, a := range s.profile.ProcessingActivities {
		g.begin("processing_activity")
		g.text(colName, a.Name)
		g.text(colPurpose, a.Purpose)
		g.text(colLegalBasis, a.LegalBasis)
		g.list(colDataCategories, a.DataCategories)
		g.list(colDataSubjects, a.DataSubjects)
		g.list(colRecipients, a.Recipients)
		g.list(colDisclosures, a.ThirdPartyDisclosures)
		transfers := make([]string, len(a.InternationalTransfers))
		for i, t := range a.InternationalTransfers {
			transfers[i] = t.String()
		}
		g.list(colTransfers, transfers)
		g.text(colRetention, a.RetentionPeriod)
		g.list(colSecurity, a.SecurityMeasures)
		if err := g.flushRow(); err != nil {
			return err
		}
	}
	g.sum.Counts["processing_activities"] = int64(len(s.profile.ProcessingActivities))
	for _, v := range s.categories {
		g.begin("data_category")
		g.text(colDataCategories, v)
		if err := g.flushRow(); err != nil {
			return err
		}
	}
	for _, v := range s.bases {
		g.begin("legal_basis")
		g.text(colLegalBasis, v)
		if err := g.flushRow(); err != nil {
			return err
		}
	}
	for _, kv := range [][2]string{
		{"audit_log", strconv.Itoa(s.retention.AuditLogDays) + " days"},
		{"export_download_window", strconv.Itoa(s.retention.DownloadWindowDays) + " days"},
	} {
		g.begin("retention_period")
		g.rec[colName] = kv[0]
		g.rec[colRetention] = kv[1]
		if err := g.flushRow(); err != nil {
			return err
		}
	}
	for _, a := range s.retention.Activities {
		g.begin("retention_period")
		g.rec[colName] = "processing_activity"
		g.text(colPurpose, a.Purpose)
		g.text(colRetention, a.RetentionPeriod)
		if err := g.flushRow(); err != nil {
			return err
		}
	}
	for _, d := range s.disclosures {
		g.begin("third_party_disclosure")
		g.text(colName, d.Recipient)
		g.list(colPurpose, d.Purposes)
		if err := g.flushRow(); err != nil {
			return err
		}
	}
	return nil
}

// attestationCounts are the attestation records of the period by what
// happened to them in it, and by their current status.
type attestationCounts struct {
	Created    int64            `json:"created"`
	Revoked    int64            `json:"revoked"`
	Superseded int64            `json:"superseded"`
	Total      int64            `json:"total"`
	ByStatus   map[string]int64 `json:"by_status"`
}

func (g *gen) attestations() (attestationCounts, error) {
	n := attestationCounts{ByStatus: map[string]int64{StatusActive: 0, StatusRevoked: 0, StatusSuperseded: 0}}
	from, to := g.req.AppliedStart, g.req.AppliedEnd
	in := func(t *time.Time) bool { return t != nil && !t.Before(from) && t.Before(to) }
	if g.csv == nil {
		g.beginArray("attestation_records")
	}
	var happened []string
	err := g.src.Attestations(g.ctx, from, to, func(a *Attestation) error {
		happened = happened[:0]
		if in(&a.CreatedAt) {
			happened = append(happened, "created")
			n.Created++
		}
		if in(a.RevokedAt) {
			happened = append(happened, "revoked")
			n.Revoked++
		}
		if in(a.SupersededAt) {
			happened = append(happened, "superseded")
			n.Superseded++
		}
		n.Total++
		if _, ok := n.ByStatus[a.Status]; ok || len(n.ByStatus) < 16 { // bounded even if statuses are junk
			n.ByStatus[a.Status]++
		}
		if g.csv != nil {
			g.begin("attestation")
			g.text(colAttestationID, a.ID)
			g.text(colIssuerID, a.IssuerID)
			g.text(colIssuerName, a.IssuerName)
			g.text(colSubject, a.Subject)
			g.text(colSchema, a.Schema)
			g.text(colStatus, a.Status)
			g.list(colDataCategories, a.DataCategories)
			g.text(colLegalBasis, a.LegalBasis)
			g.when(colCreatedAt, a.CreatedAt)
			if a.RevokedAt != nil {
				g.when(colRevokedAt, *a.RevokedAt)
			}
			g.text(colSupersededBy, a.SupersededBy)
			if a.SupersededAt != nil {
				g.when(colSupersededAt, *a.SupersededAt)
			}
			g.rec[colInPeriod] = strings.Join(happened, ListSeparator)
			return g.flushRow()
		}
		g.buf = appendAttestation(g.buf[:0], a, happened)
		if err := g.item(g.buf); err != nil {
			return err
		}
		return g.row()
	})
	if err != nil {
		return n, fmt.Errorf("read attestation records: %w", err)
	}
	if g.csv == nil {
		g.endArray()
	}
	g.sum.Counts["attestation_records"] = n.Total
	return n, nil
}

func appendAttestation(b []byte, a *Attestation, happened []string) []byte {
	b = append(b, `{"id": `...)
	b = appendString(b, a.ID)
	b = append(b, `, "issuer": {"id": `...)
	b = appendString(b, a.IssuerID)
	b = append(b, `, "name": `...)
	b = appendString(b, a.IssuerName)
	b = append(b, `}, "subject": `...)
	b = appendString(b, a.Subject)
	b = append(b, `, "schema": `...)
	b = appendString(b, a.Schema)
	b = append(b, `, "status": `...)
	b = appendString(b, a.Status)
	b = append(b, `, "data_categories": [`...)
	for i, c := range a.DataCategories {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = appendString(b, c)
	}
	b = append(b, `], "legal_basis": `...)
	b = appendString(b, a.LegalBasis)
	b = append(b, `, "created_at": `...)
	b = appendOptTime(b, a.CreatedAt)
	b = append(b, `, "revoked_at": `...)
	b = appendOptTime(b, deref(a.RevokedAt))
	b = append(b, `, "superseded_by": `...)
	b = appendString(b, a.SupersededBy)
	b = append(b, `, "superseded_at": `...)
	b = appendOptTime(b, deref(a.SupersededAt))
	b = append(b, `, "in_period": [`...)
	for i, h := range happened {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = appendString(b, h)
	}
	return append(b, "]}"...)
}

func deref(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

func (g *gen) attestationCounts(n attestationCounts) error {
	statuses := sortedKeys(n.ByStatus)
	if g.csv == nil {
		if err := g.value("attestation_counts", n); err != nil {
			return err
		}
		return g.rows(4 + len(statuses))
	}
	for _, kv := range []struct {
		name string
		n    int64
	}{{"created", n.Created}, {"revoked", n.Revoked}, {"superseded", n.Superseded}, {"total", n.Total}} {
		g.begin("attestation_count")
		g.rec[colName] = kv.name
		g.num(colCount, kv.n)
		if err := g.flushRow(); err != nil {
			return err
		}
	}
	for _, s := range statuses {
		g.begin("attestation_count")
		g.rec[colName] = "by_status"
		g.text(colStatus, s)
		g.num(colCount, n.ByStatus[s])
		if err := g.flushRow(); err != nil {
			return err
		}
	}
	return nil
}
