package schema

import (
	"time"

	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// APIKey is a credential of one principal. Only the SHA-256 of its secret is
// stored; the key id (the public part) finds the row.
type APIKey struct {
	ent.Schema
}

// Fields of the APIKey.
func (APIKey) Fields() []ent.Field {
	return []ent.Field{
		field.String("id").NotEmpty().Immutable().Comment("the key id, public part of tl_live_<id>_<secret>"),
		field.String("tenant_id").NotEmpty().Immutable(),
		field.String("principal_id").NotEmpty().Immutable(),
		field.String("name").Default(""),
		field.String("role").NotEmpty(),
		field.String("issuer_id").Optional().Nillable().Comment("the issuer this key acts for, if any"),
		field.Bytes("secret_hash").Sensitive().Comment("SHA-256 of the secret"),
		field.Bool("live").Default(true).Comment("tl_live_ (true) or tl_test_ (false)"),
		field.Time("created_at").Default(time.Now).Immutable(),
		field.Time("last_used_at").Optional().Nillable(),
		field.Time("expires_at").Optional().Nillable(),
		field.Time("revoked_at").Optional().Nillable(),
	}
}

// Indexes of the APIKey.
func (APIKey) Indexes() []ent.Index {
	return []ent.Index{index.Fields("tenant_id")}
}
