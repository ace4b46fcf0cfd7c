// Package storetest opens fresh stores for tests: SQLite in a temporary
// folder, and PostgreSQL in a schema of its own when EXPORTD_TEST_DATABASE_URL
// names a server, so one suite runs on both.
package storetest

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/exportd/exportd/internal/apikey"
	"github.com/exportd/exportd/internal/store"
)

// EnvDSN names the variable holding the PostgreSQL URL for tests.
const EnvDSN = "EXPORTD_TEST_DATABASE_URL"

// EnvRequire, when set, turns the PostgreSQL skip into a failure.
const EnvRequire = "EXPORTD_REQUIRE_POSTGRES"

// SkipMessage is printed when the PostgreSQL half of a suite cannot run; CI
// fails when it sees it.
const SkipMessage = "PostgreSQL suite skipped: set " + EnvDSN + " to run it"

// Dialects are the stores every storage suite runs on.
var Dialects = []string{"sqlite", "postgres"}

// Open returns a fresh, migrated store of the given dialect, closed when the
// test ends. For "postgres" it skips (with SkipMessage) when no DSN is set.
func Open(t testing.TB, dialect string) *store.Store {
	t.Helper()
	ctx := context.Background()
	switch dialect {
	case "sqlite":
		st, err := store.Open(ctx, "", t.TempDir())
		if err != nil {
			t.Fatalf("open sqlite store: %v", err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	case "postgres":
		dsn := PostgresDSN(t)
		st, err := store.Open(ctx, dsn, "")
		if err != nil {
			t.Fatalf("open postgres store: %v", err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	t.Fatalf("unknown dialect %q", dialect)
	return nil
}

// PostgresDSN creates an empty schema for this test and returns a DSN whose
// search_path points at it; the schema is dropped when the test ends.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvDSN)
	if base == "" {
		if os.Getenv(EnvRequire) != "" {
			// CI runs `go test` without -v, where a skip prints nothing:
			// there a missing PostgreSQL must fail, not pass quietly.
			t.Fatal(SkipMessage + " (" + EnvRequire + " is set, so this is an error)")
		}
		t.Skip(SkipMessage)
	}
	schema := strings.ToLower(apikey.RandomID("t_", 16))
	admin, err := sql.Open("postgres", base)
	if err != nil {
		t.Fatalf("open postgres: %v", err)
	}
	defer admin.Close()
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatalf("create schema (is PostgreSQL running at %s?): %v", EnvDSN, err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("postgres", base)
		if err != nil {
			return
		}
		defer db.Close()
		_, _ = db.Exec("DROP SCHEMA " + schema + " CASCADE")
	})
	return WithSearchPath(base, schema)
}

// WithSearchPath adds search_path to a URL or key=value DSN; lib/pq sends it
// as a session parameter.
func WithSearchPath(dsn, schema string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return dsn
		}
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return fmt.Sprintf("%s search_path=%s", dsn, schema)
}
