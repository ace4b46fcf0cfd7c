package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/exportd/exportd/authz"
	"github.com/exportd/exportd/ent"
	"github.com/exportd/exportd/ent/exportjob"
	auditv1 "github.com/exportd/exportd/gen/go/audit/v1"
	"github.com/exportd/exportd/gen/go/audit/v1/auditv1connect"
	"github.com/exportd/exportd/internal/fault"
	"github.com/exportd/exportd/internal/store"
)

// chunkSize bounds each Download message.
const chunkSize = 64 << 10

// downloadService implements auditv1connect.DownloadServiceHandler.
type downloadService struct {
	// Links and the download history arrive with the downloads work; until
	// then they answer unimplemented.
	auditv1connect.UnimplementedDownloadServiceHandler
	s *Server
}

// downloadable returns the job when its artifact can be downloaded, or the
// error SPEC §3 prescribes for its status.
func (s *Server) downloadable(ctx context.Context, tenantID, jobID string) (*ent.ExportJob, error) {
	j, err := s.store.Job(ctx, tenantID, jobID)
	if err != nil {
		return nil, err
	}
	switch j.Status {
	case exportjob.StatusCOMPLETED:
		if j.ExpiresAt != nil && !s.store.Now().Before(*j.ExpiresAt) {
			return nil, expired(j)
		}
		return j, nil
	case exportjob.StatusEXPIRED:
		return nil, expired(j)
	case exportjob.StatusFAILED:
		return nil, fault.New(fault.FailedPrecondition, "export %s is FAILED (%s); there is nothing to download", j.ID, j.Error)
	default:
		return nil, fault.New(fault.FailedPrecondition, "export %s is %s; download it once it is COMPLETED", j.ID, j.Status)
	}
}

func expired(j *ent.ExportJob) error {
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

// restDownload serves GET /v1/audit/exports/{job_id}/download: the raw file,
// streamed from the blob store with Range, ETag and HEAD support. It is a
// plain handler because the REST transcoder buffers streamed bodies whole.
func (s *Server) restDownload(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ci := callInfo{procedure: restDownloadProcedure, header: r.Header, peer: s.clientIP(r.RemoteAddr, r.Header), protocol: "rest"}
	jobID := r.PathValue("job_id")
	c, err := s.authenticate(ctx, ci)
	if err != nil {
		if c != nil {
			s.finish(ctx, c, ci, jobID, err)
		}
		writeRESTError(w, toConnect(ctx, s.log, err))
		return
	}
	err = s.serveArtifact(w, r, c, jobID, ci)
	s.finish(ctx, c, ci, jobID, err)
	if err != nil {
		writeRESTError(w, toConnect(ctx, s.log, err))
	}
}

// serveArtifact writes the artifact; an error is returned only while nothing
// has been written yet.
func (s *Server) serveArtifact(w http.ResponseWriter, r *http.Request, c *authz.Caller, jobID string, ci callInfo) error {
	ctx := r.Context()
	j, err := s.downloadable(ctx, c.TenantID, jobID)
	if err != nil {
		return err
	}
	rd, err := s.bucket.NewReader(ctx, j.ArtifactKey, nil)
	if err != nil {
		return fmt.Errorf("open artifact %s: %w", j.ArtifactKey, err)
	}
	defer rd.Close()
	h := w.Header()
	h.Set("Content-Type", contentType(j.Format))
	h.Set("Content-Disposition", `attachment; filename="`+filename(j)+`"`)
	h.Set("ETag", `"`+j.ArtifactSha256+`"`)
	h.Set("X-Content-SHA256", j.ArtifactSha256)
	h.Set("Cache-Control", "private, no-store")
	cw := &countingResponse{ResponseWriter: w}
	// ServeContent answers HEAD, Range (206/416) and If-None-Match, and
	// copies from the reader without buffering the file.
	http.ServeContent(cw, r, "", j.CompletedAt.UTC(), rd)
	if r.Method == http.MethodGet {
		rec := store.Download{JobID: j.ID, TenantID: c.TenantID, PrincipalID: c.PrincipalID, ClientIP: ci.peer,
			UserAgent: r.UserAgent(), BytesSent: cw.n, Protocol: "rest"}
		rec.StartOffset = rangeStart(r.Header.Get("Range"))
		rec.Completed = cw.status < 300 && cw.n > 0 && rec.StartOffset+cw.n == j.ArtifactSize || (cw.status == http.StatusOK && cw.n == j.ArtifactSize)
		s.recordDownload(ctx, rec)
	}
	return nil
}

func rangeStart(h string) int64 {
	v, ok := strings.CutPrefix(h, "bytes=")
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
