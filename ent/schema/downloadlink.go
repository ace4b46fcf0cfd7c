package schema

import (
	"time"

	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// DownloadLink is a single-use URL to one export artifact, minted by a
// principal for a browser or an external auditor. Only the SHA-256 of its
// token is kept, so the table never holds a usable link.
type DownloadLink struct {
	ent.Schema
}

// Fields of the DownloadLink.
func (DownloadLink) Fields() []ent.Field {
	return []ent.Field{
		field.Int64("id"),
		field.String("token_hash").NotEmpty().Immutable().Unique().Comment("SHA-256 of the token, lowercase hex"),
		field.String("job_id").NotEmpty().Immutable(),
		field.String("tenant_id").NotEmpty().Immutable(),
		field.String("principal_id").NotEmpty().Immutable().Comment("who minted it; downloads through it are theirs"),
		field.String("key_id").Optional().Immutable().Comment("the API key that minted it: the link dies when that key is revoked or expires or its role loses the export permission; empty on links minted before it was recorded"),
		field.Time("created_at").Default(time.Now).Immutable(),
		field.Time("expires_at").Immutable(),
		field.Time("used_at").Optional().Nillable().Comment("set once, when the link is redeemed"),
	}
}

// Indexes of the DownloadLink.
func (DownloadLink) Indexes() []ent.Index {
	return []ent.Index{index.Fields("tenant_id", "job_id")}
}
