package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	auditv1 "github.com/exportd/exportd/gen/go/audit/v1"
	"github.com/exportd/exportd/gen/go/audit/v1/auditv1connect"
	"github.com/exportd/exportd/internal/store"
	"github.com/exportd/exportd/internal/store/storetest"
	"github.com/exportd/exportd/server/servertest"
)

// TestTenantSettings: an admin switches the Compliance Pack (taking effect
// for the very next CreateExport), sets retention and profiles; others may
// read but not change; every change is an audit event.
func TestTenantSettings(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			env := servertest.Start(t, d, servertest.Options{NoWorkers: true})
			ctx := context.Background()
			tn := env.Tenant(t, "Acme", false)
			adminKey := env.Key(t, tn, "admin", "root@example.com")
			admin := auditv1connect.NewTenantServiceClient(env.Client, env.URL, withKey(adminKey))
			auditor := auditv1connect.NewTenantServiceClient(env.Client, env.URL, withKey(env.Key(t, tn, "auditor", "audrey@example.com")))
			exports := auditv1connect.NewExportServiceClient(env.Client, env.URL, withKey(adminKey))
			create := func() error {
				_, err := exports.CreateExport(ctx, connect.NewRequest(&auditv1.CreateExportRequest{ReportType: "soc2",
					StartDate: timestamppb.New(periodFrom), EndDate: timestamppb.New(periodTo)}))
				return err
			}

			got, err := auditor.GetTenant(ctx, connect.NewRequest(&auditv1.GetTenantRequest{}))
			if err != nil || got.Msg.GetTenant().GetTenantId() != tn || len(got.Msg.GetTenant().GetAddOns()) != 0 {
				t.Fatalf("get tenant = %v, %v", got.Msg, err)
			}
			if err := create(); connect.CodeOf(err) != connect.CodeFailedPrecondition {
				t.Fatalf("create without the pack: %v", err)
			}
			if _, err := auditor.SetAddOn(ctx, connect.NewRequest(&auditv1.SetAddOnRequest{AddOn: "compliance_pack", Enabled: true})); connect.CodeOf(err) != connect.CodePermissionDenied {
				t.Fatalf("auditor enabling: %v", err)
			}
			on, err := admin.SetAddOn(ctx, connect.NewRequest(&auditv1.SetAddOnRequest{AddOn: "compliance_pack", Enabled: true}))
			if err != nil || !slices.Equal(on.Msg.GetTenant().GetAddOns(), []string{"compliance_pack"}) {
				t.Fatalf("enable = %v, %v", on.Msg, err)
			}
			if err := create(); err != nil {
				t.Fatalf("create right after enabling: %v", err)
			}
			if _, err := admin.SetAddOn(ctx, connect.NewRequest(&auditv1.SetAddOnRequest{AddOn: "compliance_pack"})); err != nil {
				t.Fatal(err)
			}
			if err := create(); connect.CodeOf(err) != connect.CodeFailedPrecondition {
				t.Fatalf("create right after disabling: %v", err)
			}
			if _, err := admin.SetAddOn(ctx, connect.NewRequest(&auditv1.SetAddOnRequest{AddOn: "turbo", Enabled: true})); connect.CodeOf(err) != connect.CodeInvalidArgument {
				t.Fatalf("unknown add-on: %v", err)
			}

			// Retention, over REST too.
			req, _ := http.NewRequest(http.MethodPut, env.URL+"/v1/tenant/retention", strings.NewReader(`{"audit_retention_days":2190,"download_window_days":14}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-API-Key", adminKey)
			resp, err := env.Client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var rest struct {
				Tenant struct {
					AuditRetentionDays int `json:"audit_retention_days"`
					DownloadWindowDays int `json:"download_window_days"`
				} `json:"tenant"`
			}
			if err := json.Unmarshal(body, &rest); err != nil || resp.StatusCode != http.StatusOK || rest.Tenant.AuditRetentionDays != 2190 || rest.Tenant.DownloadWindowDays != 14 {
				t.Fatalf("REST retention: %d %s", resp.StatusCode, body)
			}
			if _, err := admin.UpdateRetention(ctx, connect.NewRequest(&auditv1.UpdateRetentionRequest{AuditRetentionDays: 0, DownloadWindowDays: 7})); connect.CodeOf(err) != connect.CodeInvalidArgument {
				t.Fatalf("zero retention: %v", err)
			}

			// GDPR profile: refused when a rule of reports.GDPRProfile fails,
			// stored and returned as sent otherwise.
			gdpr := &auditv1.GDPRProfile{
				Controller: &auditv1.GDPRController{Name: "Acme Health GmbH", Email: "privacy@acme.example", Dpo: &auditv1.Contact{Name: "Dana", Email: "dpo@acme.example"}},
				ProcessingActivities: []*auditv1.ProcessingActivity{{Name: "Care", Purpose: "treatment", LegalBasis: "contract",
					DataCategories: []string{"health"}, DataSubjects: []string{"patients"},
					InternationalTransfers: []*auditv1.Transfer{{Country: "US", Safeguards: "standard contractual clauses"}}}},
			}
			bad := proto.Clone(gdpr).(*auditv1.GDPRProfile)
			bad.ProcessingActivities[0].LegalBasis = ""
			if _, err := admin.UpdateGDPRProfile(ctx, connect.NewRequest(&auditv1.UpdateGDPRProfileRequest{Profile: bad})); connect.CodeOf(err) != connect.CodeInvalidArgument {
				t.Fatalf("profile without legal basis: %v", err)
			}
			if _, err := auditor.UpdateGDPRProfile(ctx, connect.NewRequest(&auditv1.UpdateGDPRProfileRequest{Profile: gdpr})); connect.CodeOf(err) != connect.CodePermissionDenied {
				t.Fatalf("auditor updating the profile: %v", err)
			}
			if _, err := admin.UpdateGDPRProfile(ctx, connect.NewRequest(&auditv1.UpdateGDPRProfileRequest{Profile: gdpr})); err != nil {
				t.Fatal(err)
			}
			g, err := auditor.GetGDPRProfile(ctx, connect.NewRequest(&auditv1.GetGDPRProfileRequest{}))
			if err != nil || !proto.Equal(g.Msg.GetProfile(), gdpr) {
				t.Fatalf("gdpr profile = %v, %v", g.Msg.GetProfile(), err)
			}
			hipaa := &auditv1.HIPAAProfile{Name: "Acme Clinic", Type: "covered_entity",
				Identifiers: []*auditv1.HIPAAIdentifier{{Type: "NPI", Value: "1234567893"}}, PrivacyOfficer: &auditv1.Contact{Name: "Pat"}}
			if _, err := admin.UpdateHIPAAProfile(ctx, connect.NewRequest(&auditv1.UpdateHIPAAProfileRequest{Profile: &auditv1.HIPAAProfile{Name: "x", Type: "hospital"}})); connect.CodeOf(err) != connect.CodeInvalidArgument {
				t.Fatalf("hipaa type hospital: %v", err)
			}
			if _, err := admin.UpdateHIPAAProfile(ctx, connect.NewRequest(&auditv1.UpdateHIPAAProfileRequest{Profile: hipaa})); err != nil {
				t.Fatal(err)
			}
			h, err := auditor.GetHIPAAProfile(ctx, connect.NewRequest(&auditv1.GetHIPAAProfileRequest{}))
			if err != nil || !proto.Equal(h.Msg.GetProfile(), hipaa) {
				t.Fatalf("hipaa profile = %v, %v", h.Msg.GetProfile(), err)
			}

			// The changes are in the tenant's audit log.
			ev, err := env.Store.QueryEvents(ctx, tn, store.EventQuery{PageSize: 1000})
			if err != nil {
				t.Fatal(err)
			}
			var actions []string
			for _, e := range ev.Events {
				if e.ResourceType == "tenant" && e.Outcome == "success" && !strings.HasSuffix(e.Action, ".get") {
					actions = append(actions, e.Action)
				}
			}
			want := []string{"addon.enable", "addon.disable", "settings.retention.update", "settings.gdpr_profile.update", "settings.hipaa_profile.update"}
			if !slices.Equal(actions, want) {
				t.Fatalf("audited changes %v, want %v", actions, want)
			}
		})
	}
}

// TestAttestations records, revokes, supersedes, lists and gets records,
// and keeps tenants apart.
func TestAttestations(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			env := servertest.Start(t, d, servertest.Options{NoWorkers: true})
			ctx := context.Background()
			tn, other := env.Tenant(t, "Acme", true), env.Tenant(t, "Globex", true)
			iss := uuid.NewString()
			if err := env.Store.SeedIssuer(ctx, store.Issuer{ID: iss, TenantID: tn, Name: "Acme Credentials", URI: "did:web:acme.example",
				TrustTier: "TIER_1", CreatedAt: time.Now()}); err != nil {
				t.Fatal(err)
			}
			w := auditv1connect.NewAttestationServiceClient(env.Client, env.URL, withKey(env.Key(t, tn, "ingester", "minting-service")))
			r := auditv1connect.NewAttestationServiceClient(env.Client, env.URL, withKey(env.Key(t, tn, "viewer", "vera@example.com")))
			stranger := auditv1connect.NewAttestationServiceClient(env.Client, env.URL, withKey(env.Key(t, other, "admin", "x@globex.example")))
			record := func(id, subject string) *auditv1.Attestation {
				t.Helper()
				resp, err := w.RecordAttestation(ctx, connect.NewRequest(&auditv1.RecordAttestationRequest{Attestation: &auditv1.NewAttestation{
					AttestationId: id, IssuerId: iss, Subject: subject, Schema: "vaccination-record/v2",
					DataCategories: []string{"health"}, LegalBasis: "consent"}}))
				if err != nil {
					t.Fatalf("record %s: %v", id, err)
				}
				return resp.Msg.GetAttestation()
			}
			a := record("att-1", "did:example:alice")
			b := record("", "did:example:bob")
			if a.GetStatus() != "ACTIVE" || !strings.HasPrefix(b.GetAttestationId(), "att_") {
				t.Fatalf("recorded %v and %v", a, b)
			}
			if _, err := w.RecordAttestation(ctx, connect.NewRequest(&auditv1.RecordAttestationRequest{Attestation: &auditv1.NewAttestation{
				AttestationId: "att-1", IssuerId: iss, Subject: "s", Schema: "x"}})); connect.CodeOf(err) != connect.CodeAlreadyExists {
				t.Fatalf("duplicate id: %v", err)
			}
			// Ids are unique per tenant: a third tenant may use "att-1" too,
			// and learns nothing about Acme's ids by trying.
			third := env.Tenant(t, "Initech", true)
			otherIss := uuid.NewString()
			if err := env.Store.SeedIssuer(ctx, store.Issuer{ID: otherIss, TenantID: third, Name: "Initech Credentials",
				TrustTier: "TIER_2", CreatedAt: time.Now()}); err != nil {
				t.Fatal(err)
			}
			globex := auditv1connect.NewAttestationServiceClient(env.Client, env.URL, withKey(env.Key(t, third, "ingester", "initech-minting")))
			if resp, err := globex.RecordAttestation(ctx, connect.NewRequest(&auditv1.RecordAttestationRequest{Attestation: &auditv1.NewAttestation{
				AttestationId: "att-1", IssuerId: otherIss, Subject: "did:example:carol", Schema: "x"}})); err != nil || resp.Msg.GetAttestation().GetAttestationId() != "att-1" {
				t.Fatalf("a third tenant's att-1: %v %v", resp, err)
			}
			if got, err := r.GetAttestation(ctx, connect.NewRequest(&auditv1.GetAttestationRequest{AttestationId: "att-1"})); err != nil || got.Msg.GetAttestation().GetSubject() != "did:example:alice" {
				t.Fatalf("Acme's att-1 after Initech recorded its own: %v %v", got, err)
			}
			if _, err := w.RecordAttestation(ctx, connect.NewRequest(&auditv1.RecordAttestationRequest{Attestation: &auditv1.NewAttestation{
				IssuerId: "no-such-issuer", Subject: "s", Schema: "x"}})); connect.CodeOf(err) != connect.CodeNotFound {
				t.Fatalf("unknown issuer: %v", err)
			}
			if _, err := r.RecordAttestation(ctx, connect.NewRequest(&auditv1.RecordAttestationRequest{Attestation: &auditv1.NewAttestation{
				IssuerId: iss, Subject: "s", Schema: "x"}})); connect.CodeOf(err) != connect.CodePermissionDenied {
				t.Fatalf("viewer recording: %v", err)
			}
			rev, err := w.RevokeAttestation(ctx, connect.NewRequest(&auditv1.RevokeAttestationRequest{AttestationId: b.GetAttestationId()}))
			if err != nil || rev.Msg.GetAttestation().GetStatus() != "REVOKED" || rev.Msg.GetAttestation().GetRevokedAt() == nil {
				t.Fatalf("revoke = %v, %v", rev.Msg, err)
			}
			if _, err := w.RevokeAttestation(ctx, connect.NewRequest(&auditv1.RevokeAttestationRequest{AttestationId: b.GetAttestationId()})); connect.CodeOf(err) != connect.CodeFailedPrecondition {
				t.Fatalf("revoking twice: %v", err)
			}
			sup, err := w.SupersedeAttestation(ctx, connect.NewRequest(&auditv1.SupersedeAttestationRequest{AttestationId: "att-1",
				Replacement: &auditv1.NewAttestation{AttestationId: "att-2", IssuerId: iss, Subject: "did:example:alice", Schema: "vaccination-record/v3"}}))
			if err != nil || sup.Msg.GetSuperseded().GetStatus() != "SUPERSEDED" || sup.Msg.GetSuperseded().GetSupersededBy() != "att-2" ||
				sup.Msg.GetReplacement().GetStatus() != "ACTIVE" {
				t.Fatalf("supersede = %v, %v", sup.Msg, err)
			}
			got, err := r.GetAttestation(ctx, connect.NewRequest(&auditv1.GetAttestationRequest{AttestationId: "att-1"}))
			if err != nil || got.Msg.GetAttestation().GetSupersededBy() != "att-2" {
				t.Fatalf("get = %v, %v", got.Msg, err)
			}
			_, errOther := stranger.GetAttestation(ctx, connect.NewRequest(&auditv1.GetAttestationRequest{AttestationId: "att-1"}))
			_, errMissing := stranger.GetAttestation(ctx, connect.NewRequest(&auditv1.GetAttestationRequest{AttestationId: "att-nope"}))
			if connect.CodeOf(errOther) != connect.CodeNotFound || connect.CodeOf(errMissing) != connect.CodeNotFound ||
				strings.ReplaceAll(errOther.Error(), "att-1", "X") != strings.ReplaceAll(errMissing.Error(), "att-nope", "X") {
				t.Fatalf("another tenant's record: %v; a missing one: %v", errOther, errMissing)
			}
			var ids []string
			tok := ""
			for {
				l, err := r.ListAttestations(ctx, connect.NewRequest(&auditv1.ListAttestationsRequest{PageSize: 1, PageToken: tok}))
				if err != nil {
					t.Fatal(err)
				}
				for _, a := range l.Msg.GetAttestations() {
					ids = append(ids, a.GetAttestationId())
				}
				if tok = l.Msg.GetNextPageToken(); tok == "" {
					break
				}
			}
			if len(ids) != 3 || ids[0] != "att-2" {
				t.Fatalf("listed %v, want 3 newest first", ids)
			}
			act, err := r.ListAttestations(ctx, connect.NewRequest(&auditv1.ListAttestationsRequest{Status: "ACTIVE"}))
			if err != nil || len(act.Msg.GetAttestations()) != 1 || act.Msg.GetAttestations()[0].GetAttestationId() != "att-2" {
				t.Fatalf("active = %v, %v", act.Msg, err)
			}
			if l, err := stranger.ListAttestations(ctx, connect.NewRequest(&auditv1.ListAttestationsRequest{})); err != nil || len(l.Msg.GetAttestations()) != 0 {
				t.Fatalf("another tenant lists %v, %v", l.Msg, err)
			}
		})
	}
}

// TestWebhooks: https only, the secret shown once, CRUD confined to the
// tenant and to tenant.settings.manage.
func TestWebhooks(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			env := servertest.Start(t, d, servertest.Options{NoWorkers: true})
			ctx := context.Background()
			tn, other := env.Tenant(t, "Acme", true), env.Tenant(t, "Globex", true)
			admin := auditv1connect.NewTenantServiceClient(env.Client, env.URL, withKey(env.Key(t, tn, "admin", "root@example.com")))
			auditor := auditv1connect.NewTenantServiceClient(env.Client, env.URL, withKey(env.Key(t, tn, "auditor", "audrey@example.com")))
			stranger := auditv1connect.NewTenantServiceClient(env.Client, env.URL, withKey(env.Key(t, other, "admin", "x@globex.example")))
			for _, u := range []string{"http://hooks.example/x", "https://", "https://user:pw@hooks.example/", "ftp://hooks.example", "not a url"} {
				_, err := admin.CreateWebhook(ctx, connect.NewRequest(&auditv1.CreateWebhookRequest{Url: u, Events: []string{"export.completed"}}))
				if got := violationPaths(t, err); len(got) == 0 || slices.ContainsFunc(got, func(p string) bool { return p != "url" }) {
					t.Errorf("url %q: violations %v", u, got)
				}
			}
			if _, err := admin.CreateWebhook(ctx, connect.NewRequest(&auditv1.CreateWebhookRequest{Url: "https://hooks.example/x", Events: []string{"export.started"}})); connect.CodeOf(err) != connect.CodeInvalidArgument {
				t.Fatalf("unknown event: %v", err)
			}
			if _, err := auditor.CreateWebhook(ctx, connect.NewRequest(&auditv1.CreateWebhookRequest{Url: "https://hooks.example/x", Events: []string{"export.completed"}})); connect.CodeOf(err) != connect.CodePermissionDenied {
				t.Fatalf("auditor creating: %v", err)
			}
			c, err := admin.CreateWebhook(ctx, connect.NewRequest(&auditv1.CreateWebhookRequest{Url: "https://hooks.example/x", Description: "SIEM", Events: []string{"export.completed", "export.failed"}}))
			if err != nil || !strings.HasPrefix(c.Msg.GetSecret(), "whsec_") || len(c.Msg.GetSecret()) < 40 || !c.Msg.GetWebhook().GetEnabled() {
				t.Fatalf("create = %v, %v", c.Msg, err)
			}
			id := c.Msg.GetWebhook().GetWebhookId()
			l, err := admin.ListWebhooks(ctx, connect.NewRequest(&auditv1.ListWebhooksRequest{}))
			if err != nil || len(l.Msg.GetWebhooks()) != 1 || strings.Contains(l.Msg.String(), c.Msg.GetSecret()) {
				t.Fatalf("list = %v, %v", l.Msg, err)
			}
			u, err := admin.UpdateWebhook(ctx, connect.NewRequest(&auditv1.UpdateWebhookRequest{WebhookId: id, Url: "https://hooks.example/y", Events: []string{"export.expired"}}))
			if err != nil || u.Msg.GetWebhook().GetUrl() != "https://hooks.example/y" || u.Msg.GetWebhook().GetEnabled() {
				t.Fatalf("update = %v, %v", u.Msg, err)
			}
			if _, err := stranger.UpdateWebhook(ctx, connect.NewRequest(&auditv1.UpdateWebhookRequest{WebhookId: id, Url: "https://evil.example", Events: []string{"export.completed"}})); connect.CodeOf(err) != connect.CodeNotFound {
				t.Fatalf("another tenant updating: %v", err)
			}
			if _, err := stranger.DeleteWebhook(ctx, connect.NewRequest(&auditv1.DeleteWebhookRequest{WebhookId: id})); connect.CodeOf(err) != connect.CodeNotFound {
				t.Fatalf("another tenant deleting: %v", err)
			}
			if l, err := stranger.ListWebhooks(ctx, connect.NewRequest(&auditv1.ListWebhooksRequest{})); err != nil || len(l.Msg.GetWebhooks()) != 0 {
				t.Fatalf("another tenant lists %v, %v", l.Msg, err)
			}
			if _, err := admin.DeleteWebhook(ctx, connect.NewRequest(&auditv1.DeleteWebhookRequest{WebhookId: id})); err != nil {
				t.Fatal(err)
			}
			if _, err := admin.DeleteWebhook(ctx, connect.NewRequest(&auditv1.DeleteWebhookRequest{WebhookId: id})); connect.CodeOf(err) != connect.CodeNotFound {
				t.Fatalf("deleting twice: %v", err)
			}
		})
	}
}
