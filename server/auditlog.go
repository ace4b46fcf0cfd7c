package server

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/exportd/exportd/authz"
	auditv1 "github.com/exportd/exportd/gen/go/audit/v1"
	"github.com/exportd/exportd/internal/fault"
	"github.com/exportd/exportd/internal/store"
	"github.com/exportd/exportd/reports"
)

// auditLogService implements auditv1connect.AuditLogServiceHandler.
type auditLogService struct{ s *Server }

func (h auditLogService) WriteEvents(ctx context.Context, req *connect.Request[auditv1.WriteEventsRequest]) (*connect.Response[auditv1.WriteEventsResponse], error) {
	c := authz.CallerFrom(ctx)
	evs, err := h.s.checkBatch(req.Msg.GetEvents())
	if err != nil {
		return nil, err
	}
	r, err := h.s.store.Ingest(ctx, c.TenantID, evs)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&auditv1.WriteEventsResponse{
		Sequences:     r.Sequences,
		FirstSequence: r.First,
		LastSequence:  r.Last,
		Duplicates:    int32(r.Duplicates), //nolint:gosec // bounded by the batch size
		ChainHash:     r.ChainHead,
	}), nil
}

// MaxMetadataBytes caps one event's metadata, as compact JSON: an audit
// event describes an action, it does not carry documents.
const MaxMetadataBytes = 64 << 10

// EarliestEvent is the earliest occurred_at an event may have: older times
// are a client's clock or encoding error (a zero timestamp is 1970), not
// history anyone exports.
var EarliestEvent = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// checkBatch applies the rules protovalidate cannot express (the configured
// batch size and "not too far in the future", which depends on now) and
// converts the batch. Every violation is reported, with its field path.
func (s *Server) checkBatch(in []*auditv1.AuditEventInput) ([]store.NewEvent, error) {
	var vs []fault.Violation
	if len(in) > s.cfg.MaxBatch {
		vs = append(vs, fault.Violation{Field: "events", Number: 1, Rule: "events.max_items",
			Message: fmt.Sprintf("a batch holds at most %d events; this one has %d", s.cfg.MaxBatch, len(in))})
	}
	latest := s.store.Now().Add(s.cfg.MaxClockSkew)
	out := make([]store.NewEvent, len(in))
	for i, e := range in {
		at := e.GetOccurredAt().AsTime()
		if at.Before(EarliestEvent) {
			vs = append(vs, fault.Violation{Field: fmt.Sprintf("events[%d].occurred_at", i), Number: 2, Rule: "occurred_at.not_before",
				Message: fmt.Sprintf("%s is before %s, the earliest time exportd accepts", at.Format(time.RFC3339Nano), EarliestEvent.Format(time.RFC3339))})
		}
		if at.After(latest) {
			vs = append(vs, fault.Violation{Field: fmt.Sprintf("events[%d].occurred_at", i), Number: 2, Rule: "occurred_at.not_future",
				Message: fmt.Sprintf("%s is more than %s in the future", at.Format(time.RFC3339Nano), s.cfg.MaxClockSkew)})
		}
		// PostgreSQL text and jsonb cannot hold NUL; refuse it on both stores.
		for _, f := range []struct{ name, v string }{
			{"client_event_id", e.GetClientEventId()}, {"actor_id", e.GetActorId()}, {"action", e.GetAction()},
			{"resource_type", e.GetResourceType()}, {"resource_id", e.GetResourceId()}, {"user_agent", e.GetUserAgent()},
			{"request_id", e.GetRequestId()},
		} {
			if strings.ContainsRune(f.v, 0) {
				vs = append(vs, fault.Violation{Field: fmt.Sprintf("events[%d].%s", i, f.name), Rule: "string.no_nul", Message: "must not contain NUL characters"})
			}
		}
		if m := e.GetMetadata(); m != nil {
			b, err := json.Marshal(m.AsMap())
			switch {
			case err != nil || strings.Contains(string(b), `\u0000`):
				vs = append(vs, fault.Violation{Field: fmt.Sprintf("events[%d].metadata", i), Number: 14, Rule: "metadata.no_nul", Message: "must not contain NUL characters"})
			case len(b) > MaxMetadataBytes:
				vs = append(vs, fault.Violation{Field: fmt.Sprintf("events[%d].metadata", i), Number: 14, Rule: "metadata.max_bytes",
					Message: fmt.Sprintf("is %d bytes as JSON; one event's metadata holds at most %d (64 KiB)", len(b), MaxMetadataBytes)})
			}
		}
		out[i] = store.NewEvent{
			ClientEventID: e.GetClientEventId(),
			Event: reports.Event{
				OccurredAt:   at,
				ActorID:      e.GetActorId(),
				ActorType:    e.GetActorType(),
				Action:       e.GetAction(),
				ResourceType: e.GetResourceType(),
				ResourceID:   e.GetResourceId(),
				Outcome:      e.GetOutcome(),
				Category:     e.GetCategory(),
				PHI:          e.GetPhi(),
				IP:           e.GetIp(),
				UserAgent:    e.GetUserAgent(),
				RequestID:    e.GetRequestId(),
				Metadata:     e.GetMetadata().AsMap(),
			},
		}
	}
	if len(vs) > 0 {
		return nil, fault.Invalid(vs...)
	}
	return out, nil
}

func eventQuery(f *auditv1.EventFilter) store.EventQuery {
	q := store.EventQuery{
		ActorID:  f.GetActorId(),
		Action:   f.GetAction(),
		Category: f.GetCategory(),
		Outcome:  f.GetOutcome(),
		Desc:     f.GetOrder() == "desc",
		After:    f.GetAfterSequence(),
	}
	if f != nil && f.Phi != nil {
		phi := f.GetPhi()
		q.PHI = &phi
	}
	if f.GetStartTime() != nil {
		q.From = f.GetStartTime().AsTime()
	}
	if f.GetEndTime() != nil {
		q.To = f.GetEndTime().AsTime()
	}
	return q
}

func (h auditLogService) QueryEvents(ctx context.Context, req *connect.Request[auditv1.QueryEventsRequest]) (*connect.Response[auditv1.QueryEventsResponse], error) {
	c := authz.CallerFrom(ctx)
	q := eventQuery(req.Msg.GetFilter())
	q.PageSize, q.PageToken = int(req.Msg.GetPageSize()), req.Msg.GetPageToken()
	page, err := h.s.store.QueryEvents(ctx, c.TenantID, q)
	if err != nil {
		return nil, err
	}
	out := &auditv1.QueryEventsResponse{NextPageToken: page.NextPageToken, Events: make([]*auditv1.AuditEvent, 0, len(page.Events))}
	for i := range page.Events {
		e, err := eventProto(&page.Events[i])
		if err != nil {
			return nil, err
		}
		out.Events = append(out.Events, e)
	}
	return connect.NewResponse(out), nil
}

func (h auditLogService) StreamEvents(ctx context.Context, req *connect.Request[auditv1.StreamEventsRequest], stream *connect.ServerStream[auditv1.StreamEventsResponse]) error {
	c := authz.CallerFrom(ctx)
	const chunk = 500
	msg := &auditv1.StreamEventsResponse{}
	err := h.s.store.StreamEvents(ctx, c.TenantID, eventQuery(req.Msg.GetFilter()), func(e store.StoredEvent) error {
		pe, err := eventProto(&e)
		if err != nil {
			return err
		}
		msg.Events = append(msg.Events, pe)
		if len(msg.Events) == chunk {
			if err := stream.Send(msg); err != nil {
				return err
			}
			msg.Events = msg.Events[:0]
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(msg.Events) > 0 {
		return stream.Send(msg)
	}
	return nil
}

func (h auditLogService) VerifyChain(ctx context.Context, req *connect.Request[auditv1.VerifyChainRequest]) (*connect.Response[auditv1.VerifyChainResponse], error) {
	c := authz.CallerFrom(ctx)
	from, to := req.Msg.GetFromSequence(), req.Msg.GetToSequence()
	if to != 0 && to < from {
		return nil, fault.Invalid(fault.Violation{Field: "to_sequence", Number: 2, Rule: "to_sequence.not_before_from",
			Message: fmt.Sprintf("to_sequence %d is before from_sequence %d", to, from)})
	}
	r, err := h.s.store.VerifyChain(ctx, c.TenantID, from, to)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&auditv1.VerifyChainResponse{
		Ok:             r.OK,
		FromSequence:   r.From,
		ToSequence:     r.To,
		Checked:        r.Checked,
		BrokenSequence: r.BrokenAt,
		Reason:         r.Reason,
		ChainHash:      r.Hash,
	}), nil
}

func eventProto(e *store.StoredEvent) (*auditv1.AuditEvent, error) {
	out := &auditv1.AuditEvent{
		Sequence:      e.Sequence,
		OccurredAt:    timestamppb.New(e.OccurredAt),
		ActorId:       e.ActorID,
		ActorType:     e.ActorType,
		Action:        e.Action,
		ResourceType:  e.ResourceType,
		ResourceId:    e.ResourceID,
		Outcome:       e.Outcome,
		Category:      e.Category,
		Phi:           e.PHI,
		Ip:            e.IP,
		UserAgent:     e.UserAgent,
		RequestId:     e.RequestID,
		ClientEventId: e.ClientEventID,
		Hash:          e.Hash,
	}
	if len(e.Metadata) > 0 {
		m, err := structpb.NewStruct(e.Metadata)
		if err != nil {
			return nil, fmt.Errorf("convert event %d metadata: %w", e.Sequence, err)
		}
		out.Metadata = m
	}
	return out, nil
}
