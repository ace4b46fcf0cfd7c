package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	auditv1 "github.com/exportd/exportd/gen/go/audit/v1"
	"github.com/exportd/exportd/gen/go/audit/v1/auditv1connect"
)

// load measures CreateExport throughput and latency: a closed loop of
// o.clients clients, one tenant each, against exportd with its workers
// paused (jobs stay PENDING), for o.loadTime or o.loadMax calls; then
// pgbench running the statements one CreateExport issues, captured from
// exportd on the wire, at the same concurrency: the floor the database
// alone sets.
func (b *bench) load(ctx context.Context) error {
	n := b.o.clients
	b.logf("load: %d tenants with the Compliance Pack and an auditor key", n)
	tenants := make([]string, n)
	keys := make([]string, n)
	for i := range n {
		var err error
		if tenants[i], keys[i], err = b.newTenant(ctx, fmt.Sprintf("load-%02d", i)); err != nil {
			return err
		}
	}

	script, err := b.capture(ctx, keys)
	if err != nil {
		return err
	}
	b.res.Statements = script.Statements
	if err := os.WriteFile(filepath.Join(b.dir, "createexport.sql"), []byte(script.Script), 0o600); err != nil {
		return fmt.Errorf("write pgbench script: %w", err)
	}

	srv, err := b.startServer(ctx, b.dsn, 0)
	if err != nil {
		return err
	}
	b.logf("load: CreateExport closed loop, %d clients, %s or %d calls", n, b.o.loadTime, b.o.loadMax)
	lr, err := closedLoop(ctx, srv.url, keys, b.o.loadTime, b.o.loadMax)
	srv.stop()
	if err != nil {
		return err
	}
	b.logf("load: pgbench -c %d -j 2 -T %s of the %d captured statements", n, b.o.loadTime, len(script.Statements))
	pg, err := runPgbench(ctx, b.base, b.schema, b.dir, script, n, 2, b.o.loadTime)
	if err != nil {
		return err
	}
	if pg.Failed > 0 {
		return fmt.Errorf("pgbench: %d transactions failed", pg.Failed)
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.res.add(figure{Key: "create_export_tps", Name: fmt.Sprintf("CreateExport/s, %d clients over %d tenants, workers paused", n, n), Value: lr.tps, Unit: "req/s"})
	b.res.add(figure{Key: "create_export_p50_ms", Name: "CreateExport latency p50", Value: ms(lr.p50), Unit: "ms"})
	b.res.add(figure{Key: "create_export_p99_ms", Name: "CreateExport latency p99", Value: ms(lr.p99), Unit: "ms"}.target(le, 50))
	b.res.add(figure{Key: "pgbench_tps", Name: fmt.Sprintf("pgbench of the same %d statements, -c %d -j 2 (floor)", len(script.Statements), n), Value: pg.TPS, Unit: "tx/s"})
	b.res.add(figure{Key: "pgbench_p99_ms", Name: "pgbench latency p99", Value: ms(pg.P99), Unit: "ms"})
	b.res.add(figure{Key: "create_export_vs_pgbench", Name: "CreateExport/s ÷ pgbench tx/s", Value: lr.tps / pg.TPS, Unit: "×"}.target(ge, 0.6))
	return nil
}

// capture runs exportd against PostgreSQL through the wire proxy and records
// the statements of one CreateExport per tenant (and a second one of the
// first tenant, to tell changing parameters from fixed ones).
func (b *bench) capture(ctx context.Context, keys []string) (*pgbenchScript, error) {
	host, err := dsnHostPort(b.base)
	if err != nil {
		return nil, err
	}
	proxy, err := newWireProxy(host)
	if err != nil {
		return nil, err
	}
	defer func() { _ = proxy.Close() }()
	srv, err := b.startServer(ctx, viaProxy(b.dsn, proxy.Addr()), 0)
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	one := func(key string) ([]*statement, error) {
		for attempt := 0; ; attempt++ {
			// Warm up: the first call of a key may differ (caches, pool).
			if _, err := b.createExport(ctx, srv.url, key, "csv", quarterEnd); err != nil {
				return nil, err
			}
			proxy.Capture()
			_, err := b.createExport(ctx, srv.url, key, "csv", quarterEnd)
			time.Sleep(20 * time.Millisecond) // the proxy parses what it already forwarded
			sts := proxy.Stop()               // without the statements of periodic work
			if err != nil {
				return nil, err
			}
			if len(sts) > 0 || attempt == 2 {
				return sts, nil
			}
		}
	}
	per := make([][]*statement, len(keys))
	for i, k := range keys {
		if per[i], err = one(k); err != nil {
			return nil, err
		}
	}
	again, err := one(keys[0])
	if err != nil {
		return nil, err
	}
	// Kept beside the script, to see what was captured.
	if raw, err := json.MarshalIndent(map[string]any{"per_tenant": per, "again": again}, "", "  "); err == nil {
		_ = os.WriteFile(filepath.Join(b.dir, "captured.json"), raw, 0o600)
	}
	return buildPgbenchScript(per, again)
}

// dsnHostPort is the server address a URL DSN names.
func dsnHostPort(dsn string) (string, error) {
	u, err := url.Parse(dsn)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("the statement capture needs a postgres:// URL with a host, not %q", redact(dsn))
	}
	host := u.Host
	if _, _, err := net.SplitHostPort(host); err != nil {
		host = net.JoinHostPort(host, "5432")
	}
	return host, nil
}

// viaProxy points a URL DSN at the proxy, without TLS (the proxy reads the
// protocol in the clear).
func viaProxy(dsn, addr string) string {
	u, _ := url.Parse(dsn)
	u.Host = addr
	q := u.Query()
	q.Set("sslmode", "disable")
	u.RawQuery = q.Encode()
	return u.String()
}

type loadResult struct {
	calls    int64
	tps      float64
	p50, p99 time.Duration
}

// closedLoop runs one client per key, each sending its next CreateExport as
// soon as the previous one answers, after a one-second warm-up.
func closedLoop(ctx context.Context, base string, keys []string, d time.Duration, maxCalls int) (loadResult, error) {
	var res loadResult
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = len(keys) * 2
	hc := &http.Client{Transport: tr}
	defer tr.CloseIdleConnections()
	c := auditv1connect.NewExportServiceClient(hc, base)
	call := func(key string) (time.Duration, error) {
		req := connect.NewRequest(&auditv1.CreateExportRequest{ReportType: "soc2", Format: "csv",
			StartDate: timestamppb.New(quarterStart), EndDate: timestamppb.New(quarterEnd.Add(-time.Second))})
		req.Header().Set("X-API-Key", key)
		start := time.Now()
		_, err := c.CreateExport(ctx, req)
		return time.Since(start), err
	}
	// Warm-up: connections, caches, the server's first allocations.
	warm := time.Now().Add(time.Second)
	var wg sync.WaitGroup
	errs := make(chan error, len(keys))
	for _, k := range keys {
		wg.Go(func() {
			for time.Now().Before(warm) {
				if _, err := call(k); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	select {
	case err := <-errs:
		return res, fmt.Errorf("create export (warm-up): %w", err)
	default:
	}
	var (
		calls atomic.Int64
		mu    sync.Mutex
		lats  []time.Duration
	)
	start := time.Now()
	stop := start.Add(d)
	for _, k := range keys {
		wg.Go(func() {
			var mine []time.Duration
			for time.Now().Before(stop) && calls.Add(1) <= int64(maxCalls) {
				lat, err := call(k)
				if err != nil {
					errs <- err
					return
				}
				mine = append(mine, lat)
			}
			mu.Lock()
			lats = append(lats, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	select {
	case err := <-errs:
		return res, fmt.Errorf("create export: %w", err)
	default:
	}
	res.calls = int64(len(lats))
	res.tps = float64(res.calls) / elapsed.Seconds()
	res.p50, res.p99 = percentile(lats, 0.50), percentile(lats, 0.99)
	return res, nil
}
