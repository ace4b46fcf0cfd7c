// Command reliability runs exportd's robustness checks and adds up what they
// proved: every fuzz target for a fixed time (inputs fuzzed), the
// fault-injection and replica tests (workers killed, jobs lost or
// duplicated), and the authorization matrix (cross-tenant successes). It
// fails when a check fails or a total that must be zero is not.
//
// Fuzz targets are found with `go test -list`, so new ones are included
// without editing anything. The tests report their figures with a t.Logf
// line this command reads; the format is documented in README.md
// ("Reliability"):
//
//	RELIABILITY kills_survived=12 jobs=20 lost=0 duplicated=0 longest_takeover=2.1s
//	RELIABILITY kills_survived=5 jobs=1 lost=0 duplicated=0 failures_counted=0
//	RELIABILITY kills_survived=1 jobs=1 lost=0 duplicated=0 restart_takeover=1.2s lease=1m0s
//	RELIABILITY cross_tenant_successes=0 cells=1234
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

// testPattern selects the tests whose figures are added up.
const testPattern = "^(TestFaultInjection|TestReplicas|TestCrashesUseNoAttempts|TestRestartReleasesLeases|TestAuthorizationMatrix|TestAuthzMatrix)$"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "reliability:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("reliability", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fuzzTime := fs.Duration("fuzztime", time.Minute, "how long each fuzz target runs")
	quick := fs.Bool("quick", false, "seconds of fuzzing per target (CI)")
	pkgs := fs.String("packages", "./...", "packages to look in for fuzz targets and tests")
	skipTests := fs.Bool("skip-tests", false, "fuzz only")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *quick {
		set := false
		fs.Visit(func(f *flag.Flag) { set = set || f.Name == "fuzztime" })
		if !set {
			*fuzzTime = 3 * time.Second
		}
	}
	var t totals
	targets, err := fuzzTargets(ctx, *pkgs)
	if err != nil {
		return err
	}
	var problems []string
	for _, ft := range targets {
		fmt.Fprintf(stderr, "fuzzing %s %s for %s\n", ft.pkg, ft.name, *fuzzTime)
		execs, out, err := fuzz(ctx, ft, *fuzzTime)
		t.fuzzTargets++
		t.execs += execs
		t.perTarget = append(t.perTarget, fmt.Sprintf("%s.%s=%d", ft.pkg, ft.name, execs))
		if err != nil {
			problems = append(problems, fmt.Sprintf("fuzz %s %s: %v\n%s", ft.pkg, ft.name, err, tail(out, 3000)))
		}
	}
	if !*skipTests {
		fmt.Fprintf(stderr, "running %s in %s\n", testPattern, *pkgs)
		out, err := goTest(ctx, "-count=1", "-v", "-timeout", "30m", "-run", testPattern, *pkgs)
		t.parseTests(out)
		if err != nil {
			problems = append(problems, fmt.Sprintf("tests: %v\n%s", err, tail(out, 5000)))
		}
	}
	t.print(stdout)
	if t.lost > 0 || t.duplicated > 0 || t.crossTenant > 0 || t.failuresCounted > 0 {
		problems = append(problems, fmt.Sprintf("jobs lost %d, duplicated %d, failures counted for kills %d, cross-tenant successes %d: all must be 0",
			t.lost, t.duplicated, t.failuresCounted, t.crossTenant))
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "\n"))
	}
	return nil
}

type fuzzTarget struct{ pkg, name string }

// fuzzTargets lists every Fuzz function with `go test -list`.
func fuzzTargets(ctx context.Context, pkgs string) ([]fuzzTarget, error) {
	out, err := goTest(ctx, "-list", "^Fuzz", pkgs)
	if err != nil {
		return nil, fmt.Errorf("list fuzz targets: %w\n%s", err, tail(out, 3000))
	}
	return parseList(out), nil
}

// parseList reads `go test -list` output: names, then "ok  <pkg> <time>"
// for the package they belong to.
func parseList(out string) []fuzzTarget {
	var (
		names   []string
		targets []fuzzTarget
	)
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		f := strings.Fields(line)
		switch {
		case len(f) == 1 && strings.HasPrefix(f[0], "Fuzz"):
			names = append(names, f[0])
		case len(f) >= 2 && f[0] == "ok":
			for _, n := range names {
				targets = append(targets, fuzzTarget{pkg: f[1], name: n})
			}
			names = nil
		case len(f) >= 1 && f[0] == "?": // no test files
			names = nil
		}
	}
	sort.Slice(targets, func(i, j int) bool {
		if targets[i].pkg != targets[j].pkg {
			return targets[i].pkg < targets[j].pkg
		}
		return targets[i].name < targets[j].name
	})
	return targets
}

var execsRe = regexp.MustCompile(`execs: ([0-9]+)`)

// fuzz runs one target and returns the inputs it executed (the last
// "execs: N" go test printed).
func fuzz(ctx context.Context, ft fuzzTarget, d time.Duration) (int64, string, error) {
	out, err := goTest(ctx, ft.pkg, "-run", "^$", "-fuzz", "^"+ft.name+"$", "-fuzztime", d.String())
	return lastExecs(out), out, err
}

func lastExecs(out string) int64 {
	var n int64
	for _, m := range execsRe.FindAllStringSubmatch(out, -1) {
		if v, err := strconv.ParseInt(m[1], 10, 64); err == nil {
			n = v
		}
	}
	return n
}

func goTest(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", append([]string{"test"}, args...)...)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err := cmd.Run()
	return buf.String(), err
}

// totals are the figures of one run.
type totals struct {
	fuzzTargets     int
	execs           int64
	perTarget       []string
	faultRuns       int
	kills           int64
	jobs            int64
	lost            int64
	duplicated      int64
	longestTakeover time.Duration
	// failuresCounted adds up the failed attempts recorded for jobs whose
	// only trouble was a killed worker: it must be 0.
	failuresCounted int64
	// restartTakeover is the longest time from killing a replica to its
	// restarted process taking the job over, and restartLease that test's
	// lease: the first must stay well under the second.
	restartTakeover time.Duration
	restartLease    string
	matrixRuns      int
	cells           int64
	crossTenant     int64
	failedTests     []string
}

var (
	// The documented form: RELIABILITY key=value ...
	reliabilityRe = regexp.MustCompile(`RELIABILITY((?:\s+[a-z_]+=\S+)+)`)
	// The human sentences the tests printed before the documented form.
	killsRe  = regexp.MustCompile(`kills survived: ([0-9]+), jobs: ([0-9]+), lost: ([0-9]+), duplicated: ([0-9]+)(?:, takeovers: [0-9]+)?(?:, longest takeover: ([0-9.a-zµ]+))?`)
	matrixRe = regexp.MustCompile(`authorization matrix on \S+: ([0-9]+) cells, ([0-9]+) cross-tenant successes`)
	failRe   = regexp.MustCompile(`^\s*--- FAIL: (\S+)`)
)

// parseTests adds up the figures the tests logged.
func (t *totals) parseTests(out string) {
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if m := failRe.FindStringSubmatch(line); m != nil {
			t.failedTests = append(t.failedTests, m[1])
			continue
		}
		if m := reliabilityRe.FindStringSubmatch(line); m != nil {
			kv := map[string]string{}
			for _, f := range strings.Fields(m[1]) {
				k, v, _ := strings.Cut(f, "=")
				kv[k] = v
			}
			t.add(kv)
			continue
		}
		if m := killsRe.FindStringSubmatch(line); m != nil {
			t.add(map[string]string{"kills_survived": m[1], "jobs": m[2], "lost": m[3], "duplicated": m[4], "longest_takeover": m[5]})
			continue
		}
		if m := matrixRe.FindStringSubmatch(line); m != nil {
			t.add(map[string]string{"cells": m[1], "cross_tenant_successes": m[2]})
		}
	}
}

func (t *totals) add(kv map[string]string) {
	num := func(k string) int64 {
		n, _ := strconv.ParseInt(kv[k], 10, 64)
		return n
	}
	if _, ok := kv["kills_survived"]; ok {
		t.faultRuns++
		t.kills += num("kills_survived")
		t.jobs += num("jobs")
		t.lost += num("lost")
		t.duplicated += num("duplicated")
		if d, err := time.ParseDuration(kv["longest_takeover"]); err == nil && d > t.longestTakeover {
			t.longestTakeover = d
		}
		t.failuresCounted += num("failures_counted")
		if d, err := time.ParseDuration(kv["restart_takeover"]); err == nil && d > t.restartTakeover {
			t.restartTakeover, t.restartLease = d, kv["lease"]
		}
	}
	if _, ok := kv["cross_tenant_successes"]; ok {
		t.matrixRuns++
		t.cells += num("cells")
		t.crossTenant += num("cross_tenant_successes")
	}
}

func (t *totals) print(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\nreliability\t\t")
	fmt.Fprintf(tw, "fuzz targets\t%d\t%s\n", t.fuzzTargets, strings.Join(t.perTarget, " "))
	fmt.Fprintf(tw, "inputs fuzzed\t%d\t\n", t.execs)
	if t.faultRuns == 0 {
		fmt.Fprintf(tw, "fault injection\tno test reported (none in this tree?)\t\n")
	} else {
		fmt.Fprintf(tw, "kills survived\t%d\t%d reports\n", t.kills, t.faultRuns)
		fmt.Fprintf(tw, "jobs\t%d\t\n", t.jobs)
		fmt.Fprintf(tw, "jobs lost\t%d\tmust be 0\n", t.lost)
		fmt.Fprintf(tw, "jobs duplicated\t%d\tmust be 0\n", t.duplicated)
		if t.longestTakeover > 0 {
			fmt.Fprintf(tw, "longest takeover\t%s\t\n", t.longestTakeover)
		}
		fmt.Fprintf(tw, "failures counted for kills\t%d\tmust be 0\n", t.failuresCounted)
		if t.restartTakeover > 0 {
			fmt.Fprintf(tw, "takeover by a restarted replica\t%s\tlease %s\n", t.restartTakeover, t.restartLease)
		}
	}
	if t.matrixRuns == 0 {
		fmt.Fprintf(tw, "authorization matrix\tno test reported (none in this tree?)\t\n")
	} else {
		fmt.Fprintf(tw, "authorization cells\t%d\t%d reports\n", t.cells, t.matrixRuns)
		fmt.Fprintf(tw, "cross-tenant successes\t%d\tmust be 0\n", t.crossTenant)
	}
	if len(t.failedTests) > 0 {
		fmt.Fprintf(tw, "failed tests\t%s\t\n", strings.Join(t.failedTests, " "))
	}
	_ = tw.Flush()
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
