package server

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"unicode/utf8"

	validatepb "buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"connectrpc.com/connect"
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
	marshalJSON = protojson.MarshalOptions{UseProtoNames: true}
	// Unknown fields are refused, not dropped: a misspelt or invented field
	// (`{"enabled":false}` where the message has `disabled`) would otherwise
	// be a silent no-op that does the opposite of what the caller meant.
	unmarshalJSON = protojson.UnmarshalOptions{}
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
	// connect-go makes any error here invalid_argument, prefixed with
	// "unmarshal message: "; a plain error keeps that message readable.
	if err := unmarshalJSON.Unmarshal(nulForInvalid(b), msg); err != nil {
		if field, ok := unknownField(err); ok {
			return errors.New(unknownFieldMessage(field))
		}
		return err
	}
	return nil
}

var errNotProto = errors.New("codec: value is not a protobuf message")

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

// restCodec is the REST transcoder's JSON: snake_case too, and every
// field is in the answer, its default value included (`"completed": false`,
// `"start_offset": 0`), as REST clients that read fields without a schema
// expect. Unset messages and unset optional fields stay out rather than
// showing as null: a timestamp that has not happened yet is absent.
func restCodec(res vanguard.TypeResolver) vanguard.Codec {
	return restJSON{vanguard.JSONCodec{
		MarshalOptions:   protojson.MarshalOptions{Resolver: res, UseProtoNames: true, EmitDefaultValues: true},
		UnmarshalOptions: protojson.UnmarshalOptions{Resolver: res},
	}}
}

// restJSON is vanguard's JSON codec with unknown fields answered as an
// invalid_argument that names the field, with a field violation, and
// invalid UTF-8 read as the Connect JSON codec reads it (nulForInvalid).
type restJSON struct{ vanguard.JSONCodec }

var _ vanguard.RESTCodec = restJSON{}

func (c restJSON) Unmarshal(b []byte, msg proto.Message) error {
	return restUnmarshalError(c.JSONCodec.Unmarshal(nulForInvalid(b), msg))
}

func (c restJSON) UnmarshalField(b []byte, msg proto.Message, field protoreflect.FieldDescriptor) error {
	return restUnmarshalError(c.JSONCodec.UnmarshalField(nulForInvalid(b), msg, field))
}

// restUnmarshalError makes a decoding error an invalid_argument the REST
// client can act on. Vanguard passes a Connect error through to the answer,
// details included.
func restUnmarshalError(err error) error {
	if err == nil {
		return nil
	}
	field, ok := unknownField(err)
	if !ok {
		return connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("decode request body: %w", err))
	}
	ce := connect.NewError(connect.CodeInvalidArgument, errors.New(unknownFieldMessage(field)))
	vs := &validatepb.Violations{Violations: []*validatepb.Violation{{
		Field:   &validatepb.FieldPath{Elements: []*validatepb.FieldPathElement{{FieldName: proto.String(field)}}},
		RuleId:  proto.String("unknown_field"),
		Message: proto.String("is not a field of this request"),
	}}}
	if d, derr := connect.NewErrorDetail(vs); derr == nil {
		ce.AddDetail(d)
	}
	return ce
}

// protojson says `unknown field "name"` and nothing more structured; the name
// is the member as sent, at whatever depth it was.
var unknownFieldRE = regexp.MustCompile(`unknown field "([^"]*)"`)

func unknownField(err error) (string, bool) {
	m := unknownFieldRE.FindStringSubmatch(err.Error())
	if m == nil {
		return "", false
	}
	return m[1], true
}

func unknownFieldMessage(field string) string {
	return fmt.Sprintf("unknown field %q: the request has no field of that name", field)
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
