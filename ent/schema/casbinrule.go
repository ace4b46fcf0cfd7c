package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// CasbinRule is one line of the Casbin policy (a permission of a custom role,
// or a role inheritance), persisted by authz's adapter. The tenant column
// holds the rule's domain so that loading can be filtered by tenant and the
// data layer can scope it like every other tenant row.
type CasbinRule struct {
	ent.Schema
}

// Annotations of the CasbinRule.
func (CasbinRule) Annotations() []schema.Annotation {
	return []schema.Annotation{entsql.Annotation{Table: "casbin_rules"}}
}

// Fields of the CasbinRule.
func (CasbinRule) Fields() []ent.Field {
	return []ent.Field{
		field.String("tenant_id").NotEmpty().Immutable().Comment("the rule's domain"),
		field.String("ptype").NotEmpty().Immutable().Comment("p or g"),
		field.String("v0").Default("").Immutable(),
		field.String("v1").Default("").Immutable(),
		field.String("v2").Default("").Immutable(),
		field.String("v3").Default("").Immutable(),
		field.String("v4").Default("").Immutable(),
		field.String("v5").Default("").Immutable(),
	}
}

// Indexes of the CasbinRule: a rule exists once.
func (CasbinRule) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("ptype", "v0", "v1", "v2", "v3", "v4", "v5").Unique(),
		index.Fields("tenant_id"),
	}
}
