package server_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"gocloud.dev/blob"
	"google.golang.org/protobuf/types/known/timestamppb"

	auditv1 "github.com/exportd/exportd/gen/go/audit/v1"
	"github.com/exportd/exportd/gen/go/audit/v1/auditv1connect"
	"github.com/exportd/exportd/internal/blobstore"
	"github.com/exportd/exportd/internal/jobs"
	"github.com/exportd/exportd/server/servertest"
)

// s3URL starts an S3 server in-process (gofakes3) with one bucket and
// returns the s3:// URL exportd takes for it.
func s3URL(t *testing.T) string {
	t.Helper()
	backend := s3mem.New()
	if err := backend.CreateBucket("artifacts"); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gofakes3.New(backend).Server())
	t.Cleanup(srv.Close)
	q := url.Values{
		"endpoint":                     {srv.URL},
		"region":                       {"us-east-1"},
		"use_path_style":               {"true"},
		"disable_https":                {"true"},
		"anonymous":                    {"true"},
		"request_checksum_calculation": {"when_required"},
		"response_checksum_validation": {"when_required"},
	}
	return "s3://artifacts?" + q.Encode()
}

// TestS3 runs an export into an S3 bucket, downloads it over REST with a
// Range, and sweeps an orphaned attempt, all against a real S3 protocol
// server.
func TestS3(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bucket, err := blobstore.Open(ctx, s3URL(t), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bucket.Close() })
	exportThroughBucket(t, bucket)
}

// exportThroughBucket runs an export into bucket, downloads it over REST
// (whole and with a Range), sweeps an orphaned attempt, and returns the job.
func exportThroughBucket(t *testing.T, bucket *blob.Bucket) *auditv1.ExportJob {
	t.Helper()
	ctx := context.Background()
	env := servertest.Start(t, "sqlite", servertest.Options{Bucket: bucket, Jobs: jobs.Config{SweepInterval: -1}})
	tenant := env.Tenant(t, "Acme", true)
	key := env.Key(t, tenant, "auditor", "audrey@example.com")
	from, to := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	env.Seed(t, tenant, 2000, from, to)

	exports := auditv1connect.NewExportServiceClient(env.Client, env.URL)
	req := connect.NewRequest(&auditv1.CreateExportRequest{ReportType: "soc2", Format: "csv",
		StartDate: timestamppb.New(from), EndDate: timestamppb.New(to.Add(-time.Second))})
	req.Header().Set("X-API-Key", key)
	created, err := exports.CreateExport(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	id := created.Msg.GetJobId()
	var job *auditv1.ExportJob
	deadline := time.Now().Add(time.Minute)
	for job.GetStatus() != auditv1.ExportStatus_COMPLETED {
		if time.Now().After(deadline) || job.GetStatus() == auditv1.ExportStatus_FAILED {
			t.Fatalf("job is %s (%s)", job.GetStatus(), job.GetError())
		}
		time.Sleep(20 * time.Millisecond)
		get := connect.NewRequest(&auditv1.GetExportRequest{JobId: id})
		get.Header().Set("X-API-Key", key)
		res, err := exports.GetExport(ctx, get)
		if err != nil {
			t.Fatal(err)
		}
		job = res.Msg.GetExport()
	}

	hreq, _ := http.NewRequest(http.MethodGet, env.URL+"/v1/audit/exports/"+id+"/download", nil)
	hreq.Header.Set("X-API-Key", key)
	resp, err := env.Client.Do(hreq)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("download: %d %v", resp.StatusCode, err)
	}
	sum := sha256.Sum256(body)
	if got := hex.EncodeToString(sum[:]); got != job.GetSha256() || int64(len(body)) != job.GetSizeBytes() {
		t.Fatalf("downloaded %d bytes with SHA-256 %s; job says %d bytes, %s", len(body), got, job.GetSizeBytes(), job.GetSha256())
	}
	hreq.Header.Set("Range", "bytes=10-19")
	resp, err = env.Client.Do(hreq)
	if err != nil {
		t.Fatal(err)
	}
	part, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent || string(part) != string(body[10:20]) {
		t.Errorf("range download: %d %q", resp.StatusCode, part)
	}

	orphan := "exports/" + tenant + "/" + id + "/attempt-9/report.csv"
	if err := bucket.WriteAll(ctx, orphan, []byte("partial"), nil); err != nil {
		t.Fatal(err)
	}
	res, err := env.Runner.Sweep(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := bucket.Exists(ctx, orphan); ok || res.OrphansDeleted != 1 {
		t.Errorf("orphan still there after a sweep that deleted %d", res.OrphansDeleted)
	}
	return job
}
