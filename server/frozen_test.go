package server_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/exportd/exportd/internal/store"
	"github.com/exportd/exportd/internal/store/storetest"
	"github.com/exportd/exportd/server/servertest"
)

// TestReadyzFrozenDatabase freezes a PostgreSQL of the test's own
// (SIGSTOP: connections open, nothing answers): /readyz still answers, "not
// ready", within its 2 s bound, and "ready" again once the server runs.
func TestReadyzFrozenDatabase(t *testing.T) {
	t.Parallel()
	pg := storetest.StartServer(t)
	st, err := store.Open(context.Background(), pg.DSN, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	env := servertest.StartWith(t, st, servertest.Options{NoWorkers: true})
	get := func() (int, time.Duration) {
		start := time.Now()
		resp, err := env.Client.Get(env.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, time.Since(start)
	}
	if code, _ := get(); code != http.StatusOK {
		t.Fatalf("/readyz before the freeze: %d", code)
	}
	pg.Freeze(t)
	code, took := get()
	pg.Continue(t)
	if code != http.StatusServiceUnavailable || took > 2500*time.Millisecond {
		t.Fatalf("/readyz with the database frozen: %d after %s; want 503 within 2 s", code, took)
	}
	t.Logf("/readyz answered %d in %s with PostgreSQL frozen", code, took.Round(time.Millisecond))
	deadline := time.Now().Add(30 * time.Second)
	for {
		if code, _ := get(); code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("/readyz not ready 30 s after the database ran again")
		}
		time.Sleep(100 * time.Millisecond)
	}
}
