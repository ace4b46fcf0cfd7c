package reports_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/exportd/exportd/reports"
	"github.com/exportd/exportd/reports/reportstest"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

var (
	allTypes   = []string{reports.TypeSOC2, reports.TypeGDPR, reports.TypeHIPAA}
	allFormats = []string{reports.FormatJSON, reports.FormatCSV}
)

func generate(t *testing.T, req reports.Request, src reports.Source) ([]byte, reports.Summary) {
	t.Helper()
	var buf bytes.Buffer
	var last int64 = -1
	sum, err := reports.Generate(context.Background(), &buf, req, src, func(rows int64) { last = rows })
	if err != nil {
		t.Fatalf("Generate(%s, %s): %v", req.ReportType, req.Format, err)
	}
	if last != sum.Rows {
		t.Errorf("last progress = %d, want the final row count %d", last, sum.Rows)
	}
	return buf.Bytes(), sum
}

func TestGenerateGolden(t *testing.T) {
	t.Parallel()
	for _, typ := range allTypes {
		for _, format := range allFormats {
			t.Run(typ+"/"+format, func(t *testing.T) {
				t.Parallel()
				got, _ := generate(t, reportstest.Request(typ, format), reportstest.Dataset())
				path := filepath.Join("testdata", typ+"."+format)
				if *update {
					if err := os.WriteFile(path, got, 0o644); err != nil {
						t.Fatal(err)
					}
					return
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("read golden (run go test -update to create it): %v", err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%s differs from the golden file; run go test ./reports -update and review the diff\n--- got ---\n%s", path, got)
				}
			})
		}
	}
}

// TestJSONMatchesSchema checks every JSON report, over the fixed dataset and
// over an empty period, against its published schema.
func TestJSONMatchesSchema(t *testing.T) {
	t.Parallel()
	empty := reportstest.NewSource(nil, nil)
	for _, typ := range allTypes {
		for name, src := range map[string]reports.Source{"dataset": reportstest.Dataset(), "empty": empty} {
			t.Run(typ+"/"+name, func(t *testing.T) {
				t.Parallel()
				out, _ := generate(t, reportstest.Request(typ, reports.FormatJSON), src)
				if !json.Valid(out) {
					t.Fatalf("not valid JSON:\n%s", out)
				}
				var doc any
				if err := json.Unmarshal(out, &doc); err != nil {
					t.Fatal(err)
				}
				var schema map[string]any
				if err := json.Unmarshal(reports.JSONSchema(typ), &schema); err != nil {
					t.Fatalf("schema: %v", err)
				}
				if errs := validate(schema, schema, doc, "$"); len(errs) > 0 {
					t.Errorf("report does not match %s schema:\n%s", typ, strings.Join(errs, "\n"))
				}
			})
		}
	}
}

func TestJSONKeyOrder(t *testing.T) {
	t.Parallel()
	head := []string{"report_type", "tenant_id", "generated_at", "period_start", "period_end", "period_applied", "as_of_sequence"}
	tests := []struct {
		typ  string
		keys []string
	}{
		{reports.TypeSOC2, []string{"audit_entries", "access_entries", "controls", "audit_log", "access_log", "control_evidence"}},
		{reports.TypeGDPR, []string{"controller", "processing_activities", "data_categories", "legal_basis", "retention_periods", "third_party_disclosures", "attestation_records", "attestation_counts"}},
		{reports.TypeHIPAA, []string{"covered_entity", "audit_entries", "controls", "audit_trail", "evidence_events", "control_evidence"}},
	}
	for _, tt := range tests {
		t.Run(tt.typ, func(t *testing.T) {
			t.Parallel()
			out, _ := generate(t, reportstest.Request(tt.typ, reports.FormatJSON), reportstest.Dataset())
			dec := json.NewDecoder(bytes.NewReader(out))
			if tok, _ := dec.Token(); tok != json.Delim('{') {
				t.Fatalf("first token %v, want {", tok)
			}
			var keys []string
			for dec.More() {
				tok, err := dec.Token()
				if err != nil {
					t.Fatal(err)
				}
				keys = append(keys, tok.(string))
				var skip json.RawMessage
				if err := dec.Decode(&skip); err != nil {
					t.Fatal(err)
				}
			}
			want := append(append([]string(nil), head...), tt.keys...)
			if strings.Join(keys, ",") != strings.Join(want, ",") {
				t.Errorf("keys\n got %v\nwant %v", keys, want)
			}
		})
	}
}

// soc2Doc is the part of a SOC 2 report the content tests look at.
type soc2Doc struct {
	PeriodStart   string            `json:"period_start"`
	PeriodEnd     string            `json:"period_end"`
	AuditEntries  int64             `json:"audit_entries"`
	AccessEntries int64             `json:"access_entries"`
	Controls      map[string]string `json:"controls"`
	AuditLog      []struct {
		Sequence   int64  `json:"sequence"`
		OccurredAt string `json:"occurred_at"`
		Category   string `json:"category"`
	} `json:"audit_log"`
	AccessLog []struct {
		Sequence int64 `json:"sequence"`
	} `json:"access_log"`
	ControlEvidence map[string]struct {
		Statement   string  `json:"statement"`
		LogEvidence string  `json:"log_evidence"`
		Count       int64   `json:"count"`
		First       *string `json:"first_occurrence"`
		Last        *string `json:"last_occurrence"`
		Sequences   []int64 `json:"sequences"`
	} `json:"control_evidence"`
}

func TestSOC2Content(t *testing.T) {
	t.Parallel()
	out, sum := generate(t, reportstest.Request(reports.TypeSOC2, reports.FormatJSON), reportstest.Dataset())
	var doc soc2Doc
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.PeriodStart != "2026-01-01T00:00:00Z" || doc.PeriodEnd != "2026-03-31T23:59:59Z" {
		t.Errorf("period echoed as %s … %s, want the request as written", doc.PeriodStart, doc.PeriodEnd)
	}
	// Sequences 2…22 and 24 are in the period and under the watermark.
	var seqs []int64
	for _, e := range doc.AuditLog {
		seqs = append(seqs, e.Sequence)
	}
	wantSeqs := []int64{2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 24, 22}
	if !slices.Equal(seqs, wantSeqs) {
		t.Errorf("audit_log sequences %v, want %v (ordered by occurred_at, sequence)", seqs, wantSeqs)
	}
	if doc.AuditEntries != int64(len(doc.AuditLog)) || doc.AccessEntries != int64(len(doc.AccessLog)) {
		t.Errorf("counts %d/%d disagree with logs %d/%d", doc.AuditEntries, doc.AccessEntries, len(doc.AuditLog), len(doc.AccessLog))
	}
	if doc.AccessEntries != 8 {
		t.Errorf("access_entries = %d, want 8", doc.AccessEntries)
	}
	for id, stmt := range map[string]string{
		"CC1.1": "Access controls enforced via RBAC",
		"CC2.1": "Audit logging enabled for all operations",
		"CC6.1": "Logical access restrictions documented",
		"CC6.2": "Access reviews performed",
	} {
		if doc.Controls[id] != stmt {
			t.Errorf("controls[%s] = %q, want %q", id, doc.Controls[id], stmt)
		}
	}
	for id, ce := range doc.ControlEvidence {
		if ce.LogEvidence == reports.LogNone {
			if id != "CC1.1" || ce.Count != 0 || len(ce.Sequences) != 0 {
				t.Errorf("control %s says the log cannot evidence it: %+v", id, ce)
			}
			continue
		}
		if ce.Count == 0 || int64(len(ce.Sequences)) != ce.Count || ce.First == nil || ce.Last == nil {
			t.Errorf("control %s has no usable evidence: %+v", id, ce)
		}
	}
	// Security events: the failed login, the denials (PHI or not) and the
	// failed key; no event refused for bad input.
	if got := doc.ControlEvidence["CC7.2"].Sequences; !slices.Equal(got, []int64{3, 12, 13, 21}) {
		t.Errorf("CC7.2 evidence %v, want [3 12 13 21]", got)
	}
	if sum.FirstSequence != 2 || sum.LastSequence != 24 {
		t.Errorf("summary sequences %d…%d, want 2…24", sum.FirstSequence, sum.LastSequence)
	}
	if sum.Counts["audit_log"] != 22 || sum.Counts["access_log"] != 8 {
		t.Errorf("summary counts %v", sum.Counts)
	}
}

func TestHIPAAEvidenceCoversAccessEvents(t *testing.T) {
	t.Parallel()
	out, _ := generate(t, reportstest.Request(reports.TypeHIPAA, reports.FormatJSON), reportstest.Dataset())
	var doc struct {
		AuditEntries int64 `json:"audit_entries"`
		AuditTrail   []struct {
			PHI bool `json:"phi"`
		} `json:"audit_trail"`
		ControlEvidence map[string]struct {
			Count     int64   `json:"count"`
			Sequences []int64 `json:"sequences"`
			Transport *struct {
				TLS        bool   `json:"tls"`
				MinVersion string `json:"min_version"`
			} `json:"transport"`
		} `json:"control_evidence"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.AuditEntries != 4 || len(doc.AuditTrail) != 4 {
		t.Errorf("audit_entries %d, trail %d, want 4 PHI events", doc.AuditEntries, len(doc.AuditTrail))
	}
	for _, e := range doc.AuditTrail {
		if !e.PHI {
			t.Errorf("audit_trail holds a non-PHI event")
		}
	}
	if len(doc.ControlEvidence) != 10 {
		t.Errorf("%d HIPAA controls, want 10", len(doc.ControlEvidence))
	}
	for id, ce := range doc.ControlEvidence {
		if id == "164.312(e)(1)" {
			// Transmission security states the transport, counts nothing.
			if ce.Count != 0 || ce.Transport == nil || !ce.Transport.TLS || ce.Transport.MinVersion != "TLS 1.2" {
				t.Errorf("transmission security %+v, want the request's transport and no events", ce)
			}
			continue
		}
		if ce.Count == 0 {
			t.Errorf("control %s has no evidence", id)
		}
	}
	// Integrity counts changes to PHI records only: the update and the write.
	if got := doc.ControlEvidence["164.312(c)(1)"].Sequences; !slices.Equal(got, []int64{7, 9}) {
		t.Errorf("integrity evidence %v, want [7 9]", got)
	}
	// Log-in monitoring merges PHI-pass and access-pass evidence in time order.
	if got := doc.ControlEvidence["164.308(a)(5)(ii)(C)"].Sequences; !slices.Equal(got, []int64{2, 3, 13}) {
		t.Errorf("log-in monitoring evidence %v, want [2 3 13]", got)
	}
	if got := doc.ControlEvidence["164.312(a)(1)"].Sequences; !slices.Equal(got, []int64{5, 6, 12, 14, 21}) {
		t.Errorf("access control evidence %v, want [5 6 12 14 21]", got)
	}
}

func TestGDPRContent(t *testing.T) {
	t.Parallel()
	out, sum := generate(t, reportstest.Request(reports.TypeGDPR, reports.FormatJSON), reportstest.Dataset())
	var doc struct {
		Controller struct {
			Name string `json:"name"`
			DPO  struct {
				Email string `json:"email"`
			} `json:"dpo"`
		} `json:"controller"`
		DataCategories     []string `json:"data_categories"`
		LegalBasis         []string `json:"legal_basis"`
		AttestationRecords []struct {
			ID       string   `json:"id"`
			InPeriod []string `json:"in_period"`
		} `json:"attestation_records"`
		AttestationCounts struct {
			Created, Revoked, Superseded, Total int64
			ByStatus                            map[string]int64 `json:"by_status"`
		} `json:"attestation_counts"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Controller.Name != "Acme Health GmbH" || doc.Controller.DPO.Email != "dpo@acme.example" {
		t.Errorf("controller %+v", doc.Controller)
	}
	if got := strings.Join(doc.DataCategories, ","); got != "bank details,contact,employment,health,identity" {
		t.Errorf("data_categories %s", got)
	}
	if got := strings.Join(doc.LegalBasis, ","); got != "consent,contract,legal_obligation" {
		t.Errorf("legal_basis %s", got)
	}
	if len(doc.AttestationRecords) != 4 {
		t.Fatalf("%d attestation records, want 4", len(doc.AttestationRecords))
	}
	c := doc.AttestationCounts
	if c.Created != 3 || c.Revoked != 1 || c.Superseded != 1 || c.Total != 4 ||
		c.ByStatus["ACTIVE"] != 2 || c.ByStatus["REVOKED"] != 1 || c.ByStatus["SUPERSEDED"] != 1 {
		t.Errorf("attestation_counts %+v", c)
	}
	if sum.Counts["attestation_records"] != 4 {
		t.Errorf("summary counts %v", sum.Counts)
	}
}

// TestEmptyPeriod: no events and no attestations still gives a complete
// report with zero counts, in both formats.
func TestEmptyPeriod(t *testing.T) {
	t.Parallel()
	for _, typ := range allTypes {
		for _, format := range allFormats {
			t.Run(typ+"/"+format, func(t *testing.T) {
				t.Parallel()
				// Only what the profiles require: sections from the log and the
				// profiles' lists are empty.
				req := reportstest.Request(typ, format)
				req.GDPR = map[string]any{"controller": map[string]any{"name": "Acme"}}
				req.HIPAA = map[string]any{"name": "Acme", "type": reports.EntityCovered}
				out, sum := generate(t, req, reportstest.NewSource(nil, nil))
				if sum.FirstSequence != 0 || sum.LastSequence != 0 {
					t.Errorf("sequences %d…%d, want 0", sum.FirstSequence, sum.LastSequence)
				}
				for k, n := range sum.Counts {
					if k != "controls" && n != 0 {
						t.Errorf("count %s = %d, want 0", k, n)
					}
				}
				if format == reports.FormatJSON {
					var doc map[string]any
					if err := json.Unmarshal(out, &doc); err != nil {
						t.Fatalf("invalid JSON: %v\n%s", err, out)
					}
					if n, ok := doc["audit_entries"]; ok && n != 0.0 {
						t.Errorf("audit_entries = %v", n)
					}
					return
				}
				if _, err := csv.NewReader(bytes.NewReader(out)).ReadAll(); err != nil {
					t.Fatalf("invalid CSV: %v", err)
				}
			})
		}
	}
}

// TestRowsAgreeAcrossFormats: Summary.Rows counts the same records whichever
// format is written, so a manifest's counts do not depend on the format.
func TestRowsAgreeAcrossFormats(t *testing.T) {
	t.Parallel()
	for _, typ := range allTypes {
		t.Run(typ, func(t *testing.T) {
			t.Parallel()
			_, j := generate(t, reportstest.Request(typ, reports.FormatJSON), reportstest.Dataset())
			out, c := generate(t, reportstest.Request(typ, reports.FormatCSV), reportstest.Dataset())
			recs, err := csv.NewReader(bytes.NewReader(out)).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			if c.Rows != int64(len(recs)-1) {
				t.Errorf("CSV Rows = %d, file has %d data rows", c.Rows, len(recs)-1)
			}
			if j.Rows != c.Rows {
				t.Errorf("JSON Rows = %d, CSV Rows = %d", j.Rows, c.Rows)
			}
		})
	}
}

func TestGenerateErrors(t *testing.T) {
	t.Parallel()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	failing := errors.New("database gone")
	tests := []struct {
		name    string
		ctx     context.Context
		req     reports.Request
		src     reports.Source
		wantErr error
	}{
		{"unknown type", context.Background(), reportstest.Request("pci", "json"), reportstest.Dataset(), reports.ErrUnsupported},
		{"unknown format", context.Background(), reportstest.Request("soc2", "xlsx"), reportstest.Dataset(), reports.ErrUnsupported},
		{"cancelled", cancelled, reportstest.Request("soc2", "csv"), reportstest.Dataset(), context.Canceled},
		{"source fails", context.Background(), reportstest.Request("hipaa", "json"), failingSource{failing}, failing},
		{"gdpr source fails", context.Background(), reportstest.Request("gdpr", "csv"), failingSource{failing}, failing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := reports.Generate(tt.ctx, new(bytes.Buffer), tt.req, tt.src, nil)
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

// TestCancelMidStream cancels after the first progress report.
func TestCancelMidStream(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	src := reportstest.Synthetic{N: 10_000, Start: reportstest.PeriodStart}
	req := reportstest.Request(reports.TypeSOC2, reports.FormatJSON)
	req.Watermark = src.N
	_, err := reports.Generate(ctx, new(bytes.Buffer), req, src, func(int64) { cancel() })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

// TestCountMismatch: a log that changes between counting and reading must
// fail generation rather than publish a header that contradicts the body.
func TestCountMismatch(t *testing.T) {
	t.Parallel()
	src := undercount{reportstest.Dataset()}
	_, err := reports.Generate(context.Background(), new(bytes.Buffer), reportstest.Request(reports.TypeSOC2, reports.FormatCSV), src, nil)
	if err == nil || !strings.Contains(err.Error(), "changed during generation") {
		t.Errorf("err = %v, want a changed-log error", err)
	}
}

type undercount struct{ *reportstest.Source }

func (u undercount) CountEvents(ctx context.Context, f reports.EventFilter) (int64, error) {
	n, err := u.Source.CountEvents(ctx, f)
	return n - 1, err
}

type failingSource struct{ err error }

func (f failingSource) Events(context.Context, reports.EventFilter, func(*reports.Event) error) error {
	return f.err
}

func (f failingSource) CountEvents(context.Context, reports.EventFilter) (int64, error) {
	return 0, nil
}

func (f failingSource) Attestations(context.Context, time.Time, time.Time, func(*reports.Attestation) error) error {
	return f.err
}

// countingSource is a Source that also counts by category, as the store does.
type countingSource struct {
	*reportstest.Source
	calls int
}

func (c *countingSource) CountByCategory(ctx context.Context, f reports.EventFilter) (map[string]int64, error) {
	c.calls++
	m := map[string]int64{}
	for _, cat := range []string{"api", "access", "data"} {
		f.Category = cat
		n, err := c.CountEvents(ctx, f)
		if err != nil {
			return nil, err
		}
		m[cat] = n
	}
	return m, nil
}

// TestCountByCategorySameReport: a Source that counts by category yields the
// very same SOC 2 report, and is asked once.
func TestCountByCategorySameReport(t *testing.T) {
	t.Parallel()
	for _, format := range []string{reports.FormatJSON, reports.FormatCSV} {
		req := reportstest.Request(reports.TypeSOC2, format)
		want, _ := generate(t, req, reportstest.Dataset())
		src := &countingSource{Source: reportstest.Dataset()}
		got, _ := generate(t, req, src)
		if !bytes.Equal(got, want) {
			t.Errorf("%s: report differs when the source counts by category", format)
		}
		if src.calls != 1 {
			t.Errorf("%s: CountByCategory called %d times, want 1", format, src.calls)
		}
	}
}

// rawSource is a Source that hands events out with their metadata already
// encoded (RawMetadata), as the database store does.
type rawSource struct{ reports.Source }

func (s rawSource) Events(ctx context.Context, f reports.EventFilter, fn func(*reports.Event) error) error {
	return s.Source.Events(ctx, f, func(e *reports.Event) error {
		c := *e
		c.RawMetadata = json.RawMessage("{}")
		if len(e.Metadata) > 0 {
			b, err := json.Marshal(e.Metadata)
			if err != nil {
				return err
			}
			c.RawMetadata = b
		}
		c.Metadata = nil
		return fn(&c)
	})
}

// TestRawMetadataGolden checks that events carrying encoded metadata give
// the golden reports byte for byte.
func TestRawMetadataGolden(t *testing.T) {
	t.Parallel()
	for _, typ := range allTypes {
		for _, format := range allFormats {
			t.Run(typ+"/"+format, func(t *testing.T) {
				t.Parallel()
				got, _ := generate(t, reportstest.Request(typ, format), rawSource{reportstest.Dataset()})
				want, err := os.ReadFile(filepath.Join("testdata", typ+"."+format))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%s/%s with raw metadata differs from the golden file\n--- got ---\n%s", typ, format, got)
				}
			})
		}
	}
}
