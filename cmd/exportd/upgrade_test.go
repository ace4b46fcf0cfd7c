package main_test

import (
	"bytes"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/exportd/exportd/internal/store/storetest"
	"github.com/exportd/exportd/reports"

	_ "github.com/lib/pq"  // restoring the PostgreSQL fixture
	_ "modernc.org/sqlite" // moving the SQLite fixture's expiry
)

// fixture is what make-fixture.sh recorded with an earlier release.
type fixture struct {
	Revision       string `json:"revision"`
	Tenant         string `json:"tenant"`
	Key            string `json:"key"`
	JobID          string `json:"job_id"`
	ArtifactSHA256 string `json:"artifact_sha256"`
	dialect        string
}

// TestUpgrade opens every database an earlier release left behind
// (internal/migrations/testdata/upgrade/*, made by make-fixture.sh) with this
// exportd: `exportd migrate` adopts or upgrades it, and then every event
// still verifies, the old export still downloads byte for byte and its
// manifest verifies, the old key authenticates, and new events and exports
// work. Each later release adds its own fixture, so every migration runs
// from every earlier schema.
func TestUpgrade(t *testing.T) {
	t.Parallel()
	root := filepath.Join(repoRoot(t), "internal", "migrations", "testdata", "upgrade")
	dirs, err := filepath.Glob(filepath.Join(root, "*", "sqlite"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no upgrade fixtures under %s (%v)", root, err)
	}
	for _, d := range dirs {
		release := filepath.Base(filepath.Dir(d))
		for _, dialect := range storetest.Dialects {
			t.Run(release+"/"+dialect, func(t *testing.T) {
				t.Parallel()
				fx, flags := restoreFixture(t, filepath.Join(root, release, dialect), dialect)
				upgrade(t, fx, flags)
			})
		}
	}
}

// restoreFixture puts the fixture's database and artifacts where this test
// owns them and returns the flags that select them.
func restoreFixture(t *testing.T, dir, dialect string) (fixture, []string) {
	t.Helper()
	var fx fixture
	b, err := os.ReadFile(filepath.Join(dir, "fixture.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &fx); err != nil {
		t.Fatal(err)
	}
	fx.dialect = dialect
	var (
		flags []string
		db    *sql.DB
		stamp string
	)
	switch dialect {
	case "sqlite":
		data := t.TempDir()
		if err := os.CopyFS(data, os.DirFS(filepath.Join(dir, "data"))); err != nil {
			t.Fatal(err)
		}
		flags = []string{"--data-dir", data}
		db, err = sql.Open("sqlite", "file:"+filepath.Join(data, "exportd.db"))
		stamp = "2006-01-02 15:04:05.999999999-07:00" // the store's SQLite time layout
	case "postgres":
		dsn := storetest.PostgresDSN(t)
		artifacts := t.TempDir()
		if err := os.CopyFS(artifacts, os.DirFS(filepath.Join(dir, "artifacts"))); err != nil {
			t.Fatal(err)
		}
		flags = []string{"--database-url", dsn, "--blob-url", "file://" + artifacts}
		db, err = sql.Open("postgres", dsn)
		if err == nil {
			restoreDump(t, db, filepath.Join(dir, "dump.sql"), dsn)
		}
		stamp = time.RFC3339Nano
	}
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// The fixture's export was made with a download window that real time
	// has since passed; only its expiry moves, nothing the report or the
	// chain covers.
	far := time.Date(2999, 1, 1, 0, 0, 0, 0, time.UTC).Format(stamp)
	if _, err := db.Exec(`UPDATE export_jobs SET expires_at = '` + far + `' WHERE id = '` + fx.JobID + `'`); err != nil {
		t.Fatalf("keep the fixture's export downloadable: %v", err)
	}
	return fx, flags
}

// restoreDump loads a pg_dump of the schema exportd_fixture into the schema
// dsn's search_path names.
func restoreDump(t *testing.T, db *sql.DB, path, dsn string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var ns string
	if err := db.QueryRow("SELECT current_schema()").Scan(&ns); err != nil {
		t.Fatal(err)
	}
	var script strings.Builder
	for line := range strings.SplitAfterSeq(string(b), "\n") {
		// psql meta-commands and the schema itself (the test made its own).
		if strings.HasPrefix(line, `\`) || strings.HasPrefix(line, "CREATE SCHEMA ") {
			continue
		}
		script.WriteString(strings.ReplaceAll(line, "exportd_fixture.", ns+"."))
	}
	conn, err := db.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// The dump's SETs stay on this connection, which is then thrown away.
	defer conn.Raw(func(any) error { return http.ErrAbortHandler }) //nolint:errcheck // marks the connection bad
	if _, err := conn.ExecContext(t.Context(), script.String()); err != nil {
		t.Fatalf("restore %s: %v", path, err)
	}
	_ = dsn
}

func upgrade(t *testing.T, fx fixture, flags []string) {
	out := admin(t, flags, "migrate")
	if !strings.Contains(out, "adopted a database from before versioned migrations") {
		t.Errorf("exportd migrate on the %s database printed %q; want it adopted", fx.Revision, out)
	}
	// Every migration after the baseline runs on the adopted database.
	later, err := filepath.Glob(filepath.Join(repoRoot(t), "internal", "migrations", fx.dialect, "*.sql"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out, "applied "); n != len(later)-1 {
		t.Errorf("exportd migrate applied %d migrations after the baseline, want %d:\n%s", n, len(later)-1, out)
	}
	if again := admin(t, flags, "migrate", "--status"); !strings.Contains(again, "0 pending") {
		t.Errorf("after migrate, status says %q", again)
	}
	// Serve refuses nothing now, even with migrating at start turned off.
	srv := serve(t, flags, "--migrate=false")
	call := func(method, path, body string) (int, []byte) {
		t.Helper()
		req, err := http.NewRequest(method, srv.url+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-API-Key", fx.Key)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, b
	}
	verifyChain := func(want int64) {
		t.Helper()
		code, b := call(http.MethodPost, "/v1/audit/events:verify-chain", `{}`)
		var v struct {
			OK      bool  `json:"ok"`
			Checked int64 `json:"checked,string"`
		}
		if code != http.StatusOK || json.Unmarshal(b, &v) != nil || !v.OK || v.Checked < want {
			t.Fatalf("verify-chain: %d %s; want ok over at least %d events", code, b, want)
		}
	}
	// The old key authenticates and every old event still verifies.
	verifyChain(302)

	// The old export downloads byte for byte as the old release served it,
	// and its manifest verifies it with the published keys.
	checkExport := func(jobID, wantSHA string) {
		t.Helper()
		code, report := call(http.MethodGet, "/v1/audit/exports/"+jobID+"/download", "")
		if code != http.StatusOK {
			t.Fatalf("download %s: %d %s", jobID, code, report)
		}
		if sum := sha256.Sum256(report); wantSHA != "" && hex.EncodeToString(sum[:]) != wantSHA {
			t.Errorf("the %s export changed: sha256 %x, the old release served %s", fx.Revision, sum, wantSHA)
		}
		code, manifest := call(http.MethodGet, "/v1/audit/exports/"+jobID+"/manifest", "")
		if code != http.StatusOK {
			t.Fatalf("manifest %s: %d %s", jobID, code, manifest)
		}
		_, jwks := call(http.MethodGet, "/.well-known/exportd-keys.json", "")
		ks, err := reports.ParseJWKS(jwks)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := reports.Verify(bytes.NewReader(report), manifest, ks); err != nil {
			t.Errorf("manifest of %s does not verify after the upgrade: %v", jobID, err)
		}
	}
	checkExport(fx.JobID, fx.ArtifactSHA256)

	// New events chain on from the old head; a new export works.
	code, b := call(http.MethodPost, "/v1/audit/events", `{"events":[{"occurred_at":"2026-03-01T09:00:00Z","actor_id":"upgrade@example.com","actor_type":"user","action":"settings.update","outcome":"success","category":"api","metadata":{"after":"upgrade"}}]}`)
	if code != http.StatusOK {
		t.Fatalf("write after upgrade: %d %s", code, b)
	}
	verifyChain(303)
	code, b = call(http.MethodPost, "/v1/audit/exports", `{"report_type":"soc2","start_date":"2026-01-01T00:00:00Z","end_date":"2026-03-31T23:59:59Z","format":"csv"}`)
	var created struct {
		JobID string `json:"job_id"`
	}
	if code != http.StatusOK || json.Unmarshal(b, &created) != nil {
		t.Fatalf("create after upgrade: %d %s", code, b)
	}
	waitStatus(t, srv.url, fx.Key, created.JobID, "COMPLETED")
	checkExport(created.JobID, "")
}

// TestMigrateReplicasTogether starts four `exportd migrate` at once on one
// empty database, as replicas starting together would: all succeed and
// each migration is recorded once.
func TestMigrateReplicasTogether(t *testing.T) {
	t.Parallel()
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			flags := storeFlags(t, dialect)
			errs := make(chan error, 4)
			for range 4 {
				go func() {
					out, err := exec.Command(bins.exportd, append([]string{"migrate"}, flags...)...).CombinedOutput()
					if err != nil {
						err = fmt.Errorf("%w: %s", err, out)
					}
					errs <- err
				}()
			}
			for range 4 {
				if err := <-errs; err != nil {
					t.Errorf("exportd migrate: %v", err)
				}
			}
			if st := admin(t, flags, "migrate", "--status"); !strings.Contains(st, "0 pending") {
				t.Errorf("status after four migrates: %q", st)
			}
			var db *sql.DB
			var err error
			if dialect == "postgres" {
				db, err = sql.Open("postgres", flags[1])
			} else {
				db, err = sql.Open("sqlite", "file:"+filepath.Join(flags[1], "exportd.db"))
			}
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var rows, versions int
			if err := db.QueryRow(`SELECT count(*), count(DISTINCT version_id) FROM goose_db_version`).Scan(&rows, &versions); err != nil {
				t.Fatal(err)
			}
			if rows != versions {
				t.Errorf("goose_db_version has %d rows for %d versions: a migration was recorded twice", rows, versions)
			}
		})
	}
}
