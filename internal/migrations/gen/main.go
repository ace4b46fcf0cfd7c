// Command gen writes the next versioned migration of each dialect from
// ent/schema: it replays the migration directory on an empty development
// database and writes the statements that take that state to what ent/schema
// describes (goose format, with Atlas's checksum file). With -check it writes
// nothing and fails when ent/schema and the directory differ, or when the
// checksum file does not match the files.
//
//	go run ./internal/migrations/gen -name add_recorded_at
//	go run ./internal/migrations/gen -check
//
// SQLite needs nothing; PostgreSQL needs a server (-dev-url, or
// EXPORTD_DEV_DATABASE_URL, or EXPORTD_TEST_DATABASE_URL) where it creates
// and drops a scratch schema.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	atlasmigrate "ariga.io/atlas/sql/migrate"

	"github.com/exportd/exportd/internal/migrations/devdb"
)

func main() {
	var (
		name   = flag.String("name", "", "name of the new migration (letters, digits, underscores)")
		check  = flag.Bool("check", false, "write nothing; fail when ent/schema and the migration directories differ")
		dir    = flag.String("dir", "internal/migrations", "folder holding one migration directory per dialect")
		devURL = flag.String("dev-url", "", "PostgreSQL for replaying the directory (default: EXPORTD_DEV_DATABASE_URL, else EXPORTD_TEST_DATABASE_URL)")
	)
	flag.Parse()
	if err := run(context.Background(), *name, *check, *dir, *devURL); err != nil {
		fmt.Fprintln(os.Stderr, "migration:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, name string, check bool, dir, devURL string) error {
	if devURL == "" {
		devURL = os.Getenv("EXPORTD_DEV_DATABASE_URL")
	}
	if devURL == "" {
		devURL = os.Getenv("EXPORTD_TEST_DATABASE_URL")
	}
	if devURL == "" {
		return errors.New("PostgreSQL is needed to plan its migrations: set -dev-url or EXPORTD_DEV_DATABASE_URL (a scratch schema is created and dropped there)")
	}
	if !check && !validName(name) {
		return fmt.Errorf("-name %q: give the migration a name of letters, digits and underscores, e.g. -name add_recorded_at", name)
	}
	var drift []string
	for _, d := range devdb.Dialects {
		path := filepath.Join(dir, d)
		if check {
			changes, err := devdb.Drift(ctx, d, path, devURL)
			if err != nil {
				return fmt.Errorf("%s: %w", d, err)
			}
			if changes != "" {
				drift = append(drift, fmt.Sprintf("%s: ent/schema differs from %s; the missing statements are:\n%s", d, path, changes))
			}
			continue
		}
		file, err := devdb.Write(ctx, d, path, name, devURL)
		switch {
		case errors.Is(err, atlasmigrate.ErrNoPlan):
			fmt.Printf("%s: no changes\n", d)
		case err != nil:
			return fmt.Errorf("%s: %w", d, err)
		default:
			fmt.Printf("%s: wrote %s\n", d, file)
		}
	}
	if len(drift) > 0 {
		return errors.New(strings.Join(drift, "\n") + "\nrun: make migration NAME=<what_changed>")
	}
	if check {
		fmt.Println("migrations match ent/schema; checksums match")
	}
	return nil
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') && (r < '0' || r > '9') && r != '_' {
			return false
		}
	}
	return true
}
