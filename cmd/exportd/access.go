package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/exportd/exportd/internal/config"
	"github.com/exportd/exportd/internal/store"
	"github.com/exportd/exportd/reports"
)

// tenantFlags parses the flags shared by the access commands: storage and
// --tenant, plus whatever more registers.
func tenantFlags(name string, args []string, stderr io.Writer, more func(fs *flag.FlagSet)) (*config.Config, string, error) {
	var (
		cfg    config.Config
		tenant string
	)
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	cfg.Storage(fs)
	fs.StringVar(&tenant, "tenant", "", "tenant id (required)")
	if more != nil {
		more(fs)
	}
	if err := parse(fs, args, stderr); err != nil {
		return nil, "", err
	}
	if tenant == "" {
		return nil, "", usageError{fmt.Errorf("%s: --tenant is required", name)}
	}
	return &cfg, tenant, nil
}

func when(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func apikeyList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, tenant, err := tenantFlags("apikey list", args, stderr, nil)
	if err != nil {
		return err
	}
	st, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	keys, err := st.APIKeys(ctx, tenant)
	if err != nil {
		return err
	}
	if err := operatorEvent(ctx, st, tenant, reports.ActionAPIKeyList, "api_key", "", nil); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY ID\tNAME\tROLE\tPRINCIPAL\tISSUER\tCREATED\tLAST USED\tEXPIRES\tREVOKED")
	for _, k := range keys {
		iss := "-"
		if k.IssuerID != nil {
			iss = *k.IssuerID
		}
		created := k.CreatedAt
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, k.Role, k.Principal, iss,
			when(&created), when(k.LastUsedAt), when(k.ExpiresAt), when(k.RevokedAt))
	}
	return tw.Flush()
}

func apikeyRevoke(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var key string
	cfg, tenant, err := tenantFlags("apikey revoke", args, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&key, "key", "", "key id to revoke (required)")
	})
	if err != nil {
		return err
	}
	if key == "" {
		return usageError{errors.New("apikey revoke: --key is required")}
	}
	st, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	if _, err := st.RevokeAPIKey(ctx, tenant, key); err != nil {
		return err
	}
	if err := operatorEvent(ctx, st, tenant, reports.ActionAPIKeyRevoke, "api_key", key, nil); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "revoked %s\n", key)
	return nil
}

func policyCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		np       store.NewPolicy
		tiers    string
		disabled bool
	)
	cfg, tenant, err := tenantFlags("policy create", args, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&np.Name, "name", "", "policy name (required)")
		fs.StringVar(&np.Kind, "kind", "BUNDLE_EXPORT", "BUNDLE_EXPORT, MINT or VERIFY")
		fs.StringVar(&np.Effect, "effect", "", "allow or deny (required)")
		fs.StringVar(&np.IssuerMatch, "issuer-match", "", "issuer id or name, or a glob; empty matches every key")
		fs.StringVar(&tiers, "tiers", "", "comma-separated trust tiers (TIER_1,TIER_2,TIER_3); empty for any")
		fs.BoolVar(&disabled, "disabled", false, "create the policy switched off")
	})
	if err != nil {
		return err
	}
	switch {
	case strings.TrimSpace(np.Name) == "":
		return usageError{errors.New("policy create: --name is required")}
	case np.Effect != "allow" && np.Effect != "deny":
		return usageError{errors.New("policy create: --effect must be allow or deny")}
	case np.Kind != "BUNDLE_EXPORT" && np.Kind != "MINT" && np.Kind != "VERIFY":
		return usageError{errors.New("policy create: --kind must be BUNDLE_EXPORT, MINT or VERIFY")}
	}
	for _, t := range strings.Split(tiers, ",") {
		if t = strings.TrimSpace(t); t == "" {
			continue
		}
		if t != "TIER_1" && t != "TIER_2" && t != "TIER_3" {
			return usageError{fmt.Errorf("policy create: unknown tier %q (TIER_1, TIER_2 or TIER_3)", t)}
		}
		np.TrustTiers = append(np.TrustTiers, t)
	}
	np.TenantID, np.Enabled = tenant, !disabled
	st, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	p, err := st.CreatePolicy(ctx, np)
	if err != nil {
		return err
	}
	if err := operatorEvent(ctx, st, tenant, reports.ActionPolicyCreate, "policy", p.ID,
		map[string]any{"name": p.Name, "kind": np.Kind, "effect": np.Effect, "issuer_match": np.IssuerMatch, "trust_tiers": np.TrustTiers, "enabled": np.Enabled}); err != nil {
		return err
	}
	fmt.Fprintln(stdout, p.ID)
	return nil
}

func policyList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, tenant, err := tenantFlags("policy list", args, stderr, nil)
	if err != nil {
		return err
	}
	st, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	ps, err := st.Policies(ctx, tenant)
	if err != nil {
		return err
	}
	if err := operatorEvent(ctx, st, tenant, reports.ActionPolicyList, "policy", "", nil); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "POLICY ID\tNAME\tKIND\tEFFECT\tISSUER MATCH\tTIERS\tENABLED")
	for _, p := range ps {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%t\n", p.ID, p.Name, p.Kind, p.Effect, p.IssuerMatch, strings.Join(p.TrustTiers, ","), p.Enabled)
	}
	return tw.Flush()
}

func policyChange(ctx context.Context, verb string, args []string, stdout, stderr io.Writer) error {
	var id string
	cfg, tenant, err := tenantFlags("policy "+verb, args, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&id, "policy", "", "policy id (required)")
	})
	if err != nil {
		return err
	}
	if id == "" {
		return usageError{fmt.Errorf("policy %s: --policy is required", verb)}
	}
	st, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	if verb == "delete" {
		err = st.DeletePolicy(ctx, tenant, id)
	} else {
		on := verb == "enable"
		_, err = st.UpdatePolicy(ctx, tenant, id, store.PolicyUpdate{Enabled: &on})
	}
	if err != nil {
		return err
	}
	action := map[string]string{"enable": reports.ActionPolicyEnable, "disable": reports.ActionPolicyDisable, "delete": reports.ActionPolicyDelete}[verb]
	if err := operatorEvent(ctx, st, tenant, action, "policy", id, nil); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "policy %s %sd\n", id, verb)
	return nil
}

func issuerCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var name, tier, uri string
	cfg, tenant, err := tenantFlags("issuer create", args, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&name, "name", "", "issuer name (required)")
		fs.StringVar(&tier, "tier", "", "trust tier: TIER_1, TIER_2 or TIER_3 (required)")
		fs.StringVar(&uri, "uri", "", "the issuer's DID or URI")
	})
	if err != nil {
		return err
	}
	if strings.TrimSpace(name) == "" || (tier != "TIER_1" && tier != "TIER_2" && tier != "TIER_3") {
		return usageError{errors.New("issuer create: --name and --tier (TIER_1, TIER_2 or TIER_3) are required")}
	}
	st, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	is, err := st.CreateIssuer(ctx, tenant, name, uri, tier)
	if err != nil {
		return err
	}
	if err := operatorEvent(ctx, st, tenant, reports.ActionIssuerCreate, "issuer", is.ID, map[string]any{"name": name, "trust_tier": tier}); err != nil {
		return err
	}
	fmt.Fprintln(stdout, is.ID)
	return nil
}

func issuerList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, tenant, err := tenantFlags("issuer list", args, stderr, nil)
	if err != nil {
		return err
	}
	st, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	is, err := st.Issuers(ctx, tenant)
	if err != nil {
		return err
	}
	if err := operatorEvent(ctx, st, tenant, reports.ActionIssuerList, "issuer", "", nil); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ISSUER ID\tNAME\tTIER\tURI")
	for _, i := range is {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", i.ID, i.Name, i.TrustTier, i.URI)
	}
	return tw.Flush()
}
