package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	auditv1 "github.com/exportd/exportd/gen/go/audit/v1"
	"github.com/exportd/exportd/gen/go/audit/v1/auditv1connect"
	"github.com/exportd/exportd/internal/store"
	"github.com/exportd/exportd/internal/store/storetest"
	"github.com/exportd/exportd/server/servertest"
)

// artifact returns n deterministic, incompressible bytes.
func artifact(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)})
	_, _ = r.Read(b)
	return b
}

// rpcProtocols are the ways a generated client reaches DownloadService, each
// with the protocol name a download record should carry.
var rpcProtocols = []struct {
	name, record string
	opts         []connect.ClientOption
}{
	{"connect", "connect", nil},
	{"connect-json", "connect", []connect.ClientOption{connect.WithProtoJSON()}},
	{"grpc", "grpc", []connect.ClientOption{connect.WithGRPC()}},
	{"grpc-web", "grpc-web", []connect.ClientOption{connect.WithGRPCWeb()}},
}

// streamDownload reads a Download stream whole and checks its framing: info
// first, contiguous chunks of at most 64 KiB from offset, then the trailer.
func streamDownload(t *testing.T, c auditv1connect.DownloadServiceClient, jobID string, offset int64) ([]byte, *auditv1.DownloadInfo, *auditv1.DownloadTrailer) {
	t.Helper()
	stream, err := c.Download(context.Background(), connect.NewRequest(&auditv1.DownloadRequest{JobId: jobID, StartOffset: offset}))
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	var (
		body    bytes.Buffer
		info    *auditv1.DownloadInfo
		trailer *auditv1.DownloadTrailer
		n       int
	)
	for stream.Receive() {
		switch m := stream.Msg().GetMsg().(type) {
		case *auditv1.DownloadResponse_Info:
			if n != 0 {
				t.Fatalf("info as message %d", n)
			}
			info = m.Info
		case *auditv1.DownloadResponse_Chunk:
			if info == nil || trailer != nil {
				t.Fatal("chunk outside info … trailer")
			}
			if got, want := m.Chunk.GetOffset(), offset+int64(body.Len()); got != want {
				t.Fatalf("chunk at offset %d, want %d", got, want)
			}
			if len(m.Chunk.GetData()) == 0 || len(m.Chunk.GetData()) > 64<<10 {
				t.Fatalf("chunk of %d bytes", len(m.Chunk.GetData()))
			}
			body.Write(m.Chunk.GetData())
		case *auditv1.DownloadResponse_Trailer:
			trailer = m.Trailer
		}
		n++
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("Download from %d: %v", offset, err)
	}
	if info == nil || trailer == nil {
		t.Fatalf("stream lacks info (%v) or trailer (%v)", info, trailer)
	}
	return body.Bytes(), info, trailer
}

func restGet(t *testing.T, env *servertest.Env, method, path, key string, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, env.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("X-API-Key", key)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp := do(t, env, req)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// restStatus decodes a google.rpc.Status answer.
func restStatus(t *testing.T, resp *http.Response, b []byte, httpCode int, code connect.Code, inMessage string) {
	t.Helper()
	var st struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
	if resp.StatusCode != httpCode || json.Unmarshal(b, &st) != nil || st.Code != int(code) || !strings.Contains(st.Message, inMessage) {
		t.Fatalf("%s %s: %d %s; want %d, code %v, message with %q", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, b, httpCode, code, inMessage)
	}
}

// TestDownload downloads one artifact over Connect, gRPC, gRPC-Web and REST,
// whole, resumed and by range, and reads the download history back.
func TestDownload(t *testing.T) {
	t.Parallel()
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			env := servertest.Start(t, dialect, servertest.Options{NoWorkers: true})
			tenant := env.Tenant(t, "Acme Health", true)
			key := env.Key(t, tenant, "auditor", "audrey@example.com")
			// Not a multiple of the chunk size, so the last chunk is short.
			data := artifact(1<<20+12345, 1)
			sum := sha256.Sum256(data)
			digest := hex.EncodeToString(sum[:])
			id := env.CompletedJob(t, tenant, "csv", data)

			for _, p := range rpcProtocols {
				t.Run(p.name, func(t *testing.T) {
					c := auditv1connect.NewDownloadServiceClient(env.Client, env.URL, append(p.opts, withKey(key))...)
					got, info, trailer := streamDownload(t, c, id, 0)
					if !bytes.Equal(got, data) {
						t.Fatalf("downloaded %d bytes that differ from the %d-byte artifact", len(got), len(data))
					}
					if info.GetTotalSize() != int64(len(data)) || info.GetSha256() != digest || info.GetContentType() != "text/csv; charset=utf-8" ||
						!strings.HasSuffix(info.GetFilename(), ".csv") {
						t.Fatalf("info %v", info)
					}
					if trailer.GetTotalSize() != int64(len(data)) || trailer.GetSha256() != digest || trailer.GetBytesSent() != int64(len(data)) {
						t.Fatalf("trailer %v", trailer)
					}
					// Resume from the middle, off a chunk boundary.
					half := int64(len(data)/2 + 7)
					rest, _, trailer := streamDownload(t, c, id, half)
					if !bytes.Equal(rest, data[half:]) || trailer.GetBytesSent() != int64(len(data))-half {
						t.Fatalf("resumed download from %d: %d bytes, trailer %v", half, len(rest), trailer)
					}
					// From the very end: nothing but info and trailer.
					if tail, _, _ := streamDownload(t, c, id, int64(len(data))); len(tail) != 0 {
						t.Fatalf("download from the end sent %d bytes", len(tail))
					}
					stream, err := c.Download(context.Background(), connect.NewRequest(&auditv1.DownloadRequest{JobId: id, StartOffset: int64(len(data)) + 1}))
					if err == nil {
						for stream.Receive() {
						}
						err = stream.Err()
						stream.Close()
					}
					assertError(t, err, connect.CodeInvalidArgument, "start_offset", "past the end")
				})
			}

			t.Run("rest", func(t *testing.T) {
				path := "/v1/audit/exports/" + id + "/download"
				resp, b := restGet(t, env, http.MethodGet, path, key, nil)
				if resp.StatusCode != http.StatusOK || !bytes.Equal(b, data) {
					t.Fatalf("GET: %d, %d bytes equal=%v", resp.StatusCode, len(b), bytes.Equal(b, data))
				}
				h := resp.Header
				cd := h.Get("Content-Disposition")
				if h.Get("Content-Type") != "text/csv; charset=utf-8" || resp.ContentLength != int64(len(data)) ||
					h.Get("ETag") != `"`+digest+`"` || h.Get("Accept-Ranges") != "bytes" ||
					!strings.HasPrefix(cd, `attachment; filename="soc2-`) || !strings.Contains(cd, "20260101-to-20260331.csv") {
					t.Fatalf("headers %v", h)
				}

				resp, b = restGet(t, env, http.MethodGet, path, key, map[string]string{"Range": "bytes=1000-1999"})
				if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(b, data[1000:2000]) ||
					resp.Header.Get("Content-Range") != fmt.Sprintf("bytes 1000-1999/%d", len(data)) || resp.ContentLength != 1000 {
					t.Fatalf("Range 1000-1999: %d %v, %d bytes", resp.StatusCode, resp.Header, len(b))
				}
				half := len(data) / 2
				resp, b = restGet(t, env, http.MethodGet, path, key, map[string]string{"Range": fmt.Sprintf("bytes=%d-", half)})
				if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(b, data[half:]) {
					t.Fatalf("resume from %d: %d, %d bytes", half, resp.StatusCode, len(b))
				}
				resp, b = restGet(t, env, http.MethodGet, path, key, map[string]string{"Range": "bytes=-100"})
				if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(b, data[len(data)-100:]) {
					t.Fatalf("suffix range: %d, %d bytes", resp.StatusCode, len(b))
				}
				// If-Range with the current ETag honours the range.
				resp, b = restGet(t, env, http.MethodGet, path, key, map[string]string{"Range": "bytes=10-19", "If-Range": `"` + digest + `"`})
				if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(b, data[10:20]) {
					t.Fatalf("If-Range: %d", resp.StatusCode)
				}
				resp, _ = restGet(t, env, http.MethodGet, path, key, map[string]string{"Range": fmt.Sprintf("bytes=%d-", len(data)+10)})
				if resp.StatusCode != http.StatusRequestedRangeNotSatisfiable || resp.Header.Get("Content-Range") != fmt.Sprintf("bytes */%d", len(data)) {
					t.Fatalf("unsatisfiable range: %d %v", resp.StatusCode, resp.Header)
				}
				// Several ranges: the whole file, not a multipart answer.
				resp, b = restGet(t, env, http.MethodGet, path, key, map[string]string{"Range": "bytes=0-9,20-29"})
				if resp.StatusCode != http.StatusOK || !bytes.Equal(b, data) {
					t.Fatalf("multi-range: %d, %d bytes", resp.StatusCode, len(b))
				}
				resp, b = restGet(t, env, http.MethodHead, path, key, nil)
				if resp.StatusCode != http.StatusOK || len(b) != 0 || resp.ContentLength != int64(len(data)) || resp.Header.Get("ETag") != `"`+digest+`"` {
					t.Fatalf("HEAD: %d %v, %d bytes", resp.StatusCode, resp.Header, len(b))
				}
				resp, _ = restGet(t, env, http.MethodGet, path, key, map[string]string{"If-None-Match": `"` + digest + `"`})
				if resp.StatusCode != http.StatusNotModified {
					t.Fatalf("If-None-Match: %d", resp.StatusCode)
				}

				resp, b = restGet(t, env, http.MethodGet, "/v1/audit/exports/"+id+"/manifest", key, nil)
				var m struct {
					JobID  string `json:"job_id"`
					SHA256 string `json:"sha256"`
				}
				if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" || json.Unmarshal(b, &m) != nil ||
					m.JobID != id || m.SHA256 != digest {
					t.Fatalf("manifest: %d %v %s", resp.StatusCode, resp.Header, b)
				}
			})

			t.Run("history", func(t *testing.T) {
				c := auditv1connect.NewDownloadServiceClient(env.Client, env.URL, withKey(key))
				got, err := c.ListDownloads(context.Background(), connect.NewRequest(&auditv1.ListDownloadsRequest{JobId: id}))
				if err != nil {
					t.Fatal(err)
				}
				count := map[string]int{}
				for _, d := range got.Msg.GetDownloads() {
					count[d.GetProtocol()]++
					if d.GetPrincipal() != "audrey@example.com" || d.GetClientIp() != "127.0.0.1" || !d.GetCompleted() ||
						d.GetUserAgent() == "" || d.GetDownloadedAt() == nil {
						t.Errorf("record %v", d)
					}
					if d.GetStartOffset()+d.GetBytesSent() > int64(len(data)) {
						t.Errorf("record beyond the artifact: %v", d)
					}
				}
				// Each RPC protocol: whole, resumed, from the end (the one past
				// the end is refused before anything is sent, so no record).
				// REST: whole, three ranges, If-Range and multi-range; HEAD,
				// 416 and 304 send no report bytes and leave no record.
				want := map[string]int{"connect": 6, "grpc": 3, "grpc-web": 3, "rest": 6}
				if fmt.Sprint(count) != fmt.Sprint(want) {
					t.Fatalf("records per protocol %v, want %v", count, want)
				}
				// The same over REST, snake_case.
				resp, b := restGet(t, env, http.MethodGet, "/v1/audit/exports/"+id+"/downloads", key, nil)
				var rest struct {
					Downloads []map[string]any `json:"downloads"`
				}
				if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &rest) != nil || len(rest.Downloads) != 18 ||
					rest.Downloads[0]["client_ip"] != "127.0.0.1" || rest.Downloads[0]["principal"] != "audrey@example.com" {
					t.Fatalf("GET downloads: %d %s", resp.StatusCode, b)
				}
				// Every download is an access event of the tenant.
				if n := len(auditEvents(t, env, tenant, store.EventQuery{Action: "export.download", Category: "access"})); n < 18 {
					t.Fatalf("%d export.download access events", n)
				}
			})
		})
	}
}

// TestDownloadRefusals covers what may not be downloaded, and by whom.
func TestDownloadRefusals(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t, "sqlite", servertest.Options{NoWorkers: true})
	tenant := env.Tenant(t, "Acme", true)
	auditor := env.Key(t, tenant, "auditor", "audrey@example.com")
	viewer := env.Key(t, tenant, "viewer", "vic@example.com")
	other := env.Tenant(t, "Other", true)
	otherKey := env.Key(t, other, "admin", "oscar@example.com")
	done := env.CompletedJob(t, tenant, "json", []byte(`{"report_type":"soc2"}`))
	foreign := env.CompletedJob(t, other, "json", []byte(`{}`))
	ec := auditv1connect.NewExportServiceClient(env.Client, env.URL, withKey(auditor))
	pending, err := ec.CreateExport(context.Background(), connect.NewRequest(&auditv1.CreateExportRequest{
		ReportType: "soc2", StartDate: timestamppb.New(periodFrom), EndDate: timestamppb.New(periodTo)}))
	if err != nil {
		t.Fatal(err)
	}
	pendingID := pending.Msg.GetJobId()

	download := func(key, id string) error {
		c := auditv1connect.NewDownloadServiceClient(env.Client, env.URL, withKey(key))
		stream, err := c.Download(context.Background(), connect.NewRequest(&auditv1.DownloadRequest{JobId: id}))
		if err != nil {
			return err
		}
		defer stream.Close()
		for stream.Receive() {
		}
		return stream.Err()
	}
	assertError(t, download(auditor, pendingID), connect.CodeFailedPrecondition, "", "is PENDING")
	assertError(t, download(viewer, done), connect.CodePermissionDenied, "", "tenant.audit.export")
	assertError(t, download(auditor, foreign), connect.CodeNotFound, "", "not found")
	assertError(t, download(otherKey, done), connect.CodeNotFound, "", "not found")

	for _, suffix := range []string{"/download", "/manifest"} {
		resp, b := restGet(t, env, http.MethodGet, "/v1/audit/exports/"+pendingID+suffix, auditor, nil)
		restStatus(t, resp, b, http.StatusBadRequest, connect.CodeFailedPrecondition, "is PENDING")
		resp, b = restGet(t, env, http.MethodGet, "/v1/audit/exports/"+done+suffix, viewer, nil)
		restStatus(t, resp, b, http.StatusForbidden, connect.CodePermissionDenied, "tenant.audit.export")
		resp, b = restGet(t, env, http.MethodGet, "/v1/audit/exports/"+foreign+suffix, auditor, nil)
		restStatus(t, resp, b, http.StatusNotFound, connect.CodeNotFound, "not found")
		resp, b = restGet(t, env, http.MethodGet, "/v1/audit/exports/"+done+suffix, "", nil)
		restStatus(t, resp, b, http.StatusUnauthorized, connect.CodeUnauthenticated, "missing API key")
	}
	// A viewer may read the history, not another tenant's.
	vc := auditv1connect.NewDownloadServiceClient(env.Client, env.URL, withKey(viewer))
	if _, err := vc.ListDownloads(context.Background(), connect.NewRequest(&auditv1.ListDownloadsRequest{JobId: done})); err != nil {
		t.Fatalf("viewer ListDownloads: %v", err)
	}
	_, err = vc.ListDownloads(context.Background(), connect.NewRequest(&auditv1.ListDownloadsRequest{JobId: foreign}))
	assertError(t, err, connect.CodeNotFound, "", "not found")
}

// TestDownloadLinks mints single-use links and follows them without a key.
func TestDownloadLinks(t *testing.T) {
	t.Parallel()
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			env := servertest.Start(t, dialect, servertest.Options{NoWorkers: true})
			// The clock runs ahead by skew, so the test can make links expire.
			var skew atomic.Int64
			env.Store.SetClock(func() time.Time { return time.Now().UTC().Add(time.Duration(skew.Load())) })
			tenant := env.Tenant(t, "Acme", true)
			key := env.Key(t, tenant, "auditor", "audrey@example.com")
			viewer := env.Key(t, tenant, "viewer", "vic@example.com")
			nopack := env.Tenant(t, "Basic", false)
			nopackKey := env.Key(t, nopack, "admin", "bob@example.com")
			data := artifact(300_000, 2)
			id := env.CompletedJob(t, tenant, "json", data)
			c := auditv1connect.NewDownloadServiceClient(env.Client, env.URL, withKey(key))
			mint := func(ttl int32) *auditv1.CreateDownloadLinkResponse {
				t.Helper()
				resp, err := c.CreateDownloadLink(context.Background(), connect.NewRequest(&auditv1.CreateDownloadLinkRequest{JobId: id, TtlSeconds: ttl}))
				if err != nil {
					t.Fatal(err)
				}
				return resp.Msg
			}

			t.Run("works once", func(t *testing.T) {
				before := time.Now()
				l := mint(0)
				if !strings.HasPrefix(l.GetUrl(), "/v1/links/") || len(l.GetUrl()) < len("/v1/links/")+40 {
					t.Fatalf("url %q", l.GetUrl())
				}
				if d := l.GetExpiresAt().AsTime().Sub(before); d < 14*time.Minute || d > 16*time.Minute {
					t.Fatalf("default link lives %v", d)
				}
				// HEAD shows the headers and leaves the link usable.
				resp, _ := restGet(t, env, http.MethodHead, l.GetUrl(), "", nil)
				if resp.StatusCode != http.StatusOK || resp.ContentLength != int64(len(data)) {
					t.Fatalf("HEAD link: %d", resp.StatusCode)
				}
				resp, b := restGet(t, env, http.MethodGet, l.GetUrl(), "", map[string]string{"Range": "bytes=0-9"})
				if resp.StatusCode != http.StatusOK || !bytes.Equal(b, data) || resp.Header.Get("Content-Type") != "application/json" ||
					!strings.HasPrefix(resp.Header.Get("Content-Disposition"), `attachment; filename="soc2-`) {
					t.Fatalf("link: %d %v, %d bytes equal=%v", resp.StatusCode, resp.Header, len(b), bytes.Equal(b, data))
				}
				resp, b = restGet(t, env, http.MethodGet, l.GetUrl(), "", nil)
				restStatus(t, resp, b, http.StatusBadRequest, connect.CodeFailedPrecondition, "already used at ")
				resp, b = restGet(t, env, http.MethodGet, l.GetUrl()+"x", "", nil)
				restStatus(t, resp, b, http.StatusNotFound, connect.CodeNotFound, "download link not found")
			})

			t.Run("minted over REST", func(t *testing.T) {
				req, _ := http.NewRequest(http.MethodPost, env.URL+"/v1/audit/exports/"+id+"/links", strings.NewReader(`{"ttl_seconds":120}`))
				req.Header.Set("X-API-Key", key)
				req.Header.Set("Content-Type", "application/json")
				var l struct {
					URL       string    `json:"url"`
					ExpiresAt time.Time `json:"expires_at"`
				}
				decode(t, do(t, env, req), http.StatusOK, &l)
				if !strings.HasPrefix(l.URL, "/v1/links/") || time.Until(l.ExpiresAt) > 3*time.Minute {
					t.Fatalf("link %+v", l)
				}
				resp, b := restGet(t, env, http.MethodGet, l.URL, "", nil)
				if resp.StatusCode != http.StatusOK || !bytes.Equal(b, data) {
					t.Fatalf("link: %d", resp.StatusCode)
				}
			})

			t.Run("expires", func(t *testing.T) {
				l := mint(60)
				at := l.GetExpiresAt().AsTime().UTC().Format(time.RFC3339)
				skew.Add(int64(2 * time.Minute))
				defer skew.Add(-int64(2 * time.Minute))
				resp, b := restGet(t, env, http.MethodGet, l.GetUrl(), "", nil)
				restStatus(t, resp, b, http.StatusBadRequest, connect.CodeFailedPrecondition, "download link expired at "+at)
			})

			t.Run("never outlives the job", func(t *testing.T) {
				j, err := env.Store.Job(context.Background(), tenant, id)
				if err != nil {
					t.Fatal(err)
				}
				skew.Add(int64(7*24*time.Hour - 10*time.Minute))
				defer skew.Add(-int64(7*24*time.Hour - 10*time.Minute))
				l := mint(86400)
				if !l.GetExpiresAt().AsTime().Equal(*j.ExpiresAt) {
					t.Fatalf("link expires at %v, job at %v", l.GetExpiresAt().AsTime(), j.ExpiresAt)
				}
			})

			t.Run("who may mint", func(t *testing.T) {
				_, err := auditv1connect.NewDownloadServiceClient(env.Client, env.URL, withKey(viewer)).
					CreateDownloadLink(context.Background(), connect.NewRequest(&auditv1.CreateDownloadLinkRequest{JobId: id}))
				assertError(t, err, connect.CodePermissionDenied, "", "tenant.audit.export")
				_, err = auditv1connect.NewDownloadServiceClient(env.Client, env.URL, withKey(nopackKey)).
					CreateDownloadLink(context.Background(), connect.NewRequest(&auditv1.CreateDownloadLinkRequest{JobId: id}))
				assertError(t, err, connect.CodeFailedPrecondition, "", "Compliance Pack")
				_, err = c.CreateDownloadLink(context.Background(), connect.NewRequest(&auditv1.CreateDownloadLinkRequest{JobId: id, TtlSeconds: 86401}))
				assertError(t, err, connect.CodeInvalidArgument, "ttl_seconds", "")
			})

			t.Run("on the record", func(t *testing.T) {
				got, err := c.ListDownloads(context.Background(), connect.NewRequest(&auditv1.ListDownloadsRequest{JobId: id}))
				if err != nil {
					t.Fatal(err)
				}
				var links int
				for _, d := range got.Msg.GetDownloads() {
					if d.GetProtocol() == "link" {
						links++
						if d.GetPrincipal() != "audrey@example.com" || !d.GetCompleted() || d.GetBytesSent() != int64(len(data)) {
							t.Errorf("link record %v", d)
						}
					}
				}
				if links != 2 {
					t.Fatalf("%d link downloads on the record, want 2", links)
				}
				evs := auditEvents(t, env, tenant, store.EventQuery{Action: "export.download", Category: "access"})
				outcomes := map[string]int{}
				for _, e := range evs {
					if e.Metadata["protocol"] == "link" {
						outcomes[e.Outcome+" "+fmt.Sprint(e.Metadata["method"])]++
						if e.ActorID == "" || e.ResourceID != id {
							t.Errorf("event %+v", e)
						}
					}
				}
				// Two downloads and a HEAD; a used and an expired link refused.
				if fmt.Sprint(outcomes) != "map[denied GET:2 success GET:2 success HEAD:1]" {
					t.Fatalf("link events %v", outcomes)
				}
			})
		})
	}
}

// auditEvents reads the tenant's audit events that q selects, oldest first.
func auditEvents(t *testing.T, env *servertest.Env, tenant string, q store.EventQuery) []store.StoredEvent {
	t.Helper()
	var out []store.StoredEvent
	err := env.Store.StreamEvents(context.Background(), tenant, q, func(e store.StoredEvent) error {
		out = append(out, e)
		return nil
	})
	if err != nil {
		t.Fatalf("read audit events: %v", err)
	}
	return out
}
