package store

import (
	"context"
	"time"

	"github.com/exportd/exportd/authz"
	"github.com/exportd/exportd/ent"
	"github.com/exportd/exportd/internal/apikey"
	"github.com/exportd/exportd/internal/fault"
)

// NewKey describes a key to mint.
type NewKey struct {
	TenantID  string
	Role      string
	Principal string // email or service name; "" means "operator"
	Name      string
	IssuerID  string
	ExpiresAt *time.Time
}

// CreateAPIKey mints a key and stores only the hash of its secret. The
// returned key is the only time the secret exists outside the client.
func (s *Store) CreateAPIKey(ctx context.Context, nk NewKey) (apikey.Key, *ent.APIKey, error) {
	t, err := s.requireTenant(ctx, nk.TenantID)
	if err != nil {
		return apikey.Key{}, nil, err
	}
	if !authz.IsBuiltinRole(nk.Role) {
		return apikey.Key{}, nil, fault.Invalid(fault.Violation{Field: "role", Rule: "role.known",
			Message: "unknown role " + nk.Role + " (admin, auditor, viewer or ingester)"})
	}
	if nk.Principal == "" {
		nk.Principal = "operator"
	}
	p, err := s.EnsurePrincipal(ctx, t.ID, nk.Principal)
	if err != nil {
		return apikey.Key{}, nil, err
	}
	k := apikey.New(!t.Sandbox)
	c := s.Ent.APIKey.Create().
		SetID(k.ID).
		SetTenantID(t.ID).
		SetPrincipalID(p.ID).
		SetName(nk.Name).
		SetRole(nk.Role).
		SetSecretHash(apikey.Hash(k.Secret)).
		SetLive(k.Live).
		SetCreatedAt(s.now()).
		SetNillableExpiresAt(nk.ExpiresAt)
	if nk.IssuerID != "" {
		c.SetIssuerID(nk.IssuerID)
	}
	row, err := c.Save(ctx)
	if err != nil {
		return apikey.Key{}, nil, translate(err, "api key")
	}
	return k, row, nil
}

// Auth failure reasons: the server logs them; the client sees one message.
const (
	AuthMissing   = "missing"
	AuthMalformed = "malformed"
	AuthUnknown   = "unknown"
	AuthWrong     = "wrong_secret"
	AuthRevoked   = "revoked"
	AuthExpired   = "expired"
)

// AuthError says why a key was refused, and which tenant it named if the key
// id was real (so the refusal can go into that tenant's log).
type AuthError struct {
	Reason   string
	TenantID string
	KeyID    string
}

func (e *AuthError) Error() string { return "api key " + e.Reason }

// Authenticate resolves a raw X-API-Key value to its caller.
func (s *Store) Authenticate(ctx context.Context, raw string) (*authz.Caller, error) {
	if raw == "" {
		return nil, &AuthError{Reason: AuthMissing}
	}
	k, err := apikey.Parse(raw)
	if err != nil {
		return nil, &AuthError{Reason: AuthMalformed}
	}
	row, err := s.Ent.APIKey.Get(ctx, k.ID)
	if ent.IsNotFound(err) {
		// Hash anyway so that unknown ids and wrong secrets take equal time.
		apikey.Matches(k.Secret, make([]byte, 32))
		return nil, &AuthError{Reason: AuthUnknown}
	}
	if err != nil {
		return nil, translate(err, "api key")
	}
	if !apikey.Matches(k.Secret, row.SecretHash) || row.Live != k.Live {
		return nil, &AuthError{Reason: AuthWrong, TenantID: row.TenantID, KeyID: row.ID}
	}
	now := s.now()
	if row.RevokedAt != nil {
		return nil, &AuthError{Reason: AuthRevoked, TenantID: row.TenantID, KeyID: row.ID}
	}
	if row.ExpiresAt != nil && !now.Before(*row.ExpiresAt) {
		return nil, &AuthError{Reason: AuthExpired, TenantID: row.TenantID, KeyID: row.ID}
	}
	t, err := s.Tenant(ctx, row.TenantID)
	if err != nil {
		return nil, err
	}
	p, err := s.Ent.Principal.Get(ctx, row.PrincipalID)
	if err != nil {
		return nil, translate(err, "principal")
	}
	c := &authz.Caller{
		TenantID:       t.ID,
		TenantName:     t.Name,
		PrincipalID:    p.ID,
		PrincipalName:  p.Name,
		Role:           row.Role,
		KeyID:          row.ID,
		CompliancePack: t.CompliancePack,
	}
	if row.IssuerID != nil {
		c.IssuerID = *row.IssuerID
	}
	return c, nil
}
