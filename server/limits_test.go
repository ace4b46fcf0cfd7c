package server_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	auditv1 "github.com/exportd/exportd/gen/go/audit/v1"
	"github.com/exportd/exportd/gen/go/audit/v1/auditv1connect"
	"github.com/exportd/exportd/internal/store/storetest"
	"github.com/exportd/exportd/server"
	"github.com/exportd/exportd/server/servertest"
)

func createRequest(end time.Time, idempotencyKey string) *connect.Request[auditv1.CreateExportRequest] {
	req := connect.NewRequest(&auditv1.CreateExportRequest{
		ReportType: "soc2",
		StartDate:  timestamppb.New(periodFrom),
		EndDate:    timestamppb.New(end),
		Format:     "json",
	})
	if idempotencyKey != "" {
		req.Header().Set("Idempotency-Key", idempotencyKey)
	}
	return req
}

// TestIdempotencyConcurrent sends 50 identical CreateExport calls with one
// Idempotency-Key at once: they all answer the same job, and only one job
// exists. Run it with -race.
func TestIdempotencyConcurrent(t *testing.T) {
	t.Parallel()
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			env := servertest.Start(t, dialect, servertest.Options{NoWorkers: true, Server: server.Config{MaxQueuedPerTenant: 5}})
			tenant := env.Tenant(t, "Acme", true)
			exports := auditv1connect.NewExportServiceClient(env.Client, env.URL, withKey(env.Key(t, tenant, "auditor", "audrey@example.com")))
			const n = 50
			ids := make([]string, n)
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					res, err := exports.CreateExport(context.Background(), createRequest(periodTo.Add(-time.Second), "retry-42"))
					errs[i] = err
					if err == nil {
						ids[i] = res.Msg.GetJobId()
					}
				})
			}
			wg.Wait()
			for i := range n {
				if errs[i] != nil {
					t.Fatalf("call %d: %v", i, errs[i])
				}
				if ids[i] != ids[0] {
					t.Fatalf("call %d answered %s, call 0 %s", i, ids[i], ids[0])
				}
			}
			count, err := env.Store.CountJobs(context.Background(), tenant)
			if err != nil {
				t.Fatal(err)
			}
			if count != 1 {
				t.Errorf("%d jobs exist, want 1", count)
			}
			// The same key with another body is refused and creates nothing.
			_, err = exports.CreateExport(context.Background(), createRequest(periodTo.Add(-2*time.Second), "retry-42"))
			if connect.CodeOf(err) != connect.CodeFailedPrecondition {
				t.Errorf("same key, other body: %v; want failed_precondition", err)
			}
		})
	}
}

// TestQueuedLimit fills a tenant's queue: the next create is
// resource_exhausted and creates nothing; another tenant is unaffected.
func TestQueuedLimit(t *testing.T) {
	t.Parallel()
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			env := servertest.Start(t, dialect, servertest.Options{NoWorkers: true, Server: server.Config{MaxQueuedPerTenant: 3}})
			tenant := env.Tenant(t, "Acme", true)
			exports := auditv1connect.NewExportServiceClient(env.Client, env.URL, withKey(env.Key(t, tenant, "auditor", "audrey@example.com")))
			for i := range 3 {
				if _, err := exports.CreateExport(context.Background(), createRequest(periodTo.Add(-time.Duration(i+1)*time.Second), "")); err != nil {
					t.Fatalf("create %d: %v", i, err)
				}
			}
			_, err := exports.CreateExport(context.Background(), createRequest(periodTo.Add(-time.Hour), ""))
			if connect.CodeOf(err) != connect.CodeResourceExhausted || !strings.Contains(err.Error(), "3 exports are already queued") {
				t.Errorf("fourth create: %v; want resource_exhausted", err)
			}
			if n, _ := env.Store.CountJobs(context.Background(), tenant); n != 3 {
				t.Errorf("%d jobs exist, want 3", n)
			}
			other := env.Tenant(t, "Other", true)
			otherExports := auditv1connect.NewExportServiceClient(env.Client, env.URL, withKey(env.Key(t, other, "auditor", "olga@example.com")))
			if _, err := otherExports.CreateExport(context.Background(), createRequest(periodTo.Add(-time.Second), "")); err != nil {
				t.Errorf("another tenant's create: %v", err)
			}
		})
	}
}
