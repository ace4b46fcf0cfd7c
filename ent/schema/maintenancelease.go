package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
)

// MaintenanceLease lets one replica at a time run a periodic task (the
// expiry and orphan sweepers): the replica that holds an unexpired lease on
// the task's name runs it.
type MaintenanceLease struct {
	ent.Schema
}

// Fields of the MaintenanceLease.
func (MaintenanceLease) Fields() []ent.Field {
	return []ent.Field{
		field.String("id").NotEmpty().Immutable().Comment("task name"),
		field.String("owner").Default(""),
		field.Time("lease_until"),
	}
}
