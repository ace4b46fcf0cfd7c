// Package servertest runs a whole exportd (store, workers, API) in-process
// for tests: over real HTTP/1.1 and HTTP/2 (TLS), with SQLite or PostgreSQL.
package servertest

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"gocloud.dev/blob"
	_ "gocloud.dev/blob/memblob" // mem://

	"github.com/exportd/exportd/authz"
	"github.com/exportd/exportd/internal/demo"
	"github.com/exportd/exportd/internal/jobs"
	"github.com/exportd/exportd/internal/store"
	"github.com/exportd/exportd/internal/store/storetest"
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
	Log    *LogBuffer
}

// Options tune Start.
type Options struct {
	Server server.Config
	Jobs   jobs.Config
	// NoWorkers leaves jobs PENDING.
	NoWorkers bool
	// Bucket replaces the default mem:// bucket (the test closes it).
	Bucket *blob.Bucket
	// Webhook tunes the webhook deliverer, which runs with the workers.
	Webhook webhook.Config
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
		b, err := blob.OpenBucket(ctx, "mem://")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		bucket = b
	}
	logs := &LogBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	en, err := authz.NewEnforcer()
	if err != nil {
		t.Fatal(err)
	}
	if o.Jobs.PollInterval == 0 {
		o.Jobs.PollInterval = 50 * time.Millisecond
	}
	runner := jobs.New(st, bucket, log, o.Jobs)
	if o.Server.WatchInterval == 0 {
		o.Server.WatchInterval = 20 * time.Millisecond
	}
	h, err := server.New(st, en, bucket, runner, log, o.Server).Handler()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.EnableHTTP2 = true
	srv.StartTLS()
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
		srv.Close()
		cancel()
		<-done
	})
	return &Env{URL: srv.URL, Client: srv.Client(), Store: st, Bucket: bucket, Runner: runner, Log: logs}
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
