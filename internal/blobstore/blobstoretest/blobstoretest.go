// Package blobstoretest injects failures into a blob bucket for tests: Faulty
// is a gocloud.dev/blob driver that forwards to a real bucket and makes the
// writes it is told to fail, the way a flaky object store would.
package blobstoretest

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"gocloud.dev/blob"
	"gocloud.dev/blob/driver"
	"gocloud.dev/gcerrors"
)

// ErrInjected is the failure Faulty injects.
var ErrInjected = errors.New("injected blob store failure: connection reset by peer")

// Faulty forwards to a bucket and fails the next writes it is told to.
type Faulty struct {
	inner *blob.Bucket

	mu         sync.Mutex
	failWrites int // -1: every write
	failed     int
	block      bool
}

// Wrap returns a bucket over inner whose writes Faulty can make fail, and
// the Faulty that controls it.
func Wrap(inner *blob.Bucket) (*blob.Bucket, *Faulty) {
	f := &Faulty{inner: inner}
	return blob.NewBucket(f), f
}

// FailWrites makes the next n artifact writes fail (n < 0: all of them).
func (f *Faulty) FailWrites(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failWrites = n
}

// BlockWrites makes writes hang until their context ends, as an upload to
// an unresponsive store would.
func (f *Faulty) BlockWrites(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.block = on
}

// Failed counts the writes failed so far.
func (f *Faulty) Failed() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failed
}

func (f *Faulty) takeFailure() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failWrites == 0 {
		return false
	}
	if f.failWrites > 0 {
		f.failWrites--
	}
	f.failed++
	return true
}

// ErrorCode implements driver.Bucket.
func (f *Faulty) ErrorCode(err error) gcerrors.ErrorCode { return gcerrors.Code(err) }

// As implements driver.Bucket.
func (f *Faulty) As(any) bool { return false }

// ErrorAs implements driver.Bucket.
func (f *Faulty) ErrorAs(err error, target any) bool { return errors.As(err, target) }

// Attributes implements driver.Bucket.
func (f *Faulty) Attributes(ctx context.Context, key string) (*driver.Attributes, error) {
	a, err := f.inner.Attributes(ctx, key)
	if err != nil {
		return nil, err
	}
	return &driver.Attributes{
		CacheControl: a.CacheControl, ContentDisposition: a.ContentDisposition, ContentEncoding: a.ContentEncoding,
		ContentLanguage: a.ContentLanguage, ContentType: a.ContentType, Metadata: a.Metadata,
		CreateTime: a.CreateTime, ModTime: a.ModTime, Size: a.Size, MD5: a.MD5, ETag: a.ETag,
	}, nil
}

// ListPaged implements driver.Bucket.
func (f *Faulty) ListPaged(ctx context.Context, opts *driver.ListOptions) (*driver.ListPage, error) {
	token := opts.PageToken
	if token == nil {
		token = blob.FirstPageToken
	}
	objs, next, err := f.inner.ListPage(ctx, token, max(opts.PageSize, 1000), &blob.ListOptions{Prefix: opts.Prefix, Delimiter: opts.Delimiter})
	if err != nil {
		return nil, err
	}
	page := &driver.ListPage{NextPageToken: next}
	for _, o := range objs {
		page.Objects = append(page.Objects, &driver.ListObject{Key: o.Key, ModTime: o.ModTime, Size: o.Size, MD5: o.MD5, IsDir: o.IsDir})
	}
	return page, nil
}

// NewRangeReader implements driver.Bucket.
func (f *Faulty) NewRangeReader(ctx context.Context, key string, offset, length int64, _ *driver.ReaderOptions) (driver.Reader, error) {
	r, err := f.inner.NewRangeReader(ctx, key, offset, length, nil)
	if err != nil {
		return nil, err
	}
	return reader{r}, nil
}

type reader struct{ *blob.Reader }

func (r reader) Attributes() *driver.ReaderAttributes {
	return &driver.ReaderAttributes{ContentType: r.ContentType(), ModTime: r.ModTime(), Size: r.Size()}
}

func (r reader) As(any) bool { return false }

// NewTypedWriter implements driver.Bucket. A write told to fail accepts
// its first chunk, then fails, and stores nothing, as a dropped upload would.
func (f *Faulty) NewTypedWriter(ctx context.Context, key, contentType string, _ *driver.WriterOptions) (driver.Writer, error) {
	f.mu.Lock()
	block := f.block
	f.mu.Unlock()
	if block {
		return &blockedWriter{ctx: ctx}, nil
	}
	if f.takeFailure() {
		return &failingWriter{}, nil
	}
	return f.inner.NewWriter(ctx, key, &blob.WriterOptions{ContentType: contentType})
}

type failingWriter struct{ n int }

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.n > 0 {
		return 0, fmt.Errorf("write artifact: %w", ErrInjected)
	}
	w.n += len(p)
	return len(p), nil
}

func (w *failingWriter) Close() error { return fmt.Errorf("upload artifact: %w", ErrInjected) }

type blockedWriter struct{ ctx context.Context }

func (w *blockedWriter) Write([]byte) (int, error) {
	<-w.ctx.Done()
	return 0, w.ctx.Err()
}

func (w *blockedWriter) Close() error { return w.ctx.Err() }

// Copy implements driver.Bucket.
func (f *Faulty) Copy(ctx context.Context, dstKey, srcKey string, _ *driver.CopyOptions) error {
	return f.inner.Copy(ctx, dstKey, srcKey, nil)
}

// Delete implements driver.Bucket.
func (f *Faulty) Delete(ctx context.Context, key string, _ *driver.DeleteOptions) error {
	return f.inner.Delete(ctx, key)
}

// SignedURL implements driver.Bucket.
func (f *Faulty) SignedURL(context.Context, string, *driver.SignedURLOptions) (string, error) {
	return "", errors.New("blobstoretest: signed URLs are not supported")
}

// Close implements driver.Bucket; the inner bucket stays open.
func (f *Faulty) Close() error { return nil }
