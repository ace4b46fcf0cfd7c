package telemetry

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Metrics are exportd's own instruments; RPC metrics come from otelconnect
// and database metrics from otelsql. No instrument carries a tenant id: that
// would leak tenants into a shared endpoint and explode cardinality.
type Metrics struct {
	meter metric.Meter

	// JobDuration is how long a job took from claim to commit, by report
	// type, format and outcome.
	JobDuration metric.Float64Histogram
	// JobRowsPerSecond is each finished job's throughput.
	JobRowsPerSecond metric.Float64Histogram
	// JobsFinished counts jobs ending, by status (COMPLETED or FAILED).
	JobsFinished metric.Int64Counter
	// DownloadBytes counts artifact bytes sent, by protocol.
	DownloadBytes metric.Int64Counter
	// AuthDenials counts refused calls, by reason (missing, invalid,
	// expired or revoked key; compliance_pack; permission; policy).
	AuthDenials metric.Int64Counter
}

// NewMetrics creates the instruments on mp.
func NewMetrics(mp metric.MeterProvider) (*Metrics, error) {
	m := &Metrics{meter: mp.Meter("github.com/exportd/exportd")}
	var err error
	if m.JobDuration, err = m.meter.Float64Histogram("exportd.job.duration", metric.WithUnit("s"),
		metric.WithDescription("Time from claiming an export job to committing or failing it."),
		metric.WithExplicitBucketBoundaries(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)); err != nil {
		return nil, fmt.Errorf("create job duration histogram: %w", err)
	}
	if m.JobRowsPerSecond, err = m.meter.Float64Histogram("exportd.job.rows", metric.WithUnit("{row}/s"),
		metric.WithDescription("Rows written per second by each completed export job."),
		metric.WithExplicitBucketBoundaries(100, 1e3, 1e4, 5e4, 1e5, 2.5e5, 5e5, 1e6, 2.5e6)); err != nil {
		return nil, fmt.Errorf("create rows per second histogram: %w", err)
	}
	if m.JobsFinished, err = m.meter.Int64Counter("exportd.jobs.finished", metric.WithUnit("{job}"),
		metric.WithDescription("Export jobs that reached a terminal status in this process.")); err != nil {
		return nil, fmt.Errorf("create jobs finished counter: %w", err)
	}
	if m.DownloadBytes, err = m.meter.Int64Counter("exportd.download.bytes", metric.WithUnit("By"),
		metric.WithDescription("Artifact bytes sent to clients.")); err != nil {
		return nil, fmt.Errorf("create download bytes counter: %w", err)
	}
	if m.AuthDenials, err = m.meter.Int64Counter("exportd.auth.denials", metric.WithUnit("{request}"),
		metric.WithDescription("Calls refused by authentication, the Compliance Pack gate, permissions or policies.")); err != nil {
		return nil, fmt.Errorf("create auth denials counter: %w", err)
	}
	return m, nil
}

// Deny counts one refused call.
func (m *Metrics) Deny(ctx context.Context, reason string) {
	m.AuthDenials.Add(ctx, 1, metric.WithAttributes(attribute.String("reason", reason)))
}

// JobCounter reports how many export jobs exist per status, across tenants.
type JobCounter func(ctx context.Context) (map[string]int64, error)

// ObserveJobs publishes exportd.jobs (jobs by status) and
// exportd.jobs.queue_depth (PENDING jobs), read from count at each collection
// so that every replica reports the shared queue.
func (m *Metrics) ObserveJobs(count JobCounter, statuses ...string) error {
	byStatus, err := m.meter.Int64ObservableGauge("exportd.jobs", metric.WithUnit("{job}"),
		metric.WithDescription("Export jobs in the database, by status."))
	if err != nil {
		return fmt.Errorf("create jobs gauge: %w", err)
	}
	depth, err := m.meter.Int64ObservableGauge("exportd.jobs.queue_depth", metric.WithUnit("{job}"),
		metric.WithDescription("Export jobs waiting for a worker (PENDING)."))
	if err != nil {
		return fmt.Errorf("create queue depth gauge: %w", err)
	}
	_, err = m.meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		counts, err := count(ctx)
		if err != nil {
			return fmt.Errorf("count jobs: %w", err)
		}
		// Report every status, zeros included, so series do not vanish.
		for _, st := range statuses {
			o.ObserveInt64(byStatus, counts[st], metric.WithAttributes(attribute.String("status", st)))
		}
		o.ObserveInt64(depth, counts["PENDING"])
		return nil
	}, byStatus, depth)
	if err != nil {
		return fmt.Errorf("register jobs callback: %w", err)
	}
	return nil
}
