package main_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/exportd/exportd/internal/store/storetest"
	"github.com/exportd/exportd/server/servertest"
)

// exportctl is the binary under test, built once by TestMain.
var exportctl string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "exportctl-test")
	if err != nil {
		panic(err)
	}
	exportctl = filepath.Join(dir, "exportctl")
	if out, err := exec.Command("go", "build", "-o", exportctl, ".").CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		panic("build exportctl: " + err.Error() + "\n" + string(out))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// cli runs exportctl against env with key, from a fresh working folder and
// home (so no config file of the machine leaks in).
type cli struct {
	t   *testing.T
	dir string
	env []string
}

func newCLI(t *testing.T, env *servertest.Env, key string) *cli {
	t.Helper()
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: env.Certificate.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return &cli{t: t, dir: dir, env: []string{
		"HOME=" + dir, "XDG_CONFIG_HOME=" + filepath.Join(dir, "config"), "PATH=" + os.Getenv("PATH"),
		"EXPORTD_URL=" + env.URL, "EXPORTD_API_KEY=" + key, "EXPORTD_CA_FILE=" + ca,
	}}
}

func (c *cli) run(args ...string) (stdout, stderr string, code int) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, exportctl, args...)
	cmd.Dir, cmd.Env = c.dir, c.env
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		c.t.Fatalf("run exportctl: %v", err)
	}
	return o.String(), e.String(), code
}

// ok runs a command that must succeed.
func (c *cli) ok(args ...string) (stdout, stderr string) {
	c.t.Helper()
	o, e, code := c.run(args...)
	if code != 0 {
		c.t.Fatalf("exportctl %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, o, e)
	}
	return o, e
}

var createdRE = regexp.MustCompile(`created (job_[a-z0-9]+)`)

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestCreateWaitDownloads creates a report with --wait over Connect and
// gRPC and finds on disk exactly the artifact the server stored; then lists,
// gets, and resumes a partial download.
func TestCreateWaitDownloads(t *testing.T) {
	t.Parallel()
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			env := servertest.Start(t, dialect, servertest.Options{})
			tenant := env.Tenant(t, "Acme", true)
			key := env.Key(t, tenant, "auditor", "audrey@example.com")
			env.Seed(t, tenant, 300, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC))
			c := newCLI(t, env, key)

			for _, protocol := range []string{"connect", "grpc"} {
				out := "soc2-" + protocol + ".csv"
				stdout, stderr := c.ok("--protocol", protocol, "export", "create", "--type", "soc2",
					"--from", "2026-01-01", "--to", "2026-03-31", "--format", "csv", "--wait", "-o", out)
				m := createdRE.FindStringSubmatch(stderr)
				if m == nil {
					t.Fatalf("no job id in stderr: %s", stderr)
				}
				jobID := m[1]
				// Not a terminal: plain progress lines, ending COMPLETED.
				if !strings.Contains(stderr, jobID+" COMPLETED rows") {
					t.Errorf("stderr lacks the COMPLETED progress line:\n%s", stderr)
				}
				j, err := env.Store.Job(context.Background(), tenant, jobID)
				if err != nil {
					t.Fatal(err)
				}
				if got, want := j.PeriodEnd.UTC(), time.Date(2026, 3, 31, 23, 59, 59, 0, time.UTC); !got.Equal(want) {
					t.Errorf("period end %s, want the whole last day %s", got, want)
				}
				artifact, err := env.Bucket.ReadAll(context.Background(), j.ArtifactKey)
				if err != nil {
					t.Fatal(err)
				}
				file, err := os.ReadFile(filepath.Join(c.dir, out))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(file, artifact) || sha(file) != j.ArtifactSha256 {
					t.Fatalf("%s: %d bytes sha %s; artifact %d bytes sha %s", out, len(file), sha(file), len(artifact), j.ArtifactSha256)
				}
				if !strings.Contains(stdout, out+": ") || !strings.Contains(stdout, j.ArtifactSha256+" (verified)") {
					t.Errorf("stdout does not report the verified file: %s", stdout)
				}

				// Resume: half the file is there; the rest is appended.
				partial := "partial-" + protocol + ".csv"
				if err := os.WriteFile(filepath.Join(c.dir, partial), artifact[:len(artifact)/2], 0o600); err != nil {
					t.Fatal(err)
				}
				c.ok("--protocol", protocol, "export", "download", jobID, "--resume", "-o", partial)
				if got, _ := os.ReadFile(filepath.Join(c.dir, partial)); !bytes.Equal(got, artifact) {
					t.Fatalf("resumed file differs from the artifact (%d vs %d bytes)", len(got), len(artifact))
				}
				// Default name: the server's filename, in the working folder.
				stdout, _ = c.ok("export", "download", jobID, "--output", "json")
				var res struct {
					File   string `json:"file"`
					SHA256 string `json:"sha256"`
				}
				if err := json.Unmarshal([]byte(stdout), &res); err != nil {
					t.Fatalf("download --output json: %v: %s", err, stdout)
				}
				if !strings.HasPrefix(res.File, "soc2-") || !strings.HasSuffix(res.File, ".csv") || res.SHA256 != j.ArtifactSha256 {
					t.Errorf("download to default name: %+v", res)
				}
				// A corrupt partial file is caught by the final check.
				bad := "bad-" + protocol + ".csv"
				corrupt := append([]byte("X"), artifact[1:len(artifact)/2]...)
				if err := os.WriteFile(filepath.Join(c.dir, bad), corrupt, 0o600); err != nil {
					t.Fatal(err)
				}
				_, stderr, code := c.run("export", "download", jobID, "--resume", "-o", bad)
				if code != 1 || !strings.Contains(stderr, "does not verify") {
					t.Errorf("corrupt resume: exit %d, stderr %s", code, stderr)
				}

				stdout, _ = c.ok("export", "get", jobID)
				for _, want := range []string{"status:", "COMPLETED", j.ArtifactSha256} {
					if !strings.Contains(stdout, want) {
						t.Errorf("export get lacks %q:\n%s", want, stdout)
					}
				}
			}
			stdout, _ := c.ok("export", "list", "--output", "json")
			var list struct {
				Exports []struct {
					JobID  string `json:"job_id"`
					Status string `json:"status"`
				} `json:"exports"`
			}
			if err := json.Unmarshal([]byte(stdout), &list); err != nil {
				t.Fatalf("list --output json: %v\n%s", err, stdout)
			}
			if len(list.Exports) != 2 || list.Exports[0].Status != "COMPLETED" {
				t.Errorf("list: %+v", list.Exports)
			}
			stdout, _ = c.ok("export", "list")
			if !strings.HasPrefix(stdout, "JOB ID") || strings.Count(stdout, "COMPLETED") != 2 {
				t.Errorf("list table:\n%s", stdout)
			}
		})
	}
}

// TestErrorExitCodes checks that every failure says what went wrong and
// exits with the documented code.
func TestErrorExitCodes(t *testing.T) {
	t.Parallel()
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			env := servertest.Start(t, dialect, servertest.Options{})
			acme := env.Tenant(t, "Acme", true)
			auditor := env.Key(t, acme, "auditor", "audrey@example.com")
			viewer := env.Key(t, acme, "viewer", "vic@example.com")
			noPack := env.Key(t, env.Tenant(t, "NoPack", false), "admin", "ann@example.com")
			env.Seed(t, acme, 50, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC))
			good := newCLI(t, env, auditor)
			create := []string{"export", "create", "--type", "soc2", "--from", "2026-01-01", "--to", "2026-01-31"}

			// One COMPLETED job, then the clock moves past its download window.
			_, stderr := good.ok(append(create, "--wait", "-o", "r.json")...)
			jobID := createdRE.FindStringSubmatch(stderr)[1]

			wrongSecret := auditor[:len(auditor)-4] + "abcd"
			cases := []struct {
				name string
				key  string
				args []string
				code int
				want string
			}{
				{"bad key", "tl_live_nosuchkey0000000_" + strings.Repeat("a", 52), create, 3, "unauthenticated: invalid API key"},
				{"wrong secret", wrongSecret, []string{"export", "list"}, 3, "unauthenticated: invalid API key"},
				{"denied", viewer, create, 3, `permission_denied: role "viewer" lacks the tenant.audit.export permission`},
				{"no compliance pack", noPack, create, 5, "failed_precondition: the Compliance Pack add-on is not enabled"},
				{"not found", auditor, []string{"export", "get", "job_doesnotexist"}, 4, `not_found: export "job_doesnotexist" not found`},
				{"bad date", auditor, []string{"export", "create", "--type", "soc2", "--from", "yesterday", "--to", "2026-01-31"}, 2, `--from: "yesterday" is neither RFC3339`},
				{"end before start", auditor, []string{"export", "create", "--type", "soc2", "--from", "2026-02-01", "--to", "2026-01-01"}, 2, "end_date: end_date 2026-01-01T23:59:59Z is before start_date"},
				{"bad type", auditor, []string{"export", "create", "--type", "sox", "--from", "2026-01-01", "--to", "2026-01-31"}, 2, "invalid_argument"},
				{"no key", "", []string{"export", "list"}, 2, "no API key: set EXPORTD_API_KEY"},
				{"bad protocol", auditor, []string{"--protocol", "soap", "export", "list"}, 2, `--protocol "soap": want connect or grpc`},
				{"unknown command", auditor, []string{"exprot"}, 2, `unknown command "exprot"`},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					stdout, stderr, code := newCLI(t, env, tc.key).run(tc.args...)
					if code != tc.code || !strings.Contains(stderr, tc.want) {
						t.Errorf("exit %d, want %d; stderr %q lacks %q (stdout %q)", code, tc.code, stderr, tc.want, stdout)
					}
					if stdout != "" {
						t.Errorf("stdout should be empty on error: %q", stdout)
					}
				})
			}

			// Expired: the download window (7 days) has passed.
			env.Store.SetClock(func() time.Time { return time.Now().UTC().Add(8 * 24 * time.Hour) })
			_, stderr, code := good.run("export", "download", jobID, "-o", "late.json")
			if code != 5 || !strings.Contains(stderr, "failed_precondition: export "+jobID+" expired at") || !strings.Contains(stderr, "create a new export") {
				t.Errorf("expired download: exit %d, stderr %q", code, stderr)
			}
			if _, err := os.Stat(filepath.Join(good.dir, "late.json")); !os.IsNotExist(err) {
				t.Errorf("a refused download left a file behind: %v", err)
			}
		})
	}
}

// TestFailedExportExitCode: a job that ends FAILED makes watch exit 6 with
// the job's error.
func TestFailedExportExitCode(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t, "sqlite", servertest.Options{NoWorkers: true})
	tenant := env.Tenant(t, "Acme", true)
	c := newCLI(t, env, env.Key(t, tenant, "admin", "ann@example.com"))
	// A GDPR export needs the tenant's controller.
	if _, err := env.Store.SetGDPRProfile(context.Background(), tenant, map[string]any{"controller": map[string]any{"name": "Acme GmbH"}}); err != nil {
		t.Fatal(err)
	}
	stdout, _ := c.ok("export", "create", "--type", "gdpr", "--from", "2026-01-01", "--to", "2026-01-31", "--output", "json")
	var created struct {
		JobID  string `json:"job_id"`
		Status string `json:"status"`
	}
	if err := json.Unmarshal([]byte(stdout), &created); err != nil || created.Status != "PENDING" {
		t.Fatalf("create --output json: %v %q", err, stdout)
	}
	c.ok("export", "cancel", created.JobID)
	stdout, stderr, code := c.run("export", "watch", created.JobID)
	if code != 6 || !strings.Contains(stderr, "export "+created.JobID+" FAILED: cancelled by ann@example.com") {
		t.Errorf("watch of a failed job: exit %d, stderr %q", code, stderr)
	}
	if !strings.Contains(stdout, "FAILED") {
		t.Errorf("watch should still print the job: %q", stdout)
	}
}

// TestConfigFile reads the URL and key from --config when neither flags nor
// the environment set them, and flags win over the file.
func TestConfigFile(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t, "sqlite", servertest.Options{NoWorkers: true})
	tenant := env.Tenant(t, "Acme", true)
	key := env.Key(t, tenant, "viewer", "vic@example.com")
	c := newCLI(t, env, "")
	cfg := filepath.Join(c.dir, "exportctl.yaml")
	body := "url: " + env.URL + "\napi_key: " + key + "\nca_file: " + filepath.Join(c.dir, "ca.pem") + "\noutput: json\n"
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	c.env = []string{"HOME=" + c.dir, "XDG_CONFIG_HOME=" + filepath.Join(c.dir, "config")}
	stdout, _ := c.ok("--config", cfg, "whoami")
	if !strings.Contains(stdout, `"role": "viewer"`) {
		t.Errorf("whoami from config file: %s", stdout)
	}
	stdout, _ = c.ok("--config", cfg, "--output", "table", "whoami")
	if !strings.HasPrefix(stdout, "TENANT") {
		t.Errorf("--output flag should beat the file: %s", stdout)
	}
	_, stderr, code := c.run("--config", filepath.Join(c.dir, "missing.yaml"), "whoami")
	if code != 2 || !strings.Contains(stderr, "read config") {
		t.Errorf("missing --config file: exit %d, %s", code, stderr)
	}
}
