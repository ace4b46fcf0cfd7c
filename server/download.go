package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"gocloud.dev/blob"

	"github.com/exportd/exportd/authz"
	auditv1 "github.com/exportd/exportd/gen/go/audit/v1"
	"github.com/exportd/exportd/gen/go/audit/v1/auditv1connect"
	"github.com/exportd/exportd/internal/fault"
	"github.com/exportd/exportd/internal/store"
)

// chunkSize bounds each Download message.
const chunkSize = 64 << 10

// downloadService implements auditv1connect.DownloadServiceHandler.
type downloadService struct {
	s *Server
}

var _ auditv1connect.DownloadServiceHandler = downloadService{}

// downloadable returns the job when its artifact can be downloaded, or the
// error SPEC §3 prescribes for its status.
func (s *Server) downloadable(ctx context.Context, tenantID, jobID string) (*store.Job, error) {
	if hostile(jobID) { // the plain REST download's path, which no interceptor walks
		return nil, store.JobNotFound(jobID)
	}
	j, err := s.store.Job(ctx, tenantID, jobID)
	if err != nil {
		return nil, err
	}
	switch j.Status {
	case store.JobCompleted:
		if j.ExpiresAt != nil && !s.store.Now().Before(*j.ExpiresAt) {
			return nil, expired(j)
		}
		return j, nil
	case store.JobExpired:
		return nil, expired(j)
	case store.JobFailed:
		return nil, fault.New(fault.FailedPrecondition, "export %s is FAILED (%s); there is nothing to download", j.ID, j.Error)
	default:
		return nil, fault.New(fault.FailedPrecondition, "export %s is %s; download it once it is COMPLETED", j.ID, j.Status)
	}
}

func expired(j *store.Job) error {
	at := "its download window ended"
	if j.ExpiresAt != nil {
		at = j.ExpiresAt.UTC().Format(time.RFC3339)
	}
	return fault.New(fault.FailedPrecondition, "export %s expired at %s; create a new export", j.ID, at)
}

func (h downloadService) Download(ctx context.Context, req *connect.Request[auditv1.DownloadRequest], stream *connect.ServerStream[auditv1.DownloadResponse]) error {
	s := h.s
	c := authz.CallerFrom(ctx)
	j, err := s.downloadable(ctx, c.TenantID, req.Msg.GetJobId())
	if err != nil {
		return err
	}
	off := req.Msg.GetStartOffset()
	if off > j.ArtifactSize {
		return fault.Invalid(fault.Violation{Field: "start_offset", Number: 2, Rule: "start_offset.within_artifact",
			Message: fmt.Sprintf("is past the end of the %d-byte artifact", j.ArtifactSize)})
	}
	rec := store.Download{JobID: j.ID, TenantID: c.TenantID, PrincipalID: c.PrincipalID,
		ClientIP: s.clientIP(req.Peer().Addr, req.Header()), UserAgent: req.Header().Get("User-Agent"),
		StartOffset: off, Protocol: protocolName(req.Peer().Protocol)}
	defer func() { s.recordDownload(ctx, rec) }()

	if err := stream.Send(&auditv1.DownloadResponse{Msg: &auditv1.DownloadResponse_Info{Info: &auditv1.DownloadInfo{
		Filename: filename(j), ContentType: contentType(j.Format), TotalSize: j.ArtifactSize, Sha256: j.ArtifactSha256,
	}}}); err != nil {
		return err
	}
	r, err := s.bucket.NewRangeReader(ctx, j.ArtifactKey, off, -1, nil)
	if err != nil {
		return fmt.Errorf("open artifact %s: %w", j.ArtifactKey, err)
	}
	defer r.Close()
	buf := make([]byte, chunkSize)
	for {
		// A client that went away ends the stream at once; the deferred
		// record then says aborted, with the bytes sent so far.
		if err := ctx.Err(); err != nil {
			return err
		}
		n, rerr := io.ReadFull(r, buf)
		if n > 0 {
			// Send blocks under flow control, so a slow client holds at most
			// one chunk here.
			if err := stream.Send(&auditv1.DownloadResponse{Msg: &auditv1.DownloadResponse_Chunk{Chunk: &auditv1.DownloadChunk{
				Offset: off + rec.BytesSent, Data: buf[:n],
			}}}); err != nil {
				return err
			}
			rec.BytesSent += int64(n)
		}
		if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
			break
		}
		if rerr != nil {
			return fmt.Errorf("read artifact: %w", rerr)
		}
	}
	if err := stream.Send(&auditv1.DownloadResponse{Msg: &auditv1.DownloadResponse_Trailer{Trailer: &auditv1.DownloadTrailer{
		TotalSize: j.ArtifactSize, Sha256: j.ArtifactSha256, BytesSent: rec.BytesSent,
	}}}); err != nil {
		return err
	}
	rec.Completed = off+rec.BytesSent == j.ArtifactSize
	return nil
}

func (s *Server) recordDownload(ctx context.Context, rec store.Download) {
	s.cfg.Telemetry.Metrics.DownloadBytes.Add(ctx, rec.BytesSent, metric.WithAttributes(attribute.String("protocol", rec.Protocol)))
	if _, err := s.store.RecordDownload(context.WithoutCancel(ctx), rec); err != nil {
		s.log.ErrorContext(ctx, "record download", "err", err, "job_id", rec.JobID)
	}
}

func protocolName(p string) string {
	switch p {
	case connect.ProtocolGRPC:
		return "grpc"
	case connect.ProtocolGRPCWeb:
		return "grpc-web"
	default:
		return "connect"
	}
}

func contentType(format string) string {
	if format == "csv" {
		return "text/csv; charset=utf-8"
	}
	return "application/json"
}

// restDownload serves GET (and HEAD) /v1/audit/exports/{job_id}/download:
// the raw file, streamed from the blob store with Range, ETag and HEAD
// support. It is a plain handler because the REST transcoder buffers
// streamed bodies whole.
func (s *Server) restDownload(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ci := callInfo{procedure: restDownloadProcedure, header: r.Header, peer: s.clientIP(r.RemoteAddr, r.Header), protocol: "rest",
		meta: map[string]any{"method": r.Method}}
	jobID := r.PathValue("job_id")
	c, err := s.authenticate(ctx, ci)
	if err != nil {
		if c != nil {
			s.finish(ctx, c, ci, jobID, err)
		}
		writeRESTError(w, toConnect(ctx, s.log, err))
		return
	}
	j, err := s.downloadable(ctx, c.TenantID, jobID)
	written := false
	if err == nil {
		written, err = s.serveArtifact(w, r, c, j, ci)
	}
	s.finish(ctx, c, ci, jobID, err)
	if err != nil && !written {
		writeRESTError(w, toConnect(ctx, s.log, err))
	}
}

// serveArtifact answers the artifact of j for c and records the download.
// written says whether a response went out already; the error, if any, is
// still the call's outcome for the audit log.
//
// What goes on the download record: a GET that sends bytes (200 or 206)
// is recorded with its start offset and the bytes that reached the
// connection; it is completed when every byte the response promised
// (Content-Length) went out, and aborted otherwise. HEAD, 304 Not Modified
// and 416 send no bytes of the report and leave no download record; they
// are still audit events (416 as an out_of_range failure).
func (s *Server) serveArtifact(w http.ResponseWriter, r *http.Request, c *authz.Caller, j *store.Job, ci callInfo) (bool, error) {
	ctx := r.Context()
	rd, err := s.bucket.NewReader(ctx, j.ArtifactKey, nil)
	if err != nil {
		return false, fmt.Errorf("open artifact %s: %w", j.ArtifactKey, err)
	}
	defer rd.Close()
	if strings.Contains(r.Header.Get("Range"), ",") {
		// One range or the whole file: a multipart answer helps no client
		// of ours, and RFC 9110 lets a server ignore Range.
		r.Header.Del("Range")
	}
	h := w.Header()
	h.Set("Content-Type", contentType(j.Format))
	h.Set("Content-Disposition", `attachment; filename="`+filename(j)+`"`)
	h.Set("ETag", `"`+j.ArtifactSha256+`"`)
	h.Set("X-Content-SHA256", j.ArtifactSha256)
	h.Set("Cache-Control", "private, no-store")
	cw := &countingResponse{ResponseWriter: w}
	// ServeContent answers HEAD, Range (206/416), If-Range and
	// If-None-Match, and copies from the reader without buffering the file.
	http.ServeContent(cw, r, "", j.CompletedAt.UTC(), artifactContent(rd))
	switch {
	case cw.status == http.StatusRequestedRangeNotSatisfiable:
		return true, connect.NewError(connect.CodeOutOfRange, fmt.Errorf("range %q is not satisfiable for the %d-byte artifact", r.Header.Get("Range"), j.ArtifactSize))
	case r.Method != http.MethodGet || (cw.status != http.StatusOK && cw.status != http.StatusPartialContent):
		return true, nil
	}
	rec := store.Download{JobID: j.ID, TenantID: c.TenantID, PrincipalID: c.PrincipalID, ClientIP: ci.peer,
		UserAgent: r.UserAgent(), BytesSent: cw.n, Protocol: ci.protocol, StartOffset: rangeStart(h.Get("Content-Range"))}
	want, err := strconv.ParseInt(h.Get("Content-Length"), 10, 64)
	rec.Completed = err == nil && cw.n == want
	s.recordDownload(ctx, rec)
	return true, nil
}

// rangeStart is the first byte of a Content-Range answer ("bytes a-b/size"),
// 0 for a whole-file answer.
func rangeStart(contentRange string) int64 {
	v, ok := strings.CutPrefix(contentRange, "bytes ")
	if !ok {
		return 0
	}
	a, _, _ := strings.Cut(v, "-")
	n, err := strconv.ParseInt(a, 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// artifactContent is what ServeContent copies from: the open file itself
// when the bucket is a local folder, so that net/http copies straight from it
// (sendfile on plain HTTP/1.1) as a file server would, and the blob reader
// otherwise.
func artifactContent(rd *blob.Reader) io.ReadSeeker {
	var under io.Reader
	if rd.As(&under) {
		if f, ok := under.(*os.File); ok {
			return f
		}
	}
	return rd
}

// countingResponse counts the body bytes that reach the connection and
// remembers the status.
type countingResponse struct {
	http.ResponseWriter
	n      int64
	status int
}

func (c *countingResponse) WriteHeader(code int) {
	c.status = code
	c.ResponseWriter.WriteHeader(code)
}

func (c *countingResponse) Write(p []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	n, err := c.ResponseWriter.Write(p)
	c.n += int64(n)
	return n, err
}

// ReadFrom lets the copy reach the connection's own ReaderFrom (sendfile on
// HTTP/1.1) through the counter.
func (c *countingResponse) ReadFrom(src io.Reader) (int64, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	var (
		n   int64
		err error
	)
	if rf, ok := c.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(struct{ io.Writer }{c.ResponseWriter}, src)
	}
	c.n += n
	return n, err
}

// Unwrap gives http.ResponseController the underlying writer.
func (c *countingResponse) Unwrap() http.ResponseWriter { return c.ResponseWriter }
