package certfile_test

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/exportd/exportd/internal/certfile"
	"github.com/exportd/exportd/internal/certfile/certfiletest"
)

// TestReload serves a renewed certificate without a restart, and keeps the
// old one while the files on disk do not load.
func TestReload(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	certfiletest.Write(t, cert, key, "first")
	r, err := certfile.New(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	if got := serial(t, r); got != "first" {
		t.Fatalf("serving %q, want first", got)
	}

	certfiletest.Write(t, cert, key, "second")
	// Make the change visible even on a file system with coarse mtimes.
	later := time.Now().Add(time.Minute)
	for _, p := range []string{cert, key} {
		if err := os.Chtimes(p, later, later); err != nil {
			t.Fatal(err)
		}
	}
	if got := serial(t, r); got != "second" {
		t.Fatalf("after renewal serving %q, want second", got)
	}

	if err := os.WriteFile(cert, []byte("half written"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := serial(t, r); got != "second" {
		t.Fatalf("with a broken file serving %q, want the previous certificate", got)
	}

	if _, err := certfile.New(filepath.Join(dir, "missing.pem"), key); err == nil {
		t.Fatal("New accepted a missing certificate file")
	}
}

func serial(t *testing.T, r *certfile.Reloader) string {
	t.Helper()
	c, err := r.GetCertificate(&tls.ClientHelloInfo{})
	if err != nil {
		t.Fatal(err)
	}
	return c.Leaf.Subject.CommonName
}
