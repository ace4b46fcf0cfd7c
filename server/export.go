package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/exportd/exportd/authz"
	auditv1 "github.com/exportd/exportd/gen/go/audit/v1"
	"github.com/exportd/exportd/internal/fault"
	"github.com/exportd/exportd/internal/store"
	"github.com/exportd/exportd/internal/telemetry"
	"github.com/exportd/exportd/reports"
)

// exportService implements auditv1connect.ExportServiceHandler.
type exportService struct{ s *Server }

func (h exportService) CreateExport(ctx context.Context, req *connect.Request[auditv1.CreateExportRequest]) (*connect.Response[auditv1.CreateExportResponse], error) {
	s := h.s
	c := authz.CallerFrom(ctx)
	m := req.Msg
	format := m.GetFormat()
	if format == "" {
		format = reports.FormatJSON
	}
	start, end := m.GetStartDate().AsTime().UTC(), m.GetEndDate().AsTime().UTC()
	if err := s.checkPeriod(start, end); err != nil {
		return nil, err
	}
	if err := s.requireProfile(ctx, c.TenantID, m.GetReportType()); err != nil {
		return nil, err
	}
	from, to := reports.AppliedPeriod(start, end)
	idem := req.Header().Get("Idempotency-Key")
	if len(idem) > 255 {
		return nil, fault.Invalid(fault.Violation{Field: "Idempotency-Key", Rule: "header.max_len", Message: "must be at most 255 characters"})
	}
	sum := sha256.Sum256(fmt.Appendf(nil, "%s|%s|%s|%s", m.GetReportType(), format, start.Format(time.RFC3339Nano), end.Format(time.RFC3339Nano)))
	rows, err := s.store.EstimateEvents(ctx, c.TenantID, from, to)
	if err != nil {
		return nil, err
	}
	j, created, err := s.store.CreateJob(ctx, store.NewJob{
		TenantID:        c.TenantID,
		RequestedBy:     c.PrincipalID,
		RequestedByName: c.PrincipalName,
		ReportType:      m.GetReportType(),
		Format:          format,
		PeriodStart:     start,
		PeriodEnd:       end,
		AppliedStart:    from,
		AppliedEnd:      to,
		IdempotencyKey:  idem,
		RequestHash:     hex.EncodeToString(sum[:]),
		PolicyDecision:  c.ExportDecision.String(),
		Estimate:        estimate(s.store.Now(), rows),
		RowsTotal:       rows,
		TraceParent:     telemetry.TraceParent(ctx),
		MaxAttempts:     s.cfg.MaxAttempts,
		MaxQueued:       s.cfg.MaxQueuedPerTenant,
	})
	if err != nil {
		return nil, err
	}
	if created {
		s.runner.Wake()
	}
	return connect.NewResponse(&auditv1.CreateExportResponse{
		JobId:               j.ID,
		Status:              statusOf(j.Status),
		EstimatedCompletion: timestamppb.New(estimatedCompletion(j)),
	}), nil
}

// checkPeriod applies the cross-field rules protovalidate cannot express.
func (s *Server) checkPeriod(start, end time.Time) error {
	var vs []fault.Violation
	if end.Before(start) {
		vs = append(vs, fault.Violation{Field: "end_date", Number: 3, Rule: "end_date.not_before_start",
			Message: fmt.Sprintf("end_date %s is before start_date %s", end.Format(time.RFC3339Nano), start.Format(time.RFC3339Nano))})
	} else if end.Sub(start) > s.cfg.MaxPeriod {
		vs = append(vs, fault.Violation{Field: "end_date", Number: 3, Rule: "period.max",
			Message: fmt.Sprintf("the period spans %d days; at most %d days can be exported at once", int(end.Sub(start).Hours()/24)+1, int(s.cfg.MaxPeriod.Hours()/24))})
	}
	if len(vs) > 0 {
		return fault.Invalid(vs...)
	}
	return nil
}

// estimate guesses when a new job will be ready from how many events the
// period holds; the worker refines it as it runs.
func estimate(now time.Time, rows int64) time.Time {
	const rowsPerSecond = 200_000
	return now.Add(2*time.Second + time.Duration(rows)*time.Second/rowsPerSecond).Truncate(time.Second)
}

func estimatedCompletion(j *store.Job) time.Time {
	if j.EstimatedCompletion != nil {
		return *j.EstimatedCompletion
	}
	return j.CreatedAt
}

func (h exportService) GetExport(ctx context.Context, req *connect.Request[auditv1.GetExportRequest]) (*connect.Response[auditv1.GetExportResponse], error) {
	c := authz.CallerFrom(ctx)
	j, err := h.s.store.Job(ctx, c.TenantID, req.Msg.GetJobId())
	if err != nil {
		return nil, err
	}
	out := jobProto(j)
	if len(j.Manifest) > 0 {
		m := &auditv1.Manifest{}
		// The manifest JSON uses the proto field names, so it decodes as is.
		if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(j.Manifest, m); err != nil {
			return nil, fmt.Errorf("decode manifest of %s: %w", j.ID, err)
		}
		out.Manifest = m
	}
	return connect.NewResponse(&auditv1.GetExportResponse{Export: out}), nil
}

func (h exportService) ListExports(ctx context.Context, req *connect.Request[auditv1.ListExportsRequest]) (*connect.Response[auditv1.ListExportsResponse], error) {
	c := authz.CallerFrom(ctx)
	f := store.JobFilter{ReportType: req.Msg.GetReportType(), PageSize: int(req.Msg.GetPageSize()), PageToken: req.Msg.GetPageToken()}
	if st := req.Msg.GetStatus(); st != auditv1.ExportStatus_EXPORT_STATUS_UNSPECIFIED {
		f.Status = st.String()
	}
	jobs, next, err := h.s.store.ListJobs(ctx, c.TenantID, f)
	if err != nil {
		return nil, err
	}
	out := &auditv1.ListExportsResponse{NextPageToken: next}
	for _, j := range jobs {
		out.Exports = append(out.Exports, jobProto(j))
	}
	return connect.NewResponse(out), nil
}

func (h exportService) WatchExport(ctx context.Context, req *connect.Request[auditv1.WatchExportRequest], stream *connect.ServerStream[auditv1.WatchExportResponse]) error {
	c := authz.CallerFrom(ctx)
	ref := store.JobRef{TenantID: c.TenantID, ID: req.Msg.GetJobId()}
	w := h.s.watches.subscribe(ref)
	defer h.s.watches.unsubscribe(ref, w)
	// A stream that says nothing for a minute looks dead to many proxies:
	// when the job does not change for a while, its state goes out again.
	keepalive := time.NewTimer(h.s.cfg.KeepaliveInterval)
	defer keepalive.Stop()
	var sent, cur *auditv1.ExportJob
	send := func() error {
		keepalive.Reset(h.s.cfg.KeepaliveInterval)
		sent = cur
		return stream.Send(&auditv1.WatchExportResponse{Export: cur})
	}
	for {
		snap, fresh := w.state()
		if snap != nil {
			if snap.err != nil {
				return snap.err
			}
			cur = jobProto(snap.job)
			if sent == nil || !proto.Equal(cur, sent) {
				if err := send(); err != nil {
					return err
				}
			}
			if terminal(snap.job.Status) {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-h.s.draining:
			return errDraining
		case <-fresh:
		case <-keepalive.C:
			if cur == nil {
				keepalive.Reset(h.s.cfg.KeepaliveInterval)
			} else if err := send(); err != nil {
				return err
			}
		}
	}
}

func terminal(st store.JobStatus) bool {
	return st == store.JobCompleted || st == store.JobFailed || st == store.JobExpired
}

func (h exportService) CancelExport(ctx context.Context, req *connect.Request[auditv1.CancelExportRequest]) (*connect.Response[auditv1.CancelExportResponse], error) {
	c := authz.CallerFrom(ctx)
	j, err := h.s.store.CancelJob(ctx, c.TenantID, req.Msg.GetJobId(), c.PrincipalName)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&auditv1.CancelExportResponse{Export: jobProto(j)}), nil
}

func (h exportService) WhoAmI(ctx context.Context, _ *connect.Request[auditv1.WhoAmIRequest]) (*connect.Response[auditv1.WhoAmIResponse], error) {
	c := authz.CallerFrom(ctx)
	if c == nil {
		return nil, errors.New("whoami without a caller")
	}
	out := &auditv1.WhoAmIResponse{
		TenantId:    c.TenantID,
		TenantName:  c.TenantName,
		PrincipalId: c.PrincipalID,
		Principal:   c.PrincipalName,
		Role:        c.Role,
		Permissions: h.s.enforcer.Permissions(c.TenantID, c.Role),
		KeyId:       c.KeyID,
	}
	if c.CompliancePack {
		out.AddOns = append(out.AddOns, authz.AddOnCompliancePack)
	}
	return connect.NewResponse(out), nil
}

func statusOf(st store.JobStatus) auditv1.ExportStatus {
	return auditv1.ExportStatus(auditv1.ExportStatus_value[st.String()])
}

func ts(t *time.Time) *timestamppb.Timestamp {
	if t == nil {
		return nil
	}
	return timestamppb.New(*t)
}

func jobProto(j *store.Job) *auditv1.ExportJob {
	out := &auditv1.ExportJob{
		JobId:               j.ID,
		TenantId:            j.TenantID,
		ReportType:          j.ReportType,
		Format:              j.Format,
		StartDate:           timestamppb.New(j.PeriodStart),
		EndDate:             timestamppb.New(j.PeriodEnd),
		Status:              statusOf(j.Status),
		Error:               j.Error,
		RowsDone:            j.RowsDone,
		RowsTotal:           j.RowsTotal,
		EstimatedCompletion: ts(j.EstimatedCompletion),
		CreatedAt:           timestamppb.New(j.CreatedAt),
		StartedAt:           ts(j.StartedAt),
		CompletedAt:         ts(j.CompletedAt),
		ExpiresAt:           ts(j.ExpiresAt),
		RequestedBy:         j.RequestedByName,
		SizeBytes:           j.ArtifactSize,
		Sha256:              j.ArtifactSha256,
		Attempt:             int32(j.Attempt),     //nolint:gosec // attempts are few
		MaxAttempts:         int32(j.MaxAttempts), //nolint:gosec // attempts are few
		FailedAttempts:      int32(j.Failures),    //nolint:gosec // attempts are few
		Filename:            filename(j),
	}
	// Between attempts the row's error holds the last failed attempt's
	// reason (see jobs.Runner.fail); it is the job's error only once the job
	// is FAILED. Attempts are counted in failures: a start whose worker died
	// failed nothing.
	switch {
	case j.Status == store.JobPending && j.NextAttemptAt != nil && j.Failures > 0:
		out.NextAttemptAt = timestamppb.New(*j.NextAttemptAt)
		out.RetryReason = j.Error
		out.Error = fmt.Sprintf("attempt %d of %d failed: %s; retrying at %s", j.Failures, j.MaxAttempts, j.Error,
			j.NextAttemptAt.UTC().Format(time.RFC3339))
	case j.Status == store.JobPending || j.Status == store.JobRunning:
		out.RetryReason = j.Error
		out.Error = ""
	}
	return out
}

// filename names an artifact after its type, tenant, job and period.
func filename(j *store.Job) string {
	// The job id makes the name unique: two exports of one period (another
	// format, a later as-of) must not overwrite each other in a folder.
	return fmt.Sprintf("%s-%s-%s-%s-to-%s.%s", j.ReportType, shortID(j.TenantID), j.ID,
		j.PeriodStart.UTC().Format("20060102"), j.PeriodEnd.UTC().Format("20060102"), j.Format)
}

func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}
