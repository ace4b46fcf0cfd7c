// Command bench measures exportd on PostgreSQL against what the same machine
// does without it: PostgreSQL's own COPY of the same rows, pgbench running
// the same SQL statements a CreateExport issues, and a plain Go file server
// serving the same artifact. It prints one table (figure, value, target,
// met or missed) and writes the same as JSON.
//
// exportd runs as a separate process built from ./cmd/exportd, on a fresh
// PostgreSQL schema that is dropped at the end. `make bench` runs it in full
// (1,000,000 events), `make bench-quick` with -quick (small sizes, short
// loops; targets are reported but only errors fail it). The README's
// Performance section explains each figure.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "serve-file" {
		// The plain file server the downloads are compared with, as a
		// process of its own like exportd.
		if err := serveFile(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "bench serve-file:", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		var ue usageError
		if errors.As(err, &ue) {
			os.Exit(2)
		}
		var em errMissed
		if errors.As(err, &em) {
			os.Exit(3)
		}
		os.Exit(1)
	}
}

type usageError struct{ error }

// errMissed ends a -strict run whose figures missed targets.
type errMissed struct{ n int }

func (e errMissed) Error() string { return fmt.Sprintf("%d targets missed", e.n) }

// options are the command's flags.
type options struct {
	events      int
	dsn         string
	out         string
	quick       bool
	runs        int
	loadTime    time.Duration
	loadMax     int
	clients     int
	ingest      int
	ingestVia   string
	seedVia     string
	exportd     string
	keep        bool
	strict      bool
	skipLoad    bool
	skipIngest  bool
	skipExports bool
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.events, "events", 1_000_000, "events seeded for the one tenant over one quarter (N); exports also run at N/2")
	fs.StringVar(&o.dsn, "database-url", firstEnv("EXPORTD_BENCH_DATABASE_URL", "EXPORTD_TEST_DATABASE_URL"),
		"PostgreSQL URL (env EXPORTD_BENCH_DATABASE_URL, else EXPORTD_TEST_DATABASE_URL); the run uses a schema of its own")
	fs.StringVar(&o.out, "out", "bench/results/latest.json", "where to write the results as JSON; empty writes none")
	fs.BoolVar(&o.quick, "quick", false, "small sizes and short loops, for CI: proves the benchmark runs, not the figures")
	fs.IntVar(&o.runs, "runs", 3, "timed runs of each COPY, export and download; the median counts")
	fs.DurationVar(&o.loadTime, "load-time", 15*time.Second, "how long the CreateExport closed loop and pgbench each run")
	fs.IntVar(&o.loadMax, "load-max", 50_000, "at most this many CreateExport calls in the closed loop")
	fs.IntVar(&o.clients, "clients", 16, "concurrent CreateExport clients, one tenant each; pgbench uses as many connections")
	fs.IntVar(&o.ingest, "ingest-events", 200_000, "events written by the ingest measurement, in batches of 1,000")
	fs.StringVar(&o.ingestVia, "ingest-via", "store", "ingest path measured: store (AppendEvents in this process, COPY)")
	fs.StringVar(&o.seedVia, "seed-via", "cli", "how the N events are written: cli (exportd seed-demo)")
	fs.StringVar(&o.exportd, "exportd", "", "a prebuilt exportd binary; default builds ./cmd/exportd")
	fs.BoolVar(&o.keep, "keep", false, "keep the schema and the temporary folder, to look at them afterwards")
	fs.BoolVar(&o.strict, "strict", false, "exit 3 when a target is missed")
	fs.BoolVar(&o.skipExports, "skip-exports", false, "skip the COPY, export and download measurements")
	fs.BoolVar(&o.skipLoad, "skip-load", false, "skip the CreateExport and pgbench measurement")
	fs.BoolVar(&o.skipIngest, "skip-ingest", false, "skip the ingest measurement")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	if o.quick {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["events"] {
			o.events = 20_000
		}
		if !set["runs"] {
			o.runs = 1
		}
		if !set["load-time"] {
			o.loadTime = 2 * time.Second
		}
		if !set["load-max"] {
			o.loadMax = 2_000
		}
		if !set["ingest-events"] {
			o.ingest = 20_000
		}
	}
	switch {
	case o.dsn == "":
		return usageError{errors.New("no PostgreSQL: set -database-url or EXPORTD_BENCH_DATABASE_URL (or EXPORTD_TEST_DATABASE_URL)")}
	case o.events < 1000:
		return usageError{errors.New("-events must be at least 1000")}
	case o.runs < 1:
		return usageError{errors.New("-runs must be at least 1")}
	case o.clients < 1:
		return usageError{errors.New("-clients must be at least 1")}
	case o.ingestVia != "store":
		return usageError{fmt.Errorf("-ingest-via %q: want store", o.ingestVia)}
	case o.seedVia != "cli":
		return usageError{fmt.Errorf("-seed-via %q: want cli", o.seedVia)}
	}

	b, err := newBench(ctx, o, stderr)
	if err != nil {
		return err
	}
	defer b.close()
	if err := b.all(ctx); err != nil {
		return err
	}
	b.res.print(stdout)
	if o.out != "" {
		if err := b.res.write(o.out); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "results written to %s\n", o.out)
	}
	if o.strict && b.res.missed() > 0 {
		return errMissed{b.res.missed()}
	}
	return nil
}

func firstEnv(keys ...string) string {
	for _, k := range keys {
		if v := os.Getenv(k); v != "" {
			return v
		}
	}
	return ""
}
