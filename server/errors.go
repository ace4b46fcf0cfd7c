package server

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strconv"
	"syscall"

	validatepb "buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"connectrpc.com/connect"
	"gocloud.dev/gcerrors"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/exportd/exportd/internal/fault"
)

// codes is the one mapping from domain error kinds to Connect codes.
var codes = map[fault.Kind]connect.Code{
	fault.InvalidArgument:    connect.CodeInvalidArgument,
	fault.NotFound:           connect.CodeNotFound,
	fault.FailedPrecondition: connect.CodeFailedPrecondition,
	fault.PermissionDenied:   connect.CodePermissionDenied,
	fault.Unauthenticated:    connect.CodeUnauthenticated,
	fault.ResourceExhausted:  connect.CodeResourceExhausted,
	fault.AlreadyExists:      connect.CodeAlreadyExists,
	fault.Unavailable:        connect.CodeUnavailable,
}

// toConnect translates any error into the error a client sees. Unknown
// errors become `internal` with a generic message; their detail goes to the
// log only.
func toConnect(ctx context.Context, log *slog.Logger, err error) *connect.Error {
	if err == nil {
		return nil
	}
	var ce *connect.Error
	if errors.As(err, &ce) {
		return ce
	}
	if errors.Is(err, context.Canceled) {
		return connect.NewError(connect.CodeCanceled, errors.New("request cancelled"))
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return connect.NewError(connect.CodeDeadlineExceeded, errors.New("deadline exceeded"))
	}
	fe, ok := fault.As(err)
	if !ok && unreachable(err) {
		// A dependency that is down is the client's cue to retry, not a
		// bug: unavailable, with the detail in the log only.
		log.WarnContext(ctx, "dependency unavailable", "err", err)
		fe, ok = fault.Wrap(fault.Unavailable, err, "storage is unavailable; try again shortly"), true
	}
	var code connect.Code
	known := false
	if ok {
		code, known = codes[fe.Kind]
	}
	if !known {
		log.ErrorContext(ctx, "internal error", "err", err)
		return connect.NewError(connect.CodeInternal, errors.New("internal error; it has been logged"))
	}
	out := connect.NewError(code, errors.New(fe.Message))
	if fe.RetryAfter > 0 {
		if d, err := connect.NewErrorDetail(&errdetails.RetryInfo{RetryDelay: durationpb.New(fe.RetryAfter)}); err == nil {
			out.AddDetail(d)
		}
		// The same delay as HTTP clients and proxies read it: whole
		// seconds, rounded up so that a retry on time is not refused again.
		out.Meta().Set("Retry-After", strconv.FormatInt(int64(math.Ceil(fe.RetryAfter.Seconds())), 10))
	}
	if code == connect.CodeUnauthenticated {
		out.Meta().Set("WWW-Authenticate", authChallenge)
	}
	if len(fe.Violations) > 0 {
		vs := &validatepb.Violations{}
		for _, v := range fe.Violations {
			elem := &validatepb.FieldPathElement{FieldName: proto.String(v.Field)}
			if v.Number != 0 {
				elem.FieldNumber = proto.Int32(v.Number)
			}
			vs.Violations = append(vs.Violations, &validatepb.Violation{
				Field:   &validatepb.FieldPath{Elements: []*validatepb.FieldPathElement{elem}},
				RuleId:  proto.String(v.Rule),
				Message: proto.String(v.Message),
			})
		}
		if d, err := connect.NewErrorDetail(vs); err == nil {
			out.AddDetail(d)
		}
	}
	return out
}

// authChallenge is the WWW-Authenticate challenge of every 401: RFC 9110
// asks for one, and it names the header the key goes in.
const authChallenge = `ApiKey header="X-API-Key"`

// unreachable says whether err is a dependency (the blob store, the
// database) that could not be reached or did not answer: a refused or reset
// connection, a network timeout, or a blob driver's deadline.
func unreachable(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EHOSTUNREACH) {
		return true
	}
	return gcerrors.Code(err) == gcerrors.DeadlineExceeded
}

// httpStatus is the standard HTTP status of each code (as google.rpc and
// the REST transcoder use).
var httpStatus = map[connect.Code]int{
	connect.CodeCanceled:           499,
	connect.CodeUnknown:            http.StatusInternalServerError,
	connect.CodeInvalidArgument:    http.StatusBadRequest,
	connect.CodeDeadlineExceeded:   http.StatusGatewayTimeout,
	connect.CodeNotFound:           http.StatusNotFound,
	connect.CodeAlreadyExists:      http.StatusConflict,
	connect.CodePermissionDenied:   http.StatusForbidden,
	connect.CodeResourceExhausted:  http.StatusTooManyRequests,
	connect.CodeFailedPrecondition: http.StatusBadRequest,
	connect.CodeAborted:            http.StatusConflict,
	connect.CodeOutOfRange:         http.StatusBadRequest,
	connect.CodeUnimplemented:      http.StatusNotImplemented,
	connect.CodeInternal:           http.StatusInternalServerError,
	connect.CodeUnavailable:        http.StatusServiceUnavailable,
	connect.CodeDataLoss:           http.StatusInternalServerError,
	connect.CodeUnauthenticated:    http.StatusUnauthorized,
}

// restStatusJSON writes google.rpc.Status as the REST transcoder does.
var restStatusJSON = protojson.MarshalOptions{UseProtoNames: true, EmitDefaultValues: true}

// writeRESTError answers a plain REST handler's error in the same
// google.rpc.Status JSON the transcoded REST paths use.
func writeRESTError(w http.ResponseWriter, ce *connect.Error) {
	writeRESTErrorStatus(w, ce, httpStatus[ce.Code()])
}

// writeRESTErrorStatus is writeRESTError with an HTTP status of its own,
// for answers more precise than the code's usual one (413 for a body over
// its limit).
func writeRESTErrorStatus(w http.ResponseWriter, ce *connect.Error, code int) {
	st := &status.Status{Code: int32(ce.Code()), Message: ce.Message()} //nolint:gosec // codes are small
	for _, d := range ce.Details() {
		msg, err := d.Value()
		if err != nil {
			continue
		}
		if a, err := anypb.New(msg); err == nil {
			st.Details = append(st.Details, a)
		}
	}
	b, err := restStatusJSON.Marshal(st)
	if err != nil {
		b = []byte(`{"code":13,"message":"internal error","details":[]}`)
	}
	if code == 0 {
		code = http.StatusInternalServerError
	}
	h := w.Header()
	for k, vs := range ce.Meta() {
		h[k] = vs
	}
	h.Set("Content-Type", "application/json")
	h.Del("Content-Length")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}
