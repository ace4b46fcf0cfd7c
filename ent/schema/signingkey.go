package schema

import (
	"time"

	"entgo.io/ent"
	"entgo.io/ent/schema/field"
)

// SigningKey is an Ed25519 key that signs report manifests. All replicas
// share the keys in this table; one is active, retired ones still verify.
type SigningKey struct {
	ent.Schema
}

// Fields of the SigningKey.
func (SigningKey) Fields() []ent.Field {
	return []ent.Field{
		field.String("id").NotEmpty().Immutable().Comment("derived from the public key"),
		field.Bytes("public_key").Immutable(),
		field.Bytes("private_key").Optional().Sensitive().Comment("Ed25519 seed; empty for keys configured outside the database"),
		field.Bool("active").Default(false),
		field.Time("created_at").Default(time.Now).Immutable(),
		field.Time("retired_at").Optional().Nillable(),
	}
}
