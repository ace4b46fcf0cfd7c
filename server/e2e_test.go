package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	validatepb "buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	auditv1 "github.com/exportd/exportd/gen/go/audit/v1"
	"github.com/exportd/exportd/gen/go/audit/v1/auditv1connect"
	"github.com/exportd/exportd/internal/store/storetest"
	"github.com/exportd/exportd/reports"
	"github.com/exportd/exportd/server/servertest"
)

var (
	periodFrom = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	periodTo   = time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
)

const seeded = 400

// withKey sets the X-API-Key header on every call of a client.
func withKey(key string) connect.ClientOption {
	return connect.WithInterceptors(connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			req.Header().Set("X-API-Key", key)
			return next(ctx, req)
		}
	}), keyStreams(key))
}

type keyStreams string

func (k keyStreams) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc { return next }
func (k keyStreams) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		conn := next(ctx, spec)
		conn.RequestHeader().Set("X-API-Key", string(k))
		return conn
	}
}
func (k keyStreams) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}

// TestExportFlow creates, watches and downloads a SOC 2 report over
// Connect, gRPC, gRPC-Web and REST, on SQLite and on PostgreSQL.
func TestExportFlow(t *testing.T) {
	t.Parallel()
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			env := servertest.Start(t, dialect, servertest.Options{})
			tenant := env.Tenant(t, "Acme", true)
			key := env.Key(t, tenant, "auditor", "audrey@example.com")
			env.Seed(t, tenant, seeded, periodFrom, periodTo)

			protocols := map[string][]connect.ClientOption{
				"connect":     {connect.WithProtoJSON()},
				"grpc":        {connect.WithGRPC()},
				"grpc-web":    {connect.WithGRPCWeb()},
				"connect-bin": nil,
			}
			for name, opts := range protocols {
				t.Run(name, func(t *testing.T) {
					opts := append(opts, withKey(key))
					exports := auditv1connect.NewExportServiceClient(env.Client, env.URL, opts...)
					downloads := auditv1connect.NewDownloadServiceClient(env.Client, env.URL, opts...)
					for _, format := range []string{"json", "csv"} {
						report := rpcFlow(t, exports, downloads, format)
						checkReport(t, format, report, tenant)
					}
				})
			}
			t.Run("rest", func(t *testing.T) {
				report, jobID := restFlow(t, env, key)
				checkReport(t, "json", report, tenant)
				verifyManifest(t, env, jobID, report)
			})
		})
	}
}

func rpcFlow(t *testing.T, exports auditv1connect.ExportServiceClient, downloads auditv1connect.DownloadServiceClient, format string) []byte {
	t.Helper()
	ctx := context.Background()
	created, err := exports.CreateExport(ctx, connect.NewRequest(&auditv1.CreateExportRequest{
		ReportType: "soc2",
		StartDate:  timestamppb.New(periodFrom),
		EndDate:    timestamppb.New(periodTo.Add(-time.Second)),
		Format:     format,
	}))
	if err != nil {
		t.Fatalf("CreateExport: %v", err)
	}
	id := created.Msg.GetJobId()
	if !strings.HasPrefix(id, "job_") || created.Msg.GetStatus() != auditv1.ExportStatus_PENDING || created.Msg.GetEstimatedCompletion() == nil {
		t.Fatalf("CreateExport answered %v", created.Msg)
	}
	watch, err := exports.WatchExport(ctx, connect.NewRequest(&auditv1.WatchExportRequest{JobId: id}))
	if err != nil {
		t.Fatal(err)
	}
	var last *auditv1.ExportJob
	for watch.Receive() {
		last = watch.Msg().GetExport()
	}
	if err := watch.Err(); err != nil {
		t.Fatalf("WatchExport: %v", err)
	}
	if last.GetStatus() != auditv1.ExportStatus_COMPLETED {
		t.Fatalf("watch ended at %v (%s)", last.GetStatus(), last.GetError())
	}
	got, err := exports.GetExport(ctx, connect.NewRequest(&auditv1.GetExportRequest{JobId: id}))
	if err != nil {
		t.Fatal(err)
	}
	if got.Msg.GetExport().GetSha256() != last.GetSha256() || last.GetSizeBytes() == 0 {
		t.Fatalf("GetExport and the watch disagree: %v vs %v", got.Msg.GetExport(), last)
	}
	if m := got.Msg.GetExport().GetManifest(); m.GetReportSha256() != last.GetSha256() || m.GetSignature() == "" || m.GetCounts()["audit_log"] == 0 {
		t.Fatalf("manifest %v", m)
	}

	stream, err := downloads.Download(ctx, connect.NewRequest(&auditv1.DownloadRequest{JobId: id}))
	if err != nil {
		t.Fatal(err)
	}
	var (
		body    bytes.Buffer
		trailer *auditv1.DownloadTrailer
	)
	for stream.Receive() {
		switch m := stream.Msg().GetMsg().(type) {
		case *auditv1.DownloadResponse_Chunk:
			if m.Chunk.GetOffset() != int64(body.Len()) {
				t.Fatalf("chunk at offset %d, want %d", m.Chunk.GetOffset(), body.Len())
			}
			if len(m.Chunk.GetData()) > 64<<10 {
				t.Fatalf("chunk of %d bytes", len(m.Chunk.GetData()))
			}
			body.Write(m.Chunk.GetData())
		case *auditv1.DownloadResponse_Trailer:
			trailer = m.Trailer
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("Download: %v", err)
	}
	sum := sha256.Sum256(body.Bytes())
	if trailer == nil || trailer.GetSha256() != hex.EncodeToString(sum[:]) || trailer.GetTotalSize() != int64(body.Len()) {
		t.Fatalf("trailer %v does not match %d bytes with sha256 %x", trailer, body.Len(), sum)
	}
	if last.GetSha256() != trailer.GetSha256() {
		t.Fatalf("job sha256 %s, download %s", last.GetSha256(), trailer.GetSha256())
	}

	// Resume from the middle.
	half := int64(body.Len() / 2)
	stream, err = downloads.Download(ctx, connect.NewRequest(&auditv1.DownloadRequest{JobId: id, StartOffset: half}))
	if err != nil {
		t.Fatal(err)
	}
	var rest bytes.Buffer
	for stream.Receive() {
		if c := stream.Msg().GetChunk(); c != nil {
			rest.Write(c.GetData())
		}
	}
	if err := stream.Err(); err != nil || !bytes.Equal(rest.Bytes(), body.Bytes()[half:]) {
		t.Fatalf("resumed download differs (err %v)", err)
	}
	return body.Bytes()
}

// verifyManifest checks the SOC 2 report of the seeded events against its
// signed manifest.
func verifyManifest(t *testing.T, env *servertest.Env, jobID string, report []byte) {
	t.Helper()
	m := verifiedManifest(t, env, jobID, report)
	if m.Counts["audit_log"] != seeded {
		t.Fatalf("manifest %+v", m)
	}
}

// verifiedManifest checks report against its job's signed manifest with the
// keys the server publishes, as an auditor would, and returns the manifest.
func verifiedManifest(t *testing.T, env *servertest.Env, jobID string, report []byte) reports.Manifest {
	t.Helper()
	resp, err := env.Client.Get(env.URL + "/.well-known/exportd-keys.json")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	ks, err := reports.ParseJWKS(b)
	if err != nil {
		t.Fatalf("published keys %s: %v", b, err)
	}
	j, err := env.Store.JobByID(context.Background(), jobID)
	if err != nil {
		t.Fatal(err)
	}
	m, err := reports.Verify(bytes.NewReader(report), j.Manifest, ks)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if m.JobID != jobID {
		t.Fatalf("manifest of job %s verifies report of job %s", m.JobID, jobID)
	}
	return m
}

func restFlow(t *testing.T, env *servertest.Env, key string) ([]byte, string) {
	t.Helper()
	// The vendor page's request, verbatim.
	body := `{
    "report_type": "soc2",
    "start_date": "2026-01-01T00:00:00Z",
    "end_date": "2026-03-31T23:59:59Z",
    "format": "json"
  }`
	req, _ := http.NewRequest(http.MethodPost, env.URL+"/v1/audit/exports", strings.NewReader(body))
	req.Header.Set("X-API-Key", key)
	req.Header.Set("Content-Type", "application/json")
	resp := do(t, env, req)
	var created map[string]any
	decode(t, resp, http.StatusOK, &created)
	id, _ := created["job_id"].(string)
	if created["status"] != "PENDING" || !strings.HasPrefix(id, "job_") || created["estimated_completion"] == nil {
		t.Fatalf("POST /v1/audit/exports answered %v", created)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, _ := http.NewRequest(http.MethodGet, env.URL+"/v1/audit/exports/"+id, nil)
		req.Header.Set("X-API-Key", key)
		// The job itself, flat like the create answer.
		var got map[string]any
		decode(t, do(t, env, req), http.StatusOK, &got)
		if got["job_id"] != id {
			t.Fatalf("GET /v1/audit/exports/%s answered %v", id, got)
		}
		if got["status"] == "COMPLETED" {
			break
		}
		if time.Now().After(deadline) || got["status"] == "FAILED" {
			t.Fatalf("export did not complete: %v", got)
		}
		time.Sleep(20 * time.Millisecond)
	}
	req, _ = http.NewRequest(http.MethodGet, env.URL+"/v1/audit/exports/"+id+"/download", nil)
	req.Header.Set("X-API-Key", key)
	resp = do(t, env, req)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("download: %d %v %s", resp.StatusCode, err, b)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	if cd := resp.Header.Get("Content-Disposition"); !strings.Contains(cd, `filename="soc2-`) {
		t.Errorf("Content-Disposition %q", cd)
	}
	if resp.ContentLength != int64(len(b)) {
		t.Errorf("Content-Length %d for %d bytes", resp.ContentLength, len(b))
	}
	return b, id
}

func do(t *testing.T, env *servertest.Env, req *http.Request) *http.Response {
	t.Helper()
	resp, err := env.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func decode(t *testing.T, resp *http.Response, status int, v any) {
	t.Helper()
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status {
		t.Fatalf("%s %s: status %d, want %d: %s", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, status, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
}

// checkReport parses a SOC 2 report and checks the vendor page's fields.
func checkReport(t *testing.T, format string, b []byte, tenant string) {
	t.Helper()
	if format == "csv" {
		if !bytes.HasPrefix(b, []byte(reports.CSVBOM+"record_type,")) || bytes.Count(b, []byte("\naudit_entry,")) != seeded {
			t.Fatalf("CSV report lacks its header or its %d audit entries:\n%.400s", seeded, b)
		}
		return
	}
	var r struct {
		ReportType    string            `json:"report_type"`
		TenantID      string            `json:"tenant_id"`
		GeneratedAt   string            `json:"generated_at"`
		PeriodStart   string            `json:"period_start"`
		PeriodEnd     string            `json:"period_end"`
		AuditEntries  int               `json:"audit_entries"`
		AccessEntries int               `json:"access_entries"`
		Controls      map[string]string `json:"controls"`
		AuditLog      []json.RawMessage `json:"audit_log"`
		AccessLog     []json.RawMessage `json:"access_log"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("report is not JSON: %v", err)
	}
	if r.ReportType != "soc2" || r.TenantID != tenant || r.PeriodStart != "2026-01-01T00:00:00Z" || r.PeriodEnd != "2026-03-31T23:59:59Z" {
		t.Fatalf("report header %+v", r)
	}
	if _, err := time.Parse(time.RFC3339, r.GeneratedAt); err != nil {
		t.Fatalf("generated_at %q: %v", r.GeneratedAt, err)
	}
	if r.AuditEntries != seeded || len(r.AuditLog) != seeded || r.AccessEntries != len(r.AccessLog) || r.AccessEntries == 0 {
		t.Fatalf("counts: audit %d (%d rows), access %d (%d rows)", r.AuditEntries, len(r.AuditLog), r.AccessEntries, len(r.AccessLog))
	}
	for _, id := range []string{"CC1.1", "CC2.1", "CC6.1", "CC6.2"} {
		if r.Controls[id] == "" {
			t.Errorf("control %s missing", id)
		}
	}
}

// TestBadInput sends each kind of bad request and checks the code, the
// message and that no job was written.
func TestBadInput(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t, "sqlite", servertest.Options{NoWorkers: true})
	tenant := env.Tenant(t, "Acme", true)
	key := env.Key(t, tenant, "admin", "ada@example.com")
	other := env.Tenant(t, "Other", true)
	otherKey := env.Key(t, other, "admin", "oscar@example.com")

	// A job of the other tenant, to prove foreign ids look missing.
	oc := auditv1connect.NewExportServiceClient(env.Client, env.URL, withKey(otherKey))
	foreign, err := oc.CreateExport(context.Background(), connect.NewRequest(&auditv1.CreateExportRequest{
		ReportType: "soc2", StartDate: timestamppb.New(periodFrom), EndDate: timestamppb.New(periodTo)}))
	if err != nil {
		t.Fatal(err)
	}
	future := time.Now().Add(48 * time.Hour)
	valid := func(m *auditv1.CreateExportRequest) *auditv1.CreateExportRequest {
		base := &auditv1.CreateExportRequest{ReportType: "soc2", StartDate: timestamppb.New(periodFrom), EndDate: timestamppb.New(periodTo), Format: "json"}
		if m.ReportType != "" {
			base.ReportType = m.ReportType
		}
		if m.StartDate != nil {
			base.StartDate = m.StartDate
		}
		if m.EndDate != nil {
			base.EndDate = m.EndDate
		}
		if m.Format != "" {
			base.Format = m.Format
		}
		return base
	}
	cases := []struct {
		name      string
		key       string
		req       *auditv1.CreateExportRequest
		code      connect.Code
		field     string
		inMessage string
	}{
		{"unknown report type", key, valid(&auditv1.CreateExportRequest{ReportType: "pdf"}), connect.CodeInvalidArgument, "report_type", "must be in list"},
		{"unknown format", key, valid(&auditv1.CreateExportRequest{Format: "xml"}), connect.CodeInvalidArgument, "format", "must be in list"},
		{"end before start", key, valid(&auditv1.CreateExportRequest{EndDate: timestamppb.New(periodFrom.Add(-time.Hour))}), connect.CodeInvalidArgument, "end_date", "before start_date"},
		{"start in the future", key, valid(&auditv1.CreateExportRequest{StartDate: timestamppb.New(future), EndDate: timestamppb.New(future.Add(time.Hour))}), connect.CodeInvalidArgument, "start_date", "less than now"},
		{"period too long", key, valid(&auditv1.CreateExportRequest{StartDate: timestamppb.New(periodFrom.AddDate(-2, 0, 0))}), connect.CodeInvalidArgument, "end_date", "at most 366 days"},
		{"missing key", "", valid(&auditv1.CreateExportRequest{}), connect.CodeUnauthenticated, "", "missing API key"},
		{"wrong key", key[:len(key)-4] + "aaaa", valid(&auditv1.CreateExportRequest{}), connect.CodeUnauthenticated, "", "invalid API key"},
		{"malformed key", "tl_live_nope", valid(&auditv1.CreateExportRequest{}), connect.CodeUnauthenticated, "", "invalid API key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var opts []connect.ClientOption
			if tc.key != "" {
				opts = append(opts, withKey(tc.key))
			}
			c := auditv1connect.NewExportServiceClient(env.Client, env.URL, opts...)
			_, err := c.CreateExport(context.Background(), connect.NewRequest(tc.req))
			assertError(t, err, tc.code, tc.field, tc.inMessage)
		})
	}
	t.Run("unknown and foreign job ids look the same", func(t *testing.T) {
		c := auditv1connect.NewExportServiceClient(env.Client, env.URL, withKey(key))
		var msgs []string
		for _, id := range []string{"job_doesnotexist", foreign.Msg.GetJobId(), "not a job id"} {
			_, err := c.GetExport(context.Background(), connect.NewRequest(&auditv1.GetExportRequest{JobId: id}))
			assertError(t, err, connect.CodeNotFound, "", "not found")
			msgs = append(msgs, strings.ReplaceAll(connect.CodeOf(err).String()+errorMessage(err), id, "ID"))
		}
		if msgs[0] != msgs[1] || msgs[1] != msgs[2] {
			t.Fatalf("answers differ: %q", msgs)
		}
		// The same over REST, byte for byte apart from the id.
		var bodies []string
		for _, id := range []string{"job_doesnotexist", foreign.Msg.GetJobId()} {
			for _, suffix := range []string{"", "/download"} {
				req, _ := http.NewRequest(http.MethodGet, env.URL+"/v1/audit/exports/"+id+suffix, nil)
				req.Header.Set("X-API-Key", key)
				resp := do(t, env, req)
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusNotFound {
					t.Fatalf("GET %s: %d %s", suffix, resp.StatusCode, b)
				}
				bodies = append(bodies, suffix+strings.ReplaceAll(string(b), id, "ID"))
			}
		}
		if bodies[0] != bodies[2] || bodies[1] != bodies[3] {
			t.Fatalf("REST answers differ: %q", bodies)
		}
	})
	t.Run("malformed JSON over REST", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, env.URL+"/v1/audit/exports", strings.NewReader(`{"report_type": "soc2",`))
		req.Header.Set("X-API-Key", key)
		req.Header.Set("Content-Type", "application/json")
		var st struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		}
		decode(t, do(t, env, req), http.StatusBadRequest, &st)
		if st.Code != int(connect.CodeInvalidArgument) || st.Message == "" {
			t.Fatalf("got %+v", st)
		}
	})
	t.Run("field violations over REST", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, env.URL+"/v1/audit/exports",
			strings.NewReader(`{"report_type":"soc2","start_date":"2026-03-01T00:00:00Z","end_date":"2026-01-01T00:00:00Z","format":"json"}`))
		req.Header.Set("X-API-Key", key)
		req.Header.Set("Content-Type", "application/json")
		var st struct {
			Code    int `json:"code"`
			Details []struct {
				Type       string `json:"@type"`
				Violations []struct {
					Field struct {
						Elements []struct {
							FieldName string `json:"field_name"`
						} `json:"elements"`
					} `json:"field"`
				} `json:"violations"`
			} `json:"details"`
		}
		decode(t, do(t, env, req), http.StatusBadRequest, &st)
		if st.Code != 3 || len(st.Details) != 1 || st.Details[0].Violations[0].Field.Elements[0].FieldName != "end_date" {
			t.Fatalf("got %+v", st)
		}
	})

	n, err := env.Store.CountJobs(context.Background(), tenant)
	if err != nil || n != 0 {
		t.Fatalf("bad requests wrote %d jobs (%v)", n, err)
	}
}

func errorMessage(err error) string {
	var ce *connect.Error
	if errors.As(err, &ce) {
		return ce.Message()
	}
	return err.Error()
}

func assertError(t *testing.T, err error, code connect.Code, field, inMessage string) {
	t.Helper()
	if connect.CodeOf(err) != code {
		t.Fatalf("code %v (%v), want %v", connect.CodeOf(err), err, code)
	}
	if !strings.Contains(errorMessage(err), inMessage) {
		t.Fatalf("message %q lacks %q", errorMessage(err), inMessage)
	}
	if field == "" {
		return
	}
	var ce *connect.Error
	errors.As(err, &ce)
	for _, d := range ce.Details() {
		v, err := d.Value()
		if err != nil {
			continue
		}
		if vs, ok := v.(*validatepb.Violations); ok {
			for _, viol := range vs.GetViolations() {
				if els := viol.GetField().GetElements(); len(els) > 0 && els[0].GetFieldName() == field {
					return
				}
			}
		}
	}
	t.Fatalf("no field violation for %s in %v", field, err)
}
