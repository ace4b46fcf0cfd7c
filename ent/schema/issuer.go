package schema

import (
	"time"

	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// Issuer is an attestation issuer inside a tenant, with a trust tier that
// BUNDLE_EXPORT policies can match.
type Issuer struct {
	ent.Schema
}

// Fields of the Issuer.
func (Issuer) Fields() []ent.Field {
	return []ent.Field{
		field.String("id").NotEmpty().Immutable(),
		field.String("tenant_id").NotEmpty().Immutable(),
		field.String("name").NotEmpty(),
		field.String("uri").Default("").Comment("DID or URI"),
		field.Enum("trust_tier").Values("TIER_1", "TIER_2", "TIER_3").Default("TIER_3"),
		field.Time("created_at").Default(time.Now).Immutable(),
	}
}

// Indexes of the Issuer.
func (Issuer) Indexes() []ent.Index {
	return []ent.Index{index.Fields("tenant_id", "name").Unique()}
}
