package schema

import (
	"time"

	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// DownloadRecord is one download of an export artifact, kept for the record.
type DownloadRecord struct {
	ent.Schema
}

// Fields of the DownloadRecord.
func (DownloadRecord) Fields() []ent.Field {
	return []ent.Field{
		field.Int64("id"),
		field.String("job_id").NotEmpty().Immutable(),
		field.String("tenant_id").NotEmpty().Immutable(),
		field.String("principal_id").NotEmpty().Immutable(),
		field.String("client_ip").Default(""),
		field.String("user_agent").Default(""),
		field.Time("created_at").Default(time.Now).Immutable(),
		field.Int64("start_offset").Default(0),
		field.Int64("bytes_sent").Default(0),
		field.Enum("protocol").Values("connect", "grpc", "grpc-web", "rest", "link"),
		field.Bool("completed").Default(false),
	}
}

// Indexes of the DownloadRecord.
func (DownloadRecord) Indexes() []ent.Index {
	return []ent.Index{index.Fields("tenant_id", "job_id", "created_at")}
}
