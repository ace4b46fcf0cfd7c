// Package devdb plans versioned migrations from ent/schema: it replays a
// migration directory on an empty development database (a temporary SQLite
// file, or a scratch schema on PostgreSQL) and asks Atlas, through ent, what
// is missing to reach ent/schema. It is the migration tooling behind
// `make migration` and the drift check; exportd itself never imports it.
package devdb

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	atlasmigrate "ariga.io/atlas/sql/migrate"
	_ "ariga.io/atlas/sql/postgres" // registers the postgres:// URL opener
	"ariga.io/atlas/sql/sqltool"
	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
	"entgo.io/ent/dialect/sql/schema"
	_ "github.com/lib/pq"  // PostgreSQL
	_ "modernc.org/sqlite" // SQLite, pure Go

	"github.com/exportd/exportd/ent/migrate"
)

// Dialects are the migration directories, one per store.
var Dialects = []string{"postgres", "sqlite"}

// Write plans the changes from dir's replayed state to ent/schema and writes
// them as a new migration named name, updating atlas.sum. It returns the new
// file's path, or atlasmigrate.ErrNoPlan when nothing changed.
func Write(ctx context.Context, d, dir, name, devURL string) (string, error) {
	before, err := sqlFiles(dir)
	if err != nil {
		return "", err
	}
	if err := diff(ctx, d, dir, name, devURL); err != nil {
		return "", err
	}
	after, err := sqlFiles(dir)
	if err != nil {
		return "", err
	}
	for _, f := range after {
		if !slices.Contains(before, f) {
			return filepath.Join(dir, f), nil
		}
	}
	return "", errors.New("the planner reported changes but wrote no file")
}

// Drift returns the statements that the migrations in dir lack to reach
// ent/schema, empty when there are none; it writes nothing to dir. A
// checksum file that does not match the files is an error.
func Drift(ctx context.Context, d, dir, devURL string) (string, error) {
	tmp, err := os.MkdirTemp("", "exportd-migrations-")
	if err != nil {
		return "", err
	}
	defer func() { _ = os.RemoveAll(tmp) }()
	if err := os.CopyFS(tmp, os.DirFS(dir)); err != nil {
		return "", fmt.Errorf("copy %s: %w", dir, err)
	}
	file, err := Write(ctx, d, tmp, "drift", devURL)
	if errors.Is(err, atlasmigrate.ErrNoPlan) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

func sqlFiles(dir string) ([]string, error) {
	m, err := fs.Glob(os.DirFS(dir), "*.sql")
	if err != nil {
		return nil, err
	}
	return m, nil
}

func diff(ctx context.Context, d, dir, name, devURL string) error {
	gd, err := sqltool.NewGooseDir(dir)
	if err != nil {
		return fmt.Errorf("open migration directory: %w", err)
	}
	db, url, entDialect, cleanup, err := open(ctx, d, devURL)
	if err != nil {
		return err
	}
	defer cleanup()
	opts := []schema.MigrateOption{
		schema.WithDir(gd),
		schema.WithMigrationMode(schema.ModeReplay),
		schema.WithDialect(entDialect),
		schema.WithFormatter(sqltool.GooseFormatter),
		schema.WithErrNoPlan(true),
		// Exactly the options store.Open used with auto-migration, so the
		// first migration is today's schema.
		schema.WithForeignKeys(true),
	}
	if url != "" {
		// Through a URL Atlas binds to the schema in search_path; over a
		// bare connection it would look at every schema of the server.
		err = migrate.NamedDiff(ctx, url, name, opts...)
	} else {
		err = migrate.NewSchema(entsql.OpenDB(entDialect, db)).NamedDiff(ctx, name, opts...)
	}
	if err != nil && !errors.Is(err, atlasmigrate.ErrNoPlan) {
		return fmt.Errorf("plan migration: %w", err)
	}
	return err
}

// open returns an empty development database of dialect d: an open SQLite
// database, or the URL of a scratch PostgreSQL schema.
func open(ctx context.Context, d, devURL string) (*sql.DB, string, string, func(), error) {
	switch d {
	case "sqlite":
		tmp, err := os.MkdirTemp("", "exportd-devdb-")
		if err != nil {
			return nil, "", "", nil, err
		}
		db, err := sql.Open("sqlite", "file:"+filepath.Join(tmp, "dev.db")+"?_pragma=foreign_keys(1)")
		if err != nil {
			_ = os.RemoveAll(tmp)
			return nil, "", "", nil, err
		}
		return db, "", dialect.SQLite, func() { db.Close(); _ = os.RemoveAll(tmp) }, nil
	case "postgres":
		if devURL == "" {
			return nil, "", "", nil, errors.New("no PostgreSQL to plan on: set EXPORTD_DEV_DATABASE_URL")
		}
		admin, err := sql.Open("postgres", devURL)
		if err != nil {
			return nil, "", "", nil, err
		}
		b := make([]byte, 6)
		_, _ = rand.Read(b)
		ns := "exportd_dev_" + hex.EncodeToString(b)
		if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+ns); err != nil {
			admin.Close()
			return nil, "", "", nil, fmt.Errorf("create scratch schema on the development PostgreSQL: %w", err)
		}
		dsn, err := withSearchPath(devURL, ns)
		if err != nil {
			admin.Close()
			return nil, "", "", nil, err
		}
		return nil, dsn, dialect.Postgres, func() {
			_, _ = admin.ExecContext(context.WithoutCancel(ctx), "DROP SCHEMA "+ns+" CASCADE")
			admin.Close()
		}, nil
	}
	return nil, "", "", nil, fmt.Errorf("unknown dialect %q", d)
}

func withSearchPath(dsn, ns string) (string, error) {
	if !strings.HasPrefix(dsn, "postgres://") && !strings.HasPrefix(dsn, "postgresql://") {
		return "", errors.New("the development PostgreSQL must be given as a postgres:// URL")
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "", fmt.Errorf("development database URL: %w", err)
	}
	u.Scheme = "postgres"
	q := u.Query()
	q.Set("search_path", ns)
	u.RawQuery = q.Encode()
	return u.String(), nil
}
