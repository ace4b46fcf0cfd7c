// Package signing holds the Ed25519 key set that signs report manifests.
// Every replica uses the same keys: either one configured key (the same on
// every replica) or keys created once in the shared database, with rotation.
// Each process reloads the set periodically, so a rotation reaches all.
package signing

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"entgo.io/ent/dialect"

	"github.com/exportd/exportd/internal/store"
	"github.com/exportd/exportd/reports"
)

// Manager keeps the current key set.
type Manager struct {
	st         *store.Store
	configured *reports.SigningKey
	cur        atomic.Pointer[reports.KeySet]
	log        *slog.Logger
}

// New loads the key set. seed, when not empty, is the base64 Ed25519 seed of
// the configured signing key; otherwise the database's active key signs (and
// is created on first start).
func New(ctx context.Context, st *store.Store, seed string, log *slog.Logger) (*Manager, error) {
	m := &Manager{st: st, log: log}
	if seed != "" {
		raw, err := base64.StdEncoding.DecodeString(seed)
		if err != nil || len(raw) != ed25519.SeedSize {
			return nil, fmt.Errorf("signing key: want the base64 of a %d-byte Ed25519 seed", ed25519.SeedSize)
		}
		priv := ed25519.NewKeyFromSeed(raw)
		pub := priv.Public().(ed25519.PublicKey)
		m.configured = &reports.SigningKey{ID: reports.KeyID(pub), Public: pub, Private: priv, Active: true}
	} else {
		if err := st.EnsureSigningKey(ctx); err != nil {
			return nil, fmt.Errorf("ensure signing key: %w", err)
		}
		warnKeysInDatabase(ctx, st, log)
	}
	if err := m.Reload(ctx); err != nil {
		return nil, err
	}
	return m, nil
}

// warnKeysInDatabase says where the signing seed lives when it sits beside
// the evidence it vouches for: whoever can write that database can then
// forge a manifest that verifies. Local SQLite is a developer's default; a
// shared PostgreSQL is production, where the seed belongs in a file.
func warnKeysInDatabase(ctx context.Context, st *store.Store, log *slog.Logger) {
	if st.Dialect == dialect.Postgres {
		log.WarnContext(ctx, "manifest signing key is kept in the PostgreSQL database: anyone who can write that database can forge signed manifests; keep the seed outside it with --signing-key-file")
		return
	}
	log.InfoContext(ctx, "manifest signing key is kept in the SQLite database; production should use --signing-key-file")
}

// Reload reads the key set again.
func (m *Manager) Reload(ctx context.Context) error {
	ks, err := m.st.SigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("load signing keys: %w", err)
	}
	if m.configured != nil {
		// The configured key signs; keys in the database only verify.
		out := reports.KeySet{Keys: []reports.SigningKey{*m.configured}}
		for _, k := range ks.Keys {
			if k.ID != m.configured.ID {
				k.Active, k.Private = false, nil
				out.Keys = append(out.Keys, k)
			}
		}
		ks = out
	}
	if _, ok := ks.Signer(); !ok {
		return fmt.Errorf("load signing keys: no active signing key")
	}
	m.cur.Store(&ks)
	return nil
}

// Run reloads the key set every interval until ctx ends.
func (m *Manager) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := m.Reload(ctx); err != nil && ctx.Err() == nil {
				m.log.Error("reload signing keys", "err", err)
			}
		}
	}
}

// KeySet returns the current keys.
func (m *Manager) KeySet() reports.KeySet { return *m.cur.Load() }

// Sign signs a manifest with the active key.
func (m *Manager) Sign(mf *reports.Manifest) error { return m.cur.Load().Sign(mf) }
