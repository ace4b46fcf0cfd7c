package main_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/exportd/exportd/internal/store"
	"github.com/exportd/exportd/internal/store/storetest"
	"github.com/exportd/exportd/server/servertest"
)

// TestPolicyCheck dry-runs CreateExport for keys that pass and for keys each
// check refuses, and agrees with export create once a deny policy exists.
func TestPolicyCheck(t *testing.T) {
	t.Parallel()
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			env := servertest.Start(t, dialect, servertest.Options{NoWorkers: true})
			acme := env.Tenant(t, "Acme", true)
			auditor := newCLI(t, env, env.Key(t, acme, "auditor", "audrey@example.com"))
			viewer := newCLI(t, env, env.Key(t, acme, "viewer", "vic@example.com"))
			noPack := newCLI(t, env, env.Key(t, env.Tenant(t, "NoPack", false), "admin", "ann@example.com"))

			for _, protocol := range []string{"connect", "grpc"} {
				stdout, _ := auditor.ok("--protocol", protocol, "policy", "check")
				if !strings.Contains(stdout, "export:") || !strings.Contains(stdout, "allowed") || !strings.Contains(stdout, "decided_by:  policy") {
					t.Errorf("allowed check over %s:\n%s", protocol, stdout)
				}
			}

			cases := []struct {
				name            string
				c               *cli
				code            int
				check, stderr   string
				stdoutAlsoHolds string
			}{
				{"no permission", viewer, 3, "permission", `role "viewer" lacks the tenant.audit.export permission`, "permission_denied"},
				{"no compliance pack", noPack, 5, "compliance_pack", "the Compliance Pack add-on is not enabled", "failed_precondition"},
			}
			for _, tc := range cases {
				stdout, stderr, code := tc.c.run("policy", "check")
				if code != tc.code || !strings.Contains(stderr, "an export would be denied by the "+tc.check+" check: ") || !strings.Contains(stderr, tc.stderr) {
					t.Errorf("%s: exit %d, want %d; stderr %q", tc.name, code, tc.code, stderr)
				}
				if !strings.Contains(stdout, "denied") || !strings.Contains(stdout, tc.check) || !strings.Contains(stdout, tc.stdoutAlsoHolds) {
					t.Errorf("%s: stdout lacks the verdict:\n%s", tc.name, stdout)
				}
			}

			p, err := env.Store.CreatePolicy(context.Background(), store.NewPolicy{TenantID: acme, Name: "freeze exports",
				Kind: "BUNDLE_EXPORT", Effect: "deny", IssuerMatch: "*", Enabled: true})
			if err != nil {
				t.Fatal(err)
			}
			stdout, stderr, code := auditor.run("policy", "check", "--output", "json")
			var v struct {
				Allowed    bool   `json:"allowed"`
				Check      string `json:"check"`
				PolicyID   string `json:"policy_id"`
				PolicyName string `json:"policy_name"`
				Reason     string `json:"reason"`
				Code       string `json:"code"`
			}
			if err := json.Unmarshal([]byte(stdout), &v); err != nil {
				t.Fatalf("policy check --output json: %v: %q", err, stdout)
			}
			if code != 3 || v.Allowed || v.Check != "policy" || v.PolicyID != p.ID || v.PolicyName != "freeze exports" || v.Code != "permission_denied" ||
				!strings.Contains(stderr, "denied by the policy check: "+v.Reason) {
				t.Errorf("deny policy: exit %d, %+v, stderr %q", code, v, stderr)
			}
			stdout, _, _ = auditor.run("policy", "check")
			if !strings.Contains(stdout, "policy:      freeze exports ("+p.ID+")") {
				t.Errorf("the table does not name the deciding policy:\n%s", stdout)
			}
			// The dry run agrees with the real thing.
			_, stderr, code = auditor.run("export", "create", "--type", "soc2", "--from", "2026-01-01", "--to", "2026-01-31")
			if code != 3 || !strings.Contains(stderr, "permission_denied: "+v.Reason) {
				t.Errorf("create under the deny policy: exit %d, stderr %q (dry run said %q)", code, stderr, v.Reason)
			}
		})
	}
}
