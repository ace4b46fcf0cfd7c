package schema

import (
	"time"

	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// Principal is who acts inside a tenant: a user (by email) or a service.
type Principal struct {
	ent.Schema
}

// Fields of the Principal.
func (Principal) Fields() []ent.Field {
	return []ent.Field{
		field.String("id").NotEmpty().Immutable(),
		field.String("tenant_id").NotEmpty().Immutable(),
		field.Enum("kind").Values("user", "service").Default("user"),
		field.String("name").NotEmpty().Comment("email for users, name for services"),
		field.Time("created_at").Default(time.Now).Immutable(),
	}
}

// Indexes of the Principal.
func (Principal) Indexes() []ent.Index {
	return []ent.Index{index.Fields("tenant_id", "name").Unique()}
}
