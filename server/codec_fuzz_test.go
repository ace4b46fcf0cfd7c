package server

import (
	"strings"
	"testing"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	auditv1 "github.com/exportd/exportd/gen/go/audit/v1"
)

// FuzzProtoCodec feeds arbitrary bytes to the binary codec as a WriteEvents
// request (nested messages, lists, Struct metadata): it must never panic,
// and whatever it decodes holds valid UTF-8 only, invalid bytes having
// become NUL bytes, which the interceptor refuses. (A request may still
// decode clean: a later occurrence of a field replaces an earlier one.)
func FuzzProtoCodec(f *testing.F) {
	meta, _ := structpb.NewStruct(map[string]any{"k": "v", "n": []any{"a", map[string]any{"x": "y"}}})
	ok, _ := proto.Marshal(&auditv1.WriteEventsRequest{Events: []*auditv1.AuditEventInput{{ActorId: "zz#zz", Action: "a", Metadata: meta}}})
	f.Add(ok)
	f.Add([]byte(strings.ReplaceAll(string(ok), "zz#zz", "zz\xffzz")))
	f.Add([]byte(strings.ReplaceAll(string(ok), "v", "\xc3")))
	f.Add([]byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		var m auditv1.WriteEventsRequest
		if err := (protoCodec{}).Unmarshal(b, &m); err != nil {
			return
		}
		var hits []hit
		findHostile(m.ProtoReflect(), "", 0, &hits)
		for _, h := range hits {
			if !utf8.ValidString(h.value) {
				t.Fatalf("decoded invalid UTF-8 at %s from %q", h.path, b)
			}
		}
		if _, err := proto.Marshal(&m); err != nil {
			t.Fatalf("decoded a request that does not encode again (%v) from %q", err, b)
		}
	})
}
