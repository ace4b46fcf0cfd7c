// Package store is exportd's data layer over ent: it opens SQLite or
// PostgreSQL, migrates the schema, and turns ent errors into domain errors
// and ent rows into the types its methods take and return (Job, Webhook,
// Attestation…), so that no other package depends on the generated code.
package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
	"github.com/XSAM/otelsql"
	"github.com/lib/pq" // the PostgreSQL driver; registers "postgres" too
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	_ "modernc.org/sqlite" // SQLite driver, pure Go

	"github.com/exportd/exportd/ent"
	"github.com/exportd/exportd/internal/fault"
	"github.com/exportd/exportd/internal/migrations"
)

// Store is the database behind one exportd process.
type Store struct {
	// client and db are the same database: ent for the aggregates, SQL for
	// the event log's bulk paths. Neither leaves the package, so that no
	// consumer depends on the schema's generated types.
	client  *ent.Client
	db      *sql.DB
	Dialect string // dialect.SQLite or dialect.Postgres
	now     func() time.Time

	migration migrations.Result
}

// Options tune Open.
type Options struct {
	// TracerProvider, when set, traces every statement (otelsql) as a child
	// of the span in the caller's context; statements outside any span are
	// not traced.
	TracerProvider trace.TracerProvider
	// MeterProvider, when set with TracerProvider, receives otelsql's
	// database latency metrics.
	MeterProvider metric.MeterProvider
	// NoMigrate leaves the schema alone: Open fails, naming them, when
	// migrations are pending (an operator applies them with exportd migrate).
	NoMigrate bool
}

// Open connects to PostgreSQL when databaseURL is set, otherwise to the SQLite
// file exportd.db in dataDir, and migrates the schema.
func Open(ctx context.Context, databaseURL, dataDir string) (*Store, error) {
	return OpenWith(ctx, databaseURL, dataDir, Options{})
}

// OpenWith is Open with options.
func OpenWith(ctx context.Context, databaseURL, dataDir string, o Options) (*Store, error) {
	var (
		db  *sql.DB
		d   string
		err error
	)
	open := sql.Open
	openPG := func(c driver.Connector) *sql.DB { return sql.OpenDB(c) }
	if o.TracerProvider != nil {
		opts := []otelsql.Option{
			otelsql.WithTracerProvider(o.TracerProvider),
			otelsql.WithAttributes(semconv.DBSystemNamePostgreSQL),
			otelsql.WithSpanOptions(otelsql.SpanOptions{OmitConnResetSession: true, OmitConnectorConnect: true}),
		}
		if o.MeterProvider != nil {
			opts = append(opts, otelsql.WithMeterProvider(o.MeterProvider))
		}
		openPG = func(c driver.Connector) *sql.DB { return otelsql.OpenDB(c, opts...) }
		open = func(driverName, dsn string) (*sql.DB, error) {
			system := semconv.DBSystemNameSQLite
			if driverName == "postgres" {
				system = semconv.DBSystemNamePostgreSQL
			}
			opts := []otelsql.Option{
				otelsql.WithTracerProvider(o.TracerProvider),
				otelsql.WithAttributes(system),
				// Pool bookkeeping spans say nothing about the work.
				otelsql.WithSpanOptions(otelsql.SpanOptions{OmitConnResetSession: true, OmitConnectorConnect: true}),
			}
			if o.MeterProvider != nil {
				opts = append(opts, otelsql.WithMeterProvider(o.MeterProvider))
			}
			return otelsql.Open(driverName, dsn, opts...)
		}
	}
	if databaseURL != "" {
		d = dialect.Postgres
		c, err := pq.NewConnector(withSessionDefaults(databaseURL))
		if err != nil {
			return nil, fmt.Errorf("open postgres: %w", err)
		}
		// A server that does not answer a connection within 5 s is down
		// for every purpose of a request; keepalives find a peer that
		// vanished without closing (a failed-over host) in about a minute.
		c.Dialer(bufferedDialer{d: net.Dialer{Timeout: 5 * time.Second, KeepAlive: 15 * time.Second}})
		db = openPG(c)
		db.SetMaxOpenConns(32)
		db.SetMaxIdleConns(16)
	} else {
		d = dialect.SQLite
		if err := os.MkdirAll(dataDir, 0o750); err != nil {
			return nil, fmt.Errorf("create data dir: %w", err)
		}
		db, err = open("sqlite", SQLiteDSN(filepath.Join(dataDir, "exportd.db")))
		if err != nil {
			return nil, fmt.Errorf("open sqlite: %w", err)
		}
	}
	return openDB(ctx, d, db, o)
}

// OpenDB builds a store over an open database of dialect d and migrates the
// schema; the store owns db from then on. Tests use it to put an
// instrumented driver underneath.
func OpenDB(ctx context.Context, d string, db *sql.DB) (*Store, error) {
	return openDB(ctx, d, db, Options{})
}

func openDB(ctx context.Context, d string, db *sql.DB, o Options) (*Store, error) {
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	s := &Store{
		client:  ent.NewClient(ent.Driver(entsql.OpenDB(d, db))),
		db:      db,
		Dialect: d,
		now:     func() time.Time { return time.Now().UTC() },
	}
	isolate(s.client)
	if err := s.migrate(ctx, o.NoMigrate); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// SQLiteDSN is the modernc DSN for a database file: foreign keys on (ent
// refuses to migrate without), a busy timeout and immediate transactions so
// concurrent writers queue instead of failing with SQLITE_BUSY, and times in
// one sortable text layout so range scans compare correctly.
func SQLiteDSN(path string) string {
	return "file:" + path + "?_pragma=foreign_keys(1)&_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate&_time_format=sqlite"
}

func (s *Store) migrate(ctx context.Context, check bool) error {
	if check {
		_, pending, err := migrations.Pending(ctx, s.db, s.Dialect)
		if err != nil {
			return err
		}
		if len(pending) > 0 {
			return fmt.Errorf("the database needs %d migration(s) (%s) and migrating at start is turned off: run exportd migrate with the same --database-url, then start again", len(pending), strings.Join(pending, ", "))
		}
		return nil
	}
	res, err := migrations.Apply(ctx, s.db, s.Dialect)
	if err != nil {
		return err
	}
	s.migration = res
	return nil
}

// MigrationStatus opens the database like Open, changing nothing, and
// returns its schema version and the migrations still to apply.
func MigrationStatus(ctx context.Context, databaseURL, dataDir string) (int64, []string, error) {
	var (
		db  *sql.DB
		d   = dialect.SQLite
		err error
	)
	if databaseURL != "" {
		d = dialect.Postgres
		db, err = sql.Open("postgres", withSessionDefaults(databaseURL))
	} else {
		db, err = sql.Open("sqlite", SQLiteDSN(filepath.Join(dataDir, "exportd.db")))
	}
	if err != nil {
		return 0, nil, err
	}
	defer db.Close()
	return migrations.Pending(ctx, db, d)
}

// Migration says what opening the store did to the schema.
func (s *Store) Migration() migrations.Result { return s.migration }

// Close releases the database.
func (s *Store) Close() error { return s.client.Close() }

// Now is the store's clock, UTC.
func (s *Store) Now() time.Time { return s.now() }

// SetClock replaces the clock, for tests.
func (s *Store) SetClock(now func() time.Time) { s.now = now }

// Ping checks the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// DBStats reports the connection pool, for metrics and for tests that check
// connections go back to it.
func (s *Store) DBStats() sql.DBStats { return s.db.Stats() }

// RawDB is the database under the store, for tests and operator tools that
// must reach past it: to change a row behind the store's back and see
// verification catch it, or to scan every table. The service never uses it:
// it bypasses tenant isolation and every invariant the store keeps.
func (s *Store) RawDB() *sql.DB { return s.db }

// tx runs fn in a transaction, committing when it returns nil.
func (s *Store) tx(ctx context.Context, fn func(tx *ent.Tx) error) error {
	tx, err := s.client.Tx(ctx)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// translate turns ent errors into domain errors; what stays is internal.
func translate(err error, what string) error {
	switch {
	case err == nil:
		return nil
	case ent.IsNotFound(err):
		return fault.New(fault.NotFound, "%s not found", what)
	case ent.IsConstraintError(err):
		return fault.Wrap(fault.AlreadyExists, err, "%s already exists", what)
	case ent.IsValidationError(err):
		return fault.Wrap(fault.InvalidArgument, err, "invalid %s: %s", what, validationMessage(err))
	}
	if _, ok := fault.As(err); ok {
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("%s: %w", what, err)
}

func validationMessage(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		return msg[i+2:]
	}
	return msg
}

// micro truncates to the microsecond precision both databases keep, in UTC.
func micro(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }
