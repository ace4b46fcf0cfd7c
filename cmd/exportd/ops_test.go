package main_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/exportd/exportd/internal/certfile/certfiletest"
	"github.com/exportd/exportd/internal/store/storetest"
)

// bins holds the exportd and exportctl binaries TestMain builds.
var bins struct{ exportd, exportctl string }

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "exportd-test")
	if err != nil {
		panic(err)
	}
	bins.exportd, bins.exportctl = filepath.Join(dir, "exportd"), filepath.Join(dir, "exportctl")
	for out, pkg := range map[string]string{bins.exportd: ".", bins.exportctl: "../exportctl"} {
		if b, err := exec.Command("go", "build", "-o", out, pkg).CombinedOutput(); err != nil {
			os.RemoveAll(dir)
			panic("build " + pkg + ": " + err.Error() + "\n" + string(b))
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// server is a running `exportd serve` subprocess.
type server struct {
	url     string
	cmd     *exec.Cmd
	mu      sync.Mutex
	log     bytes.Buffer // every line of stderr
	stopped chan struct{}
}

// storeFlags chooses the dialect's storage for every exportd subcommand.
func storeFlags(t *testing.T, dialect string) []string {
	t.Helper()
	if dialect == "postgres" {
		return []string{"--database-url", storetest.PostgresDSN(t), "--blob-url", "file://" + t.TempDir()}
	}
	return []string{"--data-dir", t.TempDir()}
}

func admin(t *testing.T, store []string, args ...string) string {
	t.Helper()
	out, err := exec.Command(bins.exportd, append(args, store...)...).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("exportd %v: %v\n%s", args, err, ee.Stderr)
		}
		t.Fatalf("exportd %v: %v", args, err)
	}
	return strings.TrimSpace(string(out))
}

// serve starts exportd on 127.0.0.1:0 and reads the address it logs.
func serve(t *testing.T, store []string, extra ...string) *server {
	t.Helper()
	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--log-format", "json", "--log-level", "debug", "--workers", "1"}, store...)
	cmd := exec.Command(bins.exportd, append(args, extra...)...)
	cmd.Env = append(os.Environ(), "OTEL_EXPORTER_OTLP_ENDPOINT=", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT=")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{cmd: cmd, stopped: make(chan struct{})}
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Bytes()
			s.mu.Lock()
			s.log.Write(line)
			s.log.WriteByte('\n')
			s.mu.Unlock()
			var rec struct{ Msg, URL string }
			if json.Unmarshal(line, &rec) == nil && rec.Msg == "exportd listening" {
				urls <- rec.URL
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
		close(s.stopped)
	}()
	t.Cleanup(func() { _ = s.stop() })
	select {
	case s.url = <-urls:
	case <-s.stopped:
		t.Fatalf("exportd exited before listening:\n%s", s.logs())
	}
	return s
}

// stop sends SIGTERM and waits for a clean exit.
func (s *server) stop() error {
	if s.cmd.ProcessState != nil {
		return nil
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	<-s.stopped
	return s.cmd.Wait()
}

func (s *server) logs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}

func exportctl(t *testing.T, dir string, env []string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bins.exportctl, args...)
	cmd.Dir = dir
	cmd.Env = append([]string{"HOME=" + dir, "XDG_CONFIG_HOME=" + dir}, env...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return string(out), cmd.ProcessState.ExitCode()
}

// TestLogsHoldNoAPIKey runs a whole session against a real exportd over h2c
// (create, watch and download over Connect and gRPC, a wrong secret, a
// viewer's refused export, metrics and health) and then reads every log
// line: each is JSON with a level and message, request lines carry trace
// and request ids, and no line holds an API key or its secret.
func TestLogsHoldNoAPIKey(t *testing.T) {
	t.Parallel()
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			store := storeFlags(t, dialect)
			tenant := admin(t, store, "tenant", "create", "--name", "Acme", "--compliance-pack")
			key := admin(t, store, "apikey", "create", "--tenant", tenant, "--role", "auditor", "--principal", "audrey@example.com")
			viewer := admin(t, store, "apikey", "create", "--tenant", tenant, "--role", "viewer")
			admin(t, store, "seed-demo", "--tenant", tenant, "--events", "500", "--from", "2026-01-01", "--to", "2026-04-01")
			s := serve(t, store)
			if !strings.HasPrefix(s.url, "http://127.0.0.1:") || strings.HasSuffix(s.url, ":0") {
				t.Fatalf("exportd logged %q, not the bound address", s.url)
			}

			dir := t.TempDir()
			env := []string{"EXPORTD_URL=" + s.url, "EXPORTD_API_KEY=" + key}
			for _, protocol := range []string{"connect", "grpc"} {
				out, code := exportctl(t, dir, env, "--protocol", protocol, "export", "create", "--type", "soc2",
					"--from", "2026-01-01", "--to", "2026-03-31", "--format", "csv", "--wait", "-o", protocol+".csv")
				if code != 0 || !strings.Contains(out, "(verified)") {
					t.Fatalf("create --wait over %s: exit %d\n%s", protocol, code, out)
				}
			}
			secret := key[strings.LastIndex(key, "_")+1:]
			wrong := key[:len(key)-len(secret)] + strings.Repeat("x", len(secret))
			if out, code := exportctl(t, dir, []string{"EXPORTD_URL=" + s.url, "EXPORTD_API_KEY=" + wrong}, "export", "list"); code != 3 {
				t.Errorf("wrong secret: exit %d\n%s", code, out)
			}
			if out, code := exportctl(t, dir, []string{"EXPORTD_URL=" + s.url, "EXPORTD_API_KEY=" + viewer}, "export", "create",
				"--type", "soc2", "--from", "2026-01-01", "--to", "2026-01-31"); code != 3 {
				t.Errorf("viewer create: exit %d\n%s", code, out)
			}
			for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
				resp, err := http.Get(s.url + path)
				if err != nil {
					t.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Errorf("GET %s: %d", path, resp.StatusCode)
				}
			}
			if err := s.stop(); err != nil {
				t.Fatalf("exportd did not shut down cleanly: %v\n%s", err, s.logs())
			}

			logs := s.logs()
			lines := strings.Split(strings.TrimSpace(logs), "\n")
			var authFailed, completed int
			for _, line := range lines {
				for _, secretish := range []string{key, secret, viewer, viewer[strings.LastIndex(viewer, "_")+1:], wrong, strings.Repeat("x", len(secret))} {
					if strings.Contains(line, secretish) {
						t.Errorf("a log line holds an API key or secret: %s", line)
					}
				}
				var rec map[string]any
				if err := json.Unmarshal([]byte(line), &rec); err != nil {
					t.Errorf("log line is not JSON: %s", line)
					continue
				}
				if rec["level"] == nil || rec["msg"] == nil || rec["time"] == nil {
					t.Errorf("log line lacks time, level or msg: %s", line)
				}
				switch rec["msg"] {
				case "authentication failed":
					authFailed++
					if rec["request_id"] == nil || rec["trace_id"] == nil || rec["span_id"] == nil {
						t.Errorf("request log line lacks request or trace ids: %s", line)
					}
				case "export completed":
					completed++
					if rec["trace_id"] == nil {
						t.Errorf("job log line lacks its trace id: %s", line)
					}
				}
			}
			if authFailed != 1 || completed != 2 {
				t.Errorf("saw %d authentication failures and %d completed exports in %d lines; want 1 and 2:\n%s", authFailed, completed, len(lines), logs)
			}
		})
	}
}

// TestServeTLS serves HTTP/2 over TLS from --tls-cert/--tls-key, and picks
// up a renewed certificate without a restart.
func TestServeTLS(t *testing.T) {
	t.Parallel()
	store := storeFlags(t, "sqlite")
	tenant := admin(t, store, "tenant", "create", "--name", "Acme", "--compliance-pack")
	key := admin(t, store, "apikey", "create", "--tenant", tenant, "--role", "auditor")
	dir := t.TempDir()
	cert, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	certfiletest.Write(t, cert, keyFile, "first")
	s := serve(t, store, "--tls-cert", cert, "--tls-key", keyFile)
	if !strings.HasPrefix(s.url, "https://127.0.0.1:") {
		t.Fatalf("TLS server logged %q", s.url)
	}
	env := []string{"EXPORTD_URL=" + s.url, "EXPORTD_API_KEY=" + key, "EXPORTD_CA_FILE=" + cert}
	for _, protocol := range []string{"connect", "grpc"} {
		if out, code := exportctl(t, dir, env, "--protocol", protocol, "whoami"); code != 0 || !strings.Contains(out, "auditor") {
			t.Fatalf("whoami over TLS with %s: exit %d\n%s", protocol, code, out)
		}
	}
	// Without the CA file the self-signed certificate is refused.
	if out, code := exportctl(t, dir, env[:2], "whoami"); code != 1 || !strings.Contains(out, "certificate") {
		t.Errorf("untrusted certificate: exit %d\n%s", code, out)
	}

	if got := servedName(t, s.url, cert); got != "first" {
		t.Fatalf("serving %q", got)
	}
	certfiletest.Write(t, cert, keyFile, "second")
	later := time.Now().Add(time.Minute)
	for _, p := range []string{cert, keyFile} {
		if err := os.Chtimes(p, later, later); err != nil {
			t.Fatal(err)
		}
	}
	if got := servedName(t, s.url, cert); got != "second" {
		t.Fatalf("after renewal serving %q, want second", got)
	}
}

// servedName makes a fresh HTTP/2 TLS connection and returns the common
// name of the certificate the server presented.
func servedName(t *testing.T, url, caFile string) string {
	t.Helper()
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get(url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Errorf("served %s, want HTTP/2", resp.Proto)
	}
	return resp.TLS.PeerCertificates[0].Subject.CommonName
}
