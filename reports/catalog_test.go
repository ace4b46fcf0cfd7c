package reports_test

import (
	"testing"

	"github.com/exportd/exportd/reports"
)

func TestCatalog(t *testing.T) {
	t.Parallel()
	c := reports.DefaultCatalog()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Version != reports.CatalogVersion || c.Version == "" {
		t.Errorf("version %q, CatalogVersion %q", c.Version, reports.CatalogVersion)
	}
	want := map[string][]string{
		reports.TypeSOC2:  {"CC1.1", "CC2.1", "CC6.1", "CC6.2", "CC6.3", "CC7.2"},
		reports.TypeHIPAA: {"164.308(a)(1)(ii)(D)", "164.308(a)(3)", "164.308(a)(4)", "164.308(a)(5)(ii)(C)", "164.308(a)(6)", "164.312(a)(1)", "164.312(b)", "164.312(c)(1)", "164.312(d)", "164.312(e)(1)"},
	}
	for fw, ids := range want {
		got := c.Framework(fw)
		if len(got) != len(ids) {
			t.Fatalf("%s: %d controls, want %d", fw, len(got), len(ids))
		}
		for i, ctl := range got {
			if ctl.ID != ids[i] {
				t.Errorf("%s control %d = %s, want %s", fw, i, ctl.ID, ids[i])
			}
		}
	}
}

func TestCatalogValidateRejects(t *testing.T) {
	t.Parallel()
	good := reports.Control{Framework: "soc2", ID: "X", Statement: "s", Evidence: []reports.Pattern{{Action: "a.*"}}}
	tests := []struct {
		name string
		c    reports.Catalog
	}{
		{"no version", reports.Catalog{Controls: []reports.Control{good}}},
		{"unknown framework", reports.Catalog{Version: "1", Controls: []reports.Control{{Framework: "pci", ID: "X", Statement: "s"}}}},
		{"no statement", reports.Catalog{Version: "1", Controls: []reports.Control{{Framework: "soc2", ID: "X"}}}},
		{"duplicate", reports.Catalog{Version: "1", Controls: []reports.Control{good, good}}},
		{"match-all pattern", reports.Catalog{Version: "1", Controls: []reports.Control{{Framework: "soc2", ID: "X", Statement: "s", Evidence: []reports.Pattern{{}}}}}},
		{"bad glob", reports.Catalog{Version: "1", Controls: []reports.Control{{Framework: "soc2", ID: "X", Statement: "s", Evidence: []reports.Pattern{{Action: "["}}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := tt.c.Validate(); err == nil {
				t.Error("Validate() = nil, want an error")
			}
		})
	}
}

func TestPatternMatch(t *testing.T) {
	t.Parallel()
	yes, no := true, false
	e := &reports.Event{Category: "access", Action: "apikey.auth_failed", Outcome: "failure"}
	tests := []struct {
		p    reports.Pattern
		want bool
	}{
		{reports.Pattern{Action: "apikey.*"}, true},
		{reports.Pattern{Action: "*.auth_failed"}, true},
		{reports.Pattern{Action: "auth.*"}, false},
		{reports.Pattern{Category: "access", Outcome: "failure"}, true},
		{reports.Pattern{Category: "data"}, false},
		{reports.Pattern{Outcome: "denied"}, false},
		{reports.Pattern{PHI: &no}, true},
		{reports.Pattern{PHI: &yes}, false},
	}
	for _, tt := range tests {
		if got := tt.p.Match(e); got != tt.want {
			t.Errorf("%+v.Match = %v, want %v", tt.p, got, tt.want)
		}
	}
}
