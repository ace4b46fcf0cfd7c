package main_test

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/exportd/exportd/internal/apikey"
	"github.com/exportd/exportd/internal/store/storetest"
)

// cli runs one exportd subcommand against dsn and returns its output.
func cli(t *testing.T, bin, dsn string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, append(args, "--database-url", dsn)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("exportd %s: %v\n%s", strings.Join(args, " "), err, errOut.String())
	}
	return strings.TrimSpace(out.String())
}

// TestRevocationAcrossProcesses runs `exportd serve` on PostgreSQL as a
// subprocess, revokes a key through the CLI (another process) and checks
// the server refuses it on the very next call, well within SPEC's 2
// seconds; a BUNDLE_EXPORT policy created through the CLI applies the same
// way. The server's log never holds the raw key.
func TestRevocationAcrossProcesses(t *testing.T) {
	t.Parallel()
	dsn := storetest.PostgresDSN(t)
	bin := buildExportd(t)
	tenant := cli(t, bin, dsn, "tenant", "create", "--name", "Acme", "--compliance-pack")
	key := cli(t, bin, dsn, "apikey", "create", "--tenant", tenant, "--role", "auditor", "--principal", "audrey@example.com")
	other := cli(t, bin, dsn, "apikey", "create", "--tenant", tenant, "--role", "auditor", "--principal", "otto@example.com")
	k, err := apikey.Parse(key)
	if err != nil {
		t.Fatalf("the CLI printed %q: %v", key, err)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	logs := &lockedBuffer{}
	srv := exec.CommandContext(ctx, bin, "serve", "--addr", addr, "--database-url", dsn, "--data-dir", t.TempDir(), "--workers", "0")
	srv.Stderr, srv.Stdout = logs, logs
	srv.Cancel = func() error { return srv.Process.Signal(os.Interrupt) }
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = srv.Wait()
	})
	base := "http://" + addr
	for i := 0; ; i++ {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if i == 200 {
			t.Fatalf("exportd did not come up: %v\n%s", err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	call := func(method, path, key, body string) int {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("X-API-Key", key)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := call("GET", "/v1/whoami", key, ""); code != http.StatusOK {
		t.Fatalf("whoami before revocation: %d", code)
	}
	out := cli(t, bin, dsn, "apikey", "revoke", "--tenant", tenant, "--key", k.ID)
	if !strings.Contains(out, k.ID) {
		t.Fatalf("revoke printed %q", out)
	}
	if code := call("GET", "/v1/whoami", key, ""); code != http.StatusUnauthorized {
		t.Fatalf("whoami right after revocation through the CLI: %d, want 401", code)
	}
	if code := call("GET", "/v1/whoami", other, ""); code != http.StatusOK {
		t.Fatalf("the other key stopped working: %d", code)
	}
	list := cli(t, bin, dsn, "apikey", "list", "--tenant", tenant)
	if !strings.Contains(list, k.ID) || strings.Contains(list, k.Secret) {
		t.Fatalf("apikey list:\n%s", list)
	}

	// A policy made by the CLI governs the running server's next export.
	export := `{"report_type":"soc2","start_date":"2026-01-01T00:00:00Z","end_date":"2026-01-31T23:59:59Z","format":"json"}`
	if code := call("POST", "/v1/policies:check-export", other, "{}"); code != http.StatusOK {
		t.Fatalf("check-export: %d", code)
	}
	pol := cli(t, bin, dsn, "policy", "create", "--tenant", tenant, "--name", "freeze", "--effect", "deny")
	if code := call("POST", "/v1/audit/exports", other, export); code != http.StatusForbidden {
		t.Fatalf("export under a deny policy: %d, want 403", code)
	}
	cli(t, bin, dsn, "policy", "disable", "--tenant", tenant, "--policy", pol)
	if code := call("POST", "/v1/audit/exports", other, export); code != http.StatusOK {
		t.Fatalf("export after disabling the policy: %d, want 200", code)
	}
	iss := cli(t, bin, dsn, "issuer", "create", "--tenant", tenant, "--name", "acme-labs", "--tier", "TIER_1")
	if !strings.Contains(cli(t, bin, dsn, "issuer", "list", "--tenant", tenant), iss) ||
		!strings.Contains(cli(t, bin, dsn, "policy", "list", "--tenant", tenant), "freeze") {
		t.Fatal("the lists miss what was created")
	}
	cli(t, bin, dsn, "policy", "delete", "--tenant", tenant, "--policy", pol)

	for _, s := range []string{key, k.Secret, other} {
		if strings.Contains(logs.String(), s) {
			t.Fatal("the server log holds a raw key")
		}
	}
	if !strings.Contains(logs.String(), "authentication failed") {
		t.Fatalf("the refusal was not logged:\n%s", logs.String())
	}
}

// lockedBuffer collects a subprocess's output while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
