package authz

import (
	"fmt"
	"path"
	"slices"
	"strings"
)

// Issuance policy kinds and effects (SPEC §2). Only BUNDLE_EXPORT is
// enforced here.
const (
	KindBundleExport = "BUNDLE_EXPORT"
	EffectAllow      = "allow"
	EffectDeny       = "deny"
)

// Checks of SPEC §3 that can refuse an export, as CheckExport names them.
const (
	CheckCompliancePack = "compliance_pack"
	CheckPermission     = "permission"
	CheckPolicy         = "policy"
)

// IssuancePolicy is a policy as the decision needs it.
type IssuancePolicy struct {
	ID          string
	Name        string
	Kind        string
	Effect      string
	IssuerMatch string   // issuer id or name, exact or a path.Match glob; "" or "*" for every key
	TrustTiers  []string // empty for every tier
	Enabled     bool
}

// KeyIssuer is the issuer a key acts for; the zero value is "none".
type KeyIssuer struct {
	ID   string
	Name string
	Tier string
}

// Decision is the outcome of the BUNDLE_EXPORT policies for one key.
type Decision struct {
	Allowed    bool
	PolicyID   string // the deciding policy, if one decided
	PolicyName string
	Reason     string
}

// String is the decision as recorded on the job.
func (d Decision) String() string { return d.Reason }

// DecideExport applies the tenant's BUNDLE_EXPORT policies to a key: with
// no enabled policy the export is allowed; any matching deny refuses it;
// when an enabled allow exists the key must match one. Policies are taken in
// name order so the deciding one is stable.
func DecideExport(policies []IssuancePolicy, iss KeyIssuer) Decision {
	var active []IssuancePolicy
	for _, p := range policies {
		if p.Enabled && p.Kind == KindBundleExport {
			active = append(active, p)
		}
	}
	if len(active) == 0 {
		return Decision{Allowed: true, Reason: "allowed: no enabled BUNDLE_EXPORT policy"}
	}
	slices.SortFunc(active, func(a, b IssuancePolicy) int { return strings.Compare(a.Name, b.Name) })
	for _, p := range active {
		if p.Effect == EffectDeny && matches(p, iss) {
			return Decision{PolicyID: p.ID, PolicyName: p.Name,
				Reason: fmt.Sprintf("denied by BUNDLE_EXPORT policy %q (%s): it denies exports by %s", p.Name, p.ID, describe(iss))}
		}
	}
	var allows []string
	for _, p := range active {
		if p.Effect != EffectAllow {
			continue
		}
		if matches(p, iss) {
			return Decision{Allowed: true, PolicyID: p.ID, PolicyName: p.Name,
				Reason: fmt.Sprintf("allowed by BUNDLE_EXPORT policy %q (%s)", p.Name, p.ID)}
		}
		allows = append(allows, fmt.Sprintf("%q", p.Name))
	}
	if len(allows) == 0 {
		return Decision{Allowed: true, Reason: "allowed: no BUNDLE_EXPORT policy denies " + describe(iss)}
	}
	return Decision{PolicyName: allows[0],
		Reason: fmt.Sprintf("denied: BUNDLE_EXPORT allow policies %s do not match %s", strings.Join(allows, ", "), describe(iss))}
}

func matches(p IssuancePolicy, iss KeyIssuer) bool {
	return issuerMatches(p.IssuerMatch, iss) && tierMatches(p.TrustTiers, iss)
}

func issuerMatches(pattern string, iss KeyIssuer) bool {
	if pattern == "" || pattern == "*" {
		return true
	}
	if iss.ID == "" {
		return false
	}
	if pattern == iss.ID || pattern == iss.Name {
		return true
	}
	for _, s := range []string{iss.ID, iss.Name} {
		if ok, err := path.Match(pattern, s); err == nil && ok {
			return true
		}
	}
	return false
}

func tierMatches(tiers []string, iss KeyIssuer) bool {
	if len(tiers) == 0 {
		return true
	}
	return iss.ID != "" && slices.Contains(tiers, iss.Tier)
}

func describe(iss KeyIssuer) string {
	if iss.ID == "" {
		return "a key that acts for no issuer"
	}
	return fmt.Sprintf("a key of issuer %q (%s, %s)", iss.Name, iss.ID, iss.Tier)
}

// ValidGlob reports whether an issuer match is a well-formed glob.
func ValidGlob(pattern string) bool {
	_, err := path.Match(pattern, "")
	return err == nil
}
