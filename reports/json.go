package reports

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// principalKey is how the principal's name appears in canonical metadata.
var principalKey = []byte(`"principal":`)

// ActorName is the readable name of an event's actor shown beside its id:
// the principal's name exportd records in the metadata of its own events
// (metadata.principal, e.g. the e-mail address behind a key), which writers
// of ingested events may set too; "" when there is none. Only a top-level
// string counts.
func ActorName(e *Event) string {
	if e.RawMetadata == nil {
		s, _ := e.Metadata["principal"].(string)
		return s
	}
	if !bytes.Contains(e.RawMetadata, principalKey) { // most events: no decode
		return ""
	}
	var m struct {
		Principal json.RawMessage `json:"principal"`
	}
	var s string
	if json.Unmarshal(e.RawMetadata, &m) != nil || json.Unmarshal(m.Principal, &s) != nil {
		return ""
	}
	return s
}

// Events are encoded by hand rather than through encoding/json: the audit
// log is the bulk of every report and reflection would dominate the time the
// benchmark compares against a database COPY.

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD, as
// encoding/json does, so the output is always valid JSON.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		// U+2028 and U+2029 are valid JSON but end lines in JavaScript.
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendEvent appends one audit event as a JSON object.
func appendEvent(b []byte, e *Event) ([]byte, error) {
	b = append(b, `{"sequence": `...)
	b = strconv.AppendInt(b, e.Sequence, 10)
	b = append(b, `, "occurred_at": "`...)
	b = appendTime(b, e.OccurredAt)
	b = append(b, `", "category": `...)
	b = appendString(b, e.Category)
	b = append(b, `, "action": `...)
	b = appendString(b, e.Action)
	b = append(b, `, "outcome": `...)
	b = appendString(b, e.Outcome)
	b = append(b, `, "actor": {"id": `...)
	b = appendString(b, e.ActorID)
	b = append(b, `, "type": `...)
	b = appendString(b, e.ActorType)
	b = append(b, `, "name": `...)
	b = appendString(b, ActorName(e))
	b = append(b, `}, "resource": {"type": `...)
	b = appendString(b, e.ResourceType)
	b = append(b, `, "id": `...)
	b = appendString(b, e.ResourceID)
	b = append(b, `}, "phi": `...)
	b = strconv.AppendBool(b, e.PHI)
	b = append(b, `, "ip": `...)
	b = appendString(b, e.IP)
	b = append(b, `, "user_agent": `...)
	b = appendString(b, e.UserAgent)
	b = append(b, `, "request_id": `...)
	b = appendString(b, e.RequestID)
	b = append(b, `, "metadata": `...)
	switch {
	case e.RawMetadata != nil:
		if len(e.RawMetadata) == 0 {
			b = append(b, "{}"...)
		} else {
			b = append(b, e.RawMetadata...)
		}
	case len(e.Metadata) == 0:
		b = append(b, "{}"...)
	default:
		m, err := json.Marshal(e.Metadata)
		if err != nil {
			return b, err
		}
		b = append(b, m...)
	}
	return append(b, '}'), nil
}

// metadataText is the metadata column of the CSV: compact JSON, sorted keys.
func metadataText(m map[string]any) (string, error) {
	if len(m) == 0 {
		return "", nil
	}
	b, err := json.Marshal(m)
	return string(b), err
}
