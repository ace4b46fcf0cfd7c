// Package web serves the exportd console: the single-page app built by
// `make web` into dist/ and embedded here, so that `exportd serve` needs no
// Node at run time. Paths that are not files get index.html, so that deep
// links into the console (/settings/audit) load the app.
package web

import (
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

// dist is the built console; `make web` rebuilds it and CI checks the
// committed copy is current.
//
//go:embed dist
var dist embed.FS

// contentSecurityPolicy allows only the console's own origin: no inline
// scripts or styles, no external fonts or CDNs, no framing.
const contentSecurityPolicy = "default-src 'self'; base-uri 'none'; object-src 'none'; frame-ancestors 'none'; form-action 'self'"

// Handler serves the console for GET and HEAD. Everything else answers 404,
// so that a request for an API path that is not mounted (an unknown Connect
// procedure, say) is not mistaken for the app: Connect clients read 404 as
// `unimplemented`.
func Handler() http.Handler {
	root, err := fs.Sub(dist, "dist")
	if err != nil {
		// The embed pattern guarantees dist exists; this cannot happen.
		panic(err)
	}
	return &handler{root: root}
}

type handler struct{ root fs.FS }

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", contentSecurityPolicy)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	hd.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.NotFound(w, r)
		return
	}
	name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
	if name != "" && name != "index.html" {
		if st, err := fs.Stat(h.root, name); err == nil && !st.IsDir() {
			if strings.HasPrefix(name, "assets/") {
				// Vite names assets by content hash: they never change.
				hd.Set("Cache-Control", "public, max-age=31536000, immutable")
			} else {
				hd.Set("Cache-Control", "no-cache")
			}
			http.ServeFileFS(w, r, h.root, name)
			return
		}
		// A missing file (a stale asset, a typo) is a 404, not the app.
		if strings.HasPrefix(name, "assets/") || path.Ext(name) != "" {
			http.NotFound(w, r)
			return
		}
	}
	index, err := fs.ReadFile(h.root, "index.html")
	if err != nil {
		http.Error(w, "console not built: run make web", http.StatusInternalServerError)
		return
	}
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(index)
	}
}
