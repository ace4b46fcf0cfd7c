package store

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/exportd/exportd/authz"
	"github.com/exportd/exportd/ent"
	"github.com/exportd/exportd/ent/issuancepolicy"
	"github.com/exportd/exportd/ent/issuer"
	"github.com/exportd/exportd/internal/apikey"
	"github.com/exportd/exportd/internal/fault"
)

// NewPolicy describes an issuance policy to create.
type NewPolicy struct {
	TenantID    string
	Name        string
	Kind        string // BUNDLE_EXPORT, MINT or VERIFY
	Effect      string // allow or deny
	IssuerMatch string
	TrustTiers  []string
	Enabled     bool
}

// PolicyUpdate changes the fields that are not nil.
type PolicyUpdate struct {
	Name        *string
	Effect      *string
	IssuerMatch *string
	TrustTiers  *[]string
	Enabled     *bool
}

// Policy is an issuance policy: which issuers, by name or trust tier, may
// (or may not) take part in one kind of action.
type Policy struct {
	ID          string
	TenantID    string
	Name        string
	Kind        PolicyKind
	Effect      PolicyEffect
	IssuerMatch string // a glob over issuer names
	TrustTiers  []string
	Enabled     bool
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// PolicyKind is the action a policy governs: BUNDLE_EXPORT, MINT or VERIFY.
type PolicyKind string

func (k PolicyKind) String() string { return string(k) }

// PolicyEffect is what a matching policy decides: allow or deny.
type PolicyEffect string

func (e PolicyEffect) String() string { return string(e) }

func policyFromEnt(p *ent.IssuancePolicy) *Policy {
	if p == nil {
		return nil
	}
	return &Policy{ID: p.ID, TenantID: p.TenantID, Name: p.Name, Kind: PolicyKind(p.Kind), Effect: PolicyEffect(p.Effect),
		IssuerMatch: p.IssuerMatch, TrustTiers: p.TrustTiers, Enabled: p.Enabled, CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt}
}

// Issuer is an issuer of attestations the tenant knows.
type Issuer struct {
	ID        string
	TenantID  string
	Name      string
	URI       string
	TrustTier TrustTier
	CreatedAt time.Time
}

// TrustTier is how far the tenant trusts an issuer: TIER_1 (most) to TIER_3.
type TrustTier string

func (t TrustTier) String() string { return string(t) }

func issuerFromEnt(i *ent.Issuer) *Issuer {
	if i == nil {
		return nil
	}
	return &Issuer{ID: i.ID, TenantID: i.TenantID, Name: i.Name, URI: i.URI, TrustTier: TrustTier(i.TrustTier), CreatedAt: i.CreatedAt}
}

// PolicyNotFound is the one answer for a missing or foreign policy id.
func PolicyNotFound(id string) error {
	return fault.New(fault.NotFound, "policy %s not found", fault.Echo(id))
}

func checkGlob(match string) error {
	if !authz.ValidGlob(match) {
		return fault.Invalid(fault.Violation{Field: "issuer_match", Number: 4, Rule: "issuer_match.glob",
			Message: "is not a valid glob (" + strconv.Quote(match) + ")"})
	}
	return nil
}

// CreatePolicy adds an issuance policy to the tenant.
func (s *Store) CreatePolicy(ctx context.Context, np NewPolicy) (*Policy, error) {
	ctx = scoped(ctx, np.TenantID)
	if err := checkGlob(np.IssuerMatch); err != nil {
		return nil, err
	}
	now := micro(s.now())
	var p *ent.IssuancePolicy
	err := s.tx(ctx, func(tx *ent.Tx) error {
		var err error
		p, err = tx.IssuancePolicy.Create().
			SetID(apikey.RandomID("pol_", 20)).
			SetTenantID(np.TenantID).
			SetName(strings.TrimSpace(np.Name)).
			SetKind(issuancepolicy.Kind(np.Kind)).
			SetEffect(issuancepolicy.Effect(np.Effect)).
			SetIssuerMatch(np.IssuerMatch).
			SetTrustTiers(np.TrustTiers).
			SetEnabled(np.Enabled).
			SetCreatedAt(now).
			SetUpdatedAt(now).
			Save(ctx)
		if err != nil {
			return translate(err, "policy "+strconv.Quote(np.Name))
		}
		_, err = bumpAuthzVersion(ctx, tx.Client())
		return err
	})
	return policyFromEnt(p), err
}

// Policies lists the tenant's issuance policies by name.
func (s *Store) Policies(ctx context.Context, tenantID string) ([]*Policy, error) {
	ctx = scoped(ctx, tenantID)
	ps, err := s.client.IssuancePolicy.Query().Where(issuancepolicy.TenantID(tenantID)).
		Order(issuancepolicy.ByName(), issuancepolicy.ByID()).All(ctx)
	out := make([]*Policy, len(ps))
	for i, p := range ps {
		out[i] = policyFromEnt(p)
	}
	return out, translate(err, "policies")
}

// Policy returns one policy of the tenant.
func (s *Store) Policy(ctx context.Context, tenantID, id string) (*Policy, error) {
	ctx = scoped(ctx, tenantID)
	p, err := s.client.IssuancePolicy.Query().Where(issuancepolicy.ID(id), issuancepolicy.TenantID(tenantID)).Only(ctx)
	if ent.IsNotFound(err) {
		return nil, PolicyNotFound(id)
	}
	return policyFromEnt(p), translate(err, "policy")
}

// UpdatePolicy changes a policy of the tenant.
func (s *Store) UpdatePolicy(ctx context.Context, tenantID, id string, u PolicyUpdate) (*Policy, error) {
	ctx = scoped(ctx, tenantID)
	if u.IssuerMatch != nil {
		if err := checkGlob(*u.IssuerMatch); err != nil {
			return nil, err
		}
	}
	err := s.tx(ctx, func(tx *ent.Tx) error {
		upd := tx.IssuancePolicy.Update().Where(issuancepolicy.ID(id), issuancepolicy.TenantID(tenantID)).
			SetUpdatedAt(micro(s.now()))
		if u.Name != nil {
			upd.SetName(strings.TrimSpace(*u.Name))
		}
		if u.Effect != nil {
			upd.SetEffect(issuancepolicy.Effect(*u.Effect))
		}
		if u.IssuerMatch != nil {
			upd.SetIssuerMatch(*u.IssuerMatch)
		}
		if u.TrustTiers != nil {
			upd.SetTrustTiers(*u.TrustTiers)
		}
		if u.Enabled != nil {
			upd.SetEnabled(*u.Enabled)
		}
		n, err := upd.Save(ctx)
		if err != nil {
			return translate(err, "policy")
		}
		if n == 0 {
			return PolicyNotFound(id)
		}
		_, err = bumpAuthzVersion(ctx, tx.Client())
		return err
	})
	if err != nil {
		return nil, err
	}
	return s.Policy(ctx, tenantID, id)
}

// DeletePolicy removes a policy of the tenant.
func (s *Store) DeletePolicy(ctx context.Context, tenantID, id string) error {
	ctx = scoped(ctx, tenantID)
	return s.tx(ctx, func(tx *ent.Tx) error {
		n, err := tx.IssuancePolicy.Delete().Where(issuancepolicy.ID(id), issuancepolicy.TenantID(tenantID)).Exec(ctx)
		if err != nil {
			return translate(err, "policy")
		}
		if n == 0 {
			return PolicyNotFound(id)
		}
		_, err = bumpAuthzVersion(ctx, tx.Client())
		return err
	})
}

// ExportPolicies returns the tenant's policies as the BUNDLE_EXPORT decision
// takes them.
func (s *Store) ExportPolicies(ctx context.Context, tenantID string) ([]authz.IssuancePolicy, error) {
	ctx = scoped(ctx, tenantID)
	ps, err := s.client.IssuancePolicy.Query().
		Where(issuancepolicy.TenantID(tenantID), issuancepolicy.KindEQ(issuancepolicy.KindBUNDLE_EXPORT), issuancepolicy.Enabled(true)).
		All(ctx)
	if err != nil {
		return nil, translate(err, "policies")
	}
	out := make([]authz.IssuancePolicy, 0, len(ps))
	for _, p := range ps {
		out = append(out, authz.IssuancePolicy{ID: p.ID, Name: p.Name, Kind: p.Kind.String(), Effect: p.Effect.String(),
			IssuerMatch: p.IssuerMatch, TrustTiers: p.TrustTiers, Enabled: p.Enabled})
	}
	return out, nil
}

// IssuerNotFound is the one answer for a missing or foreign issuer id.
func IssuerNotFound(id string) error {
	return fault.New(fault.NotFound, "issuer %s not found", fault.Echo(id))
}

// CreateIssuer adds an attestation issuer to the tenant.
func (s *Store) CreateIssuer(ctx context.Context, tenantID, name, uri, tier string) (*Issuer, error) {
	ctx = scoped(ctx, tenantID)
	var is *ent.Issuer
	err := s.tx(ctx, func(tx *ent.Tx) error {
		var err error
		is, err = tx.Issuer.Create().SetID(uuid.NewString()).SetTenantID(tenantID).
			SetName(strings.TrimSpace(name)).SetURI(uri).SetTrustTier(issuer.TrustTier(tier)).
			SetCreatedAt(micro(s.now())).Save(ctx)
		if err != nil {
			return translate(err, "issuer "+strconv.Quote(name))
		}
		_, err = bumpAuthzVersion(ctx, tx.Client())
		return err
	})
	return issuerFromEnt(is), err
}

// Issuers lists the tenant's issuers by name.
func (s *Store) Issuers(ctx context.Context, tenantID string) ([]*Issuer, error) {
	ctx = scoped(ctx, tenantID)
	is, err := s.client.Issuer.Query().Where(issuer.TenantID(tenantID)).Order(issuer.ByName(), issuer.ByID()).All(ctx)
	out := make([]*Issuer, len(is))
	for i, x := range is {
		out[i] = issuerFromEnt(x)
	}
	return out, translate(err, "issuers")
}

// Issuer returns one issuer of the tenant.
func (s *Store) Issuer(ctx context.Context, tenantID, id string) (*Issuer, error) {
	ctx = scoped(ctx, tenantID)
	is, err := s.client.Issuer.Query().Where(issuer.ID(id), issuer.TenantID(tenantID)).Only(ctx)
	if ent.IsNotFound(err) {
		return nil, IssuerNotFound(id)
	}
	return issuerFromEnt(is), translate(err, "issuer")
}

// KeyIssuer describes the issuer a key acts for, as the BUNDLE_EXPORT
// decision needs it; "" gives the zero value.
func (s *Store) KeyIssuer(ctx context.Context, tenantID, issuerID string) (authz.KeyIssuer, error) {
	if issuerID == "" {
		return authz.KeyIssuer{}, nil
	}
	is, err := s.Issuer(ctx, tenantID, issuerID)
	if err != nil {
		return authz.KeyIssuer{}, err
	}
	return authz.KeyIssuer{ID: is.ID, Name: is.Name, Tier: is.TrustTier.String()}, nil
}
