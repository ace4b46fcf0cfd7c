package reports_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"slices"
	"testing"

	"github.com/exportd/exportd/reports"
	"github.com/exportd/exportd/reports/reportstest"
)

// TestEvidenceSpool runs the spool over enough events to span many buffer
// flushes and three passes, checks that every control's sequences come back
// complete and in order, and that no temporary file is left behind. It sets
// TMPDIR, so it cannot run in parallel.
func TestEvidenceSpool(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("TMPDIR", dir)
	src := reportstest.Synthetic{N: 20_000, Start: reportstest.PeriodStart}
	for _, typ := range []string{reports.TypeSOC2, reports.TypeHIPAA} {
		req := reportstest.Request(typ, reports.FormatJSON)
		req.Watermark = src.N
		var buf bytes.Buffer
		sum, err := reports.Generate(context.Background(), &buf, req, src, nil)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			ControlEvidence map[string]struct {
				Count     int64   `json:"count"`
				Sequences []int64 `json:"sequences"`
			} `json:"control_evidence"`
		}
		if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
			t.Fatal(err)
		}
		var total int64
		for id, ce := range doc.ControlEvidence {
			total += ce.Count
			if int64(len(ce.Sequences)) != ce.Count {
				t.Errorf("%s %s: %d sequences, count %d", typ, id, len(ce.Sequences), ce.Count)
			}
			// Synthetic time grows with the sequence, so report order is
			// sequence order; the merge of passes must preserve it.
			if !slices.IsSorted(ce.Sequences) {
				t.Errorf("%s %s: sequences out of order", typ, id)
			}
			if len(slices.Compact(slices.Clone(ce.Sequences))) != len(ce.Sequences) {
				t.Errorf("%s %s: duplicate sequences", typ, id)
			}
		}
		if total == 0 || total != sum.Counts["control_evidence"] {
			t.Errorf("%s: evidence total %d, summary %d", typ, total, sum.Counts["control_evidence"])
		}
		// CC7.2: failed logins, failed keys and denials are 3 of every 10.
		if typ == reports.TypeSOC2 && doc.ControlEvidence["CC7.2"].Count != 3*src.N/10 {
			t.Errorf("CC7.2 count %d, want %d", doc.ControlEvidence["CC7.2"].Count, 3*src.N/10)
		}
	}
	left, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Errorf("%d temporary files left behind", len(left))
	}
}
