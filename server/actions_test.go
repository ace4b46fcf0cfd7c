package server

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/exportd/exportd/internal/store"
	"github.com/exportd/exportd/reports"
)

// TestAuditActionsRegistered: every action the server can write is in
// reports.Actions, which the control catalog must decide (reports'
// TestCatalogDecidesEveryAction): the rules table's actions, and the
// actions handlers note and the edge folds, which must be named by
// reports' constants rather than written as literals. The exportd CLI's
// operator events are held to the same rule.
func TestAuditActionsRegistered(t *testing.T) {
	t.Parallel()
	for procedure, r := range rules {
		if !slices.Contains(reports.Actions, r.action) {
			t.Errorf("rule %s writes action %q, which is not in reports.Actions", procedure, r.action)
		}
	}
	// Where an action is an argument: the function and the argument's index.
	calls := map[string]int{"noteAudit": 1, "foldDenial": 3, "operatorEvent": 3}
	var files []string
	for _, dir := range []string{".", "../cmd/exportd"} {
		m, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	seen := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			var fn string
			switch x := call.Fun.(type) {
			case *ast.Ident:
				fn = x.Name
			case *ast.SelectorExpr:
				fn = x.Sel.Name
			}
			i, ok := calls[fn]
			if !ok || len(call.Args) <= i {
				return true
			}
			seen++
			switch a := call.Args[i].(type) {
			case *ast.SelectorExpr:
				if id, ok := a.X.(*ast.Ident); !ok || id.Name != "reports" || !strings.HasPrefix(a.Sel.Name, "Action") {
					t.Errorf("%s: %s names its action with %s.%s, not a reports.Action constant", fset.Position(call.Pos()), fn, a.X, a.Sel.Name)
				}
			case *ast.Ident:
				// a variable set from constants (addon.enable or .disable);
				// its assignments are checked below
			case *ast.BasicLit:
				if a.Value != `""` { // "" keeps the rule's action
					t.Errorf("%s: %s names its action with the literal %s, not a reports.Action constant", fset.Position(call.Pos()), fn, a.Value)
				}
			default:
				t.Errorf("%s: %s names its action with an expression, not a reports.Action constant", fset.Position(call.Pos()), fn)
			}
			return true
		})
		// Variables named action must be assigned constants too.
		ast.Inspect(f, func(n ast.Node) bool {
			as, ok := n.(*ast.AssignStmt)
			if !ok {
				return true
			}
			for j, lhs := range as.Lhs {
				if id, ok := lhs.(*ast.Ident); ok && id.Name == "action" && j < len(as.Rhs) {
					if lit, ok := as.Rhs[j].(*ast.BasicLit); ok {
						t.Errorf("%s: action assigned the literal %s, not a reports.Action constant", fset.Position(lit.Pos()), lit.Value)
					}
				}
			}
			return true
		})
	}
	if seen < 10 {
		t.Errorf("found %d calls writing actions; the scan is no longer looking at the right functions", seen)
	}
}

// TestFilenameUniquePerJob: two exports of the same type, tenant, period
// and format are saved under different names.
func TestFilenameUniquePerJob(t *testing.T) {
	t.Parallel()
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	to := time.Date(2026, 3, 31, 23, 59, 59, 0, time.UTC)
	a := &store.Job{ID: "job_a1", TenantID: "tenant-7f3c-long", ReportType: "soc2", Format: "csv", PeriodStart: from, PeriodEnd: to}
	b := *a
	b.ID = "job_b2"
	if got, want := filename(a), "soc2-tenant-7-job_a1-20260101-to-20260331.csv"; got != want {
		t.Errorf("filename = %q, want %q", got, want)
	}
	if filename(a) == filename(&b) {
		t.Errorf("two jobs share the file name %q", filename(a))
	}
}
