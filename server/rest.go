package server

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"
)

// restPrefix is the REST surface: everything under it answers JSON.
const restPrefix = "/v1/"

// restSurface serves everything under /v1/: the transcoded routes and the
// plain handlers, with one error shape. It is reached before the main mux,
// because net/http's ServeMux answers a path like /v1/audit/exports//x or
// /v1/./x with a redirect to its clean form, and REST clients get JSON here,
// never a redirect or a text page.
func restSurface(routes http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ew := &restErrorWriter{ResponseWriter: w}
		defer ew.finish()
		p := r.URL.Path
		if path.Clean(p) != p || strings.HasSuffix(p, "/") || !printable(p) {
			// An empty segment, a dot segment, a trailing slash, a control
			// character or bytes that are not UTF-8: no resource has such a
			// name (ids are never empty and are plain ASCII), and a database
			// must not see them as a query parameter. A NUL byte (which
			// hostileURLs also makes of invalid UTF-8) goes on to the
			// hostile-string rule: the same not_found, but in the tenant's
			// audit log when the call names a resource of a route.
			writeRESTError(ew, connect.NewError(connect.CodeNotFound, fmt.Errorf("no such resource: %q", p)))
			return
		}
		routes.ServeHTTP(ew, r)
	})
}

// printable says whether p is UTF-8 without control characters other than
// NUL.
func printable(p string) bool {
	if !utf8.ValidString(p) {
		return false
	}
	for _, r := range p {
		if unicode.IsControl(r) && r != 0 {
			return false
		}
	}
	return true
}

// restNotFound answers a path under /v1/ that no route claims.
func restNotFound(w http.ResponseWriter, r *http.Request) {
	writeRESTError(w, connect.NewError(connect.CodeNotFound, errors.New("no such resource: "+r.URL.Path)))
}

// onlyMethods lets a plain handler see only the methods it serves; others
// get 405 with Allow, as the transcoded routes do.
func onlyMethods(h http.HandlerFunc, methods ...string) http.Handler {
	allow := strings.Join(methods, ", ")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !slices.Contains(methods, r.Method) {
			w.Header().Set("Allow", allow)
			writeRESTStatus(w, http.StatusMethodNotAllowed, connect.CodeUnimplemented,
				"method "+r.Method+" is not allowed here; use "+allow)
			return
		}
		h(w, r)
	})
}

// writeRESTStatus writes a google.rpc.Status with an HTTP status of its own
// (405, 415, 416…), where the code's standard status would say less.
func writeRESTStatus(w http.ResponseWriter, httpCode int, code connect.Code, msg string) {
	writeRESTError(statusWriter{ResponseWriter: w, code: httpCode}, connect.NewError(code, errors.New(msg)))
}

// statusWriter replaces the status writeRESTError picks.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (s statusWriter) WriteHeader(int) { s.ResponseWriter.WriteHeader(s.code) }

// codeOfStatus is the code of an error answer some other layer wrote as
// text (vanguard's 405 and 415, net/http's 416 and 404).
func codeOfStatus(status int) connect.Code {
	switch status {
	case http.StatusBadRequest, http.StatusUnsupportedMediaType, http.StatusNotAcceptable:
		return connect.CodeInvalidArgument
	case http.StatusUnauthorized:
		return connect.CodeUnauthenticated
	case http.StatusForbidden:
		return connect.CodePermissionDenied
	case http.StatusNotFound:
		return connect.CodeNotFound
	case http.StatusMethodNotAllowed, http.StatusNotImplemented:
		return connect.CodeUnimplemented
	case http.StatusConflict:
		return connect.CodeAborted
	case http.StatusRequestEntityTooLarge, http.StatusTooManyRequests:
		return connect.CodeResourceExhausted
	case http.StatusRequestedRangeNotSatisfiable:
		return connect.CodeOutOfRange
	case http.StatusServiceUnavailable, http.StatusBadGateway:
		return connect.CodeUnavailable
	case http.StatusGatewayTimeout, http.StatusRequestTimeout:
		return connect.CodeDeadlineExceeded
	case http.StatusInternalServerError:
		return connect.CodeInternal
	}
	return connect.CodeUnknown
}

// restErrorWriter keeps REST answers to one error shape and to what HTTP
// clients read. Every error answer under /v1/ is held back and checked
// before it goes out: one another layer wrote as text (vanguard's 405 and
// 415, http.ServeContent's 416) becomes google.rpc.Status JSON with the
// same status and headers (Allow, Content-Range); a Status vanguard wrote
// under its handler's protobuf Content-Type gets the JSON one. Every 401
// carries a WWW-Authenticate challenge and every 429 a Retry-After.
type restErrorWriter struct {
	http.ResponseWriter
	wrote bool
	// held is set while an error answer is held back; body collects it.
	held   bool
	status int
	body   bytes.Buffer
}

// maxErrorBody bounds a held-back error answer; errors are small.
const maxErrorBody = 1 << 20

func (w *restErrorWriter) WriteHeader(code int) {
	if w.wrote {
		return
	}
	w.wrote = true
	h := w.Header()
	switch code {
	case http.StatusUnauthorized:
		if h.Get("WWW-Authenticate") == "" {
			h.Set("WWW-Authenticate", authChallenge)
		}
	case http.StatusTooManyRequests:
		if h.Get("Retry-After") == "" {
			// No delay was known: the shortest one a client honours.
			h.Set("Retry-After", "1")
		}
	}
	if code >= 400 {
		w.held, w.status = true, code
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *restErrorWriter) Write(p []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if w.held {
		if room := maxErrorBody - w.body.Len(); room > 0 {
			w.body.Write(p[:min(len(p), room)])
		}
		return len(p), nil
	}
	return w.ResponseWriter.Write(p)
}

// ReadFrom keeps the copy of a download on the connection's own ReaderFrom
// (sendfile on HTTP/1.1).
func (w *restErrorWriter) ReadFrom(src io.Reader) (int64, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok && !w.held {
		return rf.ReadFrom(src)
	}
	return io.Copy(struct{ io.Writer }{w}, src)
}

// Flush lets streamed answers out as they are written.
func (w *restErrorWriter) Flush() {
	if w.held {
		return
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap gives http.ResponseController the underlying writer.
func (w *restErrorWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// finish sends a held-back error answer as google.rpc.Status JSON.
func (w *restErrorWriter) finish() {
	if !w.held {
		return
	}
	h := w.Header()
	h.Del("X-Content-Type-Options")
	h.Del("Content-Length")
	body := w.body.Bytes()
	if strings.EqualFold(h.Get("Content-Encoding"), "gzip") {
		// An error the handler compressed for a client that accepts gzip.
		if zr, err := gzip.NewReader(bytes.NewReader(body)); err == nil {
			if plain, err := io.ReadAll(io.LimitReader(zr, maxErrorBody)); err == nil {
				body = plain
			}
		}
	}
	h.Del("Content-Encoding")
	if allow := h.Values("Allow"); len(allow) > 0 {
		h.Set("Allow", normalizeAllow(allow))
	}
	var st status.Status
	if err := protojson.Unmarshal(body, &st); err == nil && st.GetCode() != 0 {
		if connect.Code(st.GetCode()) == connect.CodeUnknown { //nolint:gosec // codes are small
			// Only reading the request yields unknown here (our handlers
			// answer internal for what they did not expect): vanguard
			// could not map the path or query onto the request message,
			// e.g. an unknown query parameter. That is the client's.
			writeRESTStatus(w.ResponseWriter, http.StatusBadRequest, connect.CodeInvalidArgument, st.GetMessage())
			return
		}
		h.Set("Content-Type", "application/json")
		w.ResponseWriter.WriteHeader(w.status)
		_, _ = w.ResponseWriter.Write(body)
		return
	}
	msg := strings.TrimSpace(string(body))
	if len(msg) > 512 || msg == "" {
		msg = http.StatusText(w.status)
	}
	writeRESTStatus(w.ResponseWriter, w.status, codeOfStatus(w.status), msg)
}

// normalizeAllow lists the methods of Allow headers once each, sorted:
// vanguard lists them in map order.
func normalizeAllow(values []string) string {
	var ms []string
	for _, v := range values {
		for _, m := range strings.Split(v, ",") {
			if m = strings.TrimSpace(m); m != "" && !slices.Contains(ms, m) {
				ms = append(ms, m)
			}
		}
	}
	slices.Sort(ms)
	return strings.Join(ms, ", ")
}
