package server_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"

	auditv1 "github.com/exportd/exportd/gen/go/audit/v1"
	"github.com/exportd/exportd/gen/go/audit/v1/auditv1connect"
	"github.com/exportd/exportd/internal/apikey"
	"github.com/exportd/exportd/internal/store"
	"github.com/exportd/exportd/internal/store/storetest"
	"github.com/exportd/exportd/server"
	"github.com/exportd/exportd/server/servertest"
)

// realisticBatch is n events whose metadata is nested, non-ASCII and about
// size bytes each, as real ingesters send.
func realisticBatch(t *testing.T, from, n, size int) []*auditv1.AuditEventInput {
	t.Helper()
	out := inputs(from, n)
	for i, in := range out {
		notes := strings.Repeat("Größe prüfen — 検証 ", size/28)
		m, err := structpb.NewStruct(map[string]any{
			"request": map[string]any{"path": "/records/" + strconv.Itoa(i), "method": "PATCH", "bytes": 1234 + i},
			"changes": []any{map[string]any{"field": "diagnosis", "from": "J45.909", "to": "J45.20"}},
			"notes":   notes,
		})
		if err != nil {
			t.Fatal(err)
		}
		in.Metadata = m
	}
	return out
}

// rawPost sends body to path as is; gzipped says whether to mark it
// Content-Encoding: gzip; chunked hides its length.
func rawPost(t *testing.T, env *servertest.Env, path, contentType string, body []byte, gzipped, chunked bool, key string) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader = bytes.NewReader(body)
	if chunked {
		rd = io.MultiReader(rd) // no length known to net/http
	}
	req, err := http.NewRequest(http.MethodPost, env.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("X-API-Key", key)
	if strings.HasPrefix(contentType, "application/json") && !strings.HasPrefix(path, "/v1/") {
		req.Header.Set("Connect-Protocol-Version", "1")
	}
	if gzipped {
		req.Header.Set("Content-Encoding", "gzip")
	}
	resp := do(t, env, req)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// TestRequestSizeLimits drives the HTTP policy exportd serve uses: a full
// WriteEvents batch of realistic events (about 5 MB) is accepted over
// Connect, gRPC and REST; bodies over their limit, with or without a
// length, and a gzip bomb are invalid_argument naming the limit (413 on
// REST), and change nothing.
func TestRequestSizeLimits(t *testing.T) {
	t.Parallel()
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			a := startAudit(t, dialect)
			env := a.env
			key := env.Key(t, a.tenant, "ingester", "bulk-svc")
			batch := realisticBatch(t, 0, 1000, 5000)
			req := &auditv1.WriteEventsRequest{Events: batch}
			body, err := protojson.Marshal(req)
			if err != nil {
				t.Fatal(err)
			}
			if len(body) < 5_000_000 {
				t.Fatalf("batch is %d bytes, want about 5 MB", len(body))
			}
			grpcWriter := auditv1connect.NewAuditLogServiceClient(env.Client, env.URL, withKey(key), connect.WithGRPC())
			if _, err := grpcWriter.WriteEvents(context.Background(), connect.NewRequest(req)); err != nil {
				t.Fatalf("5 MB batch over gRPC: %v", err)
			}
			resp, b := rawPost(t, env, "/v1/audit/events", "application/json", body, false, false, key)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("5 MB batch over REST: %d %.300s", resp.StatusCode, b)
			}
			// The same events again over Connect: duplicates by
			// client_event_id, so accepted and stored once.
			if _, err := a.writer.WriteEvents(context.Background(), connect.NewRequest(req)); err != nil {
				t.Fatalf("5 MB batch over Connect: %v", err)
			}
			before := a.count(t)
			if before != 1000 {
				t.Fatalf("%d events stored, want 1000", before)
			}

			// Over the batch limit (32 MiB): refused before it is read, and
			// while it is read when no length was sent.
			huge := append(append([]byte(`{"events":[`), bytes.Repeat([]byte(" "), 33<<20)...), "]}"...)
			resp, b = rawPost(t, env, "/v1/audit/events", "application/json", huge, false, false, key)
			restStatus(t, resp, b, http.StatusRequestEntityTooLarge, connect.CodeInvalidArgument, "32 MiB")
			resp, b = rawPost(t, env, "/v1/audit/events", "application/json", huge, false, true, key)
			restStatus(t, resp, b, http.StatusBadRequest, connect.CodeInvalidArgument, "32 MiB")
			resp, b = rawPost(t, env, "/"+auditv1connect.AuditLogServiceName+"/WriteEvents", "application/json", huge, false, true, key)
			connectStatus(t, resp, b, connect.CodeInvalidArgument, "32 MiB")
			big := &auditv1.WriteEventsRequest{Events: realisticBatch(t, 5000, 1000, 40000)}
			_, err = grpcWriter.WriteEvents(context.Background(), connect.NewRequest(big))
			assertError(t, err, connect.CodeInvalidArgument, "", "32 MiB")

			// A gzip bomb: 64 MiB of spaces in 64 KiB, over Connect and REST.
			var zb bytes.Buffer
			zw := gzip.NewWriter(&zb)
			_, _ = zw.Write([]byte(`{"events":[`))
			spaces := bytes.Repeat([]byte(" "), 1<<20)
			for range 64 {
				_, _ = zw.Write(spaces)
			}
			_, _ = zw.Write([]byte(`]}`))
			_ = zw.Close()
			resp, b = rawPost(t, env, "/"+auditv1connect.AuditLogServiceName+"/WriteEvents", "application/json", zb.Bytes(), true, false, key)
			connectStatus(t, resp, b, connect.CodeInvalidArgument, "32 MiB")
			resp, b = rawPost(t, env, "/v1/audit/events", "application/json", zb.Bytes(), true, false, key)
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "32 MiB") {
				t.Fatalf("gzip bomb over REST: %d %s", resp.StatusCode, b)
			}

			// Every other request is small: 1 MiB.
			auditor := env.Key(t, a.tenant, "auditor", "audrey@example.com")
			pad := `{"report_type":"soc2","format":"json","padding":"` + strings.Repeat("x", 2<<20) + `"}`
			resp, b = rawPost(t, env, "/"+auditv1connect.ExportServiceName+"/CreateExport", "application/json", []byte(pad), false, false, auditor)
			connectStatus(t, resp, b, connect.CodeInvalidArgument, "1 MiB")
			resp, b = rawPost(t, env, "/v1/audit/exports", "application/json", []byte(pad), false, false, auditor)
			restStatus(t, resp, b, http.StatusRequestEntityTooLarge, connect.CodeInvalidArgument, "1 MiB")

			if after := a.count(t); after != before {
				t.Errorf("refused bodies changed the log: %d events, want %d", after, before)
			}
			if n, err := env.Store.CountJobs(context.Background(), a.tenant); err != nil || n != 0 {
				t.Errorf("refused CreateExport left %d jobs (%v)", n, err)
			}
		})
	}
}

// connectStatus decodes a Connect unary error answer.
func connectStatus(t *testing.T, resp *http.Response, b []byte, code connect.Code, inMessage string) {
	t.Helper()
	var e struct{ Code, Message string }
	if json.Unmarshal(b, &e) != nil || e.Code != code.String() || !strings.Contains(e.Message, inMessage) {
		t.Fatalf("%s: %d %.300s; want code %v, message with %q", resp.Request.URL.Path, resp.StatusCode, b, code, inMessage)
	}
}

// foldedEvents reads the tenant's events of action and adds up their
// counts.
func foldedEvents(t *testing.T, st *store.Store, tenantID, action string) (events int, total int64) {
	t.Helper()
	err := st.StreamEvents(context.Background(), tenantID, store.EventQuery{Action: action}, func(e store.StoredEvent) error {
		events++
		n, err := strconv.ParseInt(fmt.Sprint(e.Metadata["count"]), 10, 64)
		if err != nil {
			return fmt.Errorf("event %d: count %v: %w", e.Sequence, e.Metadata["count"], err)
		}
		total += n
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return events, total
}

// TestAuthFlood sends 600 requests with a revoked key at once, while the
// tenant's ingester keeps writing: the flood adds two audit events (the
// first refusal of each reason at once), whose counts add up to 600 after
// the window closes, and every write of the valid key succeeds.
func TestAuthFlood(t *testing.T) {
	t.Parallel()
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			env := servertest.Start(t, dialect, servertest.Options{NoWorkers: true})
			tenant := env.Tenant(t, "Acme", true)
			revoked := env.Key(t, tenant, "auditor", "mallory@example.com")
			k, err := apikey.Parse(revoked)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := env.Store.RevokeAPIKey(context.Background(), tenant, k.ID); err != nil {
				t.Fatal(err)
			}
			writer := auditv1connect.NewAuditLogServiceClient(env.Client, env.URL, withKey(env.Key(t, tenant, "ingester", "ingest-svc")))
			if _, err := writer.WriteEvents(context.Background(), connect.NewRequest(&auditv1.WriteEventsRequest{Events: inputs(0, 10)})); err != nil {
				t.Fatal(err)
			}
			attacker := auditv1connect.NewExportServiceClient(env.Client, env.URL, withKey(revoked))

			var (
				wg                 sync.WaitGroup
				unauth, exhausted  atomic.Int64
				other              atomic.Int64
				writes, writeFails atomic.Int64
			)
			stop := make(chan struct{})
			wg.Go(func() {
				for i := 1; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					_, err := writer.WriteEvents(context.Background(), connect.NewRequest(&auditv1.WriteEventsRequest{Events: inputs(i*10, 10)}))
					if err != nil {
						writeFails.Add(1)
						t.Errorf("write during the flood: %v", err)
					}
					writes.Add(1)
				}
			})
			var flood sync.WaitGroup
			for range 20 {
				flood.Go(func() {
					for range 30 {
						_, err := attacker.WhoAmI(context.Background(), connect.NewRequest(&auditv1.WhoAmIRequest{}))
						switch connect.CodeOf(err) {
						case connect.CodeUnauthenticated:
							unauth.Add(1)
						case connect.CodeResourceExhausted:
							exhausted.Add(1)
						default:
							other.Add(1)
						}
					}
				})
			}
			flood.Wait()
			close(stop)
			wg.Wait()
			if other.Load() != 0 || unauth.Load()+exhausted.Load() != 600 {
				t.Fatalf("answers: %d unauthenticated, %d resource_exhausted, %d other", unauth.Load(), exhausted.Load(), other.Load())
			}
			if exhausted.Load() == 0 {
				t.Errorf("no request was refused before authentication")
			}
			if writes.Load() == 0 || writeFails.Load() != 0 {
				t.Errorf("valid key: %d writes, %d failed", writes.Load(), writeFails.Load())
			}
			events, _ := foldedEvents(t, env.Store, tenant, "apikey.auth_failed")
			if events > 2 {
				t.Errorf("600 refused requests wrote %d audit events during the window, want at most 2", events)
			}
			t.Logf("%s: %d unauthenticated, %d refused before lookup, %d audit events in the window, %d writes by the valid key meanwhile",
				dialect, unauth.Load(), exhausted.Load(), events, writes.Load())
			// Shutdown closes the window: the counts add up to every refusal.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := env.API.Shutdown(ctx, time.Second); err != nil {
				t.Fatal(err)
			}
			events, total := foldedEvents(t, env.Store, tenant, "apikey.auth_failed")
			if events > 4 || total != 600 {
				t.Errorf("after the window: %d events counting %d refusals; want at most 4 counting 600", events, total)
			}
		})
	}
}

// TestRateLimitDenialsFold: a key over its request rate gets
// resource_exhausted, and its denials fold into one audit event per window
// instead of one each.
func TestRateLimitDenialsFold(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t, "sqlite", servertest.Options{NoWorkers: true, Server: server.Config{RateLimit: 0.001, RateBurst: 5}})
	tenant := env.Tenant(t, "Acme", true)
	c := auditv1connect.NewExportServiceClient(env.Client, env.URL, withKey(env.Key(t, tenant, "viewer", "vera@example.com")))
	denied := 0
	for range 100 {
		_, err := c.WhoAmI(context.Background(), connect.NewRequest(&auditv1.WhoAmIRequest{}))
		if connect.CodeOf(err) == connect.CodeResourceExhausted {
			denied++
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if denied != 95 {
		t.Fatalf("%d denied, want 95", denied)
	}
	if events, _ := foldedEvents(t, env.Store, tenant, "apikey.rate_limited"); events != 1 {
		t.Errorf("%d rate-limit events in the window, want 1", events)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := env.API.Shutdown(ctx, time.Second); err != nil {
		t.Fatal(err)
	}
	if events, total := foldedEvents(t, env.Store, tenant, "apikey.rate_limited"); events != 2 || total != 95 {
		t.Errorf("after the window: %d events counting %d; want 2 counting 95", events, total)
	}
}

// TestShutdownEndsWatches: a WatchExport open when the server shuts down
// ends with unavailable (reconnect), promptly.
func TestShutdownEndsWatches(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t, "sqlite", servertest.Options{NoWorkers: true})
	tenant := env.Tenant(t, "Acme", true)
	exports := auditv1connect.NewExportServiceClient(env.Client, env.URL, withKey(env.Key(t, tenant, "auditor", "audrey@example.com")))
	res, err := exports.CreateExport(context.Background(), createRequest(periodTo.Add(-time.Second), ""))
	if err != nil {
		t.Fatal(err)
	}
	stream, err := exports.WatchExport(context.Background(), connect.NewRequest(&auditv1.WatchExportRequest{JobId: res.Msg.GetJobId()}))
	if err != nil {
		t.Fatal(err)
	}
	if !stream.Receive() {
		t.Fatalf("first update: %v", stream.Err())
	}
	ended := make(chan error, 1)
	go func() {
		for stream.Receive() {
		}
		ended <- stream.Err()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if err := env.API.Shutdown(ctx, 3*time.Second); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-ended:
		if connect.CodeOf(err) != connect.CodeUnavailable {
			t.Errorf("watch ended with %v, want unavailable", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("watch still open after shutdown")
	}
	t.Logf("shutdown with an open watch took %s", time.Since(start).Round(time.Millisecond))
}

// TestWrongSecretsDoNotLockOutTheKey: callers who know a key's id but not
// its secret exhaust that id's failure budget, yet the key's owner, who
// authenticated before, keeps working.
func TestWrongSecretsDoNotLockOutTheKey(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t, "sqlite", servertest.Options{NoWorkers: true})
	tenant := env.Tenant(t, "Acme", true)
	key := env.Key(t, tenant, "viewer", "vera@example.com")
	owner := auditv1connect.NewExportServiceClient(env.Client, env.URL, withKey(key))
	whoami := func(c auditv1connect.ExportServiceClient) error {
		_, err := c.WhoAmI(context.Background(), connect.NewRequest(&auditv1.WhoAmIRequest{}))
		return err
	}
	if err := whoami(owner); err != nil {
		t.Fatal(err)
	}
	secret := key[strings.LastIndex(key, "_")+1:]
	wrong := auditv1connect.NewExportServiceClient(env.Client, env.URL, withKey(key[:len(key)-len(secret)]+strings.Repeat("x", len(secret))))
	refused := 0
	for range 100 {
		err := whoami(wrong)
		switch connect.CodeOf(err) {
		case connect.CodeResourceExhausted:
			refused++
		case connect.CodeUnauthenticated:
		default:
			t.Fatalf("wrong secret: %v", err)
		}
		if err := whoami(owner); err != nil {
			t.Fatalf("the owner's call while its id is attacked: %v", err)
		}
	}
	if refused == 0 {
		t.Error("100 wrong secrets were never refused before the lookup")
	}
}
