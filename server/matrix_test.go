package server_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/exportd/exportd/authz"
	auditv1 "github.com/exportd/exportd/gen/go/audit/v1"
	"github.com/exportd/exportd/gen/go/audit/v1/auditv1connect"
	"github.com/exportd/exportd/internal/store"
	"github.com/exportd/exportd/internal/store/storetest"
	"github.com/exportd/exportd/reports"
	"github.com/exportd/exportd/server"
	"github.com/exportd/exportd/server/servertest"
)

// matrixTenant is one tenant of the matrix with its keys and objects.
type matrixTenant struct {
	id          string
	marker      string            // a string only this tenant's data holds
	keys        map[string]string // principal kind → raw key
	keyIDs      []string
	job         string // a COMPLETED job
	policy      string // a disabled MINT policy
	issuer      string
	attestation string // an ACTIVE attestation nobody changes
	webhook     string // a webhook the matrix updates (always to the same state)
	markers     []string
}

// clients are the generated clients of one key, and the tenant the key
// belongs to (whose own objects a request body may name).
type clients struct {
	env          *servertest.Env
	mt           *matrixTenant
	exports      auditv1connect.ExportServiceClient
	downloads    auditv1connect.DownloadServiceClient
	keys         auditv1connect.ApiKeyServiceClient
	policies     auditv1connect.PolicyServiceClient
	events       auditv1connect.AuditLogServiceClient
	attestations auditv1connect.AttestationServiceClient
	tenants      auditv1connect.TenantServiceClient
}

// op is one RPC or REST path of the API.
type op struct {
	name string
	// procedure is the Connect procedure (or the name of the plain REST
	// handler) the row covers; TestEveryProcedureHasARule checks every
	// procedure of the server has a row and perm matches its rule.
	procedure string
	// permFrom is the procedure whose rule perm comes from when the row
	// is a chain of calls (mint a link, then use it); empty means procedure.
	permFrom string
	perm     string // "" for any valid key
	// grants are the permissions a successful call hands out (a key's
	// role, a role's permissions): a caller must hold them all.
	grants []string
	// object is what the call is about: "" (nothing), job, pending, key,
	// policy, freshpolicy, role, issuer, attestation, freshattestation,
	// webhook, freshwebhook.
	object string
	ok     connect.Code
	rpc    func(ctx context.Context, c clients, id string) (proto.Message, error) // nil for REST-only paths
	method string                                                                 // REST when set
	path   string                                                                 // with %s for the object
	body   func(own *matrixTenant, id string) string
	// rest replaces the plain REST call when the path needs more than one
	// request (a link is minted, then used).
	rest func(env *servertest.Env, key string, id string) (connect.Code, string, error)
}

var uniq atomic.Int64

func unique(prefix string) string { return fmt.Sprintf("%s-%d", prefix, uniq.Add(1)) }

func unary[Req, Res any](call func(context.Context, *connect.Request[Req]) (*connect.Response[Res], error), req *Req) (proto.Message, error) {
	r, err := call(context.Background(), connect.NewRequest(req))
	if err != nil {
		return nil, err
	}
	return any(r.Msg).(proto.Message), nil
}

// drain reads a server stream to its end and returns its last message.
func drain[Res any](s *connect.ServerStreamForClient[Res], err error) (proto.Message, error) {
	if err != nil {
		return nil, err
	}
	var last proto.Message
	for s.Receive() {
		last = any(s.Msg()).(proto.Message)
	}
	return last, s.Err()
}

// seedActor is the actor of the events each tenant is seeded with; both
// tenants have events of it, so a query by it that leaked across tenants
// would carry the other tenant's marker.
const seedActor = "matrix-seed"

func matrixOps() []op {
	period := func() *auditv1.CreateExportRequest {
		return &auditv1.CreateExportRequest{ReportType: "soc2", StartDate: timestamppb.New(periodFrom), EndDate: timestamppb.New(periodTo)}
	}
	exportBody := func(*matrixTenant, string) string {
		return `{"report_type":"soc2","start_date":"2026-01-01T00:00:00Z","end_date":"2026-03-31T23:59:59Z","format":"json"}`
	}
	empty := func(*matrixTenant, string) string { return `{}` }
	newAttestation := func(mt *matrixTenant) *auditv1.NewAttestation {
		return &auditv1.NewAttestation{IssuerId: mt.issuer, Subject: mt.marker, Schema: "matrix/v1", DataCategories: []string{"contact"}}
	}
	attestationJSON := func(issuer, subject string) string {
		return `{"issuer_id":"` + issuer + `","subject":"` + subject + `","schema":"matrix/v1","data_categories":["contact"]}`
	}
	gdpr := func(mt *matrixTenant) *auditv1.GDPRProfile {
		return &auditv1.GDPRProfile{
			Controller: &auditv1.GDPRController{Name: mt.marker, Email: "dpo@example.com"},
			ProcessingActivities: []*auditv1.ProcessingActivity{{
				Name: "billing", Purpose: "invoicing", LegalBasis: "contract", DataCategories: []string{"contact"},
			}},
		}
	}
	gdprJSON := func(mt *matrixTenant, _ string) string {
		return `{"controller":{"name":"` + mt.marker + `","email":"dpo@example.com"},` +
			`"processing_activities":[{"name":"billing","purpose":"invoicing","legal_basis":"contract","data_categories":["contact"]}]}`
	}
	hipaa := func(mt *matrixTenant) *auditv1.HIPAAProfile {
		return &auditv1.HIPAAProfile{Name: mt.marker, Type: "covered_entity"}
	}
	hipaaJSON := func(mt *matrixTenant, _ string) string { return `{"name":"` + mt.marker + `","type":"covered_entity"}` }
	webhookChange := func(mt *matrixTenant) *auditv1.UpdateWebhookRequest {
		return &auditv1.UpdateWebhookRequest{Url: "https://hooks.example.com/matrix", Description: mt.marker,
			Events: []string{"export.completed"}, Enabled: false}
	}
	webhookJSON := func(mt *matrixTenant, _ string) string {
		return `{"url":"https://hooks.example.com/matrix","description":"` + mt.marker + `","events":["export.completed"],"enabled":false}`
	}
	return []op{
		{name: "CreateExport", procedure: auditv1connect.ExportServiceCreateExportProcedure, perm: authz.PermExport, rpc: func(ctx context.Context, c clients, _ string) (proto.Message, error) {
			return unary(c.exports.CreateExport, period())
		}, method: "POST", path: "/v1/audit/exports", body: exportBody},
		{name: "GetExport", procedure: auditv1connect.ExportServiceGetExportProcedure, perm: authz.PermRead, object: "job", rpc: func(ctx context.Context, c clients, id string) (proto.Message, error) {
			return unary(c.exports.GetExport, &auditv1.GetExportRequest{JobId: id})
		}, method: "GET", path: "/v1/audit/exports/%s"},
		{name: "ListExports", procedure: auditv1connect.ExportServiceListExportsProcedure, perm: authz.PermRead, rpc: func(ctx context.Context, c clients, _ string) (proto.Message, error) {
			return unary(c.exports.ListExports, &auditv1.ListExportsRequest{PageSize: 100})
		}, method: "GET", path: "/v1/audit/exports?page_size=100"},
		{name: "WatchExport", procedure: auditv1connect.ExportServiceWatchExportProcedure, perm: authz.PermRead, object: "job", rpc: func(ctx context.Context, c clients, id string) (proto.Message, error) {
			return drain(c.exports.WatchExport(ctx, connect.NewRequest(&auditv1.WatchExportRequest{JobId: id})))
		}},
		{name: "CancelExport", procedure: auditv1connect.ExportServiceCancelExportProcedure, perm: authz.PermExport, object: "pending", rpc: func(ctx context.Context, c clients, id string) (proto.Message, error) {
			return unary(c.exports.CancelExport, &auditv1.CancelExportRequest{JobId: id})
		}, method: "POST", path: "/v1/audit/exports/%s:cancel", body: empty},
		{name: "WhoAmI", procedure: auditv1connect.ExportServiceWhoAmIProcedure, rpc: func(ctx context.Context, c clients, _ string) (proto.Message, error) {
			return unary(c.exports.WhoAmI, &auditv1.WhoAmIRequest{})
		}, method: "GET", path: "/v1/whoami"},
		{name: "Download", procedure: auditv1connect.DownloadServiceDownloadProcedure, perm: authz.PermExport, object: "job", rpc: func(ctx context.Context, c clients, id string) (proto.Message, error) {
			return drain(c.downloads.Download(ctx, connect.NewRequest(&auditv1.DownloadRequest{JobId: id})))
		}},
		// The plain REST download handler, a procedure of its own.
		{name: "RESTDownload", procedure: server.RESTDownloadProcedure, perm: authz.PermExport, object: "job",
			method: "GET", path: "/v1/audit/exports/%s/download"},
		{name: "Manifest", procedure: server.RESTManifestProcedure, perm: authz.PermExport, object: "job",
			method: "GET", path: "/v1/audit/exports/%s/manifest"},
		{name: "CreateDownloadLink", procedure: auditv1connect.DownloadServiceCreateDownloadLinkProcedure, perm: authz.PermExport, object: "job", rpc: func(ctx context.Context, c clients, id string) (proto.Message, error) {
			return unary(c.downloads.CreateDownloadLink, &auditv1.CreateDownloadLinkRequest{JobId: id})
		}, method: "POST", path: "/v1/audit/exports/%s/links", body: empty},
		// A link needs no key: whoever holds it downloads, once. What
		// the matrix asks of it is that a key can only mint a link for its
		// own tenant's job, and that the link then delivers that job and
		// nothing of the other tenant. The row mints (over Connect, or over
		// REST) with the caller's key and uses the link with no key at all;
		// its code is the mint's, or the link's once minted.
		{name: "UseDownloadLink", procedure: server.LinkDownloadProcedure, permFrom: auditv1connect.DownloadServiceCreateDownloadLinkProcedure,
			perm: authz.PermExport, object: "job", rpc: func(ctx context.Context, c clients, id string) (proto.Message, error) {
				r, err := c.downloads.CreateDownloadLink(ctx, connect.NewRequest(&auditv1.CreateDownloadLinkRequest{JobId: id}))
				if err != nil {
					return nil, err
				}
				return useLink(c.env, r.Msg.GetUrl())
			}, method: "GET", path: "/v1/links/%s", rest: func(env *servertest.Env, key, id string) (connect.Code, string, error) {
				code, body, err := restRequest(env, key, "POST", "/v1/audit/exports/"+id+"/links", `{}`)
				if err != nil || code != 0 {
					return code, body, err
				}
				var minted struct {
					URL string `json:"url"`
				}
				if err := json.Unmarshal([]byte(body), &minted); err != nil || !strings.HasPrefix(minted.URL, "/v1/links/") {
					return 0, "", fmt.Errorf("mint answered %.200s", body)
				}
				return restRequest(env, "", "GET", minted.URL, "")
			}},
		{name: "ListDownloads", procedure: auditv1connect.DownloadServiceListDownloadsProcedure, perm: authz.PermRead, object: "job", rpc: func(ctx context.Context, c clients, id string) (proto.Message, error) {
			return unary(c.downloads.ListDownloads, &auditv1.ListDownloadsRequest{JobId: id})
		}, method: "GET", path: "/v1/audit/exports/%s/downloads"},
		{name: "CreateApiKey", procedure: auditv1connect.ApiKeyServiceCreateApiKeyProcedure, perm: authz.PermAPIKeyManage, grants: []string{authz.PermRead}, rpc: func(ctx context.Context, c clients, _ string) (proto.Message, error) {
			return unary(c.keys.CreateApiKey, &auditv1.CreateApiKeyRequest{Role: "viewer", Principal: unique("svc")})
		}, method: "POST", path: "/v1/api-keys", body: func(*matrixTenant, string) string { return `{"role":"viewer","principal":"` + unique("svc") + `"}` }},
		{name: "ListApiKeys", procedure: auditv1connect.ApiKeyServiceListApiKeysProcedure, perm: authz.PermAPIKeyManage, rpc: func(ctx context.Context, c clients, _ string) (proto.Message, error) {
			return unary(c.keys.ListApiKeys, &auditv1.ListApiKeysRequest{})
		}, method: "GET", path: "/v1/api-keys"},
		{name: "RevokeApiKey", procedure: auditv1connect.ApiKeyServiceRevokeApiKeyProcedure, perm: authz.PermAPIKeyManage, object: "key", rpc: func(ctx context.Context, c clients, id string) (proto.Message, error) {
			return unary(c.keys.RevokeApiKey, &auditv1.RevokeApiKeyRequest{KeyId: id})
		}, method: "POST", path: "/v1/api-keys/%s:revoke", body: empty},
		{name: "CreateRole", procedure: auditv1connect.ApiKeyServiceCreateRoleProcedure, perm: authz.PermAPIKeyManage, grants: []string{authz.PermRead}, rpc: func(ctx context.Context, c clients, _ string) (proto.Message, error) {
			return unary(c.keys.CreateRole, &auditv1.CreateRoleRequest{Name: unique("role"), Permissions: []string{authz.PermRead}})
		}, method: "POST", path: "/v1/roles", body: func(*matrixTenant, string) string {
			return `{"name":"` + unique("role") + `","permissions":["tenant.audit.read"]}`
		}},
		{name: "ListRoles", procedure: auditv1connect.ApiKeyServiceListRolesProcedure, perm: authz.PermAPIKeyManage, rpc: func(ctx context.Context, c clients, _ string) (proto.Message, error) {
			return unary(c.keys.ListRoles, &auditv1.ListRolesRequest{})
		}, method: "GET", path: "/v1/roles"},
		{name: "DeleteRole", procedure: auditv1connect.ApiKeyServiceDeleteRoleProcedure, perm: authz.PermAPIKeyManage, object: "role", rpc: func(ctx context.Context, c clients, id string) (proto.Message, error) {
			return unary(c.keys.DeleteRole, &auditv1.DeleteRoleRequest{Name: id})
		}, method: "DELETE", path: "/v1/roles/%s"},
		{name: "CreatePolicy", procedure: auditv1connect.PolicyServiceCreatePolicyProcedure, perm: authz.PermPolicyManage, rpc: func(ctx context.Context, c clients, _ string) (proto.Message, error) {
			return unary(c.policies.CreatePolicy, &auditv1.CreatePolicyRequest{Name: unique("pol"), Kind: "MINT", Effect: "allow"})
		}, method: "POST", path: "/v1/policies", body: func(*matrixTenant, string) string {
			return `{"name":"` + unique("pol") + `","kind":"MINT","effect":"allow"}`
		}},
		{name: "ListPolicies", procedure: auditv1connect.PolicyServiceListPoliciesProcedure, perm: authz.PermPolicyManage, rpc: func(ctx context.Context, c clients, _ string) (proto.Message, error) {
			return unary(c.policies.ListPolicies, &auditv1.ListPoliciesRequest{})
		}, method: "GET", path: "/v1/policies"},
		{name: "GetPolicy", procedure: auditv1connect.PolicyServiceGetPolicyProcedure, perm: authz.PermPolicyManage, object: "policy", rpc: func(ctx context.Context, c clients, id string) (proto.Message, error) {
			return unary(c.policies.GetPolicy, &auditv1.GetPolicyRequest{PolicyId: id})
		}, method: "GET", path: "/v1/policies/%s"},
		{name: "UpdatePolicy", procedure: auditv1connect.PolicyServiceUpdatePolicyProcedure, perm: authz.PermPolicyManage, object: "policy", rpc: func(ctx context.Context, c clients, id string) (proto.Message, error) {
			off := false
			return unary(c.policies.UpdatePolicy, &auditv1.UpdatePolicyRequest{PolicyId: id, Enabled: &off})
		}, method: "PATCH", path: "/v1/policies/%s", body: func(*matrixTenant, string) string { return `{"enabled":false}` }},
		{name: "DeletePolicy", procedure: auditv1connect.PolicyServiceDeletePolicyProcedure, perm: authz.PermPolicyManage, object: "freshpolicy", rpc: func(ctx context.Context, c clients, id string) (proto.Message, error) {
			return unary(c.policies.DeletePolicy, &auditv1.DeletePolicyRequest{PolicyId: id})
		}, method: "DELETE", path: "/v1/policies/%s"},
		{name: "CreateIssuer", procedure: auditv1connect.PolicyServiceCreateIssuerProcedure, perm: authz.PermPolicyManage, rpc: func(ctx context.Context, c clients, _ string) (proto.Message, error) {
			return unary(c.policies.CreateIssuer, &auditv1.CreateIssuerRequest{Name: unique("iss"), TrustTier: "TIER_2"})
		}, method: "POST", path: "/v1/issuers", body: func(*matrixTenant, string) string { return `{"name":"` + unique("iss") + `","trust_tier":"TIER_2"}` }},
		{name: "ListIssuers", procedure: auditv1connect.PolicyServiceListIssuersProcedure, perm: authz.PermPolicyManage, rpc: func(ctx context.Context, c clients, _ string) (proto.Message, error) {
			return unary(c.policies.ListIssuers, &auditv1.ListIssuersRequest{})
		}, method: "GET", path: "/v1/issuers"},
		{name: "CheckExport", procedure: auditv1connect.PolicyServiceCheckExportProcedure, perm: authz.PermRead, rpc: func(ctx context.Context, c clients, _ string) (proto.Message, error) {
			return unary(c.policies.CheckExport, &auditv1.CheckExportRequest{})
		}, method: "POST", path: "/v1/policies:check-export", body: empty},

		// AuditLogService. Writes land in the caller's log whatever they
		// say; reads are filtered by an actor both tenants have events of.
		{name: "WriteEvents", procedure: auditv1connect.AuditLogServiceWriteEventsProcedure, perm: authz.PermWrite, rpc: func(ctx context.Context, c clients, _ string) (proto.Message, error) {
			return unary(c.events.WriteEvents, &auditv1.WriteEventsRequest{Events: []*auditv1.AuditEventInput{{
				OccurredAt: timestamppb.New(periodFrom), ActorId: "matrix-writer", ActorType: "service", Action: "matrix.write",
				ResourceId: c.mt.marker, Outcome: "success", Category: "api",
			}}})
		}, method: "POST", path: "/v1/audit/events", body: func(mt *matrixTenant, _ string) string {
			return `{"events":[{"occurred_at":"2026-01-01T00:00:00Z","actor_id":"matrix-writer","actor_type":"service","action":"matrix.write",` +
				`"resource_id":"` + mt.marker + `","outcome":"success","category":"api"}]}`
		}},
		{name: "QueryEvents", procedure: auditv1connect.AuditLogServiceQueryEventsProcedure, perm: authz.PermRead, rpc: func(ctx context.Context, c clients, _ string) (proto.Message, error) {
			return unary(c.events.QueryEvents, &auditv1.QueryEventsRequest{Filter: &auditv1.EventFilter{ActorId: seedActor}, PageSize: 100})
		}, method: "GET", path: "/v1/audit/events?filter.actor_id=" + seedActor + "&page_size=100"},
		{name: "StreamEvents", procedure: auditv1connect.AuditLogServiceStreamEventsProcedure, perm: authz.PermRead, rpc: func(ctx context.Context, c clients, _ string) (proto.Message, error) {
			return drain(c.events.StreamEvents(ctx, connect.NewRequest(&auditv1.StreamEventsRequest{Filter: &auditv1.EventFilter{ActorId: seedActor}})))
		}},
		{name: "VerifyChain", procedure: auditv1connect.AuditLogServiceVerifyChainProcedure, perm: authz.PermRead, rpc: func(ctx context.Context, c clients, _ string) (proto.Message, error) {
			return unary(c.events.VerifyChain, &auditv1.VerifyChainRequest{FromSequence: 1, ToSequence: 3})
		}, method: "POST", path: "/v1/audit/events:verify-chain", body: func(*matrixTenant, string) string { return `{"from_sequence":1,"to_sequence":3}` }},

		// AttestationService. Recording names an issuer, which must be the
		// caller's tenant's.
		{name: "RecordAttestation", procedure: auditv1connect.AttestationServiceRecordAttestationProcedure, perm: authz.PermWrite, object: "issuer", rpc: func(ctx context.Context, c clients, id string) (proto.Message, error) {
			a := newAttestation(c.mt)
			a.IssuerId = id
			return unary(c.attestations.RecordAttestation, &auditv1.RecordAttestationRequest{Attestation: a})
		}, method: "POST", path: "/v1/attestations", body: recordAttestationBody},
		{name: "RevokeAttestation", procedure: auditv1connect.AttestationServiceRevokeAttestationProcedure, perm: authz.PermWrite, object: "freshattestation", rpc: func(ctx context.Context, c clients, id string) (proto.Message, error) {
			return unary(c.attestations.RevokeAttestation, &auditv1.RevokeAttestationRequest{AttestationId: id})
		}, method: "POST", path: "/v1/attestations/%s:revoke", body: empty},
		{name: "SupersedeAttestation", procedure: auditv1connect.AttestationServiceSupersedeAttestationProcedure, perm: authz.PermWrite, object: "freshattestation", rpc: func(ctx context.Context, c clients, id string) (proto.Message, error) {
			return unary(c.attestations.SupersedeAttestation, &auditv1.SupersedeAttestationRequest{AttestationId: id, Replacement: newAttestation(c.mt)})
		}, method: "POST", path: "/v1/attestations/%s:supersede", body: func(mt *matrixTenant, _ string) string {
			return `{"replacement":` + attestationJSON(mt.issuer, mt.marker) + `}`
		}},
		{name: "ListAttestations", procedure: auditv1connect.AttestationServiceListAttestationsProcedure, perm: authz.PermRead, rpc: func(ctx context.Context, c clients, _ string) (proto.Message, error) {
			return unary(c.attestations.ListAttestations, &auditv1.ListAttestationsRequest{PageSize: 500})
		}, method: "GET", path: "/v1/attestations?page_size=500"},
		{name: "GetAttestation", procedure: auditv1connect.AttestationServiceGetAttestationProcedure, perm: authz.PermRead, object: "attestation", rpc: func(ctx context.Context, c clients, id string) (proto.Message, error) {
			return unary(c.attestations.GetAttestation, &auditv1.GetAttestationRequest{AttestationId: id})
		}, method: "GET", path: "/v1/attestations/%s"},

		// TenantService: the caller's own tenant, always. Every change
		// sets the same state each time, so cells run in any order.
		{name: "GetTenant", procedure: auditv1connect.TenantServiceGetTenantProcedure, perm: authz.PermRead, rpc: func(ctx context.Context, c clients, _ string) (proto.Message, error) {
			return unary(c.tenants.GetTenant, &auditv1.GetTenantRequest{})
		}, method: "GET", path: "/v1/tenant"},
		{name: "SetAddOn", procedure: auditv1connect.TenantServiceSetAddOnProcedure, perm: authz.PermSettingsManage, rpc: func(ctx context.Context, c clients, _ string) (proto.Message, error) {
			return unary(c.tenants.SetAddOn, &auditv1.SetAddOnRequest{AddOn: authz.AddOnCompliancePack, Enabled: true})
		}, method: "POST", path: "/v1/tenant/add-ons/" + authz.AddOnCompliancePack, body: func(*matrixTenant, string) string { return `{"enabled":true}` }},
		{name: "UpdateRetention", procedure: auditv1connect.TenantServiceUpdateRetentionProcedure, perm: authz.PermSettingsManage, rpc: func(ctx context.Context, c clients, _ string) (proto.Message, error) {
			return unary(c.tenants.UpdateRetention, &auditv1.UpdateRetentionRequest{AuditRetentionDays: 3650, DownloadWindowDays: 7})
		}, method: "PUT", path: "/v1/tenant/retention", body: func(*matrixTenant, string) string { return `{"audit_retention_days":3650,"download_window_days":7}` }},
		{name: "GetGDPRProfile", procedure: auditv1connect.TenantServiceGetGDPRProfileProcedure, perm: authz.PermRead, rpc: func(ctx context.Context, c clients, _ string) (proto.Message, error) {
			return unary(c.tenants.GetGDPRProfile, &auditv1.GetGDPRProfileRequest{})
		}, method: "GET", path: "/v1/tenant/gdpr-profile"},
		{name: "UpdateGDPRProfile", procedure: auditv1connect.TenantServiceUpdateGDPRProfileProcedure, perm: authz.PermSettingsManage, rpc: func(ctx context.Context, c clients, _ string) (proto.Message, error) {
			return unary(c.tenants.UpdateGDPRProfile, &auditv1.UpdateGDPRProfileRequest{Profile: gdpr(c.mt)})
		}, method: "PUT", path: "/v1/tenant/gdpr-profile", body: gdprJSON},
		{name: "GetHIPAAProfile", procedure: auditv1connect.TenantServiceGetHIPAAProfileProcedure, perm: authz.PermRead, rpc: func(ctx context.Context, c clients, _ string) (proto.Message, error) {
			return unary(c.tenants.GetHIPAAProfile, &auditv1.GetHIPAAProfileRequest{})
		}, method: "GET", path: "/v1/tenant/hipaa-profile"},
		{name: "UpdateHIPAAProfile", procedure: auditv1connect.TenantServiceUpdateHIPAAProfileProcedure, perm: authz.PermSettingsManage, rpc: func(ctx context.Context, c clients, _ string) (proto.Message, error) {
			return unary(c.tenants.UpdateHIPAAProfile, &auditv1.UpdateHIPAAProfileRequest{Profile: hipaa(c.mt)})
		}, method: "PUT", path: "/v1/tenant/hipaa-profile", body: hipaaJSON},
		{name: "CreateWebhook", procedure: auditv1connect.TenantServiceCreateWebhookProcedure, perm: authz.PermSettingsManage, rpc: func(ctx context.Context, c clients, _ string) (proto.Message, error) {
			return unary(c.tenants.CreateWebhook, &auditv1.CreateWebhookRequest{Url: "https://hooks.example.com/new", Description: c.mt.marker, Events: []string{"export.failed"}})
		}, method: "POST", path: "/v1/tenant/webhooks", body: func(mt *matrixTenant, _ string) string {
			return `{"url":"https://hooks.example.com/new","description":"` + mt.marker + `","events":["export.failed"]}`
		}},
		{name: "ListWebhooks", procedure: auditv1connect.TenantServiceListWebhooksProcedure, perm: authz.PermSettingsManage, rpc: func(ctx context.Context, c clients, _ string) (proto.Message, error) {
			return unary(c.tenants.ListWebhooks, &auditv1.ListWebhooksRequest{})
		}, method: "GET", path: "/v1/tenant/webhooks"},
		{name: "UpdateWebhook", procedure: auditv1connect.TenantServiceUpdateWebhookProcedure, perm: authz.PermSettingsManage, object: "webhook", rpc: func(ctx context.Context, c clients, id string) (proto.Message, error) {
			req := webhookChange(c.mt)
			req.WebhookId = id
			return unary(c.tenants.UpdateWebhook, req)
		}, method: "PUT", path: "/v1/tenant/webhooks/%s", body: webhookJSON},
		{name: "DeleteWebhook", procedure: auditv1connect.TenantServiceDeleteWebhookProcedure, perm: authz.PermSettingsManage, object: "freshwebhook", rpc: func(ctx context.Context, c clients, id string) (proto.Message, error) {
			return unary(c.tenants.DeleteWebhook, &auditv1.DeleteWebhookRequest{WebhookId: id})
		}, method: "DELETE", path: "/v1/tenant/webhooks/%s"},
	}
}

// recordAttestationBody is the REST body of RecordAttestation: it names the
// issuer, the row's object, so it is built from the id.
func recordAttestationBody(mt *matrixTenant, issuer string) string {
	return `{"attestation":{"issuer_id":"` + issuer + `","subject":"` + mt.marker + `","schema":"matrix/v1","data_categories":["contact"]}}`
}

// useLink downloads a minted link with no key, as a browser would.
func useLink(env *servertest.Env, url string) (proto.Message, error) {
	code, body, err := restRequest(env, "", "GET", url, "")
	if err != nil {
		return nil, err
	}
	if code != 0 {
		return nil, connect.NewError(code, errors.New(body))
	}
	return wrapperspb.String(body), nil
}

// customRole is the tenant-defined role of the matrix.
var customRole = struct {
	name  string
	perms []string
}{"exporter", []string{authz.PermExport, authz.PermRead}}

// keymasterRole is a custom role trusted with keys and nothing else: it may
// manage keys and roles, but grant only what it holds itself.
var keymasterRole = struct {
	name  string
	perms []string
}{"keymaster", []string{authz.PermAPIKeyManage}}

// matrixWho are the callers of the matrix: every role, two custom ones,
// and keys that must not authenticate.
var matrixWho = []string{"admin", "auditor", "viewer", "ingester", customRole.name, keymasterRole.name, "none", "revoked", "expired", "wrong"}

// matrixCell is one call of the matrix.
type matrixCell struct {
	own, other *matrixTenant
	who, side  string
	via        string // rpc or rest
	o          op
}

// TestAuthorizationMatrix calls every RPC and REST path with the key of
// every role of two tenants (and with no key, a revoked, an expired and a
// wrong one), on an object of the caller's tenant and on one of the other
// tenant, and checks the exact code of each cell. No call may succeed
// across tenants, and no successful answer may carry the other tenant's ids
// or data. Cells are independent (a call that consumes its object gets a
// fresh one; a call that changes settings always sets the same state), so
// they run concurrently.
func TestAuthorizationMatrix(t *testing.T) {
	t.Parallel()
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			env := servertest.Start(t, dialect, servertest.Options{NoWorkers: true,
				// The matrix sends the same wrong and revoked keys thousands
				// of times on purpose: lift the per-key request limit and the
				// budget of failed authentications, which TestAuthFlood covers.
				Server: server.Config{RateLimit: -1, AuthFailureRate: 1e6, AuthFailureBurst: 1e6}})
			a, b := setupMatrixTenant(t, env, "alpha"), setupMatrixTenant(t, env, "beta")
			var cells []matrixCell
			for _, pair := range [][2]*matrixTenant{{a, b}, {b, a}} {
				for _, who := range matrixWho {
					for _, o := range matrixOps() {
						sides := []string{"own"}
						if o.object != "" {
							sides = append(sides, "foreign")
						}
						for _, side := range sides {
							for _, via := range []string{"rpc", "rest"} {
								if (via == "rpc" && o.rpc == nil) || (via == "rest" && o.method == "") {
									continue
								}
								cells = append(cells, matrixCell{own: pair[0], other: pair[1], who: who, side: side, via: via, o: o})
							}
						}
					}
				}
			}
			var crossSuccesses atomic.Int64
			work := make(chan matrixCell)
			var wg sync.WaitGroup
			for range 8 {
				wg.Go(func() {
					for c := range work {
						crossSuccesses.Add(int64(runCell(t, env, c)))
					}
				})
			}
			for _, c := range cells {
				work <- c
			}
			close(work)
			wg.Wait()
			t.Logf("authorization matrix on %s: %d cells, %d cross-tenant successes", dialect, len(cells), crossSuccesses.Load())
			if n := crossSuccesses.Load(); n != 0 {
				t.Fatalf("%d cross-tenant successes", n)
			}
		})
	}
}

// runCell makes one call, checks its code and the answer, and returns how
// many cross-tenant successes it saw. It runs on a worker goroutine, so it
// reports with Errorf, never Fatal.
func runCell(t *testing.T, env *servertest.Env, c matrixCell) int {
	ctx := context.Background()
	owner := c.own
	if c.side == "foreign" {
		owner = c.other
	}
	key := c.own.keys[c.who]
	id, err := matrixObject(ctx, env, owner, c.o.object)
	if err != nil {
		t.Errorf("%s: make %s object: %v", c.o.name, c.o.object, err)
		return 0
	}
	want := expectedCode(c.who, c.o, c.side)
	var (
		got  connect.Code
		body string
	)
	if c.via == "rpc" {
		msg, err := c.o.rpc(ctx, newClients(env, c.own, key), id)
		got = connect.CodeOf(err)
		if err == nil {
			got = 0
			if msg != nil {
				b, _ := protojson.Marshal(msg)
				body = string(b)
			}
		}
	} else {
		got, body, err = restCall(env, c.own, key, c.o, id)
		if err != nil {
			t.Errorf("%s %s key=%s on %s object: %v", c.via, c.o.name, c.who, c.side, err)
			return 0
		}
	}
	cross := 0
	if got == 0 && c.side == "foreign" {
		cross++
	}
	if got != want {
		t.Errorf("%s %s %s key=%s on %s object: code %v, want %v", c.own.id[:8], c.via, c.o.name, c.who, c.side, codeName(got), codeName(want))
	}
	for _, m := range c.other.markers {
		if got == 0 && strings.Contains(body, m) {
			cross++
			t.Errorf("%s %s key=%s: answer carries %s of the other tenant: %.300s", c.via, c.o.name, c.who, m, body)
		}
	}
	return cross
}

func codeName(c connect.Code) string {
	if c == 0 {
		return "ok"
	}
	return c.String()
}

func expectedCode(who string, o op, side string) connect.Code {
	perms := map[string][]string{
		"admin":            {authz.PermExport, authz.PermRead, authz.PermWrite, authz.PermPolicyManage, authz.PermSettingsManage, authz.PermAPIKeyManage},
		"auditor":          {authz.PermExport, authz.PermRead},
		"viewer":           {authz.PermRead},
		"ingester":         {authz.PermWrite},
		customRole.name:    customRole.perms,
		keymasterRole.name: keymasterRole.perms,
	}
	granted, valid := perms[who]
	switch {
	case !valid:
		return connect.CodeUnauthenticated
	case o.perm != "" && !contains(granted, o.perm):
		return connect.CodePermissionDenied
	case side == "foreign":
		return connect.CodeNotFound
	}
	for _, p := range o.grants {
		if !contains(granted, p) {
			return connect.CodePermissionDenied
		}
	}
	return o.ok
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func newClients(env *servertest.Env, mt *matrixTenant, key string) clients {
	var opts []connect.ClientOption
	if key != "" {
		opts = append(opts, withKey(key))
	}
	return clients{
		env:          env,
		mt:           mt,
		exports:      auditv1connect.NewExportServiceClient(env.Client, env.URL, opts...),
		downloads:    auditv1connect.NewDownloadServiceClient(env.Client, env.URL, opts...),
		keys:         auditv1connect.NewApiKeyServiceClient(env.Client, env.URL, opts...),
		policies:     auditv1connect.NewPolicyServiceClient(env.Client, env.URL, opts...),
		events:       auditv1connect.NewAuditLogServiceClient(env.Client, env.URL, opts...),
		attestations: auditv1connect.NewAttestationServiceClient(env.Client, env.URL, opts...),
		tenants:      auditv1connect.NewTenantServiceClient(env.Client, env.URL, opts...),
	}
}

// restCall makes the REST form of o for a key of own and returns its code
// (0 for success, read from the google.rpc.Status body otherwise) and body.
func restCall(env *servertest.Env, own *matrixTenant, key string, o op, id string) (connect.Code, string, error) {
	if o.rest != nil {
		return o.rest(env, key, id)
	}
	path := o.path
	if strings.Contains(path, "%s") {
		path = fmt.Sprintf(path, id)
	}
	body := ""
	if o.body != nil {
		body = o.body(own, id)
	}
	return restRequest(env, key, o.method, path, body)
}

// restRequest makes one REST request, with key when it is not empty.
func restRequest(env *servertest.Env, key, method, path, body string) (connect.Code, string, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, env.URL+path, rd)
	if err != nil {
		return 0, "", err
	}
	if key != "" {
		req.Header.Set("X-API-Key", key)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := env.Client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, "", err
	}
	if resp.StatusCode == http.StatusOK {
		return 0, string(b), nil
	}
	var st struct {
		Code int `json:"code"`
	}
	if err := json.Unmarshal(b, &st); err != nil || st.Code == 0 {
		return 0, "", fmt.Errorf("%s %s: status %d with no google.rpc.Status: %.200s", method, path, resp.StatusCode, b)
	}
	return connect.Code(st.Code), string(b), nil //nolint:gosec // codes are small
}

// matrixObject returns an object of kind in tenant: shared ones for calls
// that change nothing (or always the same thing), a fresh one for calls
// that consume it.
func matrixObject(ctx context.Context, env *servertest.Env, mt *matrixTenant, kind string) (string, error) {
	switch kind {
	case "":
		return "", nil
	case "job":
		return mt.job, nil
	case "policy":
		return mt.policy, nil
	case "issuer":
		return mt.issuer, nil
	case "attestation":
		return mt.attestation, nil
	case "webhook":
		return mt.webhook, nil
	case "pending":
		j, _, err := env.Store.CreateJob(ctx, store.NewJob{TenantID: mt.id, RequestedBy: "p", ReportType: "soc2", Format: "json",
			PeriodStart: periodFrom, PeriodEnd: periodTo, AppliedStart: periodFrom, AppliedEnd: periodTo, Estimate: time.Now()})
		if err != nil {
			return "", err
		}
		return j.ID, nil
	case "key":
		_, row, err := env.Store.CreateAPIKey(ctx, store.NewKey{TenantID: mt.id, Role: "viewer", Principal: unique("victim")})
		if err != nil {
			return "", err
		}
		return row.ID, nil
	case "freshpolicy":
		p, err := env.Store.CreatePolicy(ctx, store.NewPolicy{TenantID: mt.id, Name: unique("doomed"), Kind: "MINT", Effect: "deny"})
		if err != nil {
			return "", err
		}
		return p.ID, nil
	case "role":
		name := unique("doomed")
		if err := env.Enforcer.CreateRole(ctx, mt.id, name, []string{authz.PermRead}); err != nil {
			return "", err
		}
		return name, nil
	case "freshattestation":
		a, err := env.Store.RecordAttestation(ctx, mt.id, store.NewAttestation{IssuerID: mt.issuer, Subject: mt.marker, Schema: "matrix/v1"})
		if err != nil {
			return "", err
		}
		return a.ID, nil
	case "freshwebhook":
		w, _, err := env.Store.CreateWebhook(ctx, mt.id, store.WebhookChange{URL: "https://hooks.example.com/doomed", Description: mt.marker, Events: []string{"export.failed"}})
		if err != nil {
			return "", err
		}
		return w.ID, nil
	}
	return "", fmt.Errorf("unknown object kind %q", kind)
}

func setupMatrixTenant(t *testing.T, env *servertest.Env, name string) *matrixTenant {
	t.Helper()
	ctx := context.Background()
	mt := &matrixTenant{id: env.Tenant(t, name, true), keys: map[string]string{}}
	mt.marker = "marker-" + name + "-" + mt.id[:8]
	if err := env.Enforcer.CreateRole(ctx, mt.id, customRole.name, customRole.perms); err != nil {
		t.Fatal(err)
	}
	if err := env.Enforcer.CreateRole(ctx, mt.id, keymasterRole.name, keymasterRole.perms); err != nil {
		t.Fatal(err)
	}
	for _, role := range []string{"admin", "auditor", "viewer", "ingester", customRole.name, keymasterRole.name, "revoked", "expired", "wrong"} {
		r := role
		if role == "revoked" || role == "expired" || role == "wrong" {
			r = "admin"
		}
		k, row, err := env.Store.CreateAPIKey(ctx, store.NewKey{TenantID: mt.id, Role: r, Principal: role + "@" + name + ".example"})
		if err != nil {
			t.Fatal(err)
		}
		mt.keys[role] = k.String()
		mt.keyIDs = append(mt.keyIDs, row.ID)
		switch role {
		case "revoked":
			if _, err := env.Store.RevokeAPIKey(ctx, mt.id, row.ID); err != nil {
				t.Fatal(err)
			}
		case "expired":
			past := time.Now().Add(-time.Minute)
			if err := env.Store.SetAPIKeyExpiry(ctx, mt.id, row.ID, past); err != nil {
				t.Fatal(err)
			}
		case "wrong":
			k.Secret = strings.Repeat("a", len(k.Secret))
			mt.keys[role] = k.String()
		}
	}
	mt.keys["none"] = ""

	// A completed job with a real artifact and manifest, both naming the
	// tenant.
	j, _, err := env.Store.CreateJob(ctx, store.NewJob{TenantID: mt.id, RequestedBy: "p", ReportType: "soc2", Format: "json",
		PeriodStart: periodFrom, PeriodEnd: periodTo, AppliedStart: periodFrom, AppliedEnd: periodTo, Estimate: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	claimed, err := env.Store.ClaimJob(ctx, "matrix", time.Minute, 0)
	if err != nil || claimed == nil || claimed.ID != j.ID {
		t.Fatalf("claim %s: %v %v", j.ID, claimed, err)
	}
	data := []byte(`{"report_type":"soc2","tenant_id":"` + mt.id + `"}`)
	sum := sha256.Sum256(data)
	key := "artifacts/" + j.ID + ".json"
	if err := env.Bucket.WriteAll(ctx, key, data, nil); err != nil {
		t.Fatal(err)
	}
	manifest := []byte(`{"tenant_id":"` + mt.id + `","job_id":"` + j.ID + `"}`)
	if err := env.Store.CompleteJob(ctx, claimed, store.Artifact{Key: key, Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:]), Manifest: manifest}, 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	mt.job = j.ID
	p, err := env.Store.CreatePolicy(ctx, store.NewPolicy{TenantID: mt.id, Name: "kept", Kind: "MINT", Effect: "allow"})
	if err != nil {
		t.Fatal(err)
	}
	mt.policy = p.ID
	iss, err := env.Store.CreateIssuer(ctx, mt.id, "issuer-"+name, "did:web:"+name+".example", "TIER_1")
	if err != nil {
		t.Fatal(err)
	}
	mt.issuer = iss.ID
	att, err := env.Store.RecordAttestation(ctx, mt.id, store.NewAttestation{IssuerID: mt.issuer, Subject: mt.marker, Schema: "matrix/v1"})
	if err != nil {
		t.Fatal(err)
	}
	mt.attestation = att.ID
	w, _, err := env.Store.CreateWebhook(ctx, mt.id, store.WebhookChange{URL: "https://hooks.example.com/matrix", Description: mt.marker, Events: []string{"export.completed"}})
	if err != nil {
		t.Fatal(err)
	}
	mt.webhook = w.ID
	// Events of the actor both tenants share, carrying the marker: a query
	// that crossed tenants would return the other's.
	evs := make([]reports.Event, 3)
	for i := range evs {
		evs[i] = reports.Event{OccurredAt: periodFrom.Add(time.Duration(i) * time.Hour), ActorID: seedActor, ActorType: "service",
			Action: "matrix.seed", ResourceType: "record", ResourceID: mt.marker, Outcome: "success", Category: "data"}
	}
	if _, _, err := env.Store.AppendEvents(ctx, mt.id, evs); err != nil {
		t.Fatal(err)
	}
	mt.markers = append([]string{mt.id, mt.marker, mt.job, mt.policy, mt.issuer, mt.attestation, mt.webhook}, mt.keyIDs...)
	return mt
}

// eventsSince returns the tenant's audit events after sequence after.
func eventsSince(t *testing.T, st *store.Store, tenantID string, after int64) []store.StoredEvent {
	t.Helper()
	var out []store.StoredEvent
	err := st.StreamEvents(context.Background(), tenantID, store.EventQuery{After: after}, func(e store.StoredEvent) error {
		out = append(out, e)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// lastSequence is the newest sequence of the tenant's audit log (0 when empty).
func lastSequence(t *testing.T, st *store.Store, tenantID string) int64 {
	t.Helper()
	evs := eventsSince(t, st, tenantID, 0)
	if len(evs) == 0 {
		return 0
	}
	return evs[len(evs)-1].Sequence
}

// TestNoPrivilegeClimb is the matrix's escalation table: a key or role may
// grant only permissions its creator holds, and bind a key only to the
// issuer its creator acts for unless the creator manages policies. Each
// attempt goes over Connect and over REST, on both stores; each is answered
// with the exact code, names what is missing when refused, changes nothing
// when refused, and leaves exactly one audit event (denied, access) behind.
func TestNoPrivilegeClimb(t *testing.T) {
	t.Parallel()
	all := authz.AllPermissions()
	type attempt struct {
		name, who string
		key       *auditv1.CreateApiKeyRequest // or
		role      *auditv1.CreateRoleRequest
		want      connect.Code
		missing   string // named in the refusal
	}
	attempts := []attempt{
		{name: "keymaster mints an admin key", who: "keymaster", key: &auditv1.CreateApiKeyRequest{Role: "admin"}, want: connect.CodePermissionDenied, missing: authz.PermPolicyManage},
		{name: "keymaster mints an auditor key", who: "keymaster", key: &auditv1.CreateApiKeyRequest{Role: "auditor"}, want: connect.CodePermissionDenied, missing: authz.PermExport},
		{name: "keymaster mints a viewer key", who: "keymaster", key: &auditv1.CreateApiKeyRequest{Role: "viewer"}, want: connect.CodePermissionDenied, missing: authz.PermRead},
		{name: "keymaster defines a role with every permission", who: "keymaster", role: &auditv1.CreateRoleRequest{Permissions: all}, want: connect.CodePermissionDenied, missing: authz.PermSettingsManage},
		{name: "keymaster redefines its own role with every permission", who: "keymaster", role: &auditv1.CreateRoleRequest{Name: "keymaster", Permissions: all}, want: connect.CodePermissionDenied, missing: authz.PermWrite},
		{name: "keymaster binds a key to an issuer", who: "keymaster", key: &auditv1.CreateApiKeyRequest{Role: "keymaster", IssuerId: "issuer"}, want: connect.CodePermissionDenied, missing: authz.PermPolicyManage},
		{name: "keymaster mints a key of its own role", who: "keymaster", key: &auditv1.CreateApiKeyRequest{Role: "keymaster"}},
		{name: "keymaster defines a role of what it holds", who: "keymaster", role: &auditv1.CreateRoleRequest{Permissions: []string{authz.PermAPIKeyManage}}},
		{name: "steward mints a viewer key", who: "steward", key: &auditv1.CreateApiKeyRequest{Role: "viewer"}},
		{name: "steward mints an auditor key", who: "steward", key: &auditv1.CreateApiKeyRequest{Role: "auditor"}},
		{name: "steward defines a subset role", who: "steward", role: &auditv1.CreateRoleRequest{Permissions: []string{authz.PermRead}}},
		{name: "steward mints an admin key", who: "steward", key: &auditv1.CreateApiKeyRequest{Role: "admin"}, want: connect.CodePermissionDenied, missing: authz.PermWrite},
		{name: "steward defines a writer role", who: "steward", role: &auditv1.CreateRoleRequest{Permissions: []string{authz.PermRead, authz.PermWrite}}, want: connect.CodePermissionDenied, missing: authz.PermWrite},
		{name: "bound steward mints a key for its issuer", who: "bound", key: &auditv1.CreateApiKeyRequest{Role: "viewer", IssuerId: "issuer"}},
		{name: "bound steward mints a key for no issuer", who: "bound", key: &auditv1.CreateApiKeyRequest{Role: "viewer"}, want: connect.CodePermissionDenied, missing: authz.PermPolicyManage},
		{name: "admin mints an admin key for an issuer", who: "admin", key: &auditv1.CreateApiKeyRequest{Role: "admin", IssuerId: "issuer"}},
		{name: "admin defines a role with every permission", who: "admin", role: &auditv1.CreateRoleRequest{Permissions: all}},
	}
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			env := servertest.Start(t, dialect, servertest.Options{NoWorkers: true})
			ctx := context.Background()
			tenant := env.Tenant(t, "climb", true)
			steward := []string{authz.PermAPIKeyManage, authz.PermExport, authz.PermRead}
			for name, perms := range map[string][]string{keymasterRole.name: keymasterRole.perms, "steward": steward} {
				if err := env.Enforcer.CreateRole(ctx, tenant, name, perms); err != nil {
					t.Fatal(err)
				}
			}
			iss, err := env.Store.CreateIssuer(ctx, tenant, "partner", "did:web:partner.example", "TIER_1")
			if err != nil {
				t.Fatal(err)
			}
			keys := map[string]string{}
			for who, role := range map[string]string{"keymaster": "keymaster", "steward": "steward", "bound": "steward", "admin": "admin"} {
				nk := store.NewKey{TenantID: tenant, Role: role, Principal: who + "@climb.example"}
				if who == "bound" {
					nk.IssuerID = iss.ID
				}
				k, _, err := env.Store.CreateAPIKey(ctx, nk)
				if err != nil {
					t.Fatal(err)
				}
				keys[who] = k.String()
			}
			for _, a := range attempts {
				for _, via := range []string{"rpc", "rest"} {
					name := fmt.Sprintf("%s over %s", a.name, via)
					before := lastSequence(t, env.Store, tenant)
					keysBefore, err := env.Store.APIKeys(ctx, tenant)
					if err != nil {
						t.Fatal(err)
					}
					rolesBefore := fmt.Sprint(env.Enforcer.Roles(tenant))
					var (
						got    connect.Code
						msg    string
						action string
					)
					if a.key != nil {
						req := proto.Clone(a.key).(*auditv1.CreateApiKeyRequest)
						req.Principal = unique("minted")
						if req.IssuerId != "" {
							req.IssuerId = iss.ID
						}
						action = "apikey.create"
						if via == "rpc" {
							_, err = newClients(env, nil, keys[a.who]).keys.CreateApiKey(ctx, connect.NewRequest(req))
						} else {
							b, _ := protojson.Marshal(req)
							got, msg, err = restRequest(env, keys[a.who], "POST", "/v1/api-keys", string(b))
						}
					} else {
						req := proto.Clone(a.role).(*auditv1.CreateRoleRequest)
						if req.Name == "" {
							req.Name = unique("climber")
						}
						action = "role.create"
						if via == "rpc" {
							_, err = newClients(env, nil, keys[a.who]).keys.CreateRole(ctx, connect.NewRequest(req))
						} else {
							b, _ := protojson.Marshal(req)
							got, msg, err = restRequest(env, keys[a.who], "POST", "/v1/roles", string(b))
						}
					}
					if via == "rpc" {
						got = connect.CodeOf(err)
						if err == nil {
							got = 0
						} else {
							msg = err.Error()
						}
					} else if err != nil {
						t.Fatalf("%s: %v", name, err)
					}
					if got != a.want {
						t.Errorf("%s: code %v, want %v (%.300s)", name, codeName(got), codeName(a.want), msg)
						continue
					}
					evs := eventsSince(t, env.Store, tenant, before)
					if len(evs) != 1 {
						t.Errorf("%s: %d audit events, want 1", name, len(evs))
						continue
					}
					e := evs[0]
					if a.want == 0 {
						if e.Outcome != "success" || e.Action != action {
							t.Errorf("%s: audited %s %s, want success %s", name, e.Outcome, e.Action, action)
						}
						continue
					}
					if !strings.Contains(msg, a.missing) {
						t.Errorf("%s: refusal %q does not name %s", name, msg, a.missing)
					}
					if e.Outcome != "denied" || e.Category != "access" || e.Action != action || e.Metadata["code"] != "permission_denied" {
						t.Errorf("%s: audited %s/%s %s code %v, want denied/access %s permission_denied", name, e.Outcome, e.Category, e.Action, e.Metadata["code"], action)
					}
					keysAfter, err := env.Store.APIKeys(ctx, tenant)
					if err != nil {
						t.Fatal(err)
					}
					if len(keysAfter) != len(keysBefore) {
						t.Errorf("%s: refused, yet the tenant has %d keys, had %d", name, len(keysAfter), len(keysBefore))
					}
					if after := fmt.Sprint(env.Enforcer.Roles(tenant)); after != rolesBefore {
						t.Errorf("%s: refused, yet the roles changed:\n%s\nwere\n%s", name, after, rolesBefore)
					}
				}
			}
		})
	}
}
