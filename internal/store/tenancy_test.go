package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/exportd/exportd/ent"
	"github.com/exportd/exportd/ent/issuancepolicy"
	"github.com/exportd/exportd/internal/store"
	"github.com/exportd/exportd/internal/store/storetest"
)

// TestTenantIsolation checks the data layer's scoping directly: no tenant in
// the context is refused, and a context of one tenant neither reads, nor
// creates, nor changes, nor deletes another tenant's rows.
func TestTenantIsolation(t *testing.T) {
	t.Parallel()
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			st := storetest.Open(t, dialect)
			a, err := st.CreateTenant(ctx, "A", true, false)
			if err != nil {
				t.Fatal(err)
			}
			b, err := st.CreateTenant(ctx, "B", true, false)
			if err != nil {
				t.Fatal(err)
			}
			pb, err := st.CreatePolicy(ctx, store.NewPolicy{TenantID: b.ID, Name: "b's", Kind: "BUNDLE_EXPORT", Effect: "deny", Enabled: true})
			if err != nil {
				t.Fatal(err)
			}

			var noTenant *store.ErrNoTenant
			if _, err := st.EntClient().IssuancePolicy.Query().All(ctx); !errors.As(err, &noTenant) {
				t.Fatalf("a query without a tenant: %v", err)
			}
			if _, err := st.EntClient().Tenant.Get(ctx, a.ID); !errors.As(err, &noTenant) {
				t.Fatalf("a tenant read without a tenant: %v", err)
			}
			if err := st.EntClient().IssuancePolicy.DeleteOneID(pb.ID).Exec(ctx); !errors.As(err, &noTenant) {
				t.Fatalf("a delete without a tenant: %v", err)
			}

			inA := store.WithTenant(ctx, a.ID)
			if n, err := st.EntClient().IssuancePolicy.Query().Count(inA); err != nil || n != 0 {
				t.Fatalf("tenant A sees %d of B's policies (%v)", n, err)
			}
			if _, err := st.EntClient().IssuancePolicy.Get(inA, pb.ID); !ent.IsNotFound(err) {
				t.Fatalf("tenant A reads B's policy by id: %v", err)
			}
			if _, err := st.EntClient().Tenant.Get(inA, b.ID); !ent.IsNotFound(err) {
				t.Fatalf("tenant A reads tenant B: %v", err)
			}
			if n, err := st.EntClient().IssuancePolicy.Update().Where(issuancepolicy.ID(pb.ID)).SetEnabled(false).Save(inA); err != nil || n != 0 {
				t.Fatalf("tenant A changed %d of B's policies (%v)", n, err)
			}
			if err := st.EntClient().IssuancePolicy.UpdateOneID(pb.ID).SetEnabled(false).Exec(inA); !ent.IsNotFound(err) {
				t.Fatalf("tenant A changes B's policy by id: %v", err)
			}
			if n, err := st.EntClient().IssuancePolicy.Delete().Exec(inA); err != nil || n != 0 {
				t.Fatalf("tenant A deleted %d of B's policies (%v)", n, err)
			}
			err = st.EntClient().Issuer.Create().SetID("iss").SetTenantID(b.ID).SetName("planted").Exec(inA)
			if err == nil {
				t.Fatal("tenant A created a row of tenant B")
			}
			// The store's own calls are scoped the same way: B's policy is
			// missing for A even when asked with B's id under A's context.
			if _, err := st.Policy(inA, b.ID, pb.ID); err == nil {
				t.Fatal("a call about B under A's context found B's policy")
			}
			p, err := st.Policy(ctx, b.ID, pb.ID)
			if err != nil || !p.Enabled {
				t.Fatalf("B's policy changed: %+v %v", p, err)
			}
		})
	}
}
