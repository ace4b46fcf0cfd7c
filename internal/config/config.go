// Package config reads exportd's settings from flags and EXPORTD_*
// environment variables, and checks them before anything starts.
package config

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"
)

// Config is exportd's configuration.
type Config struct {
	DataDir       string
	DatabaseURL   string
	BlobURL       string
	Addr          string
	Workers       int
	Lease         time.Duration
	MaxPeriodDays int
	MaxBatch      int
	Retention     time.Duration
	MaxAttempts   int
	RetryBase     time.Duration
	MaxRunning    int
	MaxQueued     int
	SweepInterval time.Duration
	// ReplicaID names this replica stably across restarts (a StatefulSet
	// pod's name); empty means none.
	ReplicaID      string
	TrustedProxies []*net.IPNet
	LogFormat      string
	LogLevel       string
	TLSCert        string
	TLSKey         string
	SigningKey     string
	RateLimit      float64 // requests per second per API key
	RateBurst      int
	MaxBodyBytes   int64
	MaxBatchBytes  int64
	// WebhookAllow lists the inside networks webhooks may reach anyway.
	WebhookAllow []netip.Prefix
	// Migrate applies pending schema migrations at start; off, serve
	// refuses to start while any are pending.
	Migrate bool

	trustedProxies string
	signingKeyFile string
	envErrs        []error
}

// Storage registers the flags every subcommand shares: where data lives.
func (c *Config) Storage(fs *flag.FlagSet) {
	fs.StringVar(&c.DataDir, "data-dir", env("EXPORTD_DATA_DIR", "./data"), "folder for the embedded SQLite database and artifacts (env EXPORTD_DATA_DIR)")
	fs.StringVar(&c.DatabaseURL, "database-url", env("EXPORTD_DATABASE_URL", ""), "PostgreSQL URL; empty means SQLite in --data-dir (env EXPORTD_DATABASE_URL)")
	fs.StringVar(&c.BlobURL, "blob-url", env("EXPORTD_BLOB_URL", ""), "artifact bucket: file:///path, s3://bucket?region=…, mem://; empty means <data-dir>/artifacts (env EXPORTD_BLOB_URL)")
	fs.StringVar(&c.LogFormat, "log-format", env("EXPORTD_LOG_FORMAT", "text"), "log format: text or json (env EXPORTD_LOG_FORMAT)")
	fs.StringVar(&c.LogLevel, "log-level", env("EXPORTD_LOG_LEVEL", "info"), "log level: debug, info, warn, error (env EXPORTD_LOG_LEVEL)")
}

// Serve registers the flags of `exportd serve`.
func (c *Config) Serve(fs *flag.FlagSet) {
	c.Storage(fs)
	fs.StringVar(&c.Addr, "addr", env("EXPORTD_ADDR", ":8080"), "listen address (env EXPORTD_ADDR)")
	fs.BoolVar(&c.Migrate, "migrate", env("EXPORTD_MIGRATE", "true") != "false", "apply pending schema migrations at start, under a lock so replicas starting together apply each once; with --migrate=false serve refuses to start while migrations are pending, and an operator runs exportd migrate (env EXPORTD_MIGRATE)")
	fs.IntVar(&c.Workers, "workers", c.envInt("EXPORTD_WORKERS", 2), "export jobs run at once by this process (env EXPORTD_WORKERS)")
	fs.DurationVar(&c.Lease, "lease", c.envDuration("EXPORTD_LEASE", 30*time.Second), "job lease: a crashed worker's job is taken over after this (env EXPORTD_LEASE)")
	fs.IntVar(&c.MaxAttempts, "max-attempts", c.envInt("EXPORTD_MAX_ATTEMPTS", 5), "attempts an export gets before it is FAILED (env EXPORTD_MAX_ATTEMPTS)")
	fs.DurationVar(&c.RetryBase, "retry-base", c.envDuration("EXPORTD_RETRY_BASE", 5*time.Second), "delay before the first retry; doubles per attempt up to 5m, with jitter (env EXPORTD_RETRY_BASE)")
	fs.IntVar(&c.MaxRunning, "max-running-per-tenant", c.envInt("EXPORTD_MAX_RUNNING_PER_TENANT", 4), "exports of one tenant running at once across all replicas; 0 = no cap (env EXPORTD_MAX_RUNNING_PER_TENANT)")
	fs.IntVar(&c.MaxQueued, "max-queued-per-tenant", c.envInt("EXPORTD_MAX_QUEUED_PER_TENANT", 100), "PENDING exports one tenant may have; more are resource_exhausted; 0 = no cap (env EXPORTD_MAX_QUEUED_PER_TENANT)")
	fs.StringVar(&c.ReplicaID, "replica-id", env("EXPORTD_REPLICA_ID", ""), "stable name of this replica, kept across its restarts and never shared by two live processes, such as a StatefulSet pod name: it prefixes the lease owner, and a restarted replica releases at once the jobs its previous process held (env EXPORTD_REPLICA_ID)")
	fs.DurationVar(&c.SweepInterval, "sweep-interval", c.envDuration("EXPORTD_SWEEP_INTERVAL", time.Minute), "how often expired artifacts and orphaned attempts are cleaned, by one replica (env EXPORTD_SWEEP_INTERVAL)")
	fs.IntVar(&c.MaxPeriodDays, "max-period-days", c.envInt("EXPORTD_MAX_PERIOD_DAYS", 366), "longest period one export may cover (env EXPORTD_MAX_PERIOD_DAYS)")
	fs.Int64Var(&c.MaxBodyBytes, "max-request-bytes", c.envInt64("EXPORTD_MAX_REQUEST_BYTES", 1<<20), "largest request body, other than an audit batch (env EXPORTD_MAX_REQUEST_BYTES)")
	fs.Int64Var(&c.MaxBatchBytes, "max-batch-bytes", c.envInt64("EXPORTD_MAX_BATCH_BYTES", 32<<20), "largest WriteEvents request body (env EXPORTD_MAX_BATCH_BYTES)")
	fs.IntVar(&c.MaxBatch, "max-batch", c.envInt("EXPORTD_MAX_BATCH", 1000), "most audit events one WriteEvents call may carry (env EXPORTD_MAX_BATCH)")
	fs.DurationVar(&c.Retention, "retention-interval", c.envDuration("EXPORTD_RETENTION_INTERVAL", time.Hour), "how often events past their tenant's retention are purged; 0 disables (env EXPORTD_RETENTION_INTERVAL)")
	fs.StringVar(&c.trustedProxies, "trusted-proxies", env("EXPORTD_TRUSTED_PROXIES", ""), "comma-separated CIDRs whose X-Forwarded-For is believed (env EXPORTD_TRUSTED_PROXIES)")
	fs.Float64Var(&c.RateLimit, "rate-limit", c.envFloat("EXPORTD_RATE_LIMIT", 50), "requests per second one API key may make, sustained (env EXPORTD_RATE_LIMIT)")
	fs.IntVar(&c.RateBurst, "rate-burst", c.envInt("EXPORTD_RATE_BURST", 200), "requests one API key may make at once above the rate (env EXPORTD_RATE_BURST)")
	fs.StringVar(&c.TLSCert, "tls-cert", env("EXPORTD_TLS_CERT", ""), "TLS certificate file; with --tls-key serves HTTPS (env EXPORTD_TLS_CERT)")
	fs.StringVar(&c.TLSKey, "tls-key", env("EXPORTD_TLS_KEY", ""), "TLS key file (env EXPORTD_TLS_KEY)")
	c.Webhooks(fs)
	fs.StringVar(&c.signingKeyFile, "signing-key-file", env("EXPORTD_SIGNING_KEY_FILE", ""), "file holding the base64 Ed25519 seed that signs manifests; default: a key kept in the database (env EXPORTD_SIGNING_KEY_FILE)")
}

// Webhooks registers the flags that bound where webhooks may go, shared by
// `exportd serve` (deliveries, the API) and `exportd webhook add`.
func (c *Config) Webhooks(fs *flag.FlagSet) {
	c.WebhookAllow = nil
	if v, ok := os.LookupEnv("EXPORTD_WEBHOOK_ALLOW_CIDR"); ok {
		if err := c.addWebhookAllow(v); err != nil {
			c.envErrs = append(c.envErrs, fmt.Errorf("EXPORTD_WEBHOOK_ALLOW_CIDR: %w", err))
		}
	}
	fromEnv := true
	fs.Func("webhook-allow-cidr", "inside network webhooks may reach anyway, such as 10.0.0.0/8; repeatable or comma-separated. Loopback, private, link-local (cloud metadata), CGNAT, multicast and unspecified addresses are refused otherwise (env EXPORTD_WEBHOOK_ALLOW_CIDR)",
		func(v string) error {
			if fromEnv { // flags replace the environment's list
				c.WebhookAllow, fromEnv = nil, false
			}
			return c.addWebhookAllow(v)
		})
}

// addWebhookAllow parses comma-separated CIDRs; a bare address is one host.
func (c *Config) addWebhookAllow(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		var p netip.Prefix
		var err error
		if strings.Contains(s, "/") {
			p, err = netip.ParsePrefix(s)
		} else {
			var a netip.Addr
			if a, err = netip.ParseAddr(s); err == nil {
				p = netip.PrefixFrom(a, a.BitLen())
			}
		}
		if err != nil {
			return fmt.Errorf("%q is not a CIDR such as 10.0.0.0/8", s)
		}
		c.WebhookAllow = append(c.WebhookAllow, p.Masked())
	}
	return nil
}

// Validate checks the values and derives parsed ones.
func (c *Config) Validate() error {
	errs := append([]error(nil), c.envErrs...)
	if c.DatabaseURL == "" && c.DataDir == "" {
		errs = append(errs, errors.New("--data-dir or --database-url is required"))
	}
	if c.Workers < 0 {
		errs = append(errs, errors.New("--workers must be 0 or more"))
	}
	if c.Lease != 0 && c.Lease < time.Second {
		errs = append(errs, errors.New("--lease must be at least 1s"))
	}
	if c.MaxAttempts < 0 || c.MaxRunning < 0 || c.MaxQueued < 0 {
		errs = append(errs, errors.New("--max-attempts, --max-running-per-tenant and --max-queued-per-tenant must be 0 or more"))
	}
	if c.RetryBase < 0 || c.SweepInterval < 0 {
		errs = append(errs, errors.New("--retry-base and --sweep-interval must be positive"))
	}
	if c.ReplicaID != "" && !validReplicaID(c.ReplicaID) {
		errs = append(errs, fmt.Errorf("--replica-id %q: want 1 to 63 letters, digits, '.', '_' or '-', such as a pod name", c.ReplicaID))
	}
	if c.MaxPeriodDays < 0 {
		errs = append(errs, errors.New("--max-period-days must be positive"))
	}
	if c.RateLimit < 0 || c.RateBurst < 0 {
		errs = append(errs, errors.New("--rate-limit and --rate-burst must be 0 (no limit) or more"))
	}
	if (c.MaxBodyBytes != 0 && c.MaxBodyBytes < 1024) || (c.MaxBatchBytes != 0 && c.MaxBatchBytes < 1024) {
		errs = append(errs, errors.New("--max-request-bytes and --max-batch-bytes must be at least 1024"))
	}
	if c.MaxBatch < 0 {
		errs = append(errs, errors.New("--max-batch must be positive"))
	}
	if c.Retention < 0 {
		errs = append(errs, errors.New("--retention-interval must be 0 or more"))
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		errs = append(errs, errors.New("--tls-cert and --tls-key go together"))
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		errs = append(errs, fmt.Errorf("--log-format %q: want text or json", c.LogFormat))
	}
	c.SigningKey = ""
	if c.signingKeyFile != "" {
		b, err := os.ReadFile(c.signingKeyFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("--signing-key-file: %w", err))
		}
		c.SigningKey = strings.TrimSpace(string(b))
	}
	c.TrustedProxies = nil
	for _, s := range strings.Split(c.trustedProxies, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if !strings.Contains(s, "/") {
			if strings.Contains(s, ":") {
				s += "/128"
			} else {
				s += "/32"
			}
		}
		_, n, err := net.ParseCIDR(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("--trusted-proxies: %w", err))
			continue
		}
		c.TrustedProxies = append(c.TrustedProxies, n)
	}
	return errors.Join(errs...)
}

// validReplicaID accepts what a pod or host name holds; no '/', which
// separates the parts of a lease owner.
func validReplicaID(id string) bool {
	if len(id) > 63 {
		return false
	}
	for _, r := range id {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
		default:
			return false
		}
	}
	return true
}

func env(k, def string) string {
	if v, ok := os.LookupEnv(k); ok {
		return v
	}
	return def
}

func (c *Config) envInt(k string, def int) int {
	if v, ok := os.LookupEnv(k); ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			c.envErrs = append(c.envErrs, fmt.Errorf("%s=%q: want a whole number", k, v))
			return def
		}
		return n
	}
	return def
}

func (c *Config) envInt64(k string, def int64) int64 {
	if v, ok := os.LookupEnv(k); ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			c.envErrs = append(c.envErrs, fmt.Errorf("%s=%q: want a whole number", k, v))
			return def
		}
		return n
	}
	return def
}

func (c *Config) envFloat(k string, def float64) float64 {
	if v, ok := os.LookupEnv(k); ok {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			c.envErrs = append(c.envErrs, fmt.Errorf("%s=%q: want a number", k, v))
			return def
		}
		return f
	}
	return def
}

func (c *Config) envDuration(k string, def time.Duration) time.Duration {
	if v, ok := os.LookupEnv(k); ok {
		d, err := time.ParseDuration(v)
		if err != nil {
			c.envErrs = append(c.envErrs, fmt.Errorf("%s=%q: want a duration such as 30s", k, v))
			return def
		}
		return d
	}
	return def
}
