package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	auditv1 "github.com/exportd/exportd/gen/go/audit/v1"
	"github.com/exportd/exportd/internal/store"
	"github.com/exportd/exportd/internal/store/storetest"
	"github.com/exportd/exportd/internal/webhook"
	"github.com/exportd/exportd/server/servertest"
)

// receiver is a tenant's HTTPS webhook endpoint that answers the given
// status codes in turn (the last one from then on).
type receiver struct {
	srv   *httptest.Server
	mu    sync.Mutex
	codes []int
	got   []received
}

type received struct {
	header http.Header
	body   []byte
	code   int
}

func newReceiver(t *testing.T, codes ...int) *receiver {
	t.Helper()
	r := &receiver{codes: codes}
	r.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		code := r.codes[min(len(r.got), len(r.codes)-1)]
		r.got = append(r.got, received{req.Header.Clone(), body, code})
		r.mu.Unlock()
		w.WriteHeader(code)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) requests() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

func webhookDeliveries(t *testing.T, env *servertest.Env, tenant, jobID string, until func([]string) bool) []string {
	t.Helper()
	var states []string
	waitUntil(t, "webhook deliveries to settle", func() bool {
		ds, err := env.Store.Deliveries(context.Background(), tenant, jobID)
		if err != nil {
			t.Fatal(err)
		}
		states = states[:0]
		for _, d := range ds {
			states = append(states, d.Status.String())
		}
		return until(states)
	})
	return states
}

// TestWebhookDelivered registers a tenant endpoint that fails twice: the
// completion notification is retried with backoff, arrives signed
// (HMAC-SHA256 over timestamp and body) on the third attempt, and the
// delivery log says so.
func TestWebhookDelivered(t *testing.T) {
	t.Parallel()
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			rcv := newReceiver(t, http.StatusInternalServerError, http.StatusBadGateway, http.StatusNoContent)
			env := servertest.Start(t, dialect, servertest.Options{Webhook: webhook.Config{
				Client: rcv.srv.Client(), RetryBase: 10 * time.Millisecond, RetryMax: 40 * time.Millisecond}})
			f := newFixture(t, env)
			ep, _, err := env.Store.CreateWebhook(context.Background(), f.tenant, store.WebhookChange{URL: rcv.srv.URL + "/hooks/exportd"})
			if err != nil {
				t.Fatal(err)
			}
			id := f.create(t)
			job := f.watch(t, id)
			if job.GetStatus() != auditv1.ExportStatus_COMPLETED {
				t.Fatalf("job ended %s", job.GetStatus())
			}
			webhookDeliveries(t, env, f.tenant, id, func(s []string) bool { return len(s) == 1 && s[0] == "DELIVERED" })
			ds, _ := env.Store.Deliveries(context.Background(), f.tenant, id)
			if d := ds[0]; d.Attempts != 3 || d.LastStatusCode != http.StatusNoContent || d.DeliveredAt == nil || d.Event != store.EventExportCompleted {
				t.Errorf("delivery log: attempts %d, last status %d, delivered at %v, event %s", d.Attempts, d.LastStatusCode, d.DeliveredAt, d.Event)
			}
			reqs := rcv.requests()
			if len(reqs) != 3 {
				t.Fatalf("endpoint got %d requests, want 3", len(reqs))
			}
			last := reqs[2]
			if err := webhook.Verify(ep.Secret, last.header.Get(webhook.SignatureHeader), last.body, time.Now(), 5*time.Minute); err != nil {
				t.Errorf("signature: %v", err)
			}
			if err := webhook.Verify("whsec_wrong", last.header.Get(webhook.SignatureHeader), last.body, time.Now(), 5*time.Minute); err == nil {
				t.Error("a wrong secret verified")
			}
			var p store.WebhookPayload
			if err := json.Unmarshal(last.body, &p); err != nil {
				t.Fatal(err)
			}
			if p.Event != "export.completed" || p.JobID != id || p.Status != "COMPLETED" || p.SHA256 != job.GetSha256() ||
				p.DeliveryID != last.header.Get(webhook.DeliveryHeader) || p.ExpiresAt == nil {
				t.Errorf("payload %+v", p)
			}
			for _, r := range reqs {
				if r.header.Get(webhook.DeliveryHeader) != p.DeliveryID || r.header.Get("Content-Type") != "application/json" {
					t.Errorf("retries must carry the same delivery id: %v", r.header)
				}
			}
		})
	}
}

// TestWebhookGivesUp answers every attempt 503: after the configured
// attempts the delivery is FAILED with the endpoint's last answer logged,
// and the job itself is untouched.
func TestWebhookGivesUp(t *testing.T) {
	t.Parallel()
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			rcv := newReceiver(t, http.StatusServiceUnavailable)
			env := servertest.Start(t, dialect, servertest.Options{Webhook: webhook.Config{
				Client: rcv.srv.Client(), MaxAttempts: 3, RetryBase: 10 * time.Millisecond, RetryMax: 40 * time.Millisecond}})
			f := newFixture(t, env)
			if _, _, err := env.Store.CreateWebhook(context.Background(), f.tenant, store.WebhookChange{URL: rcv.srv.URL}); err != nil {
				t.Fatal(err)
			}
			id := f.create(t)
			if job := f.watch(t, id); job.GetStatus() != auditv1.ExportStatus_COMPLETED {
				t.Fatalf("job ended %s", job.GetStatus())
			}
			webhookDeliveries(t, env, f.tenant, id, func(s []string) bool { return len(s) == 1 && s[0] == "FAILED" })
			ds, _ := env.Store.Deliveries(context.Background(), f.tenant, id)
			if d := ds[0]; d.Attempts != 3 || d.LastStatusCode != http.StatusServiceUnavailable || d.LastError != "endpoint answered 503 Service Unavailable" {
				t.Errorf("delivery log: attempts %d, last status %d, last error %q", d.Attempts, d.LastStatusCode, d.LastError)
			}
			if n := len(rcv.requests()); n != 3 {
				t.Errorf("endpoint got %d requests, want 3", n)
			}
		})
	}
}

// TestWebhookEndpointMustBeHTTPS refuses plain-HTTP and relative URLs.
func TestWebhookEndpointMustBeHTTPS(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t, "sqlite", servertest.Options{NoWorkers: true})
	tenant := env.Tenant(t, "Acme", true)
	for _, u := range []string{"http://example.com/hook", "/hook", "not a url", ""} {
		if _, _, err := env.Store.CreateWebhook(context.Background(), tenant, store.WebhookChange{URL: u}); err == nil {
			t.Errorf("%q was accepted", u)
		}
	}
}
