package server_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"gocloud.dev/blob"
	_ "gocloud.dev/blob/memblob" // mem://
	"google.golang.org/protobuf/types/known/timestamppb"

	auditv1 "github.com/exportd/exportd/gen/go/audit/v1"
	"github.com/exportd/exportd/gen/go/audit/v1/auditv1connect"
	"github.com/exportd/exportd/internal/blobstore/blobstoretest"
	"github.com/exportd/exportd/internal/jobs"
	"github.com/exportd/exportd/internal/store/storetest"
	"github.com/exportd/exportd/server"
	"github.com/exportd/exportd/server/servertest"
)

// fixtureEvents is how many demo events newFixture seeds.
const fixtureEvents = 300

// fixture is an exportd with a tenant, a key, some events and clients.
type fixture struct {
	env       *servertest.Env
	tenant    string
	key       string
	exports   auditv1connect.ExportServiceClient
	downloads auditv1connect.DownloadServiceClient
}

func newFixture(t *testing.T, env *servertest.Env) *fixture {
	t.Helper()
	f := &fixture{env: env}
	f.tenant = env.Tenant(t, "Acme", true)
	f.key = env.Key(t, f.tenant, "auditor", "audrey@example.com")
	env.Seed(t, f.tenant, fixtureEvents, periodFrom, periodTo)
	f.exports = auditv1connect.NewExportServiceClient(env.Client, env.URL, withKey(f.key))
	f.downloads = auditv1connect.NewDownloadServiceClient(env.Client, env.URL, withKey(f.key))
	return f
}

func (f *fixture) create(t *testing.T) string {
	t.Helper()
	return f.createReport(t, "soc2", "json")
}

// createReport creates an export of the fixture's whole period.
func (f *fixture) createReport(t *testing.T, reportType, format string) string {
	t.Helper()
	res, err := f.exports.CreateExport(context.Background(), connect.NewRequest(&auditv1.CreateExportRequest{
		ReportType: reportType,
		StartDate:  timestamppb.New(periodFrom),
		EndDate:    timestamppb.New(periodTo.Add(-time.Second)),
		Format:     format,
	}))
	if err != nil {
		t.Fatalf("CreateExport: %v", err)
	}
	return res.Msg.GetJobId()
}

// watch follows the job over WatchExport until a terminal status.
func (f *fixture) watch(t *testing.T, id string) *auditv1.ExportJob {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stream, err := f.exports.WatchExport(ctx, connect.NewRequest(&auditv1.WatchExportRequest{JobId: id}))
	if err != nil {
		t.Fatal(err)
	}
	var last *auditv1.ExportJob
	for stream.Receive() {
		last = stream.Msg().GetExport()
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("WatchExport: %v", err)
	}
	return last
}

// download fetches the artifact over the Connect DownloadService.
func (f *fixture) download(t *testing.T, id string) ([]byte, error) {
	t.Helper()
	stream, err := f.downloads.Download(context.Background(), connect.NewRequest(&auditv1.DownloadRequest{JobId: id}))
	if err != nil {
		return nil, err
	}
	var data []byte
	for stream.Receive() {
		data = append(data, stream.Msg().GetChunk().GetData()...)
	}
	return data, stream.Err()
}

func blobKeys(t *testing.T, b *blob.Bucket) []string {
	t.Helper()
	var keys []string
	it := b.List(nil)
	for {
		o, err := it.Next(context.Background())
		if errors.Is(err, io.EOF) {
			return keys
		}
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, o.Key)
	}
}

func memBucket(t *testing.T) *blob.Bucket {
	t.Helper()
	b, err := blob.OpenBucket(context.Background(), "mem://")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

var fastRetries = jobs.Config{RetryBase: 10 * time.Millisecond, RetryMax: 40 * time.Millisecond, SweepInterval: -1}

// TestRetryTransientBlobFailure fails the first two artifact uploads: the
// job is retried with backoff and completes on its third attempt, with one
// artifact whose SHA-256 is the manifest's.
func TestRetryTransientBlobFailure(t *testing.T) {
	t.Parallel()
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			bucket, faults := blobstoretest.Wrap(memBucket(t))
			faults.FailWrites(2)
			env := servertest.Start(t, dialect, servertest.Options{Bucket: bucket, Jobs: fastRetries})
			f := newFixture(t, env)
			id := f.create(t)
			job := f.watch(t, id)
			if job.GetStatus() != auditv1.ExportStatus_COMPLETED || job.GetAttempt() != 3 || job.GetError() != "" {
				t.Fatalf("job ended %s at attempt %d (%q); want COMPLETED at attempt 3", job.GetStatus(), job.GetAttempt(), job.GetError())
			}
			if n := faults.Failed(); n != 2 {
				t.Errorf("%d uploads failed, want 2", n)
			}
			data, err := f.download(t, id)
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(data)
			if got := hex.EncodeToString(sum[:]); got != job.GetSha256() {
				t.Errorf("downloaded SHA-256 %s, job says %s", got, job.GetSha256())
			}
			if keys := blobKeys(t, bucket); len(keys) != 1 || !strings.Contains(keys[0], "/attempt-3/") {
				t.Errorf("bucket holds %v, want only attempt 3's artifact", keys)
			}
			if n := strings.Count(env.Log.String(), "export attempt failed; will retry"); n != 2 {
				t.Errorf("%d retries logged, want 2:\n%s", n, env.Log)
			}
		})
	}
}

// TestRetryShown fails a job's first upload: between attempts GetExport,
// ListExports and WatchExport show it retrying (attempt 1 of max_attempts,
// when attempt 2 starts, and why attempt 1 failed); once the retry time
// comes (a clock moved forward, not a wait) it completes and says no more
// about the retry.
func TestRetryShown(t *testing.T) {
	t.Parallel()
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			st := storetest.Open(t, dialect)
			var skew atomic.Int64
			st.SetClock(func() time.Time { return time.Now().UTC().Add(time.Duration(skew.Load())) })
			bucket, faults := blobstoretest.Wrap(memBucket(t))
			faults.FailWrites(1)
			env := servertest.StartWith(t, st, servertest.Options{Bucket: bucket,
				Jobs: jobs.Config{RetryBase: time.Hour, RetryMax: time.Hour, SweepInterval: -1}})
			f := newFixture(t, env)
			created := time.Now()
			id := f.create(t)

			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			stream, err := f.exports.WatchExport(ctx, connect.NewRequest(&auditv1.WatchExportRequest{JobId: id}))
			if err != nil {
				t.Fatal(err)
			}
			var watched *auditv1.ExportJob
			for watched == nil && stream.Receive() {
				if j := stream.Msg().GetExport(); j.GetNextAttemptAt() != nil {
					watched = j
				}
			}
			if watched == nil {
				t.Fatalf("the watch never showed the job retrying (%v)", stream.Err())
			}
			got, err := f.exports.GetExport(ctx, connect.NewRequest(&auditv1.GetExportRequest{JobId: id}))
			if err != nil {
				t.Fatal(err)
			}
			list, err := f.exports.ListExports(ctx, connect.NewRequest(&auditv1.ListExportsRequest{}))
			if err != nil {
				t.Fatal(err)
			}
			if len(list.Msg.GetExports()) != 1 {
				t.Fatalf("ListExports answered %d jobs", len(list.Msg.GetExports()))
			}
			for via, j := range map[string]*auditv1.ExportJob{"WatchExport": watched, "GetExport": got.Msg.GetExport(), "ListExports": list.Msg.GetExports()[0]} {
				next := j.GetNextAttemptAt().AsTime()
				if j.GetStatus() != auditv1.ExportStatus_PENDING || j.GetAttempt() != 1 || j.GetMaxAttempts() != 5 {
					t.Errorf("%s: job is %s at attempt %d of %d; want PENDING after attempt 1 of 5", via, j.GetStatus(), j.GetAttempt(), j.GetMaxAttempts())
				}
				// Backoff after attempt 1 is half to all of RetryBase.
				if next.Before(created.Add(30*time.Minute)) || next.After(time.Now().Add(time.Hour)) {
					t.Errorf("%s: next attempt at %s, want 30 to 60 minutes after the failure", via, next)
				}
				if !strings.HasPrefix(j.GetRetryReason(), "report generation failed: injected blob store failure") {
					t.Errorf("%s: retry_reason %q", via, j.GetRetryReason())
				}
				wantErr := "attempt 1 of 5 failed: " + j.GetRetryReason() + "; retrying at " + next.UTC().Format(time.RFC3339)
				if j.GetError() != wantErr {
					t.Errorf("%s: error %q, want %q", via, j.GetError(), wantErr)
				}
			}

			skew.Store(int64(2 * time.Hour))
			env.Runner.Wake()
			var last *auditv1.ExportJob
			for stream.Receive() {
				last = stream.Msg().GetExport()
			}
			if err := stream.Err(); err != nil {
				t.Fatalf("WatchExport: %v", err)
			}
			if last.GetStatus() != auditv1.ExportStatus_COMPLETED || last.GetAttempt() != 2 {
				t.Fatalf("job ended %s at attempt %d (%q)", last.GetStatus(), last.GetAttempt(), last.GetError())
			}
			if last.GetNextAttemptAt() != nil || last.GetRetryReason() != "" || last.GetError() != "" {
				t.Errorf("a completed job still speaks of its retry: next %v, reason %q, error %q", last.GetNextAttemptAt(), last.GetRetryReason(), last.GetError())
			}
		})
	}
}

// TestRetryExhausted fails every upload: after the configured three attempts
// the job is FAILED with a reason that names the failure and the attempts.
func TestRetryExhausted(t *testing.T) {
	t.Parallel()
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			bucket, faults := blobstoretest.Wrap(memBucket(t))
			faults.FailWrites(-1)
			env := servertest.Start(t, dialect, servertest.Options{Bucket: bucket, Jobs: fastRetries, Server: server.Config{MaxAttempts: 3}})
			f := newFixture(t, env)
			job := f.watch(t, f.create(t))
			if job.GetStatus() != auditv1.ExportStatus_FAILED || job.GetAttempt() != 3 {
				t.Fatalf("job ended %s at attempt %d; want FAILED at attempt 3", job.GetStatus(), job.GetAttempt())
			}
			for _, want := range []string{"failed after 3 attempts: report generation failed: injected blob store failure", "create the export again"} {
				if !strings.Contains(job.GetError(), want) {
					t.Errorf("error %q does not say %q", job.GetError(), want)
				}
			}
			if n := faults.Failed(); n != 3 {
				t.Errorf("%d uploads failed, want 3", n)
			}
			if keys := blobKeys(t, bucket); len(keys) != 0 {
				t.Errorf("a failed job left blobs: %v", keys)
			}
		})
	}
}

// TestPermanentFailure removes the tenant's Compliance Pack while its job
// waits: the job fails at once, without retries, saying how to fix it.
func TestPermanentFailure(t *testing.T) {
	t.Parallel()
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			env := servertest.Start(t, dialect, servertest.Options{NoWorkers: true, Jobs: fastRetries})
			f := newFixture(t, env)
			id := f.create(t)
			if err := env.Store.SetCompliancePack(context.Background(), f.tenant, false); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { env.Runner.Run(ctx); close(done) }()
			t.Cleanup(func() { cancel(); <-done })
			job := f.watch(t, id)
			if job.GetStatus() != auditv1.ExportStatus_FAILED || job.GetAttempt() != 1 {
				t.Fatalf("job ended %s at attempt %d; want FAILED at attempt 1", job.GetStatus(), job.GetAttempt())
			}
			if !strings.Contains(job.GetError(), "no longer has the Compliance Pack") || !strings.Contains(job.GetError(), "Settings › Billing › Add-ons") {
				t.Errorf("error %q does not say what to do", job.GetError())
			}
		})
	}
}

// TestDefectFailsAtOnce breaks one statement of the report query at the
// driver, as a defect in exportd would: the real database (or driver)
// refuses it, and the job is FAILED on its first attempt, saying it is a
// defect that retrying will not fix and naming the job for the operator.
func TestDefectFailsAtOnce(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, reportType string
		// statement picks the statement to break; broken breaks it.
		statement string
		broken    func(query, dialect string) string
		says      map[string]string // per dialect
	}{
		{
			name: "argument without a value", reportType: "gdpr", statement: "FROM attestation_records a",
			broken: func(q, dialect string) string {
				p := "?9"
				if dialect == "postgres" {
					p = "$9"
				}
				return strings.Replace(q, "ORDER BY", "AND a.subject <> "+p+" ORDER BY", 1)
			},
			says: map[string]string{"sqlite": "missing argument with index 4", "postgres": "SQLSTATE 42P18"},
		},
		{
			name: "syntax error", reportType: "soc2", statement: "ORDER BY occurred_at, sequence",
			broken: func(q, _ string) string { return strings.Replace(q, "ORDER BY", "ORDER BY BY", 1) },
			says:   map[string]string{"sqlite": "SQL logic error", "postgres": "SQLSTATE 42601"},
		},
	}
	for _, dialect := range storetest.Dialects {
		for _, tc := range cases {
			t.Run(dialect+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				st := storetest.OpenRewriting(t, dialect, func(q string) string {
					if strings.Contains(q, tc.statement) {
						return tc.broken(q, dialect)
					}
					return q
				})
				env := servertest.StartWith(t, st, servertest.Options{Jobs: fastRetries})
				f := newFixture(t, env)
				id := f.createReport(t, tc.reportType, "json")
				job := f.watch(t, id)
				if job.GetStatus() != auditv1.ExportStatus_FAILED || job.GetAttempt() != 1 {
					t.Fatalf("job ended %s at attempt %d (%q); want FAILED at attempt 1", job.GetStatus(), job.GetAttempt(), job.GetError())
				}
				for _, want := range []string{"because of a defect in exportd", tc.says[dialect], "retrying will not help", "report it to your operator with job id " + id} {
					if !strings.Contains(job.GetError(), want) {
						t.Errorf("error %q does not say %q", job.GetError(), want)
					}
				}
				if strings.Contains(env.Log.String(), "will retry") {
					t.Errorf("a defect was retried:\n%s", env.Log)
				}
			})
		}
	}
}

// TestCancelRunning cancels a job whose upload hangs: the worker notices at
// its next heartbeat, stops, and the job stays FAILED "cancelled by …".
func TestCancelRunning(t *testing.T) {
	t.Parallel()
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			bucket, faults := blobstoretest.Wrap(memBucket(t))
			faults.BlockWrites(true)
			env := servertest.Start(t, dialect, servertest.Options{Bucket: bucket,
				Jobs: jobs.Config{Lease: 3 * time.Second, SweepInterval: -1}})
			f := newFixture(t, env)
			id := f.create(t)
			waitUntil(t, "the job to run", func() bool {
				j, err := env.Store.JobByID(context.Background(), id)
				return err == nil && j.Status == "RUNNING"
			})
			cancelled := time.Now()
			res, err := f.exports.CancelExport(context.Background(), connect.NewRequest(&auditv1.CancelExportRequest{JobId: id}))
			if err != nil {
				t.Fatal(err)
			}
			if res.Msg.GetExport().GetStatus() != auditv1.ExportStatus_FAILED {
				t.Fatalf("CancelExport answered %s", res.Msg.GetExport().GetStatus())
			}
			waitUntil(t, "the worker to stop", func() bool {
				return strings.Contains(env.Log.String(), "export stopped: it was cancelled or another attempt took it over")
			})
			t.Logf("worker stopped %s after the cancel (heartbeat every 1s)", time.Since(cancelled).Round(time.Millisecond))
			job := f.watch(t, id)
			if job.GetStatus() != auditv1.ExportStatus_FAILED || job.GetError() != "cancelled by audrey@example.com" {
				t.Errorf("job is %s (%q) after the worker stopped", job.GetStatus(), job.GetError())
			}
		})
	}
}

// TestExpiry moves a controllable clock past a completed export's download
// window: the sweeper marks it EXPIRED and deletes the artifact, and both
// download paths answer the expired error.
func TestExpiry(t *testing.T) {
	t.Parallel()
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			st := storetest.Open(t, dialect)
			var skew atomic.Int64
			st.SetClock(func() time.Time { return time.Now().UTC().Add(time.Duration(skew.Load())) })
			bucket := memBucket(t)
			env := servertest.StartWith(t, st, servertest.Options{Bucket: bucket, Jobs: jobs.Config{SweepInterval: -1}})
			f := newFixture(t, env)
			id := f.create(t)
			job := f.watch(t, id)
			if job.GetStatus() != auditv1.ExportStatus_COMPLETED {
				t.Fatalf("job ended %s", job.GetStatus())
			}
			row, err := st.JobByID(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.download(t, id); err != nil {
				t.Fatalf("download before expiry: %v", err)
			}
			if got := job.GetExpiresAt().AsTime().Sub(job.GetCompletedAt().AsTime()); got != 7*24*time.Hour {
				t.Errorf("download window %s, want the tenant's 7 days", got)
			}

			skew.Store(int64(7*24*time.Hour + time.Second))
			res, err := env.Runner.Sweep(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if res.Expired != 1 {
				t.Errorf("sweep expired %d jobs, want 1", res.Expired)
			}
			got, err := f.exports.GetExport(context.Background(), connect.NewRequest(&auditv1.GetExportRequest{JobId: id}))
			if err != nil {
				t.Fatal(err)
			}
			if got.Msg.GetExport().GetStatus() != auditv1.ExportStatus_EXPIRED {
				t.Errorf("job is %s after the window, want EXPIRED", got.Msg.GetExport().GetStatus())
			}
			if ok, err := bucket.Exists(context.Background(), row.ArtifactKey); err != nil || ok {
				t.Errorf("artifact %s still exists (%v)", row.ArtifactKey, err)
			}
			wantMsg := "export " + id + " expired at " + job.GetExpiresAt().AsTime().UTC().Format(time.RFC3339) + "; create a new export"

			_, err = f.download(t, id)
			if connect.CodeOf(err) != connect.CodeFailedPrecondition || !strings.Contains(err.Error(), wantMsg) {
				t.Errorf("Connect download after expiry: %v; want failed_precondition %q", err, wantMsg)
			}

			req, _ := http.NewRequest(http.MethodGet, env.URL+"/v1/audit/exports/"+id+"/download", nil)
			req.Header.Set("X-API-Key", f.key)
			resp, err := env.Client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var status struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&status); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusBadRequest || status.Code != int(connect.CodeFailedPrecondition) || status.Message != wantMsg {
				t.Errorf("REST download after expiry: %d %+v; want 400 code 9 %q", resp.StatusCode, status, wantMsg)
			}
		})
	}
}

// TestOrphanSweep leaves blobs of attempts that never committed beside a
// committed artifact: the sweep deletes them and keeps the artifact.
func TestOrphanSweep(t *testing.T) {
	t.Parallel()
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			bucket := memBucket(t)
			env := servertest.Start(t, dialect, servertest.Options{Bucket: bucket, Jobs: jobs.Config{SweepInterval: -1}})
			f := newFixture(t, env)
			id := f.create(t)
			if job := f.watch(t, id); job.GetStatus() != auditv1.ExportStatus_COMPLETED {
				t.Fatalf("job ended %s", job.GetStatus())
			}
			row, err := env.Store.JobByID(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			stale := []string{
				"exports/" + f.tenant + "/" + id + "/attempt-0/report.json",
				"exports/" + f.tenant + "/" + id + "/attempt-2/report.json.18c2f.tmp",
			}
			for _, k := range stale {
				if err := bucket.WriteAll(ctx, k, []byte("partial"), nil); err != nil {
					t.Fatal(err)
				}
			}
			unknown := "exports/" + f.tenant + "/job_unknown/attempt-1/report.json"
			if err := bucket.WriteAll(ctx, unknown, []byte("not ours"), nil); err != nil {
				t.Fatal(err)
			}
			res, err := env.Runner.Sweep(ctx)
			if err != nil {
				t.Fatal(err)
			}
			keys := blobKeys(t, bucket)
			if res.OrphansDeleted != 2 || len(keys) != 2 || !slices.Contains(keys, row.ArtifactKey) || !slices.Contains(keys, unknown) {
				t.Errorf("sweep deleted %d; bucket holds %v; want the artifact %s and the unknown job's blob", res.OrphansDeleted, keys, row.ArtifactKey)
			}
		})
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestShutdownReleasesJob stops a runner in the middle of a job, as SIGTERM
// does: the job is released at once (its lease ends now, not a lease period
// later) and the next runner completes it as attempt 2.
func TestShutdownReleasesJob(t *testing.T) {
	t.Parallel()
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			bucket, faults := blobstoretest.Wrap(memBucket(t))
			faults.BlockWrites(true)
			cfg := jobs.Config{Lease: time.Minute, PollInterval: 20 * time.Millisecond, SweepInterval: -1}
			env := servertest.Start(t, dialect, servertest.Options{Bucket: bucket, NoWorkers: true, Jobs: cfg})
			f := newFixture(t, env)
			id := f.create(t)
			ctx, stop := context.WithCancel(context.Background())
			stopped := make(chan struct{})
			go func() { env.Runner.Run(ctx); close(stopped) }()
			waitUntil(t, "the job to run", func() bool {
				j, err := env.Store.JobByID(context.Background(), id)
				return err == nil && j.Status == "RUNNING"
			})
			stop()
			<-stopped
			j, err := env.Store.JobByID(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			if j.Status != "RUNNING" || j.LeaseUntil == nil || j.LeaseUntil.After(env.Store.Now()) {
				t.Fatalf("after shutdown the job is %s with lease until %v; want its lease released", j.Status, j.LeaseUntil)
			}
			faults.BlockWrites(false)
			next := jobs.New(env.Store, bucket, slog.New(slog.NewTextHandler(env.Log, nil)), cfg)
			ctx2, stop2 := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { next.Run(ctx2); close(done) }()
			t.Cleanup(func() { stop2(); <-done })
			job := f.watch(t, id)
			if job.GetStatus() != auditv1.ExportStatus_COMPLETED || job.GetAttempt() != 2 {
				t.Errorf("job ended %s at attempt %d; want COMPLETED at attempt 2", job.GetStatus(), job.GetAttempt())
			}
		})
	}
}
