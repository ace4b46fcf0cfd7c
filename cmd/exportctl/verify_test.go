package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/exportd/exportd/internal/store/storetest"
	"github.com/exportd/exportd/reports"
	"github.com/exportd/exportd/server/servertest"
)

// TestVerifyDownloadedReport is the auditor's path: download a report with
// its manifest, check it offline, and see each kind of tampering refused
// with its own message and exit code 7.
func TestVerifyDownloadedReport(t *testing.T) {
	t.Parallel()
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			env := servertest.Start(t, dialect, servertest.Options{})
			tenant := env.Tenant(t, "Acme", true)
			env.Seed(t, tenant, 200, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC))
			c := newCLI(t, env, env.Key(t, tenant, "auditor", "audrey@example.com"))

			stdout, stderr := c.ok("export", "create", "--type", "soc2", "--from", "2026-01-01", "--to", "2026-03-31",
				"--format", "csv", "--wait", "-o", "r.csv", "--with-manifest")
			jobID := createdRE.FindStringSubmatch(stderr)[1]
			if !strings.Contains(stdout, "r.csv.manifest.json: signed manifest") {
				t.Errorf("download --with-manifest does not mention the manifest:\n%s", stdout)
			}
			j, err := env.Store.Job(context.Background(), tenant, jobID)
			if err != nil {
				t.Fatal(err)
			}
			saved := read(t, c, "r.csv.manifest.json")
			if !bytes.Equal(saved, j.Manifest) {
				t.Fatalf("saved manifest differs from the stored one:\n%s\n%s", saved, j.Manifest)
			}
			// export manifest, to a file and to stdout, gives the same bytes.
			c.ok("--protocol", "grpc", "export", "manifest", jobID, "-o", "m.json")
			stdout, _ = c.ok("export", "manifest", jobID)
			if !bytes.Equal(read(t, c, "m.json"), j.Manifest) || stdout != string(j.Manifest) {
				t.Fatalf("export manifest differs from the stored one")
			}
			signer, _ := env.Keys.KeySet().Signer()

			// Valid: keys from $EXPORTD_URL, then from a saved file (offline).
			keys := filepath.Join(c.dir, "keys.json")
			if err := os.WriteFile(keys, get(t, env, env.URL+"/.well-known/exportd-keys.json"), 0o600); err != nil {
				t.Fatal(err)
			}
			for _, extra := range [][]string{nil, {"--keys", keys}, {"--keys", env.URL + "/.well-known/exportd-keys.json"}} {
				stdout, _ = c.ok(append([]string{"verify", "--report", "r.csv", "--manifest", "m.json"}, extra...)...)
				for _, want := range []string{"r.csv: verified", jobID, "soc2 (csv)", "2026-01-01T00:00:00Z .. 2026-03-31T23:59:59Z",
					"rows:", j.ArtifactSha256, signer.ID} {
					if !strings.Contains(stdout, want) {
						t.Errorf("verify %v: output lacks %q:\n%s", extra, want, stdout)
					}
				}
			}
			stdout, _ = c.ok("verify", "--report", "r.csv", "--manifest", "m.json", "--keys", keys, "--output", "json")
			var res struct {
				Verified bool   `json:"verified"`
				JobID    string `json:"job_id"`
				SHA256   string `json:"report_sha256"`
				KeyID    string `json:"signing_key_id"`
				Rows     int64  `json:"rows"`
			}
			if err := json.Unmarshal([]byte(stdout), &res); err != nil || !res.Verified || res.JobID != jobID ||
				res.SHA256 != j.ArtifactSha256 || res.KeyID != signer.ID || res.Rows == 0 {
				t.Errorf("verify --output json: %v %s", err, stdout)
			}

			// Tampered copies of the report, and keys of another server.
			report := read(t, c, "r.csv")
			flipped := bytes.Clone(report)
			i := len(flipped) / 2
			for !isAlnum(flipped[i]) {
				i++
			}
			flipped[i] ^= 0x01
			write(t, c, "flipped.csv", flipped)
			lines := bytes.SplitAfter(report, []byte("\n"))
			write(t, c, "removed.csv", bytes.Join(append(lines[:len(lines)/2:len(lines)/2], lines[len(lines)/2+1:]...), nil))

			other := servertest.Start(t, "sqlite", servertest.Options{NoWorkers: true})
			otherKeys := filepath.Join(c.dir, "other-keys.json")
			if err := os.WriteFile(otherKeys, get(t, other, other.URL+"/.well-known/exportd-keys.json"), 0o600); err != nil {
				t.Fatal(err)
			}
			cases := []struct {
				name  string
				args  []string
				wants []string
			}{
				{"flipped byte", []string{"--report", "flipped.csv", "--manifest", "m.json"},
					[]string{"flipped.csv does not verify against m.json", reports.ErrReportDigest.Error()}},
				{"removed row", []string{"--report", "removed.csv", "--manifest", "m.json", "--keys", keys},
					[]string{reports.ErrRowCount.Error()}},
				{"keys of another server", []string{"--report", "r.csv", "--manifest", "m.json", "--keys", otherKeys},
					[]string{reports.ErrUnknownKey.Error(), signer.ID, "from another server"}},
				{"keys of another server by URL", []string{"--report", "r.csv", "--manifest", "m.json", "--keys", other.URL + "/.well-known/exportd-keys.json"},
					[]string{reports.ErrUnknownKey.Error()}},
			}
			for _, tc := range cases {
				stdout, stderr, code := c.run(append([]string{"verify"}, tc.args...)...)
				if code != 7 || stdout != "" {
					t.Errorf("%s: exit %d, want 7; stdout %q; stderr %q", tc.name, code, stdout, stderr)
				}
				for _, want := range tc.wants {
					if !strings.Contains(stderr, want) {
						t.Errorf("%s: stderr %q lacks %q", tc.name, stderr, want)
					}
				}
			}

			// A missing report is a usage error; a foreign or missing job is not_found.
			_, stderr, code := c.run("verify", "--report", "missing.csv", "--manifest", "m.json", "--keys", keys)
			if code != 2 || !strings.Contains(stderr, "read --report") {
				t.Errorf("missing report: exit %d, %s", code, stderr)
			}
			_, stderr, code = c.run("export", "manifest", "job_doesnotexist")
			if code != 4 || !strings.Contains(stderr, `not_found: export "job_doesnotexist" not found`) {
				t.Errorf("manifest of a missing job: exit %d, %s", code, stderr)
			}
		})
	}
}

func isAlnum(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9'
}

func read(t *testing.T, c *cli, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(c.dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func write(t *testing.T, c *cli, name string, b []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(c.dir, name), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// get fetches a URL of a test server.
func get(t *testing.T, env *servertest.Env, url string) []byte {
	t.Helper()
	res, err := env.Client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, res.StatusCode, err)
	}
	return b
}
