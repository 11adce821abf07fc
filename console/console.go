// Package console serves Eddy's web console: a single-page application
// (console/web, TypeScript and Preact built by Vite, charts by uPlot) that
// talks only to the REST API, with the user's own credential, so it shows
// and does nothing the API would not let that credential do.
//
// The build (console/dist, made by `make build` or `make console`) is
// embedded with go:embed. A binary built before it (plain `go build` on a
// fresh clone) still serves /console, with a page saying how to build it.
//
// Handler is safe for concurrent use.
package console

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

// Prefix is the path the console is served under.
const Prefix = "/console"

//go:embed all:dist
var dist embed.FS

// Built reports whether the front-end build is embedded.
func Built() bool {
	_, err := fs.Stat(dist, "dist/index.html")
	return err == nil
}

const notBuilt = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Eddy console not built</title></head>
<body><h1>The console is not built into this binary</h1>
<p>Build it with <code>make build</code> (npm ci and vite build in console/web), then rebuild eddy.</p></body></html>
`

// Handler serves the console under Prefix: the build's files, and
// index.html for every other path (the console routes in the URL's hash,
// so this only catches bookmarks of old paths). Assets have hashed names
// and are cached for good; index.html is revalidated.
//
// index.html is read once, here: the build is embedded, so it cannot
// change while the process runs, and its ETag (a hash of its bytes) lets
// a browser revalidate it with a 304 instead of fetching it again.
func Handler() http.Handler {
	sub, _ := fs.Sub(dist, "dist")
	files := http.FileServerFS(sub)
	built := Built()
	index, _ := fs.ReadFile(sub, "index.html")
	sum := sha256.Sum256(index)
	etag := `"` + hex.EncodeToString(sum[:16]) + `"`
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !readOnly(w, r) {
			return
		}
		h := w.Header()
		if r.URL.Path == Prefix {
			http.Redirect(w, r, Prefix+"/", http.StatusMovedPermanently)
			return
		}
		if !built {
			h.Set("Content-Type", "text/html; charset=utf-8")
			h.Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusOK)
			w.Write([]byte(notBuilt))
			return
		}
		name := strings.TrimPrefix(path.Clean(strings.TrimPrefix(r.URL.Path, Prefix)), "/")
		if st, err := fs.Stat(sub, name); name == "" || err != nil || st.IsDir() || name == ".gitkeep" {
			name = "index.html"
		}
		if strings.HasPrefix(name, "assets/") {
			h.Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			h.Set("Cache-Control", "no-cache")
		}
		if name == "index.html" {
			// FileServer would redirect /index.html to /; serve it as is.
			h.Set("ETag", etag)
			http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(index))
			return
		}
		r2 := r.Clone(r.Context())
		r2.URL.Path = "/" + name
		files.ServeHTTP(w, r2)
	})
}

// readOnly refuses methods other than GET and HEAD, and sets the headers
// every page of the console and the API reference carries: they need
// nothing from other origins, and keep it so. It reports whether to go on.
func readOnly(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return false
	}
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	return true
}
