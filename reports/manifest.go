package reports

import "time"

// Manifest describes one artifact so that an auditor can check it is complete
// and unaltered: what was asked, what was read, and the report's digest.
type Manifest struct {
	ManifestVersion  string           `json:"manifest_version"`
	JobID            string           `json:"job_id"`
	ReportType       string           `json:"report_type"`
	Format           string           `json:"format"`
	TenantID         string           `json:"tenant_id"`
	PeriodRequested  ManifestPeriod   `json:"period_requested"`
	PeriodApplied    ManifestPeriod   `json:"period_applied"`
	GeneratedAt      string           `json:"generated_at"`
	AsOfSequence     int64            `json:"as_of_sequence"`
	GeneratorVersion string           `json:"generator_version"`
	CatalogVersion   string           `json:"control_catalog_version"`
	Counts           map[string]int64 `json:"counts"`
	FirstSequence    int64            `json:"first_sequence"`
	LastSequence     int64            `json:"last_sequence"`
	ChainHash        string           `json:"chain_hash,omitempty"` // audit hash chain at LastSequence
	Rows             int64            `json:"rows"`
	ReportSHA256     string           `json:"report_sha256"`
	ReportSize       int64            `json:"report_size"`
	SigningKeyID     string           `json:"signing_key_id,omitempty"`
	Signature        string           `json:"signature,omitempty"`
}

// ManifestPeriod is a period in RFC3339. Requested periods end inclusive;
// applied ones are half-open.
type ManifestPeriod struct {
	Start string `json:"start"`
	End   string `json:"end"`
}

// ManifestVersion is the version of the manifest layout.
const ManifestVersion = "1"

// NewManifest describes the artifact that Generate wrote for req, whose bytes
// have the given SHA-256 (hex) and size. It is unsigned.
func NewManifest(jobID string, req Request, sum Summary, sha256Hex string, size int64) Manifest {
	return Manifest{
		ManifestVersion:  ManifestVersion,
		JobID:            jobID,
		ReportType:       req.ReportType,
		Format:           req.Format,
		TenantID:         req.TenantID,
		PeriodRequested:  ManifestPeriod{Start: req.PeriodStart.UTC().Format(time.RFC3339Nano), End: req.PeriodEnd.UTC().Format(time.RFC3339Nano)},
		PeriodApplied:    ManifestPeriod{Start: req.AppliedStart.UTC().Format(TimeLayout), End: req.AppliedEnd.UTC().Format(TimeLayout)},
		GeneratedAt:      req.GeneratedAt.UTC().Format(TimeLayout),
		AsOfSequence:     req.Watermark,
		GeneratorVersion: GeneratorVersion,
		CatalogVersion:   CatalogVersion,
		Counts:           sum.Counts,
		FirstSequence:    sum.FirstSequence,
		LastSequence:     sum.LastSequence,
		Rows:             sum.Rows,
		ReportSHA256:     sha256Hex,
		ReportSize:       size,
	}
}
