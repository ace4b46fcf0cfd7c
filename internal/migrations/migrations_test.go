package migrations_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/exportd/exportd/internal/migrations"
	"github.com/exportd/exportd/internal/migrations/devdb"
	"github.com/exportd/exportd/internal/store/storetest"
)

// TestMigrationsMatchSchema is the drift check: replaying each migration
// directory gives exactly what ent/schema describes, and atlas.sum matches
// the files (so a hand-edited migration is caught). When it fails, run
// `make migration NAME=what_changed` and review the new files.
func TestMigrationsMatchSchema(t *testing.T) {
	for _, d := range devdb.Dialects {
		t.Run(d, func(t *testing.T) {
			var dev string
			if d == "postgres" {
				storetest.PostgresDSN(t) // skips, or fails in CI, without a PostgreSQL
				dev = os.Getenv(storetest.EnvDSN)
			}
			changes, err := devdb.Drift(context.Background(), d, d, dev)
			if err != nil {
				t.Fatalf("drift check: %v", err)
			}
			if changes != "" {
				t.Errorf("ent/schema differs from internal/migrations/%s; run make migration NAME=what_changed. Missing:\n%s", d, changes)
			}
		})
	}
}

// TestApplyIsIdempotent applies every migration to an empty database, then
// again: the second run changes nothing.
func TestApplyIsIdempotent(t *testing.T) {
	ctx := context.Background()
	for _, d := range storetest.Dialects {
		t.Run(d, func(t *testing.T) {
			var (
				db  *sql.DB
				err error
			)
			if d == "postgres" {
				db, err = sql.Open("postgres", storetest.PostgresDSN(t))
			} else {
				db, err = sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "x.db")+"?_pragma=foreign_keys(1)")
			}
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			first, err := migrations.Apply(ctx, db, d)
			if err != nil {
				t.Fatal(err)
			}
			if first.From != 0 || first.Adopted || len(first.Applied) == 0 || first.To == 0 {
				t.Fatalf("first apply: %+v", first)
			}
			second, err := migrations.Apply(ctx, db, d)
			if err != nil {
				t.Fatal(err)
			}
			if len(second.Applied) != 0 || second.From != first.To || second.To != first.To {
				t.Fatalf("second apply changed something: %+v after %+v", second, first)
			}
			_, pending, err := migrations.Pending(ctx, db, d)
			if err != nil || len(pending) != 0 {
				t.Fatalf("pending after apply: %v %v", pending, err)
			}
		})
	}
}

// TestAdoptRefusesOlderSchema: a database without a version table whose
// schema lacks tables of the baseline was made by an older release than the
// baseline describes; adopting it would record DDL that never ran.
func TestAdoptRefusesOlderSchema(t *testing.T) {
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "old.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE TABLE tenants (id text PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	_, err = migrations.Apply(context.Background(), db, "sqlite")
	if err == nil || !strings.Contains(err.Error(), "last opened by an older exportd") {
		t.Fatalf("Apply on a pre-baseline schema: %v", err)
	}
}
