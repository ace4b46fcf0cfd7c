package server_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	auditv1 "github.com/exportd/exportd/gen/go/audit/v1"
	"github.com/exportd/exportd/gen/go/audit/v1/auditv1connect"
	"github.com/exportd/exportd/internal/store/storetest"
	"github.com/exportd/exportd/server"
	"github.com/exportd/exportd/server/servertest"
)

// hostileInputs are what an attacker puts in a string: a NUL byte, which
// PostgreSQL refuses in text, and a byte that is not UTF-8.
var hostileInputs = []struct{ name, value string }{
	{"nul", "zz\x00zz"},
	{"invalid-utf8", "zz\xffzz"},
}

// addressed are the fields that name the resource a call acts on: a string
// there that no id can be is answered as a missing resource. Every other
// hostile string is invalid_argument.
var addressed = map[string]string{
	"GetExport": "job_id", "WatchExport": "job_id", "CancelExport": "job_id",
	"Download": "job_id", "CreateDownloadLink": "job_id", "ListDownloads": "job_id",
	"RevokeApiKey": "key_id", "DeleteRole": "name",
	"GetPolicy": "policy_id", "UpdatePolicy": "policy_id", "DeletePolicy": "policy_id",
	"RevokeAttestation": "attestation_id", "SupersedeAttestation": "attestation_id", "GetAttestation": "attestation_id",
	"UpdateWebhook": "webhook_id", "DeleteWebhook": "webhook_id",
}

// step is one field on the way to a string: through a message, a list
// element, a map value, or ending at a map key.
type step struct {
	fd     protoreflect.FieldDescriptor
	mapKey bool
}

type target []step

func (t target) String() string {
	var b strings.Builder
	for i, s := range t {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(string(s.fd.Name()))
		if s.mapKey {
			b.WriteString("{key}")
		}
	}
	return b.String()
}

// stringTargets lists every string a request of md can carry, through
// nested messages, lists and maps (keys too), to a bounded depth.
func stringTargets(md protoreflect.MessageDescriptor, prefix target, depth int) []target {
	if depth > 4 {
		return nil
	}
	var out []target
	for i := range md.Fields().Len() {
		fd := md.Fields().Get(i)
		at := append(slices.Clip(prefix), step{fd: fd})
		switch {
		case fd.IsMap():
			if fd.MapKey().Kind() == protoreflect.StringKind {
				out = append(out, append(slices.Clip(prefix), step{fd: fd, mapKey: true}))
			}
			if fd.MapValue().Kind() == protoreflect.StringKind {
				out = append(out, at)
			} else if fd.MapValue().Kind() == protoreflect.MessageKind {
				out = append(out, stringTargets(fd.MapValue().Message(), at, depth+1)...)
			}
		case fd.Kind() == protoreflect.StringKind:
			out = append(out, at)
		case fd.Kind() == protoreflect.MessageKind:
			out = append(out, stringTargets(fd.Message(), at, depth+1)...)
		}
	}
	return out
}

// plant sets the string at t in m to v, making what lies on the way.
func plant(m protoreflect.Message, t target, v string) {
	for i, s := range t {
		last := i == len(t)-1
		switch {
		case s.fd.IsMap():
			mp := m.Mutable(s.fd).Map()
			if s.mapKey {
				mv := mp.NewValue()
				if s.fd.MapValue().Kind() == protoreflect.MessageKind && mv.Message().Descriptor().FullName() == "google.protobuf.Value" {
					// A Value must hold something to be encoded.
					vm := mv.Message()
					vm.Set(vm.Descriptor().Fields().ByName("string_value"), protoreflect.ValueOfString("v"))
				}
				mp.Set(protoreflect.ValueOfString(v).MapKey(), mv)
				return
			}
			key := protoreflect.ValueOfString("k").MapKey()
			if last {
				mp.Set(key, protoreflect.ValueOfString(v))
				return
			}
			mv := mp.NewValue()
			mp.Set(key, mv)
			m = mv.Message()
		case s.fd.IsList():
			l := m.Mutable(s.fd).List()
			if last {
				l.Append(protoreflect.ValueOfString(v))
				return
			}
			e := l.NewElement()
			l.Append(e)
			m = e.Message()
		case last:
			m.Set(s.fd, protoreflect.ValueOfString(v))
		default:
			m = m.Mutable(s.fd).Message()
		}
	}
}

// marker stands in for the hostile value while a message is encoded (the
// encoders refuse invalid UTF-8); the bytes are swapped in afterwards. Both
// have the same length, so no length prefix changes.
const marker = "zz#zz"

func swapMarker(b []byte, value string) []byte {
	return bytes.ReplaceAll(b, []byte(marker), []byte(value))
}

// swapMarkerJSON swaps the marker for the value as JSON text writes it: a
// NUL as its escape, invalid UTF-8 as the raw byte.
func swapMarkerJSON(b []byte, value string) []byte {
	return bytes.ReplaceAll(b, []byte(marker), []byte(strings.ReplaceAll(value, "\x00", `\u0000`)))
}

// hostileCall is one call with a hostile string.
type hostileCall struct {
	method string // RPC name
	field  string
	input  string
	via    string // connect or rest
}

// TestHostileStrings sends a NUL byte and invalid UTF-8 in every string
// field of every RPC (the procedures of the rules table, so a new RPC is
// covered), over Connect (binary protobuf) and over REST where the RPC has a
// route (path, query or JSON body, as the route takes the field), on both
// stores. Each answer must be not_found for the id of the addressed
// resource and invalid_argument otherwise, never internal; its message
// must carry no raw NUL or invalid UTF-8; and each call must leave exactly
// one audit event in the tenant's log.
func TestHostileStrings(t *testing.T) {
	t.Parallel()
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			env := servertest.Start(t, dialect, servertest.Options{NoWorkers: true, Server: server.Config{RateLimit: -1}})
			tenant := env.Tenant(t, "hostile", true)
			key := env.Key(t, tenant, "admin", "attacker@hostile.example")

			rpcs, fields, calls := map[string]bool{}, 0, 0
			for proc := range server.RulePermissions() {
				if !strings.HasPrefix(proc, "/") {
					continue // plain REST handlers: TestHostilePaths
				}
				svc, name, _ := strings.Cut(strings.TrimPrefix(proc, "/"), "/")
				d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(svc))
				if err != nil {
					t.Fatalf("%s: %v", proc, err)
				}
				md := d.(protoreflect.ServiceDescriptor).Methods().ByName(protoreflect.Name(name))
				for _, tg := range stringTargets(md.Input(), nil, 0) {
					rpcs[name] = true
					fields++
					want := connect.CodeInvalidArgument
					if len(tg) == 1 && addressed[name] == string(tg[0].fd.Name()) {
						want = connect.CodeNotFound
					}
					for _, in := range hostileInputs {
						for _, via := range []string{"connect", "rest"} {
							c := hostileCall{method: name, field: tg.String(), input: in.name, via: via}
							before := lastSequence(t, env.Store, tenant)
							var (
								code connect.Code
								msg  string
								sent bool
							)
							if via == "connect" {
								code, msg = connectCall(t, env, key, proc, md, tg, in.value)
								sent = true
							} else {
								code, msg, sent = restHostile(t, env, key, md, tg, in.value)
							}
							if !sent {
								continue // the route cannot carry this field
							}
							calls++
							checkHostileAnswer(t, c, code, want, msg)
							evs := eventsSince(t, env.Store, tenant, before)
							if len(evs) != 1 {
								t.Errorf("%+v: %d audit events, want 1", c, len(evs))
								continue
							}
							if got := evs[0].Metadata["code"]; got != want.String() {
								t.Errorf("%+v: audit event says code %v, want %v", c, got, want)
							}
						}
					}
				}
			}
			t.Logf("hostile strings on %s: %d RPCs, %d string fields × %d inputs: %d calls over Connect and REST",
				dialect, len(rpcs), fields, len(hostileInputs), calls)
			if len(rpcs) < 22 {
				t.Errorf("only %d RPCs take a string; the issue counted 22", len(rpcs))
			}
		})
	}
}

func checkHostileAnswer(t *testing.T, c hostileCall, code, want connect.Code, msg string) {
	t.Helper()
	if code != want {
		t.Errorf("%+v: code %v, want %v (%.300q)", c, codeName(code), want, msg)
	}
	if strings.ContainsRune(msg, 0) || !utf8.ValidString(msg) {
		t.Errorf("%+v: the message carries the hostile bytes: %q", c, msg)
	}
	if len(msg) > 300 {
		t.Errorf("%+v: the message is %d bytes long", c, len(msg))
	}
}

// connectCall makes one Connect call in binary protobuf, unary or server
// stream, and returns its code (0 for success) and error message.
func connectCall(t *testing.T, env *servertest.Env, key, proc string, md protoreflect.MethodDescriptor, tg target, value string) (connect.Code, string) {
	t.Helper()
	mt, err := protoregistry.GlobalTypes.FindMessageByName(md.Input().FullName())
	if err != nil {
		t.Fatal(err)
	}
	msg := mt.New()
	plant(msg, tg, marker)
	b, err := proto.Marshal(msg.Interface())
	if err != nil {
		t.Fatal(err)
	}
	b = swapMarker(b, value)
	ct := "application/proto"
	if md.IsStreamingServer() {
		ct = "application/connect+proto"
		b = append(binary.BigEndian.AppendUint32([]byte{0}, uint32(len(b))), b...) //nolint:gosec // small
	}
	req, err := http.NewRequest("POST", env.URL+proc, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", ct)
	req.Header.Set("Connect-Protocol-Version", "1")
	req.Header.Set("X-API-Key", key)
	resp, err := env.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var end struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Error   *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if md.IsStreamingServer() {
		// The last envelope (flag 2) ends the stream, with the error if any.
		for len(body) >= 5 {
			n := binary.BigEndian.Uint32(body[1:5])
			if body[0]&2 != 0 {
				if err := json.Unmarshal(body[5:5+n], &end); err != nil {
					t.Fatalf("%s: end of stream %q: %v", proc, body[5:5+n], err)
				}
				break
			}
			body = body[5+n:]
		}
		if end.Error == nil {
			return 0, ""
		}
		end.Code, end.Message = end.Error.Code, end.Error.Message
	} else {
		if resp.StatusCode == http.StatusOK {
			return 0, ""
		}
		if err := json.Unmarshal(body, &end); err != nil {
			t.Fatalf("%s: %d %q", proc, resp.StatusCode, body)
		}
	}
	var code connect.Code
	if err := code.UnmarshalText([]byte(end.Code)); err != nil {
		t.Fatalf("%s: code %q: %v", proc, end.Code, err)
	}
	return code, end.Message
}

// restHostile makes the REST form of a call whose string at tg is value:
// in the path when the route binds the field, in the JSON body when the
// route takes one, in the query otherwise. sent is false when the method
// has no route or the route cannot carry the field (a list of messages in a
// query).
func restHostile(t *testing.T, env *servertest.Env, key string, md protoreflect.MethodDescriptor, tg target, value string) (code connect.Code, msg string, sent bool) {
	t.Helper()
	rule, _ := proto.GetExtension(md.Options(), annotations.E_Http).(*annotations.HttpRule)
	method, path := httpRule(md)
	if method == "" {
		return 0, "", false
	}
	top := string(tg[0].fd.Name())
	// Path variables the call does not poison get an id no resource has.
	for _, seg := range strings.Split(path, "{")[1:] {
		name, _, _ := strings.Cut(seg, "}")
		v := "zz-missing"
		if name == top && len(tg) == 1 {
			v = value
		} else if name == top {
			return 0, "", false
		}
		path = strings.Replace(path, "{"+name+"}", url.PathEscape(v), 1)
	}
	mt, err := protoregistry.GlobalTypes.FindMessageByName(md.Input().FullName())
	if err != nil {
		t.Fatal(err)
	}
	msg0 := mt.New()
	bound := strings.Contains(rule.GetGet()+rule.GetPost()+rule.GetPut()+rule.GetPatch()+rule.GetDelete(), "{"+top+"}")
	var body string
	switch {
	case bound:
		if rule.GetBody() != "" {
			body = "{}"
		}
	case rule.GetBody() == "*":
		plant(msg0, tg, marker)
		b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(msg0.Interface())
		if err != nil {
			t.Fatal(err)
		}
		body = string(swapMarkerJSON(b, value))
	case rule.GetBody() != "":
		if top != rule.GetBody() {
			return 0, "", false
		}
		plant(msg0, tg, marker)
		b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(msg0.Get(tg[0].fd).Message().Interface())
		if err != nil {
			t.Fatal(err)
		}
		body = string(swapMarkerJSON(b, value))
	default:
		// The query: a path of singular messages to a string, or a list
		// of strings at its end.
		names := make([]string, len(tg))
		for i, s := range tg {
			if s.fd.IsMap() || (s.fd.IsList() && i < len(tg)-1) {
				return 0, "", false
			}
			names[i] = string(s.fd.Name())
		}
		path += "?" + url.QueryEscape(strings.Join(names, ".")) + "=" + url.QueryEscape(value)
	}
	code, answer, err := restRequest(env, key, method, path, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	var st struct{ Message string }
	if code != 0 {
		if err := json.Unmarshal([]byte(answer), &st); err != nil {
			t.Fatalf("%s %s: %q: %v", method, path, answer, err)
		}
	}
	return code, st.Message, true
}

// TestHostilePaths covers the plain REST handlers and the URL edge: ids
// with a NUL byte or invalid UTF-8 in the download, manifest and link paths
// are not_found in JSON (audited in the tenant's log when a key named the
// tenant), and an id of 10,000 characters is echoed cut; malformed paths
// under /v1/ are JSON not_found, not a redirect; an unknown query
// parameter or a value of the wrong type is invalid_argument, not a 500.
func TestHostilePaths(t *testing.T) {
	t.Parallel()
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			env := servertest.Start(t, dialect, servertest.Options{NoWorkers: true})
			tenant := env.Tenant(t, "paths", true)
			key := env.Key(t, tenant, "admin", "attacker@paths.example")
			noRedirect := *env.Client
			noRedirect.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
			get := func(path string) (int, connect.Code, string) {
				req, err := http.NewRequest("GET", env.URL+path, nil)
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("X-API-Key", key)
				resp, err := noRedirect.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				var st struct {
					Code    int    `json:"code"`
					Message string `json:"message"`
				}
				if !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") || json.Unmarshal(b, &st) != nil {
					t.Errorf("GET %s: %d %s %q, want a JSON google.rpc.Status", path, resp.StatusCode, resp.Header.Get("Content-Type"), b)
				}
				return resp.StatusCode, connect.Code(st.Code), st.Message //nolint:gosec // codes are small
			}
			// events is how many audit events the call leaves in the
			// tenant's log; -1 leaves it to the tests of the REST surface.
			for _, tc := range []struct {
				path   string
				status int
				code   connect.Code
				events int
			}{
				{"/v1/audit/exports/job_%00x/download", 404, connect.CodeNotFound, 1},
				{"/v1/audit/exports/job_%FFx/download", 404, connect.CodeNotFound, 1},
				{"/v1/audit/exports/job_%00x/manifest", 404, connect.CodeNotFound, 1},
				{"/v1/audit/exports/job_%FFx/manifest", 404, connect.CodeNotFound, 1},
				{"/v1/audit/exports/job_%FFx", 404, connect.CodeNotFound, 1},
				{"/v1/audit/exports/" + strings.Repeat("j", 10000), 404, connect.CodeNotFound, 1},
				{"/v1/links/%00abc", 404, connect.CodeNotFound, 0}, // no key, no tenant
				{"/v1/links/%FFabc", 404, connect.CodeNotFound, 0},
				{"/v1/audit/exports/..", 404, connect.CodeNotFound, -1},
				{"/v1/audit/exports/%2E%2E/manifest", 404, connect.CodeNotFound, -1},
				{"/v1/audit/exports//manifest", 404, connect.CodeNotFound, -1},
				{"/v1/audit/exports?foo=bar", 400, connect.CodeInvalidArgument, -1},
				{"/v1/audit/exports?page_size=many", 400, connect.CodeInvalidArgument, -1},
				{"/v1/audit/events?filter.actor_id=x&filter.nonsense=1", 400, connect.CodeInvalidArgument, -1},
			} {
				before := lastSequence(t, env.Store, tenant)
				status, code, msg := get(tc.path)
				if status != tc.status || code != tc.code {
					t.Errorf("GET %.80s: %d %v (%q), want %d %v", tc.path, status, codeName(code), msg, tc.status, tc.code)
				}
				if strings.ContainsRune(msg, 0) || !utf8.ValidString(msg) || len(msg) > 200 {
					t.Errorf("GET %.80s: message %.300q carries the hostile bytes or is too long", tc.path, msg)
				}
				if n := len(eventsSince(t, env.Store, tenant, before)); tc.events >= 0 && n != tc.events {
					t.Errorf("GET %.80s: %d audit events, want %d", tc.path, n, tc.events)
				}
			}
		})
	}
}

// rawProto is a client codec that encodes like protobuf, then swaps the
// marker for a hostile value the encoder would refuse.
type rawProto struct{ value string }

func (rawProto) Name() string { return "proto" }

func (r rawProto) Marshal(m any) ([]byte, error) {
	b, err := proto.Marshal(m.(proto.Message))
	return swapMarker(b, r.value), err
}

func (rawProto) Unmarshal(b []byte, m any) error { return proto.Unmarshal(b, m.(proto.Message)) }

// TestHostileOverGRPC sends both inputs as a job id over gRPC and gRPC-Web,
// unary and server stream: the binary codec reads invalid UTF-8 as a NUL
// there too, so both are not_found and audited once.
func TestHostileOverGRPC(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t, "sqlite", servertest.Options{NoWorkers: true})
	tenant := env.Tenant(t, "grpc", true)
	key := env.Key(t, tenant, "admin", "attacker@grpc.example")
	for _, p := range []struct {
		name string
		opt  connect.ClientOption
	}{{"grpc", connect.WithGRPC()}, {"grpc-web", connect.WithGRPCWeb()}} {
		for _, in := range hostileInputs {
			client := auditv1connect.NewExportServiceClient(env.Client, env.URL, p.opt, withKey(key), connect.WithCodec(rawProto{in.value}))
			calls := map[string]func() error{
				"GetExport": func() error {
					_, err := client.GetExport(context.Background(), connect.NewRequest(&auditv1.GetExportRequest{JobId: marker}))
					return err
				},
				"WatchExport": func() error {
					s, err := client.WatchExport(context.Background(), connect.NewRequest(&auditv1.WatchExportRequest{JobId: marker}))
					if err != nil {
						return err
					}
					for s.Receive() {
					}
					return s.Err()
				},
			}
			for name, call := range calls {
				before := lastSequence(t, env.Store, tenant)
				err := call()
				if connect.CodeOf(err) != connect.CodeNotFound || !strings.Contains(err.Error(), `export "zz\x`) {
					t.Errorf("%s %s %s: %v, want not_found naming the escaped id", p.name, name, in.name, err)
				}
				if n := len(eventsSince(t, env.Store, tenant, before)); n != 1 {
					t.Errorf("%s %s %s: %d audit events, want 1", p.name, name, in.name, n)
				}
			}
		}
	}
}
