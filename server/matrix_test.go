package server_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/exportd/exportd/authz"
	entkey "github.com/exportd/exportd/ent/apikey"
	auditv1 "github.com/exportd/exportd/gen/go/audit/v1"
	"github.com/exportd/exportd/gen/go/audit/v1/auditv1connect"
	"github.com/exportd/exportd/internal/store"
	"github.com/exportd/exportd/internal/store/storetest"
	"github.com/exportd/exportd/server"
	"github.com/exportd/exportd/server/servertest"
)

// matrixTenant is one tenant of the matrix with its keys and objects.
type matrixTenant struct {
	id      string
	keys    map[string]string // principal kind → raw key
	keyIDs  []string
	job     string // a COMPLETED job
	policy  string // a disabled MINT policy
	markers []string
}

// clients are the generated clients of one key.
type clients struct {
	exports   auditv1connect.ExportServiceClient
	downloads auditv1connect.DownloadServiceClient
	keys      auditv1connect.ApiKeyServiceClient
	policies  auditv1connect.PolicyServiceClient
}

// op is one RPC or REST path of the API.
type op struct {
	name   string
	perm   string // "" for any valid key
	object string // what the call is about: "" (nothing), job, pending, key, policy, freshpolicy, role
	ok     connect.Code
	rpc    func(ctx context.Context, c clients, id string) (proto.Message, error)
	method string // REST when set
	path   string // with %s for the object
	body   func() string
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

func matrixOps() []op {
	period := func() *auditv1.CreateExportRequest {
		return &auditv1.CreateExportRequest{ReportType: "soc2", StartDate: timestamppb.New(periodFrom), EndDate: timestamppb.New(periodTo)}
	}
	exportBody := func() string {
		return `{"report_type":"soc2","start_date":"2026-01-01T00:00:00Z","end_date":"2026-03-31T23:59:59Z","format":"json"}`
	}
	empty := func() string { return `{}` }
	return []op{
		{name: "CreateExport", perm: authz.PermExport, rpc: func(ctx context.Context, c clients, _ string) (proto.Message, error) {
			return unary(c.exports.CreateExport, period())
		}, method: "POST", path: "/v1/audit/exports", body: exportBody},
		{name: "GetExport", perm: authz.PermRead, object: "job", rpc: func(ctx context.Context, c clients, id string) (proto.Message, error) {
			return unary(c.exports.GetExport, &auditv1.GetExportRequest{JobId: id})
		}, method: "GET", path: "/v1/audit/exports/%s"},
		{name: "ListExports", perm: authz.PermRead, rpc: func(ctx context.Context, c clients, _ string) (proto.Message, error) {
			return unary(c.exports.ListExports, &auditv1.ListExportsRequest{PageSize: 100})
		}, method: "GET", path: "/v1/audit/exports?page_size=100"},
		{name: "WatchExport", perm: authz.PermRead, object: "job", rpc: func(ctx context.Context, c clients, id string) (proto.Message, error) {
			s, err := c.exports.WatchExport(ctx, connect.NewRequest(&auditv1.WatchExportRequest{JobId: id}))
			if err != nil {
				return nil, err
			}
			var last proto.Message
			for s.Receive() {
				last = s.Msg()
			}
			return last, s.Err()
		}},
		{name: "CancelExport", perm: authz.PermExport, object: "pending", rpc: func(ctx context.Context, c clients, id string) (proto.Message, error) {
			return unary(c.exports.CancelExport, &auditv1.CancelExportRequest{JobId: id})
		}, method: "POST", path: "/v1/audit/exports/%s:cancel", body: empty},
		{name: "WhoAmI", rpc: func(ctx context.Context, c clients, _ string) (proto.Message, error) {
			return unary(c.exports.WhoAmI, &auditv1.WhoAmIRequest{})
		}, method: "GET", path: "/v1/whoami"},
		{name: "Download", perm: authz.PermExport, object: "job", rpc: func(ctx context.Context, c clients, id string) (proto.Message, error) {
			s, err := c.downloads.Download(ctx, connect.NewRequest(&auditv1.DownloadRequest{JobId: id}))
			if err != nil {
				return nil, err
			}
			var last proto.Message
			for s.Receive() {
				last = s.Msg()
			}
			return last, s.Err()
		}, method: "GET", path: "/v1/audit/exports/%s/download"},
		{name: "CreateDownloadLink", perm: authz.PermExport, object: "job", rpc: func(ctx context.Context, c clients, id string) (proto.Message, error) {
			return unary(c.downloads.CreateDownloadLink, &auditv1.CreateDownloadLinkRequest{JobId: id})
		}, method: "POST", path: "/v1/audit/exports/%s/links", body: empty},
		{name: "ListDownloads", perm: authz.PermRead, object: "job", rpc: func(ctx context.Context, c clients, id string) (proto.Message, error) {
			return unary(c.downloads.ListDownloads, &auditv1.ListDownloadsRequest{JobId: id})
		}, method: "GET", path: "/v1/audit/exports/%s/downloads"},
		{name: "CreateApiKey", perm: authz.PermAPIKeyManage, rpc: func(ctx context.Context, c clients, _ string) (proto.Message, error) {
			return unary(c.keys.CreateApiKey, &auditv1.CreateApiKeyRequest{Role: "viewer", Principal: unique("svc")})
		}, method: "POST", path: "/v1/api-keys", body: func() string { return `{"role":"viewer","principal":"` + unique("svc") + `"}` }},
		{name: "ListApiKeys", perm: authz.PermAPIKeyManage, rpc: func(ctx context.Context, c clients, _ string) (proto.Message, error) {
			return unary(c.keys.ListApiKeys, &auditv1.ListApiKeysRequest{})
		}, method: "GET", path: "/v1/api-keys"},
		{name: "RevokeApiKey", perm: authz.PermAPIKeyManage, object: "key", rpc: func(ctx context.Context, c clients, id string) (proto.Message, error) {
			return unary(c.keys.RevokeApiKey, &auditv1.RevokeApiKeyRequest{KeyId: id})
		}, method: "POST", path: "/v1/api-keys/%s:revoke", body: empty},
		{name: "CreateRole", perm: authz.PermAPIKeyManage, rpc: func(ctx context.Context, c clients, _ string) (proto.Message, error) {
			return unary(c.keys.CreateRole, &auditv1.CreateRoleRequest{Name: unique("role"), Permissions: []string{authz.PermRead}})
		}, method: "POST", path: "/v1/roles", body: func() string { return `{"name":"` + unique("role") + `","permissions":["tenant.audit.read"]}` }},
		{name: "ListRoles", perm: authz.PermAPIKeyManage, rpc: func(ctx context.Context, c clients, _ string) (proto.Message, error) {
			return unary(c.keys.ListRoles, &auditv1.ListRolesRequest{})
		}, method: "GET", path: "/v1/roles"},
		{name: "DeleteRole", perm: authz.PermAPIKeyManage, object: "role", rpc: func(ctx context.Context, c clients, id string) (proto.Message, error) {
			return unary(c.keys.DeleteRole, &auditv1.DeleteRoleRequest{Name: id})
		}, method: "DELETE", path: "/v1/roles/%s"},
		{name: "CreatePolicy", perm: authz.PermPolicyManage, rpc: func(ctx context.Context, c clients, _ string) (proto.Message, error) {
			return unary(c.policies.CreatePolicy, &auditv1.CreatePolicyRequest{Name: unique("pol"), Kind: "MINT", Effect: "allow"})
		}, method: "POST", path: "/v1/policies", body: func() string { return `{"name":"` + unique("pol") + `","kind":"MINT","effect":"allow"}` }},
		{name: "ListPolicies", perm: authz.PermPolicyManage, rpc: func(ctx context.Context, c clients, _ string) (proto.Message, error) {
			return unary(c.policies.ListPolicies, &auditv1.ListPoliciesRequest{})
		}, method: "GET", path: "/v1/policies"},
		{name: "GetPolicy", perm: authz.PermPolicyManage, object: "policy", rpc: func(ctx context.Context, c clients, id string) (proto.Message, error) {
			return unary(c.policies.GetPolicy, &auditv1.GetPolicyRequest{PolicyId: id})
		}, method: "GET", path: "/v1/policies/%s"},
		{name: "UpdatePolicy", perm: authz.PermPolicyManage, object: "policy", rpc: func(ctx context.Context, c clients, id string) (proto.Message, error) {
			off := false
			return unary(c.policies.UpdatePolicy, &auditv1.UpdatePolicyRequest{PolicyId: id, Enabled: &off})
		}, method: "PATCH", path: "/v1/policies/%s", body: func() string { return `{"enabled":false}` }},
		{name: "DeletePolicy", perm: authz.PermPolicyManage, object: "freshpolicy", rpc: func(ctx context.Context, c clients, id string) (proto.Message, error) {
			return unary(c.policies.DeletePolicy, &auditv1.DeletePolicyRequest{PolicyId: id})
		}, method: "DELETE", path: "/v1/policies/%s"},
		{name: "CreateIssuer", perm: authz.PermPolicyManage, rpc: func(ctx context.Context, c clients, _ string) (proto.Message, error) {
			return unary(c.policies.CreateIssuer, &auditv1.CreateIssuerRequest{Name: unique("iss"), TrustTier: "TIER_2"})
		}, method: "POST", path: "/v1/issuers", body: func() string { return `{"name":"` + unique("iss") + `","trust_tier":"TIER_2"}` }},
		{name: "ListIssuers", perm: authz.PermPolicyManage, rpc: func(ctx context.Context, c clients, _ string) (proto.Message, error) {
			return unary(c.policies.ListIssuers, &auditv1.ListIssuersRequest{})
		}, method: "GET", path: "/v1/issuers"},
		{name: "CheckExport", perm: authz.PermRead, rpc: func(ctx context.Context, c clients, _ string) (proto.Message, error) {
			return unary(c.policies.CheckExport, &auditv1.CheckExportRequest{})
		}, method: "POST", path: "/v1/policies:check-export", body: empty},
	}
}

// customRole is the tenant-defined role of the matrix.
var customRole = struct {
	name  string
	perms []string
}{"exporter", []string{authz.PermExport, authz.PermRead}}

// TestAuthorizationMatrix calls every RPC and REST path with the key of
// every role of two tenants (and with no key, a revoked, an expired and a
// wrong one), on an object of the caller's tenant and on one of the other
// tenant, and checks the exact code of each cell. No call may succeed
// across tenants, and no successful answer may carry the other tenant's ids.
func TestAuthorizationMatrix(t *testing.T) {
	t.Parallel()
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			env := servertest.Start(t, dialect, servertest.Options{NoWorkers: true, Server: server.Config{RateLimit: -1}})
			ctx := context.Background()
			a, b := setupMatrixTenant(t, env, "alpha"), setupMatrixTenant(t, env, "beta")
			ops := matrixOps()
			var cells, crossSuccesses int
			for _, pair := range [][2]*matrixTenant{{a, b}, {b, a}} {
				own, other := pair[0], pair[1]
				for _, who := range []string{"admin", "auditor", "viewer", "ingester", customRole.name, "none", "revoked", "expired", "wrong"} {
					key := own.keys[who]
					cl := newClients(env, key)
					for _, o := range ops {
						sides := []string{"own"}
						if o.object != "" {
							sides = append(sides, "foreign")
						}
						for _, side := range sides {
							owner := own
							if side == "foreign" {
								owner = other
							}
							want := expectedCode(who, o, side)
							for _, via := range []string{"rpc", "rest"} {
								if via == "rest" && o.method == "" {
									continue
								}
								id := matrixObject(t, env, owner, o.object)
								var (
									got  connect.Code
									body string
								)
								if via == "rpc" {
									msg, err := o.rpc(ctx, cl, id)
									got = connect.CodeOf(err)
									if err == nil {
										got = 0
										if msg != nil {
											b, _ := protojson.Marshal(msg)
											body = string(b)
										}
									}
								} else {
									got, body = restCall(t, env, key, o, id)
								}
								cells++
								if got == 0 && side == "foreign" {
									crossSuccesses++
								}
								if got != want {
									t.Errorf("%s %s %s key=%s on %s object: code %v, want %v", own.id[:8], via, o.name, who, side, codeName(got), codeName(want))
								}
								for _, m := range other.markers {
									if got == 0 && strings.Contains(body, m) {
										crossSuccesses++
										t.Errorf("%s %s key=%s: answer carries %s of the other tenant: %.300s", via, o.name, who, m, body)
									}
								}
							}
						}
					}
				}
			}
			t.Logf("authorization matrix on %s: %d cells, %d cross-tenant successes", dialect, cells, crossSuccesses)
			if crossSuccesses != 0 {
				t.Fatalf("%d cross-tenant successes", crossSuccesses)
			}
		})
	}
}

func codeName(c connect.Code) string {
	if c == 0 {
		return "ok"
	}
	return c.String()
}

func expectedCode(who string, o op, side string) connect.Code {
	perms := map[string][]string{
		"admin":         {authz.PermExport, authz.PermRead, authz.PermWrite, authz.PermPolicyManage, authz.PermSettingsManage, authz.PermAPIKeyManage},
		"auditor":       {authz.PermExport, authz.PermRead},
		"viewer":        {authz.PermRead},
		"ingester":      {authz.PermWrite},
		customRole.name: customRole.perms,
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

func newClients(env *servertest.Env, key string) clients {
	var opts []connect.ClientOption
	if key != "" {
		opts = append(opts, withKey(key))
	}
	return clients{
		exports:   auditv1connect.NewExportServiceClient(env.Client, env.URL, opts...),
		downloads: auditv1connect.NewDownloadServiceClient(env.Client, env.URL, opts...),
		keys:      auditv1connect.NewApiKeyServiceClient(env.Client, env.URL, opts...),
		policies:  auditv1connect.NewPolicyServiceClient(env.Client, env.URL, opts...),
	}
}

// restCall makes the REST form of o and returns its code (0 for success,
// read from the google.rpc.Status body otherwise) and body.
func restCall(t *testing.T, env *servertest.Env, key string, o op, id string) (connect.Code, string) {
	t.Helper()
	path := o.path
	if strings.Contains(path, "%s") {
		path = fmt.Sprintf(path, id)
	}
	var body io.Reader
	if o.body != nil {
		body = strings.NewReader(o.body())
	}
	req, err := http.NewRequest(o.method, env.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("X-API-Key", key)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := env.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK {
		return 0, string(b)
	}
	var st struct {
		Code int `json:"code"`
	}
	if err := json.Unmarshal(b, &st); err != nil || st.Code == 0 {
		t.Fatalf("%s %s: status %d with no google.rpc.Status: %.200s", o.method, path, resp.StatusCode, b)
	}
	return connect.Code(st.Code), string(b) //nolint:gosec // codes are small
}

// matrixObject returns an object of kind in tenant: shared ones for calls
// that change nothing, a fresh one for calls that consume it.
func matrixObject(t *testing.T, env *servertest.Env, mt *matrixTenant, kind string) string {
	t.Helper()
	ctx := context.Background()
	switch kind {
	case "":
		return ""
	case "job":
		return mt.job
	case "policy":
		return mt.policy
	case "pending":
		j, _, err := env.Store.CreateJob(ctx, store.NewJob{TenantID: mt.id, RequestedBy: "p", ReportType: "soc2", Format: "json",
			PeriodStart: periodFrom, PeriodEnd: periodTo, AppliedStart: periodFrom, AppliedEnd: periodTo, Estimate: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		return j.ID
	case "key":
		_, row, err := env.Store.CreateAPIKey(ctx, store.NewKey{TenantID: mt.id, Role: "viewer", Principal: unique("victim")})
		if err != nil {
			t.Fatal(err)
		}
		return row.ID
	case "freshpolicy":
		p, err := env.Store.CreatePolicy(ctx, store.NewPolicy{TenantID: mt.id, Name: unique("doomed"), Kind: "MINT", Effect: "deny"})
		if err != nil {
			t.Fatal(err)
		}
		return p.ID
	case "role":
		name := unique("doomed")
		if err := env.Enforcer.CreateRole(ctx, mt.id, name, []string{authz.PermRead}); err != nil {
			t.Fatal(err)
		}
		return name
	}
	t.Fatalf("unknown object kind %q", kind)
	return ""
}

func setupMatrixTenant(t *testing.T, env *servertest.Env, name string) *matrixTenant {
	t.Helper()
	ctx := context.Background()
	mt := &matrixTenant{id: env.Tenant(t, name, true), keys: map[string]string{}}
	if err := env.Enforcer.CreateRole(ctx, mt.id, customRole.name, customRole.perms); err != nil {
		t.Fatal(err)
	}
	for _, role := range []string{"admin", "auditor", "viewer", "ingester", customRole.name, "revoked", "expired", "wrong"} {
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
			if err := env.Store.Ent.APIKey.Update().Where(entkey.ID(row.ID)).SetExpiresAt(past).Exec(store.WithTenant(ctx, mt.id)); err != nil {
				t.Fatal(err)
			}
		case "wrong":
			k.Secret = strings.Repeat("a", len(k.Secret))
			mt.keys[role] = k.String()
		}
	}
	mt.keys["none"] = ""

	// A completed job with a real artifact.
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
	if err := env.Store.CompleteJob(ctx, claimed, store.Artifact{Key: key, Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:]), Manifest: []byte(`{}`)}, 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	mt.job = j.ID
	p, err := env.Store.CreatePolicy(ctx, store.NewPolicy{TenantID: mt.id, Name: "kept", Kind: "MINT", Effect: "allow"})
	if err != nil {
		t.Fatal(err)
	}
	mt.policy = p.ID
	mt.markers = append([]string{mt.id, mt.job, mt.policy}, mt.keyIDs...)
	return mt
}
