package server_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"connectrpc.com/connect"

	auditv1 "github.com/exportd/exportd/gen/go/audit/v1"
	"github.com/exportd/exportd/gen/go/audit/v1/auditv1connect"
	"github.com/exportd/exportd/internal/jobs"
	"github.com/exportd/exportd/server/servertest"
)

// BenchmarkDownload256MiB downloads one 256 MiB artifact from a file://
// bucket over loopback three ways in every iteration: a plain net/http
// server doing http.ServeContent of the very file (the yardstick), the REST
// download, and the Connect stream. All three servers are alike (TLS,
// HTTP/2) and the three downloads interleave, so the machine's other load
// weighs on each the same; each starts after a GC, so none pays for the
// garbage of another. It reports each throughput in MB/s and the
// ratios to the yardstick (targets: REST ≥ 0.9, Connect ≥ 0.6).
//
//	go test ./server/ -run '^$' -bench Download256MiB -benchtime 3x
func BenchmarkDownload256MiB(b *testing.B) {
	const size = 256 << 20
	dir := b.TempDir()
	env := servertest.Start(b, "sqlite", servertest.Options{NoWorkers: true, BlobURL: "file://" + filepath.ToSlash(dir)})
	tenant := env.Tenant(b, "Bench", true)
	key := env.Key(b, tenant, "auditor", "bench@example.com")
	id := env.CompletedJob(b, tenant, "json", artifact(size, 4))
	j, err := env.Store.Job(context.Background(), tenant, id)
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(dir, filepath.FromSlash(jobs.ArtifactKey(j)))
	if st, err := os.Stat(path); err != nil || st.Size() != size {
		b.Fatalf("artifact file %s: %v", path, err)
	}

	plain := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := os.Open(path)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer f.Close()
		http.ServeContent(w, r, "report.json", time.Time{}, f)
	}))
	plain.EnableHTTP2 = true
	plain.StartTLS()
	b.Cleanup(plain.Close)

	get := func(client *http.Client, url string, header http.Header) {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Header = header
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		n, err := io.Copy(io.Discard, resp.Body)
		if err != nil || n != size || resp.StatusCode != http.StatusOK {
			b.Fatalf("GET %s: %d, %d bytes, %v", url, resp.StatusCode, n, err)
		}
	}
	dl := auditv1connect.NewDownloadServiceClient(env.Client, env.URL, withKey(key))
	stream := func() {
		s, err := dl.Download(context.Background(), connect.NewRequest(&auditv1.DownloadRequest{JobId: id}))
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		var n int
		for s.Receive() {
			n += len(s.Msg().GetChunk().GetData())
		}
		if err := s.Err(); err != nil || n != size {
			b.Fatalf("Download: %d bytes, %v", n, err)
		}
	}
	ways := []struct {
		name string
		run  func()
	}{
		{"servecontent", func() { get(plain.Client(), plain.URL, http.Header{}) }},
		{"rest", func() {
			get(env.Client, env.URL+"/v1/audit/exports/"+id+"/download", http.Header{"X-Api-Key": {key}})
		}},
		{"connect", stream},
	}
	// One untimed round warms connections, the page cache and the pools.
	for _, w := range ways {
		w.run()
	}
	spent := make([]time.Duration, len(ways))
	for b.Loop() {
		for i, w := range ways {
			// Each way starts with a clean heap, so none pays for the
			// garbage of the one before it.
			runtime.GC()
			t0 := time.Now()
			w.run()
			spent[i] += time.Since(t0)
		}
	}
	mbps := make([]float64, len(ways))
	for i, w := range ways {
		mbps[i] = float64(size) * float64(b.N) / spent[i].Seconds() / 1e6
		b.ReportMetric(mbps[i], w.name+"-MB/s")
	}
	b.ReportMetric(mbps[1]/mbps[0], "rest/servecontent")
	b.ReportMetric(mbps[2]/mbps[0], "connect/servecontent")
}
