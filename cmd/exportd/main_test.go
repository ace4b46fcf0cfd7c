package main_test

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// repoRoot is two folders up from this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// buildExportd returns the real binary, built once by TestMain.
func buildExportd(t *testing.T) string {
	t.Helper()
	return bins.exportd
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// run runs a command in dir and returns its trimmed standard output.
func run(t *testing.T, dir string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// TestQuickstart follows the README on the embedded default: the admin CLI
// makes a tenant, a key and data; `exportd serve` runs on SQLite in a local
// folder; the vendor page's two curl commands work verbatim (host and key
// aside), and grpcurl lists, creates and sees field violations.
func TestQuickstart(t *testing.T) {
	t.Parallel()
	for _, tool := range []string{"curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed for this test (CI installs it): %v", tool, err)
		}
	}
	grpcurl := filepath.Join(repoRoot(t), "bin", "grpcurl")
	if _, err := os.Stat(grpcurl); err != nil {
		t.Fatalf("bin/grpcurl is missing: run `make bin/grpcurl` (make test does): %v", err)
	}
	exportd := buildExportd(t)
	dir := t.TempDir()
	tenant := run(t, dir, exportd, "tenant", "create", "--name", "Acme Health", "--compliance-pack")
	key := run(t, dir, exportd, "apikey", "create", "--tenant", tenant, "--role", "auditor", "--principal", "audrey@example.com")
	if !strings.HasPrefix(key, "tl_live_") {
		t.Fatalf("apikey create printed %q", key)
	}
	run(t, dir, exportd, "seed-demo", "--tenant", tenant, "--events", "2000", "--from", "2026-01-01", "--to", "2026-04-01")

	addr := freeAddr(t)
	srv := exec.Command(exportd, "serve", "--addr", addr)
	srv.Dir = dir
	var logs bytes.Buffer
	srv.Stdout, srv.Stderr = &logs, &logs
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = srv.Process.Signal(os.Interrupt)
		_ = srv.Wait()
		if t.Failed() {
			t.Logf("exportd log:\n%s", logs.String())
		}
	})
	base := "http://" + addr
	waitReady(t, base)

	// The vendor page's create request, verbatim apart from host and key.
	out := run(t, dir, "curl", "-sS", "-X", "POST", base+"/v1/audit/exports",
		"-H", "X-API-Key: "+key,
		"-H", "Content-Type: application/json",
		"-d", `{
    "report_type": "soc2",
    "start_date": "2026-01-01T00:00:00Z",
    "end_date": "2026-03-31T23:59:59Z",
    "format": "json"
  }`)
	var created struct {
		JobID               string `json:"job_id"`
		Status              string `json:"status"`
		EstimatedCompletion string `json:"estimated_completion"`
	}
	if err := json.Unmarshal([]byte(out), &created); err != nil || created.Status != "PENDING" || !strings.HasPrefix(created.JobID, "job_") {
		t.Fatalf("create answered %s (%v)", out, err)
	}
	if _, err := time.Parse(time.RFC3339, created.EstimatedCompletion); err != nil {
		t.Fatalf("estimated_completion %q: %v", created.EstimatedCompletion, err)
	}
	waitStatus(t, base, key, created.JobID, "COMPLETED")

	// The page's download request: curl -O saves the file as "download".
	run(t, dir, "curl", "-sS", "-f", "-O", base+"/v1/audit/exports/"+created.JobID+"/download", "-H", "X-API-Key: "+key)
	b, err := os.ReadFile(filepath.Join(dir, "download"))
	if err != nil {
		t.Fatal(err)
	}
	var report map[string]any
	if err := json.Unmarshal(b, &report); err != nil {
		t.Fatalf("downloaded report is not JSON: %v", err)
	}
	for _, field := range []string{"report_type", "tenant_id", "generated_at", "period_start", "period_end", "audit_entries", "access_entries", "controls"} {
		if _, ok := report[field]; !ok {
			t.Errorf("report lacks the page's field %s", field)
		}
	}
	if report["report_type"] != "soc2" || report["tenant_id"] != tenant || report["period_end"] != "2026-03-31T23:59:59Z" || report["audit_entries"] != 2000.0 {
		t.Errorf("report header: %v %v %v %v", report["report_type"], report["tenant_id"], report["period_end"], report["audit_entries"])
	}

	// grpcurl: reflection lists both services; CreateExport works; a bad
	// request names the field.
	list := run(t, dir, grpcurl, "-plaintext", addr, "list")
	for _, svc := range []string{"audit.v1.ExportService", "audit.v1.DownloadService"} {
		if !strings.Contains(list, svc) {
			t.Errorf("grpcurl list lacks %s:\n%s", svc, list)
		}
	}
	out = run(t, dir, grpcurl, "-plaintext", "-H", "X-API-Key: "+key, "-d",
		`{"report_type":"soc2","start_date":"2026-01-01T00:00:00Z","end_date":"2026-03-31T23:59:59Z","format":"csv"}`,
		addr, "audit.v1.ExportService/CreateExport")
	if !strings.Contains(out, `"jobId": "job_`) && !strings.Contains(out, `"job_id": "job_`) {
		t.Errorf("grpcurl CreateExport printed %s", out)
	}
	bad := exec.Command(grpcurl, "-plaintext", "-H", "X-API-Key: "+key, "-d",
		`{"report_type":"pdf","start_date":"2026-01-01T00:00:00Z","end_date":"2026-03-31T23:59:59Z"}`,
		addr, "audit.v1.ExportService/CreateExport")
	badOut, err := bad.CombinedOutput()
	if err == nil || !strings.Contains(string(badOut), "InvalidArgument") || !strings.Contains(string(badOut), "report_type") {
		t.Errorf("bad request via grpcurl: %v\n%s", err, badOut)
	}
}

func waitReady(t *testing.T, base string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("exportd at %s never became ready", base)
}

func waitStatus(t *testing.T, base, key, jobID, want string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequest(http.MethodGet, base+"/v1/audit/exports/"+jobID, nil)
		req.Header.Set("X-API-Key", key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		// REST answers the job itself, flat.
		var got struct {
			Status string `json:"status"`
			Error  string `json:"error"`
		}
		err = json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if got.Status == want {
			return
		}
		if got.Status == "FAILED" {
			t.Fatalf("export failed: %s", got.Error)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("export %s never reached %s", jobID, want)
}
