package schema

import (
	"time"

	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// ExportJob is one requested report. The table is also the work queue: a
// worker claims a PENDING row by taking its lease.
type ExportJob struct {
	ent.Schema
}

// Fields of the ExportJob.
func (ExportJob) Fields() []ent.Field {
	return []ent.Field{
		field.String("id").NotEmpty().Immutable().Comment("job_ and random characters"),
		field.String("tenant_id").NotEmpty().Immutable(),
		field.String("requested_by").NotEmpty().Immutable().Comment("principal id"),
		field.String("requested_by_name").Default("").Immutable(),
		field.String("report_type").NotEmpty().Immutable(),
		field.String("format").NotEmpty().Immutable(),
		field.Time("period_start").Immutable().Comment("as requested"),
		field.Time("period_end").Immutable().Comment("as requested, inclusive"),
		field.Time("applied_start").Immutable().Comment("half-open [applied_start, applied_end) read from the log"),
		field.Time("applied_end").Immutable(),
		field.Enum("status").Values("PENDING", "RUNNING", "COMPLETED", "FAILED", "EXPIRED").Default("PENDING"),
		field.String("error").Default(""),
		field.Int64("rows_done").Default(0),
		field.Int64("rows_total").Default(0),
		field.Time("estimated_completion").Optional().Nillable(),
		field.Time("created_at").Default(time.Now).Immutable(),
		field.Time("started_at").Optional().Nillable(),
		field.Time("completed_at").Optional().Nillable(),
		field.Time("expires_at").Optional().Nillable(),
		field.Int("attempt").Default(0).Comment("starts: each claim of the job, including takeovers of a lapsed lease"),
		field.Int("failures").Default(0).Comment("attempts that ended in an error; the retry decision counts these, not starts, so a worker that died costs no attempt"),
		field.String("lease_owner").Default(""),
		field.Time("lease_until").Optional().Nillable(),
		field.String("idempotency_key").Optional().Nillable(),
		field.String("request_hash").Default("").Comment("SHA-256 of the request, to tell an idempotent retry from a conflicting one"),
		field.String("policy_decision").Default(""),
		field.String("artifact_key").Default(""),
		field.Int64("artifact_size").Default(0),
		field.String("artifact_sha256").Default(""),
		field.Bytes("manifest").Optional().Comment("signed manifest JSON"),
		field.String("trace_parent").Default("").Immutable().Comment("W3C traceparent of the creating request; the worker's spans link to it"),
		field.Int("max_attempts").Default(5).Comment("failed attempts before the job is FAILED"),
		field.Time("next_attempt_at").Optional().Nillable().Comment("a PENDING job waiting to be retried is not claimed before this"),
		field.String("completed_by").Default("").Comment("lease owner of the attempt that committed the artifact"),
	}
}

// Indexes of the ExportJob.
func (ExportJob) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("tenant_id", "created_at"),
		index.Fields("status", "created_at"),
		index.Fields("tenant_id", "idempotency_key").Unique(),
		// The claim counts a tenant's live RUNNING jobs against its limit.
		index.Fields("tenant_id", "status", "lease_until"),
	}
}
