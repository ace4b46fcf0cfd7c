package reports_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/exportd/exportd/reports"
	"github.com/exportd/exportd/reports/reportstest"
)

func newKeySet(t *testing.T) reports.KeySet {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return reports.KeySet{Keys: []reports.SigningKey{{ID: reports.KeyID(pub), Public: pub, Private: priv, Active: true}}}
}

// signedReport generates a report of the fixed dataset and its signed manifest.
func signedReport(t *testing.T, ks reports.KeySet, jobID, reportType, format string) ([]byte, []byte) {
	t.Helper()
	var buf bytes.Buffer
	req := reportstest.Request(reportType, format)
	sum, err := reports.Generate(context.Background(), &buf, req, reportstest.Dataset(), nil)
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256(buf.Bytes())
	m := reports.NewManifest(jobID, req, sum, hex.EncodeToString(digest[:]), int64(buf.Len()))
	if err := ks.Sign(&m); err != nil {
		t.Fatal(err)
	}
	mb, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), mb
}

func TestVerifyAcceptsUntouchedReports(t *testing.T) {
	t.Parallel()
	ks := newKeySet(t)
	for _, typ := range []string{reports.TypeSOC2, reports.TypeGDPR, reports.TypeHIPAA} {
		for _, format := range []string{reports.FormatJSON, reports.FormatCSV} {
			report, manifest := signedReport(t, ks, "job_a", typ, format)
			// Verification works from the published key set alone.
			pub, err := json.Marshal(ks.Public())
			if err != nil {
				t.Fatal(err)
			}
			published, err := reports.ParseJWKS(pub)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := reports.Verify(bytes.NewReader(report), manifest, published); err != nil {
				t.Errorf("%s %s: %v", typ, format, err)
			}
		}
	}
}

// TestVerifyTamper alters a report or its manifest in each way an auditor
// must catch, and checks each is reported with its own reason.
func TestVerifyTamper(t *testing.T) {
	t.Parallel()
	ks := newKeySet(t)
	report, manifest := signedReport(t, ks, "job_a", reports.TypeSOC2, reports.FormatJSON)
	csvReport, csvManifest := signedReport(t, ks, "job_c", reports.TypeSOC2, reports.FormatCSV)
	_, otherManifest := signedReport(t, ks, "job_b", reports.TypeHIPAA, reports.FormatJSON)

	flip := bytes.Clone(report)
	i := bytes.Index(flip, []byte(`"action": "`)) + len(`"action": "`)
	flip[i] ^= 0x01

	removed := removeFirstRow(t, report, "\n    {\"sequence\"")
	csvRemoved := removeFirstRow(t, csvReport, "\naudit_entry,")

	editedCount := bytes.Replace(report, []byte(`"audit_entries": `), []byte(`"audit_entries": 1`), 1)

	var m map[string]any
	if err := json.Unmarshal(manifest, &m); err != nil {
		t.Fatal(err)
	}
	m["counts"].(map[string]any)["audit_log"] = 1.0
	editedManifest, _ := json.Marshal(m)

	rotated := newKeySet(t) // the key that signed is no longer published

	cases := []struct {
		name     string
		report   []byte
		manifest []byte
		keys     reports.KeySet
		want     error
		says     string
	}{
		{"flipped byte", flip, manifest, ks, reports.ErrReportDigest, "the report was altered"},
		{"removed row", removed, manifest, ks, reports.ErrRowCount, "audit_log has"},
		{"removed CSV row", csvRemoved, csvManifest, ks, reports.ErrRowCount, "rows, manifest says"},
		{"edited count in the report", editedCount, manifest, ks, reports.ErrCountEdited, "audit_entries is"},
		{"edited count in the manifest", report, editedManifest, ks, reports.ErrBadSignature, "altered after signing"},
		{"unknown or rotated-out key", report, manifest, rotated, reports.ErrUnknownKey, "not in the key set"},
		{"manifest of another export", report, otherManifest, ks, reports.ErrWrongReport, "describes a different report"},
		{"not a manifest", report, []byte(`{"job_id": 3}`), ks, reports.ErrManifestMalformed, "not a valid"},
	}
	seen := map[string]string{}
	for _, tc := range cases {
		_, err := reports.Verify(bytes.NewReader(tc.report), tc.manifest, tc.keys)
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
			continue
		}
		if prev, dup := seen[err.Error()]; dup {
			t.Errorf("%s and %s give the same message", tc.name, prev)
		}
		seen[err.Error()] = tc.name
	}
}

func removeFirstRow(t *testing.T, b []byte, rowStart string) []byte {
	t.Helper()
	i := bytes.Index(b, []byte(rowStart))
	if i < 0 {
		t.Fatalf("no row starting %q", rowStart)
	}
	j := bytes.IndexByte(b[i+1:], '\n')
	return append(bytes.Clone(b[:i]), b[i+1+j:]...)
}
