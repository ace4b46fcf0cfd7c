package reports_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"strconv"
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

// TestCatalogDecidesEveryAction: every action exportd writes is either cited
// by a control's action pattern or listed as deliberately unmapped with a
// reason, and the unmapped list names only real actions. Actions is checked
// against the constants of actions.go, so a new constant left out of the
// list fails here too.
func TestCatalogDecidesEveryAction(t *testing.T) {
	t.Parallel()
	c := reports.DefaultCatalog()
	known := map[string]bool{}
	for _, a := range reports.Actions {
		if known[a] {
			t.Errorf("action %s listed twice in reports.Actions", a)
		}
		known[a] = true
		mapped, reason := c.Decides(a)
		if !mapped && reason == "" {
			t.Errorf("action %s is written by exportd but the catalog neither maps it to a control nor lists it as unmapped", a)
		}
	}
	for _, u := range c.Unmapped {
		if !known[u.Action] {
			t.Errorf("catalog lists %s as unmapped, but exportd writes no such action", u.Action)
		}
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "actions.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	consts := 0
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, spec := range gd.Specs {
			for _, v := range spec.(*ast.ValueSpec).Values {
				lit, ok := v.(*ast.BasicLit)
				if !ok {
					continue
				}
				a, _ := strconv.Unquote(lit.Value)
				consts++
				if !known[a] {
					t.Errorf("constant %s is not in reports.Actions", a)
				}
			}
		}
	}
	if consts != len(reports.Actions) {
		t.Errorf("%d action constants, %d in reports.Actions", consts, len(reports.Actions))
	}
}

// TestCatalogOutcomes: a request refused for bad input is not a security
// event; an authorization refusal is.
func TestCatalogOutcomes(t *testing.T) {
	t.Parallel()
	var cc72 reports.Control
	for _, c := range reports.DefaultCatalog().Framework(reports.TypeSOC2) {
		if c.ID == "CC7.2" {
			cc72 = c
		}
	}
	cites := func(e reports.Event) bool {
		for _, p := range cc72.Evidence {
			if p.Match(&e) {
				return true
			}
		}
		return false
	}
	invalid := reports.Event{Category: "access", Action: reports.ActionAPIKeyCreate, Outcome: "failure", Metadata: map[string]any{"code": "invalid_argument"}}
	if cites(invalid) {
		t.Error("CC7.2 cites an apikey.create refused for invalid input")
	}
	denied := reports.Event{Category: "access", Action: reports.ActionAPIKeyCreate, Outcome: "denied", Metadata: map[string]any{"code": "permission_denied"}}
	if !cites(denied) {
		t.Error("CC7.2 does not cite an apikey.create refused for a missing permission")
	}
	if !cites(reports.Event{Category: "access", Action: reports.ActionAPIKeyAuthFailed, Outcome: "denied"}) {
		t.Error("CC7.2 does not cite a refused authentication")
	}
}
