package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// AuditEvent is one append-only entry of a tenant's audit log.
type AuditEvent struct {
	ent.Schema
}

// Annotations of the AuditEvent.
func (AuditEvent) Annotations() []schema.Annotation {
	return []schema.Annotation{entsql.Annotation{Table: "audit_events"}}
}

// Fields of the AuditEvent.
func (AuditEvent) Fields() []ent.Field {
	return []ent.Field{
		field.Int64("id"),
		field.String("tenant_id").NotEmpty().Immutable(),
		field.Int64("sequence").Immutable().Comment("gap-free and increasing per tenant"),
		field.Time("occurred_at").Immutable().Comment("UTC, microseconds"),
		field.String("actor_id").Immutable(),
		field.String("actor_type").Immutable().Comment("user, service or operator"),
		field.String("action").NotEmpty().Immutable(),
		field.String("resource_type").Default("").Immutable(),
		field.String("resource_id").Default("").Immutable(),
		field.Enum("outcome").Values("success", "failure", "denied").Immutable(),
		field.Enum("category").Values("api", "access", "data").Immutable(),
		field.Bool("phi").Default(false).Immutable().Comment("touches protected health information"),
		field.String("ip").Default("").Immutable(),
		field.String("user_agent").Default("").Immutable(),
		field.String("request_id").Default("").Immutable(),
		field.JSON("metadata", map[string]any{}).Optional().Immutable(),
	}
}

// Indexes of the AuditEvent.
func (AuditEvent) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("tenant_id", "sequence").Unique(),
		// Reports read a period in (occurred_at, sequence) order.
		index.Fields("tenant_id", "occurred_at", "sequence"),
	}
}
