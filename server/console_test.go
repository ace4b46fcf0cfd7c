package server_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/exportd/exportd/server/servertest"
)

// TestConsoleMounted checks the console owns / without shadowing the API:
// console paths get the app with its security headers, while Connect, REST
// and health paths still reach their handlers.
func TestConsoleMounted(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t, "sqlite", servertest.Options{NoWorkers: true})
	get := func(method, path, contentType, body string) (*http.Response, string) {
		req, err := http.NewRequest(method, env.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		resp := do(t, env, req)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, string(b)
	}

	for _, p := range []string{"/", "/settings/audit", "/settings/billing/add-ons"} {
		resp, body := get(http.MethodGet, p, "", "")
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, `<div id="root">`) {
			t.Errorf("GET %s = %d, want the console", p, resp.StatusCode)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.HasPrefix(csp, "default-src 'self'") {
			t.Errorf("GET %s: Content-Security-Policy %q", p, csp)
		}
	}

	// Connect still answers its own paths (here: no key).
	resp, body := get(http.MethodPost, "/audit.v1.ExportService/WhoAmI", "application/json", "{}")
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "unauthenticated") {
		t.Errorf("WhoAmI without a key = %d %s", resp.StatusCode, body)
	}
	// REST under /v1/ too.
	resp, body = get(http.MethodGet, "/v1/whoami", "", "")
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /v1/whoami without a key = %d %s", resp.StatusCode, body)
	}
	if resp, _ := get(http.MethodGet, "/healthz", "", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("GET /healthz = %d", resp.StatusCode)
	}
	// A procedure no handler serves is a 404 (Connect clients read
	// `unimplemented`), not the console's index.html.
	resp, body = get(http.MethodPost, "/audit.v1.NoSuchService/Method", "application/json", "{}")
	if resp.StatusCode != http.StatusNotFound || strings.Contains(body, "<html") {
		t.Errorf("POST to an unknown procedure = %d %q", resp.StatusCode, body)
	}
}
