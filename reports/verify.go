package reports

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// Verification failures. Each has its own message, so that an auditor is told
// exactly what is wrong; errors.Is matches the kind.
var (
	ErrManifestMalformed = errors.New("manifest is not a valid exportd manifest")
	ErrUnknownKey        = errors.New("manifest is signed with a key that is not in the key set")
	ErrBadSignature      = errors.New("manifest signature does not verify: the manifest was altered after signing")
	ErrWrongReport       = errors.New("the manifest describes a different report")
	ErrReportSize        = errors.New("report size differs from the manifest")
	ErrRowCount          = errors.New("report rows differ from the manifest: rows were removed or added")
	ErrCountEdited       = errors.New("report header counts differ from the manifest: a count was edited")
	ErrReportDigest      = errors.New("report SHA-256 differs from the manifest: the report was altered")
)

// Verify checks that report is exactly the artifact manifestJSON describes,
// and that the manifest was signed by a key of ks. It reads report once and
// returns the manifest when everything holds.
func Verify(report io.Reader, manifestJSON []byte, ks KeySet) (Manifest, error) {
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(manifestJSON))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return m, fmt.Errorf("%w: %v", ErrManifestMalformed, err)
	}
	if m.Signature == "" || m.SigningKeyID == "" {
		return m, fmt.Errorf("%w: it carries no signature", ErrManifestMalformed)
	}
	k, ok := ks.key(m.SigningKeyID)
	if !ok {
		return m, fmt.Errorf("%w: %s (rotated out, or from another server)", ErrUnknownKey, m.SigningKeyID)
	}
	sig, err := base64.StdEncoding.DecodeString(m.Signature)
	if err != nil {
		return m, fmt.Errorf("%w: the signature is not base64", ErrManifestMalformed)
	}
	signed, err := SigningBytes(m)
	if err != nil {
		return m, err
	}
	if !ed25519.Verify(k.Public, signed, sig) {
		return m, ErrBadSignature
	}

	h := sha256.New()
	var body bytes.Buffer
	// The report is read whole only to explain a mismatch; the digest is
	// what decides.
	n, err := io.Copy(io.MultiWriter(h, &body), report)
	if err != nil {
		return m, fmt.Errorf("read report: %w", err)
	}
	digest := hex.EncodeToString(h.Sum(nil))
	if digest == m.ReportSHA256 && n == m.ReportSize {
		return m, nil
	}
	// Something differs: say what.
	if err := explain(body.Bytes(), m); err != nil {
		return m, err
	}
	if n != m.ReportSize {
		return m, fmt.Errorf("%w: %d bytes, manifest says %d", ErrReportSize, n, m.ReportSize)
	}
	return m, fmt.Errorf("%w: %s, manifest says %s", ErrReportDigest, digest, m.ReportSHA256)
}

// explain looks inside an altered report for the most specific reason.
func explain(b []byte, m Manifest) error {
	var hdr struct {
		ReportType    string `json:"report_type"`
		TenantID      string `json:"tenant_id"`
		GeneratedAt   string `json:"generated_at"`
		AuditEntries  *int64 `json:"audit_entries"`
		AccessEntries *int64 `json:"access_entries"`
	}
	switch m.Format {
	case FormatJSON:
		var rows struct {
			AuditLog   []json.RawMessage `json:"audit_log"`
			AccessLog  []json.RawMessage `json:"access_log"`
			AuditTrail []json.RawMessage `json:"audit_trail"`
		}
		if json.Unmarshal(b, &hdr) != nil || json.Unmarshal(b, &rows) != nil {
			return nil
		}
		if err := sameReport(hdr.ReportType, hdr.TenantID, hdr.GeneratedAt, m); err != nil {
			return err
		}
		for section, got := range map[string]int{"audit_log": len(rows.AuditLog), "access_log": len(rows.AccessLog), "audit_trail": len(rows.AuditTrail)} {
			if want, ok := m.Counts[section]; ok && int64(got) != want {
				return fmt.Errorf("%w: %s has %d rows, manifest says %d", ErrRowCount, section, got, want)
			}
		}
		for field, got := range map[string]*int64{"audit_entries": hdr.AuditEntries, "access_entries": hdr.AccessEntries} {
			if want, ok := headerCount(m, field); ok && got != nil && *got != want {
				return fmt.Errorf("%w: %s is %d, manifest says %d", ErrCountEdited, field, *got, want)
			}
		}
	case FormatCSV:
		r := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(b, []byte(CSVBOM))))
		r.FieldsPerRecord = -1
		recs, err := r.ReadAll()
		if err != nil || len(recs) < 2 {
			return nil
		}
		col := map[string]int{}
		for i, c := range recs[0] {
			col[c] = i
		}
		get := func(rec []string, name string) string {
			if i, ok := col[name]; ok && i < len(rec) {
				return DecodeCell(rec[i])
			}
			return ""
		}
		perType := map[string]int64{}
		for _, rec := range recs[1:] {
			perType[get(rec, "record_type")]++
			if get(rec, "record_type") == "summary" {
				if err := sameReport(get(rec, "report_type"), get(rec, "tenant_id"), get(rec, "generated_at"), m); err != nil {
					return err
				}
				for _, field := range []string{"audit_entries", "access_entries"} {
					got, perr := strconv.ParseInt(get(rec, field), 10, 64)
					if want, ok := headerCount(m, field); ok && perr == nil && got != want {
						return fmt.Errorf("%w: %s is %d, manifest says %d", ErrCountEdited, field, got, want)
					}
				}
			}
		}
		var rows int64
		for _, n := range perType {
			rows += n
		}
		if m.Rows != 0 && rows != m.Rows {
			return fmt.Errorf("%w: %d rows, manifest says %d", ErrRowCount, rows, m.Rows)
		}
	}
	return nil
}

func sameReport(reportType, tenant, generatedAt string, m Manifest) error {
	if reportType != m.ReportType || tenant != m.TenantID || generatedAt != m.GeneratedAt {
		return fmt.Errorf("%w: manifest of job %s is a %s report of tenant %s generated at %s; this report is a %s report of tenant %s generated at %s",
			ErrWrongReport, m.JobID, m.ReportType, m.TenantID, m.GeneratedAt, reportType, tenant, generatedAt)
	}
	return nil
}

// headerCount is the count the report header prints for field, as the
// manifest recorded it.
func headerCount(m Manifest, field string) (int64, bool) {
	switch field {
	case "audit_entries":
		if m.ReportType == TypeHIPAA {
			v, ok := m.Counts["audit_trail"]
			return v, ok
		}
		v, ok := m.Counts["audit_log"]
		return v, ok
	case "access_entries":
		v, ok := m.Counts["access_log"]
		return v, ok
	}
	return 0, false
}
