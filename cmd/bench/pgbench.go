package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// pgbenchScript turns captured CreateExport requests into a pgbench script
// that runs the same statements, with the same parameters, at the same
// concurrency, so that its transactions/s is the floor the database alone
// allows.
//
// perTenant[t] holds the statements of one request by tenant t; again holds
// a second request by tenant 0, which tells the parameters that change from
// request to request (ids, sequences, times) from those fixed per tenant
// (tenant, key, principal). A changing parameter becomes, in order of
// preference: a value returned by an earlier statement of the same request
// (\gset, as the server reads it back: the reserved sequence, say); the
// captured value if it is a time (any instant is as good as another); a
// fresh random number (unique ids). Fixed parameters stay bound as
// parameters (pgbench -D variables, sent with -M extended like lib/pq does)
// rather than spliced into the SQL text.
type pgbenchScript struct {
	Script string   // the script file's text
	Vars   []string // NAME=VALUE for -D
	// Statements lists the captured SQL, in order, for the report.
	Statements []string
}

var (
	placeholder = regexp.MustCompile(`\$([0-9]+)`)
	pgbenchVar  = regexp.MustCompile(`(^|[^:]):[A-Za-z0-9_]`)
	timeLike    = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}`)
)

func buildPgbenchScript(perTenant [][]*statement, again []*statement) (*pgbenchScript, error) {
	if len(perTenant) == 0 || len(perTenant[0]) == 0 {
		return nil, errors.New("build pgbench script: no statements captured")
	}
	first := perTenant[0]
	same := func(a []*statement) error {
		if len(a) != len(first) {
			return fmt.Errorf("%d statements, the first request had %d", len(a), len(first))
		}
		for k := range a {
			if a[k].SQL != first[k].SQL || len(a[k].Params) != len(first[k].Params) {
				return fmt.Errorf("statement %d differs: %q vs %q", k+1, a[k].SQL, first[k].SQL)
			}
		}
		return nil
	}
	for t, sts := range perTenant {
		if err := same(sts); err != nil {
			return nil, fmt.Errorf("build pgbench script: request of tenant %d: %w", t, err)
		}
	}
	if err := same(again); err != nil {
		return nil, fmt.Errorf("build pgbench script: second request: %w", err)
	}
	for _, st := range first {
		if pgbenchVar.MatchString(st.SQL) {
			return nil, fmt.Errorf("build pgbench script: statement %q holds a ':' pgbench would read as a variable", st.SQL)
		}
	}

	type source struct {
		kind string // "const", "gset", "random"
		name string
	}
	plan := make([][]source, len(first))
	gset := map[int]bool{}
	var randoms []string
	for k, st := range first {
		plan[k] = make([]source, len(st.Params))
		for i, v := range st.Params {
			w := again[k].Params[i]
			if eq(v, w) || v == nil || w == nil {
				plan[k][i] = source{kind: "const"}
				continue
			}
			if j, col, ok := returnedEarlier(first, again, k, *v, *w); ok {
				gset[j] = true
				plan[k][i] = source{kind: "gset", name: fmt.Sprintf("g%d_%s", j, col)}
				continue
			}
			if timeLike.MatchString(*v) {
				plan[k][i] = source{kind: "const"}
				continue
			}
			name := fmt.Sprintf("r%d_%d", k, i)
			randoms = append(randoms, name)
			plan[k][i] = source{kind: "random", name: name}
		}
	}

	var sb strings.Builder
	out := &pgbenchScript{}
	for _, st := range first {
		out.Statements = append(out.Statements, st.SQL)
	}
	sb.WriteString("-- The statements one CreateExport issues, captured from exportd on the wire.\n")
	for _, r := range randoms {
		fmt.Fprintf(&sb, "\\set %s random(1, 9000000000000000000)\n", r)
	}
	fmt.Fprintf(&sb, "\\set tenant :client_id %% %d\n", len(perTenant))
	for t, sts := range perTenant {
		if t == 0 {
			sb.WriteString("\\if :tenant = 0\n")
		} else {
			fmt.Fprintf(&sb, "\\elif :tenant = %d\n", t)
		}
		for k, st := range sts {
			sql := placeholder.ReplaceAllStringFunc(st.SQL, func(m string) string {
				n, _ := strconv.Atoi(m[1:])
				if n < 1 || n > len(st.Params) {
					return m
				}
				i := n - 1
				switch src := plan[k][i]; src.kind {
				case "gset", "random":
					return ":" + src.name
				}
				if st.Params[i] == nil {
					return "NULL"
				}
				if *st.Params[i] == "" {
					return "''" // pgbench -D takes no empty values
				}
				name := fmt.Sprintf("c%d_%d_%d", t, k, i)
				out.Vars = append(out.Vars, name+"="+*st.Params[i])
				return ":" + name
			})
			sb.WriteString(sql)
			if gset[k] {
				fmt.Fprintf(&sb, " \\gset g%d_\n", k)
			} else {
				sb.WriteString(";\n")
			}
		}
	}
	sb.WriteString("\\endif\n")
	out.Script = sb.String()
	return out, nil
}

func eq(a, b *string) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// returnedEarlier finds the latest statement before k that returned one row
// holding v (and w in the second request): the value the server read back.
func returnedEarlier(a, b []*statement, k int, v, w string) (int, string, bool) {
	for j := k - 1; j >= 0; j-- {
		if len(a[j].Rows) != 1 || len(b[j].Rows) != 1 {
			continue
		}
		for c, col := range a[j].Columns {
			if c < len(a[j].Rows[0]) && c < len(b[j].Rows[0]) &&
				eq(a[j].Rows[0][c], &v) && eq(b[j].Rows[0][c], &w) {
				return j, col, true
			}
		}
	}
	return 0, "", false
}

// pgbenchResult is what one pgbench run measured.
type pgbenchResult struct {
	TPS          float64
	Transactions int64
	P50, P99     time.Duration
	Failed       int64
}

// runPgbench runs the script with clients connections over threads threads
// for d, logging every transaction to compute percentiles.
func runPgbench(ctx context.Context, dsn, schema, dir string, s *pgbenchScript, clients, threads int, d time.Duration) (pgbenchResult, error) {
	var res pgbenchResult
	script := filepath.Join(dir, "createexport.sql")
	if err := os.WriteFile(script, []byte(s.Script), 0o600); err != nil {
		return res, fmt.Errorf("write pgbench script: %w", err)
	}
	logPrefix := filepath.Join(dir, "pgbench_log")
	args := []string{"-n", "-M", "extended", "-c", strconv.Itoa(clients), "-j", strconv.Itoa(threads),
		"-T", strconv.Itoa(max(1, int(d.Round(time.Second).Seconds()))), "-f", script,
		"-l", "--log-prefix", logPrefix}
	for _, v := range s.Vars {
		args = append(args, "-D", v)
	}
	args = append(args, dsn)
	cmd := exec.CommandContext(ctx, "pgbench", args...)
	cmd.Env = append(os.Environ(), "PGOPTIONS=-c search_path="+schema)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return res, fmt.Errorf("run pgbench: %w: %s", err, tail(stderr.String(), 2000))
	}
	out := stdout.String()
	m := regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`).FindStringSubmatch(out)
	if m == nil {
		return res, fmt.Errorf("run pgbench: no tps in its output: %s", tail(out+stderr.String(), 2000))
	}
	res.TPS, _ = strconv.ParseFloat(m[1], 64)
	if m := regexp.MustCompile(`number of failed transactions: ([0-9]+)`).FindStringSubmatch(out); m != nil {
		res.Failed, _ = strconv.ParseInt(m[1], 10, 64)
	}
	lats, err := pgbenchLatencies(logPrefix)
	if err != nil {
		return res, err
	}
	res.Transactions = int64(len(lats))
	res.P50, res.P99 = percentile(lats, 0.50), percentile(lats, 0.99)
	return res, nil
}

// pgbenchLatencies reads the per-transaction logs pgbench -l wrote: the
// third field is the latency in microseconds.
func pgbenchLatencies(prefix string) ([]time.Duration, error) {
	files, err := filepath.Glob(prefix + ".*")
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("read pgbench logs: none at %s.*", prefix)
	}
	var lats []time.Duration
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return nil, fmt.Errorf("read pgbench log: %w", err)
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			fs := strings.Fields(sc.Text())
			if len(fs) < 3 {
				continue
			}
			us, err := strconv.ParseInt(fs[2], 10, 64)
			if err != nil {
				continue // "failed" or "skipped"
			}
			lats = append(lats, time.Duration(us)*time.Microsecond)
		}
		_ = fh.Close()
	}
	return lats, nil
}

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(float64(len(s)-1) * p)
	return s[i]
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
