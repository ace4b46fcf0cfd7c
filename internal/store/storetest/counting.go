package storetest

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"path/filepath"
	"regexp"
	"sync/atomic"
	"testing"

	"entgo.io/ent/dialect"

	"github.com/exportd/exportd/internal/store"
)

// Reads counts the statements that read a table, seen at the driver: the
// proof that a code path does not touch it.
type Reads struct {
	re *regexp.Regexp
	n  atomic.Int64
}

// N is how many reading statements ran so far.
func (r *Reads) N() int64 { return r.n.Load() }

func (r *Reads) see(query string) {
	if r.re.MatchString(query) {
		r.n.Add(1)
	}
}

// OpenCounting is Open with a driver underneath that counts every statement
// reading table (a SELECT or COPY … TO naming it after FROM).
func OpenCounting(t testing.TB, dialectName, table string) (*store.Store, *Reads) {
	t.Helper()
	reads := &Reads{re: regexp.MustCompile(`(?is)\bFROM\s+"?` + regexp.QuoteMeta(table) + `"?\b`)}
	st := OpenRewriting(t, dialectName, func(query string) string {
		reads.see(query)
		return query
	})
	return st, reads
}

// OpenRewriting is Open with a driver underneath that hands every statement
// to rewrite and sends the database what it returns: a test breaks one
// statement of the store on purpose and meets the real database's (or
// driver's) answer to it.
func OpenRewriting(t testing.TB, dialectName string, rewrite func(query string) string) *store.Store {
	t.Helper()
	var (
		driverName, dsn, d string
	)
	switch dialectName {
	case "sqlite":
		driverName, dsn, d = "sqlite", store.SQLiteDSN(filepath.Join(t.TempDir(), "exportd.db")), dialect.SQLite
	case "postgres":
		driverName, dsn, d = "postgres", PostgresDSN(t), dialect.Postgres
	default:
		t.Fatalf("unknown dialect %q", dialectName)
	}
	base, err := sql.Open(driverName, dsn)
	if err != nil {
		t.Fatal(err)
	}
	drv := base.Driver()
	base.Close()
	db := sql.OpenDB(connector{drv: drv, dsn: dsn, rewrite: rewrite})
	st, err := store.OpenDB(context.Background(), d, db)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

type connector struct {
	drv     driver.Driver
	dsn     string
	rewrite func(string) string
}

func (c connector) Connect(context.Context) (driver.Conn, error) {
	conn, err := c.drv.Open(c.dsn)
	if err != nil {
		return nil, err
	}
	return rewritingConn{Conn: conn, rewrite: c.rewrite}, nil
}

func (c connector) Driver() driver.Driver { return c.drv }

// rewritingConn exposes only preparation, so database/sql sends every
// statement through PrepareContext, where it is seen and rewritten.
type rewritingConn struct {
	driver.Conn
	rewrite func(string) string
}

func (c rewritingConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	query = c.rewrite(query)
	if p, ok := c.Conn.(driver.ConnPrepareContext); ok {
		return p.PrepareContext(ctx, query)
	}
	return c.Prepare(query)
}

func (c rewritingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if b, ok := c.Conn.(driver.ConnBeginTx); ok {
		return b.BeginTx(ctx, opts)
	}
	return nil, errors.New("driver cannot begin transactions with options")
}

func (c rewritingConn) ResetSession(ctx context.Context) error {
	if r, ok := c.Conn.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}
