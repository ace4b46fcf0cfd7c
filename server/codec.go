package server

import (
	"errors"

	"connectrpc.com/vanguard"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
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
	return unmarshalJSON.Unmarshal(b, msg)
}

var errNotProto = errors.New("codec: value is not a protobuf message")

// restCodec is the REST transcoder's JSON: snake_case too.
func restCodec(res vanguard.TypeResolver) vanguard.Codec {
	return &vanguard.JSONCodec{
		MarshalOptions:   protojson.MarshalOptions{Resolver: res, UseProtoNames: true},
		UnmarshalOptions: protojson.UnmarshalOptions{Resolver: res, DiscardUnknown: true},
	}
}
