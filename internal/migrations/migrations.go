// Package migrations holds exportd's reviewed schema migrations, one
// directory per store (postgres/, sqlite/: goose files generated from
// ent/schema by `make migration NAME=…`, with Atlas's checksum file), and
// applies them under a lock so that replicas starting together apply each
// migration once.
package migrations

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/database"
)

//go:embed postgres/*.sql sqlite/*.sql
var files embed.FS

// VersionTable records the applied migrations (goose's layout).
const VersionTable = "goose_db_version"

// lockID is the PostgreSQL advisory lock held while migrating; earlier
// releases took the same one around their automatic migration, so a new
// replica and an old one starting together do not race either.
const lockID = 7301

// Result says what Apply found and did.
type Result struct {
	From, To int64    // schema version before and after
	Applied  []string // migration files applied, in order
	Adopted  bool     // a database from before versioned migrations was adopted
}

// Pending lists the migrations not yet applied to db.
func Pending(ctx context.Context, db *sql.DB, dialect string) (current int64, pending []string, err error) {
	p, err := provider(dialect, db)
	if err != nil {
		return 0, nil, err
	}
	if ok, err := hasVersionTable(ctx, db, dialect); err != nil || !ok {
		if err != nil {
			return 0, nil, err
		}
		for _, s := range p.ListSources() {
			pending = append(pending, filepath.Base(s.Path))
		}
		return 0, pending, nil
	}
	st, err := p.Status(ctx)
	if err != nil {
		return 0, nil, fmt.Errorf("read migration status: %w", err)
	}
	for _, s := range st {
		if s.State == goose.StatePending {
			pending = append(pending, filepath.Base(s.Source.Path))
		}
	}
	current, err = p.GetDBVersion(ctx)
	return current, pending, err
}

// migrateMu serialises migrations within the process; the lock below does
// it across processes.
var migrateMu sync.Mutex

// Apply brings db (dialect "postgres" or "sqlite") to the newest migration.
// It holds a lock meanwhile: PostgreSQL's advisory lock, or a file lock
// beside the SQLite database. A database created by a release before
// versioned migrations (tables, but no version table) is adopted: those
// releases created exactly the first migration's schema at every start, so
// it is recorded as applied and the migrations after it run as usual. A database migrated by
// a newer exportd than this one is refused.
func Apply(ctx context.Context, db *sql.DB, dialect string) (Result, error) {
	migrateMu.Lock()
	defer migrateMu.Unlock()
	unlock, err := lock(ctx, db, dialect)
	if err != nil {
		return Result{}, fmt.Errorf("migration lock: %w", err)
	}
	defer unlock()

	var res Result
	ok, err := hasVersionTable(ctx, db, dialect)
	if err != nil {
		return res, err
	}
	if !ok {
		legacy, err := hasTable(ctx, db, dialect, "tenants")
		if err != nil {
			return res, err
		}
		if legacy {
			if err := adopt(ctx, db, dialect); err != nil {
				return res, fmt.Errorf("adopt a database from before versioned migrations: %w", err)
			}
			res.Adopted = true
		}
	}
	p, err := provider(dialect, db)
	if err != nil {
		return res, err
	}
	if res.From, err = version(ctx, p); err != nil {
		return res, err
	}
	if newest := newestVersion(p); res.From > newest {
		return res, fmt.Errorf("the database schema is at version %d, newer than this exportd knows (%d): run the exportd release that migrated it, or a newer one", res.From, newest)
	}
	applied, err := p.Up(ctx)
	for _, r := range applied {
		if r.Error == nil {
			res.Applied = append(res.Applied, filepath.Base(r.Source.Path))
		}
	}
	if err != nil && !errors.Is(err, goose.ErrNoNextVersion) {
		return res, fmt.Errorf("apply migrations: %w", err)
	}
	res.To, err = version(ctx, p)
	return res, err
}

func version(ctx context.Context, p *goose.Provider) (int64, error) {
	v, err := p.GetDBVersion(ctx)
	if err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

func newestVersion(p *goose.Provider) int64 {
	var v int64
	for _, s := range p.ListSources() {
		v = max(v, s.Version)
	}
	return v
}

func provider(dialect string, db *sql.DB) (*goose.Provider, error) {
	d, err := gooseDialect(dialect)
	if err != nil {
		return nil, err
	}
	dir, err := fs.Sub(files, sourceDir(dialect))
	if err != nil {
		return nil, err
	}
	p, err := goose.NewProvider(d, db, dir, goose.WithDisableGlobalRegistry(true), goose.WithTableName(VersionTable))
	if err != nil {
		return nil, fmt.Errorf("load migrations: %w", err)
	}
	return p, nil
}

// sourceDir is the embedded directory of dialect's migrations.
func sourceDir(dialect string) string {
	if dialect == "postgres" {
		return "postgres"
	}
	return "sqlite"
}

func gooseDialect(dialect string) (database.Dialect, error) {
	switch dialect {
	case "postgres":
		return database.DialectPostgres, nil
	case "sqlite", "sqlite3":
		return database.DialectSQLite3, nil
	}
	return "", fmt.Errorf("no migrations for dialect %q", dialect)
}

// adopt records the baseline as applied on a database of a release before
// versioned migrations: those releases created exactly the baseline's schema
// at every start. A database that lacks one of the baseline's tables was
// last opened by an older release still, and is refused: that release, or
// the last one before versioned migrations, upgrades it first.
func adopt(ctx context.Context, db *sql.DB, dialect string) error {
	p, err := provider(dialect, db)
	if err != nil {
		return err
	}
	first := p.ListSources()[0]
	ddl, err := fs.ReadFile(files, sourceDir(dialect)+"/"+filepath.Base(first.Path))
	if err != nil {
		return err
	}
	for _, m := range createTable.FindAllStringSubmatch(string(ddl), -1) {
		ok, err := hasTable(ctx, db, dialect, m[1])
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("the database has no table %q, which every release since the first migration (%s) creates: it was last opened by an older exportd; start the last release before versioned migrations on it once, then this one", m[1], filepath.Base(first.Path))
		}
	}
	d, err := gooseDialect(dialect)
	if err != nil {
		return err
	}
	store, err := database.NewStore(d, VersionTable)
	if err != nil {
		return err
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := store.CreateVersionTable(ctx, tx); err != nil {
		return err
	}
	for _, v := range []int64{0, first.Version} {
		if err := store.Insert(ctx, tx, database.InsertRequest{Version: v}); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// createTable finds the tables a migration creates (Atlas quotes names with
// " on PostgreSQL and ` on SQLite).
var createTable = regexp.MustCompile("(?m)^CREATE TABLE [\"`]([a-z0-9_]+)[\"`]")

func hasVersionTable(ctx context.Context, db *sql.DB, dialect string) (bool, error) {
	return hasTable(ctx, db, dialect, VersionTable)
}

func hasTable(ctx context.Context, db *sql.DB, dialect, name string) (bool, error) {
	var q string
	switch dialect {
	case "postgres":
		// The schema in search_path, as every unqualified statement sees it.
		q = `SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = $1`
	default:
		q = `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?`
	}
	var n int
	if err := db.QueryRowContext(ctx, q, name).Scan(&n); err != nil {
		return false, fmt.Errorf("inspect schema: %w", err)
	}
	return n > 0, nil
}

// lock takes the cross-process migration lock.
func lock(ctx context.Context, db *sql.DB, dialect string) (func(), error) {
	if dialect != "postgres" {
		return lockSQLite(ctx, db)
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	// Waiting for another replica's migration is expected, however long it
	// takes: the statement timeout does not apply to the wait (the
	// session's default comes back before the connection goes back to the
	// pool).
	if _, err := conn.ExecContext(ctx, "SET statement_timeout = 0"); err != nil {
		conn.Close()
		return nil, err
	}
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", lockID); err != nil {
		conn.Close()
		return nil, err
	}
	return func() {
		bg := context.WithoutCancel(ctx)
		_, _ = conn.ExecContext(bg, "SELECT pg_advisory_unlock($1)", lockID)
		_, _ = conn.ExecContext(bg, "RESET statement_timeout")
		conn.Close()
	}, nil
}

// lockSQLite locks a file beside the database: processes sharing one
// SQLite file share its folder, and the kernel drops the lock of a process
// that dies.
func lockSQLite(ctx context.Context, db *sql.DB) (func(), error) {
	var (
		seq        int
		name, path string
	)
	if err := db.QueryRowContext(ctx, "PRAGMA database_list").Scan(&seq, &name, &path); err != nil {
		return nil, fmt.Errorf("find the SQLite file: %w", err)
	}
	if path == "" { // in memory: one process by definition
		return func() {}, nil
	}
	f, err := os.OpenFile(path+".migrate-lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		_ = f.Close()
		return nil, err
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		_ = f.Close()
	}, nil
}
