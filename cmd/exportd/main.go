// Command exportd serves the exportd API and runs its export workers; its
// other subcommands are the operator's tools (tenants, keys, demo data).
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/exportd/exportd/authz"
	"github.com/exportd/exportd/internal/blobstore"
	"github.com/exportd/exportd/internal/certfile"
	"github.com/exportd/exportd/internal/config"
	"github.com/exportd/exportd/internal/demo"
	"github.com/exportd/exportd/internal/jobs"
	"github.com/exportd/exportd/internal/migrations"
	"github.com/exportd/exportd/internal/signing"
	"github.com/exportd/exportd/internal/store"
	"github.com/exportd/exportd/internal/telemetry"
	"github.com/exportd/exportd/internal/webhook"
	"github.com/exportd/exportd/reports"
	"github.com/exportd/exportd/server"
)

const usage = `exportd turns a tenant's audit logs into SOC 2, GDPR and HIPAA reports.

Usage:
  exportd serve [flags]                                   run the API and workers
  exportd migrate [--status]                              apply pending schema migrations (serve does too, unless --migrate=false)
  exportd tenant create --name NAME [--compliance-pack] [--sandbox]
  exportd tenant addon enable|disable compliance-pack --tenant ID
  exportd apikey create --tenant ID --role ROLE [--principal EMAIL] [--name N] [--issuer ID] [--expires-in 720h]
  exportd apikey list --tenant ID
  exportd apikey revoke --tenant ID --key KEY_ID
  exportd policy create --tenant ID --name N --effect allow|deny [--kind BUNDLE_EXPORT] [--issuer-match GLOB] [--tiers TIER_1,TIER_2] [--disabled]
  exportd policy list --tenant ID
  exportd policy delete|enable|disable --tenant ID --policy POLICY_ID
  exportd issuer create --tenant ID --name N --tier TIER_1|TIER_2|TIER_3 [--uri DID]
  exportd issuer list --tenant ID
  exportd seed-demo --tenant ID --events N [--from T --to T]
  exportd signing-key list|rotate|remove [--id KID]         manifest signing keys
  exportd chain verify --tenant ID                         recompute the tenant's audit hash chain
  exportd chain repair --tenant ID [--apply]               explain links broken by the negative-zero defect
  exportd webhook add --tenant ID --url https://…          notify on finished exports

Every subcommand takes --data-dir / --database-url (env EXPORTD_DATA_DIR,
EXPORTD_DATABASE_URL); run "exportd <subcommand> -h" for its flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "exportd:", err)
		var ue usageError
		if errors.As(err, &ue) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

type usageError struct{ error }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, usage)
		return nil
	}
	cmd, rest := args[0], args[1:]
	if (cmd == "tenant" || cmd == "apikey" || cmd == "policy" || cmd == "issuer" || cmd == "signing-key" || cmd == "webhook" || cmd == "chain") && len(rest) > 0 {
		cmd, rest = cmd+" "+rest[0], rest[1:]
		if cmd == "tenant addon" && len(rest) > 0 {
			cmd, rest = cmd+" "+rest[0], rest[1:]
		}
	}
	switch cmd {
	case "serve":
		return serve(ctx, rest, stderr)
	case "migrate":
		return migrateCmd(ctx, rest, stdout, stderr)
	case "tenant create":
		return tenantCreate(ctx, rest, stdout, stderr)
	case "tenant addon enable", "tenant addon disable":
		return tenantAddon(ctx, strings.HasSuffix(cmd, "enable"), rest, stdout, stderr)
	case "apikey create":
		return apikeyCreate(ctx, rest, stdout, stderr)
	case "apikey list":
		return apikeyList(ctx, rest, stdout, stderr)
	case "apikey revoke":
		return apikeyRevoke(ctx, rest, stdout, stderr)
	case "policy create":
		return policyCreate(ctx, rest, stdout, stderr)
	case "policy list":
		return policyList(ctx, rest, stdout, stderr)
	case "policy delete", "policy enable", "policy disable":
		return policyChange(ctx, strings.TrimPrefix(cmd, "policy "), rest, stdout, stderr)
	case "issuer create":
		return issuerCreate(ctx, rest, stdout, stderr)
	case "issuer list":
		return issuerList(ctx, rest, stdout, stderr)
	case "seed-demo":
		return seedDemo(ctx, rest, stdout, stderr)
	case "webhook add":
		return webhookAdd(ctx, rest, stdout, stderr)
	case "chain verify", "chain repair":
		return chainCmd(ctx, strings.TrimPrefix(cmd, "chain "), rest, stdout, stderr)
	case "signing-key list", "signing-key rotate", "signing-key remove":
		return signingKey(ctx, strings.TrimPrefix(cmd, "signing-key "), rest, stdout, stderr)
	}
	return usageError{fmt.Errorf("unknown command %q; run exportd help", strings.Join(args[:min(len(args), 2)], " "))}
}

func parse(fs *flag.FlagSet, args []string, stderr io.Writer) error {
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	return nil
}

func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.LogLevel))
	return telemetry.NewLogger(w, cfg.LogFormat, lvl)
}

func openStore(ctx context.Context, cfg *config.Config) (*store.Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, usageError{err}
	}
	return store.Open(ctx, cfg.DatabaseURL, cfg.DataDir)
}

func serve(ctx context.Context, args []string, stderr io.Writer) error {
	var cfg config.Config
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	cfg.Serve(fs)
	if err := parse(fs, args, stderr); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return usageError{err}
	}
	log := newLogger(&cfg, stderr)
	tel, err := telemetry.New(ctx, telemetry.Config{ServiceVersion: version()})
	if err != nil {
		return err
	}
	defer func() {
		shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := tel.Shutdown(shutCtx); err != nil {
			log.Warn("flush telemetry", "err", err)
		}
	}()
	st, err := store.OpenWith(ctx, cfg.DatabaseURL, cfg.DataDir, store.Options{TracerProvider: tel.Tracer, MeterProvider: tel.Meter, NoMigrate: !cfg.Migrate})
	if err != nil {
		return err
	}
	defer st.Close()
	logMigration(log, st.Migration())
	if err := tel.Metrics.ObserveJobs(st.JobCounts, store.JobStatuses...); err != nil {
		return err
	}
	bucket, err := blobstore.Open(ctx, cfg.BlobURL, cfg.DataDir)
	if err != nil {
		return err
	}
	defer bucket.Close()
	en, err := authz.Open(ctx, st)
	if err != nil {
		return err
	}
	keys, err := signing.New(ctx, st, cfg.SigningKey, log)
	if err != nil {
		return err
	}
	runner := jobs.New(st, bucket, log, jobs.Config{
		Workers:             cfg.Workers,
		Lease:               cfg.Lease,
		Telemetry:           tel,
		MaxRunningPerTenant: cfg.MaxRunning,
		RetryBase:           cfg.RetryBase,
		SweepInterval:       cfg.SweepInterval,
		ReplicaID:           cfg.ReplicaID,
		Transport:           transport(&cfg),
	})
	runner.SignWith(keys)
	rate := cfg.RateLimit
	if rate == 0 {
		rate = -1 // flag value 0 means no limit
	}
	api := server.New(st, en, bucket, runner, log, server.Config{
		MaxPeriod:          time.Duration(cfg.MaxPeriodDays) * 24 * time.Hour,
		TrustedProxies:     cfg.TrustedProxies,
		RateLimit:          rate,
		RateBurst:          cfg.RateBurst,
		Telemetry:          tel,
		MaxBatch:           cfg.MaxBatch,
		MaxAttempts:        cfg.MaxAttempts,
		MaxQueuedPerTenant: cfg.MaxQueued,
		WebhookAllow:       cfg.WebhookAllow,
		MaxBodyBytes:       cfg.MaxBodyBytes,
		MaxBatchBytes:      cfg.MaxBatchBytes,
	})
	api.PublishKeys(keys)
	srv, err := api.HTTPServer(cfg.TLSCert != "")
	if err != nil {
		return err
	}
	scheme := "http"
	if cfg.TLSCert != "" {
		certs, err := certfile.New(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return err
		}
		srv.TLSConfig = certs.Config()
		scheme = "https"
	}

	// Listen before logging, so the log names the real port (":0" picks one).
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	// Every background loop joins here, so that shutdown waits for them.
	var loops sync.WaitGroup
	deliverer := webhook.New(st, log, webhook.Config{Allow: cfg.WebhookAllow})
	// --workers 0 makes an API-only replica: it takes requests and leaves
	// the jobs (and their sweepers) to other replicas.
	if cfg.Workers > 0 {
		loops.Go(func() { runner.Run(workCtx) })
	}
	loops.Go(func() { deliverer.Run(workCtx) })
	loops.Go(func() { keys.Run(workCtx, 10*time.Second) })
	loops.Go(func() { en.Watch(workCtx, authz.WatchInterval, log) })
	if cfg.Retention > 0 {
		loops.Go(func() {
			st.RetentionLoop(workCtx, cfg.Retention, func(removed int64, err error) {
				if err != nil {
					log.Error("audit retention", "err", err)
				} else if removed > 0 {
					log.Info("audit retention purged events", "removed", removed)
				}
			})
		})
	}

	errc := make(chan error, 1)
	go func() {
		log.Info("exportd listening", "addr", ln.Addr().String(), "url", scheme+"://"+ln.Addr().String(),
			"database", dbKind(&cfg), "workers", cfg.Workers, "lease_owner", runner.Owner())
		if srv.TLSConfig != nil {
			errc <- srv.ServeTLS(ln, "", "")
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		stopWork()
		loops.Wait()
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	// Shut down in order: the edge first (new requests stop, streams are
	// told to reconnect, what still runs after a grace is cancelled), then
	// the workers (they release their leases for another replica) and
	// every loop. The whole takes seconds, well inside an orchestrator's
	// usual 30 s.
	log.Info("shutting down")
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	err = api.Shutdown(shutCtx, 2*time.Second)
	stopWork()
	loops.Wait()
	if err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}

// version is the module version this binary was built from, for the
// service.version resource attribute.
// migrateCmd applies the pending migrations, or with --status lists them.
func migrateCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg config.Config
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	cfg.Storage(fs)
	status := fs.Bool("status", false, "list the schema version and the pending migrations; change nothing")
	if err := parse(fs, args, stderr); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return usageError{err}
	}
	if *status {
		current, pending, err := store.MigrationStatus(ctx, cfg.DatabaseURL, cfg.DataDir)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "schema version %d; %d pending\n", current, len(pending))
		for _, p := range pending {
			fmt.Fprintln(stdout, "pending", p)
		}
		return nil
	}
	st, err := store.Open(ctx, cfg.DatabaseURL, cfg.DataDir)
	if err != nil {
		return err
	}
	defer st.Close()
	res := st.Migration()
	if res.Adopted {
		fmt.Fprintln(stdout, "adopted a database from before versioned migrations: its schema is the baseline")
	}
	for _, a := range res.Applied {
		fmt.Fprintln(stdout, "applied", a)
	}
	fmt.Fprintf(stdout, "schema version %d\n", res.To)
	return nil
}

func logMigration(log *slog.Logger, res migrations.Result) {
	if res.Adopted {
		log.Info("adopted a database from before versioned migrations", "baseline", res.From)
	}
	if len(res.Applied) > 0 {
		log.Info("applied schema migrations", "from", res.From, "to", res.To, "migrations", res.Applied)
	}
}

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return ""
}

// transport is how this process serves its API, as reports state it.
func transport(cfg *config.Config) reports.Transport {
	if cfg.TLSCert == "" {
		return reports.Transport{}
	}
	return reports.Transport{TLS: true, MinVersion: tls.VersionName(certfile.MinVersion)}
}

func dbKind(cfg *config.Config) string {
	if cfg.DatabaseURL != "" {
		return "postgres"
	}
	return "sqlite:" + cfg.DataDir
}

// operatorEvent records an operator CLI action in the tenant's audit log.
func operatorEvent(ctx context.Context, st *store.Store, tenantID, action, resourceType, resourceID string, meta map[string]any) error {
	user := os.Getenv("USER")
	if meta == nil {
		meta = map[string]any{}
	}
	meta["os_user"] = user
	_, _, err := st.AppendEvents(ctx, tenantID, []reports.Event{{
		OccurredAt: st.Now(), ActorID: "operator", ActorType: "operator", Action: action,
		ResourceType: resourceType, ResourceID: resourceID, Outcome: "success", Category: "access",
		UserAgent: "exportd-cli", Metadata: meta,
	}})
	return err
}

func tenantCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		cfg           config.Config
		name          string
		pack, sandbox bool
	)
	fs := flag.NewFlagSet("tenant create", flag.ContinueOnError)
	cfg.Storage(fs)
	fs.StringVar(&name, "name", "", "tenant name (required)")
	fs.BoolVar(&pack, "compliance-pack", false, "enable the Compliance Pack add-on")
	fs.BoolVar(&sandbox, "sandbox", false, "a sandbox tenant, whose keys are tl_test_ keys")
	if err := parse(fs, args, stderr); err != nil {
		return err
	}
	if strings.TrimSpace(name) == "" {
		return usageError{errors.New("tenant create: --name is required")}
	}
	st, err := openStore(ctx, &cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	t, err := st.CreateTenant(ctx, name, pack, sandbox)
	if err != nil {
		return err
	}
	if err := operatorEvent(ctx, st, t.ID, reports.ActionTenantCreate, "tenant", t.ID, map[string]any{"name": name, "compliance_pack": pack}); err != nil {
		return err
	}
	fmt.Fprintln(stdout, t.ID)
	return nil
}

func tenantAddon(ctx context.Context, on bool, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "compliance-pack" && args[0] != authz.AddOnCompliancePack) {
		return usageError{errors.New("tenant addon: name the add-on: compliance-pack")}
	}
	var (
		cfg    config.Config
		tenant string
	)
	fs := flag.NewFlagSet("tenant addon", flag.ContinueOnError)
	cfg.Storage(fs)
	fs.StringVar(&tenant, "tenant", "", "tenant id (required)")
	if err := parse(fs, args[1:], stderr); err != nil {
		return err
	}
	if tenant == "" {
		return usageError{errors.New("tenant addon: --tenant is required")}
	}
	st, err := openStore(ctx, &cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.SetCompliancePack(ctx, tenant, on); err != nil {
		return err
	}
	action := reports.ActionAddOnDisable
	if on {
		action = reports.ActionAddOnEnable
	}
	if err := operatorEvent(ctx, st, tenant, action, "add_on", authz.AddOnCompliancePack, nil); err != nil {
		return err
	}
	state := "disabled"
	if on {
		state = "enabled"
	}
	fmt.Fprintf(stdout, "compliance_pack %s for tenant %s\n", state, tenant)
	return nil
}

func apikeyCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		cfg                           config.Config
		tenant, role, principal, name string
		issuer                        string
		expiresIn                     time.Duration
	)
	fs := flag.NewFlagSet("apikey create", flag.ContinueOnError)
	cfg.Storage(fs)
	fs.StringVar(&tenant, "tenant", "", "tenant id (required)")
	fs.StringVar(&role, "role", "", "role: admin, auditor, viewer or ingester (required)")
	fs.StringVar(&principal, "principal", "", "the user's email or service name the key belongs to (default: operator)")
	fs.StringVar(&name, "name", "", "a label for the key")
	fs.StringVar(&issuer, "issuer", "", "the issuer id the key acts for (optional)")
	fs.DurationVar(&expiresIn, "expires-in", 0, "the key stops working after this long (default: never)")
	if err := parse(fs, args, stderr); err != nil {
		return err
	}
	if tenant == "" || role == "" {
		return usageError{errors.New("apikey create: --tenant and --role are required")}
	}
	if expiresIn < 0 {
		return usageError{errors.New("apikey create: --expires-in must be positive")}
	}
	st, err := openStore(ctx, &cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	nk := store.NewKey{TenantID: tenant, Role: role, Principal: principal, Name: name, IssuerID: issuer}
	if expiresIn > 0 {
		t := st.Now().Add(expiresIn)
		nk.ExpiresAt = &t
	}
	key, row, err := st.CreateAPIKey(ctx, nk)
	if err != nil {
		return err
	}
	if err := operatorEvent(ctx, st, tenant, reports.ActionAPIKeyCreate, "api_key", row.ID, map[string]any{"role": role, "principal": principal, "issuer_id": issuer}); err != nil {
		return err
	}
	fmt.Fprintln(stdout, key.String())
	return nil
}

func seedDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		cfg      config.Config
		tenant   string
		events   int
		from, to string
		seed     uint64
	)
	now := time.Now().UTC()
	fs := flag.NewFlagSet("seed-demo", flag.ContinueOnError)
	cfg.Storage(fs)
	fs.StringVar(&tenant, "tenant", "", "tenant id (required)")
	fs.IntVar(&events, "events", 10000, "how many audit events to write")
	fs.StringVar(&from, "from", now.AddDate(0, -3, 0).Format(time.RFC3339), "first instant (RFC3339 or YYYY-MM-DD)")
	fs.StringVar(&to, "to", now.Format(time.RFC3339), "end of the period, exclusive (RFC3339 or YYYY-MM-DD)")
	fs.Uint64Var(&seed, "seed", 1, "random seed, for repeatable data")
	if err := parse(fs, args, stderr); err != nil {
		return err
	}
	if tenant == "" {
		return usageError{errors.New("seed-demo: --tenant is required")}
	}
	if events <= 0 {
		return usageError{errors.New("seed-demo: --events must be positive")}
	}
	f, err := parseTime(from)
	if err != nil {
		return usageError{fmt.Errorf("seed-demo: --from: %w", err)}
	}
	t, err := parseTime(to)
	if err != nil {
		return usageError{fmt.Errorf("seed-demo: --to: %w", err)}
	}
	if !t.After(f) {
		return usageError{errors.New("seed-demo: --to must be after --from")}
	}
	st, err := openStore(ctx, &cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	if _, err := st.Tenant(ctx, tenant); err != nil {
		return err
	}
	start := time.Now()
	n, err := demo.Seed(ctx, st, tenant, demo.Options{Events: events, From: f, To: t, Seed: seed})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %d events in %s\n", n, time.Since(start).Round(time.Millisecond))
	return nil
}

func parseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither RFC3339 nor YYYY-MM-DD", s)
	}
	return t, nil
}

func signingKey(ctx context.Context, verb string, args []string, stdout, stderr io.Writer) error {
	var (
		cfg config.Config
		id  string
	)
	fs := flag.NewFlagSet("signing-key "+verb, flag.ContinueOnError)
	cfg.Storage(fs)
	if verb == "remove" {
		fs.StringVar(&id, "id", "", "the retired key to take out of the published set (required)")
	}
	if err := parse(fs, args, stderr); err != nil {
		return err
	}
	if verb == "remove" && id == "" {
		return usageError{errors.New("signing-key remove: --id is required")}
	}
	st, err := openStore(ctx, &cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	switch verb {
	case "rotate":
		kid, err := st.RotateSigningKey(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, kid)
	case "remove":
		if err := st.RemoveSigningKey(ctx, id); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "removed %s; manifests it signed no longer verify\n", id)
	default:
		if err := st.EnsureSigningKey(ctx); err != nil {
			return err
		}
		ks, err := st.SigningKeys(ctx)
		if err != nil {
			return err
		}
		for _, k := range ks.Public().Keys {
			fmt.Fprintf(stdout, "%s\t%s\t%s\n", k.KeyID, k.Status, k.CreatedAt)
		}
	}
	return nil
}

func webhookAdd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		cfg         config.Config
		tenant, url string
	)
	fs := flag.NewFlagSet("webhook add", flag.ContinueOnError)
	cfg.Storage(fs)
	cfg.Webhooks(fs)
	fs.StringVar(&tenant, "tenant", "", "tenant id (required)")
	fs.StringVar(&url, "url", "", "https URL that receives a signed POST when an export finishes (required)")
	if err := parse(fs, args, stderr); err != nil {
		return err
	}
	if tenant == "" || url == "" {
		return usageError{errors.New("webhook add: --tenant and --url are required")}
	}
	if err := webhook.NewGuard(cfg.WebhookAllow).CheckURL(ctx, url); err != nil {
		return fmt.Errorf("webhook add: --url: %w", err)
	}
	st, err := openStore(ctx, &cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	wh, secret, err := st.CreateWebhook(ctx, tenant, store.WebhookChange{URL: url, Enabled: true})
	if err != nil {
		return err
	}
	if err := operatorEvent(ctx, st, tenant, reports.ActionOperatorWebhookCreate, "webhook", wh.ID, map[string]any{"url": wh.URL}); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s %s\n", wh.ID, secret)
	return nil
}

// chainCmd verifies a tenant's audit hash chain, or repairs the links the
// negative-zero defect broke: it records, beside each such event, the bytes
// its hash covers (a proof anyone can re-check), changes no event, and
// audits the repair in the tenant's log.
func chainCmd(ctx context.Context, verb string, args []string, stdout, stderr io.Writer) error {
	var (
		cfg    config.Config
		tenant string
		apply  bool
	)
	fs := flag.NewFlagSet("chain "+verb, flag.ContinueOnError)
	cfg.Storage(fs)
	fs.StringVar(&tenant, "tenant", "", "tenant id (required)")
	if verb == "repair" {
		fs.BoolVar(&apply, "apply", false, "record the repairs (without it, only show what would be recorded)")
	}
	if err := parse(fs, args, stderr); err != nil {
		return err
	}
	if tenant == "" {
		return usageError{fmt.Errorf("chain %s: --tenant is required", verb)}
	}
	st, err := openStore(ctx, &cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	if verb == "verify" {
		r, err := st.VerifyChain(ctx, tenant, 0, 0)
		if err != nil {
			return err
		}
		if !r.OK {
			return fmt.Errorf("chain of tenant %s is broken at event %d: %s", tenant, r.BrokenAt, r.Reason)
		}
		fmt.Fprintf(stdout, "chain verified: events %d..%d, %d checked (%d through recorded repairs), hash %s\n", r.From, r.To, r.Checked, r.Repaired, r.Hash)
		return nil
	}
	by := "operator:" + os.Getenv("USER")
	r, err := st.RepairChain(ctx, tenant, by, apply)
	if err != nil {
		return err
	}
	seqs := make([]int64, 0, len(r.Found))
	for _, f := range r.Found {
		seqs = append(seqs, f.Sequence)
		fmt.Fprintf(stdout, "event %d: hash %s covers metadata %s; the database holds %s\n", f.Sequence, f.StoredHash, f.HashedMetadata, f.StoredMetadata)
	}
	if r.BrokenAt != 0 {
		return fmt.Errorf("chain of tenant %s: %s; nothing was recorded", tenant, r.Reason)
	}
	switch {
	case len(r.Found) == 0:
		fmt.Fprintf(stdout, "%d events checked, nothing to repair (%d repairs recorded before)\n", r.Checked, r.Existing)
	case !r.Applied:
		fmt.Fprintf(stdout, "%d events checked, %d to repair; run again with --apply to record them\n", r.Checked, len(r.Found))
	default:
		if err := operatorEvent(ctx, st, tenant, reports.ActionChainRepair, "audit_log", tenant, map[string]any{
			"sequences": seqs, "reason": "negative zero: the hash covers -0 where the database stores 0", "events_checked": r.Checked,
		}); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%d events checked, %d repairs recorded and audited\n", r.Checked, len(r.Found))
	}
	return nil
}
