package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"connectrpc.com/connect"
	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"github.com/exportd/exportd/gen/go/audit/v1/auditv1connect"
)

// Exit codes scripts can rely on; printed by exportctl --help.
const (
	exitOK           = 0
	exitError        = 1
	exitUsage        = 2
	exitAuth         = 3
	exitNotFound     = 4
	exitPrecondition = 5
	exitFailed       = 6
	exitVerify       = 7
)

const exitCodesHelp = `Exit codes:
  0  success
  1  error (network, server, or a download that does not verify)
  2  usage: bad flags, arguments or configuration, or input the server rejects (invalid_argument)
  3  authentication or authorization: unauthenticated or permission_denied
  4  not found: no such export for this key's tenant
  5  failed precondition: add-on not enabled, export not ready, or expired
  6  the export job FAILED
  7  verification failed: a report that does not match its signed manifest,
     or an audit hash chain with a broken link`

const defaultURL = "http://localhost:8080"

// app is what every command shares: resolved settings and the terminal.
type app struct {
	url, apiKey, protocol, output, caFile, configFile string

	stdin          io.Reader
	stdout, stderr io.Writer
	tty            bool // stderr is a terminal: draw progress bars
}

// cliError carries an exit code and the message the user sees.
type cliError struct {
	code int
	err  error
}

func (e *cliError) Error() string { return e.err.Error() }
func (e *cliError) Unwrap() error { return e.err }

func usageErr(format string, a ...any) error {
	return &cliError{code: exitUsage, err: fmt.Errorf(format, a...)}
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr}
	if f, ok := stderr.(*os.File); ok {
		a.tty = isatty.IsTerminal(f.Fd())
	}
	root := a.newRoot()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	code := exitCode(err)
	fmt.Fprintln(stderr, "exportctl:", message(err))
	if code == exitUsage && !isServerError(err) {
		fmt.Fprintln(stderr, "Run 'exportctl --help' for usage.")
	}
	return code
}

func (a *app) newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "exportctl",
		Short: "Create, watch and download exportd compliance reports",
		Long: `exportctl talks to an exportd server: it creates SOC 2, GDPR and HIPAA
exports, shows their progress, downloads the reports and verifies them
against their signed manifests; it dry-runs the export policy, and tails and
verifies the tenant's audit log.

Configuration, highest precedence first: flags, the environment
(EXPORTD_URL, EXPORTD_API_KEY, EXPORTD_PROTOCOL, EXPORTD_OUTPUT,
EXPORTD_CA_FILE), then the config file (default
~/.config/exportctl/config.yaml), with keys url, api_key, protocol, output,
ca_file. Prefer the environment or the file for the API key: flags show up
in process listings and shell history.

` + exitCodesHelp,
		Example: `  export EXPORTD_URL=https://exportd.example.com EXPORTD_API_KEY=tl_live_…
  exportctl export create --type soc2 --from 2026-01-01 --to 2026-03-31 --format csv --wait
  exportctl export list --status COMPLETED
  exportctl export download job_… --resume -o report.csv --with-manifest
  exportctl verify --report report.csv --manifest report.csv.manifest.json
  exportctl policy check
  exportctl events tail --follow --category access
  exportctl events verify`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return a.resolve(cmd.Flags())
		},
	}
	pf := root.PersistentFlags()
	pf.StringVar(&a.url, "url", "", "exportd base URL (env EXPORTD_URL; default "+defaultURL+")")
	pf.StringVar(&a.apiKey, "api-key", "", "API key (env EXPORTD_API_KEY)")
	pf.StringVar(&a.protocol, "protocol", "", "wire protocol: connect or grpc (env EXPORTD_PROTOCOL; default connect)")
	pf.StringVar(&a.output, "output", "", "output format: table or json (env EXPORTD_OUTPUT; default table)")
	pf.StringVar(&a.caFile, "ca-file", "", "PEM file of CA certificates to trust besides the system's (env EXPORTD_CA_FILE)")
	pf.StringVar(&a.configFile, "config", "", "config file (default ~/.config/exportctl/config.yaml)")
	_ = root.RegisterFlagCompletionFunc("protocol", fixedCompletion("connect", "grpc"))
	_ = root.RegisterFlagCompletionFunc("output", fixedCompletion("table", "json"))
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &cliError{code: exitUsage, err: err} })

	root.AddCommand(a.exportCmd(), a.verifyCmd(), a.policyCmd(), a.eventsCmd(), a.whoamiCmd())
	return root
}

func fixedCompletion(values ...string) cobra.CompletionFunc {
	return func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return values, cobra.ShellCompDirectiveNoFileComp
	}
}

// fileConfig is the config file's shape.
type fileConfig struct {
	URL      string `yaml:"url"`
	APIKey   string `yaml:"api_key"`
	Protocol string `yaml:"protocol"`
	Output   string `yaml:"output"`
	CAFile   string `yaml:"ca_file"`
}

// resolve fills settings left unset by flags from the environment, then the
// config file, then defaults, and checks them.
func (a *app) resolve(fs *pflag.FlagSet) error {
	var fc fileConfig
	path, explicit := a.configFile, a.configFile != ""
	if !explicit {
		if dir, err := os.UserConfigDir(); err == nil {
			path = filepath.Join(dir, "exportctl", "config.yaml")
		}
	}
	if path != "" {
		b, err := os.ReadFile(path)
		switch {
		case err == nil:
			if err := yaml.Unmarshal(b, &fc); err != nil {
				return usageErr("read config %s: %w", path, err)
			}
		case explicit || !errors.Is(err, os.ErrNotExist):
			return usageErr("read config: %w", err)
		}
	}
	pick := func(dst *string, flag, env, file, def string) {
		if fs.Changed(flag) {
			return
		}
		for _, v := range []string{os.Getenv(env), file, def} {
			if v != "" {
				*dst = v
				return
			}
		}
	}
	pick(&a.url, "url", "EXPORTD_URL", fc.URL, defaultURL)
	pick(&a.apiKey, "api-key", "EXPORTD_API_KEY", fc.APIKey, "")
	pick(&a.protocol, "protocol", "EXPORTD_PROTOCOL", fc.Protocol, "connect")
	pick(&a.output, "output", "EXPORTD_OUTPUT", fc.Output, "table")
	pick(&a.caFile, "ca-file", "EXPORTD_CA_FILE", fc.CAFile, "")
	a.url = strings.TrimRight(a.url, "/")
	if !strings.HasPrefix(a.url, "http://") && !strings.HasPrefix(a.url, "https://") {
		return usageErr("--url %q: want an http:// or https:// URL", a.url)
	}
	if a.protocol != "connect" && a.protocol != "grpc" {
		return usageErr("--protocol %q: want connect or grpc", a.protocol)
	}
	if a.output != "table" && a.output != "json" {
		return usageErr("--output %q: want table or json", a.output)
	}
	return nil
}

// httpClient speaks HTTP/1.1 or HTTP/2 over TLS for https:// URLs, and h2c
// for gRPC over http:// (gRPC needs HTTP/2; Connect is happy with HTTP/1.1).
func (a *app) httpClient() (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if a.caFile != "" {
		pem, err := os.ReadFile(a.caFile)
		if err != nil {
			return nil, usageErr("read --ca-file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, usageErr("--ca-file %s holds no PEM certificate", a.caFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	p := new(http.Protocols)
	switch {
	case strings.HasPrefix(a.url, "https://"):
		p.SetHTTP1(a.protocol != "grpc")
		p.SetHTTP2(true)
	case a.protocol == "grpc":
		p.SetUnencryptedHTTP2(true)
	default:
		p.SetHTTP1(true)
	}
	tr.Protocols = p
	return &http.Client{Transport: tr}, nil
}

// clients returns the generated service clients, sending the API key on
// every call.
func (a *app) clients() (auditv1connect.ExportServiceClient, auditv1connect.DownloadServiceClient, error) {
	hc, opts, err := a.connectClient()
	if err != nil {
		return nil, nil, err
	}
	return auditv1connect.NewExportServiceClient(hc, a.url, opts...),
		auditv1connect.NewDownloadServiceClient(hc, a.url, opts...), nil
}

// policyClient returns the PolicyService client.
func (a *app) policyClient() (auditv1connect.PolicyServiceClient, error) {
	hc, opts, err := a.connectClient()
	if err != nil {
		return nil, err
	}
	return auditv1connect.NewPolicyServiceClient(hc, a.url, opts...), nil
}

// auditLogClient returns the AuditLogService client.
func (a *app) auditLogClient() (auditv1connect.AuditLogServiceClient, error) {
	hc, opts, err := a.connectClient()
	if err != nil {
		return nil, err
	}
	return auditv1connect.NewAuditLogServiceClient(hc, a.url, opts...), nil
}

// connectClient is what every generated client is built from: the HTTP
// client and the options that send the API key in the chosen protocol.
func (a *app) connectClient() (*http.Client, []connect.ClientOption, error) {
	if err := a.needKey(); err != nil {
		return nil, nil, err
	}
	hc, err := a.httpClient()
	if err != nil {
		return nil, nil, err
	}
	opts := []connect.ClientOption{connect.WithInterceptors(keyInterceptor(a.apiKey))}
	if a.protocol == "grpc" {
		opts = append(opts, connect.WithGRPC())
	}
	return hc, opts, nil
}

func (a *app) needKey() error {
	if a.apiKey == "" {
		return usageErr("no API key: set EXPORTD_API_KEY, --api-key, or api_key in the config file")
	}
	return nil
}

// keyInterceptor sets the X-API-Key and User-Agent headers.
type keyInterceptor string

func (k keyInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		req.Header().Set("X-API-Key", string(k))
		req.Header().Set("User-Agent", "exportctl")
		return next(ctx, req)
	}
}

func (k keyInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		conn := next(ctx, spec)
		conn.RequestHeader().Set("X-API-Key", string(k))
		conn.RequestHeader().Set("User-Agent", "exportctl")
		return conn
	}
}

func (k keyInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}

// exitCode maps an error to the documented exit codes.
func exitCode(err error) int {
	var ce *cliError
	if errors.As(err, &ce) {
		return ce.code
	}
	switch connect.CodeOf(err) {
	case connect.CodeUnauthenticated, connect.CodePermissionDenied:
		return exitAuth
	case connect.CodeNotFound:
		return exitNotFound
	case connect.CodeFailedPrecondition:
		return exitPrecondition
	case connect.CodeInvalidArgument:
		return exitUsage
	}
	if strings.HasPrefix(err.Error(), "unknown command") || strings.Contains(err.Error(), "arg(s)") ||
		strings.HasPrefix(err.Error(), "required flag") {
		return exitUsage
	}
	return exitError
}

func isServerError(err error) bool {
	var ce *connect.Error
	return errors.As(err, &ce)
}

// message is what the user reads: the server's message with its code, and
// field violations one per line.
func message(err error) string {
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return err.Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s", ce.Code(), ce.Message())
	for _, v := range violations(ce) {
		b.WriteString("\n  " + v)
	}
	return b.String()
}
