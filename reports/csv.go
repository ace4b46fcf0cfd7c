package reports

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Columns is the one CSV column set shared by every report type, in order.
// Each row fills the columns that apply to its record_type and leaves the
// rest empty; schema/csv-columns.md documents which is which. Columns are
// only ever appended, so spreadsheets and scripts keyed on positions keep
// working across generator versions.
var Columns = []string{
	"record_type",
	"report_type", "tenant_id", "generated_at", "period_start", "period_end",
	"period_applied_start", "period_applied_end", "as_of_sequence",
	"audit_entries", "access_entries",
	"sequence", "occurred_at", "category", "action", "outcome",
	"actor_id", "actor_type", "resource_type", "resource_id", "phi",
	"ip", "user_agent", "request_id", "metadata",
	"framework", "control_id", "statement", "count", "first_occurrence", "last_occurrence",
	"name", "entity_type", "role", "email", "phone", "address", "identifiers",
	"purpose", "legal_basis", "data_categories", "data_subjects", "recipients",
	"third_party_disclosures", "international_transfers", "retention_period", "security_measures",
	"attestation_id", "issuer_id", "issuer_name", "subject", "schema", "status",
	"created_at", "revoked_at", "superseded_by", "superseded_at", "in_period",
	"title", "log_evidence", "evidence_basis", "tls", "tls_min_version",
	"actor_name",
}

// Column indexes into Columns.
const (
	colRecordType = iota
	colReportType
	colTenantID
	colGeneratedAt
	colPeriodStart
	colPeriodEnd
	colAppliedStart
	colAppliedEnd
	colAsOfSequence
	colAuditEntries
	colAccessEntries
	colSequence
	colOccurredAt
	colCategory
	colAction
	colOutcome
	colActorID
	colActorType
	colResourceType
	colResourceID
	colPHI
	colIP
	colUserAgent
	colRequestID
	colMetadata
	colFramework
	colControlID
	colStatement
	colCount
	colFirst
	colLast
	colName
	colEntityType
	colRole
	colEmail
	colPhone
	colAddress
	colIdentifiers
	colPurpose
	colLegalBasis
	colDataCategories
	colDataSubjects
	colRecipients
	colDisclosures
	colTransfers
	colRetention
	colSecurity
	colAttestationID
	colIssuerID
	colIssuerName
	colSubject
	colSchema
	colStatus
	colCreatedAt
	colRevokedAt
	colSupersededBy
	colSupersededAt
	colInPeriod
	colTitle
	colLogEvidence
	colEvidenceBasis
	colTLS
	colTLSMinVersion
	colActorName
	numColumns
)

// CSVBOM is the UTF-8 byte-order mark every CSV report begins with, before
// the header row; CSV readers that do not skip it see it at the start of
// the first column name.
const CSVBOM = "\uFEFF"

// ListSeparator joins list values (data categories, recipients, …) inside
// one CSV cell.
const ListSeparator = ";"

// EncodeCell neutralises a text cell against CSV injection (OWASP): a
// leading ' is added to cells that start with ' = + - @ TAB CR LF or the
// full-width forms ＝ ＋ － ＠, so a spreadsheet shows the text instead of
// evaluating it. Cells that already start with ' get one too, so that
// DecodeCell, which strips exactly one leading ', recovers every value.
func EncodeCell(s string) string {
	if needsQuote(s) {
		return "'" + s
	}
	return s
}

// DecodeCell recovers the value EncodeCell was given: it strips exactly one
// leading '. Numeric and time columns the generator writes itself never
// start with ', so DecodeCell may be applied to every cell of a report.
func DecodeCell(s string) string {
	return strings.TrimPrefix(s, "'")
}

func needsQuote(s string) bool {
	if s == "" {
		return false
	}
	switch s[0] {
	case '\'', '=', '+', '-', '@', '\t', '\r', '\n':
		return true
	case 0xEF: // lead byte of U+FF0B, U+FF0D, U+FF1D, U+FF20
		r, _ := utf8.DecodeRuneInString(s)
		return r == '＝' || r == '＋' || r == '－' || r == '＠'
	}
	return false
}

// text sets a user-supplied column: always neutralised, always valid UTF-8.
func (g *gen) text(col int, s string) {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	g.rec[col] = EncodeCell(s)
}

func (g *gen) list(col int, v []string) {
	g.text(col, strings.Join(v, ListSeparator))
}

func (g *gen) num(col int, n int64) { g.rec[col] = strconv.FormatInt(n, 10) }

func (g *gen) when(col int, t time.Time) { g.rec[col] = fmtTime(t) }

// begin clears the reused record for a row of recordType.
func (g *gen) begin(recordType string) {
	clear(g.rec)
	g.rec[colRecordType] = recordType
}

// flushRow writes the record and counts it.
func (g *gen) flushRow() error {
	if err := g.csv.write(g.rec); err != nil {
		return err
	}
	return g.row()
}

// csvHeader writes the column names and the summary row.
func (g *gen) csvHeader(audit, access int64) error {
	if err := g.csv.write(Columns); err != nil {
		return err
	}
	r := g.req
	g.begin("summary")
	g.rec[colReportType] = r.ReportType
	g.text(colTenantID, r.TenantID)
	g.when(colGeneratedAt, r.GeneratedAt)
	g.rec[colPeriodStart] = fmtEcho(r.PeriodStart)
	g.rec[colPeriodEnd] = fmtEcho(r.PeriodEnd)
	g.when(colAppliedStart, r.AppliedStart)
	g.when(colAppliedEnd, r.AppliedEnd)
	g.num(colAsOfSequence, r.Watermark)
	if audit >= 0 {
		g.num(colAuditEntries, audit)
	}
	if access >= 0 {
		g.num(colAccessEntries, access)
	}
	return g.flushRow()
}

// csvEvent writes one audit event as a row of recordType (not counted: the
// caller counts it). Events are the bulk of every report, so the row is
// appended in column order straight into the line, with the same bytes
// begin, text and flushRow would give; g.csv.line holds it afterwards.
func (g *gen) csvEvent(recordType string, e *Event) error {
	b := appendCSVField(g.csv.line[:0], recordType)
	b = commas(b, colRecordType, colSequence)
	b = strconv.AppendInt(b, e.Sequence, 10)
	b = append(b, ',')
	if !e.OccurredAt.IsZero() {
		b = appendTime(b, e.OccurredAt)
	}
	for _, s := range [...]string{e.Category, e.Action, e.Outcome, e.ActorID, e.ActorType, e.ResourceType, e.ResourceID} {
		b = append(b, ',')
		b = appendTextCell(b, s)
	}
	b = append(b, ',')
	b = strconv.AppendBool(b, e.PHI)
	for _, s := range [...]string{e.IP, e.UserAgent, e.RequestID} {
		b = append(b, ',')
		b = appendTextCell(b, s)
	}
	b = append(b, ',')
	if raw := e.RawMetadata; raw != nil {
		if len(raw) > 2 { // "{}" is no metadata: an empty cell
			b = appendRawCell(b, raw)
		}
	} else {
		m, err := metadataText(e.Metadata)
		if err != nil {
			return err
		}
		b = appendTextCell(b, m)
	}
	b = commas(b, colMetadata, colActorName)
	b = appendTextCell(b, ActorName(e))
	b = commas(b, colActorName, numColumns-1)
	return g.csv.flush(b)
}
