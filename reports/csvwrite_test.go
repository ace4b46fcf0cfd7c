package reports

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// stdCSV is what encoding/csv writes for rec in the report's settings.
func stdCSV(t testing.TB, rec []string) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	w.Flush()
	if err := w.Error(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// ownCSV is what csvWriter writes for rec.
func ownCSV(t testing.TB, rec []string) []byte {
	t.Helper()
	var buf bytes.Buffer
	bw := bufio.NewWriter(&buf)
	c := &csvWriter{w: bw}
	if err := c.write(rec); err != nil {
		t.Fatal(err)
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

var csvCorpus = []string{
	"", "x", `\.`, `\.x`, `.\`, "a,b", `"`, `a"b`, `""`, "a\nb", "a\r\nb", "\r", " lead", "trail ",
	"\tx", "\vx", "\fx", "\u0085x", "\u00a0x", "\u2028x", "\u3000x", "ｅ", "\xff", "\xc2", "=1+1",
	"'", "＝1", "Änderung — “Zeile 2”", `{"a":"b,c"}`,
}

// FuzzCSVWriter checks that csvWriter writes every record byte for byte as
// encoding/csv does.
func FuzzCSVWriter(f *testing.F) {
	for _, a := range csvCorpus {
		for _, b := range []string{"", "x", `"q"`} {
			f.Add(a, b)
		}
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		for _, rec := range [][]string{{a}, {a, b}, {b, "", a}} {
			if got, want := ownCSV(t, rec), stdCSV(t, rec); !bytes.Equal(got, want) {
				t.Fatalf("record %q: csvWriter wrote %q, encoding/csv %q", rec, got, want)
			}
		}
		// A text cell is EncodeCell of the UTF-8-valid value, then the field.
		valid := strings.ToValidUTF8(a, "\uFFFD")
		if got, want := appendTextCell(nil, a), ownCSV(t, []string{EncodeCell(valid)}); !bytes.Equal(append(got, '\n'), want) {
			t.Fatalf("text cell %q: got %q, want %q", a, got, want)
		}
	})
}

func TestCSVWriterCorpus(t *testing.T) {
	t.Parallel()
	for _, a := range csvCorpus {
		for _, b := range csvCorpus {
			rec := []string{a, b}
			if got, want := ownCSV(t, rec), stdCSV(t, rec); !bytes.Equal(got, want) {
				t.Errorf("record %q: csvWriter wrote %q, encoding/csv %q", rec, got, want)
			}
		}
	}
}

// TestAppendTime compares the hand-written layout with AppendFormat over
// random instants, the extremes of four-digit years and years beyond them.
func TestAppendTime(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	times := []time.Time{
		{},
		time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2024, 2, 29, 12, 0, 0, 1500, time.FixedZone("x", 5*3600+1800)),
	}
	for range 10000 {
		times = append(times, time.Unix(rng.Int64N(1<<37)-1<<36, rng.Int64N(1e9)).In(time.FixedZone("y", rng.IntN(86400)-43200)))
	}
	for _, tm := range times {
		if got, want := string(appendTime(nil, tm)), tm.UTC().Format(TimeLayout); got != want {
			t.Errorf("appendTime(%v) = %s, want %s", tm, got, want)
		}
	}
}
