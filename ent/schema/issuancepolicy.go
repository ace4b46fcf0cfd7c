package schema

import (
	"time"

	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// IssuancePolicy is a tenant's rule about what a key acting for an issuer may
// do (SPEC §2). Only BUNDLE_EXPORT is enforced: it decides who may export.
type IssuancePolicy struct {
	ent.Schema
}

// Fields of the IssuancePolicy.
func (IssuancePolicy) Fields() []ent.Field {
	return []ent.Field{
		field.String("id").NotEmpty().Immutable().Comment("pol_ and random characters"),
		field.String("tenant_id").NotEmpty().Immutable(),
		field.String("name").NotEmpty(),
		field.Enum("kind").Values("BUNDLE_EXPORT", "MINT", "VERIFY"),
		field.Enum("effect").Values("allow", "deny"),
		field.String("issuer_match").Default("").Comment(`issuer id or name, exact or a path.Match glob; "" or "*" matches every key`),
		field.Strings("trust_tiers").Optional().Comment("TIER_1…TIER_3; empty matches every tier"),
		field.Bool("enabled").Default(true),
		field.Time("created_at").Default(time.Now).Immutable(),
		field.Time("updated_at").Default(time.Now),
	}
}

// Indexes of the IssuancePolicy.
func (IssuancePolicy) Indexes() []ent.Index {
	return []ent.Index{index.Fields("tenant_id", "name").Unique()}
}
