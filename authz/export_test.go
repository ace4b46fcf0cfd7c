package authz_test

import (
	"strings"
	"testing"

	"github.com/exportd/exportd/authz"
)

func TestDecideExport(t *testing.T) {
	t.Parallel()
	acme := authz.KeyIssuer{ID: "iss-1", Name: "acme-labs", Tier: "TIER_1"}
	beta := authz.KeyIssuer{ID: "iss-2", Name: "beta-corp", Tier: "TIER_3"}
	none := authz.KeyIssuer{}
	pol := func(name, effect, match string, enabled bool, tiers ...string) authz.IssuancePolicy {
		return authz.IssuancePolicy{ID: "pol_" + name, Name: name, Kind: authz.KindBundleExport, Effect: effect,
			IssuerMatch: match, TrustTiers: tiers, Enabled: enabled}
	}
	cases := []struct {
		name     string
		policies []authz.IssuancePolicy
		iss      authz.KeyIssuer
		allowed  bool
		decider  string // policy name in the decision, "" for none
	}{
		{"no policy", nil, acme, true, ""},
		{"only disabled policies", []authz.IssuancePolicy{pol("d", "deny", "*", false)}, acme, true, ""},
		{"other kinds are not enforced", []authz.IssuancePolicy{{ID: "pol_m", Name: "m", Kind: "MINT", Effect: "deny", Enabled: true}}, acme, true, ""},
		{"allow-list hit by name", []authz.IssuancePolicy{pol("a", "allow", "acme-labs", true)}, acme, true, "a"},
		{"allow-list hit by id", []authz.IssuancePolicy{pol("a", "allow", "iss-1", true)}, acme, true, "a"},
		{"allow-list miss", []authz.IssuancePolicy{pol("a", "allow", "acme-labs", true)}, beta, false, `"a"`},
		{"allow-list miss without issuer", []authz.IssuancePolicy{pol("a", "allow", "acme-*", true)}, none, false, `"a"`},
		{"allow-all matches a key without issuer", []authz.IssuancePolicy{pol("a", "allow", "", true)}, none, true, "a"},
		{"glob", []authz.IssuancePolicy{pol("g", "allow", "acme-*", true)}, acme, true, "g"},
		{"glob miss", []authz.IssuancePolicy{pol("g", "allow", "acme-*", true)}, beta, false, `"g"`},
		{"tier allow", []authz.IssuancePolicy{pol("t", "allow", "*", true, "TIER_1", "TIER_2")}, acme, true, "t"},
		{"tier miss", []authz.IssuancePolicy{pol("t", "allow", "*", true, "TIER_1", "TIER_2")}, beta, false, `"t"`},
		{"tier needs an issuer", []authz.IssuancePolicy{pol("t", "allow", "*", true, "TIER_1")}, none, false, `"t"`},
		{"deny overrides allow", []authz.IssuancePolicy{pol("a", "allow", "*", true), pol("z", "deny", "acme-*", true)}, acme, false, "z"},
		{"deny elsewhere leaves allow", []authz.IssuancePolicy{pol("a", "allow", "*", true), pol("z", "deny", "acme-*", true)}, beta, true, "a"},
		{"deny by tier", []authz.IssuancePolicy{pol("low", "deny", "", true, "TIER_3")}, beta, false, "low"},
		{"only denies, none matching", []authz.IssuancePolicy{pol("low", "deny", "", true, "TIER_3")}, acme, true, ""},
		{"disabled deny ignored", []authz.IssuancePolicy{pol("a", "allow", "*", true), pol("z", "deny", "*", false)}, acme, true, "a"},
		{"disabled allow ignored", []authz.IssuancePolicy{pol("a", "allow", "beta-*", true), pol("b", "allow", "acme-*", false)}, acme, false, `"a"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := authz.DecideExport(tc.policies, tc.iss)
			if d.Allowed != tc.allowed {
				t.Fatalf("allowed = %v, want %v (%s)", d.Allowed, tc.allowed, d.Reason)
			}
			if tc.decider != "" && d.PolicyName != tc.decider && !strings.Contains(d.Reason, tc.decider) {
				t.Fatalf("decision %+v does not name %s", d, tc.decider)
			}
			if !d.Allowed && !strings.Contains(d.Reason, "BUNDLE_EXPORT") {
				t.Fatalf("denial %q does not say which policy kind", d.Reason)
			}
		})
	}
}

// BenchmarkEnforce measures a cached permission decision.
func BenchmarkEnforce(b *testing.B) {
	en, err := authz.NewEnforcer()
	if err != nil {
		b.Fatal(err)
	}
	en.Allowed("tenant-1", authz.RoleAuditor, authz.PermExport) // fills the cache
	b.ReportAllocs()
	for b.Loop() {
		if !en.Allowed("tenant-1", authz.RoleAuditor, authz.PermExport) {
			b.Fatal("auditor may export")
		}
	}
}
