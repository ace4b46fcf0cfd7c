// Package telemetry wires exportd's OpenTelemetry traces and metrics (OTLP
// over HTTP when the standard OTEL_* variables name an endpoint, and a
// Prometheus registry of its own for /metrics), and the slog handler that
// stamps every log line with the trace, span and request ids.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// Config says where telemetry goes besides /metrics.
type Config struct {
	// ServiceVersion is reported as service.version.
	ServiceVersion string
	// SpanExporter, when set, receives every span synchronously; tests use
	// an in-memory exporter. OTLP is still added when configured.
	SpanExporter sdktrace.SpanExporter
	// Getenv reads the OTEL_* variables; os.Getenv when nil.
	Getenv func(string) string
}

// Telemetry is the process's tracer and meter providers, exportd's own
// instruments, and the Prometheus handler for /metrics.
type Telemetry struct {
	Tracer  trace.TracerProvider
	Meter   metric.MeterProvider
	Metrics *Metrics
	// Handler serves the Prometheus text format; nil for Nop.
	Handler http.Handler

	shutdown []func(context.Context) error
}

// Propagator returns the W3C trace-context propagator exportd speaks on the
// wire and stores on export jobs. It is passed explicitly, never set globally.
func Propagator() propagation.TextMapPropagator { return propagation.TraceContext{} }

// Nop returns telemetry that records nothing, for callers that were given none.
func Nop() *Telemetry {
	mp := metricnoop.NewMeterProvider()
	m, _ := NewMetrics(mp) // noop instruments cannot fail
	return &Telemetry{Tracer: tracenoop.NewTracerProvider(), Meter: mp, Metrics: m}
}

// New sets up tracing and metrics. Spans are always created (so log lines
// carry trace ids) but leave the process only through OTLP, when
// OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set, or
// through cfg.SpanExporter. Metrics are always served by Handler and are
// pushed over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_METRICS_ENDPOINT is set. The exporters read the other
// OTEL_EXPORTER_OTLP_* variables (headers, timeout, protocol) themselves.
func New(ctx context.Context, cfg Config) (*Telemetry, error) {
	getenv := cfg.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	attrs := []resource.Option{
		resource.WithFromEnv(), resource.WithTelemetrySDK(), resource.WithHost(),
		resource.WithAttributes(semconv.ServiceName("exportd")),
	}
	if cfg.ServiceVersion != "" {
		attrs = append(attrs, resource.WithAttributes(semconv.ServiceVersion(cfg.ServiceVersion)))
	}
	// Not merged with resource.Default(): its schema URL may differ from
	// semconv v1.43.0's and the merge would fail.
	res, err := resource.New(ctx, attrs...)
	if err != nil {
		return nil, fmt.Errorf("build telemetry resource: %w", err)
	}
	t := &Telemetry{}

	tpOpts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	if cfg.SpanExporter != nil {
		tpOpts = append(tpOpts, sdktrace.WithSyncer(cfg.SpanExporter))
	}
	if getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "" {
		exp, err := otlptracehttp.New(ctx)
		if err != nil {
			return nil, fmt.Errorf("start OTLP trace exporter: %w", err)
		}
		tpOpts = append(tpOpts, sdktrace.WithBatcher(exp))
	}
	tp := sdktrace.NewTracerProvider(tpOpts...)
	t.Tracer = tp
	t.shutdown = append(t.shutdown, tp.Shutdown)

	// A registry of our own: the global one would mix in whatever else
	// registers there, and tests run several servers in one process.
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	prom, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, fmt.Errorf("start Prometheus exporter: %w", err)
	}
	mpOpts := []sdkmetric.Option{sdkmetric.WithResource(res), sdkmetric.WithReader(prom)}
	if getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT") != "" {
		exp, err := otlpmetrichttp.New(ctx)
		if err != nil {
			_ = tp.Shutdown(ctx)
			return nil, fmt.Errorf("start OTLP metric exporter: %w", err)
		}
		mpOpts = append(mpOpts, sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp)))
	}
	mp := sdkmetric.NewMeterProvider(mpOpts...)
	t.Meter = mp
	t.shutdown = append(t.shutdown, mp.Shutdown)
	t.Handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	if t.Metrics, err = NewMetrics(mp); err != nil {
		_ = t.Shutdown(ctx)
		return nil, err
	}
	return t, nil
}

// Shutdown flushes and stops the exporters.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	var errs []error
	for _, f := range t.shutdown {
		errs = append(errs, f(ctx))
	}
	return errors.Join(errs...)
}

// TraceParent returns the W3C traceparent of the span in ctx, or "" when
// there is none.
func TraceParent(ctx context.Context) string {
	c := propagation.MapCarrier{}
	Propagator().Inject(ctx, c)
	return c.Get("traceparent")
}

// LinkTo returns a link to the span a stored traceparent names, or false
// when it names none.
func LinkTo(traceParent string) (trace.Link, bool) {
	if traceParent == "" {
		return trace.Link{}, false
	}
	ctx := Propagator().Extract(context.Background(), propagation.MapCarrier{"traceparent": traceParent})
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return trace.Link{}, false
	}
	return trace.Link{SpanContext: sc}, true
}
