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
	b, err := blob.OpenBucket(ctx, rawURL)
	if err != nil {
		return nil, fmt.Errorf("open bucket: %w", err)
	}
	return b, nil
}
