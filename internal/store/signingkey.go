package store

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"

	"github.com/exportd/exportd/ent"
	"github.com/exportd/exportd/ent/signingkey"
	"github.com/exportd/exportd/internal/fault"
	"github.com/exportd/exportd/reports"
)

// SigningKeys returns every published key, the active one first.
func (s *Store) SigningKeys(ctx context.Context) (reports.KeySet, error) {
	ctx = System(ctx) // signing keys belong to the installation, not a tenant
	rows, err := s.client.SigningKey.Query().
		Order(signingkey.ByActive(), signingkey.ByCreatedAt()).
		All(ctx)
	if err != nil {
		return reports.KeySet{}, translate(err, "signing keys")
	}
	var ks reports.KeySet
	for i := len(rows) - 1; i >= 0; i-- { // active (true) sorts last
		r := rows[i]
		k := reports.SigningKey{ID: r.ID, Public: ed25519.PublicKey(r.PublicKey), CreatedAt: r.CreatedAt, Active: r.Active}
		if len(r.PrivateKey) == ed25519.SeedSize {
			k.Private = ed25519.NewKeyFromSeed(r.PrivateKey)
		}
		ks.Keys = append(ks.Keys, k)
	}
	return ks, nil
}

// EnsureSigningKey creates the first signing key when there is none. Replicas
// starting together race on the insert; the key id is the primary key, and a
// second active key is never created because the check and insert share one
// transaction serialised by a lock on the table.
func (s *Store) EnsureSigningKey(ctx context.Context) error {
	ctx = System(ctx) // signing keys belong to the installation, not a tenant
	return s.tx(ctx, func(tx *ent.Tx) error {
		if s.Dialect == "postgres" {
			if _, err := tx.ExecContext(ctx, "LOCK TABLE signing_keys IN EXCLUSIVE MODE"); err != nil {
				return fmt.Errorf("lock signing keys: %w", err)
			}
		}
		n, err := tx.SigningKey.Query().Where(signingkey.Active(true)).Count(ctx)
		if err != nil {
			return fmt.Errorf("count signing keys: %w", err)
		}
		if n > 0 {
			return nil
		}
		return createKey(ctx, tx, s)
	})
}

func createKey(ctx context.Context, tx *ent.Tx, s *Store) error {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("generate signing key: %w", err)
	}
	return tx.SigningKey.Create().
		SetID(reports.KeyID(pub)).
		SetPublicKey(pub).
		SetPrivateKey(priv.Seed()).
		SetActive(true).
		SetCreatedAt(micro(s.now())).
		Exec(ctx)
}

// RotateSigningKey makes a new key active; the old ones stay published, as
// retired, so manifests they signed still verify.
func (s *Store) RotateSigningKey(ctx context.Context) (string, error) {
	ctx = System(ctx) // signing keys belong to the installation, not a tenant
	var id string
	err := s.tx(ctx, func(tx *ent.Tx) error {
		if s.Dialect == "postgres" {
			if _, err := tx.ExecContext(ctx, "LOCK TABLE signing_keys IN EXCLUSIVE MODE"); err != nil {
				return fmt.Errorf("lock signing keys: %w", err)
			}
		}
		if err := tx.SigningKey.Update().Where(signingkey.Active(true)).
			SetActive(false).SetRetiredAt(micro(s.now())).Exec(ctx); err != nil {
			return fmt.Errorf("retire signing key: %w", err)
		}
		if err := createKey(ctx, tx, s); err != nil {
			return err
		}
		k, err := tx.SigningKey.Query().Where(signingkey.Active(true)).Only(ctx)
		if err != nil {
			return fmt.Errorf("read new signing key: %w", err)
		}
		id = k.ID
		return nil
	})
	return id, err
}

// RemoveSigningKey takes a retired key out of the published set: manifests
// it signed no longer verify. The active key cannot be removed.
func (s *Store) RemoveSigningKey(ctx context.Context, id string) error {
	ctx = System(ctx) // signing keys belong to the installation, not a tenant
	n, err := s.client.SigningKey.Delete().Where(signingkey.ID(id), signingkey.Active(false)).Exec(ctx)
	if err != nil {
		return translate(err, "signing key")
	}
	if n == 0 {
		return fault.New(fault.NotFound, "no retired signing key %s (the active key cannot be removed; rotate first)", id)
	}
	return nil
}
