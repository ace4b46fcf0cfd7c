package main

import (
	"testing"
	"time"
)

func TestParseList(t *testing.T) {
	t.Parallel()
	out := "FuzzCell\nok  \tgithub.com/exportd/exportd/reports\t0.012s\n" +
		"?   \tgithub.com/exportd/exportd/cmd/bench\t[no test files]\n" +
		"FuzzParseKey\nFuzzOther\nok  \tgithub.com/exportd/exportd/internal/apikey\t0.004s\n" +
		"ok  \tgithub.com/exportd/exportd/server\t0.050s\n"
	got := parseList(out)
	want := []fuzzTarget{
		{"github.com/exportd/exportd/internal/apikey", "FuzzOther"},
		{"github.com/exportd/exportd/internal/apikey", "FuzzParseKey"},
		{"github.com/exportd/exportd/reports", "FuzzCell"},
	}
	if len(got) != len(want) {
		t.Fatalf("parseList = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("target %d = %v, want %v", i, got[i], want[i])
		}
	}
}

func TestLastExecs(t *testing.T) {
	t.Parallel()
	out := "fuzz: elapsed: 0s, gathering baseline coverage: 0/12 completed\n" +
		"fuzz: elapsed: 3s, execs: 120345 (40112/sec), new interesting: 2 (total: 14)\n" +
		"fuzz: elapsed: 5s, execs: 201230 (40333/sec), new interesting: 2 (total: 14)\nPASS\n"
	if n := lastExecs(out); n != 201230 {
		t.Errorf("lastExecs = %d, want 201230", n)
	}
}

// TestParseTests reads both the documented RELIABILITY lines and the
// sentences the fault-injection and matrix tests print.
func TestParseTests(t *testing.T) {
	t.Parallel()
	out := `=== RUN   TestFaultInjection
    cluster_test.go:444: kills survived: 12, jobs: 20, lost: 0, duplicated: 0, takeovers: 12, longest takeover: 2.1s from the kill (lease 2s)
--- PASS: TestFaultInjection (40.12s)
=== RUN   TestReplicas
    cluster_test.go:90: RELIABILITY kills_survived=0 jobs=30 lost=1 duplicated=0 longest_takeover=3.5s
--- FAIL: TestReplicas (10.00s)
=== RUN   TestRestartReleasesLeases
    crash_test.go:129: RELIABILITY kills_survived=1 jobs=1 lost=0 duplicated=0 failures_counted=2 restart_takeover=1.5s lease=1m0s
--- PASS: TestRestartReleasesLeases (20.00s)
=== RUN   TestAuthorizationMatrix/postgres
    matrix_test.go:250: authorization matrix on postgres: 1234 cells, 0 cross-tenant successes
    matrix_test.go:250: RELIABILITY cross_tenant_successes=2 cells=10
`
	var tt totals
	tt.parseTests(out)
	if tt.faultRuns != 3 || tt.kills != 13 || tt.jobs != 51 || tt.lost != 1 || tt.duplicated != 0 {
		t.Errorf("fault figures = runs %d kills %d jobs %d lost %d duplicated %d", tt.faultRuns, tt.kills, tt.jobs, tt.lost, tt.duplicated)
	}
	if tt.longestTakeover != 3500*time.Millisecond {
		t.Errorf("longest takeover = %s, want 3.5s", tt.longestTakeover)
	}
	if tt.failuresCounted != 2 || tt.restartTakeover != 1500*time.Millisecond || tt.restartLease != "1m0s" {
		t.Errorf("restart figures = failures %d takeover %s lease %s", tt.failuresCounted, tt.restartTakeover, tt.restartLease)
	}
	if tt.matrixRuns != 2 || tt.cells != 1244 || tt.crossTenant != 2 {
		t.Errorf("matrix figures = runs %d cells %d cross %d", tt.matrixRuns, tt.cells, tt.crossTenant)
	}
	if len(tt.failedTests) != 1 || tt.failedTests[0] != "TestReplicas" {
		t.Errorf("failed tests = %v", tt.failedTests)
	}
}
