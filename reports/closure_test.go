package reports_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/exportd/exportd/reports"
	"github.com/exportd/exportd/reports/reportstest"
)

// TestEvidenceClosure: every sequence a control cites is an event the same
// report contains, for every report type and format, over the fixed dataset
// and a synthetic log; in CSV each evidence row names the cited event's
// action, outcome, actor and resource, as its event row says them.
func TestEvidenceClosure(t *testing.T) {
	t.Parallel()
	sources := map[string]reports.Source{
		"dataset":   reportstest.Dataset(),
		"synthetic": reportstest.Synthetic{N: 5000, Start: reportstest.PeriodStart},
	}
	for _, typ := range allTypes {
		for _, format := range allFormats {
			for name, src := range sources {
				t.Run(typ+"/"+format+"/"+name, func(t *testing.T) {
					t.Parallel()
					out, _ := generate(t, reportstest.Request(typ, format), src)
					var events map[int64]string
					var cited map[int64][]string
					if format == reports.FormatJSON {
						events, cited = jsonClosure(t, out)
					} else {
						events, cited = csvClosure(t, out)
					}
					if typ != reports.TypeGDPR && len(cited) == 0 {
						t.Fatal("no control cites any event; the test would prove nothing")
					}
					for seq, says := range cited {
						ev, ok := events[seq]
						if !ok {
							t.Errorf("control evidence cites sequence %d, which is not in the report", seq)
							continue
						}
						for _, s := range says {
							if s != "" && s != ev {
								t.Errorf("evidence row for sequence %d says %q; the event row says %q", seq, s, ev)
							}
						}
					}
				})
			}
		}
	}
}

// jsonClosure returns the events of every event section and the sequences
// control_evidence cites.
func jsonClosure(t *testing.T, out []byte) (map[int64]string, map[int64][]string) {
	t.Helper()
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatal(err)
	}
	events := map[int64]string{}
	for _, section := range []string{"audit_log", "access_log", "audit_trail", "evidence_events"} {
		var evs []struct {
			Sequence int64 `json:"sequence"`
		}
		if raw, ok := doc[section]; ok {
			if err := json.Unmarshal(raw, &evs); err != nil {
				t.Fatalf("%s: %v", section, err)
			}
		}
		for _, e := range evs {
			events[e.Sequence] = ""
		}
	}
	cited := map[int64][]string{}
	if raw, ok := doc["control_evidence"]; ok {
		var ce map[string]struct {
			Sequences []int64 `json:"sequences"`
		}
		if err := json.Unmarshal(raw, &ce); err != nil {
			t.Fatal(err)
		}
		for _, c := range ce {
			for _, s := range c.Sequences {
				cited[s] = append(cited[s], "")
			}
		}
	}
	return events, cited
}

// csvClosure returns, per event row's sequence, its action, outcome, actor
// and resource; and per sequence an evidence row cites, the same fields as
// each evidence row gives them.
func csvClosure(t *testing.T, out []byte) (map[int64]string, map[int64][]string) {
	t.Helper()
	r := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(out, []byte(reports.CSVBOM))))
	r.FieldsPerRecord = len(reports.Columns)
	rows, err := r.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := func(name string) int { return slices.Index(reports.Columns, name) }
	seqCol := col("sequence")
	says := func(row []string) string {
		var b []byte
		for _, c := range []string{"action", "outcome", "actor_id", "actor_type", "resource_type", "resource_id", "actor_name"} {
			b = fmt.Appendf(b, "%s|", reports.DecodeCell(row[col(c)]))
		}
		return string(b)
	}
	events := map[int64]string{}
	cited := map[int64][]string{}
	for _, row := range rows[1:] {
		var seq int64
		if row[seqCol] != "" {
			if _, err := fmt.Sscan(row[seqCol], &seq); err != nil {
				t.Fatalf("sequence %q: %v", row[seqCol], err)
			}
		}
		switch row[0] {
		case "audit_entry", "access_entry", "evidence_event":
			events[seq] = says(row)
		case "evidence":
			if row[col("action")] == "" || row[col("actor_type")] == "" {
				t.Errorf("evidence row for sequence %d does not say what happened: %v", seq, row)
			}
			if _, err := time.Parse(reports.TimeLayout, row[col("occurred_at")]); err != nil {
				t.Errorf("evidence row for sequence %d: occurred_at %q", seq, row[col("occurred_at")])
			}
			cited[seq] = append(cited[seq], says(row))
		}
	}
	return events, cited
}
