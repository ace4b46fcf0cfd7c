package server

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"connectrpc.com/connect"

	"github.com/exportd/exportd/gen/go/audit/v1/auditv1connect"
)

// Default request size limits (SPEC: a request is small, except an audit
// batch). They are the HTTP policy's, enforced for every protocol alike.
const (
	// DefaultMaxBodyBytes caps a request body other than an audit batch.
	DefaultMaxBodyBytes = 1 << 20
	// DefaultMaxBatchBytes caps one WriteEvents request: a full batch of
	// 1,000 events with a few KiB of metadata each is about 5 MB.
	DefaultMaxBatchBytes = 32 << 20
	// maxHeaderBytes caps the request line and headers.
	maxHeaderBytes = 64 << 10
)

// HTTPServer returns the *http.Server that serves s: the one HTTP policy
// (header and body limits, request ids, timeouts, protocols) around
// Handler. `exportd serve` and every test harness build their server here,
// so what the tests exercise is what production runs. tls says whether the
// caller will serve it over TLS (HTTP/1.1 and HTTP/2) or in the clear
// (HTTP/1.1 and h2c, for gRPC behind a TLS-terminating proxy).
func (s *Server) HTTPServer(tls bool) (*http.Server, error) {
	h, err := s.Handler()
	if err != nil {
		return nil, err
	}
	h = hostileURLs(h)
	base, cancel := context.WithCancel(context.Background())
	s.cancelRequests = cancel
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    maxHeaderBytes,
		// No ReadTimeout or WriteTimeout: downloads and WatchExport streams
		// run as long as the artifact takes; the header timeout, the body
		// limits and the idle timeout bound what a slow client can hold.
		HTTP2:       &http.HTTP2Config{MaxConcurrentStreams: 250, MaxReceiveBufferPerStream: 1 << 20},
		ErrorLog:    slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext: func(_ net.Listener) context.Context { return base },
	}
	p := new(http.Protocols)
	p.SetHTTP1(true)
	if tls {
		p.SetHTTP2(true)
	} else {
		p.SetUnencryptedHTTP2(true)
	}
	srv.Protocols = p
	s.httpServer = srv
	return srv, nil
}

// Shutdown ends what the server serves, gracefully and within ctx: new
// connections stop, open streams are told the server is going away (a
// WatchExport ends with `unavailable`, so clients reconnect elsewhere), and
// requests still running after grace are cancelled so that no stream holds
// the process. It returns nil when everything ended, even if it had to
// cancel requests to get there.
func (s *Server) Shutdown(ctx context.Context, grace time.Duration) error {
	s.drainOnce.Do(func() { close(s.draining) })
	defer s.guard.flush()
	if s.httpServer == nil {
		return nil
	}
	done := make(chan error, 1)
	go func() { done <- s.httpServer.Shutdown(ctx) }()
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		// Downloads and long reads are still going: end them.
		s.log.Info("cancelling requests still running at shutdown")
		s.cancelRequests()
	}
	t.Reset(time.Second)
	select {
	case err := <-done:
		return err
	case <-t.C:
		// A handler blocked writing to a client that does not read cannot
		// see its context: closing the connections frees it.
		s.log.Info("closing connections still open at shutdown")
		_ = s.httpServer.Close()
	}
	if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shut down http server: %w", err)
	}
	return nil
}

// errDraining ends a long-lived stream when the server shuts down.
var errDraining = connect.NewError(connect.CodeUnavailable, errors.New("exportd is shutting down; reconnect to continue"))

// bodyLimit is the most bytes a request to path may carry.
func (s *Server) bodyLimit(path string) int64 {
	if path == auditv1connect.AuditLogServiceWriteEventsProcedure || path == restWriteEventsPath {
		return s.cfg.MaxBatchBytes
	}
	return s.cfg.MaxBodyBytes
}

// restWriteEventsPath is WriteEvents' REST route.
const restWriteEventsPath = "/v1/audit/events"

// limitBodies refuses request bodies over their limit with an error that
// names it: invalid_argument in the caller's protocol, HTTP 413 on REST and
// plain HTTP. A body that says its length up front is refused before a byte
// is read; one that does not (chunked, HTTP/2 without content-length) fails
// when it crosses the limit.
func (s *Server) limitBodies(next http.Handler) http.Handler {
	errw := connect.NewErrorWriter()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		limit := s.bodyLimit(r.URL.Path)
		tooBig := func() *connect.Error {
			return connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("request body too large: the limit is %s for %s", sizeText(limit), r.URL.Path))
		}
		if r.ContentLength > limit {
			ce := tooBig()
			if !strings.HasPrefix(r.URL.Path, "/v1/") && errw.IsSupported(r) {
				_ = errw.Write(w, r, ce)
				return
			}
			writeRESTErrorStatus(w, ce, http.StatusRequestEntityTooLarge)
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = &limitedBody{rc: r.Body, left: limit, err: tooBig}
		}
		next.ServeHTTP(w, r)
	})
}

// limitedBody reads at most left bytes, then fails with err: a
// *connect.Error, which Connect and the REST transcoder pass on as it is.
type limitedBody struct {
	rc   io.ReadCloser
	left int64
	err  func() *connect.Error
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// One byte past the limit tells an exact fit from an overflow.
		var one [1]byte
		if n, _ := b.rc.Read(one[:]); n > 0 {
			return 0, b.err()
		}
		return b.rc.Read(p)
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }

// gzipLimited is a gzip decompressor that stops at limit decompressed
// bytes with invalid_argument, so a small compressed body cannot expand
// into a large message (a gzip bomb) nor be mistaken for a rate limit.
type gzipLimited struct {
	limit int64
	zr    *gzip.Reader
	left  int64
}

func newGzipLimited(limit int64) func() connect.Decompressor {
	return func() connect.Decompressor { return &gzipLimited{limit: limit} }
}

func (g *gzipLimited) Read(p []byte) (int, error) {
	if g.zr == nil {
		return 0, io.EOF
	}
	if g.left <= 0 {
		var one [1]byte
		if n, _ := g.zr.Read(one[:]); n > 0 {
			return 0, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("request too large: the limit is %s decompressed", sizeText(g.limit)))
		}
		return 0, io.EOF
	}
	if int64(len(p)) > g.left {
		p = p[:g.left]
	}
	n, err := g.zr.Read(p)
	g.left -= int64(n)
	return n, err
}

func (g *gzipLimited) Reset(r io.Reader) error {
	g.left = g.limit
	if g.zr == nil {
		zr, err := gzip.NewReader(r)
		if err != nil {
			return err
		}
		g.zr = zr
		return nil
	}
	return g.zr.Reset(r)
}

func (g *gzipLimited) Close() error {
	if g.zr == nil {
		return nil
	}
	return g.zr.Close()
}

// newGzipCompressor is connect's default gzip compressor (connect pools
// them).
func newGzipCompressor() connect.Compressor { return gzip.NewWriter(io.Discard) }

// sizeText writes a byte count as people read limits: "1 MiB", "32 MiB",
// "1500 bytes".
func sizeText(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
