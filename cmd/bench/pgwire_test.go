package main

import (
	"database/sql"
	"strings"
	"testing"

	"github.com/exportd/exportd/internal/store/storetest"
)

// TestWireProxyCapturesStatements runs lib/pq through the proxy against a
// real PostgreSQL and checks what it recorded: the SQL, the bound
// parameters, and the returned rows decoded to text (lib/pq reads int8 in
// binary).
func TestWireProxyCapturesStatements(t *testing.T) {
	t.Parallel()
	dsn := storetest.PostgresDSN(t)
	host, err := dsnHostPort(dsn)
	if err != nil {
		t.Fatal(err)
	}
	p, err := newWireProxy(host)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	db, err := sql.Open("postgres", viaProxy(dsn, p.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE TABLE counters (id text PRIMARY KEY, n bigint NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("INSERT INTO counters VALUES ('a', 41)"); err != nil {
		t.Fatal(err)
	}

	p.Capture()
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	if err := tx.QueryRow("UPDATE counters SET n = n + $1 WHERE id = $2 RETURNING n", 1, "a").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	sts := p.Stop()

	var sqls []string
	for _, st := range sts {
		sqls = append(sqls, st.SQL)
	}
	if len(sts) != 3 || !strings.HasPrefix(sts[0].SQL, "BEGIN") || sts[2].SQL != "COMMIT" {
		t.Fatalf("captured %q, want BEGIN, the UPDATE, COMMIT", sqls)
	}
	up := sts[1]
	if up.SQL != "UPDATE counters SET n = n + $1 WHERE id = $2 RETURNING n" {
		t.Errorf("SQL = %q", up.SQL)
	}
	if len(up.Params) != 2 || *up.Params[0] != "1" || *up.Params[1] != "a" {
		t.Errorf("params = %v", up.Params)
	}
	if len(up.Rows) != 1 || len(up.Columns) != 1 || up.Columns[0] != "n" || *up.Rows[0][0] != "42" {
		t.Errorf("columns %v rows %v, want n = 42", up.Columns, up.Rows)
	}
}

func str(s string) *string { return &s }

// TestBuildPgbenchScript turns two tenants' captured requests into a script:
// fixed values become -D variables per tenant, a value the server read back
// becomes \gset, a changing id a random number, a changing time stays.
func TestBuildPgbenchScript(t *testing.T) {
	t.Parallel()
	req := func(tenant, seq, id, at string) []*statement {
		return []*statement{
			{SQL: "SELECT id FROM tenants WHERE id = $1", Params: []*string{str(tenant)}, Columns: []string{"id"}, Rows: [][]*string{{str(tenant)}}},
			{SQL: "UPDATE tenants SET seq = seq + $1 WHERE id = $2 RETURNING seq", Params: []*string{str("1"), str(tenant)},
				Columns: []string{"seq"}, Rows: [][]*string{{str(seq)}}},
			{SQL: "INSERT INTO jobs (id, tenant_id, seq, at, note) VALUES ($1, $2, $3, $4, $5)",
				Params: []*string{str(id), str(tenant), str(seq), str(at), str("")}},
		}
	}
	s, err := buildPgbenchScript(
		[][]*statement{req("t0", "5", "job_a", "2026-01-01 10:00:00Z"), req("t1", "9", "job_b", "2026-01-01 10:00:01Z")},
		req("t0", "6", "job_c", "2026-01-01 10:00:02Z"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`\set r2_0 random(1, 9000000000000000000)`,
		`\set tenant :client_id % 2`,
		`\if :tenant = 0`,
		`UPDATE tenants SET seq = seq + :c0_1_0 WHERE id = :c0_1_1 RETURNING seq \gset g1_`,
		`INSERT INTO jobs (id, tenant_id, seq, at, note) VALUES (:r2_0, :c0_2_1, :g1_seq, :c0_2_3, '');`,
		`\elif :tenant = 1`,
		`INSERT INTO jobs (id, tenant_id, seq, at, note) VALUES (:r2_0, :c1_2_1, :g1_seq, :c1_2_3, '');`,
		`\endif`,
	} {
		if !strings.Contains(s.Script, want) {
			t.Errorf("script lacks %q:\n%s", want, s.Script)
		}
	}
	vars := strings.Join(s.Vars, "\n")
	for _, want := range []string{"c0_0_0=t0", "c1_0_0=t1", "c0_2_3=2026-01-01 10:00:00Z", "c1_2_3=2026-01-01 10:00:01Z"} {
		if !strings.Contains(vars, want) {
			t.Errorf("vars lack %q: %v", want, s.Vars)
		}
	}

	if _, err := buildPgbenchScript([][]*statement{req("t0", "5", "a", "x")}, req("t0", "6", "b", "y")[:2]); err == nil {
		t.Error("requests of different shapes: want an error")
	}
}
