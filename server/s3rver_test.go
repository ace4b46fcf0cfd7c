package server_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/exportd/exportd/internal/blobstore"
)

// s3rver starts s3rver, an S3 server written independently of exportd and
// of the AWS SDK (npm @20minutes/s3rver, a devDependency), on a free port
// with one bucket, and returns its base URL and data folder. It checks
// every request's AWS Signature V4 against its default credentials,
// S3RVER / S3RVER.
func s3rver(t *testing.T, bucket string) (endpoint, dir string) {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	pkg := filepath.Join(filepath.Dir(file), "..", "node_modules", "@20minutes", "s3rver", "package.json")
	_, err := os.Stat(pkg)
	if err == nil {
		_, err = exec.LookPath("node")
	}
	if err != nil {
		if os.Getenv("EXPORTD_REQUIRE_S3RVER") == "" {
			t.Skipf("s3rver is not installed (run npm ci at the repository root): %v", err)
		}
		t.Fatalf("EXPORTD_REQUIRE_S3RVER is set but s3rver cannot run (npm ci installs it): %v", err)
	}
	dir = t.TempDir()
	cmd := exec.Command("node", filepath.Join(filepath.Dir(file), "testdata", "s3rver.cjs"), dir, bucket)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start s3rver: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "S3rver listening on "); ok {
				addr <- a
			}
		}
		close(addr)
	}()
	select {
	case a, ok := <-addr:
		if !ok {
			t.Fatalf("s3rver exited before listening: %s", stderr.String())
		}
		return "http://" + a, dir
	case <-time.After(time.Minute):
		t.Fatalf("s3rver did not say where it listens: %s", stderr.String())
	}
	return "", ""
}

// TestS3Independent runs an export end to end into s3rver through the very
// URL an operator writes for a non-AWS S3 (endpoint, path-style, region)
// with access keys, so every request is signed and checked; downloads it;
// finds the report's bytes in s3rver's own storage; and sees a wrong secret
// refused. Not parallel: the credentials are environment variables.
func TestS3Independent(t *testing.T) {
	endpoint, dir := s3rver(t, "artifacts")
	q := url.Values{"endpoint": {endpoint}, "use_path_style": {"true"}, "region": {"us-east-1"}}
	blobURL := "s3://artifacts?" + q.Encode()
	t.Setenv("AWS_ACCESS_KEY_ID", "S3RVER")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "S3RVER")
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "no-aws-config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "no-aws-credentials"))
	ctx := context.Background()
	bucket, err := blobstore.Open(ctx, blobURL, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bucket.Close() })
	job := exportThroughBucket(t, bucket)

	// The report is in s3rver's storage, byte for byte.
	found := false
	err = filepath.WalkDir(filepath.Join(dir, "artifacts"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, "._S3rver_object") {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		found = found || hex.EncodeToString(sum[:]) == job.GetSha256()
		return nil
	})
	if err != nil || !found {
		t.Fatalf("no object in s3rver's storage has the report's SHA-256 %s (%v)", job.GetSha256(), err)
	}

	// Signatures are checked: the wrong secret is refused.
	t.Setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
	wrong, err := blobstore.Open(ctx, blobURL, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer wrong.Close()
	if err := wrong.WriteAll(ctx, "probe", []byte("x"), nil); err == nil || !strings.Contains(err.Error(), "SignatureDoesNotMatch") {
		t.Errorf("a write signed with the wrong secret: %v, want SignatureDoesNotMatch", err)
	}
}
