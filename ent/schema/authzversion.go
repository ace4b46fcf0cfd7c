package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
)

// AuthzVersion is a counter every change to keys, roles or policies bumps,
// in the same transaction. Each process polls it and reloads what it caches
// when it moved, so a change made anywhere is seen everywhere within seconds.
type AuthzVersion struct {
	ent.Schema
}

// Annotations of the AuthzVersion.
func (AuthzVersion) Annotations() []schema.Annotation {
	return []schema.Annotation{entsql.Annotation{Table: "authz_versions"}}
}

// Fields of the AuthzVersion: one row, id "global".
func (AuthzVersion) Fields() []ent.Field {
	return []ent.Field{
		field.String("id").NotEmpty().Immutable(),
		field.Int64("version").Default(0),
	}
}
