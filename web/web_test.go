package web_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/exportd/exportd/web"
)

func get(t *testing.T, h http.Handler, method, target string) *http.Response {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, target, nil))
	return rec.Result()
}

func body(t *testing.T, r *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestConsoleRoutes(t *testing.T) {
	t.Parallel()
	h := web.Handler()

	index := get(t, h, http.MethodGet, "/")
	page := body(t, index)
	if index.StatusCode != http.StatusOK || !strings.Contains(page, `<div id="root">`) {
		t.Fatalf("GET / = %d %q", index.StatusCode, page)
	}
	if csp := index.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("CSP = %q", csp)
	}
	if got := index.Header.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("X-Content-Type-Options = %q", got)
	}

	// Deep links load the app.
	for _, p := range []string{"/settings/audit", "/settings/billing/add-ons"} {
		r := get(t, h, http.MethodGet, p)
		if b := body(t, r); r.StatusCode != http.StatusOK || b != page {
			t.Errorf("GET %s = %d, not index.html", p, r.StatusCode)
		}
	}

	// The script index.html names is served, cacheable forever, as JavaScript.
	m := regexp.MustCompile(`src="(/assets/[^"]+\.js)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("index.html names no script: %s", page)
	}
	js := get(t, h, http.MethodGet, m[1])
	if js.StatusCode != http.StatusOK || !strings.Contains(js.Header.Get("Content-Type"), "javascript") ||
		!strings.Contains(js.Header.Get("Cache-Control"), "immutable") {
		t.Errorf("GET %s = %d %q %q", m[1], js.StatusCode, js.Header.Get("Content-Type"), js.Header.Get("Cache-Control"))
	}
	// The page loads nothing from another origin.
	if regexp.MustCompile(`(src|href)="(https?:)?//`).MatchString(page) {
		t.Errorf("index.html refers to another origin: %s", page)
	}

	for _, c := range []struct{ method, target string }{
		{http.MethodGet, "/assets/missing-0000.js"}, // a stale asset is not the app
		{http.MethodGet, "/robots.txt"},
		{http.MethodPost, "/audit.v1.TenantService/GetTenant"}, // unmounted API: Connect reads unimplemented
		{http.MethodPost, "/"},
	} {
		if r := get(t, h, c.method, c.target); r.StatusCode != http.StatusNotFound {
			t.Errorf("%s %s = %d, want 404", c.method, c.target, r.StatusCode)
		}
	}
}
