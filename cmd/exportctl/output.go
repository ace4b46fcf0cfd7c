package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	validatepb "buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	auditv1 "github.com/exportd/exportd/gen/go/audit/v1"
)

// printJSON writes a message as snake_case JSON, the API's wire form,
// indented.
func (a *app) printJSON(m proto.Message) error {
	b, err := stableJSON(m, "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(a.stdout, string(b))
	return err
}

// stableJSON encodes m as protojson with proto names, then re-spaces it:
// protojson varies its whitespace on purpose, and scripts that diff or grep
// exportctl's output deserve the same bytes every time.
func stableJSON(m proto.Message, indent string) ([]byte, error) {
	b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode output: %w", err)
	}
	var out bytes.Buffer
	if indent == "" {
		err = json.Compact(&out, b)
	} else {
		err = json.Indent(&out, b, "", indent)
	}
	if err != nil {
		return nil, fmt.Errorf("encode output: %w", err)
	}
	return out.Bytes(), nil
}

// table writes rows aligned in columns under a header.
func (a *app) table(header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// stamp shows a time in UTC, as the API speaks it; "-" when unset.
func stamp(t *timestamppb.Timestamp) string {
	if t == nil {
		return "-"
	}
	return t.AsTime().UTC().Format(time.RFC3339)
}

func status(j *auditv1.ExportJob) string { return j.GetStatus().String() }

func progress(j *auditv1.ExportJob) string {
	if j.GetRowsTotal() <= 0 {
		return fmt.Sprintf("%d", j.GetRowsDone())
	}
	return fmt.Sprintf("%d/%d", j.GetRowsDone(), j.GetRowsTotal())
}

// printJob shows one job: every field as a list, or JSON.
func (a *app) printJob(j *auditv1.ExportJob) error {
	if a.output == "json" {
		return a.printJSON(j)
	}
	rows := [][]string{
		{"job_id", j.GetJobId()},
		{"status", status(j)},
		{"report_type", j.GetReportType()},
		{"format", j.GetFormat()},
		{"period", stamp(j.GetStartDate()) + " .. " + stamp(j.GetEndDate()) + " (UTC)"},
		{"rows", progress(j)},
		{"requested_by", j.GetRequestedBy()},
		{"created_at", stamp(j.GetCreatedAt())},
		{"estimated_completion", stamp(j.GetEstimatedCompletion())},
		{"completed_at", stamp(j.GetCompletedAt())},
		{"expires_at", stamp(j.GetExpiresAt())},
		{"filename", j.GetFilename()},
		{"size_bytes", fmt.Sprint(j.GetSizeBytes())},
		{"sha256", j.GetSha256()},
		{"attempt", fmt.Sprint(j.GetAttempt())},
		{"failed_attempts", fmt.Sprintf("%d of %d", j.GetFailedAttempts(), j.GetMaxAttempts())},
	}
	if j.GetError() != "" {
		rows = append(rows, []string{"error", j.GetError()})
	}
	return a.fields(rows)
}

// fields writes name: value pairs, the values aligned.
func (a *app) fields(rows [][]string) error {
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	for _, r := range rows {
		fmt.Fprintf(tw, "%s:\t%s\n", r[0], r[1])
	}
	return tw.Flush()
}

// violations lists the field violations an invalid_argument error carries.
func violations(ce *connect.Error) []string {
	var out []string
	for _, d := range ce.Details() {
		m, err := d.Value()
		if err != nil {
			continue
		}
		vs, ok := m.(*validatepb.Violations)
		if !ok {
			continue
		}
		for _, v := range vs.GetViolations() {
			var path []string
			for _, e := range v.GetField().GetElements() {
				path = append(path, e.GetFieldName())
			}
			out = append(out, strings.Join(path, ".")+": "+v.GetMessage())
		}
	}
	return out
}
