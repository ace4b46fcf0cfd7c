package schema

import (
	"time"

	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// WebhookDelivery is one notification to one endpoint, and its delivery log:
// attempts, the last answer, and when it was delivered. The unique index
// makes a job's event notify each endpoint once, however often the job ran.
type WebhookDelivery struct {
	ent.Schema
}

// Fields of the WebhookDelivery.
func (WebhookDelivery) Fields() []ent.Field {
	return []ent.Field{
		field.String("id").NotEmpty().Immutable().Comment("dlv_ and random characters"),
		field.String("tenant_id").NotEmpty().Immutable(),
		field.String("endpoint_id").NotEmpty().Immutable().Comment("the Webhook it goes to"),
		field.String("job_id").NotEmpty().Immutable(),
		field.String("event").NotEmpty().Immutable().Comment("export.completed or export.failed"),
		field.Bytes("payload").Immutable().Comment("the JSON body, fixed when queued"),
		field.Enum("status").Values("PENDING", "DELIVERED", "FAILED").Default("PENDING"),
		field.Int("attempts").Default(0),
		field.Time("next_attempt_at"),
		field.String("lease_owner").Default(""),
		field.Time("lease_until").Optional().Nillable(),
		field.Int("last_status_code").Default(0),
		field.String("last_error").Default(""),
		field.Time("created_at").Default(time.Now).Immutable(),
		field.Time("delivered_at").Optional().Nillable(),
	}
}

// Indexes of the WebhookDelivery.
func (WebhookDelivery) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("endpoint_id", "job_id", "event").Unique(),
		index.Fields("status", "next_attempt_at"),
		index.Fields("tenant_id", "created_at"),
	}
}
