package reports

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"
)

// ErrUnsupported is returned (wrapped) by Generate for a report type or
// format it does not know; callers map it to an invalid-argument answer.
var ErrUnsupported = errors.New("unsupported report type or format")

// TimeLayout is how reports print instants: UTC, RFC 3339, always six
// fractional digits, so that entries sort as text and µs precision survives.
const TimeLayout = "2006-01-02T15:04:05.000000Z"

// progressEvery is how many rows pass between Progress calls and
// cancellation checks: often enough for a live progress bar, rarely enough
// to cost nothing.
const progressEvery = 1000

// bufferSize bounds what Generate holds before handing bytes to w.
const bufferSize = 64 << 10

// Generate writes one report of req.ReportType in req.Format to w, reading
// rows from src as it writes them, and returns what the manifest needs.
//
// Memory does not grow with the number of events: events are encoded as
// they arrive and control evidence is spooled to temporary files. progress,
// if not nil, is called every 1000 rows and once at the end. On error the
// bytes already written to w are not a valid report; callers discard them.
func Generate(ctx context.Context, w io.Writer, req Request, src Source, progress Progress) (Summary, error) {
	var body func(*gen) error
	switch req.ReportType {
	case TypeSOC2:
		body = (*gen).soc2
	case TypeGDPR:
		body = (*gen).gdpr
	case TypeHIPAA:
		body = (*gen).hipaa
	default:
		return Summary{}, fmt.Errorf("generate report: report type %q: %w", req.ReportType, ErrUnsupported)
	}
	if req.Format != FormatJSON && req.Format != FormatCSV {
		return Summary{}, fmt.Errorf("generate report: format %q: %w", req.Format, ErrUnsupported)
	}
	if err := RequireProfile(req.ReportType, req.GDPR, req.HIPAA); err != nil {
		return Summary{}, fmt.Errorf("generate report: %w", err)
	}
	if req.GeneratedAt.IsZero() {
		req.GeneratedAt = time.Now()
	}
	if err := ctx.Err(); err != nil {
		return Summary{}, fmt.Errorf("generate report: %w", err)
	}
	g := &gen{
		ctx:      ctx,
		req:      req,
		src:      src,
		w:        bufio.NewWriterSize(w, bufferSize),
		progress: progress,
		sum:      Summary{Counts: map[string]int64{}},
	}
	if req.Format == FormatCSV {
		// Records end in LF, not RFC 4180's CRLF: in CRLF mode encoding/csv
		// drops a bare CR inside a field, which would alter audit values.
		// Spreadsheets and CSV readers accept either.
		g.csv = &csvWriter{w: g.w}
		g.rec = make([]string, len(Columns))
		// Spreadsheet programs opened by double-click read a CSV without
		// a byte-order mark in the system's legacy code page, which garbles
		// every non-ASCII name; with it they read UTF-8.
		if _, err := g.w.WriteString(CSVBOM); err != nil {
			return Summary{}, fmt.Errorf("generate %s report: write: %w", req.ReportType, err)
		}
	}
	if err := body(g); err != nil {
		return Summary{}, fmt.Errorf("generate %s report: %w", req.ReportType, err)
	}
	if err := g.w.Flush(); err != nil {
		return Summary{}, fmt.Errorf("generate %s report: write: %w", req.ReportType, err)
	}
	if progress != nil {
		progress(g.sum.Rows)
	}
	return g.sum, nil
}

// gen is one report being generated.
type gen struct {
	ctx      context.Context
	req      Request
	src      Source
	w        *bufio.Writer
	csv      *csvWriter // nil for JSON
	rec      []string   // reused CSV record, len(Columns)
	buf      []byte     // reused encoding scratch
	progress Progress
	sum      Summary
	keys     int // top-level JSON keys written so far
	items    int // elements written in the current JSON array
}

// row counts one record written, reporting progress and honouring
// cancellation every progressEvery rows.
func (g *gen) row() error {
	g.sum.Rows++
	if g.sum.Rows%progressEvery != 0 {
		return nil
	}
	if g.progress != nil {
		g.progress(g.sum.Rows)
	}
	return g.ctx.Err()
}

// included records an audit event as part of the report.
func (g *gen) included(e *Event) {
	if g.sum.FirstSequence == 0 || e.Sequence < g.sum.FirstSequence {
		g.sum.FirstSequence = e.Sequence
	}
	if e.Sequence > g.sum.LastSequence {
		g.sum.LastSequence = e.Sequence
	}
}

func (g *gen) filter() EventFilter {
	return EventFilter{From: g.req.AppliedStart, To: g.req.AppliedEnd, MaxSequence: g.req.Watermark}
}

// --- JSON: one top-level object, one key per line, streamed arrays with one
// element per line, so files diff well and never need to be held whole.

func (g *gen) key(k string) {
	if g.keys == 0 {
		g.w.WriteString("{\n  ")
	} else {
		g.w.WriteString(",\n  ")
	}
	g.keys++
	g.buf = appendString(g.buf[:0], k)
	g.buf = append(g.buf, ": "...)
	g.w.Write(g.buf)
}

// value writes a small, bounded value (never a stream of rows).
func (g *gen) value(k string, v any) error {
	g.key(k)
	b, err := json.MarshalIndent(v, "  ", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", k, err)
	}
	_, err = g.w.Write(b)
	return err
}

func (g *gen) beginArray(k string) {
	g.key(k)
	g.w.WriteByte('[')
	g.items = 0
}

// item writes one array element already encoded in b.
func (g *gen) item(b []byte) error {
	if g.items == 0 {
		g.w.WriteString("\n    ")
	} else {
		g.w.WriteString(",\n    ")
	}
	g.items++
	_, err := g.w.Write(b)
	return err
}

func (g *gen) endArray() {
	if g.items > 0 {
		g.w.WriteString("\n  ")
	}
	g.w.WriteByte(']')
}

func (g *gen) endObject() error {
	if g.keys == 0 {
		g.w.WriteByte('{')
	}
	_, err := g.w.WriteString("\n}\n")
	return err
}

// header writes the fields every report starts with.
func (g *gen) header() error {
	r := g.req
	g.strKey("report_type", r.ReportType)
	g.strKey("tenant_id", r.TenantID)
	g.strKey("generated_at", fmtTime(r.GeneratedAt))
	g.strKey("period_start", fmtEcho(r.PeriodStart))
	g.strKey("period_end", fmtEcho(r.PeriodEnd))
	if err := g.value("period_applied", period{fmtTime(r.AppliedStart), fmtTime(r.AppliedEnd)}); err != nil {
		return err
	}
	g.intKey("as_of_sequence", r.Watermark)
	return nil
}

type period struct {
	Start string `json:"start"`
	End   string `json:"end"`
}

func (g *gen) strKey(k, v string) {
	g.key(k)
	g.buf = appendString(g.buf[:0], v)
	g.w.Write(g.buf)
}

func (g *gen) intKey(k string, n int64) {
	g.key(k)
	g.buf = strconv.AppendInt(g.buf[:0], n, 10)
	g.w.Write(g.buf)
}

// fmtTime prints an instant the way every report timestamp is printed.
func fmtTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return string(appendTime(nil, t))
}

// fmtEcho prints the requested period bounds as the client wrote them:
// fractional seconds only when present, so "2026-03-31T23:59:59Z" comes
// back unchanged.
func fmtEcho(t time.Time) string {
	return t.UTC().Format(time.RFC3339Nano)
}
