package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"connectrpc.com/connect"

	auditv1 "github.com/exportd/exportd/gen/go/audit/v1"
	"github.com/exportd/exportd/gen/go/audit/v1/auditv1connect"
)

// downloads measures the SOC 2 CSV artifact of N over REST and Connect
// streaming from exportd, and over a plain net/http server doing
// http.ServeContent of a copy of the same file. Every server is a separate
// process; every client reads over loopback HTTP/1.1 and discards the bytes.
func (b *bench) downloads(ctx context.Context) error {
	if b.csvJob == "" {
		return errors.New("no CSV export of N to download")
	}
	art, err := b.artifactPath(b.csvJob)
	if err != nil {
		return err
	}
	plainFile := filepath.Join(b.dir, "plain-report.csv")
	if err := copyFile(art, plainFile); err != nil {
		return err
	}
	fi, err := os.Stat(plainFile)
	if err != nil {
		return fmt.Errorf("stat artifact copy: %w", err)
	}
	size := fi.Size()
	mb := float64(size) / 1e6
	b.logf("downloads of a %.1f MB artifact ×%d each", mb, b.o.runs)

	plain, err := b.startPlain(ctx, plainFile)
	if err != nil {
		return err
	}
	// One untimed read first, of each path: the file in the page cache,
	// connections open, the servers' first allocations made.
	_, err = timedGET(ctx, plain.url+"/report.csv", nil, size)
	if err != nil {
		plain.stop()
		return fmt.Errorf("plain server: %w", err)
	}
	plainSecs, err := b.median(func() (float64, error) { return timedGET(ctx, plain.url+"/report.csv", nil, size) })
	plain.stop()
	if err != nil {
		return fmt.Errorf("plain server: %w", err)
	}

	srv, err := b.startServer(ctx, b.dsn, 1)
	if err != nil {
		return err
	}
	defer srv.stop()
	if _, err := timedGET(ctx, srv.url+"/v1/audit/exports/"+b.csvJob+"/download", http.Header{"X-API-Key": {b.key}}, size); err != nil {
		return fmt.Errorf("REST download: %w", err)
	}
	if _, err := b.connectDownload(ctx, srv.url, size); err != nil {
		return fmt.Errorf("download over Connect: %w", err)
	}
	restSecs, err := b.median(func() (float64, error) {
		return timedGET(ctx, srv.url+"/v1/audit/exports/"+b.csvJob+"/download", http.Header{"X-API-Key": {b.key}}, size)
	})
	if err != nil {
		return fmt.Errorf("REST download: %w", err)
	}
	connectSecs, err := b.median(func() (float64, error) { return b.connectDownload(ctx, srv.url, size) })
	if err != nil {
		return fmt.Errorf("download over Connect: %w", err)
	}
	b.res.add(figure{Key: "download_plain_mb_s", Name: "download: plain net/http http.ServeContent", Value: mb / plainSecs, Unit: "MB/s"})
	b.res.add(figure{Key: "download_rest_mb_s", Name: "download: REST GET …/download", Value: mb / restSecs, Unit: "MB/s"})
	b.res.add(figure{Key: "download_rest_ratio", Name: "download: REST ÷ plain", Value: plainSecs / restSecs, Unit: "×"}.target(ge, 0.9))
	b.res.add(figure{Key: "download_connect_mb_s", Name: "download: Connect streaming DownloadService.Download", Value: mb / connectSecs, Unit: "MB/s"})
	b.res.add(figure{Key: "download_connect_ratio", Name: "download: Connect ÷ plain", Value: plainSecs / connectSecs, Unit: "×"}.target(ge, 0.6))
	return nil
}

// timedGET downloads url and returns the seconds it took, checking every
// byte arrived.
func timedGET(ctx context.Context, url string, h http.Header, want int64) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	for k, v := range h {
		req.Header[k] = v
	}
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 2000))
		return 0, fmt.Errorf("GET %s: %s: %s", url, resp.Status, b)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		return 0, err
	}
	secs := time.Since(start).Seconds()
	if n != want {
		return 0, fmt.Errorf("GET %s: got %d bytes, want %d", url, n, want)
	}
	return secs, nil
}

// connectDownload reads the artifact through the generated client's
// server stream.
func (b *bench) connectDownload(ctx context.Context, base string, want int64) (float64, error) {
	c := auditv1connect.NewDownloadServiceClient(http.DefaultClient, base)
	req := connect.NewRequest(&auditv1.DownloadRequest{JobId: b.csvJob})
	req.Header().Set("X-API-Key", b.key)
	start := time.Now()
	stream, err := c.Download(ctx, req)
	if err != nil {
		return 0, err
	}
	defer func() { _ = stream.Close() }()
	var n int64
	for stream.Receive() {
		n += int64(len(stream.Msg().GetChunk().GetData()))
	}
	if err := stream.Err(); err != nil {
		return 0, err
	}
	secs := time.Since(start).Seconds()
	if n != want {
		return 0, fmt.Errorf("got %d bytes, want %d", n, want)
	}
	return secs, nil
}

// plainServer is the bench binary itself serving one file (serve-file).
type plainServer struct {
	cmd *exec.Cmd
	url string
}

func (b *bench) startPlain(ctx context.Context, path string) (*plainServer, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find this program: %w", err)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "serve-file", "-addr", "127.0.0.1:"+port, "-file", path)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the plain server: %w", err)
	}
	p := &plainServer{cmd: cmd, url: "http://127.0.0.1:" + port}
	for i := 0; ; i++ {
		resp, err := http.Head(p.url + "/report.csv")
		if err == nil {
			resp.Body.Close()
			return p, nil
		}
		if i > 500 || ctx.Err() != nil {
			p.stop()
			return nil, fmt.Errorf("the plain server did not answer: %w", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (p *plainServer) stop() {
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
}

// serveFile is the plain server: http.ServeContent of one file, nothing
// else, with the same HTTP server settings exportd uses.
func serveFile(args []string) error {
	fs := flag.NewFlagSet("serve-file", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	file := fs.String("file", "", "the file to serve")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := os.Open(*file)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer func() { _ = f.Close() }()
		fi, err := f.Stat()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		http.ServeContent(w, r, fi.Name(), fi.ModTime(), f)
	})
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	return srv.Serve(ln)
}

func copyFile(from, to string) error {
	src, err := os.Open(from)
	if err != nil {
		return fmt.Errorf("copy artifact: %w", err)
	}
	defer func() { _ = src.Close() }()
	dst, err := os.Create(to)
	if err != nil {
		return fmt.Errorf("copy artifact: %w", err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		_ = dst.Close()
		return fmt.Errorf("copy artifact: %w", err)
	}
	return dst.Close()
}
