// Package server is exportd's Connect edge: the ExportService and
// DownloadService handlers, the interceptors that authenticate, authorize and
// audit every call, the REST surface under /v1/, and the one mapping from
// domain errors to Connect codes.
package server

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"
	"connectrpc.com/validate"
	"connectrpc.com/vanguard"
	"gocloud.dev/blob"

	"github.com/exportd/exportd/authz"
	"github.com/exportd/exportd/gen/go/audit/v1/auditv1connect"
	"github.com/exportd/exportd/internal/store"
)

// Config tunes the API.
type Config struct {
	// MaxPeriod is the longest period one export may cover.
	MaxPeriod time.Duration
	// WatchInterval is how often WatchExport looks at the job.
	WatchInterval time.Duration
	// TrustedProxies may set X-Forwarded-For / Forwarded.
	TrustedProxies []*net.IPNet
	// MaxAttempts is how many attempts a new job gets; 0 keeps the default (5).
	MaxAttempts int
	// MaxQueuedPerTenant caps a tenant's PENDING jobs; 0 means no cap.
	MaxQueuedPerTenant int
}

// Waker is told when a job is queued.
type Waker interface{ Wake() }

// Server holds what the handlers share.
type Server struct {
	store    *store.Store
	enforcer *authz.Enforcer
	bucket   *blob.Bucket
	runner   Waker
	log      *slog.Logger
	cfg      Config
}

// New returns the API server.
func New(st *store.Store, en *authz.Enforcer, bucket *blob.Bucket, runner Waker, log *slog.Logger, cfg Config) *Server {
	if cfg.MaxPeriod <= 0 {
		cfg.MaxPeriod = 366 * 24 * time.Hour
	}
	if cfg.WatchInterval <= 0 {
		cfg.WatchInterval = 250 * time.Millisecond
	}
	return &Server{store: st, enforcer: en, bucket: bucket, runner: runner, log: log, cfg: cfg}
}

// Handler serves Connect, gRPC and gRPC-Web for both services, REST under
// /v1/, reflection, health, and the plain download handler.
func (s *Server) Handler() (http.Handler, error) {
	opts := []connect.HandlerOption{
		connect.WithInterceptors(interceptor{s}, validate.NewInterceptor()),
		connect.WithCodec(jsonCodec{name: "json"}),
		connect.WithCodec(jsonCodec{name: "json; charset=utf-8"}),
		connect.WithReadMaxBytes(1 << 20),
	}
	mux := http.NewServeMux()
	exportPath, exportHandler := auditv1connect.NewExportServiceHandler(exportService{s}, opts...)
	downloadPath, downloadHandler := auditv1connect.NewDownloadServiceHandler(downloadService{s: s}, opts...)
	mux.Handle(exportPath, exportHandler)
	mux.Handle(downloadPath, downloadHandler)

	names := []string{auditv1connect.ExportServiceName, auditv1connect.DownloadServiceName}
	reflector := grpcreflect.NewStaticReflector(names...)
	mux.Handle(grpcreflect.NewHandlerV1(reflector))
	mux.Handle(grpcreflect.NewHandlerV1Alpha(reflector))
	checker := grpchealth.NewStaticChecker(names...)
	mux.Handle(grpchealth.NewHandler(checker))

	// REST: vanguard transcodes the google.api.http routes; it owns only /v1/
	// so that plain Connect calls never pass through it.
	rest, err := vanguard.NewTranscoder([]*vanguard.Service{
		vanguard.NewService(exportPath, exportHandler),
	}, vanguard.WithCodec(restCodec))
	if err != nil {
		return nil, err
	}
	mux.Handle("/v1/", rest)
	mux.HandleFunc("GET /v1/audit/exports/{job_id}/download", s.restDownload)

	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", s.ready)
	return withRequestID(mux), nil
}

// ready checks the database and the blob store answer.
func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	var problems []string
	if err := s.store.Ping(ctx); err != nil {
		problems = append(problems, "database: "+err.Error())
	}
	if _, err := s.bucket.IsAccessible(ctx); err != nil {
		problems = append(problems, "blob store: "+err.Error())
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if len(problems) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(strings.Join(problems, "\n") + "\n"))
		return
	}
	_, _ = w.Write([]byte("ready\n"))
}

// forwardedFor lists the client addresses a proxy chain reported, nearest
// last, from X-Forwarded-For or RFC 7239 Forwarded.
func forwardedFor(h http.Header) []string {
	var out []string
	for _, v := range h.Values("Forwarded") {
		for _, elem := range strings.Split(v, ",") {
			for _, pair := range strings.Split(elem, ";") {
				k, val, ok := strings.Cut(strings.TrimSpace(pair), "=")
				if !ok || !strings.EqualFold(k, "for") {
					continue
				}
				val = strings.Trim(val, `"`)
				if host, _, err := net.SplitHostPort(val); err == nil {
					val = host
				}
				out = append(out, strings.Trim(val, "[]"))
			}
		}
	}
	if len(out) > 0 {
		return out
	}
	for _, v := range h.Values("X-Forwarded-For") {
		for _, a := range strings.Split(v, ",") {
			if a = strings.TrimSpace(a); a != "" {
				out = append(out, a)
			}
		}
	}
	return out
}
