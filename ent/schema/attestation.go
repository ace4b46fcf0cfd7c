package schema

import (
	"time"

	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// AttestationRecord is an attestation a tenant's issuer minted, with its
// lifecycle (active, revoked, superseded).
type AttestationRecord struct {
	ent.Schema
}

// Fields of the AttestationRecord.
func (AttestationRecord) Fields() []ent.Field {
	return []ent.Field{
		field.String("id").NotEmpty().Immutable().Comment("internal key, random; never shown to clients"),
		field.String("tenant_id").NotEmpty().Immutable(),
		field.String("attestation_id").NotEmpty().Immutable().
			Comment("the minting system's id, unique within the tenant only: a global key would tell one tenant which ids another holds"),
		field.String("issuer_id").NotEmpty(),
		field.String("subject").NotEmpty(),
		field.String("schema").NotEmpty().Comment("schema or type of the attestation"),
		field.Enum("status").Values("ACTIVE", "REVOKED", "SUPERSEDED").Default("ACTIVE"),
		field.Strings("data_categories").Optional(),
		field.String("legal_basis").Default(""),
		field.Time("created_at").Default(time.Now).Immutable(),
		field.Time("revoked_at").Optional().Nillable(),
		field.String("superseded_by").Optional().Nillable().Comment("attestation_id of the replacement"),
		field.Time("superseded_at").Optional().Nillable(),
	}
}

// Indexes of the AttestationRecord.
func (AttestationRecord) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("tenant_id", "created_at"),
		index.Fields("tenant_id", "attestation_id").Unique(),
	}
}
