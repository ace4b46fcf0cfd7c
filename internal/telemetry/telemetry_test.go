package telemetry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/exportd/exportd/internal/telemetry"
)

// TestLogLineIDsAndRedaction: a line logged inside a span and a request has
// their ids, and a key that slips into a message, an attribute or an error
// keeps only its key id.
func TestLogLineIDsAndRedaction(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := telemetry.NewLogger(&buf, "json", slog.LevelDebug)
	tp := sdktrace.NewTracerProvider()
	ctx, span := tp.Tracer("test").Start(telemetry.WithRequestID(context.Background(), "req_1"), "op")
	defer span.End()
	const key = "tl_live_abcdefghijklmnop_" + "q2r3s4t5u6v7w2x3y4z5a6b7c2d3e4f5g6h7i2j3k4l5m6n7o2p3"
	log.InfoContext(ctx, "saw "+key, "header", key, "err", errors.New("bad key "+key), "api_key", "anything")

	line := buf.String()
	if strings.Contains(line, "q2r3s4t5") || strings.Contains(line, "anything") {
		t.Fatalf("secret logged: %s", line)
	}
	var rec map[string]string
	if err := json.Unmarshal([]byte(line), &rec); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"msg":        "saw tl_live_abcdefghijklmnop_[redacted]",
		"header":     "tl_live_abcdefghijklmnop_[redacted]",
		"err":        "bad key tl_live_abcdefghijklmnop_[redacted]",
		"api_key":    "[redacted]",
		"request_id": "req_1",
		"trace_id":   span.SpanContext().TraceID().String(),
		"span_id":    span.SpanContext().SpanID().String(),
	}
	for k, v := range want {
		if rec[k] != v {
			t.Errorf("%s = %q, want %q", k, rec[k], v)
		}
	}
}

// TestTraceParentLink: the traceparent stored at CreateExport links back to
// the creating span.
func TestTraceParentLink(t *testing.T) {
	t.Parallel()
	tp := sdktrace.NewTracerProvider()
	ctx, span := tp.Tracer("test").Start(context.Background(), "create")
	defer span.End()
	tpHeader := telemetry.TraceParent(ctx)
	l, ok := telemetry.LinkTo(tpHeader)
	if !ok || l.SpanContext.SpanID() != span.SpanContext().SpanID() || l.SpanContext.TraceID() != span.SpanContext().TraceID() {
		t.Fatalf("traceparent %q links to %v", tpHeader, l.SpanContext)
	}
	if telemetry.TraceParent(context.Background()) != "" {
		t.Error("a context without a span has a traceparent")
	}
	if _, ok := telemetry.LinkTo("garbage"); ok {
		t.Error("garbage linked")
	}
}
