package jobs

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lib/pq"

	"github.com/exportd/exportd/internal/fault"
	"github.com/exportd/exportd/reports"
)

func TestBackoff(t *testing.T) {
	t.Parallel()
	base, limit := time.Second, 30*time.Second
	for _, tc := range []struct {
		attempt int
		full    time.Duration // the un-jittered delay
	}{{1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second}, {5, 16 * time.Second}, {6, 30 * time.Second}, {40, 30 * time.Second}} {
		for range 200 {
			d := Backoff(base, limit, tc.attempt)
			if d < tc.full/2 || d > tc.full {
				t.Fatalf("attempt %d: %s, want within [%s, %s]", tc.attempt, d, tc.full/2, tc.full)
			}
		}
	}
}

func TestIsPermanent(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{errors.New("pq: connection refused"), false},
		{fmt.Errorf("write artifact: %w", errors.New("connection reset")), false},
		{fault.New(fault.Unavailable, "database unavailable"), false},
		{fault.New(fault.FailedPrecondition, "no Compliance Pack"), true},
		{fmt.Errorf("load tenant: %w", fault.New(fault.NotFound, "tenant not found")), true},
		{Permanent(errors.New("report type retired")), true},
		// Defects of exportd: no attempt can succeed.
		{fmt.Errorf("query attestations: %w", errors.New("missing argument with index 4")), true},
		{fmt.Errorf("query events: %w", errors.New(`missing named argument "9"`)), true},
		{fmt.Errorf("query events: %w", errors.New("sql: expected 4 arguments, got 3")), true},
		{fmt.Errorf("query events: %w", errors.New("pq: got 4 parameters but the statement requires 9")), true},
		{fmt.Errorf("query events: %w", &pq.Error{Code: "42601", Message: `syntax error at or near "FROMM"`}), true},
		{fmt.Errorf("query events: %w", &pq.Error{Code: "42703", Message: `column "x" does not exist`}), true},
		{fmt.Errorf("query events: %w", &pq.Error{Code: "22P02", Message: "invalid input syntax for type bigint"}), true},
		{fmt.Errorf("generate report: %w", reports.ErrUnsupported), true},
		{fmt.Errorf("generate gdpr report: encode controller: %w", &json.UnsupportedValueError{Str: "NaN"}), true},
		// The database's state, not the statement: another attempt may work.
		{fmt.Errorf("query events: %w", &pq.Error{Code: "08006", Message: "connection failure"}), false},
		{fmt.Errorf("query events: %w", &pq.Error{Code: "40001", Message: "could not serialize access"}), false},
		{fmt.Errorf("query events: %w", &pq.Error{Code: "57014", Message: "canceling statement due to statement timeout"}), false},
		{fmt.Errorf("query events: %w", &pq.Error{Code: "53300", Message: "too many connections"}), false},
	} {
		if got := IsPermanent(tc.err); got != tc.want {
			t.Errorf("IsPermanent(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// TestClassifyReasons checks what a job's error says for each kind of
// failure: a defect names itself, says retrying will not help and gives the
// job id to report; a domain error keeps its own words; a transient one
// gives the innermost cause.
func TestClassifyReasons(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err       error
		permanent bool
		want      []string
	}{
		{fmt.Errorf("generate gdpr report: read attestation records: query attestations: %w", errors.New("missing argument with index 4")), true,
			[]string{"defect in exportd", "missing argument with index 4", "retrying will not help", "report it to your operator with job id job_42"}},
		{fmt.Errorf("query events: %w", &pq.Error{Code: "42P01", Message: `relation "audit_eventz" does not exist`}), true,
			[]string{"defect in exportd", "SQLSTATE 42P01", `relation "audit_eventz" does not exist`, "job id job_42"}},
		{fmt.Errorf("encode controller: %w", &json.UnsupportedValueError{Str: "NaN"}), true,
			[]string{"defect in exportd", "could not be encoded", "job id job_42"}},
		{fault.New(fault.FailedPrecondition, "enable the Compliance Pack"), true, []string{"enable the Compliance Pack"}},
		{fmt.Errorf("commit artifact: %w", errors.New("connection reset")), false, []string{"report generation failed: connection reset"}},
	} {
		v := Classify(tc.err, "job_42")
		if v.Permanent != tc.permanent {
			t.Errorf("Classify(%v) permanent = %v, want %v", tc.err, v.Permanent, tc.permanent)
		}
		for _, w := range tc.want {
			if !strings.Contains(v.Reason, w) {
				t.Errorf("Classify(%v) says %q, which lacks %q", tc.err, v.Reason, w)
			}
		}
	}
}

func TestParseArtifactKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		key     string
		job     string
		attempt int
		ok      bool
	}{
		{"exports/t1/job_a/attempt-3/report.json", "job_a", 3, true},
		{"exports/t1/job_a/attempt-12/report.csv.18c2f9.tmp", "job_a", 12, true},
		{"exports/t1/job_a/report.json", "", 0, false},
		{"exports/t1/job_a/try-3/report.json", "", 0, false},
		{"other/t1/job_a/attempt-3/report.json", "", 0, false},
	} {
		job, attempt, ok := parseArtifactKey(tc.key)
		if job != tc.job || attempt != tc.attempt || ok != tc.ok {
			t.Errorf("parseArtifactKey(%q) = %q, %d, %v", tc.key, job, attempt, ok)
		}
	}
}
