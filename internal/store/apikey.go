package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	entsql "entgo.io/ent/dialect/sql"

	"github.com/exportd/exportd/authz"
	"github.com/exportd/exportd/ent"
	entkey "github.com/exportd/exportd/ent/apikey"
	"github.com/exportd/exportd/ent/casbinrule"
	"github.com/exportd/exportd/ent/principal"
	"github.com/exportd/exportd/internal/apikey"
	"github.com/exportd/exportd/internal/fault"
	"github.com/exportd/exportd/internal/tenancy"
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

// APIKey is an API key as listed; the hash of its secret stays in the store.
type APIKey struct {
	ID          string
	TenantID    string
	PrincipalID string
	Name        string
	Role        string
	IssuerID    *string // the issuer the key acts for, if any
	Live        bool
	CreatedAt   time.Time
	LastUsedAt  *time.Time
	ExpiresAt   *time.Time
	RevokedAt   *time.Time
}

func apiKeyFromEnt(k *ent.APIKey) *APIKey {
	if k == nil {
		return nil
	}
	return &APIKey{ID: k.ID, TenantID: k.TenantID, PrincipalID: k.PrincipalID, Name: k.Name, Role: k.Role,
		IssuerID: k.IssuerID, Live: k.Live, CreatedAt: k.CreatedAt, LastUsedAt: k.LastUsedAt, ExpiresAt: k.ExpiresAt,
		RevokedAt: k.RevokedAt}
}

// CreateAPIKey mints a key and stores only the hash of its secret. The
// returned key is the only time the secret exists outside the client.
func (s *Store) CreateAPIKey(ctx context.Context, nk NewKey) (apikey.Key, *APIKey, error) {
	t, err := s.requireTenant(ctx, nk.TenantID)
	if err != nil {
		return apikey.Key{}, nil, err
	}
	ctx = scoped(ctx, t.ID)
	if !authz.IsBuiltinRole(nk.Role) {
		n, err := s.client.CasbinRule.Query().Where(casbinrule.Ptype("p"), casbinrule.V0(nk.Role), casbinrule.V1(t.ID)).Count(ctx)
		if err != nil {
			return apikey.Key{}, nil, translate(err, "role")
		}
		if n == 0 {
			return apikey.Key{}, nil, fault.Invalid(fault.Violation{Field: "role", Number: 2, Rule: "role.known",
				Message: "unknown role " + fault.Echo(nk.Role) + " (admin, auditor, viewer, ingester or a custom role of the tenant)"})
		}
	}
	if nk.IssuerID != "" {
		if _, err := s.Issuer(ctx, t.ID, nk.IssuerID); err != nil {
			return apikey.Key{}, nil, fault.Invalid(fault.Violation{Field: "issuer_id", Number: 4, Rule: "issuer.known",
				Message: "no issuer " + fault.Echo(nk.IssuerID) + " in this tenant"})
		}
	}
	if nk.ExpiresAt != nil && !nk.ExpiresAt.After(s.now()) {
		return apikey.Key{}, nil, fault.Invalid(fault.Violation{Field: "expire_time", Number: 5, Rule: "expire_time.future",
			Message: "must be in the future"})
	}
	if nk.Principal == "" {
		nk.Principal = "operator"
	}
	p, err := s.EnsurePrincipal(ctx, t.ID, nk.Principal)
	if err != nil {
		return apikey.Key{}, nil, err
	}
	k := apikey.New(!t.Sandbox)
	var issuer *string
	if nk.IssuerID != "" {
		issuer = &nk.IssuerID
	}
	var row *ent.APIKey
	err = s.tx(ctx, func(tx *ent.Tx) error {
		var err error
		if row, err = tx.APIKey.Create().SetID(k.ID).
			SetTenantID(t.ID).
			SetPrincipalID(p.ID).
			SetName(nk.Name).
			SetRole(nk.Role).
			SetSecretHash(apikey.Hash(k.Secret)).
			SetLive(k.Live).
			SetCreatedAt(micro(s.now())).
			SetNillableExpiresAt(nk.ExpiresAt).
			SetNillableIssuerID(issuer).
			Save(ctx); err != nil {
			return translate(err, "api key")
		}
		_, err = bumpAuthzVersion(ctx, tx.Client())
		return err
	})
	if err != nil {
		return apikey.Key{}, nil, err
	}
	return k, apiKeyFromEnt(row), nil
}

// KeyInfo is a key as listed: never its secret.
type KeyInfo struct {
	*APIKey
	Principal string
}

// APIKeys lists a tenant's keys, newest first.
func (s *Store) APIKeys(ctx context.Context, tenantID string) ([]KeyInfo, error) {
	ctx = scoped(ctx, tenantID)
	rows, err := s.client.APIKey.Query().Where(entkey.TenantID(tenantID)).
		Order(entkey.ByCreatedAt(entsql.OrderDesc()), entkey.ByID()).All(ctx)
	if err != nil {
		return nil, translate(err, "api keys")
	}
	names, err := s.principalNames(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	out := make([]KeyInfo, 0, len(rows))
	for _, r := range rows {
		out = append(out, KeyInfo{APIKey: apiKeyFromEnt(r), Principal: names[r.PrincipalID]})
	}
	return out, nil
}

func (s *Store) principalNames(ctx context.Context, tenantID string) (map[string]string, error) {
	ps, err := s.client.Principal.Query().Where(principal.TenantID(tenantID)).All(ctx)
	if err != nil {
		return nil, translate(err, "principals")
	}
	m := make(map[string]string, len(ps))
	for _, p := range ps {
		m[p.ID] = p.Name
	}
	return m, nil
}

// KeyNotFound is the one answer for a missing or foreign key id.
func KeyNotFound(id string) error {
	return fault.New(fault.NotFound, "API key %s not found", fault.Echo(id))
}

// RevokeAPIKey stops a key of the tenant from working. Revoking a revoked key
// changes nothing. Authenticate reads the key row on every call, so the
// revocation applies in every process at once.
func (s *Store) RevokeAPIKey(ctx context.Context, tenantID, keyID string) (KeyInfo, error) {
	ctx = scoped(ctx, tenantID)
	err := s.tx(ctx, func(tx *ent.Tx) error {
		row, err := tx.APIKey.Query().Where(entkey.ID(keyID), entkey.TenantID(tenantID)).Only(ctx)
		if ent.IsNotFound(err) {
			return KeyNotFound(keyID)
		}
		if err != nil {
			return translate(err, "api key")
		}
		if row.RevokedAt != nil {
			return nil
		}
		if err := tx.APIKey.UpdateOne(row).SetRevokedAt(micro(s.now())).Exec(ctx); err != nil {
			return translate(err, "api key")
		}
		_, err = bumpAuthzVersion(ctx, tx.Client())
		return err
	})
	if err != nil {
		return KeyInfo{}, err
	}
	row, err := s.client.APIKey.Get(ctx, keyID)
	if err != nil {
		return KeyInfo{}, translate(err, "api key")
	}
	p, err := s.client.Principal.Get(ctx, row.PrincipalID)
	if err != nil {
		return KeyInfo{}, translate(err, "principal")
	}
	return KeyInfo{APIKey: apiKeyFromEnt(row), Principal: p.Name}, nil
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

// lastUsedResolution bounds how often a key's last use is written: once a
// minute is precise enough for a list, and spares a write per request.
const lastUsedResolution = time.Minute

// authQuery reads a key with its tenant and principal in one statement:
// authentication runs on every request, and three lookups were three round
// trips (six with lib/pq, which prepares each parameterised query first).
// The principal must be of the key's tenant, as the tenant-scoped read it
// replaces required. Whether the tenant has an enabled BUNDLE_EXPORT policy
// comes along, so that exports of the (usual) tenant without one skip
// reading the policies.
const authQuery = "SELECT k.tenant_id, k.principal_id, k.role, k.issuer_id, k.secret_hash, k.live, k.last_used_at, k.expires_at, k.revoked_at, " +
	"t.id, t.name, t.compliance_pack, p.id, p.name, " +
	"EXISTS (SELECT 1 FROM issuance_policies ip WHERE ip.tenant_id = k.tenant_id AND ip.kind = 'BUNDLE_EXPORT' AND ip.enabled) " +
	"FROM api_keys k LEFT JOIN tenants t ON t.id = k.tenant_id " +
	"LEFT JOIN principals p ON p.id = k.principal_id AND p.tenant_id = k.tenant_id " +
	"WHERE k.id = "

// Authenticate resolves a raw X-API-Key value to its caller.
func (s *Store) Authenticate(ctx context.Context, raw string) (*authz.Caller, error) {
	if raw == "" {
		return nil, &AuthError{Reason: AuthMissing}
	}
	k, err := apikey.Parse(raw)
	if err != nil {
		return nil, &AuthError{Reason: AuthMalformed}
	}
	// The key id is all we know yet: the lookup is the one cross-tenant read
	// of the request.
	var (
		row                        ent.APIKey
		issuer                     sql.NullString
		lastUsed, expires, revoked sql.NullTime
		tenantID, tenantName       sql.NullString
		pack                       sql.NullBool
		principalID, principalName sql.NullString
		policies                   bool
	)
	err = s.db.QueryRowContext(ctx, authQuery+s.ph(1), k.ID).Scan(&row.TenantID, &row.PrincipalID, &row.Role, &issuer,
		&row.SecretHash, &row.Live, &lastUsed, &expires, &revoked, &tenantID, &tenantName, &pack, &principalID, &principalName, &policies)
	if errors.Is(err, sql.ErrNoRows) {
		// Hash anyway so that unknown ids and wrong secrets take equal time.
		apikey.Matches(k.Secret, make([]byte, 32))
		return nil, &AuthError{Reason: AuthUnknown}
	}
	if err != nil {
		return nil, fmt.Errorf("look up api key: %w", err)
	}
	row.ID = k.ID
	if !apikey.Matches(k.Secret, row.SecretHash) || row.Live != k.Live {
		return nil, &AuthError{Reason: AuthWrong, TenantID: row.TenantID, KeyID: row.ID}
	}
	now := s.now()
	if revoked.Valid {
		return nil, &AuthError{Reason: AuthRevoked, TenantID: row.TenantID, KeyID: row.ID}
	}
	if expires.Valid && !now.Before(expires.Time) {
		return nil, &AuthError{Reason: AuthExpired, TenantID: row.TenantID, KeyID: row.ID}
	}
	if !tenantID.Valid {
		return nil, fault.New(fault.NotFound, "tenant %s not found", row.TenantID)
	}
	ctx = tenancy.WithTenant(ctx, row.TenantID)
	if !lastUsed.Valid || now.Sub(lastUsed.Time) > lastUsedResolution {
		// Best effort: a lost update only makes "last used" a little older.
		_ = s.client.APIKey.UpdateOneID(row.ID).SetLastUsedAt(micro(now)).Exec(ctx)
	}
	if !principalID.Valid {
		return nil, fault.New(fault.NotFound, "principal not found")
	}
	t := ent.Tenant{ID: tenantID.String, Name: tenantName.String, CompliancePack: pack.Bool}
	p := ent.Principal{ID: principalID.String, Name: principalName.String}
	if issuer.Valid {
		row.IssuerID = &issuer.String
	}
	c := &authz.Caller{
		TenantID:       t.ID,
		TenantName:     t.Name,
		PrincipalID:    p.ID,
		PrincipalName:  p.Name,
		Role:           row.Role,
		KeyID:          row.ID,
		CompliancePack: t.CompliancePack,
		// Read in the same statement as the key: a policy enabled after it
		// applies from the next request on, as it did when the gate read
		// the policies a moment later in a statement of its own.
		NoExportPolicies: !policies,
	}
	if row.IssuerID != nil {
		c.IssuerID = *row.IssuerID
	}
	return c, nil
}

// APIKey returns one of the tenant's keys, revoked and expired ones too.
func (s *Store) APIKey(ctx context.Context, tenantID, keyID string) (*APIKey, error) {
	ctx = scoped(ctx, tenantID)
	k, err := s.client.APIKey.Query().Where(entkey.ID(keyID), entkey.TenantID(tenantID)).Only(ctx)
	return apiKeyFromEnt(k), translate(err, "api key "+keyID)
}

// SetAPIKeyExpiry moves the expiry of one of the tenant's keys to at, past
// times included, for tests and operators; keys are otherwise given their
// expiry when minted. Authenticate reads the row on every call, so the change
// applies at once.
func (s *Store) SetAPIKeyExpiry(ctx context.Context, tenantID, keyID string, at time.Time) error {
	ctx = scoped(ctx, tenantID)
	n, err := s.client.APIKey.Update().Where(entkey.ID(keyID), entkey.TenantID(tenantID)).SetExpiresAt(at).Save(ctx)
	if err != nil {
		return translate(err, "api key")
	}
	if n == 0 {
		return KeyNotFound(keyID)
	}
	return nil
}
