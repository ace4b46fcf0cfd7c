package server_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"connectrpc.com/connect"

	auditv1 "github.com/exportd/exportd/gen/go/audit/v1"
	"github.com/exportd/exportd/gen/go/audit/v1/auditv1connect"

	"github.com/exportd/exportd/internal/store"
	"github.com/exportd/exportd/internal/store/storetest"
	"github.com/exportd/exportd/server/servertest"
)

// ownPostgres runs exportd (no workers) on a PostgreSQL of the test's own,
// which the test may freeze or stop.
func ownPostgres(t *testing.T) (*storetest.Server, *servertest.Env) {
	t.Helper()
	pg := storetest.StartServer(t)
	st, err := store.Open(context.Background(), pg.DSN, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return pg, servertest.StartWith(t, st, servertest.Options{NoWorkers: true})
}

// TestReadyzFrozenDatabase freezes a PostgreSQL of the test's own
// (SIGSTOP: connections open, nothing answers): /readyz still answers, "not
// ready", within its 2 s bound, and "ready" again once the server runs.
func TestReadyzFrozenDatabase(t *testing.T) {
	t.Parallel()
	pg, env := ownPostgres(t)
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

// TestDatabaseOutage stops the test's own PostgreSQL: API calls answer
// unavailable (503 on REST), which clients retry, and work again once it
// is back.
func TestDatabaseOutage(t *testing.T) {
	t.Parallel()
	pg, env := ownPostgres(t)
	tenant := env.Tenant(t, "Acme", true)
	key := env.Key(t, tenant, "auditor", "audrey@example.com")
	exports := auditv1connect.NewExportServiceClient(env.Client, env.URL, withKey(key))
	logs := auditv1connect.NewAuditLogServiceClient(env.Client, env.URL, withKey(key))
	res, err := exports.CreateExport(context.Background(), createRequest(periodTo.Add(-time.Second), ""))
	if err != nil {
		t.Fatal(err)
	}
	id := res.Msg.GetJobId()
	calls := map[string]func() error{
		"WhoAmI": func() error {
			_, err := exports.WhoAmI(context.Background(), connect.NewRequest(&auditv1.WhoAmIRequest{}))
			return err
		},
		"GetExport": func() error {
			_, err := exports.GetExport(context.Background(), connect.NewRequest(&auditv1.GetExportRequest{JobId: id}))
			return err
		},
		"QueryEvents": func() error {
			_, err := logs.QueryEvents(context.Background(), connect.NewRequest(&auditv1.QueryEventsRequest{}))
			return err
		},
	}
	// A watch open across the outage rides it out: it stays open and
	// follows the job once the database is back.
	watch, err := exports.WatchExport(context.Background(), connect.NewRequest(&auditv1.WatchExportRequest{JobId: id}))
	if err != nil {
		t.Fatal(err)
	}
	if !watch.Receive() {
		t.Fatalf("watch: %v", watch.Err())
	}
	watchEnded := make(chan error, 1)
	var last *auditv1.ExportJob
	go func() {
		for watch.Receive() {
			last = watch.Msg().GetExport()
		}
		watchEnded <- watch.Err()
	}()
	pg.Stop(t)
	for name, call := range calls {
		if err := call(); connect.CodeOf(err) != connect.CodeUnavailable {
			t.Errorf("%s with the database down: %v; want unavailable", name, err)
		}
	}
	resp, b := restGet(t, env, http.MethodGet, "/v1/audit/exports/"+id, key, nil)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("REST GET with the database down: %d %s", resp.StatusCode, b)
	}
	select {
	case err := <-watchEnded:
		t.Fatalf("the watch ended during the outage: %v", err)
	default:
	}
	pg.Start(t)
	for name, call := range calls {
		if err := call(); err != nil {
			t.Errorf("%s after the database came back: %v", name, err)
		}
	}
	if _, err := exports.CancelExport(context.Background(), connect.NewRequest(&auditv1.CancelExportRequest{JobId: id})); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-watchEnded:
		if err != nil || last.GetStatus() != auditv1.ExportStatus_FAILED {
			t.Errorf("the watch ended with %v at %v; want the cancelled job, cleanly", err, last.GetStatus())
		}
	case <-time.After(30 * time.Second):
		t.Error("the watch did not follow the job after the outage")
	}
}
