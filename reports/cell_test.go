package reports_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/exportd/exportd/reports"
	"github.com/exportd/exportd/reports/reportstest"
)

// evaluable reports whether a spreadsheet could treat a cell as a formula.
func evaluable(s string) bool {
	r, _ := utf8.DecodeRuneInString(s)
	return strings.ContainsRune("=+-@\t\r\n＝＋－＠", r) && s != ""
}

func TestEncodeCell(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"", ""},
		{"plain", "plain"},
		{"=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"},
		{"+1", "'+1"},
		{"-1", "'-1"},
		{"@SUM(1)", "'@SUM(1)"},
		{"\t=1", "'\t=1"},
		{"\r=1", "'\r=1"},
		{"\n=1", "'\n=1"},
		{"＝1", "'＝1"},
		{"＋1", "'＋1"},
		{"－1", "'－1"},
		{"＠SUM(1)", "'＠SUM(1)"},
		{"'quoted", "''quoted"},
		{"''", "'''"},
		{"a=1", "a=1"},
		{" =1", " =1"},
		{"ｅ", "ｅ"}, // shares the lead byte of the full-width signs
	}
	for _, tt := range tests {
		t.Run(strconv.Quote(tt.in), func(t *testing.T) {
			t.Parallel()
			got := reports.EncodeCell(tt.in)
			if got != tt.want {
				t.Errorf("EncodeCell(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if back := reports.DecodeCell(got); back != tt.in {
				t.Errorf("DecodeCell(%q) = %q, want %q", got, back, tt.in)
			}
			if evaluable(got) {
				t.Errorf("EncodeCell(%q) = %q still starts with an evaluable character", tt.in, got)
			}
		})
	}
}

func FuzzCell(f *testing.F) {
	for _, s := range []string{"", "x", "=1+1", "+1", "-1", "@SUM(1)", "\t=1", "\r\n", "＝1", "＠", "'", "''=", "=cmd|' /C calc'!A0", "\xef\xbc", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		enc := reports.EncodeCell(s)
		if got := reports.DecodeCell(enc); got != s {
			t.Fatalf("round trip of %q gave %q", s, got)
		}
		if evaluable(enc) {
			t.Fatalf("EncodeCell(%q) = %q starts with an evaluable character", s, enc)
		}
		// The quote is only added when needed, so plain text stays plain.
		if enc != s && !strings.HasPrefix(enc, "'") {
			t.Fatalf("EncodeCell(%q) = %q changed more than a leading quote", s, enc)
		}
	})
}

// TestCSVRoundTrip reads every CSV report back with encoding/csv and checks
// that no cell is evaluable, that every row has the fixed column set, and
// that the audit entries hold exactly the values of the JSON report.
func TestCSVRoundTrip(t *testing.T) {
	t.Parallel()
	for _, typ := range allTypes {
		t.Run(typ, func(t *testing.T) {
			t.Parallel()
			out, _ := generate(t, reportstest.Request(typ, reports.FormatCSV), reportstest.Dataset())
			body, ok := bytes.CutPrefix(out, []byte(reports.CSVBOM))
			if !ok {
				t.Fatalf("the CSV does not begin with the UTF-8 byte-order mark: %q", out[:min(len(out), 16)])
			}
			r := csv.NewReader(bytes.NewReader(body))
			recs, err := r.ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(recs[0], ",") != strings.Join(reports.Columns, ",") {
				t.Fatalf("header %v", recs[0])
			}
			if recs[1][0] != "summary" || recs[1][1] != typ {
				t.Errorf("second row %v, want the summary", recs[1][:2])
			}
			col := map[string]int{}
			for i, c := range reports.Columns {
				col[c] = i
			}
			var entries []map[string]string
			for _, rec := range recs[1:] {
				for i, cell := range rec {
					if evaluable(cell) {
						t.Errorf("%s row, column %s: evaluable cell %q", rec[0], reports.Columns[i], cell)
					}
				}
				if rec[0] == "audit_entry" {
					m := map[string]string{}
					for i, cell := range rec {
						m[reports.Columns[i]] = reports.DecodeCell(cell)
					}
					entries = append(entries, m)
				}
			}
			if typ == reports.TypeGDPR {
				return
			}
			jsonOut, _ := generate(t, reportstest.Request(typ, reports.FormatJSON), reportstest.Dataset())
			var doc map[string]json.RawMessage
			if err := json.Unmarshal(jsonOut, &doc); err != nil {
				t.Fatal(err)
			}
			section := "audit_log"
			if typ == reports.TypeHIPAA {
				section = "audit_trail"
			}
			var events []struct {
				Sequence   int64  `json:"sequence"`
				OccurredAt string `json:"occurred_at"`
				Actor      struct{ ID, Type string }
				Resource   struct{ ID, Type string }
				IP         string         `json:"ip"`
				UserAgent  string         `json:"user_agent"`
				RequestID  string         `json:"request_id"`
				Metadata   map[string]any `json:"metadata"`
			}
			if err := json.Unmarshal(doc[section], &events); err != nil {
				t.Fatal(err)
			}
			if len(events) != len(entries) {
				t.Fatalf("%d CSV audit entries, %d JSON", len(entries), len(events))
			}
			for i, e := range events {
				c := entries[i]
				for name, want := range map[string]string{
					"sequence": strconv.FormatInt(e.Sequence, 10), "occurred_at": e.OccurredAt,
					"actor_id": e.Actor.ID, "actor_type": e.Actor.Type,
					"resource_id": e.Resource.ID, "resource_type": e.Resource.Type,
					"ip": e.IP, "user_agent": e.UserAgent, "request_id": e.RequestID,
				} {
					if c[name] != want {
						t.Errorf("entry %d %s: CSV %q, JSON %q", e.Sequence, name, c[name], want)
					}
				}
				var meta map[string]any
				if c["metadata"] != "" {
					if err := json.Unmarshal([]byte(c["metadata"]), &meta); err != nil {
						t.Errorf("entry %d metadata: %v", e.Sequence, err)
					}
				}
				if len(meta) != len(e.Metadata) {
					t.Errorf("entry %d metadata: CSV %v, JSON %v", e.Sequence, meta, e.Metadata)
				}
			}
		})
	}
}

// TestOWASPVectors puts each injection vector in every text field of an
// event and checks the CSV neutralises it and gives it back unchanged.
func TestOWASPVectors(t *testing.T) {
	t.Parallel()
	vectors := []string{"=cmd|' /C calc'!A0", "+1", "-1", "@SUM(1)", "\t=1", "＝1", "'=1", "\r=1"}
	for _, v := range vectors {
		t.Run(strconv.Quote(v), func(t *testing.T) {
			t.Parallel()
			e := reportstest.Events()[1]
			e.Action, e.Outcome, e.ActorID, e.ActorType = v, v, v, v
			e.ResourceType, e.ResourceID, e.IP, e.UserAgent, e.RequestID = v, v, v, v, v
			src := reportstest.NewSource([]reports.Event{e}, nil)
			out, _ := generate(t, reportstest.Request(reports.TypeSOC2, reports.FormatCSV), src)
			recs, err := csv.NewReader(bytes.NewReader(out)).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			var seen int
			for _, rec := range recs {
				if rec[0] != "audit_entry" && rec[0] != "access_entry" {
					continue
				}
				seen++
				for _, name := range []string{"action", "outcome", "actor_id", "actor_type", "resource_type", "resource_id", "ip", "user_agent", "request_id"} {
					cell := rec[slicesIndex(reports.Columns, name)]
					if evaluable(cell) {
						t.Errorf("%s: evaluable %q", name, cell)
					}
					if got := reports.DecodeCell(cell); got != v {
						t.Errorf("%s: decoded %q, want %q", name, got, v)
					}
				}
			}
			if seen != 2 {
				t.Errorf("%d entry rows, want 2", seen)
			}
		})
	}
}

func slicesIndex(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}
