package server

import (
	"errors"
	"fmt"
	"regexp"

	validatepb "buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"connectrpc.com/connect"
	"connectrpc.com/vanguard"
	"google.golang.org/protobuf/encoding/protojson"
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
	if err := unmarshalJSON.Unmarshal(b, msg); err != nil {
		if field, ok := unknownField(err); ok {
			return errors.New(unknownFieldMessage(field))
		}
		return err
	}
	return nil
}

var errNotProto = errors.New("codec: value is not a protobuf message")

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
// invalid_argument that names the field, with a field violation.
type restJSON struct{ vanguard.JSONCodec }

var _ vanguard.RESTCodec = restJSON{}

func (c restJSON) Unmarshal(b []byte, msg proto.Message) error {
	return restUnmarshalError(c.JSONCodec.Unmarshal(b, msg))
}

func (c restJSON) UnmarshalField(b []byte, msg proto.Message, field protoreflect.FieldDescriptor) error {
	return restUnmarshalError(c.JSONCodec.UnmarshalField(b, msg, field))
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
