package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	auditv1 "github.com/exportd/exportd/gen/go/audit/v1"
	"github.com/exportd/exportd/gen/go/audit/v1/auditv1connect"
	"github.com/exportd/exportd/internal/store"
	"github.com/exportd/exportd/internal/store/storetest"
	"github.com/exportd/exportd/internal/webhook"
	"github.com/exportd/exportd/server/servertest"
)

// loopback is the allow list the tests' receivers need: httptest listens on
// 127.0.0.1, which webhooks may not reach by default.
var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}

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
			env := servertest.Start(t, dialect, servertest.Options{WebhookAllow: loopback, Webhook: webhook.Config{
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
			env := servertest.Start(t, dialect, servertest.Options{WebhookAllow: loopback, Webhook: webhook.Config{
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

// insideURLs are webhook destinations inside the service's networks, with
// the reason each is refused.
var insideURLs = map[string]string{
	"https://127.0.0.1/hook":                    "127.0.0.1 is a loopback address",
	"https://[::1]:8443/hook":                   "::1 is a loopback address",
	"https://10.1.2.3/hook":                     "10.1.2.3 is a private address",
	"https://192.168.0.10/hook":                 "192.168.0.10 is a private address",
	"https://[fd00::1]/hook":                    "fd00::1 is a private address",
	"https://169.254.169.254/latest/meta-data/": "169.254.169.254 is a link-local address",
	"https://[fe80::1]/hook":                    "fe80::1 is a link-local address",
	"https://100.64.0.1/hook":                   "100.64.0.1 is a carrier-grade NAT address",
	"https://0.0.0.0/hook":                      "0.0.0.0 is an unspecified address",
	"https://224.0.0.1/hook":                    "224.0.0.1 is a multicast address",
	"https://[::ffff:7f00:1]/hook":              "127.0.0.1 is a loopback address",
	"https://localhost:8443/hook":               "localhost resolves to ",
}

// TestWebhookRefusesInsideDestinations: creating or updating a webhook whose
// host is, or resolves to, an inside address is invalid_argument on the url
// field, saying why; an operator's allowed CIDR lets that network in, and
// only that one.
func TestWebhookRefusesInsideDestinations(t *testing.T) {
	t.Parallel()
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			env := servertest.Start(t, dialect, servertest.Options{NoWorkers: true,
				WebhookAllow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
			ctx := context.Background()
			tn := env.Tenant(t, "Acme", true)
			admin := auditv1connect.NewTenantServiceClient(env.Client, env.URL, withKey(env.Key(t, tn, "admin", "root@example.com")))
			events := []string{"export.completed"}
			for u, why := range insideURLs {
				if u == "https://10.1.2.3/hook" {
					continue // allowed here
				}
				_, err := admin.CreateWebhook(ctx, connect.NewRequest(&auditv1.CreateWebhookRequest{Url: u, Events: events}))
				if got := violationPaths(t, err); !slices.Equal(got, []string{"url"}) || !strings.Contains(err.Error(), why) {
					t.Errorf("create %s: %v (violations %v), want a url violation saying %q", u, err, got, why)
				}
			}
			ok, err := admin.CreateWebhook(ctx, connect.NewRequest(&auditv1.CreateWebhookRequest{Url: "https://10.1.2.3/hook", Events: events}))
			if err != nil {
				t.Fatalf("an allowed CIDR was refused: %v", err)
			}
			_, err = admin.UpdateWebhook(ctx, connect.NewRequest(&auditv1.UpdateWebhookRequest{WebhookId: ok.Msg.GetWebhook().GetWebhookId(),
				Url: "https://169.254.169.254/latest/meta-data/", Events: events, Enabled: true}))
			if got := violationPaths(t, err); !slices.Equal(got, []string{"url"}) || !strings.Contains(err.Error(), "link-local") {
				t.Errorf("update to the metadata service: %v (violations %v)", err, got)
			}
			ws, err := env.Store.Webhooks(ctx, tn)
			if err != nil || len(ws) != 1 || ws[0].URL != "https://10.1.2.3/hook" {
				t.Fatalf("webhooks after the refusals: %v, %v", ws, err)
			}
		})
	}
}

// TestWebhookRefusedAtDial saves inside endpoints past the API's check (as
// a host that resolved elsewhere at creation and rebinds would be): the
// deliverer's dialer refuses the address it is about to connect, the
// receiver sees nothing, and the delivery log says why.
func TestWebhookRefusedAtDial(t *testing.T) {
	t.Parallel()
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			rcv := newReceiver(t, http.StatusNoContent)
			env := servertest.Start(t, dialect, servertest.Options{Webhook: webhook.Config{
				Client: rcv.srv.Client(), MaxAttempts: 1}})
			f := newFixture(t, env)
			port := rcv.srv.Listener.Addr().(*net.TCPAddr).Port
			for _, u := range []string{rcv.srv.URL, fmt.Sprintf("https://localhost:%d/hook", port)} {
				if _, _, err := env.Store.CreateWebhook(context.Background(), f.tenant, store.WebhookChange{URL: u}); err != nil {
					t.Fatal(err)
				}
			}
			id := f.create(t)
			if job := f.watch(t, id); job.GetStatus() != auditv1.ExportStatus_COMPLETED {
				t.Fatalf("job ended %s", job.GetStatus())
			}
			webhookDeliveries(t, env, f.tenant, id, func(s []string) bool { return slices.Equal(s, []string{"FAILED", "FAILED"}) })
			ds, _ := env.Store.Deliveries(context.Background(), f.tenant, id)
			for _, d := range ds {
				if !strings.HasPrefix(d.LastError, "refused to connect: ") || !strings.Contains(d.LastError, "is a loopback address") || d.LastStatusCode != 0 {
					t.Errorf("delivery log: last status %d, last error %q", d.LastStatusCode, d.LastError)
				}
			}
			if n := len(rcv.requests()); n != 0 {
				t.Errorf("the inside endpoint got %d requests", n)
			}
		})
	}
}

// TestWebhookRedirectNotFollowed: an endpoint answering 307 to another
// address (here another receiver, which could be the metadata service) is
// a failed delivery naming the redirect; the target sees nothing.
func TestWebhookRedirectNotFollowed(t *testing.T) {
	t.Parallel()
	target := newReceiver(t, http.StatusNoContent)
	redirector := httptest.NewTLSServer(http.RedirectHandler(target.srv.URL+"/latest/meta-data/", http.StatusTemporaryRedirect))
	t.Cleanup(redirector.Close)
	env := servertest.Start(t, "sqlite", servertest.Options{WebhookAllow: loopback, Webhook: webhook.Config{
		Client: redirector.Client(), MaxAttempts: 1}})
	f := newFixture(t, env)
	if _, _, err := env.Store.CreateWebhook(context.Background(), f.tenant, store.WebhookChange{URL: redirector.URL + "/hook"}); err != nil {
		t.Fatal(err)
	}
	id := f.create(t)
	if job := f.watch(t, id); job.GetStatus() != auditv1.ExportStatus_COMPLETED {
		t.Fatalf("job ended %s", job.GetStatus())
	}
	webhookDeliveries(t, env, f.tenant, id, func(s []string) bool { return slices.Equal(s, []string{"FAILED"}) })
	ds, _ := env.Store.Deliveries(context.Background(), f.tenant, id)
	if d := ds[0]; d.LastStatusCode != http.StatusTemporaryRedirect || !strings.Contains(d.LastError, "redirects are not followed") ||
		!strings.Contains(d.LastError, target.srv.URL+"/latest/meta-data/") {
		t.Errorf("delivery log: last status %d, last error %q", d.LastStatusCode, d.LastError)
	}
	if n := len(target.requests()); n != 0 {
		t.Errorf("the redirect target got %d requests", n)
	}
}
