package store

import "bytes"

// maxFlatKeys bounds the objects appendCanonical handles itself.
const maxFlatKeys = 16

// appendCanonical appends the canonical form (CanonicalJSON) of stored
// metadata to dst. What the database gives back is not canonical as it
// stands: PostgreSQL's jsonb prints `{"b": 1, "aa": 2}` (a space after ':'
// and ',', keys ordered by length first). Decoding into map[string]any and
// encoding again costs more than the rest of a report row, so the common
// shape, a flat object of plain ASCII strings, small integers, booleans and
// nulls, is rewritten here directly (space dropped, keys sorted) and
// everything else goes through CanonicalJSON. FuzzAppendCanonical checks
// that both give the same bytes.
func appendCanonical(dst, raw []byte) ([]byte, error) {
	if b, ok := appendFlatCanonical(dst, raw); ok {
		return b, nil
	}
	c, err := CanonicalJSON(raw)
	if err != nil {
		return dst, err
	}
	return append(dst, c...), nil
}

type flatMember struct{ key, value []byte }

// appendFlatCanonical is appendCanonical's fast path; ok is false when raw
// is not of the shape it handles, and dst is then unchanged.
func appendFlatCanonical(dst, raw []byte) (_ []byte, ok bool) {
	var (
		members [maxFlatKeys]flatMember
		n       int
	)
	p := skipSpace(raw, 0)
	if p >= len(raw) || raw[p] != '{' {
		return dst, false
	}
	p = skipSpace(raw, p+1)
	if p < len(raw) && raw[p] == '}' {
		p++
	} else {
		for {
			if n == maxFlatKeys {
				return dst, false
			}
			var key, value []byte
			if key, p = plainString(raw, p); key == nil {
				return dst, false
			}
			p = skipSpace(raw, p)
			if p >= len(raw) || raw[p] != ':' {
				return dst, false
			}
			p = skipSpace(raw, p+1)
			if value, p = plainValue(raw, p); value == nil {
				return dst, false
			}
			members[n] = flatMember{key, value}
			n++
			p = skipSpace(raw, p)
			if p >= len(raw) {
				return dst, false
			}
			if raw[p] == '}' {
				p++
				break
			}
			if raw[p] != ',' {
				return dst, false
			}
			p = skipSpace(raw, p+1)
		}
	}
	if skipSpace(raw, p) != len(raw) {
		return dst, false
	}
	ms := members[:n]
	// Insertion sort: a handful of keys. encoding/json sorts map keys as
	// strings, which for plain ASCII is byte order; a repeated key would
	// collapse in a map, so it is left to CanonicalJSON.
	for i := 1; i < len(ms); i++ {
		for j := i; j > 0; j-- {
			c := bytes.Compare(unquoted(ms[j-1].key), unquoted(ms[j].key))
			if c == 0 {
				return dst, false
			}
			if c < 0 {
				break
			}
			ms[j-1], ms[j] = ms[j], ms[j-1]
		}
	}
	dst = append(dst, '{')
	for i, m := range ms {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, m.key...)
		dst = append(dst, ':')
		dst = append(dst, m.value...)
	}
	return append(dst, '}'), true
}

func skipSpace(b []byte, p int) int {
	for p < len(b) && (b[p] == ' ' || b[p] == '\t' || b[p] == '\n' || b[p] == '\r') {
		p++
	}
	return p
}

// plainString returns the JSON string at p, quotes included, and the
// position after it, when it holds only printable ASCII that encoding/json
// writes unchanged (no escapes, no < > &); nil otherwise.
func plainString(b []byte, p int) ([]byte, int) {
	if p >= len(b) || b[p] != '"' {
		return nil, p
	}
	for i := p + 1; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return b[p : i+1], i + 1
		case c < 0x20 || c > 0x7e || c == '\\' || c == '<' || c == '>' || c == '&':
			return nil, p
		}
	}
	return nil, p
}

// plainValue returns the value at p when encoding/json would write it back
// unchanged after decoding it into an interface: a plain string, true,
// false, null, or an integer of at most 15 digits (exact as a float64)
// without a sign on zero; nil otherwise.
func plainValue(b []byte, p int) ([]byte, int) {
	if p >= len(b) {
		return nil, p
	}
	switch c := b[p]; {
	case c == '"':
		return plainString(b, p)
	case c == 't' || c == 'f' || c == 'n':
		for _, lit := range [...]string{"true", "false", "null"} {
			if bytes.HasPrefix(b[p:], []byte(lit)) {
				return b[p : p+len(lit)], p + len(lit)
			}
		}
		return nil, p
	case c == '-' || (c >= '0' && c <= '9'):
		i := p
		if c == '-' {
			i++
		}
		start := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		digits := i - start
		if digits == 0 || digits > 15 || (b[start] == '0' && (digits > 1 || c == '-')) {
			return nil, p
		}
		if i < len(b) && (b[i] == '.' || b[i] == 'e' || b[i] == 'E') {
			return nil, p
		}
		return b[p:i], i
	}
	return nil, p
}

// unquoted is a plain string without its quotes.
func unquoted(s []byte) []byte { return s[1 : len(s)-1] }
