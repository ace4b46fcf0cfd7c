package store

import "github.com/exportd/exportd/ent"

// EntClient is the ent client under the store, for the package's external
// tests that check what ent itself enforces (tenant isolation).
func (s *Store) EntClient() *ent.Client { return s.client }
