package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	_ "github.com/lib/pq" // PostgreSQL driver
)

// The quarter every export covers; the N/2 figures cover its first half,
// which holds half the events since seed-demo spreads them evenly.
var (
	quarterStart = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	quarterEnd   = time.Date(2025, 4, 1, 0, 0, 0, 0, time.UTC) // exclusive
	halfEnd      = time.Date(2025, 2, 15, 0, 0, 0, 0, time.UTC)
)

// bench is one run: its schema, its temporary folder, its exportd binary.
type bench struct {
	o      options
	log    io.Writer
	base   string // the DSN given
	schema string
	dsn    string // base with search_path, for exportd (lib/pq)
	dir    string
	bin    string
	admin  *sql.DB
	res    *results

	tenant string // the seeded tenant
	key    string // its auditor key
	wm     int64  // its last sequence after seeding
	csvJob string // the SOC 2 CSV export of N, for the downloads
}

func newBench(ctx context.Context, o options, log io.Writer) (*bench, error) {
	b := &bench{o: o, log: log, base: o.dsn}
	var err error
	if b.dir, err = os.MkdirTemp("", "exportd-bench-"); err != nil {
		return nil, fmt.Errorf("create temporary folder: %w", err)
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	b.schema = "bench_" + hex.EncodeToString(rnd[:])
	if b.admin, err = sql.Open("postgres", o.dsn); err != nil {
		b.close()
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	if _, err := b.admin.ExecContext(ctx, "CREATE SCHEMA "+b.schema); err != nil {
		b.close()
		return nil, fmt.Errorf("create schema (is PostgreSQL running at %s?): %w", redact(o.dsn), err)
	}
	b.dsn = withSearchPath(o.dsn, b.schema)
	b.res = newResults(o)
	b.res.Machine = machine(ctx, b.admin)
	b.logf("schema %s, folder %s", b.schema, b.dir)
	if o.exportd != "" {
		b.bin = o.exportd
	} else {
		b.bin = filepath.Join(b.dir, "exportd")
		b.logf("building ./cmd/exportd")
		cmd := exec.CommandContext(ctx, "go", "build", "-o", b.bin, "./cmd/exportd")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.close()
			return nil, fmt.Errorf("build exportd: %w: %s", err, out)
		}
	}
	return b, nil
}

func (b *bench) close() {
	if b.o.keep {
		b.logf("kept schema %s and folder %s", b.schema, b.dir)
		return
	}
	if b.admin != nil {
		if b.schema != "" {
			_, _ = b.admin.Exec("DROP SCHEMA IF EXISTS " + b.schema + " CASCADE")
		}
		b.admin.Close()
	}
	if b.dir != "" {
		_ = os.RemoveAll(b.dir)
	}
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.log, "%s  "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// all runs every measurement in turn.
func (b *bench) all(ctx context.Context) error {
	started := time.Now()
	steps := []struct {
		name string
		skip bool
		fn   func(context.Context) error
	}{
		{"seed", b.o.skipExports, b.seed},
		{"copy and exports", b.o.skipExports, b.exports},
		{"downloads", b.o.skipExports, b.downloads},
		{"create export load", b.o.skipLoad, b.load},
		{"ingest", b.o.skipIngest, b.ingestRate},
	}
	for _, s := range steps {
		if s.skip {
			continue
		}
		if err := s.fn(ctx); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	b.res.Duration = time.Since(started).Round(time.Second).String()
	return nil
}

// cli runs an exportd admin subcommand on the bench schema and returns its
// trimmed standard output.
func (b *bench) cli(ctx context.Context, args ...string) (string, error) {
	args = append(args, "--database-url", b.dsn, "--data-dir", filepath.Join(b.dir, "data"), "--log-level", "warn")
	cmd := exec.CommandContext(ctx, b.bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("exportd %s: %w: %s", strings.Join(args[:min(2, len(args))], " "), err, tail(stderr.String(), 1000))
	}
	return strings.TrimSpace(stdout.String()), nil
}

// newTenant creates a tenant with the Compliance Pack and an auditor key.
func (b *bench) newTenant(ctx context.Context, name string) (id, key string, err error) {
	if id, err = b.cli(ctx, "tenant", "create", "--name", name, "--compliance-pack"); err != nil {
		return "", "", err
	}
	key, err = b.cli(ctx, "apikey", "create", "--tenant", id, "--role", "auditor", "--principal", "auditor@"+name+".example")
	return id, key, err
}

// psql runs sql through psql on the bench schema, its output discarded.
func (b *bench) psql(ctx context.Context, sql string) error {
	cmd := exec.CommandContext(ctx, "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", b.base, "-c", sql)
	cmd.Env = append(os.Environ(), "PGOPTIONS=-c search_path="+b.schema)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = nil, &stderr // nil: /dev/null
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("psql: %w: %s", err, tail(stderr.String(), 1000))
	}
	return nil
}

// withSearchPath adds search_path to a URL or key=value DSN; lib/pq sends it
// as a session parameter.
func withSearchPath(dsn, schema string) string {
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

func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		return dsn
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxx")
	}
	return u.String()
}

// machine describes where the figures come from.
func machine(ctx context.Context, db *sql.DB) machineInfo {
	m := machineInfo{Cores: runtime.NumCPU(), GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "model name") {
				if _, v, ok := strings.Cut(line, ":"); ok {
					m.CPU = strings.TrimSpace(v)
				}
				break
			}
		}
	}
	_ = db.QueryRowContext(ctx, "SHOW server_version").Scan(&m.PostgreSQL)
	return m
}
