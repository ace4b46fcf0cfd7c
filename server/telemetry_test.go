package server_test

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	auditv1 "github.com/exportd/exportd/gen/go/audit/v1"
	"github.com/exportd/exportd/gen/go/audit/v1/auditv1connect"
	"github.com/exportd/exportd/internal/store"
	"github.com/exportd/exportd/internal/store/storetest"
	"github.com/exportd/exportd/internal/telemetry"
	"github.com/exportd/exportd/server/servertest"
)

// noOTLP keeps the machine's OTEL_* variables out of tests.
func noOTLP(string) string { return "" }

// tracedEnv runs exportd whose store, API and workers share one telemetry.
func tracedEnv(t *testing.T, dialect string, spans sdktrace.SpanExporter) (*servertest.Env, *telemetry.Telemetry) {
	t.Helper()
	ctx := context.Background()
	tel, err := telemetry.New(ctx, telemetry.Config{SpanExporter: spans, Getenv: noOTLP})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	dsn, dir := "", t.TempDir()
	if dialect == "postgres" {
		dsn, dir = storetest.PostgresDSN(t), ""
	}
	st, err := store.OpenWith(ctx, dsn, dir, store.Options{TracerProvider: tel.Tracer, MeterProvider: tel.Meter})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return servertest.StartWith(t, st, servertest.Options{Telemetry: tel}), tel
}

// TestMetricsEndpoint scrapes /metrics after an export, a download and a
// refused call, and finds the job, download, denial and RPC series.
func TestMetricsEndpoint(t *testing.T) {
	t.Parallel()
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			env, _ := tracedEnv(t, dialect, nil)
			tenant := env.Tenant(t, "Acme", true)
			key := env.Key(t, tenant, "auditor", "audrey@example.com")
			env.Seed(t, tenant, 200, periodFrom, periodTo)
			exports := auditv1connect.NewExportServiceClient(env.Client, env.URL, withKey(key))
			downloads := auditv1connect.NewDownloadServiceClient(env.Client, env.URL, withKey(key))
			report := rpcFlow(t, exports, downloads, "csv")

			viewer := auditv1connect.NewExportServiceClient(env.Client, env.URL, withKey(env.Key(t, tenant, "viewer", "vic@example.com")))
			if _, err := viewer.CreateExport(context.Background(), connect.NewRequest(&auditv1.CreateExportRequest{})); connect.CodeOf(err) != connect.CodePermissionDenied {
				t.Fatalf("viewer CreateExport: %v", err)
			}

			resp, err := env.Client.Get(env.URL + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET /metrics: %d %s", resp.StatusCode, body)
			}
			text := string(body)
			for _, want := range []*regexp.Regexp{
				regexp.MustCompile(`(?m)^exportd_jobs\{.*status="COMPLETED".*\} 1$`),
				regexp.MustCompile(`(?m)^exportd_jobs\{.*status="PENDING".*\} 0$`),
				regexp.MustCompile(`(?m)^exportd_jobs_queue_depth\{.*\} 0$`),
				regexp.MustCompile(`(?m)^exportd_jobs_finished_total\{.*status="COMPLETED".*\} 1$`),
				regexp.MustCompile(`(?m)^exportd_job_duration_seconds_count\{.*report_type="soc2".*\} 1$`),
				regexp.MustCompile(`(?m)^exportd_job_rows_per_second_count\{.*\} 1$`),
				// rpcFlow downloads the report once whole and once from its middle.
				regexp.MustCompile(`(?m)^exportd_download_bytes_total\{.*protocol="connect".*\} ` + itoa(len(report)+len(report)-len(report)/2) + `$`),
				regexp.MustCompile(`(?m)^exportd_auth_denials_total\{.*reason="permission".*\} 1$`),
				regexp.MustCompile(`(?m)^rpc_server_call_duration_seconds_count\{.*rpc_method="audit.v1.ExportService/CreateExport",rpc_response_status_code="OK".*\} 1$`),
				regexp.MustCompile(`(?m)^rpc_server_call_duration_seconds_count\{.*rpc_method="audit.v1.ExportService/CreateExport",rpc_response_status_code="PERMISSION_DENIED".*\} 1$`),
				regexp.MustCompile(`(?m)^rpc_server_call_duration_seconds_count\{.*rpc_method="audit.v1.DownloadService/Download".*\} 2$`),
				regexp.MustCompile(`(?m)^db_client_operation_duration_seconds_count\{`),
			} {
				if !want.MatchString(text) {
					t.Errorf("/metrics lacks %s", want)
				}
			}
			if strings.Contains(text, tenant) {
				t.Error("/metrics names a tenant")
			}
			if t.Failed() {
				t.Logf("/metrics:\n%s", text)
			}
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestSpanTree follows one export through the in-memory span exporter: the
// CreateExport RPC span with its database spans beneath, and the job's own
// trace, linked to that RPC span, with a span per stage and database spans
// under the stages.
func TestSpanTree(t *testing.T) {
	t.Parallel()
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			spans := tracetest.NewInMemoryExporter()
			env, _ := tracedEnv(t, dialect, spans)
			tenant := env.Tenant(t, "Acme", true)
			key := env.Key(t, tenant, "auditor", "audrey@example.com")
			env.Seed(t, tenant, 100, periodFrom, periodTo)
			exports := auditv1connect.NewExportServiceClient(env.Client, env.URL, withKey(key))
			downloads := auditv1connect.NewDownloadServiceClient(env.Client, env.URL, withKey(key))
			rpcFlow(t, exports, downloads, "json")

			// The job span ends just after the commit the client saw.
			var all tracetest.SpanStubs
			for range 200 {
				all = spans.GetSpans()
				if find(all, "export.job", nil) != nil {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			rpc := find(all, "audit.v1.ExportService/CreateExport", func(s tracetest.SpanStub) bool { return s.SpanKind == trace.SpanKindServer })
			if rpc == nil {
				t.Fatalf("no CreateExport server span among %v", names(all))
			}
			if children(all, rpc, "sql.") == 0 {
				t.Errorf("no database span under the CreateExport span; spans: %v", names(all))
			}
			job := find(all, "export.job", nil)
			if job == nil {
				t.Fatalf("no export.job span among %v", names(all))
			}
			linked := false
			for _, l := range job.Links {
				linked = linked || (l.SpanContext.TraceID() == rpc.SpanContext.TraceID() && l.SpanContext.SpanID() == rpc.SpanContext.SpanID())
			}
			if !linked {
				t.Errorf("export.job links %v, not the CreateExport span %v", job.Links, rpc.SpanContext.SpanID())
			}
			for _, stage := range []string{"export.claim", "export.query", "export.generate", "export.upload", "export.sign", "export.commit"} {
				s := find(all, stage, func(s tracetest.SpanStub) bool { return s.Parent.SpanID() == job.SpanContext.SpanID() })
				if s == nil {
					t.Errorf("no %s span under export.job", stage)
					continue
				}
				if stage == "export.generate" || stage == "export.commit" || stage == "export.query" {
					if children(all, s, "sql.") == 0 {
						t.Errorf("no database span under %s", stage)
					}
				}
			}
			if t.Failed() {
				t.Logf("spans: %v", names(all))
			}
		})
	}
}

func find(all tracetest.SpanStubs, name string, ok func(tracetest.SpanStub) bool) *tracetest.SpanStub {
	for i := range all {
		if all[i].Name == name && (ok == nil || ok(all[i])) {
			return &all[i]
		}
	}
	return nil
}

func children(all tracetest.SpanStubs, parent *tracetest.SpanStub, prefix string) int {
	n := 0
	for _, s := range all {
		if s.Parent.SpanID() == parent.SpanContext.SpanID() && strings.HasPrefix(s.Name, prefix) {
			n++
		}
	}
	return n
}

func names(all tracetest.SpanStubs) []string {
	out := make([]string, 0, len(all))
	for _, s := range all {
		out = append(out, s.Name)
	}
	return out
}
