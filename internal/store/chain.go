package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/exportd/exportd/reports"
)

// The audit hash chain.
//
// Every event stores hash = SHA-256(prev || CanonicalEvent(event)), where prev
// is the 32 raw bytes of the previous event's hash in the tenant's log (32 zero
// bytes for sequence 1), and hashes are stored as lowercase hex. Changing,
// removing or reordering any event therefore changes every later hash; the
// tenant row keeps the head (chain_head, the hash at event_seq) and export
// manifests carry the hash at their last sequence, so a rewrite of the tail is
// caught too.
//
// CanonicalEvent is, byte for byte:
//
//	"exportd/audit-event/v1"              the version tag, 22 bytes, no length
//	str(tenant_id)
//	int64 sequence                        8 bytes, big-endian
//	int64 occurred_at                     8 bytes, big-endian, µs since 1970-01-01T00:00:00Z
//	str(actor_id) str(actor_type) str(action) str(resource_type) str(resource_id)
//	str(outcome) str(category)
//	phi                                   1 byte, 0x01 or 0x00
//	str(ip) str(user_agent) str(request_id)
//	str(metadata)                         canonical JSON, see CanonicalJSON
//	str(client_event_id)                  empty when the writer sent none
//
// where str(s) is the length of s in bytes as a 4-byte big-endian unsigned
// integer followed by the UTF-8 bytes of s. Length prefixes make the encoding
// unambiguous: no two different events share canonical bytes.

// chainTag versions the canonical encoding.
const chainTag = "exportd/audit-event/v1"

// genesis is the hash before a tenant's first event.
var genesis [sha256.Size]byte

// CanonicalJSON is the metadata as hashed and stored: the JSON decoded into
// Go values (numbers as IEEE-754 doubles) and encoded again with
// encoding/json, which sorts object keys, drops insignificant space and
// writes each number in its shortest round-tripping form, with negative
// zero written as 0. Decoding and encoding it again yields the same bytes,
// and so does what PostgreSQL's jsonb gives back, so a stored event can be
// re-hashed. That is why a number that is zero is always written 0: jsonb
// keeps numbers as numeric, which has no negative zero, and an event whose
// hash covered "-0" could never be re-hashed from what PostgreSQL stored
// (FuzzCanonicalRoundTrip checks every form against a real PostgreSQL).
// For the same reason a string holding the NUL character (\u0000), which
// jsonb refuses, is an error. An empty object stands for no metadata.
func CanonicalJSON(raw []byte) ([]byte, error) { return canonicalJSON(raw, true) }

// legacyCanonicalJSON is CanonicalJSON as it was before negative zero was
// written 0: events written then hashed "-0" (and, on SQLite, could hold
// NUL), and VerifyChain accepts that form for them. Accepting both spellings
// of zero opens nothing: a hash still matches only the bytes it was made of.
func legacyCanonicalJSON(raw []byte) ([]byte, error) { return canonicalJSON(raw, false) }

func canonicalJSON(raw []byte, normalized bool) ([]byte, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return []byte("{}"), nil
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, fmt.Errorf("decode metadata: %w", err)
	}
	if v == nil {
		return []byte("{}"), nil
	}
	// Only a text with "-0" or "e-"/"E-" can hold a negative zero (-0,
	// -0.0, -0e3, or -1e-400, too small for a double), and only one with
	// \u0000 a NUL: most metadata skips the walk.
	if normalized && (bytes.Contains(raw, []byte("-0")) || bytes.Contains(raw, []byte("e-")) || bytes.Contains(raw, []byte("E-")) ||
		bytes.Contains(raw, []byte(`\u0000`))) {
		var err error
		if v, err = normalize(v); err != nil {
			return nil, err
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode metadata: %w", err)
	}
	return b, nil
}

// errNUL refuses metadata PostgreSQL cannot store.
var errNUL = errors.New("metadata must not contain the NUL character (\\u0000)")

// normalize writes negative zeros as zero and refuses NUL characters in
// keys and strings, through v's objects and arrays.
func normalize(v any) (any, error) {
	switch x := v.(type) {
	case float64:
		if x == 0 {
			return 0.0, nil // drops the sign of -0
		}
	case string:
		if strings.IndexByte(x, 0) >= 0 {
			return nil, errNUL
		}
	case []any:
		for i := range x {
			n, err := normalize(x[i])
			if err != nil {
				return nil, err
			}
			x[i] = n
		}
	case map[string]any:
		for k, e := range x {
			if strings.IndexByte(k, 0) >= 0 {
				return nil, errNUL
			}
			n, err := normalize(e)
			if err != nil {
				return nil, err
			}
			x[k] = n
		}
	}
	return v, nil
}

// canonicalMetadata encodes an event's metadata map canonically.
func canonicalMetadata(m map[string]any) ([]byte, error) {
	if len(m) == 0 {
		return []byte("{}"), nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode metadata: %w", err)
	}
	return CanonicalJSON(b)
}

// CanonicalEvent appends the canonical bytes of one event (see the package
// comment above) to dst. meta must already be canonical JSON.
func CanonicalEvent(dst []byte, tenantID string, e *reports.Event, meta []byte, clientEventID string) []byte {
	str := func(s string) {
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(s))) //nolint:gosec // fields are far below 4 GiB
		dst = append(dst, s...)
	}
	dst = append(dst, chainTag...)
	str(tenantID)
	dst = binary.BigEndian.AppendUint64(dst, uint64(e.Sequence))                      //nolint:gosec // two's complement is the encoding
	dst = binary.BigEndian.AppendUint64(dst, uint64(micro(e.OccurredAt).UnixMicro())) //nolint:gosec // idem
	str(e.ActorID)
	str(e.ActorType)
	str(e.Action)
	str(e.ResourceType)
	str(e.ResourceID)
	str(e.Outcome)
	str(e.Category)
	if e.PHI {
		dst = append(dst, 1)
	} else {
		dst = append(dst, 0)
	}
	str(e.IP)
	str(e.UserAgent)
	str(e.RequestID)
	str(string(meta))
	str(clientEventID)
	return dst
}

// chainer computes successive links of a chain.
type chainer struct {
	prev [sha256.Size]byte
	buf  []byte
}

// next hashes one event onto the chain and returns its hex hash.
func (c *chainer) next(tenantID string, e *reports.Event, meta []byte, clientEventID string) string {
	c.buf = CanonicalEvent(c.buf[:0], tenantID, e, meta, clientEventID)
	h := sha256.New()
	h.Write(c.prev[:])
	h.Write(c.buf)
	h.Sum(c.prev[:0])
	return hex.EncodeToString(c.prev[:])
}

// decodeHash parses a stored hex hash; empty is the genesis.
func decodeHash(s string) ([sha256.Size]byte, error) {
	var h [sha256.Size]byte
	if s == "" {
		return genesis, nil
	}
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != sha256.Size {
		return h, fmt.Errorf("malformed chain hash %q", s)
	}
	copy(h[:], b)
	return h, nil
}
