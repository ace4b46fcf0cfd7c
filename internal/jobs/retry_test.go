package jobs

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/exportd/exportd/internal/fault"
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
	} {
		if got := IsPermanent(tc.err); got != tc.want {
			t.Errorf("IsPermanent(%v) = %v, want %v", tc.err, got, tc.want)
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
