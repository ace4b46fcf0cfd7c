package server_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"connectrpc.com/connect"
	"go.uber.org/goleak"

	auditv1 "github.com/exportd/exportd/gen/go/audit/v1"
	"github.com/exportd/exportd/gen/go/audit/v1/auditv1connect"
	"github.com/exportd/exportd/internal/store/storetest"
	"github.com/exportd/exportd/server"
	"github.com/exportd/exportd/server/servertest"
)

// TestDownloadAborted cancels downloads midway over every protocol and
// checks each is on the record as aborted with the bytes sent so far, and
// that nothing is left running: no goroutine, no database connection.
//
// It is not parallel on purpose: the goroutine check compares the whole
// process before and after, which only means something while no other test
// runs (parallel tests start once the sequential ones are done).
func TestDownloadAborted(t *testing.T) {
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			env := servertest.Start(t, dialect, servertest.Options{NoWorkers: true})
			tenant := env.Tenant(t, "Acme", true)
			key := env.Key(t, tenant, "auditor", "audrey@example.com")
			// Far larger than HTTP/2 flow-control windows, so that the server
			// is still sending when the client goes.
			data := artifact(48<<20, 3)
			id := env.CompletedJob(t, tenant, "json", data)
			ctx := context.Background()

			abortRPC := func(opts []connect.ClientOption) {
				c := auditv1connect.NewDownloadServiceClient(env.Client, env.URL, append(opts, withKey(key))...)
				cctx, cancel := context.WithCancel(ctx)
				defer cancel()
				stream, err := c.Download(cctx, connect.NewRequest(&auditv1.DownloadRequest{JobId: id}))
				if err != nil {
					t.Fatal(err)
				}
				for range 3 {
					if !stream.Receive() {
						t.Fatalf("stream ended early: %v", stream.Err())
					}
				}
				cancel()
				_ = stream.Close()
			}
			abortREST := func(path string, header http.Header) {
				cctx, cancel := context.WithCancel(ctx)
				defer cancel()
				req, _ := http.NewRequestWithContext(cctx, http.MethodGet, env.URL+path, nil)
				for k, v := range header {
					req.Header[k] = v
				}
				resp := do(t, env, req)
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("GET %s: %d", path, resp.StatusCode)
				}
				if _, err := io.ReadFull(resp.Body, make([]byte, 256<<10)); err != nil {
					t.Fatal(err)
				}
				cancel()
				resp.Body.Close()
			}
			mintLink := func() string {
				c := auditv1connect.NewDownloadServiceClient(env.Client, env.URL, withKey(key))
				l, err := c.CreateDownloadLink(ctx, connect.NewRequest(&auditv1.CreateDownloadLinkRequest{JobId: id}))
				if err != nil {
					t.Fatal(err)
				}
				return l.Msg.GetUrl()
			}
			type abort struct {
				protocol string
				run      func()
			}
			var aborts []abort
			for _, p := range rpcProtocols {
				aborts = append(aborts, abort{p.record, func() { abortRPC(p.opts) }})
			}
			aborts = append(aborts,
				abort{"rest", func() { abortREST("/v1/audit/exports/"+id+"/download", http.Header{"X-Api-Key": {key}}) }},
				abort{"link", func() { abortREST(mintLink(), nil) }},
			)

			// Warm up: one complete download per way in, so that connections
			// and pools exist before the snapshot.
			for _, p := range rpcProtocols {
				c := auditv1connect.NewDownloadServiceClient(env.Client, env.URL, append(p.opts, withKey(key))...)
				streamDownload(t, c, id, int64(len(data))-1)
			}
			restGet(t, env, http.MethodHead, "/v1/audit/exports/"+id+"/download", key, nil)
			records := func() int {
				rs, err := env.Store.Downloads(ctx, tenant, id)
				if err != nil {
					t.Fatal(err)
				}
				return len(rs)
			}
			before := records()
			snapshot := goleak.IgnoreCurrent()

			for i, a := range aborts {
				a.run()
				// The server learns of the cancellation asynchronously; wait
				// for its record rather than guessing a delay.
				waitFor(t, func() bool { return records() == before+i+1 })
			}
			rs, err := env.Store.Downloads(ctx, tenant, id)
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range rs[before:] {
				if r.Protocol != aborts[i].protocol || r.Completed || r.BytesSent <= 0 || r.BytesSent >= int64(len(data)) {
					t.Errorf("%s: record %+v, want aborted midway", aborts[i].protocol, r)
				}
			}
			if err := goleak.Find(snapshot, goleak.IgnoreAnyFunction("database/sql.(*DB).connectionCleaner")); err != nil {
				t.Fatalf("goroutines left behind by aborted downloads: %v", err)
			}
			waitFor(t, func() bool { return env.Store.DBStats().InUse == 0 })
		})
	}
}

// waitFor polls cond until it holds, failing the test after a generous
// deadline (a hang, not a slow machine).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 20s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestClientIPSpoofing downloads with forged forwarding headers from an
// untrusted peer and through a trusted proxy, and reads the client IP the
// download records and audit events carry.
func TestClientIPSpoofing(t *testing.T) {
	t.Parallel()
	_, loopback, _ := net.ParseCIDR("127.0.0.0/8")
	cases := []struct {
		name    string
		trusted bool
		header  http.Header
		want    string
	}{
		{"untrusted peer: X-Forwarded-For ignored", false, http.Header{"X-Forwarded-For": {"203.0.113.9"}}, "127.0.0.1"},
		{"untrusted peer: Forwarded ignored", false, http.Header{"Forwarded": {"for=203.0.113.9"}}, "127.0.0.1"},
		{"trusted proxy: X-Forwarded-For used", true, http.Header{"X-Forwarded-For": {"203.0.113.9"}}, "203.0.113.9"},
		{"trusted proxy: client-forged hops left of the proxy's are not believed", true,
			http.Header{"X-Forwarded-For": {"198.51.100.66, 203.0.113.9"}}, "203.0.113.9"},
		{"trusted proxy chain: rightmost untrusted hop", true,
			http.Header{"X-Forwarded-For": {"198.51.100.66", "203.0.113.9, 127.0.0.5"}}, "203.0.113.9"},
		{"trusted proxy: Forwarded with IPv6 brackets and port", true,
			http.Header{"Forwarded": {`for=198.51.100.66, for="[2001:DB8::1]:4711";proto=https`}}, "2001:db8::1"},
		{"trusted proxy: X-Forwarded-For wins over a forged Forwarded", true,
			http.Header{"X-Forwarded-For": {"203.0.113.9"}, "Forwarded": {"for=198.51.100.66"}}, "203.0.113.9"},
		{"trusted proxy, no header: the peer", true, nil, "127.0.0.1"},
	}
	envs := map[bool]*servertest.Env{
		false: servertest.Start(t, "sqlite", servertest.Options{NoWorkers: true}),
		true:  servertest.Start(t, "sqlite", servertest.Options{NoWorkers: true, Server: server.Config{TrustedProxies: []*net.IPNet{loopback}}}),
	}
	type fixture struct{ tenant, key, job string }
	fx := map[bool]fixture{}
	for trusted, env := range envs {
		tenant := env.Tenant(t, "Acme", true)
		fx[trusted] = fixture{tenant, env.Key(t, tenant, "auditor", "audrey@example.com"), env.CompletedJob(t, tenant, "json", []byte(`{"ok":true}`))}
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env, f := envs[tc.trusted], fx[tc.trusted]
			req, _ := http.NewRequest(http.MethodGet, env.URL+"/v1/audit/exports/"+f.job+"/download", nil)
			req.Header.Set("X-API-Key", f.key)
			for k, v := range tc.header {
				req.Header[http.CanonicalHeaderKey(k)] = v
			}
			// A unique user agent finds this download's record.
			req.Header.Set("User-Agent", "spoof/"+tc.name)
			resp := do(t, env, req)
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			rs, err := env.Store.Downloads(context.Background(), f.tenant, f.job)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range rs {
				if r.UserAgent == "spoof/"+tc.name {
					got = append(got, r.ClientIP)
				}
			}
			if len(got) != 1 || got[0] != tc.want {
				t.Fatalf("recorded client IP %q, want %q", got, tc.want)
			}
		})
	}
}
