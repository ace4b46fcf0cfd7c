package reports

import (
	"bufio"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// csvWriter writes CSV records straight into the report's buffer. Its output
// is byte for byte what encoding/csv writes with Comma ',' and UseCRLF false
// (FuzzCSVWriter compares the two): a field is quoted only when it holds a
// comma, a double quote, CR or LF, starts with a white-space rune, or is
// exactly `\.`; quotes inside are doubled; records end in LF.
//
// encoding/csv was a quarter of the CPU of a CSV export: it writes each
// comma through WriteRune, checks every field with unicode.IsSpace and needs
// a []string per record, so every number and time became a string first.
// Here the audit-event and evidence rows, the bulk of a report, are appended
// in column order into one reused line with no intermediate strings.
type csvWriter struct {
	w    *bufio.Writer
	line []byte
}

// write writes one record of arbitrary fields.
func (c *csvWriter) write(rec []string) error {
	b := c.line[:0]
	for i, f := range rec {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendCSVField(b, f)
	}
	return c.flush(b)
}

// flush writes the record built in b (without its line end) and keeps b's
// storage for the next one.
func (c *csvWriter) flush(b []byte) error {
	b = append(b, '\n')
	c.line = b
	_, err := c.w.Write(b)
	return err
}

// commaRun is enough separators for the empty columns of any row.
const commaRun = ",,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,"

// commas appends the separators that lead from column from to column to,
// leaving the columns between them empty.
func commas(b []byte, from, to int) []byte { return append(b, commaRun[:to-from]...) }

// fieldNeedsQuotes is encoding/csv's rule for ',' as the separator.
func fieldNeedsQuotes[T string | []byte](s T) bool {
	if len(s) == 0 {
		return false
	}
	if len(s) == 2 && s[0] == '\\' && s[1] == '.' {
		return true
	}
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case ',', '"', '\r', '\n':
			return true
		}
	}
	c := s[0]
	if c < utf8.RuneSelf {
		// The ASCII white space unicode.IsSpace knows.
		return c == ' ' || (c >= '\t' && c <= '\r')
	}
	r, _ := utf8.DecodeRune([]byte(s[:min(len(s), utf8.UTFMax)]))
	return unicode.IsSpace(r)
}

// appendCSVField appends one field, quoted when encoding/csv would quote it.
func appendCSVField[T string | []byte](b []byte, s T) []byte {
	if !fieldNeedsQuotes(s) {
		return append(b, s...)
	}
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '"' {
			b = append(b, s[start:i+1]...)
			b = append(b, '"')
			start = i + 1
		}
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendTextCell appends a user-supplied value as one field: made valid
// UTF-8 and neutralised against CSV injection (EncodeCell), then quoted as
// needed; the same bytes as text followed by write.
func appendTextCell(b []byte, s string) []byte {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if needsQuote(s) {
		return appendCSVField(b, "'"+s) // rare: only cells that start like a formula
	}
	return appendCSVField(b, s)
}

// appendRawCell appends an event's canonical JSON metadata as one field:
// JSON objects are valid UTF-8 and start with '{', so they need no
// neutralising; anything else goes the way of every text cell.
func appendRawCell(b, raw []byte) []byte {
	if len(raw) > 0 && raw[0] == '{' && utf8.Valid(raw) {
		return appendCSVField(b, raw)
	}
	return appendTextCell(b, string(raw))
}

// appendTime appends t in TimeLayout. time.Time.AppendFormat interprets the
// layout on every call; reports print millions of instants in this one
// layout, so it is spelled out here. Years outside 0–9999, which the layout
// cannot hold in four digits, go through AppendFormat.
func appendTime(b []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.AppendFormat(b, TimeLayout)
	}
	hour, minute, sec := t.Clock()
	micro := t.Nanosecond() / 1000
	b = append(b,
		byte('0'+year/1000), byte('0'+year/100%10), byte('0'+year/10%10), byte('0'+year%10), '-',
		byte('0'+int(month)/10), byte('0'+int(month)%10), '-',
		byte('0'+day/10), byte('0'+day%10), 'T',
		byte('0'+hour/10), byte('0'+hour%10), ':',
		byte('0'+minute/10), byte('0'+minute%10), ':',
		byte('0'+sec/10), byte('0'+sec%10), '.',
		byte('0'+micro/100000), byte('0'+micro/10000%10), byte('0'+micro/1000%10),
		byte('0'+micro/100%10), byte('0'+micro/10%10), byte('0'+micro%10), 'Z')
	return b
}
