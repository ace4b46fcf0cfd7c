package server_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"maps"
	"slices"
	"testing"
	"time"

	auditv1 "github.com/exportd/exportd/gen/go/audit/v1"
	"github.com/exportd/exportd/internal/store"
	"github.com/exportd/exportd/internal/store/storetest"
	"github.com/exportd/exportd/reports"
	"github.com/exportd/exportd/reports/reportstest"
	"github.com/exportd/exportd/server/servertest"
)

// csvRecordType is the CSV record type of the rows each manifest count
// counts. A count the test does not know fails it, so that a new section is
// checked too.
var csvRecordType = map[string]string{
	"audit_log":             "audit_entry",
	"access_log":            "access_entry",
	"audit_trail":           "audit_entry",
	"evidence_events":       "evidence_event",
	"controls":              "control",
	"control_evidence":      "evidence",
	"attestation_records":   "attestation",
	"processing_activities": "processing_activity",
}

// jsonSections are the top-level keys each report type's JSON must hold.
var jsonSections = map[string][]string{
	reports.TypeSOC2:  {"audit_entries", "access_entries", "controls", "audit_log", "access_log", "control_evidence"},
	reports.TypeGDPR:  {"controller", "processing_activities", "data_categories", "legal_basis", "retention_periods", "third_party_disclosures", "attestation_records", "attestation_counts"},
	reports.TypeHIPAA: {"covered_entity", "audit_entries", "controls", "audit_trail", "evidence_events", "control_evidence"},
}

// TestReportMatrix runs every report type in every format on both stores,
// end to end: demo events and attestation records and the tenant's GDPR and
// HIPAA profiles in the real store, CreateExport over Connect, the real
// worker, WatchExport until COMPLETED, the download, the report verified
// against its signed manifest with the published keys, and its content
// checked against the manifest's counts and against the store.
func TestReportMatrix(t *testing.T) {
	t.Parallel()
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			env := servertest.Start(t, dialect, servertest.Options{})
			f := newFixture(t, env)
			ctx := context.Background()
			if _, err := env.Store.SetGDPRProfile(ctx, f.tenant, reportstest.GDPRProfile()); err != nil {
				t.Fatal(err)
			}
			if _, err := env.Store.SetHIPAAProfile(ctx, f.tenant, reportstest.HIPAAProfile()); err != nil {
				t.Fatal(err)
			}
			want := expectedCounts(t, env, f.tenant)
			for _, typ := range []string{reports.TypeSOC2, reports.TypeGDPR, reports.TypeHIPAA} {
				for _, format := range []string{reports.FormatJSON, reports.FormatCSV} {
					t.Run(typ+"/"+format, func(t *testing.T) {
						t.Parallel()
						id := f.createReport(t, typ, format)
						job := f.watch(t, id)
						if job.GetStatus() != auditv1.ExportStatus_COMPLETED || job.GetAttempt() != 1 {
							t.Fatalf("job ended %s at attempt %d: %s", job.GetStatus(), job.GetAttempt(), job.GetError())
						}
						report, err := f.download(t, id)
						if err != nil {
							t.Fatalf("download: %v", err)
						}
						m := verifiedManifest(t, env, id, report)
						if m.ReportType != typ || m.Format != format || m.TenantID != f.tenant {
							t.Fatalf("manifest is of a %s %s report of %s", m.ReportType, m.Format, m.TenantID)
						}
						for section, n := range want[typ] {
							if m.Counts[section] != n {
								t.Errorf("manifest counts %d %s, the store holds %d", m.Counts[section], section, n)
							}
						}
						if format == reports.FormatJSON {
							checkJSONSections(t, report, m)
						} else {
							checkCSVSections(t, report, m)
						}
					})
				}
			}
		})
	}
}

// expectedCounts reads from the store, by other paths than a report's,
// what each report type must count.
func expectedCounts(t *testing.T, env *servertest.Env, tenant string) map[string]map[string]int64 {
	t.Helper()
	ctx := context.Background()
	var all, access, phi int64
	err := env.Store.StreamEvents(ctx, tenant, store.EventQuery{From: periodFrom, To: periodTo}, func(e store.StoredEvent) error {
		all++
		if e.Category == "access" {
			access++
		}
		if e.PHI {
			phi++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var atts int64
	in := func(at *time.Time) bool { return at != nil && !at.Before(periodFrom) && at.Before(periodTo) }
	for tok := ""; ; {
		page, next, err := env.Store.ListAttestations(ctx, tenant, store.AttestationFilter{PageSize: 100, PageToken: tok})
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range page {
			if in(&a.CreatedAt) || in(a.RevokedAt) || in(a.SupersededAt) {
				atts++
			}
		}
		if tok = next; tok == "" {
			break
		}
	}
	if all != fixtureEvents || access == 0 || phi == 0 || atts == 0 {
		t.Fatalf("seeded %d events (%d access, %d PHI) and %d attestation records: the matrix would prove little", all, access, phi, atts)
	}
	activities := int64(len(reportstest.GDPRProfile()["processing_activities"].([]any)))
	return map[string]map[string]int64{
		reports.TypeSOC2:  {"audit_log": all, "access_log": access},
		reports.TypeGDPR:  {"attestation_records": atts, "processing_activities": activities},
		reports.TypeHIPAA: {"audit_trail": phi},
	}
}

// checkJSONSections checks that a JSON report holds its type's sections and
// that each counted section has as many entries as the manifest says.
func checkJSONSections(t *testing.T, report []byte, m reports.Manifest) {
	t.Helper()
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(report, &doc); err != nil {
		t.Fatalf("report is not JSON: %v", err)
	}
	for _, k := range jsonSections[m.ReportType] {
		if _, ok := doc[k]; !ok {
			t.Errorf("section %s missing; report has %v", k, slices.Sorted(maps.Keys(doc)))
		}
	}
	for section, want := range m.Counts {
		var got int64
		switch section {
		case "controls":
			var c map[string]json.RawMessage
			if err := json.Unmarshal(doc[section], &c); err != nil {
				t.Fatalf("controls: %v", err)
			}
			got = int64(len(c))
		case "control_evidence":
			var ce map[string]struct {
				Count     int64   `json:"count"`
				Sequences []int64 `json:"sequences"`
			}
			if err := json.Unmarshal(doc[section], &ce); err != nil {
				t.Fatalf("control_evidence: %v", err)
			}
			for id, c := range ce {
				if c.Count != int64(len(c.Sequences)) {
					t.Errorf("control %s counts %d evidence, lists %d", id, c.Count, len(c.Sequences))
				}
				got += c.Count
			}
		default:
			if _, ok := csvRecordType[section]; !ok {
				t.Errorf("manifest counts %s, which this test does not check", section)
				continue
			}
			var rows []json.RawMessage
			if err := json.Unmarshal(doc[section], &rows); err != nil {
				t.Fatalf("%s is not a list: %v", section, err)
			}
			got = int64(len(rows))
		}
		if got != want {
			t.Errorf("%s has %d entries, manifest says %d", section, got, want)
		}
	}
	var head struct {
		ReportType string `json:"report_type"`
		TenantID   string `json:"tenant_id"`
		Controller struct {
			Name string `json:"name"`
		} `json:"controller"`
		CoveredEntity struct {
			Name string `json:"name"`
		} `json:"covered_entity"`
	}
	if err := json.Unmarshal(report, &head); err != nil {
		t.Fatal(err)
	}
	if head.ReportType != m.ReportType || head.TenantID != m.TenantID {
		t.Errorf("report header says %s of %s", head.ReportType, head.TenantID)
	}
	checkProfileNames(t, m.ReportType, head.Controller.Name, head.CoveredEntity.Name)
}

// checkCSVSections checks that a CSV report parses, starts with its header,
// and holds as many rows of each record type as the manifest counts.
func checkCSVSections(t *testing.T, report []byte, m reports.Manifest) {
	t.Helper()
	body, ok := bytes.CutPrefix(report, []byte(reports.CSVBOM))
	if !ok {
		t.Errorf("CSV report does not begin with the UTF-8 byte-order mark")
	}
	r := csv.NewReader(bytes.NewReader(body))
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatalf("report is not CSV: %v", err)
	}
	if len(recs) < 2 || recs[0][0] != "record_type" {
		t.Fatalf("CSV report lacks its header:\n%.400s", report)
	}
	col := map[string]int{}
	for i, c := range recs[0] {
		col[c] = i
	}
	cell := func(rec []string, name string) string {
		if i, ok := col[name]; ok && i < len(rec) {
			return reports.DecodeCell(rec[i])
		}
		return ""
	}
	perType := map[string]int64{}
	var controller, entity string
	for _, rec := range recs[1:] {
		perType[rec[0]]++
		switch rec[0] {
		case "summary":
			if cell(rec, "report_type") != m.ReportType || cell(rec, "tenant_id") != m.TenantID {
				t.Errorf("summary row says %s of %s", cell(rec, "report_type"), cell(rec, "tenant_id"))
			}
		case "controller":
			controller = cell(rec, "name")
		case "covered_entity":
			entity = cell(rec, "name")
		}
	}
	if perType["summary"] != 1 {
		t.Errorf("%d summary rows, want 1", perType["summary"])
	}
	if int64(len(recs)-1) != m.Rows {
		t.Errorf("%d rows, manifest says %d", len(recs)-1, m.Rows)
	}
	for section, want := range m.Counts {
		rt, ok := csvRecordType[section]
		if !ok {
			t.Errorf("manifest counts %s, which this test does not check", section)
			continue
		}
		if perType[rt] != want {
			t.Errorf("%d %s rows, manifest counts %d %s", perType[rt], rt, want, section)
		}
	}
	checkProfileNames(t, m.ReportType, controller, entity)
}

// checkProfileNames checks that GDPR and HIPAA reports name the tenant's
// controller and covered entity from its profiles.
func checkProfileNames(t *testing.T, reportType, controller, entity string) {
	t.Helper()
	switch reportType {
	case reports.TypeGDPR:
		if controller != "Acme Health GmbH" {
			t.Errorf("controller %q, want the GDPR profile's", controller)
		}
	case reports.TypeHIPAA:
		if entity != "Acme Health Inc" {
			t.Errorf("covered entity %q, want the HIPAA profile's", entity)
		}
	}
}
