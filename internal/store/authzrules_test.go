package store_test

import (
	"context"
	"testing"

	"github.com/casbin/casbin/v2/model"

	"github.com/exportd/exportd/authz"
	"github.com/exportd/exportd/internal/store/storetest"
)

// TestCustomRolesPersist defines a role through one enforcer and checks that
// a second one over the same database (another process) sees it after a
// reload, that it stays in its tenant, and that deleting it reaches both.
func TestCustomRolesPersist(t *testing.T) {
	t.Parallel()
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			st := storetest.Open(t, dialect)
			a, err := authz.Open(ctx, st)
			if err != nil {
				t.Fatal(err)
			}
			b, err := authz.Open(ctx, st)
			if err != nil {
				t.Fatal(err)
			}
			if b.Allowed("t1", "exporter", authz.PermExport) {
				t.Fatal("unknown role allowed")
			}
			if err := a.CreateRole(ctx, "t1", "exporter", []string{authz.PermExport, authz.PermRead}); err != nil {
				t.Fatal(err)
			}
			if !a.Allowed("t1", "exporter", authz.PermExport) || a.Allowed("t1", "exporter", authz.PermWrite) {
				t.Fatal("role not applied in its own process")
			}
			if a.Allowed("t2", "exporter", authz.PermExport) {
				t.Fatal("a role of t1 applies in t2")
			}
			// b cached a denial above: the reload must drop it.
			if ok, err := b.Reload(ctx); err != nil || !ok {
				t.Fatalf("reload: %v %v", ok, err)
			}
			if !b.Allowed("t1", "exporter", authz.PermExport) {
				t.Fatal("the other process does not see the role")
			}
			if got := b.Roles("t1"); len(got) != 5 || got[4].Name != "exporter" {
				t.Fatalf("roles %+v", got)
			}
			// Redefining replaces the permissions.
			if err := a.CreateRole(ctx, "t1", "exporter", []string{authz.PermRead}); err != nil {
				t.Fatal(err)
			}
			if _, err := b.Reload(ctx); err != nil {
				t.Fatal(err)
			}
			if b.Allowed("t1", "exporter", authz.PermExport) || !b.Allowed("t1", "exporter", authz.PermRead) {
				t.Fatal("redefined role not seen")
			}
			if ok, err := a.DeleteRole(ctx, "t1", "exporter"); err != nil || !ok {
				t.Fatalf("delete: %v %v", ok, err)
			}
			if _, err := b.Reload(ctx); err != nil {
				t.Fatal(err)
			}
			if b.Allowed("t1", "exporter", authz.PermRead) || b.HasRole("t1", "exporter") {
				t.Fatal("deleted role still applies")
			}
			// Filtered loading reads one tenant's rules only.
			if err := a.CreateRole(ctx, "t2", "reader", []string{authz.PermRead}); err != nil {
				t.Fatal(err)
			}
			if err := a.CreateRole(ctx, "t3", "reader", []string{authz.PermRead}); err != nil {
				t.Fatal(err)
			}
			m, err := model.NewModelFromString(authz.ModelText())
			if err != nil {
				t.Fatal(err)
			}
			ad := authz.NewAdapter(st)
			if err := ad.LoadFilteredPolicy(m, authz.Filter{Tenants: []string{"t2"}}); err != nil {
				t.Fatal(err)
			}
			rules, _ := m.GetPolicy("p", "p")
			var custom int
			for _, r := range rules {
				if r[1] != "*" {
					custom++
					if r[1] != "t2" {
						t.Fatalf("filtered load read %v", r)
					}
				}
			}
			if custom != 1 || !ad.IsFiltered() {
				t.Fatalf("filtered load read %d custom rules", custom)
			}
		})
	}
}
