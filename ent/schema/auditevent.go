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
		field.String("client_event_id").Optional().Nillable().Immutable().
			Comment("the writer's own id for the event; a retried batch carrying it is stored once"),
		field.String("hash").Default("").Immutable().
			Comment("hex SHA-256 over the previous event's hash and this event's canonical bytes (store.CanonicalEvent)"),
	}
}

// Indexes of the AuditEvent.
func (AuditEvent) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("tenant_id", "sequence").Unique(),
		// Retries are recognised by the writer's event id; NULLs never collide.
		index.Fields("tenant_id", "client_event_id").Unique(),
		// Reports read a period in (occurred_at, sequence) order.
		index.Fields("tenant_id", "occurred_at", "sequence"),
	}
}
