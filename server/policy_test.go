package server_test

import (
	"context"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	auditv1 "github.com/exportd/exportd/gen/go/audit/v1"
	"github.com/exportd/exportd/gen/go/audit/v1/auditv1connect"
	"github.com/exportd/exportd/internal/store"
	"github.com/exportd/exportd/internal/store/storetest"
	"github.com/exportd/exportd/server/servertest"
)

// TestBundleExportPolicies drives the BUNDLE_EXPORT rules through the API:
// allow-lists, deny overriding allow, trust tiers and issuer globs, disabled
// policies ignored. Every denied export reads no audit row (counted at the
// driver), creates no job and is an access event of the tenant; the dry run
// answers exactly as the real call does.
func TestBundleExportPolicies(t *testing.T) {
	t.Parallel()
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			st, reads := storetest.OpenCounting(t, dialect, "audit_events")
			env := servertest.StartWith(t, st, servertest.Options{NoWorkers: true})
			tenant := env.Tenant(t, "Acme", true)
			env.Seed(t, tenant, 50, periodFrom, periodTo)
			admin := env.Key(t, tenant, "admin", "ada@example.com")
			policies := auditv1connect.NewPolicyServiceClient(env.Client, env.URL, withKey(admin))
			keys := auditv1connect.NewApiKeyServiceClient(env.Client, env.URL, withKey(admin))

			issuer := func(name, tier string) string {
				r, err := policies.CreateIssuer(ctx, connect.NewRequest(&auditv1.CreateIssuerRequest{Name: name, TrustTier: tier}))
				if err != nil {
					t.Fatal(err)
				}
				return r.Msg.GetIssuer().GetIssuerId()
			}
			key := func(principal, issuerID string) string {
				r, err := keys.CreateApiKey(ctx, connect.NewRequest(&auditv1.CreateApiKeyRequest{Role: "auditor", Principal: principal, IssuerId: issuerID}))
				if err != nil {
					t.Fatal(err)
				}
				return r.Msg.GetSecret()
			}
			acme := key("acme@example.com", issuer("acme-labs", "TIER_1"))
			beta := key("beta@example.com", issuer("beta-corp", "TIER_3"))
			plain := key("plain@example.com", "")

			jobs := func() int {
				n, err := env.Store.CountJobs(ctx, tenant)
				if err != nil {
					t.Fatal(err)
				}
				return n
			}
			deniedEvents := func() int {
				return len(auditEvents(t, env, tenant, store.EventQuery{Action: "export.create", Outcome: "denied", Category: "access"}))
			}
			// expect creates an export with k and checks the outcome, the dry
			// run's agreement and, for a denial, its side effects.
			expect := func(step, k string, allowed bool, decider string) {
				t.Helper()
				exports := auditv1connect.NewExportServiceClient(env.Client, env.URL, withKey(k))
				check, err := auditv1connect.NewPolicyServiceClient(env.Client, env.URL, withKey(k)).
					CheckExport(ctx, connect.NewRequest(&auditv1.CheckExportRequest{}))
				if err != nil {
					t.Fatalf("%s: CheckExport: %v", step, err)
				}
				jobsBefore, eventsBefore, readsBefore := jobs(), deniedEvents(), reads.N()
				created, err := exports.CreateExport(ctx, connect.NewRequest(&auditv1.CreateExportRequest{
					ReportType: "soc2", StartDate: timestamppb.New(periodFrom), EndDate: timestamppb.New(periodTo)}))
				readsDuring := reads.N() - readsBefore
				if check.Msg.GetAllowed() != (err == nil) {
					t.Fatalf("%s: dry run says allowed=%v (%s), CreateExport says %v", step, check.Msg.GetAllowed(), check.Msg.GetReason(), err)
				}
				if !strings.Contains(check.Msg.GetReason(), decider) {
					t.Fatalf("%s: dry run reason %q does not name %q", step, check.Msg.GetReason(), decider)
				}
				if allowed {
					if err != nil {
						t.Fatalf("%s: CreateExport: %v", step, err)
					}
					j, err := env.Store.Job(ctx, tenant, created.Msg.GetJobId())
					if err != nil {
						t.Fatal(err)
					}
					if !strings.Contains(j.PolicyDecision, decider) || j.PolicyDecision != check.Msg.GetReason() {
						t.Fatalf("%s: job records %q, dry run said %q", step, j.PolicyDecision, check.Msg.GetReason())
					}
					return
				}
				assertError(t, err, connect.CodePermissionDenied, "", decider)
				if check.Msg.GetCode() != "permission_denied" || check.Msg.GetCheck() != "policy" || errorMessage(err) != check.Msg.GetReason() {
					t.Fatalf("%s: dry run %v disagrees with %v", step, check.Msg, err)
				}
				if readsDuring != 0 {
					t.Fatalf("%s: a denied export read audit_events %d times", step, readsDuring)
				}
				if n := jobs(); n != jobsBefore {
					t.Fatalf("%s: a denied export created %d jobs", step, n-jobsBefore)
				}
				if n := deniedEvents(); n != eventsBefore+1 {
					t.Fatalf("%s: %d access events for the denial, want 1", step, n-eventsBefore)
				}
			}
			create := func(p *auditv1.CreatePolicyRequest) string {
				r, err := policies.CreatePolicy(ctx, connect.NewRequest(p))
				if err != nil {
					t.Fatal(err)
				}
				return r.Msg.GetPolicy().GetPolicyId()
			}

			expect("no policy", plain, true, "no enabled BUNDLE_EXPORT policy")
			create(&auditv1.CreatePolicyRequest{Name: "mint only", Kind: "MINT", Effect: "deny"})
			create(&auditv1.CreatePolicyRequest{Name: "dormant deny", Kind: "BUNDLE_EXPORT", Effect: "deny", Disabled: true})
			expect("other kinds and disabled policies are ignored", acme, true, "no enabled BUNDLE_EXPORT policy")

			create(&auditv1.CreatePolicyRequest{Name: "trusted acme", Kind: "BUNDLE_EXPORT", Effect: "allow", IssuerMatch: "acme-*", TrustTiers: []string{"TIER_1", "TIER_2"}})
			expect("allow-list by glob and tier", acme, true, `"trusted acme"`)
			expect("allow-list miss", beta, false, `"trusted acme"`)
			expect("no issuer misses an issuer allow-list", plain, false, `"trusted acme"`)

			deny := create(&auditv1.CreatePolicyRequest{Name: "freeze tier 1", Kind: "BUNDLE_EXPORT", Effect: "deny", TrustTiers: []string{"TIER_1"}})
			expect("deny overrides allow", acme, false, `"freeze tier 1"`)

			off := false
			if _, err := policies.UpdatePolicy(ctx, connect.NewRequest(&auditv1.UpdatePolicyRequest{PolicyId: deny, Enabled: &off})); err != nil {
				t.Fatal(err)
			}
			expect("disabled deny no longer applies", acme, true, `"trusted acme"`)

			// The policy check comes before field validation.
			_, err := auditv1connect.NewExportServiceClient(env.Client, env.URL, withKey(beta)).CreateExport(ctx,
				connect.NewRequest(&auditv1.CreateExportRequest{ReportType: "pdf"}))
			assertError(t, err, connect.CodePermissionDenied, "", `"trusted acme"`)

			// Bad policies are refused with field violations and change nothing.
			_, err = policies.CreatePolicy(ctx, connect.NewRequest(&auditv1.CreatePolicyRequest{Name: "bad", Kind: "BUNDLE_EXPORT", Effect: "allow", IssuerMatch: "acme-["}))
			assertError(t, err, connect.CodeInvalidArgument, "issuer_match", "glob")
			_, err = policies.CreatePolicy(ctx, connect.NewRequest(&auditv1.CreatePolicyRequest{Name: "bad", Kind: "EXPORT", Effect: "maybe"}))
			assertError(t, err, connect.CodeInvalidArgument, "kind", "")
			_, err = policies.CreatePolicy(ctx, connect.NewRequest(&auditv1.CreatePolicyRequest{Name: "trusted acme", Kind: "BUNDLE_EXPORT", Effect: "allow"}))
			assertError(t, err, connect.CodeAlreadyExists, "", "already exists")
			list, err := policies.ListPolicies(ctx, connect.NewRequest(&auditv1.ListPoliciesRequest{}))
			if err != nil || len(list.Msg.GetPolicies()) != 4 {
				t.Fatalf("policies after bad requests: %v %v", list, err)
			}
			// The counter does see reads: deniedEvents made some.
			if reads.N() == 0 {
				t.Fatal("the read counter saw no reads of audit_events at all")
			}
		})
	}
}
