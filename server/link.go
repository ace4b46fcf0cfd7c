package server

import (
	"bytes"
	"context"
	"net/http"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/exportd/exportd/authz"
	auditv1 "github.com/exportd/exportd/gen/go/audit/v1"
	"github.com/exportd/exportd/internal/fault"
	"github.com/exportd/exportd/internal/store"
	"github.com/exportd/exportd/reports"
)

// defaultLinkTTL is how long a download link lives when the request does not
// say (SPEC §3: a short time).
const defaultLinkTTL = 15 * time.Minute

// linkPath prefixes the URL of every download link; the token follows.
const linkPath = "/v1/links/"

func (h downloadService) CreateDownloadLink(ctx context.Context, req *connect.Request[auditv1.CreateDownloadLinkRequest]) (*connect.Response[auditv1.CreateDownloadLinkResponse], error) {
	s := h.s
	c := authz.CallerFrom(ctx)
	j, err := s.downloadable(ctx, c.TenantID, req.Msg.GetJobId())
	if err != nil {
		return nil, err
	}
	ttl := time.Duration(req.Msg.GetTtlSeconds()) * time.Second
	if ttl == 0 {
		ttl = defaultLinkTTL
	}
	exp := s.store.Now().Add(ttl)
	if j.ExpiresAt != nil && j.ExpiresAt.Before(exp) {
		exp = *j.ExpiresAt
	}
	token, l, err := s.store.CreateLink(ctx, store.NewLink{TenantID: c.TenantID, JobID: j.ID, PrincipalID: c.PrincipalID, KeyID: c.KeyID, ExpiresAt: exp})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&auditv1.CreateDownloadLinkResponse{
		Url:       linkPath + token,
		ExpiresAt: timestamppb.New(l.ExpiresAt),
	}), nil
}

func (h downloadService) ListDownloads(ctx context.Context, req *connect.Request[auditv1.ListDownloadsRequest]) (*connect.Response[auditv1.ListDownloadsResponse], error) {
	s := h.s
	c := authz.CallerFrom(ctx)
	j, err := s.store.Job(ctx, c.TenantID, req.Msg.GetJobId())
	if err != nil {
		return nil, err
	}
	rs, err := s.store.Downloads(ctx, c.TenantID, j.ID)
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(rs))
	for _, r := range rs {
		ids = append(ids, r.PrincipalID)
	}
	names, err := s.store.PrincipalNames(ctx, c.TenantID, ids)
	if err != nil {
		return nil, err
	}
	out := &auditv1.ListDownloadsResponse{Downloads: make([]*auditv1.DownloadRecord, 0, len(rs))}
	for _, r := range rs {
		name := names[r.PrincipalID]
		if name == "" {
			name = r.PrincipalID
		}
		out.Downloads = append(out.Downloads, &auditv1.DownloadRecord{
			Principal:    name,
			ClientIp:     r.ClientIP,
			UserAgent:    r.UserAgent,
			DownloadedAt: timestamppb.New(r.CreatedAt),
			StartOffset:  r.StartOffset,
			BytesSent:    r.BytesSent,
			Protocol:     string(r.Protocol),
			Completed:    r.Completed,
		})
	}
	return connect.NewResponse(out), nil
}

// linkDownload serves GET /v1/links/{token}: the artifact, once, with no
// header, as the principal who minted the link. A link delivers the whole
// file: Range and conditional headers are ignored, since a single-use link
// cannot be resumed. HEAD shows the headers without using the link up.
func (s *Server) linkDownload(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ci := callInfo{procedure: linkDownloadProcedure, header: r.Header, peer: s.clientIP(r.RemoteAddr, r.Header), protocol: "link",
		meta: map[string]any{"method": r.Method}}
	// Guessing tokens is an authentication failure like guessing keys: an
	// address that keeps failing is refused before the lookup.
	if wait, _ := s.guard.blocked(ci.peer, parsedKey{}); wait > 0 {
		e := fault.New(fault.ResourceExhausted, "too many failed requests from this address; retry in %s", wait.Round(time.Millisecond))
		e.RetryAfter = wait
		s.foldDenial(ctx, "", "", reports.ActionExportLinkRefused, "too_many_failures", ci)
		writeRESTError(w, toConnect(ctx, s.log, e))
		return
	}
	l, err := s.store.Link(ctx, r.PathValue("token"))
	if l == nil {
		if err == nil {
			err = fault.New(fault.NotFound, "download link not found; ask for a new link")
			s.guard.failed(ci.peer, "", "")
		}
		// No tenant to file it under: the server log keeps the attempt,
		// folded per address.
		s.foldDenial(ctx, "", "", reports.ActionExportLinkRefused, "not_found", ci)
		writeRESTError(w, toConnect(ctx, s.log, err))
		return
	}
	ci.meta["link_id"] = l.ID
	c := &authz.Caller{TenantID: l.TenantID, PrincipalID: l.PrincipalID, KeyID: l.KeyID}
	if names, nerr := s.store.PrincipalNames(ctx, l.TenantID, []string{l.PrincipalID}); nerr == nil {
		c.PrincipalName = names[l.PrincipalID]
	}
	written := false
	if err != nil {
		err = &denial{err: err}
	} else {
		written, err = s.redeemLink(w, r, c, l, ci)
	}
	s.finish(ctx, c, ci, l.JobID, err)
	if err != nil && !written {
		writeRESTError(w, toConnect(ctx, s.log, err))
	}
}

// redeemLink checks the job can still be downloaded, uses the link up (GET
// only) and serves the artifact.
func (s *Server) redeemLink(w http.ResponseWriter, r *http.Request, c *authz.Caller, l *store.Link, ci callInfo) (bool, error) {
	ctx := r.Context()
	if reason, err := s.checkLinkKey(ctx, c, l); err != nil {
		if reason != "" {
			ci.meta["refused"] = reason // the audit event says why
		}
		return false, err
	}
	j, err := s.downloadable(ctx, c.TenantID, l.JobID)
	if err != nil {
		return false, err
	}
	if r.Method == http.MethodGet {
		if err := s.store.UseLink(ctx, l); err != nil {
			return false, &denial{err: err}
		}
	}
	for _, k := range []string{"Range", "If-Range", "If-None-Match", "If-Modified-Since", "If-Match", "If-Unmodified-Since"} {
		r.Header.Del(k)
	}
	return s.serveArtifact(w, r, c, j, ci)
}

// checkLinkKey refuses a link whose minting key could no longer mint it: a
// link is that key's authority, handed on, so revoking the key (or its
// expiry, or its role losing the export permission) must end the link too.
// Links minted before keys were recorded carry none and live out their
// short TTL.
// It returns a short reason for the audit log beside the refusal.
func (s *Server) checkLinkKey(ctx context.Context, c *authz.Caller, l *store.Link) (string, error) {
	if l.KeyID == "" {
		return "", nil
	}
	k, err := s.store.APIKey(ctx, l.TenantID, l.KeyID)
	if fault.KindOf(err) == fault.NotFound {
		return "key_deleted", &denial{err: fault.New(fault.FailedPrecondition, "download link no longer works: the key that created this link no longer exists; ask for a new link")}
	}
	if err != nil {
		return "", err
	}
	c.Role = k.Role
	var reason, why string
	switch {
	case k.RevokedAt != nil:
		reason, why = "key_revoked", "was revoked"
	case k.ExpiresAt != nil && !s.store.Now().Before(*k.ExpiresAt):
		reason, why = "key_expired", "expired"
	case !s.enforcer.Allowed(l.TenantID, k.Role, authz.PermExport):
		reason, why = "key_permission", "lost the "+authz.PermExport+" permission (role "+k.Role+")"
	default:
		return "", nil
	}
	return reason, &denial{err: fault.New(fault.FailedPrecondition, "download link no longer works: the key that created this link %s; ask for a new link", why)}
}

// restManifest serves GET /v1/audit/exports/{job_id}/manifest: the job's
// manifest JSON as stored. It stays available after the download window
// closed (the report is gone, the evidence of what it held is not).
func (s *Server) restManifest(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ci := callInfo{procedure: restManifestProcedure, header: r.Header, peer: s.clientIP(r.RemoteAddr, r.Header), protocol: "rest"}
	jobID := r.PathValue("job_id")
	c, err := s.authenticate(ctx, ci)
	if err == nil {
		var b []byte
		b, err = s.manifest(ctx, c, jobID)
		if err == nil {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Cache-Control", "private, no-store")
			http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(b))
		}
	}
	if c != nil {
		s.finish(ctx, c, ci, jobID, err)
	}
	if err != nil {
		writeRESTError(w, toConnect(ctx, s.log, err))
	}
}

func (s *Server) manifest(ctx context.Context, c *authz.Caller, jobID string) ([]byte, error) {
	if hostile(jobID) { // a plain handler's path: no interceptor walked it
		return nil, store.JobNotFound(jobID)
	}
	j, err := s.store.Job(ctx, c.TenantID, jobID)
	if err != nil {
		return nil, err
	}
	switch {
	case j.Status == store.JobFailed:
		return nil, fault.New(fault.FailedPrecondition, "export %s is FAILED (%s); it has no manifest", j.ID, j.Error)
	case j.Status != store.JobCompleted && j.Status != store.JobExpired:
		return nil, fault.New(fault.FailedPrecondition, "export %s is %s; its manifest exists once it is COMPLETED", j.ID, j.Status)
	case len(j.Manifest) == 0:
		return nil, fault.New(fault.FailedPrecondition, "export %s has no manifest", j.ID)
	}
	return j.Manifest, nil
}
