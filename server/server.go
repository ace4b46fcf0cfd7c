// Package server is exportd's Connect edge: the ExportService and
// DownloadService handlers, the interceptors that authenticate, authorize and
// audit every call, the REST surface under /v1/, and the one mapping from
// domain errors to Connect codes.
package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"
	"connectrpc.com/otelconnect"
	"connectrpc.com/validate"
	"connectrpc.com/vanguard"
	"gocloud.dev/blob"

	"github.com/exportd/exportd/authz"
	"github.com/exportd/exportd/gen/go/audit/v1/auditv1connect"
	"github.com/exportd/exportd/internal/telemetry"
	"github.com/exportd/exportd/internal/webhook"
	"github.com/exportd/exportd/reports"
	"github.com/exportd/exportd/web"
)

// Config tunes the API.
type Config struct {
	// MaxPeriod is the longest period one export may cover.
	MaxPeriod time.Duration
	// WatchInterval is how often WatchExport looks at the job (one query
	// for all the watches of the process).
	WatchInterval time.Duration
	// KeepaliveInterval is how long a WatchExport stream may go without a
	// message before it sends the job's state again, so that proxies that
	// cut idle connections (often at 60 s) leave it open; default 15 s.
	KeepaliveInterval time.Duration
	// TrustedProxies may set X-Forwarded-For / Forwarded.
	TrustedProxies []*net.IPNet
	// RateLimit is the requests per second one API key may make, sustained,
	// and RateBurst how many at once; beyond them calls answer
	// resource_exhausted with a retry delay. Zero RateLimit means the default
	// (50/s, burst 200); a negative one, no limit.
	RateLimit float64
	RateBurst int
	// Telemetry traces and meters every RPC and serves /metrics; nil
	// records nothing.
	Telemetry *telemetry.Telemetry
	// MaxBatch is the most events one WriteEvents call may carry.
	MaxBatch int
	// MaxClockSkew is how far in the future an event's occurred_at may be.
	MaxClockSkew time.Duration
	// MaxAttempts is how many attempts a new job gets; 0 keeps the default (5).
	MaxAttempts int
	// MaxQueuedPerTenant caps a tenant's PENDING jobs; 0 means no cap.
	MaxQueuedPerTenant int
	// MaxBodyBytes caps a request body (DefaultMaxBodyBytes when 0);
	// MaxBatchBytes caps a WriteEvents body (DefaultMaxBatchBytes when 0).
	// Both also cap what a compressed body may expand to.
	MaxBodyBytes, MaxBatchBytes int64
	// AuthFailureRate is how many failed authentications a second one
	// client IP may make, sustained, and AuthFailureBurst how many at once;
	// past them its requests are refused before any database work. One key
	// id gets a tenth of the rate and a fifth of the burst. Zero means the
	// defaults (10/s, burst 100).
	AuthFailureRate  float64
	AuthFailureBurst int
	// RequestTimeout bounds a unary call, its database work included
	// (default one minute); streams end with their client or the job.
	RequestTimeout time.Duration
	// AuditFoldWindow is the window over which refused requests of one key
	// (or address) and reason fold into one audit event with a count
	// (default one minute).
	AuditFoldWindow time.Duration
	// WebhookAllow lists the inside networks a webhook URL may resolve to;
	// others inside (loopback, private, link-local …) are refused.
	WebhookAllow []netip.Prefix
}

// Waker is told when a job is queued.
type Waker interface{ Wake() }

// Server holds what the handlers share.
type Server struct {
	store    Store
	enforcer *authz.Enforcer
	bucket   *blob.Bucket
	runner   Waker
	log      *slog.Logger
	cfg      Config
	keys     KeySource
	limiter  *limiter
	guard    *guard
	webhooks *webhook.Guard
	watches  *watchHub

	// Set by HTTPServer, used by Shutdown.
	httpServer     *http.Server
	cancelRequests context.CancelFunc
	draining       chan struct{}
	drainOnce      sync.Once
}

// KeySource gives the manifest signing keys to publish.
type KeySource interface {
	KeySet() reports.KeySet
}

// PublishKeys serves ks's public keys at /.well-known/exportd-keys.json.
func (s *Server) PublishKeys(ks KeySource) { s.keys = ks }

// New returns the API server.
func New(st Store, en *authz.Enforcer, bucket *blob.Bucket, runner Waker, log *slog.Logger, cfg Config) *Server {
	if cfg.MaxPeriod <= 0 {
		cfg.MaxPeriod = 366 * 24 * time.Hour
	}
	if cfg.WatchInterval <= 0 {
		cfg.WatchInterval = 250 * time.Millisecond
	}
	if cfg.KeepaliveInterval <= 0 {
		cfg.KeepaliveInterval = 15 * time.Second
	}
	if cfg.RateLimit == 0 {
		cfg.RateLimit = 50
	}
	if cfg.RateBurst <= 0 {
		cfg.RateBurst = 200
	}
	if cfg.Telemetry == nil {
		cfg.Telemetry = telemetry.Nop()
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 1000
	}
	if cfg.MaxClockSkew <= 0 {
		cfg.MaxClockSkew = 5 * time.Minute
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.MaxBatchBytes <= 0 {
		cfg.MaxBatchBytes = DefaultMaxBatchBytes
	}
	if cfg.AuthFailureRate <= 0 {
		cfg.AuthFailureRate = 10
	}
	if cfg.AuthFailureBurst <= 0 {
		cfg.AuthFailureBurst = 100
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = time.Minute
	}
	if cfg.AuditFoldWindow <= 0 {
		cfg.AuditFoldWindow = time.Minute
	}
	s := &Server{store: st, enforcer: en, bucket: bucket, runner: runner, log: log, cfg: cfg,
		limiter: newLimiter(cfg.RateLimit, cfg.RateBurst), draining: make(chan struct{}), webhooks: webhook.NewGuard(cfg.WebhookAllow)}
	s.guard = newGuard(cfg, s.appendFolded, log)
	s.watches = newWatchHub(st, cfg.WatchInterval, log)
	return s
}

// Handler serves Connect, gRPC and gRPC-Web for both services, REST under
// /v1/, reflection, health, the plain download handler, and the console at /.
func (s *Server) Handler() (http.Handler, error) {
	// otelconnect is outermost so the RPC span covers authentication,
	// auditing and validation, and their database calls nest under it.
	// Remote spans are linked, not trusted as parents (its default).
	otel, err := otelconnect.NewInterceptor(
		otelconnect.WithTracerProvider(s.cfg.Telemetry.Tracer),
		otelconnect.WithMeterProvider(s.cfg.Telemetry.Meter),
		otelconnect.WithPropagator(telemetry.Propagator()),
	)
	if err != nil {
		return nil, fmt.Errorf("create telemetry interceptor: %w", err)
	}
	// Request sizes are the HTTP policy's (limitBodies): connect's own
	// limit would answer resource_exhausted, which clients read as "retry
	// later". Compressed bodies are capped as they expand.
	opts := []connect.HandlerOption{
		connect.WithInterceptors(otel, interceptor{s}, validate.NewInterceptor()),
		connect.WithCodec(protoCodec{}),
		connect.WithCodec(jsonCodec{name: "json"}),
		connect.WithCodec(jsonCodec{name: "json; charset=utf-8"}),
		connect.WithCompression("gzip", newGzipLimited(s.cfg.MaxBodyBytes), newGzipCompressor),
	}
	mux := http.NewServeMux()
	exportPath, exportHandler := auditv1connect.NewExportServiceHandler(exportService{s}, opts...)
	// Download chunks go out uncompressed, as the REST download does:
	// gzip at 64 KiB a message costs the server far more CPU than the
	// loopback or LAN bandwidth it saves (5× slower streaming in
	// BenchmarkDownload256MiB), and clients accept gzip by default.
	downloadOpts := append(slices.Clip(opts), connect.WithCompressMinBytes(math.MaxInt))
	downloadPath, downloadHandler := auditv1connect.NewDownloadServiceHandler(downloadService{s: s}, downloadOpts...)
	apikeyPath, apikeyHandler := auditv1connect.NewApiKeyServiceHandler(apikeyService{s}, opts...)
	policyPath, policyHandler := auditv1connect.NewPolicyServiceHandler(policyService{s}, opts...)
	// A full batch of events with metadata outgrows the default limit.
	auditPath, auditHandler := auditv1connect.NewAuditLogServiceHandler(auditLogService{s},
		append(slices.Clip(opts), connect.WithCompression("gzip", newGzipLimited(s.cfg.MaxBatchBytes), newGzipCompressor))...)
	attestPath, attestHandler := auditv1connect.NewAttestationServiceHandler(attestationService{s}, opts...)
	tenantPath, tenantHandler := auditv1connect.NewTenantServiceHandler(tenantService{s}, opts...)
	mux.Handle(exportPath, exportHandler)
	mux.Handle(downloadPath, downloadHandler)
	mux.Handle(apikeyPath, apikeyHandler)
	mux.Handle(policyPath, policyHandler)
	mux.Handle(auditPath, auditHandler)
	mux.Handle(attestPath, attestHandler)
	mux.Handle(tenantPath, tenantHandler)

	names := []string{auditv1connect.ExportServiceName, auditv1connect.DownloadServiceName,
		auditv1connect.ApiKeyServiceName, auditv1connect.PolicyServiceName,
		auditv1connect.AuditLogServiceName, auditv1connect.AttestationServiceName, auditv1connect.TenantServiceName}
	reflector := grpcreflect.NewStaticReflector(names...)
	mux.Handle(grpcreflect.NewHandlerV1(reflector))
	mux.Handle(grpcreflect.NewHandlerV1Alpha(reflector))
	checker := grpchealth.NewStaticChecker(names...)
	mux.Handle(grpchealth.NewHandler(checker))

	// REST: vanguard transcodes the google.api.http routes; it owns only /v1/
	// so that plain Connect calls never pass through it. It hands the
	// handlers protobuf, never JSON, so that every REST body is read and
	// written by restCodec alone (unknown fields refused, defaults shown)
	// rather than passed through to the Connect JSON codec.
	rest, err := vanguard.NewTranscoder([]*vanguard.Service{
		vanguard.NewService(exportPath, exportHandler),
		vanguard.NewService(downloadPath, downloadHandler),
		vanguard.NewService(apikeyPath, apikeyHandler),
		vanguard.NewService(policyPath, policyHandler),
		vanguard.NewService(auditPath, auditHandler),
		vanguard.NewService(attestPath, attestHandler),
		vanguard.NewService(tenantPath, tenantHandler),
	}, vanguard.WithCodec(restCodec), vanguard.WithUnknownHandler(http.HandlerFunc(restNotFound)),
		vanguard.WithCompression("gzip", newGzipCompressor, newGzipLimited(s.cfg.MaxBatchBytes)),
		vanguard.WithDefaultServiceOptions(vanguard.WithTargetCodecs(vanguard.CodecProto),
			// The transcoder reads a REST body whole before the handler
			// sees it; the HTTP policy (limitBodies) bounds the wire bytes
			// and the gzip expansion, and this bounds what the transcoder
			// buffers whatever the encoding.
			vanguard.WithMaxMessageBufferBytes(64<<20)))
	if err != nil {
		return nil, err
	}
	v1 := http.NewServeMux()
	v1.Handle(restPrefix, rest)
	v1.Handle("/v1/audit/exports/{job_id}/download", onlyMethods(s.restDownload, http.MethodGet, http.MethodHead))
	v1.Handle("/v1/audit/exports/{job_id}/manifest", onlyMethods(s.restManifest, http.MethodGet, http.MethodHead))
	v1.Handle(linkPath+"{token}", onlyMethods(s.linkDownload, http.MethodGet, http.MethodHead))
	restAPI := restSurface(v1)

	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", s.ready)
	mux.HandleFunc("GET /.well-known/exportd-keys.json", s.publicKeys)
	if s.cfg.Telemetry.Handler != nil {
		mux.Handle("GET /metrics", s.cfg.Telemetry.Handler)
	}
	// The console owns every path nothing more specific claims.
	mux.Handle("/", web.Handler())
	return withRequestID(s.limitBodies(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, restPrefix) {
			restAPI.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	}))), nil
}

// readyTimeout bounds /readyz: a probe that waits longer than this on a
// dependency learns nothing more, and the orchestrator's own timeout is
// often not much longer.
const readyTimeout = 2 * time.Second

// ready checks the database and the blob store answer, both at once and
// within readyTimeout. It says only "ready" or "not ready": what failed, and
// how, goes to the log, since the endpoint is open to anyone who can reach
// it.
func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	checks := map[string]func(context.Context) error{
		"database": s.store.Ping,
		"blob store": func(ctx context.Context) error {
			ok, err := s.bucket.IsAccessible(ctx)
			if err == nil && !ok {
				err = errors.New("bucket does not exist")
			}
			return err
		},
	}
	type result struct {
		name string
		err  error
	}
	// Buffered, so that a check that ignores its context and answers late
	// does not block forever.
	results := make(chan result, len(checks))
	for name, check := range checks {
		go func() { results <- result{name, check(ctx)} }()
	}
	ready := true
	pending := make(map[string]bool, len(checks))
	for name := range checks {
		pending[name] = true
	}
wait:
	for range checks {
		select {
		case res := <-results:
			delete(pending, res.name)
			if res.err != nil {
				ready = false
				s.log.WarnContext(ctx, "not ready", "check", res.name, "err", res.err)
			}
		case <-ctx.Done():
			ready = false
			for name := range pending {
				s.log.WarnContext(ctx, "not ready", "check", name, "err", fmt.Errorf("did not answer within %s", readyTimeout))
			}
			break wait
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if !ready {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("not ready\n"))
		return
	}
	_, _ = w.Write([]byte("ready\n"))
}

// publicKeys serves the manifest verification keys as a JWK set.
func (s *Server) publicKeys(w http.ResponseWriter, _ *http.Request) {
	if s.keys == nil {
		writeRESTError(w, connect.NewError(connect.CodeUnavailable, errors.New("no signing keys are configured")))
		return
	}
	b, err := json.MarshalIndent(s.keys.KeySet().Public(), "", "  ")
	if err != nil {
		writeRESTError(w, connect.NewError(connect.CodeInternal, errors.New("internal error")))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=60")
	_, _ = w.Write(append(b, '\n'))
}

// forwardedFor lists the client addresses a proxy chain reported, nearest
// last, from X-Forwarded-For or, when there is none, RFC 7239 Forwarded.
// X-Forwarded-For wins because it is what common proxies append to; a client
// could otherwise slip a Forwarded header past a proxy that only appends to
// X-Forwarded-For, and its rightmost hop would look like the proxy's word.
func forwardedFor(h http.Header) []string {
	var out []string
	for _, v := range h.Values("X-Forwarded-For") {
		for _, a := range strings.Split(v, ",") {
			if a = hop(a); a != "" {
				out = append(out, a)
			}
		}
	}
	if len(out) > 0 {
		return out
	}
	for _, v := range h.Values("Forwarded") {
		for _, elem := range strings.Split(v, ",") {
			for _, pair := range strings.Split(elem, ";") {
				k, val, ok := strings.Cut(strings.TrimSpace(pair), "=")
				if !ok || !strings.EqualFold(strings.TrimSpace(k), "for") {
					continue
				}
				if val = hop(val); val != "" {
					out = append(out, val)
				}
			}
		}
	}
	return out
}

// hop normalises one forwarded address: quotes, an optional port and IPv6
// brackets go (`"[2001:db8::1]:4711"` → `2001:db8::1`), and an IP is written
// in its canonical form. Anything else (`unknown`, `_hidden`) stays as sent.
func hop(v string) string {
	v = strings.Trim(strings.TrimSpace(v), `"`)
	if host, _, err := net.SplitHostPort(v); err == nil {
		v = host
	}
	v = strings.TrimSuffix(strings.TrimPrefix(v, "["), "]")
	if ip := net.ParseIP(v); ip != nil {
		return ip.String()
	}
	return v
}
