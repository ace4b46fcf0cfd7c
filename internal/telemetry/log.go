package telemetry

import (
	"context"
	"io"
	"log/slog"
	"regexp"
	"strings"

	"go.opentelemetry.io/otel/trace"
)

type requestIDKey struct{}

// WithRequestID returns ctx carrying the request id.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestID is the id WithRequestID stored, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// NewLogger returns a JSON or text logger at level writing to w, whose lines
// carry trace_id, span_id and request_id from the context and never an API
// key.
func NewLogger(w io.Writer, format string, level slog.Leveler) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: redactAttr}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if format == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(NewLogHandler(h))
}

// NewLogHandler wraps h so that every record logged with a context gets the
// trace and request ids of that context.
func NewLogHandler(h slog.Handler) slog.Handler { return logHandler{h} }

type logHandler struct{ next slog.Handler }

func (l logHandler) Enabled(ctx context.Context, lvl slog.Level) bool {
	return l.next.Enabled(ctx, lvl)
}

func (l logHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	if id := RequestID(ctx); id != "" {
		r.AddAttrs(slog.String("request_id", id))
	}
	if strings.Contains(r.Message, "tl_") {
		r.Message = Redact(r.Message)
	}
	return l.next.Handle(ctx, r)
}

func (l logHandler) WithAttrs(as []slog.Attr) slog.Handler { return logHandler{l.next.WithAttrs(as)} }
func (l logHandler) WithGroup(name string) slog.Handler    { return logHandler{l.next.WithGroup(name)} }

// apiKeyPattern matches the secret part of an API key; the key id before it
// is not secret and stays readable.
var apiKeyPattern = regexp.MustCompile(`(tl_(?:live|test)_[a-z2-7]+_)[A-Za-z0-9]+`)

// Redact masks the secret of any API key in s. The server never logs keys;
// this is the net under that rule, for error texts that echo input.
func Redact(s string) string {
	if !strings.Contains(s, "tl_") {
		return s
	}
	return apiKeyPattern.ReplaceAllString(s, "${1}[redacted]")
}

// secretAttrs are attribute names whose values are never logged.
var secretAttrs = map[string]bool{
	"api_key": true, "x-api-key": true, "authorization": true, "password": true, "secret": true, "token": true,
}

func redactAttr(_ []string, a slog.Attr) slog.Attr {
	if secretAttrs[strings.ToLower(a.Key)] {
		return slog.String(a.Key, "[redacted]")
	}
	switch a.Value.Kind() {
	case slog.KindString:
		if s := a.Value.String(); strings.Contains(s, "tl_") {
			return slog.String(a.Key, Redact(s))
		}
	case slog.KindAny:
		if err, ok := a.Value.Any().(error); ok {
			if s := err.Error(); strings.Contains(s, "tl_") {
				return slog.String(a.Key, Redact(s))
			}
		}
	}
	return a
}
