package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/exportd/exportd/reports"
)

// keysPath is where exportd publishes its manifest verification keys.
const keysPath = "/.well-known/exportd-keys.json"

func (a *app) verifyCmd() *cobra.Command {
	var report, manifest, keys string
	cmd := &cobra.Command{
		Use:   "verify --report FILE --manifest FILE [--keys FILE|URL]",
		Short: "Check a report against its signed manifest, offline",
		Long: `Check that a downloaded report is exactly the artifact its manifest
describes, and that the manifest was signed by one of exportd's keys. No API
key is needed and nothing is sent to the server: with --keys FILE (a saved
copy of ` + keysPath + `) the check is fully offline; with
--keys URL, or by default $EXPORTD_URL` + keysPath + `, only the public
key set is fetched.

On success it prints the job, report type, period, rows, SHA-256 and the
signing key id, and exits 0. Otherwise it says exactly what fails (a key not in
the set, a signature that does not verify, the manifest of another report, rows
removed or added, an edited count, a changed byte) and exits 7.`,
		Example: `  exportctl export download job_… -o report.csv --with-manifest
  exportctl verify --report report.csv --manifest report.csv.manifest.json
  curl -so keys.json https://exportd.example.com` + keysPath + `
  exportctl verify --report report.csv --manifest report.csv.manifest.json --keys keys.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			mb, err := os.ReadFile(manifest)
			if err != nil {
				return usageErr("read --manifest: %w", err)
			}
			ks, err := a.keySet(cmd.Context(), keys)
			if err != nil {
				return err
			}
			f, err := os.Open(report)
			if err != nil {
				return usageErr("read --report: %w", err)
			}
			defer func() { _ = f.Close() }()
			m, err := reports.Verify(f, mb, ks)
			if err != nil {
				return &cliError{code: exitVerify, err: fmt.Errorf("%s does not verify against %s: %w", report, manifest, err)}
			}
			return a.printVerified(report, m)
		},
	}
	f := cmd.Flags()
	f.StringVar(&report, "report", "", "the report file, as downloaded (required)")
	f.StringVar(&manifest, "manifest", "", "its manifest, from export manifest or download --with-manifest (required)")
	f.StringVar(&keys, "keys", "", "the key set: a JWKS file or URL (default: $EXPORTD_URL"+keysPath+")")
	_ = cmd.MarkFlagRequired("report")
	_ = cmd.MarkFlagRequired("manifest")
	_ = cmd.MarkFlagFilename("report")
	_ = cmd.MarkFlagFilename("manifest", "json")
	return cmd
}

// keySet reads the verification keys from a JWKS file or URL; the default
// is the configured server's published set.
func (a *app) keySet(ctx context.Context, keys string) (reports.KeySet, error) {
	if keys == "" {
		keys = a.url + keysPath
	}
	if !strings.HasPrefix(keys, "http://") && !strings.HasPrefix(keys, "https://") {
		b, err := os.ReadFile(keys)
		if err != nil {
			return reports.KeySet{}, usageErr("read --keys: %w", err)
		}
		ks, err := reports.ParseJWKS(b)
		if err != nil {
			return reports.KeySet{}, usageErr("--keys %s: %w", keys, err)
		}
		return ks, nil
	}
	hc, err := a.httpClient()
	if err != nil {
		return reports.KeySet{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, keys, nil)
	if err != nil {
		return reports.KeySet{}, usageErr("--keys %q: %w", keys, err)
	}
	req.Header.Set("User-Agent", "exportctl")
	res, err := hc.Do(req)
	if err != nil {
		return reports.KeySet{}, fmt.Errorf("fetch key set: %w", err)
	}
	defer func() { _ = res.Body.Close() }()
	b, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return reports.KeySet{}, fmt.Errorf("fetch key set: %w", err)
	}
	if res.StatusCode != http.StatusOK {
		return reports.KeySet{}, restError(keys, res.Status, b)
	}
	ks, err := reports.ParseJWKS(b)
	if err != nil {
		return reports.KeySet{}, fmt.Errorf("key set from %s: %w", keys, err)
	}
	return ks, nil
}

// printVerified shows what was verified.
func (a *app) printVerified(report string, m reports.Manifest) error {
	if a.output == "json" {
		out := map[string]any{
			"verified": true, "report": report, "job_id": m.JobID, "report_type": m.ReportType,
			"format": m.Format, "tenant_id": m.TenantID, "period_requested": m.PeriodRequested,
			"generated_at": m.GeneratedAt, "rows": m.Rows, "counts": m.Counts, "report_sha256": m.ReportSHA256,
			"report_size": m.ReportSize, "signing_key_id": m.SigningKeyID, "chain_hash": m.ChainHash,
			"last_sequence": m.LastSequence,
		}
		b, err := json.MarshalIndent(out, "", "  ")
		if err != nil {
			return fmt.Errorf("encode output: %w", err)
		}
		_, err = fmt.Fprintln(a.stdout, string(b))
		return err
	}
	counts := make([]string, 0, len(m.Counts))
	for k, v := range m.Counts {
		counts = append(counts, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(counts)
	rows := [][]string{
		{"report", report + ": verified"},
		{"job_id", m.JobID},
		{"report_type", m.ReportType + " (" + m.Format + ")"},
		{"tenant_id", m.TenantID},
		{"period", m.PeriodRequested.Start + " .. " + m.PeriodRequested.End + " (UTC, end inclusive)"},
		{"generated_at", m.GeneratedAt},
		{"rows", fmt.Sprintf("%d (%s)", m.Rows, strings.Join(counts, ", "))},
		{"sha256", m.ReportSHA256},
		{"size_bytes", fmt.Sprint(m.ReportSize)},
		{"signing_key_id", m.SigningKeyID},
	}
	if m.ChainHash != "" {
		rows = append(rows, []string{"chain_hash", fmt.Sprintf("%s (at sequence %d)", m.ChainHash, m.LastSequence)})
	}
	return a.fields(rows)
}
