package server

import (
	"bytes"
	"errors"
	"fmt"
	"unicode/utf8"

	"connectrpc.com/vanguard"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// jsonCodec speaks protojson with the proto (snake_case) field names, as the
// vendor API's JSON does, on the Connect protocol.
type jsonCodec struct{ name string }

var (
	marshalJSON   = protojson.MarshalOptions{UseProtoNames: true}
	unmarshalJSON = protojson.UnmarshalOptions{DiscardUnknown: true}
)

func (c jsonCodec) Name() string { return c.name }

func (c jsonCodec) Marshal(m any) ([]byte, error) {
	msg, ok := m.(proto.Message)
	if !ok {
		return nil, errNotProto
	}
	return marshalJSON.Marshal(msg)
}

func (c jsonCodec) Unmarshal(b []byte, m any) error {
	msg, ok := m.(proto.Message)
	if !ok {
		return errNotProto
	}
	return unmarshalJSON.Unmarshal(nulForInvalid(b), msg)
}

// nulForInvalid turns each invalid UTF-8 byte of a JSON body into the
// escape of a NUL byte. protojson would refuse the body while decoding,
// before any interceptor runs, so the call would go unaudited; inside a
// string the escape decodes to a NUL, which the interceptor answers (and
// audits) like any hostile string. Outside a string the body stays
// malformed and is refused as before.
func nulForInvalid(b []byte) []byte {
	if utf8.Valid(b) {
		return b
	}
	return bytes.ToValidUTF8(b, []byte(`\u0000`))
}

var errNotProto = errors.New("codec: value is not a protobuf message")

// restCodec is the REST transcoder's JSON: snake_case too, with invalid
// UTF-8 in a body treated as the Connect JSON codec treats it.
func restCodec(res vanguard.TypeResolver) vanguard.Codec {
	return restJSON{&vanguard.JSONCodec{
		MarshalOptions:   protojson.MarshalOptions{Resolver: res, UseProtoNames: true},
		UnmarshalOptions: protojson.UnmarshalOptions{Resolver: res, DiscardUnknown: true},
	}}
}

type restJSON struct{ *vanguard.JSONCodec }

func (r restJSON) Unmarshal(b []byte, msg proto.Message) error {
	return r.JSONCodec.Unmarshal(nulForInvalid(b), msg)
}

func (r restJSON) UnmarshalField(b []byte, msg proto.Message, field protoreflect.FieldDescriptor) error {
	return r.JSONCodec.UnmarshalField(nulForInvalid(b), msg, field)
}

// protoCodec is Connect's binary protobuf codec (Connect, gRPC and
// gRPC-Web), except that invalid UTF-8 in a `string` field is read as a NUL
// byte rather than refused while decoding, for the reason nulForInvalid
// gives: the interceptor then answers and audits it.
type protoCodec struct{}

func (protoCodec) Name() string   { return "proto" }
func (protoCodec) IsBinary() bool { return true }

func (protoCodec) Marshal(m any) ([]byte, error) { return protoCodec{}.MarshalAppend(nil, m) }

func (protoCodec) MarshalAppend(dst []byte, m any) ([]byte, error) {
	msg, ok := m.(proto.Message)
	if !ok {
		return nil, errNotProto
	}
	return proto.MarshalOptions{}.MarshalAppend(dst, msg)
}

func (protoCodec) MarshalStable(m any) ([]byte, error) {
	msg, ok := m.(proto.Message)
	if !ok {
		return nil, errNotProto
	}
	return proto.MarshalOptions{Deterministic: true}.Marshal(msg)
}

func (protoCodec) Unmarshal(b []byte, m any) error {
	msg, ok := m.(proto.Message)
	if !ok {
		return errNotProto
	}
	err := proto.Unmarshal(b, msg)
	if err == nil {
		return nil
	}
	// Only a body that fails is looked at again: the usual path costs
	// nothing more.
	if fixed, changed, ok := nulForInvalidWire(b, msg.ProtoReflect().Descriptor(), 0); ok && changed {
		proto.Reset(msg)
		if proto.Unmarshal(fixed, msg) == nil {
			return nil
		}
	}
	return fmt.Errorf("unmarshal into %T: %w", m, err)
}

// nulForInvalidWire rewrites a binary message so that invalid UTF-8 in its
// string fields (nested messages and map entries too) becomes NUL bytes. ok
// is false when the bytes are not a well-formed message.
func nulForInvalidWire(b []byte, md protoreflect.MessageDescriptor, depth int) (out []byte, changed, ok bool) {
	out = make([]byte, 0, len(b))
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, false, false
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			return nil, false, false
		}
		fd := md.Fields().ByNumber(num)
		if typ == protowire.BytesType && fd != nil {
			v, _ := protowire.ConsumeBytes(b[n:])
			switch {
			case fd.Kind() == protoreflect.StringKind && !utf8.Valid(v):
				out = protowire.AppendTag(out, num, typ)
				out = protowire.AppendString(out, toNUL(string(v)))
				b, changed = b[n+m:], true
				continue
			case fd.Kind() == protoreflect.MessageKind && depth < maxDepth:
				sub, subChanged, subOK := nulForInvalidWire(v, fd.Message(), depth+1)
				if !subOK {
					return nil, false, false
				}
				if subChanged {
					out = protowire.AppendTag(out, num, typ)
					out = protowire.AppendBytes(out, sub)
					b, changed = b[n+m:], true
					continue
				}
			}
		}
		out = append(out, b[:n+m]...)
		b = b[n+m:]
	}
	return out, changed, true
}
