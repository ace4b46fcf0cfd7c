package store_test

import (
	"bytes"
	"context"
	"database/sql"
	"testing"

	"github.com/exportd/exportd/internal/store"
	"github.com/exportd/exportd/internal/store/storetest"
)

// roundTripCorpus holds the forms whose value PostgreSQL's jsonb changes or
// refuses: negative zeros, numbers it prints in another notation, numbers a
// double cannot hold, NULs, escapes, duplicate keys and deep nesting.
var roundTripCorpus = []string{
	`{"v":-0}`, `{"v":-0.0}`, `{"v":-0e5}`, `{"v":-1e-400}`, `{"v":[-0,{"w":-0.000}]}`, `{"-0":-0}`,
	`{"v":1e21}`, `{"v":5e-324}`, `{"v":1.7976931348623157e308}`, `{"v":12345678901234567890}`,
	`{"v":0.1}`, `{"v":1E+2}`, `{"v":"\u0000"}`, `{"\u0000":1}`, `{"v":"\\u0000"}`, `{"v":"<&>"}`,
	`{"v":"\ud800"}`, `{"b":1,"a":2,"b":3}`, `{"date":"2026-01-02","n":-0}`, `[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]`,
	`{"v":"é\u2028😀"}`, `{"v":null,"w":true,"x":false}`, `"s"`, `1`, `-0`,
}

// FuzzCanonicalRoundTrip stores canonical metadata in a real PostgreSQL
// jsonb and checks that what comes back canonicalises to the same bytes:
// the property that lets VerifyChain re-hash a stored event. CanonicalJSON
// may refuse an input, but what it accepts PostgreSQL must store.
func FuzzCanonicalRoundTrip(f *testing.F) {
	for _, s := range roundTripCorpus {
		f.Add(s)
	}
	db, err := sql.Open("postgres", storetest.PostgresDSN(f))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { db.Close() })
	f.Fuzz(func(t *testing.T, s string) {
		c1, err := store.CanonicalJSON([]byte(s))
		if err != nil {
			return
		}
		var stored string
		if err := db.QueryRow("SELECT $1::jsonb::text", string(c1)).Scan(&stored); err != nil {
			t.Fatalf("PostgreSQL refused canonical metadata %s (from %q): %v", c1, s, err)
		}
		c2, err := store.CanonicalJSON([]byte(stored))
		if err != nil {
			t.Fatalf("what PostgreSQL stored for %s is not JSON: %q: %v", c1, stored, err)
		}
		if !bytes.Equal(c1, c2) {
			t.Fatalf("canonical %s (from %q) came back from jsonb as %s, canonical %s", c1, s, stored, c2)
		}
	})
}

// TestCanonicalJSONEdges pins the forms the chain depends on.
func TestCanonicalJSONEdges(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		`{"v":-0}`:                   `{"v":0}`,
		`{"v":[-0.0,{"w":-1e-400}]}`: `{"v":[0,{"w":0}]}`,
		`{"date":"2026-01-02"}`:      `{"date":"2026-01-02"}`,
		`{"v":"\\u0000"}`:            `{"v":"\\u0000"}`,
		`{"v":-12.5}`:                `{"v":-12.5}`,
	} {
		got, err := store.CanonicalJSON([]byte(in))
		if err != nil || string(got) != want {
			t.Errorf("CanonicalJSON(%s) = %s, %v; want %s", in, got, err, want)
		}
	}
	for _, in := range []string{`{"v":"\u0000"}`, `{"a\u0000":1}`, `{"v":["x\u0000y"]}`} {
		if _, err := store.CanonicalJSON([]byte(in)); err == nil {
			t.Errorf("CanonicalJSON(%s) accepted a NUL", in)
		}
	}
}

// TestSessionDefaults: a store's PostgreSQL sessions carry the statement
// timeout unless the URL sets its own.
func TestSessionDefaults(t *testing.T) {
	t.Parallel()
	dsn := storetest.PostgresDSN(t)
	for _, c := range []struct{ dsn, want string }{{dsn, "10min"}, {dsn + "&statement_timeout=90000", "90s"}} {
		st, err := store.Open(context.Background(), c.dsn, "")
		if err != nil {
			t.Fatal(err)
		}
		var got string
		err = st.RawDB().QueryRow("SHOW statement_timeout").Scan(&got)
		st.Close()
		if err != nil || got != c.want {
			t.Errorf("statement_timeout = %q, %v; want %q", got, err, c.want)
		}
	}
}
