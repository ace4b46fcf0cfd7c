package schema

import (
	"time"

	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// Webhook is an HTTPS endpoint of a tenant that is told about events, with
// the secret its deliveries are signed with.
type Webhook struct {
	ent.Schema
}

// Fields of the Webhook.
func (Webhook) Fields() []ent.Field {
	return []ent.Field{
		field.String("id").NotEmpty().Immutable().Comment("wh_ and random characters"),
		field.String("tenant_id").NotEmpty().Immutable(),
		field.String("url").NotEmpty(),
		field.String("description").Default(""),
		field.Strings("events").Optional().Comment("event types delivered, e.g. export.completed"),
		field.Bool("enabled").Default(true),
		field.String("secret").Sensitive().NotEmpty().Immutable().
			Comment("HMAC key for signing deliveries; kept in clear because signing needs it, shown to the client only when created"),
		field.Time("created_at").Default(time.Now).Immutable(),
		field.Time("updated_at").Default(time.Now),
	}
}

// Indexes of the Webhook.
func (Webhook) Indexes() []ent.Index {
	return []ent.Index{index.Fields("tenant_id", "created_at")}
}
