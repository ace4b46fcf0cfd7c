package schema

import (
	"time"

	"entgo.io/ent"
	"entgo.io/ent/schema/field"
)

// Tenant is one customer: its add-ons, retention policy and the counter that
// hands out gap-free audit event sequences.
type Tenant struct {
	ent.Schema
}

// Fields of the Tenant.
func (Tenant) Fields() []ent.Field {
	return []ent.Field{
		field.String("id").NotEmpty().Immutable(),
		field.String("name").NotEmpty(),
		field.Bool("sandbox").Default(false).Comment("true for tenants whose keys are tl_test_ keys"),
		field.Bool("compliance_pack").Default(false).Comment("the Compliance Pack add-on gates creating exports"),
		field.Int("audit_retention_days").Default(365),
		field.Int("download_window_days").Default(7).Comment("how long a completed export stays downloadable"),
		field.JSON("gdpr_profile", map[string]any{}).Optional(),
		field.JSON("hipaa_profile", map[string]any{}).Optional(),
		field.Int64("event_seq").Default(0).Comment("last audit event sequence handed out; bumped in the inserting transaction so sequences stay gap-free"),
		field.String("chain_head").Default("").Comment("hex hash of the event at event_seq: the head of the audit hash chain, updated with event_seq"),
		field.Int64("chain_base_seq").Default(0).Comment("last sequence removed by retention; the chain continues from chain_base_hash"),
		field.String("chain_base_hash").Default("").Comment("hex hash of the event at chain_base_seq (empty: the genesis, 32 zero bytes)"),
		field.Time("created_at").Default(time.Now).Immutable(),
	}
}
