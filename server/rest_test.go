package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"google.golang.org/protobuf/proto"

	auditv1 "github.com/exportd/exportd/gen/go/audit/v1"
	"github.com/exportd/exportd/gen/go/audit/v1/auditv1connect"
	"github.com/exportd/exportd/internal/blobstore"
	"github.com/exportd/exportd/internal/store/storetest"
	"github.com/exportd/exportd/server"
	"github.com/exportd/exportd/server/servertest"
)

// restCall makes one REST request and returns the answer and its body.
// Redirects are not followed: a redirect is an answer to check.
func restDo(t *testing.T, env *servertest.Env, method, path, key, body string, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, env.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("X-API-Key", key)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	client := *env.Client
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// restError is a google.rpc.Status answer with the field violations it
// carries.
type restError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Details []struct {
		Type       string `json:"@type"`
		Violations []struct {
			Field struct {
				Elements []struct {
					FieldName string `json:"field_name"`
				} `json:"elements"`
			} `json:"field"`
			RuleID string `json:"rule_id"`
		} `json:"violations"`
	} `json:"details"`
}

// fields lists the field names of the violations.
func (e restError) fields() []string {
	var out []string
	for _, d := range e.Details {
		for _, v := range d.Violations {
			for _, el := range v.Field.Elements {
				out = append(out, el.FieldName)
			}
		}
	}
	return out
}

// wantRESTError checks an answer is a JSON google.rpc.Status with the HTTP
// status, code and message fragment, and returns it.
func wantRESTError(t *testing.T, resp *http.Response, b []byte, httpCode int, code connect.Code, inMessage string) restError {
	t.Helper()
	var st restError
	if err := json.Unmarshal(b, &st); err != nil || resp.StatusCode != httpCode || st.Code != int(code) ||
		!strings.Contains(st.Message, inMessage) || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%s %s: %d %s %q (%v); want %d, JSON code %v, message with %q", resp.Request.Method, resp.Request.URL.Path,
			resp.StatusCode, resp.Header.Get("Content-Type"), b, err, httpCode, code, inMessage)
	}
	return st
}

// TestRESTJobAnswer checks GET /v1/audit/exports/{job_id} and …:cancel answer
// the job itself, flat like the create answer, with every scalar field shown,
// while Connect still wraps it in `export`; and that the create answer is the
// vendor page's three fields.
func TestRESTJobAnswer(t *testing.T) {
	t.Parallel()
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			env := servertest.Start(t, dialect, servertest.Options{NoWorkers: true})
			tenant := env.Tenant(t, "Acme", true)
			key := env.Key(t, tenant, "auditor", "audrey@example.com")

			resp, b := restDo(t, env, http.MethodPost, "/v1/audit/exports", key, `{
    "report_type": "soc2",
    "start_date": "2026-01-01T00:00:00Z",
    "end_date": "2026-03-31T23:59:59Z",
    "format": "json"
  }`, nil)
			var created map[string]any
			if err := json.Unmarshal(b, &created); err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("create: %d %s", resp.StatusCode, b)
			}
			if keys := sortedKeys(created); !slices.Equal(keys, []string{"estimated_completion", "job_id", "status"}) {
				t.Fatalf("create answered %s; want the vendor page's job_id, status and estimated_completion", b)
			}
			id := created["job_id"].(string)

			resp, b = restDo(t, env, http.MethodGet, "/v1/audit/exports/"+id, key, "", nil)
			var job map[string]any
			if err := json.Unmarshal(b, &job); err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("get: %d %s", resp.StatusCode, b)
			}
			if job["job_id"] != id || job["status"] != "PENDING" || job["export"] != nil {
				t.Fatalf("GET answered %s; want the job itself", b)
			}
			// Defaults are shown; timestamps that have not happened are not.
			for k, want := range map[string]any{"error": "", "rows_done": "0", "size_bytes": "0", "sha256": "", "attempt": 0.0} {
				if got, ok := job[k]; !ok || got != want {
					t.Errorf("GET: %s = %v (present %v), want %v", k, got, ok, want)
				}
			}
			for _, k := range []string{"started_at", "completed_at"} {
				if _, ok := job[k]; ok {
					t.Errorf("GET shows unset %s: %s", k, b)
				}
			}

			resp, b = restDo(t, env, http.MethodPost, "/v1/audit/exports/"+id+":cancel", key, `{}`, nil)
			var cancelled map[string]any
			if err := json.Unmarshal(b, &cancelled); err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("cancel: %d %s", resp.StatusCode, b)
			}
			if cancelled["job_id"] != id || cancelled["status"] != "FAILED" || !strings.HasPrefix(cancelled["error"].(string), "cancelled by") {
				t.Fatalf("cancel answered %s; want the job itself, FAILED", b)
			}

			// Connect answers are unchanged: the job is in `export`.
			exports := auditv1connect.NewExportServiceClient(env.Client, env.URL, withKey(key), connect.WithProtoJSON())
			got, err := exports.GetExport(context.Background(), connect.NewRequest(&auditv1.GetExportRequest{JobId: id}))
			if err != nil || got.Msg.GetExport().GetJobId() != id || got.Msg.GetExport().GetStatus() != auditv1.ExportStatus_FAILED {
				t.Fatalf("Connect GetExport: %v %v", got, err)
			}
			req, _ := http.NewRequest(http.MethodPost, env.URL+auditv1connect.ExportServiceGetExportProcedure, strings.NewReader(`{"job_id":"`+id+`"}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-API-Key", key)
			var wrapped map[string]map[string]any
			decode(t, do(t, env, req), http.StatusOK, &wrapped)
			if wrapped["export"]["job_id"] != id {
				t.Fatalf("Connect JSON GetExport answered %v; want the job in export", wrapped)
			}
		})
	}
}

func sortedKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestRESTDefaultValues checks REST answers show false, zero and empty
// values: a disabled policy says `"enabled": false`, an empty download
// history `"downloads": []`, a download record its `start_offset`.
func TestRESTDefaultValues(t *testing.T) {
	t.Parallel()
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			env := servertest.Start(t, dialect, servertest.Options{NoWorkers: true})
			tenant := env.Tenant(t, "Acme", true)
			admin := env.Key(t, tenant, "admin", "ada@example.com")
			id := env.CompletedJob(t, tenant, "json", []byte(`{"report_type":"soc2"}`))

			resp, b := restDo(t, env, http.MethodPost, "/v1/policies", admin,
				`{"name":"paused","kind":"BUNDLE_EXPORT","effect":"deny","disabled":true}`, nil)
			var created struct {
				Policy map[string]any `json:"policy"`
			}
			if err := json.Unmarshal(b, &created); err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("create policy: %d %s", resp.StatusCode, b)
			}
			if v, ok := created.Policy["enabled"]; !ok || v != false {
				t.Errorf("policy answer %s lacks \"enabled\": false", b)
			}
			if v, ok := created.Policy["trust_tiers"]; !ok || len(v.([]any)) != 0 {
				t.Errorf("policy answer %s lacks \"trust_tiers\": []", b)
			}

			resp, b = restDo(t, env, http.MethodGet, "/v1/audit/exports/"+id+"/downloads", admin, "", nil)
			if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(b)) != `{"downloads":[]}` {
				t.Errorf("empty history: %d %s; want {\"downloads\":[]}", resp.StatusCode, b)
			}
			if resp, b = restDo(t, env, http.MethodGet, "/v1/audit/exports/"+id+"/download", admin, "", nil); resp.StatusCode != http.StatusOK {
				t.Fatalf("download: %d %s", resp.StatusCode, b)
			}
			resp, b = restDo(t, env, http.MethodGet, "/v1/audit/exports/"+id+"/downloads", admin, "", nil)
			var hist struct {
				Downloads []map[string]any `json:"downloads"`
			}
			if err := json.Unmarshal(b, &hist); err != nil || resp.StatusCode != http.StatusOK || len(hist.Downloads) != 1 {
				t.Fatalf("history: %d %s", resp.StatusCode, b)
			}
			if d := hist.Downloads[0]; d["start_offset"] != "0" || d["completed"] != true || d["protocol"] != "rest" {
				t.Errorf("download record %v; want start_offset \"0\" shown, completed, rest", d)
			}
		})
	}
}

// TestRESTChallengeAndRetryAfter checks every 401 carries WWW-Authenticate
// and every 429 Retry-After in whole seconds, on transcoded routes and on the
// plain download and manifest handlers alike, and that Connect sees the same
// headers.
func TestRESTChallengeAndRetryAfter(t *testing.T) {
	t.Parallel()
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			// One call a minute per key, one at once: the second is refused
			// with a delay of about a minute.
			env := servertest.Start(t, dialect, servertest.Options{NoWorkers: true, Server: server.Config{RateLimit: 1.0 / 60, RateBurst: 1}})
			tenant := env.Tenant(t, "Acme", true)
			id := env.CompletedJob(t, tenant, "json", []byte(`{}`))
			paths := []string{"/v1/audit/exports/" + id, "/v1/audit/exports/" + id + "/download", "/v1/audit/exports/" + id + "/manifest"}
			for _, p := range paths {
				for _, key := range []string{"", "tl_live_notakey"} {
					resp, b := restDo(t, env, http.MethodGet, p, key, "", nil)
					wantRESTError(t, resp, b, http.StatusUnauthorized, connect.CodeUnauthenticated, "API key")
					if got := resp.Header.Get("WWW-Authenticate"); got != `ApiKey header="X-API-Key"` {
						t.Errorf("GET %s with key %q: WWW-Authenticate %q", p, key, got)
					}
				}
				key := env.Key(t, tenant, "auditor", "audrey@example.com")
				if resp, b := restDo(t, env, http.MethodGet, p, key, "", nil); resp.StatusCode != http.StatusOK {
					t.Fatalf("GET %s: %d %s", p, resp.StatusCode, b)
				}
				resp, b := restDo(t, env, http.MethodGet, p, key, "", nil)
				wantRESTError(t, resp, b, http.StatusTooManyRequests, connect.CodeResourceExhausted, "rate limit")
				if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || secs < 1 || secs > 60 {
					t.Errorf("GET %s: Retry-After %q; want whole seconds up to 60", p, resp.Header.Get("Retry-After"))
				}
			}

			exports := auditv1connect.NewExportServiceClient(env.Client, env.URL)
			_, err := exports.GetExport(context.Background(), connect.NewRequest(&auditv1.GetExportRequest{JobId: id}))
			var ce *connect.Error
			if !errors.As(err, &ce) || ce.Code() != connect.CodeUnauthenticated || ce.Meta().Get("WWW-Authenticate") == "" {
				t.Errorf("Connect without a key: %v; want unauthenticated with WWW-Authenticate", err)
			}
			exports = auditv1connect.NewExportServiceClient(env.Client, env.URL, withKey(env.Key(t, tenant, "auditor", "audrey@example.com")))
			_, _ = exports.GetExport(context.Background(), connect.NewRequest(&auditv1.GetExportRequest{JobId: id}))
			_, err = exports.GetExport(context.Background(), connect.NewRequest(&auditv1.GetExportRequest{JobId: id}))
			if !errors.As(err, &ce) || ce.Code() != connect.CodeResourceExhausted || ce.Meta().Get("Retry-After") == "" {
				t.Errorf("Connect over the limit: %v; want resource_exhausted with Retry-After", err)
			}
		})
	}
}

// TestRESTErrorShape checks every answer under /v1/ that is not a success is
// a JSON google.rpc.Status, never text or a redirect: unknown routes, wrong
// methods (with Allow), paths net/http would redirect, malformed ids, an
// unsatisfiable Range, a body without its Content-Type, an unknown query
// parameter.
func TestRESTErrorShape(t *testing.T) {
	t.Parallel()
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			env := servertest.Start(t, dialect, servertest.Options{NoWorkers: true})
			tenant := env.Tenant(t, "Acme", true)
			key := env.Key(t, tenant, "auditor", "audrey@example.com")
			id := env.CompletedJob(t, tenant, "json", []byte(`{"report_type":"soc2"}`))
			for _, c := range []struct {
				method, path, body string
				header             map[string]string
				status             int
				code               connect.Code
				inMessage          string
				allow              string // Allow header, when 405
			}{
				{"GET", "/v1/nothing-here", "", nil, 404, connect.CodeNotFound, "/v1/nothing-here", ""},
				{"GET", "/v1/audit/exports/" + id + "/nothing", "", nil, 404, connect.CodeNotFound, "", ""},
				{"DELETE", "/v1/audit/exports", "", nil, 405, connect.CodeUnimplemented, "", "GET, POST"},
				{"PUT", "/v1/audit/exports/" + id, "", nil, 405, connect.CodeUnimplemented, "", "GET"},
				{"POST", "/v1/audit/exports/" + id + "/download", "", nil, 405, connect.CodeUnimplemented, "POST", "GET, HEAD"},
				{"DELETE", "/v1/audit/exports/" + id + "/manifest", "", nil, 405, connect.CodeUnimplemented, "DELETE", "GET, HEAD"},
				{"POST", "/v1/links/dl_whatever", "", nil, 405, connect.CodeUnimplemented, "", "GET, HEAD"},
				// net/http's ServeMux would redirect these to a cleaned path.
				{"GET", "/v1/audit/exports//" + id, "", nil, 404, connect.CodeNotFound, "", ""},
				{"GET", "/v1/audit/exports/" + id + "/", "", nil, 404, connect.CodeNotFound, "", ""},
				{"GET", "/v1/audit/exports/", "", nil, 404, connect.CodeNotFound, "", ""},
				{"GET", "/v1/audit/exports/./" + id, "", nil, 404, connect.CodeNotFound, "", ""},
				{"GET", "/v1/audit/exports/" + id + "//download", "", nil, 404, connect.CodeNotFound, "", ""},
				// Malformed ids are simply not found.
				{"GET", "/v1/audit/exports/not%20an%20id", "", nil, 404, connect.CodeNotFound, "not found", ""},
				{"GET", "/v1/audit/exports/%2e%2e/download", "", nil, 404, connect.CodeNotFound, "", ""},
				{"GET", "/v1/audit/exports/job_%00/manifest", "", nil, 404, connect.CodeNotFound, "", ""},
				{"GET", "/v1/links/not-a-token", "", nil, 404, connect.CodeNotFound, "", ""},
				{"GET", "/v1/audit/exports/" + id + "/download", "", map[string]string{"Range": "bytes=100000-"}, 416, connect.CodeOutOfRange, "", ""},
				{"GET", "/v1/audit/exports?page_size=1&bogus=1", "", nil, 400, connect.CodeInvalidArgument, "bogus", ""},
				{"POST", "/v1/audit/exports", "", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, 415, connect.CodeInvalidArgument, "", ""},
			} {
				var body io.Reader
				if c.body != "" {
					body = strings.NewReader(c.body)
				}
				req, err := http.NewRequest(c.method, env.URL+c.path, body)
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("X-API-Key", key)
				for k, v := range c.header {
					req.Header.Set(k, v)
				}
				client := *env.Client
				client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
				resp, err := client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				wantRESTError(t, resp, b, c.status, c.code, c.inMessage)
				if got := resp.Header.Get("Allow"); got != c.allow {
					t.Errorf("%s %s: Allow %q, want %q", c.method, c.path, got, c.allow)
				}
				if c.status == 416 && resp.Header.Get("Content-Range") != "bytes */22" {
					t.Errorf("416 without Content-Range bytes */22: %q", resp.Header.Get("Content-Range"))
				}
			}
		})
	}
}

// TestUnknownFields checks a field the request message does not have is
// invalid_argument naming it, over REST (with a field violation) and over
// Connect JSON, and changes nothing: `{"enabled": false}` on CreatePolicy
// used to be dropped and create an enabled policy.
func TestUnknownFields(t *testing.T) {
	t.Parallel()
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			env := servertest.Start(t, dialect, servertest.Options{NoWorkers: true})
			tenant := env.Tenant(t, "Acme", true)
			admin := env.Key(t, tenant, "admin", "ada@example.com")
			body := `{"name":"freeze","kind":"BUNDLE_EXPORT","effect":"deny","enabled":false}`

			resp, b := restDo(t, env, http.MethodPost, "/v1/policies", admin, body, nil)
			st := wantRESTError(t, resp, b, http.StatusBadRequest, connect.CodeInvalidArgument, `unknown field "enabled"`)
			if !slices.Equal(st.fields(), []string{"enabled"}) {
				t.Errorf("REST violations name %v; want [enabled]: %s", st.fields(), b)
			}
			// A path variable makes the transcoder read the body another way.
			resp, b = restDo(t, env, http.MethodPatch, "/v1/policies/pol_whatever", admin, `{"name":"x","enable":true}`, nil)
			st = wantRESTError(t, resp, b, http.StatusBadRequest, connect.CodeInvalidArgument, `unknown field "enable"`)
			if !slices.Equal(st.fields(), []string{"enable"}) {
				t.Errorf("REST violations name %v; want [enable]: %s", st.fields(), b)
			}
			// Nested too.
			resp, b = restDo(t, env, http.MethodPut, "/v1/tenant/gdpr-profile", admin, `{"controller":{"name":"Acme","dpo":{"mail":"x"}}}`, nil)
			wantRESTError(t, resp, b, http.StatusBadRequest, connect.CodeInvalidArgument, `unknown field "mail"`)

			req, _ := http.NewRequest(http.MethodPost, env.URL+auditv1connect.PolicyServiceCreatePolicyProcedure, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-API-Key", admin)
			var ce struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			}
			decode(t, do(t, env, req), http.StatusBadRequest, &ce)
			if ce.Code != "invalid_argument" || !strings.Contains(ce.Message, `unknown field "enabled"`) {
				t.Errorf("Connect JSON answered %+v; want invalid_argument naming enabled", ce)
			}

			policies := auditv1connect.NewPolicyServiceClient(env.Client, env.URL, withKey(admin))
			list, err := policies.ListPolicies(context.Background(), connect.NewRequest(&auditv1.ListPoliciesRequest{}))
			if err != nil || len(list.Msg.GetPolicies()) != 0 {
				t.Fatalf("refused requests left policies: %v %v", list.Msg.GetPolicies(), err)
			}
		})
	}
}

// TestNothingToChange checks an update that sets nothing is refused as
// invalid_argument saying so, on every Update RPC, and changes nothing.
func TestNothingToChange(t *testing.T) {
	t.Parallel()
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			env := servertest.Start(t, dialect, servertest.Options{NoWorkers: true})
			tenant := env.Tenant(t, "Acme", true)
			admin := env.Key(t, tenant, "admin", "ada@example.com")
			ctx := context.Background()
			policies := auditv1connect.NewPolicyServiceClient(env.Client, env.URL, withKey(admin))
			p, err := policies.CreatePolicy(ctx, connect.NewRequest(&auditv1.CreatePolicyRequest{Name: "freeze", Kind: "BUNDLE_EXPORT", Effect: "deny"}))
			if err != nil {
				t.Fatal(err)
			}
			pid := p.Msg.GetPolicy().GetPolicyId()
			tenants := auditv1connect.NewTenantServiceClient(env.Client, env.URL, withKey(admin))
			w, err := tenants.CreateWebhook(ctx, connect.NewRequest(&auditv1.CreateWebhookRequest{Url: "https://hooks.example.com/x", Events: []string{"export.completed"}}))
			if err != nil {
				t.Fatal(err)
			}
			wid := w.Msg.GetWebhook().GetWebhookId()

			for _, c := range []struct{ method, path, body, inMessage string }{
				{"PATCH", "/v1/policies/" + pid, `{}`, "nothing to change"},
				{"PATCH", "/v1/policies/" + pid, `{"replace_trust_tiers":false}`, "nothing to change"},
				{"PATCH", "/v1/policies/" + pid, `{"trust_tiers":["TIER_1"]}`, "replace_trust_tiers"},
				{"PUT", "/v1/tenant/retention", `{}`, "nothing to change"},
				{"PUT", "/v1/tenant/webhooks/" + wid, `{}`, "nothing to change"},
				{"PUT", "/v1/tenant/gdpr-profile", `{}`, "profile"},
				{"PUT", "/v1/tenant/hipaa-profile", `{}`, "profile"},
			} {
				resp, b := restDo(t, env, c.method, c.path, admin, c.body, nil)
				wantRESTError(t, resp, b, http.StatusBadRequest, connect.CodeInvalidArgument, c.inMessage)
			}
			_, err = policies.UpdatePolicy(ctx, connect.NewRequest(&auditv1.UpdatePolicyRequest{PolicyId: pid}))
			assertError(t, err, connect.CodeInvalidArgument, "", "nothing to change")
			_, err = tenants.UpdateRetention(ctx, connect.NewRequest(&auditv1.UpdateRetentionRequest{}))
			assertError(t, err, connect.CodeInvalidArgument, "", "nothing to change")

			got, err := policies.GetPolicy(ctx, connect.NewRequest(&auditv1.GetPolicyRequest{PolicyId: pid}))
			if err != nil || !proto.Equal(got.Msg.GetPolicy(), p.Msg.GetPolicy()) {
				t.Errorf("refused updates changed the policy: %v → %v (%v)", p.Msg.GetPolicy(), got.Msg.GetPolicy(), err)
			}
			// A real change still works.
			if _, err := policies.UpdatePolicy(ctx, connect.NewRequest(&auditv1.UpdatePolicyRequest{PolicyId: pid, Enabled: proto.Bool(false)})); err != nil {
				t.Fatalf("disable: %v", err)
			}
			resp, b := restDo(t, env, http.MethodPatch, "/v1/policies/"+pid, admin, `{"enabled":true}`, nil)
			if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `"enabled":true`) {
				t.Fatalf("PATCH enabled: %d %s", resp.StatusCode, b)
			}
		})
	}
}

// stoppableS3 starts an S3 server in-process with one bucket; stop closes
// it, after which its port refuses connections.
func stoppableS3(t *testing.T) (blobURL string, stop func()) {
	t.Helper()
	backend := s3mem.New()
	if err := backend.CreateBucket("artifacts"); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gofakes3.New(backend).Server())
	t.Cleanup(srv.Close)
	return s3BucketURL(srv.URL), srv.Close
}

func s3BucketURL(endpoint string) string {
	q := url.Values{
		"endpoint":                     {endpoint},
		"region":                       {"us-east-1"},
		"use_path_style":               {"true"},
		"disable_https":                {"true"},
		"anonymous":                    {"true"},
		"request_checksum_calculation": {"when_required"},
		"response_checksum_validation": {"when_required"},
	}
	return "s3://artifacts?" + q.Encode()
}

// TestBlobStoreDown checks a blob store that refuses connections makes
// downloads unavailable (503, retryable), not internal, over REST and
// Connect, without the driver's error text; that what needs only the
// database still works; and that /readyz says not ready, the detail going to
// the log.
func TestBlobStoreDown(t *testing.T) {
	t.Parallel()
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			blobURL, stop := stoppableS3(t)
			bucket, err := blobstore.Open(context.Background(), blobURL, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { bucket.Close() })
			env := servertest.Start(t, dialect, servertest.Options{NoWorkers: true, Bucket: bucket})
			tenant := env.Tenant(t, "Acme", true)
			key := env.Key(t, tenant, "auditor", "audrey@example.com")
			id := env.CompletedJob(t, tenant, "json", []byte(`{"report_type":"soc2"}`))
			if resp, b := restDo(t, env, http.MethodGet, "/readyz", "", "", nil); resp.StatusCode != http.StatusOK || string(b) != "ready\n" {
				t.Fatalf("/readyz with the store up: %d %q", resp.StatusCode, b)
			}
			stop()

			resp, b := restDo(t, env, http.MethodGet, "/v1/audit/exports/"+id+"/download", key, "", nil)
			st := wantRESTError(t, resp, b, http.StatusServiceUnavailable, connect.CodeUnavailable, "unavailable")
			if strings.Contains(st.Message, "127.0.0.1") || strings.Contains(st.Message, "refused") {
				t.Errorf("the answer leaks the driver's error: %q", st.Message)
			}
			downloads := auditv1connect.NewDownloadServiceClient(env.Client, env.URL, withKey(key))
			stream, err := downloads.Download(context.Background(), connect.NewRequest(&auditv1.DownloadRequest{JobId: id}))
			if err != nil {
				t.Fatal(err)
			}
			for stream.Receive() {
			}
			if connect.CodeOf(stream.Err()) != connect.CodeUnavailable {
				t.Errorf("Connect Download: %v; want unavailable", stream.Err())
			}
			resp, b = restDo(t, env, http.MethodGet, "/v1/audit/exports/"+id+"/manifest", key, "", nil)
			if resp.StatusCode != http.StatusOK {
				t.Errorf("the manifest needs no blob store: %d %s", resp.StatusCode, b)
			}

			resp, b = restDo(t, env, http.MethodGet, "/readyz", "", "", nil)
			if resp.StatusCode != http.StatusServiceUnavailable || string(b) != "not ready\n" {
				t.Errorf("/readyz with the store down: %d %q; want 503 \"not ready\"", resp.StatusCode, b)
			}
			if logs := env.Log.String(); !strings.Contains(logs, "not ready") || !strings.Contains(logs, "blob store") {
				t.Errorf("the log lacks what was not ready:\n%s", logs)
			}
		})
	}
}

// TestReadyzBounded checks /readyz answers "not ready" when the blob store
// accepts connections and never answers, rather than waiting on it.
func TestReadyzBounded(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	held := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held <- c // read nothing, answer nothing
		}
	}()
	t.Cleanup(func() {
		for {
			select {
			case c := <-held:
				c.Close()
			default:
				return
			}
		}
	})
	bucket, err := blobstore.Open(context.Background(), s3BucketURL("http://"+ln.Addr().String()), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bucket.Close() })
	env := servertest.Start(t, "sqlite", servertest.Options{NoWorkers: true, Bucket: bucket})
	client := *env.Client
	// A guard against hanging the suite, far above the server's own bound.
	client.Timeout = time.Minute
	resp, err := client.Get(env.URL + "/readyz")
	if err != nil {
		t.Fatalf("/readyz did not answer: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || string(b) != "not ready\n" {
		t.Fatalf("/readyz with a silent blob store: %d %q", resp.StatusCode, b)
	}
	if logs := env.Log.String(); !strings.Contains(logs, `check="blob store" err="did not answer within`) {
		t.Errorf("the log does not say the checks timed out:\n%s", logs)
	}
}
