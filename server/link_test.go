package server_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/exportd/exportd/authz"
	auditv1 "github.com/exportd/exportd/gen/go/audit/v1"
	"github.com/exportd/exportd/gen/go/audit/v1/auditv1connect"
	"github.com/exportd/exportd/internal/apikey"
	"github.com/exportd/exportd/internal/store"
	"github.com/exportd/exportd/internal/store/storetest"
	"github.com/exportd/exportd/server/servertest"
)

// TestDownloadLinkDiesWithItsKey: a link is its minting key's authority
// handed on, so revoking that key, its expiry, or its role losing
// tenant.audit.export refuses the link as an invalid one is refused (plain
// JSON status, failed_precondition, saying why), and the refusal is on the
// tenant's audit log; a link of a key still in good standing works.
func TestDownloadLinkDiesWithItsKey(t *testing.T) {
	t.Parallel()
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			env := servertest.Start(t, dialect, servertest.Options{NoWorkers: true})
			tenant := env.Tenant(t, "Acme", true)
			id := env.CompletedJob(t, tenant, "json", artifact(10_000, 1))
			if err := env.Enforcer.CreateRole(ctx, tenant, "exporter", []string{authz.PermExport, authz.PermRead}); err != nil {
				t.Fatal(err)
			}
			mint := func(key string) string {
				t.Helper()
				c := auditv1connect.NewDownloadServiceClient(env.Client, env.URL, withKey(key))
				resp, err := c.CreateDownloadLink(ctx, connect.NewRequest(&auditv1.CreateDownloadLinkRequest{JobId: id}))
				if err != nil {
					t.Fatal(err)
				}
				return resp.Msg.GetUrl()
			}
			keyID := func(key string) string {
				k, err := apikey.Parse(key)
				if err != nil {
					t.Fatal(err)
				}
				return k.ID
			}

			// In good standing: the link works.
			good := env.Key(t, tenant, "auditor", "audrey@example.com")
			if resp, _ := restGet(t, env, http.MethodGet, mint(good), "", nil); resp.StatusCode != http.StatusOK {
				t.Fatalf("link of a valid key: %d", resp.StatusCode)
			}

			// Revoked.
			revoked := env.Key(t, tenant, "auditor", "rita@example.com")
			link := mint(revoked)
			if _, err := env.Store.RevokeAPIKey(ctx, tenant, keyID(revoked)); err != nil {
				t.Fatal(err)
			}
			resp, b := restGet(t, env, http.MethodGet, link, "", nil)
			restStatus(t, resp, b, http.StatusBadRequest, connect.CodeFailedPrecondition, "the key that created this link was revoked")

			// Expired.
			exp := time.Now().Add(5 * time.Minute) // before the link's own 15 minutes
			k, _, err := env.Store.CreateAPIKey(ctx, store.NewKey{TenantID: tenant, Role: "auditor", Principal: "eve@example.com", ExpiresAt: &exp})
			if err != nil {
				t.Fatal(err)
			}
			link = mint(k.String())
			env.Store.SetClock(func() time.Time { return time.Now().UTC().Add(10 * time.Minute) })
			resp, b = restGet(t, env, http.MethodGet, link, "", nil)
			env.Store.SetClock(func() time.Time { return time.Now().UTC() })
			restStatus(t, resp, b, http.StatusBadRequest, connect.CodeFailedPrecondition, "the key that created this link expired")

			// Its role loses the export permission.
			exporter := env.Key(t, tenant, "exporter", "ed@example.com")
			link = mint(exporter)
			if err := env.Enforcer.CreateRole(ctx, tenant, "exporter", []string{authz.PermRead}); err != nil {
				t.Fatal(err)
			}
			resp, b = restGet(t, env, http.MethodGet, link, "", nil)
			restStatus(t, resp, b, http.StatusBadRequest, connect.CodeFailedPrecondition, "lost the tenant.audit.export permission (role exporter)")
			// Given back, the (unused) link works again.
			if err := env.Enforcer.CreateRole(ctx, tenant, "exporter", []string{authz.PermExport, authz.PermRead}); err != nil {
				t.Fatal(err)
			}
			if resp, _ := restGet(t, env, http.MethodGet, link, "", nil); resp.StatusCode != http.StatusOK {
				t.Fatalf("link after the permission came back: %d", resp.StatusCode)
			}

			evs := auditEvents(t, env, tenant, store.EventQuery{Action: "export.download", Outcome: "denied"})
			refused := map[string]string{}
			for _, e := range evs {
				if e.Metadata["protocol"] == "link" {
					refused[e.Metadata["key_id"].(string)], _ = e.Metadata["refused"].(string)
				}
			}
			want := map[string]string{keyID(revoked): "key_revoked", k.ID: "key_expired", keyID(exporter): "key_permission"}
			for id, reason := range want {
				if refused[id] != reason {
					t.Errorf("audit log: refusals by key %v, want %v", refused, want)
					break
				}
			}
			if len(refused) != len(want) {
				t.Errorf("audit log: refusals by key %v, want %v", refused, want)
			}
		})
	}
}
