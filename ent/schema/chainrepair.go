package schema

import (
	"time"

	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// ChainRepair records why one stored event does not re-hash from what the
// database holds, and the bytes that do reproduce its stored hash: the
// evidence an operator's `exportd chain repair` found and kept. VerifyChain
// accepts the event only when those bytes hash to the stored hash, so a
// repair cannot hide a change to an event.
type ChainRepair struct {
	ent.Schema
}

// Fields of the ChainRepair.
func (ChainRepair) Fields() []ent.Field {
	return []ent.Field{
		field.Int64("id"),
		field.String("tenant_id").NotEmpty().Immutable(),
		field.Int64("sequence").Immutable(),
		// stored_hash is the event's hash as written, unchanged.
		field.String("stored_hash").Immutable(),
		// hashed_metadata is the canonical metadata the stored hash covers.
		field.Text("hashed_metadata").Immutable(),
		// stored_metadata is the canonical metadata the database gives back.
		field.Text("stored_metadata").Immutable(),
		field.String("reason").Immutable(),
		field.String("repaired_by").Immutable(),
		field.Time("created_at").Default(time.Now).Immutable(),
	}
}

// Indexes of the ChainRepair.
func (ChainRepair) Indexes() []ent.Index {
	return []ent.Index{index.Fields("tenant_id", "sequence").Unique()}
}
