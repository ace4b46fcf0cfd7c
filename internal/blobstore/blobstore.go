// Package blobstore opens the bucket that holds report artifacts: a local
// folder by default, S3-compatible storage in production, memory in tests.
package blobstore

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	"gocloud.dev/blob"
	_ "gocloud.dev/blob/fileblob" // file://
	_ "gocloud.dev/blob/memblob"  // mem://
	_ "gocloud.dev/blob/s3blob"   // s3://
)

// Open opens the bucket at rawURL, or a folder "artifacts" in dataDir when
// rawURL is empty.
func Open(ctx context.Context, rawURL, dataDir string) (*blob.Bucket, error) {
	if rawURL == "" {
		dir, err := filepath.Abs(filepath.Join(dataDir, "artifacts"))
		if err != nil {
			return nil, fmt.Errorf("artifact dir: %w", err)
		}
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("create artifact dir: %w", err)
		}
		// no_tmp_dir keeps temporary files beside their final name, so the
		// rename that commits an artifact never crosses file systems.
		rawURL = (&url.URL{Scheme: "file", Path: filepath.ToSlash(dir), RawQuery: "no_tmp_dir=true"}).String()
	}
	rawURL, err := safeFileURL(rawURL)
	if err != nil {
		return nil, err
	}
	b, err := blob.OpenBucket(ctx, rawURL)
	if err != nil {
		return nil, fmt.Errorf("open bucket: %w", err)
	}
	return b, nil
}

// safeFileURL gives an operator's file:// URL the options of the default
// folder: temporary files beside their final name (no_tmp_dir), so that the
// rename committing an artifact never crosses file systems when the folder
// is a volume of its own, and the folder created when missing (create_dir).
// Other URLs pass unchanged.
func safeFileURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("parse --blob-url: %w", err)
	}
	if u.Scheme != "file" {
		return raw, nil
	}
	q := u.Query()
	if q.Get("no_tmp_dir") == "" {
		q.Set("no_tmp_dir", "true")
	}
	if q.Get("create_dir") == "" {
		q.Set("create_dir", "true")
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}
