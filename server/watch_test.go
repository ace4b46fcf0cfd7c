package server_test

import (
	"context"
	"testing"
	"time"

	"connectrpc.com/connect"

	auditv1 "github.com/exportd/exportd/gen/go/audit/v1"
	"github.com/exportd/exportd/internal/store/storetest"
	"github.com/exportd/exportd/server"
	"github.com/exportd/exportd/server/servertest"
)

// TestWatchKeepalive watches a job that never changes (no workers, so it
// stays PENDING): with a short keepalive interval the stream still receives
// message after message, each the job's current state, so that a proxy
// that cuts idle connections leaves it open.
func TestWatchKeepalive(t *testing.T) {
	t.Parallel()
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			env := servertest.Start(t, dialect, servertest.Options{NoWorkers: true,
				Server: server.Config{KeepaliveInterval: 50 * time.Millisecond}})
			f := newFixture(t, env)
			id := f.create(t)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			stream, err := f.exports.WatchExport(ctx, connect.NewRequest(&auditv1.WatchExportRequest{JobId: id}))
			if err != nil {
				t.Fatal(err)
			}
			const want = 5
			got := 0
			for got < want && stream.Receive() {
				j := stream.Msg().GetExport()
				if j.GetJobId() != id || j.GetStatus() != auditv1.ExportStatus_PENDING {
					t.Fatalf("message %d: job %s is %s; want %s PENDING", got+1, j.GetJobId(), j.GetStatus(), id)
				}
				got++
			}
			if got < want {
				t.Fatalf("received %d messages of an unchanging job, want %d (%v)", got, want, stream.Err())
			}
			if err := stream.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestWatchesShareThePoll opens 300 watches of 30 PENDING jobs over the
// production handler and checks that, while they are open, the database
// pool holds a handful of connections: the watches share one poll instead
// of each querying the job every interval.
func TestWatchesShareThePoll(t *testing.T) {
	t.Parallel()
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			const (
				jobCount = 30
				watches  = 300
				maxConns = 10
			)
			env := servertest.Start(t, dialect, servertest.Options{NoWorkers: true,
				Server: server.Config{RateLimit: -1}})
			f := newFixture(t, env)
			ids := make([]string, jobCount)
			for i := range ids {
				ids[i] = f.create(t)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			streams := make([]*connect.ServerStreamForClient[auditv1.WatchExportResponse], 0, watches)
			for i := range watches {
				id := ids[i%jobCount]
				s, err := f.exports.WatchExport(ctx, connect.NewRequest(&auditv1.WatchExportRequest{JobId: id}))
				if err != nil {
					t.Fatalf("watch %d: %v", i, err)
				}
				if !s.Receive() {
					t.Fatalf("watch %d: no first message: %v", i, s.Err())
				}
				if got := s.Msg().GetExport().GetJobId(); got != id {
					t.Fatalf("watch %d follows %s, want %s", i, got, id)
				}
				streams = append(streams, s)
			}
			defer func() {
				for _, s := range streams {
					_ = s.Close()
				}
			}()
			// Sample the pool over many poll intervals while every watch is
			// open and polled.
			var open, inUse int
			for range 50 {
				st := env.Store.DBStats()
				open, inUse = max(open, st.OpenConnections), max(inUse, st.InUse)
				time.Sleep(10 * time.Millisecond)
			}
			t.Logf("%d watches of %d jobs on %s: at most %d open connections, %d in use", watches, jobCount, dialect, open, inUse)
			if open > maxConns {
				t.Errorf("%d open connections while %d watches were idle, want at most %d", open, watches, maxConns)
			}
		})
	}
}
