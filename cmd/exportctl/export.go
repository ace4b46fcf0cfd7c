package main

import (
	"fmt"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/timestamppb"

	auditv1 "github.com/exportd/exportd/gen/go/audit/v1"
)

func (a *app) exportCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Create, list, watch and download exports, and fetch their manifests",
	}
	cmd.AddCommand(a.exportCreateCmd(), a.exportListCmd(), a.exportGetCmd(), a.exportWatchCmd(),
		a.exportDownloadCmd(), a.exportManifestCmd(), a.exportCancelCmd())
	return cmd
}

func (a *app) exportCreateCmd() *cobra.Command {
	var (
		reportType, from, to, format, file, idem string
		wait, withManifest                       bool
	)
	cmd := &cobra.Command{
		Use:   "create --type soc2|gdpr|hipaa --from DATE --to DATE [--format json|csv] [--wait [-o FILE]]",
		Short: "Create an export; with --wait, follow it and download the report",
		Long: `Create an export of the period --from .. --to (UTC). Dates are RFC3339
(2026-01-01T00:00:00Z) or YYYY-MM-DD; a --to day is inclusive (2026-03-31 means
up to 2026-03-31T23:59:59Z).

With --wait, a progress bar follows the job; when it completes the report is
downloaded to -o FILE (default: the server's file name) and its SHA-256 checked.`,
		Example: `  exportctl export create --type soc2 --from 2026-01-01 --to 2026-03-31 --format csv --wait
  exportctl export create --type gdpr --from 2026-01-01T00:00:00Z --to 2026-06-30 --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			start, err := parseDate(from, false)
			if err != nil {
				return usageErr("--from: %w", err)
			}
			end, err := parseDate(to, true)
			if err != nil {
				return usageErr("--to: %w", err)
			}
			if (file != "" || withManifest) && !wait {
				return usageErr("-o/--file and --with-manifest need --wait (or use export download)")
			}
			exports, downloads, err := a.clients()
			if err != nil {
				return err
			}
			req := connect.NewRequest(&auditv1.CreateExportRequest{
				ReportType: reportType, Format: format,
				StartDate: timestamppb.New(start), EndDate: timestamppb.New(end),
			})
			if idem != "" {
				req.Header().Set("Idempotency-Key", idem)
			}
			res, err := exports.CreateExport(cmd.Context(), req)
			if err != nil {
				return err
			}
			if !wait {
				if a.output == "json" {
					return a.printJSON(res.Msg)
				}
				return a.table([]string{"JOB ID", "STATUS", "ESTIMATED COMPLETION"},
					[][]string{{res.Msg.GetJobId(), res.Msg.GetStatus().String(), stamp(res.Msg.GetEstimatedCompletion())}})
			}
			fmt.Fprintf(a.stderr, "created %s (%s %s, %s .. %s UTC)\n", res.Msg.GetJobId(), reportType, format,
				start.Format(time.RFC3339), end.Format(time.RFC3339))
			j, err := a.watch(cmd.Context(), exports, res.Msg.GetJobId())
			if err != nil {
				return err
			}
			if err := jobOutcome(j); err != nil {
				return err
			}
			return a.download(cmd.Context(), downloads, j, file, false, withManifest)
		},
	}
	f := cmd.Flags()
	f.StringVar(&reportType, "type", "", "report type: soc2, gdpr or hipaa (required)")
	f.StringVar(&from, "from", "", "start of the period: RFC3339 or YYYY-MM-DD (required)")
	f.StringVar(&to, "to", "", "end of the period, inclusive: RFC3339 or YYYY-MM-DD (required)")
	f.StringVar(&format, "format", "json", "report format: json or csv")
	f.BoolVar(&wait, "wait", false, "follow the job with a progress bar, then download the report")
	f.StringVarP(&file, "file", "o", "", "with --wait: where to write the report (default: the server's file name)")
	f.BoolVar(&withManifest, "with-manifest", false, "with --wait: also save the signed manifest as FILE"+manifestSuffix)
	f.StringVar(&idem, "idempotency-key", "", "send an Idempotency-Key: retrying with the same key returns the same job")
	_ = cmd.MarkFlagRequired("type")
	_ = cmd.MarkFlagRequired("from")
	_ = cmd.MarkFlagRequired("to")
	_ = cmd.RegisterFlagCompletionFunc("type", fixedCompletion("soc2", "gdpr", "hipaa"))
	_ = cmd.RegisterFlagCompletionFunc("format", fixedCompletion("json", "csv"))
	return cmd
}

// parseDate reads RFC3339 or YYYY-MM-DD; a date-only end covers its whole
// day, to the last whole second as the API's inclusive end expects.
func parseDate(s string, end bool) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither RFC3339 (2026-01-01T00:00:00Z) nor YYYY-MM-DD", s)
	}
	if end {
		t = t.Add(24*time.Hour - time.Second)
	}
	return t, nil
}

// jobOutcome turns a terminal job that has nothing to download into the
// error and exit code scripts expect.
func jobOutcome(j *auditv1.ExportJob) error {
	switch j.GetStatus() {
	case auditv1.ExportStatus_COMPLETED:
		return nil
	case auditv1.ExportStatus_FAILED:
		return &cliError{code: exitFailed, err: fmt.Errorf("export %s FAILED: %s", j.GetJobId(), j.GetError())}
	case auditv1.ExportStatus_EXPIRED:
		return &cliError{code: exitPrecondition, err: fmt.Errorf("export %s EXPIRED at %s; create a new export", j.GetJobId(), stamp(j.GetExpiresAt()))}
	}
	return fmt.Errorf("export %s is %s", j.GetJobId(), j.GetStatus())
}

func (a *app) exportListCmd() *cobra.Command {
	var (
		st, reportType string
		limit          int
		all            bool
	)
	cmd := &cobra.Command{
		Use:   "list [--status S] [--type T] [--limit N | --all]",
		Short: "List exports, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			exports, _, err := a.clients()
			if err != nil {
				return err
			}
			req := &auditv1.ListExportsRequest{ReportType: reportType, PageSize: int32(min(max(limit, 1), 100))} //nolint:gosec // bounded above
			if st != "" {
				v, ok := auditv1.ExportStatus_value[strings.ToUpper(st)]
				if !ok || v == 0 {
					return usageErr("--status %q: want PENDING, RUNNING, COMPLETED, FAILED or EXPIRED", st)
				}
				req.Status = auditv1.ExportStatus(v)
			}
			out := &auditv1.ListExportsResponse{}
			for {
				res, err := exports.ListExports(cmd.Context(), connect.NewRequest(req))
				if err != nil {
					return err
				}
				out.Exports = append(out.Exports, res.Msg.GetExports()...)
				out.NextPageToken = res.Msg.GetNextPageToken()
				if out.NextPageToken == "" || (!all && len(out.Exports) >= limit) {
					break
				}
				req.PageToken = out.NextPageToken
			}
			if !all && len(out.Exports) > limit {
				out.Exports = out.Exports[:limit]
			}
			if a.output == "json" {
				return a.printJSON(out)
			}
			rows := make([][]string, 0, len(out.Exports))
			for _, j := range out.Exports {
				rows = append(rows, []string{j.GetJobId(), j.GetReportType(), j.GetFormat(), status(j),
					j.GetStartDate().AsTime().UTC().Format(time.DateOnly) + ".." + j.GetEndDate().AsTime().UTC().Format(time.DateOnly),
					progress(j), stamp(j.GetCreatedAt())})
			}
			if err := a.table([]string{"JOB ID", "TYPE", "FORMAT", "STATUS", "PERIOD (UTC)", "ROWS", "CREATED"}, rows); err != nil {
				return err
			}
			if out.NextPageToken != "" && !all {
				fmt.Fprintln(a.stderr, "more exports exist: raise --limit or pass --all")
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&st, "status", "", "only this status: PENDING, RUNNING, COMPLETED, FAILED or EXPIRED")
	f.StringVar(&reportType, "type", "", "only this report type: soc2, gdpr or hipaa")
	f.IntVar(&limit, "limit", 20, "show at most this many")
	f.BoolVar(&all, "all", false, "show every export, page after page")
	_ = cmd.RegisterFlagCompletionFunc("status", fixedCompletion("PENDING", "RUNNING", "COMPLETED", "FAILED", "EXPIRED"))
	_ = cmd.RegisterFlagCompletionFunc("type", fixedCompletion("soc2", "gdpr", "hipaa"))
	return cmd
}

func (a *app) exportGetCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "get JOB_ID",
		Short: "Show one export",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			exports, _, err := a.clients()
			if err != nil {
				return err
			}
			res, err := exports.GetExport(cmd.Context(), connect.NewRequest(&auditv1.GetExportRequest{JobId: args[0]}))
			if err != nil {
				return err
			}
			return a.printJob(res.Msg.GetExport())
		},
	}
}

func (a *app) exportWatchCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "watch JOB_ID",
		Short: "Follow an export until it finishes (exit 6 when it FAILED)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			exports, _, err := a.clients()
			if err != nil {
				return err
			}
			j, err := a.watch(cmd.Context(), exports, args[0])
			if err != nil {
				return err
			}
			if err := a.printJob(j); err != nil {
				return err
			}
			return jobOutcome(j)
		},
	}
}

func (a *app) exportDownloadCmd() *cobra.Command {
	var (
		file                 string
		resume, withManifest bool
	)
	cmd := &cobra.Command{
		Use:   "download JOB_ID [-o FILE] [--resume] [--with-manifest]",
		Short: "Download a completed export and verify its SHA-256",
		Long: `Download a completed export to -o FILE (default: the server's file name).
With --resume, a partial FILE is continued from its size instead of started
over. Either way the whole file's SHA-256 is checked against the server's.
With --with-manifest, the signed manifest is saved as FILE.manifest.json, for
exportctl verify.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			exports, downloads, err := a.clients()
			if err != nil {
				return err
			}
			res, err := exports.GetExport(cmd.Context(), connect.NewRequest(&auditv1.GetExportRequest{JobId: args[0]}))
			if err != nil {
				return err
			}
			return a.download(cmd.Context(), downloads, res.Msg.GetExport(), file, resume, withManifest)
		},
	}
	cmd.Flags().StringVarP(&file, "file", "o", "", "where to write the report (default: the server's file name)")
	cmd.Flags().BoolVar(&resume, "resume", false, "continue a partial file from its size")
	cmd.Flags().BoolVar(&withManifest, "with-manifest", false, "also save the signed manifest as FILE"+manifestSuffix)
	return cmd
}

func (a *app) exportCancelCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "cancel JOB_ID",
		Short: "Cancel a PENDING or RUNNING export",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			exports, _, err := a.clients()
			if err != nil {
				return err
			}
			res, err := exports.CancelExport(cmd.Context(), connect.NewRequest(&auditv1.CancelExportRequest{JobId: args[0]}))
			if err != nil {
				return err
			}
			return a.printJob(res.Msg.GetExport())
		},
	}
}

func (a *app) exportManifestCmd() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "manifest JOB_ID [-o FILE]",
		Short: "Fetch the signed manifest of a completed export",
		Long: `Fetch the signed manifest of a completed export, exactly as the server
stores it, to -o FILE or to standard output. Manifests stay available after
the download window closes. Check a report against it offline with
exportctl verify.`,
		Example: `  exportctl export download job_… -o report.csv
  exportctl export manifest job_… -o report.csv.manifest.json
  exportctl verify --report report.csv --manifest report.csv.manifest.json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if file != "" {
				if err := a.saveManifest(cmd.Context(), args[0], file); err != nil {
					return err
				}
				_, err := fmt.Fprintf(a.stderr, "%s: manifest of %s\n", file, args[0])
				return err
			}
			b, err := a.fetchManifest(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			_, err = a.stdout.Write(b)
			return err
		},
	}
	cmd.Flags().StringVarP(&file, "file", "o", "", "where to write the manifest (default: standard output)")
	return cmd
}
