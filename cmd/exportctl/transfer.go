package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"connectrpc.com/connect"
	"github.com/schollz/progressbar/v3"

	auditv1 "github.com/exportd/exportd/gen/go/audit/v1"
	"github.com/exportd/exportd/gen/go/audit/v1/auditv1connect"
)

// watch follows a job over WatchExport until it reaches a terminal status,
// drawing a progress bar on a terminal and plain lines otherwise, and
// returns the job as it ended.
func (a *app) watch(ctx context.Context, exports auditv1connect.ExportServiceClient, jobID string) (*auditv1.ExportJob, error) {
	stream, err := exports.WatchExport(ctx, connect.NewRequest(&auditv1.WatchExportRequest{JobId: jobID}))
	if err != nil {
		return nil, err
	}
	defer func() { _ = stream.Close() }()
	var (
		bar  *progressbar.ProgressBar
		last *auditv1.ExportJob
	)
	for stream.Receive() {
		j := stream.Msg().GetExport()
		last = j
		if a.tty {
			if bar == nil {
				bar = progressbar.NewOptions64(max(j.GetRowsTotal(), 1),
					progressbar.OptionSetWriter(a.stderr),
					progressbar.OptionSetDescription(jobID),
					progressbar.OptionShowCount(),
					progressbar.OptionSetItsString("rows"),
					progressbar.OptionShowIts(),
					progressbar.OptionSetPredictTime(true),
					progressbar.OptionFullWidth(),
					progressbar.OptionThrottle(100*time.Millisecond),
					progressbar.OptionOnCompletion(func() { fmt.Fprintln(a.stderr) }),
				)
			}
			if j.GetRowsTotal() > bar.GetMax64() {
				bar.ChangeMax64(j.GetRowsTotal())
			}
			bar.Describe(fmt.Sprintf("%s %s", jobID, status(j)))
			_ = bar.Set64(min(j.GetRowsDone(), bar.GetMax64()))
			if terminalStatus(j.GetStatus()) {
				if j.GetStatus() == auditv1.ExportStatus_COMPLETED {
					_ = bar.Finish()
				} else {
					_ = bar.Exit()
					fmt.Fprintln(a.stderr)
				}
			}
			continue
		}
		line := fmt.Sprintf("%s %s rows %s", jobID, status(j), progress(j))
		if t := j.GetRowsTotal(); t > 0 {
			line += fmt.Sprintf(" (%d%%)", min(j.GetRowsDone()*100/t, 100))
		}
		if !terminalStatus(j.GetStatus()) && j.GetEstimatedCompletion() != nil {
			line += fmt.Sprintf(" eta %s", max(time.Until(j.GetEstimatedCompletion().AsTime()).Round(time.Second), 0))
		}
		fmt.Fprintln(a.stderr, line)
	}
	if err := stream.Err(); err != nil {
		return nil, err
	}
	if last == nil || !terminalStatus(last.GetStatus()) {
		return nil, errors.New("the server ended the watch before the export finished; run exportctl export watch again")
	}
	return last, nil
}

func terminalStatus(s auditv1.ExportStatus) bool {
	return s == auditv1.ExportStatus_COMPLETED || s == auditv1.ExportStatus_FAILED || s == auditv1.ExportStatus_EXPIRED
}

// download streams a job's artifact into path (default: the server's file
// name), from the file's current size when resuming, and checks the whole
// file's SHA-256 against the server's trailer. withManifest also saves the
// signed manifest beside it, as path + ".manifest.json".
func (a *app) download(ctx context.Context, downloads auditv1connect.DownloadServiceClient, j *auditv1.ExportJob, path string, resume, withManifest bool) error {
	if path == "" {
		path = filepath.Base(j.GetFilename())
		if path == "." || path == "/" || path == "" {
			path = j.GetJobId()
		}
	}
	flags := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	var offset int64
	if resume {
		flags = os.O_WRONLY | os.O_CREATE | os.O_APPEND
		if fi, err := os.Stat(path); err == nil {
			offset = fi.Size()
		}
	}
	if size := j.GetSizeBytes(); resume && size > 0 && offset > size {
		return fmt.Errorf("%s holds %d bytes but the report has %d: it is not a partial copy of this export; remove it or choose another -o", path, offset, size)
	}
	stream, err := downloads.Download(ctx, connect.NewRequest(&auditv1.DownloadRequest{JobId: j.GetJobId(), StartOffset: offset}))
	if err != nil {
		return err
	}
	defer func() { _ = stream.Close() }()
	// Open the file only once the server has said yes, so a refused
	// download leaves no empty file behind.
	var (
		f       *os.File
		trailer *auditv1.DownloadTrailer
		info    *auditv1.DownloadInfo
		written = offset
	)
	bar := io.Writer(io.Discard) // a progress bar on a terminal
	defer func() {
		if f != nil {
			_ = f.Close()
		}
	}()
	for stream.Receive() {
		switch m := stream.Msg().GetMsg().(type) {
		case *auditv1.DownloadResponse_Info:
			info = m.Info
			if f, err = os.OpenFile(path, flags, 0o600); err != nil {
				return fmt.Errorf("open output: %w", err)
			}
			if a.tty {
				b := progressbar.NewOptions64(info.GetTotalSize(),
					progressbar.OptionSetWriter(a.stderr),
					progressbar.OptionSetDescription("downloading "+path),
					progressbar.OptionShowBytes(true),
					progressbar.OptionShowTotalBytes(true),
					progressbar.OptionSetPredictTime(true),
					progressbar.OptionFullWidth(),
					progressbar.OptionThrottle(100*time.Millisecond),
					progressbar.OptionOnCompletion(func() { fmt.Fprintln(a.stderr) }),
				)
				_ = b.Set64(offset)
				bar = b
			}
		case *auditv1.DownloadResponse_Chunk:
			if f == nil {
				return errors.New("the server sent data before the file information")
			}
			if m.Chunk.GetOffset() != written {
				return fmt.Errorf("the server sent bytes at offset %d, expected %d; run the download again with --resume", m.Chunk.GetOffset(), written)
			}
			if _, err := f.Write(m.Chunk.GetData()); err != nil {
				return fmt.Errorf("write %s: %w", path, err)
			}
			_, _ = bar.Write(m.Chunk.GetData())
			written += int64(len(m.Chunk.GetData()))
		case *auditv1.DownloadResponse_Trailer:
			trailer = m.Trailer
		}
	}
	if err := stream.Err(); err != nil {
		if written > offset {
			fmt.Fprintf(a.stderr, "%s: %d bytes kept; continue with: exportctl export download %s -o %s --resume\n", path, written, j.GetJobId(), path)
		}
		return err
	}
	if info == nil || trailer == nil {
		return fmt.Errorf("the download of %s ended early; continue with --resume", j.GetJobId())
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if written != trailer.GetTotalSize() {
		return fmt.Errorf("%s has %d bytes, the report %d; continue with --resume", path, written, trailer.GetTotalSize())
	}
	sum, err := fileSHA256(path)
	if err != nil {
		return err
	}
	if sum != trailer.GetSha256() {
		return fmt.Errorf("%s does not verify: SHA-256 %s, the server's %s; delete it and download again", path, sum, trailer.GetSha256())
	}
	manifestPath := ""
	if withManifest {
		manifestPath = path + manifestSuffix
		if err := a.saveManifest(ctx, j.GetJobId(), manifestPath); err != nil {
			return err
		}
	}
	if a.output == "json" {
		out := map[string]any{"job_id": j.GetJobId(), "file": path, "size_bytes": written, "sha256": sum}
		if manifestPath != "" {
			out["manifest"] = manifestPath
		}
		return json.NewEncoder(a.stdout).Encode(out)
	}
	if _, err = fmt.Fprintf(a.stdout, "%s: %d bytes, sha256 %s (verified)\n", path, written, sum); err != nil || manifestPath == "" {
		return err
	}
	_, err = fmt.Fprintf(a.stdout, "%s: signed manifest; check offline with: exportctl verify --report %s --manifest %s\n", manifestPath, path, manifestPath)
	return err
}

// manifestSuffix names a saved manifest after its report.
const manifestSuffix = ".manifest.json"

// fetchManifest returns a job's signed manifest exactly as the server
// stores it, from GET /v1/audit/exports/{job_id}/manifest (REST: the bytes
// are what the signature was computed over, with no re-encoding between).
func (a *app) fetchManifest(ctx context.Context, jobID string) ([]byte, error) {
	if err := a.needKey(); err != nil {
		return nil, err
	}
	hc, err := a.httpClient()
	if err != nil {
		return nil, err
	}
	u := a.url + "/v1/audit/exports/" + url.PathEscape(jobID) + "/manifest"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("fetch manifest: %w", err)
	}
	req.Header.Set("X-API-Key", a.apiKey)
	req.Header.Set("User-Agent", "exportctl")
	res, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch manifest: %w", err)
	}
	defer func() { _ = res.Body.Close() }()
	// Manifests are a few kilobytes; the bound keeps a wrong URL from
	// filling memory.
	b, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("fetch manifest: %w", err)
	}
	if res.StatusCode != http.StatusOK {
		return nil, restError(u, res.Status, b)
	}
	return b, nil
}

// restError turns a REST error body (google.rpc.Status JSON) into the
// connect error it stands for, so messages and exit codes match the RPCs'.
func restError(u, status string, body []byte) error {
	var st struct {
		Code    int32  `json:"code"`
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &st) != nil || st.Code <= 0 || st.Message == "" {
		return fmt.Errorf("GET %s: %s", u, status)
	}
	return connect.NewError(connect.Code(st.Code), errors.New(st.Message)) //nolint:gosec // codes are small
}

// saveManifest writes a job's manifest to path.
func (a *app) saveManifest(ctx context.Context, jobID, path string) error {
	b, err := a.fetchManifest(ctx, jobID)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	return nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("verify %s: %w", path, err)
	}
	defer func() { _ = f.Close() }()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("verify %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
