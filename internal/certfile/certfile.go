// Package certfile serves a TLS certificate from files that may be replaced
// while the server runs (a renewed certificate is picked up at the next
// handshake, without a restart).
package certfile

import (
	"crypto/tls"
	"fmt"
	"os"
	"sync"
	"time"
)

// Reloader loads a certificate and key pair, and loads them again when
// either file's modification time or size changes.
type Reloader struct {
	certFile, keyFile string

	mu    sync.Mutex
	cert  *tls.Certificate
	stamp [2]fileStamp
}

type fileStamp struct {
	mod  time.Time
	size int64
}

// New loads the pair once, so a bad path or key fails at startup.
func New(certFile, keyFile string) (*Reloader, error) {
	r := &Reloader{certFile: certFile, keyFile: keyFile}
	if _, err := r.current(); err != nil {
		return nil, err
	}
	return r, nil
}

// GetCertificate is for tls.Config.GetCertificate. When the files changed
// but do not load (a renewal half written), it keeps serving the previous
// certificate.
func (r *Reloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return r.current()
}

func (r *Reloader) current() (*tls.Certificate, error) {
	stamp, err := r.stat()
	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil && (r.cert == nil || stamp != r.stamp) {
		c, lerr := tls.LoadX509KeyPair(r.certFile, r.keyFile)
		if lerr == nil {
			r.cert, r.stamp = &c, stamp
		}
		err = lerr
	}
	if r.cert != nil {
		return r.cert, nil
	}
	return nil, fmt.Errorf("load TLS certificate: %w", err)
}

func (r *Reloader) stat() ([2]fileStamp, error) {
	var out [2]fileStamp
	for i, p := range []string{r.certFile, r.keyFile} {
		fi, err := os.Stat(p)
		if err != nil {
			return out, fmt.Errorf("stat TLS file: %w", err)
		}
		out[i] = fileStamp{fi.ModTime(), fi.Size()}
	}
	return out, nil
}

// MinVersion is the lowest TLS version Config accepts; reports state it
// as the server's transport configuration.
const MinVersion = tls.VersionTLS12

// Config returns a server TLS config (TLS 1.2 or later, HTTP/2 preferred)
// that serves the reloaded certificate.
func (r *Reloader) Config() *tls.Config {
	return &tls.Config{
		MinVersion:     MinVersion,
		GetCertificate: r.GetCertificate,
		NextProtos:     []string{"h2", "http/1.1"},
	}
}
