package reports_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/exportd/exportd/reports"
	"github.com/exportd/exportd/reports/reportstest"
)

func TestParseProfiles(t *testing.T) {
	t.Parallel()
	g, err := reports.ParseGDPRProfile(reportstest.GDPRProfile())
	if err != nil {
		t.Fatalf("ParseGDPRProfile(fixture): %v", err)
	}
	if g.Controller.DPO.Email != "dpo@acme.example" || len(g.ProcessingActivities) != 2 ||
		g.ProcessingActivities[0].InternationalTransfers[0].Country != "US" {
		t.Errorf("parsed %+v", g)
	}
	h, err := reports.ParseHIPAAProfile(reportstest.HIPAAProfile())
	if err != nil {
		t.Fatalf("ParseHIPAAProfile(fixture): %v", err)
	}
	if h.Type != reports.EntityCovered || len(h.Identifiers) != 2 {
		t.Errorf("parsed %+v", h)
	}
	bad := []struct {
		name string
		fn   func() error
	}{
		{"gdpr empty", func() error { _, err := reports.ParseGDPRProfile(nil); return err }},
		{"gdpr unknown field", func() error {
			_, err := reports.ParseGDPRProfile(map[string]any{"controller": map[string]any{"name": "x"}, "ctrl": 1})
			return err
		}},
		{"gdpr wrong type", func() error {
			_, err := reports.ParseGDPRProfile(map[string]any{"controller": "x"})
			return err
		}},
		{"gdpr activity without basis", func() error {
			_, err := reports.ParseGDPRProfile(map[string]any{"controller": map[string]any{"name": "x"},
				"processing_activities": []any{map[string]any{"purpose": "p"}}})
			return err
		}},
		{"hipaa identifier without a value", func() error {
			_, err := reports.ParseHIPAAProfile(map[string]any{"name": "x", "type": "covered_entity", "identifiers": []any{map[string]any{"type": "NPI"}}})
			return err
		}},
		{"hipaa bad type", func() error {
			_, err := reports.ParseHIPAAProfile(map[string]any{"name": "x", "type": "hospital"})
			return err
		}},
	}
	for _, tt := range bad {
		if err := tt.fn(); err == nil {
			t.Errorf("%s: no error", tt.name)
		}
	}
}

// TestBrokenProfilesStillRender: a stored profile partly of the wrong shape
// must not stop a report that has what it requires (the controller's or the
// entity's name); the sections the broken parts feed come out empty.
func TestBrokenProfilesStillRender(t *testing.T) {
	t.Parallel()
	for _, typ := range []string{reports.TypeGDPR, reports.TypeHIPAA} {
		for _, format := range allFormats {
			req := reportstest.Request(typ, format)
			req.GDPR = map[string]any{"controller": map[string]any{"name": "Acme", "dpo": 42}, "processing_activities": "none"}
			req.HIPAA = map[string]any{"name": "Acme", "type": reports.EntityCovered, "identifiers": "NPI", "privacy_officer": []any{1}}
			var buf bytes.Buffer
			if _, err := reports.Generate(context.Background(), &buf, req, reportstest.Dataset(), nil); err != nil {
				t.Errorf("%s/%s: %v", typ, format, err)
			}
			if format == reports.FormatJSON && !json.Valid(buf.Bytes()) {
				t.Errorf("%s: invalid JSON", typ)
			}
		}
	}
}

func TestValidatorRejects(t *testing.T) {
	t.Parallel()
	var schema map[string]any
	if err := json.Unmarshal(reports.JSONSchema(reports.TypeSOC2), &schema); err != nil {
		t.Fatal(err)
	}
	out, _ := generate(t, reportstest.Request(reports.TypeSOC2, reports.FormatJSON), reportstest.Dataset())
	for name, mutate := range map[string]func(map[string]any){
		"missing key":   func(d map[string]any) { delete(d, "controls") },
		"extra key":     func(d map[string]any) { d["surprise"] = 1 },
		"wrong type":    func(d map[string]any) { d["audit_entries"] = "22" },
		"bad timestamp": func(d map[string]any) { d["generated_at"] = "2026-04-01 12:00" },
		"bad event":     func(d map[string]any) { d["audit_log"].([]any)[0].(map[string]any)["category"] = "other" },
	} {
		var doc map[string]any
		if err := json.Unmarshal(out, &doc); err != nil {
			t.Fatal(err)
		}
		mutate(doc)
		if errs := validate(schema, schema, any(doc), "$"); len(errs) == 0 {
			t.Errorf("%s: validator accepted it", name)
		}
	}
	if reports.JSONSchema("pci") != nil {
		t.Error("JSONSchema(pci) != nil")
	}
	if !bytes.Contains(reports.CSVColumns(), []byte("record_type")) {
		t.Error("CSVColumns lacks record_type")
	}
}

// TestGenerateNeedsProfile: a GDPR report without a controller and a HIPAA
// report without the entity's name and type are refused, naming what is
// missing, rather than produced with empty fields.
func TestGenerateNeedsProfile(t *testing.T) {
	t.Parallel()
	for typ, want := range map[string]string{
		reports.TypeGDPR:  "a GDPR report needs the tenant's GDPR profile with controller.name set",
		reports.TypeHIPAA: "a HIPAA report needs the tenant's HIPAA profile with name and type (covered_entity or business_associate) set",
	} {
		req := reportstest.Request(typ, reports.FormatJSON)
		req.GDPR, req.HIPAA = map[string]any{"controller": map[string]any{"name": " "}}, map[string]any{"name": "Acme"}
		if typ == reports.TypeHIPAA {
			req.HIPAA = nil
		}
		_, err := reports.Generate(context.Background(), io.Discard, req, reportstest.Dataset(), nil)
		var pe *reports.ProfileError
		if !errors.As(err, &pe) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s without a profile: %v, want %q", typ, err, want)
		}
	}
	if err := reports.RequireProfile(reports.TypeSOC2, nil, nil); err != nil {
		t.Errorf("SOC 2 needs no profile: %v", err)
	}
	if err := reports.RequireProfile(reports.TypeHIPAA, nil, map[string]any{"name": "Acme"}); err == nil || !strings.Contains(err.Error(), "with type") {
		t.Errorf("HIPAA profile without a type: %v", err)
	}
}
