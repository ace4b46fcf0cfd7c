package main_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	auditv1 "github.com/exportd/exportd/gen/go/audit/v1"
	"github.com/exportd/exportd/gen/go/audit/v1/auditv1connect"
	"github.com/exportd/exportd/internal/store/storetest"
)

// TestShutdownWithOpenStreams sends SIGTERM to `exportd serve` while a
// WatchExport, a StreamEvents and a slow REST download are open: the watch
// ends with unavailable (reconnect), the download is cut, every loop joins,
// and the process exits 0 within 5 s.
func TestShutdownWithOpenStreams(t *testing.T) {
	t.Parallel()
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			store := storeFlags(t, dialect)
			tenant := admin(t, store, "tenant", "create", "--name", "Acme", "--compliance-pack")
			key := admin(t, store, "apikey", "create", "--tenant", tenant, "--role", "auditor", "--principal", "audrey@example.com")
			admin(t, store, "seed-demo", "--tenant", tenant, "--events", "100000", "--from", "2026-01-01", "--to", "2026-04-01")
			ctx := context.Background()
			period := func() *auditv1.CreateExportRequest {
				return &auditv1.CreateExportRequest{ReportType: "soc2", Format: "csv",
					StartDate: timestamppb.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)),
					EndDate:   timestamppb.New(time.Date(2026, 3, 31, 0, 0, 0, 0, time.UTC))}
			}
			auth := connect.WithInterceptors(connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
				return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
					req.Header().Set("X-API-Key", key)
					return next(ctx, req)
				}
			}))

			// A first process completes an export, to have an artifact to
			// download slowly, and stops cleanly.
			first := serve(t, store)
			exports := auditv1connect.NewExportServiceClient(http.DefaultClient, first.url, auth)
			done, err := exports.CreateExport(ctx, connect.NewRequest(period()))
			if err != nil {
				t.Fatal(err)
			}
			waitStatus(t, first.url, key, done.Msg.GetJobId(), "COMPLETED")
			if err := first.stop(); err != nil {
				t.Fatalf("first exportd: %v\n%s", err, first.logs())
			}

			// The second runs no workers, so a new job stays PENDING and its
			// watch stays open.
			s := serve(t, store, "--workers", "0")
			exports = auditv1connect.NewExportServiceClient(http.DefaultClient, s.url, auth)
			pending, err := exports.CreateExport(ctx, connect.NewRequest(period()))
			if err != nil {
				t.Fatal(err)
			}
			watchReq := connect.NewRequest(&auditv1.WatchExportRequest{JobId: pending.Msg.GetJobId()})
			watchReq.Header().Set("X-API-Key", key)
			watch, err := exports.WatchExport(ctx, watchReq)
			if err != nil {
				t.Fatal(err)
			}
			if !watch.Receive() {
				t.Fatalf("watch: %v", watch.Err())
			}
			watchEnded := make(chan error, 1)
			go func() {
				for watch.Receive() {
				}
				watchEnded <- watch.Err()
			}()

			req, err := http.NewRequest(http.MethodGet, s.url+"/v1/audit/exports/"+done.Msg.GetJobId()+"/download", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("X-API-Key", key)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK || resp.ContentLength < 8<<20 {
				t.Fatalf("download: %d, %d bytes; want 200 and an artifact bigger than the socket buffers", resp.StatusCode, resp.ContentLength)
			}
			if _, err := io.ReadFull(resp.Body, make([]byte, 1024)); err != nil {
				t.Fatal(err)
			}

			start := time.Now()
			if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { <-s.stopped; exited <- s.cmd.Wait() }()
			select {
			case err := <-exited:
				if err != nil {
					t.Fatalf("exportd exited with %v after SIGTERM:\n%s", err, s.logs())
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("exportd still running 5 s after SIGTERM:\n%s", s.logs())
			}
			t.Logf("%s: exited 0 %s after SIGTERM with a watch and a download open", dialect, time.Since(start).Round(time.Millisecond))
			select {
			case err := <-watchEnded:
				if connect.CodeOf(err) != connect.CodeUnavailable || !strings.Contains(err.Error(), "shutting down") {
					t.Errorf("watch ended with %v, want unavailable: shutting down", err)
				}
			case <-time.After(time.Second):
				t.Error("watch still open after exportd exited")
			}
			n, err := io.Copy(io.Discard, resp.Body)
			if err == nil && n+1024 == resp.ContentLength {
				t.Errorf("the download finished whole; want it cut at shutdown")
			}
			if !strings.Contains(s.logs(), `"msg":"stopped"`) {
				t.Errorf("no clean stop in the log:\n%s", s.logs())
			}
		})
	}
}
