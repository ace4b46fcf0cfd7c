package server

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/exportd/exportd/internal/fault"
	"github.com/exportd/exportd/internal/store"
)

// Hostile strings: a NUL byte or invalid UTF-8 in any string a request
// carries. PostgreSQL refuses both in text (SQLSTATE 22021), so such a value
// must never reach a query, or the call fails as an internal error, and its
// audit event with it. One check covers every RPC: the interceptor walks the
// request after authentication and before validation and the handler, so
// the refusal is audited like any other answer.
//
// The answer depends on what the string is:
//   - the id of the resource the call addresses (a path variable of the
//     method's REST route that names a job, key, policy, attestation,
//     webhook or role, and that field of the methods without a route) is
//     answered like a missing resource, with the very message a missing one
//     gets: no id holds such bytes, so none is found;
//   - any other string is invalid_argument naming the field.
//
// Binary protobuf and protojson refuse invalid UTF-8 in a `string` while
// decoding, before any interceptor runs, and the REST transcoder fails on
// it in a path or query as a 500. So the codecs (protoCodec, nulForInvalid)
// and the REST edge (hostileURLs) turn each invalid byte into a NUL byte,
// and the request is answered, and audited, here like any other.

// missingAnswers is the answer for a resource id no resource can have, by
// the request field that carries it: the store's own not-found answers.
var missingAnswers = map[protoreflect.Name]func(id string) error{
	"job_id":    store.JobNotFound,
	"key_id":    store.KeyNotFound,
	"policy_id": store.PolicyNotFound,
	"attestation_id": func(id string) error {
		return fault.New(fault.NotFound, "attestation %s not found", fault.Echo(id))
	},
	"webhook_id": func(id string) error {
		return fault.New(fault.NotFound, "webhook %s not found", fault.Echo(id))
	},
	"name": func(id string) error { // DELETE /v1/roles/{name}
		return fault.New(fault.NotFound, "role %s not found", fault.Echo(id))
	},
}

// addressing lists, per request message, the top-level fields that address
// a resource: computed once from the REST routes of the audit.v1 services.
var addressing = addressingFields()

func addressingFields() map[protoreflect.FullName]map[protoreflect.Name]bool {
	out := map[protoreflect.FullName]map[protoreflect.Name]bool{}
	protoregistry.GlobalFiles.RangeFilesByPackage("audit.v1", func(f protoreflect.FileDescriptor) bool {
		for i := range f.Services().Len() {
			sd := f.Services().Get(i)
			for j := range sd.Methods().Len() {
				md := sd.Methods().Get(j)
				in := md.Input()
				set := map[protoreflect.Name]bool{}
				vars, routed := pathVariables(md)
				for k := range in.Fields().Len() {
					fd := in.Fields().Get(k)
					if fd.Kind() != protoreflect.StringKind || fd.IsList() || missingAnswers[fd.Name()] == nil {
						continue
					}
					// A method without a route (a server stream) addresses
					// what its field names, as its routed siblings do.
					if vars[string(fd.Name())] || (!routed && fd.Name() != "name") {
						set[fd.Name()] = true
					}
				}
				out[in.FullName()] = set
			}
		}
		return true
	})
	return out
}

// pathVariables are the variables of md's REST route, and whether it has one.
func pathVariables(md protoreflect.MethodDescriptor) (map[string]bool, bool) {
	r, _ := proto.GetExtension(md.Options(), annotations.E_Http).(*annotations.HttpRule)
	var path string
	switch p := r.GetPattern().(type) {
	case *annotations.HttpRule_Get:
		path = p.Get
	case *annotations.HttpRule_Post:
		path = p.Post
	case *annotations.HttpRule_Put:
		path = p.Put
	case *annotations.HttpRule_Patch:
		path = p.Patch
	case *annotations.HttpRule_Delete:
		path = p.Delete
	default:
		return nil, false
	}
	vars := map[string]bool{}
	for _, seg := range strings.Split(path, "{")[1:] {
		name, _, _ := strings.Cut(seg, "}")
		name, _, _ = strings.Cut(name, "=")
		vars[name] = true
	}
	return vars, true
}

// hostile reports whether s holds a NUL byte or is not valid UTF-8.
func hostile(s string) bool {
	return strings.IndexByte(s, 0) >= 0 || !utf8.ValidString(s)
}

// refuseHostile returns the answer for a request carrying a hostile string,
// or nil when it carries none.
func refuseHostile(req any) error {
	m, ok := req.(proto.Message)
	if !ok || m == nil {
		return nil
	}
	rm := m.ProtoReflect()
	var hits []hit
	findHostile(rm, "", 0, &hits)
	if len(hits) == 0 {
		return nil
	}
	for _, h := range hits {
		if h.fd.ContainingMessage() == rm.Descriptor() && addressing[rm.Descriptor().FullName()][h.fd.Name()] {
			return missingAnswers[h.fd.Name()](h.value)
		}
	}
	vs := make([]fault.Violation, 0, len(hits))
	for _, h := range hits {
		v := fault.Violation{Field: h.path, Rule: "string.hostile", Message: "must be valid UTF-8 without NUL bytes"}
		if !strings.ContainsAny(h.path, ".[") {
			v.Number = int32(h.fd.Number()) //nolint:gosec // field numbers are small
		}
		vs = append(vs, v)
	}
	return fault.Invalid(vs...)
}

// hit is one hostile string: the field, its path in the form protovalidate
// uses (`events[0].actor_id`), and the value.
type hit struct {
	fd    protoreflect.FieldDescriptor
	path  string
	value string
}

// Limits of the walk: protobuf itself refuses deeper messages, and a
// hundred violations say enough.
const (
	maxDepth = 100
	maxHits  = 100
)

// jsonValues are the well-known types that carry free JSON: a hostile
// string anywhere inside one is reported at the field holding it
// (`events[2].metadata`), as the client wrote it, not at the type's
// internals.
var jsonValues = map[protoreflect.FullName]bool{
	"google.protobuf.Struct": true, "google.protobuf.Value": true, "google.protobuf.ListValue": true,
}

// findHostile walks m depth first, in field order, and appends every string
// (map keys too) holding a hostile value to hits.
func findHostile(m protoreflect.Message, prefix string, depth int, hits *[]hit) {
	if depth > maxDepth {
		return
	}
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if len(*hits) >= maxHits {
			return
		}
		if !m.Has(fd) {
			continue
		}
		v := m.Get(fd)
		path := prefix + string(fd.Name())
		switch {
		case fd.IsMap():
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				at := fmt.Sprintf("%s[%s]", path, fault.Echo(k.String()))
				if fd.MapKey().Kind() == protoreflect.StringKind && hostile(k.String()) {
					*hits = append(*hits, hit{fd, at, k.String()})
				} else {
					checkValue(fd.MapValue(), mv, at, depth, hits)
				}
				return len(*hits) < maxHits
			})
		case fd.IsList():
			l := v.List()
			for j := range l.Len() {
				checkValue(fd, l.Get(j), fmt.Sprintf("%s[%d]", path, j), depth, hits)
			}
		default:
			checkValue(fd, v, path, depth, hits)
		}
	}
}

// checkValue checks one value of fd: a string, or a message to walk.
func checkValue(fd protoreflect.FieldDescriptor, v protoreflect.Value, path string, depth int, hits *[]hit) {
	switch fd.Kind() {
	case protoreflect.StringKind:
		if s := v.String(); hostile(s) {
			*hits = append(*hits, hit{fd, path, s})
		}
	case protoreflect.MessageKind, protoreflect.GroupKind:
		if jsonValues[fd.Message().FullName()] {
			var inside []hit
			findHostile(v.Message(), "", depth+1, &inside)
			if len(inside) > 0 {
				*hits = append(*hits, hit{fd, path, inside[0].value})
			}
			return
		}
		findHostile(v.Message(), path+".", depth+1, hits)
	}
}

// cleanText makes a string safe to store as text: NUL bytes and invalid
// UTF-8 become U+FFFD, and it is cut to limit bytes (on a rune boundary).
// The audit log stores what a request named (a resource id, a header) even
// when a hostile caller chose it; it must not fail to store it.
func cleanText(s string, limit int) string {
	if hostile(s) {
		s = strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
	}
	if len(s) > limit {
		cut := limit
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

// maxAuditText caps a string the audit log copies from a request.
const maxAuditText = 256

// cleanMeta cleans every string (keys too) of audit metadata.
func cleanMeta(v any) any {
	switch t := v.(type) {
	case string:
		return cleanText(t, maxAuditText)
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, x := range t {
			out[cleanText(k, maxAuditText)] = cleanMeta(x)
		}
		return out
	case []string:
		out := make([]string, len(t))
		for i, x := range t {
			out[i] = cleanText(x, maxAuditText)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = cleanMeta(x)
		}
		return out
	}
	return v
}

// hostileURLs is the REST edge's part of the rule: under /v1/, a path
// segment or query value that is not valid UTF-8 has each invalid byte
// turned into a NUL byte. The request then reaches the interceptor (or the
// plain handler's own check), which answers it by the one rule and audits
// it, rather than failing inside the transcoder, which cannot encode it.
func hostileURLs(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, restPrefix) {
			next.ServeHTTP(w, r)
			return
		}
		if p := r.URL.EscapedPath(); strings.Contains(p, "%") || !utf8.ValidString(p) {
			segs := strings.Split(p, "/")
			changed := false
			for i, seg := range segs {
				if v, err := url.PathUnescape(seg); err == nil && !utf8.ValidString(v) {
					segs[i], changed = url.PathEscape(toNUL(v)), true
				}
			}
			if changed {
				u := *r.URL
				u.RawPath = strings.Join(segs, "/")
				u.Path, _ = url.PathUnescape(u.RawPath)
				r = r.Clone(r.Context())
				r.URL = &u
			}
		}
		if q := r.URL.RawQuery; strings.Contains(q, "%") || !utf8.ValidString(q) {
			if vals, err := url.ParseQuery(q); err == nil {
				fixed, changed := url.Values{}, false
				for k, vs := range vals {
					for _, v := range vs {
						changed = changed || !utf8.ValidString(k) || !utf8.ValidString(v)
						fixed.Add(toNUL(k), toNUL(v))
					}
				}
				if changed {
					u := *r.URL
					u.RawQuery = fixed.Encode()
					r = r.Clone(r.Context())
					r.URL = &u
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// toNUL replaces each invalid UTF-8 byte of s with a NUL byte.
func toNUL(s string) string { return strings.ToValidUTF8(s, "\x00") }
