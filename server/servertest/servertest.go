// Package servertest runs a whole exportd (store, workers, API) in-process
// for tests: over real HTTP/1.1 and HTTP/2 (TLS), with SQLite or PostgreSQL.
package servertest

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"
	"time"

	"gocloud.dev/blob"
	_ "gocloud.dev/blob/fileblob" // file://
	_ "gocloud.dev/blob/memblob"  // mem://

	"github.com/exportd/exportd/authz"
	"github.com/exportd/exportd/internal/blobstore"
	"github.com/exportd/exportd/internal/demo"
	"github.com/exportd/exportd/internal/jobs"
	"github.com/exportd/exportd/internal/signing"
	"github.com/exportd/exportd/internal/store"
	"github.com/exportd/exportd/internal/store/storetest"
	"github.com/exportd/exportd/internal/telemetry"
	"github.com/exportd/exportd/internal/webhook"
	"github.com/exportd/exportd/server"
)

// Env is a running exportd.
type Env struct {
	URL    string // https://127.0.0.1:port (HTTP/1.1 and HTTP/2)
	Client *http.Client
	Store  *store.Store
	Bucket *blob.Bucket
	Runner *jobs.Runner
	Keys   *signing.Manager
	Log    *LogBuffer
	// Enforcer is the server's: it persists custom roles.
	Enforcer *authz.Enforcer
	// API is the server itself, for tests of its shutdown.
	API *server.Server
	// Certificate is the server's self-signed certificate, for clients
	// that need it as a CA file.
	Certificate *x509.Certificate
}

// Options tune Start.
type Options struct {
	Server server.Config
	Jobs   jobs.Config
	// NoWorkers leaves jobs PENDING.
	NoWorkers bool
	// BlobURL is the artifact bucket; empty means mem://.
	BlobURL string
	// Telemetry, when set, traces and meters the server and workers and
	// serves /metrics (open the store with the same providers to trace SQL).
	Telemetry *telemetry.Telemetry
	// Bucket replaces the default mem:// bucket (the test closes it).
	Bucket *blob.Bucket
	// Webhook tunes the webhook deliverer, which runs with the workers.
	Webhook webhook.Config
	// WebhookAllow lets webhooks reach these inside networks (such as
	// 127.0.0.0/8 for an httptest receiver), at creation and delivery.
	WebhookAllow []netip.Prefix
}

// Start runs exportd on a fresh store of dialect until the test ends.
func Start(t testing.TB, dialect string, o Options) *Env {
	t.Helper()
	st := storetest.Open(t, dialect)
	return StartWith(t, st, o)
}

// StartWith runs exportd over an existing store.
func StartWith(t testing.TB, st *store.Store, o Options) *Env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	bucket := o.Bucket
	if bucket == nil {
		if o.BlobURL == "" {
			o.BlobURL = "mem://"
		}
		b, err := blobstore.Open(ctx, o.BlobURL, "")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		bucket = b
	}
	logs := &LogBuffer{}
	log := telemetry.NewLogger(logs, "text", slog.LevelDebug)
	en, err := authz.Open(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if o.Jobs.PollInterval == 0 {
		o.Jobs.PollInterval = 50 * time.Millisecond
	}
	keys, err := signing.New(ctx, st, "", log)
	if err != nil {
		t.Fatal(err)
	}
	if o.Telemetry != nil {
		o.Jobs.Telemetry, o.Server.Telemetry = o.Telemetry, o.Telemetry
		if err := o.Telemetry.Metrics.ObserveJobs(st.JobCounts, store.JobStatuses...); err != nil {
			t.Fatal(err)
		}
	}
	runner := jobs.New(st, bucket, log, o.Jobs)
	runner.SignWith(keys)
	if o.Server.WatchInterval == 0 {
		o.Server.WatchInterval = 20 * time.Millisecond
	}
	o.Server.WebhookAllow = append(o.Server.WebhookAllow, o.WebhookAllow...)
	o.Webhook.Allow = append(o.Webhook.Allow, o.WebhookAllow...)
	api := server.New(st, en, bucket, runner, log, o.Server)
	api.PublishKeys(keys)
	// The server exportd serve runs (its HTTP policy: limits, timeouts,
	// request ids), over TLS with HTTP/1.1 and HTTP/2.
	hs, err := api.HTTPServer(true)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(hs.Handler)
	srv.Config = hs
	srv.EnableHTTP2 = true
	srv.StartTLS()
	watched := make(chan struct{})
	go func() { en.Watch(ctx, authz.WatchInterval, log); close(watched) }()
	done := make(chan struct{})
	if o.Webhook.PollInterval == 0 {
		o.Webhook.PollInterval = 20 * time.Millisecond
	}
	deliverer := webhook.New(st, log, o.Webhook)
	if o.NoWorkers {
		close(done)
	} else {
		go func() {
			var wg sync.WaitGroup
			wg.Go(func() { runner.Run(ctx) })
			wg.Go(func() { deliverer.Run(ctx) })
			wg.Wait()
			close(done)
		}()
	}
	t.Cleanup(func() {
		shutCtx, stop := context.WithTimeout(context.Background(), 5*time.Second)
		defer stop()
		_ = api.Shutdown(shutCtx, time.Second)
		srv.Close()
		cancel()
		<-done
		<-watched
	})
	return &Env{URL: srv.URL, Client: srv.Client(), Store: st, Bucket: bucket, Runner: runner, Keys: keys, Log: logs, Enforcer: en, API: api, Certificate: srv.Certificate()}
}

// Tenant creates a tenant and returns its id.
func (e *Env) Tenant(t testing.TB, name string, compliancePack bool) string {
	t.Helper()
	tn, err := e.Store.CreateTenant(context.Background(), name, compliancePack, false)
	if err != nil {
		t.Fatal(err)
	}
	return tn.ID
}

// Key mints an API key of role for principal in tenant.
func (e *Env) Key(t testing.TB, tenantID, role, principal string) string {
	t.Helper()
	k, _, err := e.Store.CreateAPIKey(context.Background(), store.NewKey{TenantID: tenantID, Role: role, Principal: principal})
	if err != nil {
		t.Fatal(err)
	}
	return k.String()
}

// Seed writes n demo events over [from, to).
func (e *Env) Seed(t testing.TB, tenantID string, n int, from, to time.Time) {
	t.Helper()
	if _, err := demo.Seed(context.Background(), e.Store, tenantID, demo.Options{Events: n, From: from, To: to, Seed: 7}); err != nil {
		t.Fatal(err)
	}
}

// CompletedJob puts a COMPLETED job of tenantID whose artifact is data
// (format json or csv) in the store and the bucket, as a worker would, and
// returns its id. Use it with NoWorkers: it claims the oldest PENDING job.
func (e *Env) CompletedJob(t testing.TB, tenantID, format string, data []byte) string {
	t.Helper()
	ctx := context.Background()
	now := e.Store.Now()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	end := time.Date(2026, 3, 31, 23, 59, 59, 0, time.UTC)
	j, _, err := e.Store.CreateJob(ctx, store.NewJob{TenantID: tenantID, RequestedBy: "test", ReportType: "soc2", Format: format,
		PeriodStart: start, PeriodEnd: end, AppliedStart: start, AppliedEnd: end.Add(time.Second), Estimate: now})
	if err != nil {
		t.Fatal(err)
	}
	claimed, err := e.Store.ClaimJob(ctx, "servertest", time.Minute, 0)
	if err != nil || claimed == nil || claimed.ID != j.ID {
		t.Fatalf("claim job %s: got %v, %v", j.ID, claimed, err)
	}
	key := jobs.ArtifactKey(claimed)
	if err := e.Bucket.WriteAll(ctx, key, data, nil); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	manifest := fmt.Appendf(nil, `{"job_id":%q,"sha256":"%x","size":%d}`, j.ID, sum, len(data))
	art := store.Artifact{Key: key, Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:]), Manifest: manifest}
	if err := e.Store.CompleteJob(ctx, claimed, art, 7*24*time.Hour); err != nil {
		t.Fatal(err)
	}
	return j.ID
}

// LogBuffer collects log output safely across goroutines.
type LogBuffer struct {
	mu  sync.Mutex
	buf []byte
}

var _ io.Writer = (*LogBuffer)(nil)

// Write appends p.
func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	return len(p), nil
}

// String returns everything logged so far.
func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.buf)
}
