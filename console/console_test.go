package console

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestHandler: the console's routes, built or not: /console redirects to
// /console/, every page path serves index.html (or the not-built page),
// and only GET and HEAD are allowed.
func TestHandler(t *testing.T) {
	h := Handler()
	get := func(method, path string) *http.Response {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(method, path, nil))
		return w.Result()
	}
	if r := get("GET", "/console"); r.StatusCode != http.StatusMovedPermanently || r.Header.Get("Location") != "/console/" {
		t.Errorf("/console: %d %s", r.StatusCode, r.Header.Get("Location"))
	}
	want := "<title>Eddy console</title>"
	if !Built() {
		want = "not built"
	}
	for _, p := range []string{"/console/", "/console/clusters/x", "/console/index.html", "/console/.gitkeep", "/console/../../etc/passwd"} {
		r := get("GET", p)
		b, _ := io.ReadAll(r.Body)
		if r.StatusCode != http.StatusOK || !strings.Contains(string(b), want) || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") {
			t.Errorf("GET %s: %d %q %.80s", p, r.StatusCode, r.Header.Get("Content-Type"), b)
		}
		if r.Header.Get("Content-Security-Policy") == "" {
			t.Errorf("GET %s: no Content-Security-Policy", p)
		}
	}
	if r := get("POST", "/console/"); r.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", r.StatusCode)
	}
}

// TestIndexETag: index.html carries an ETag, and a request that names it
// is answered 304 without the page.
func TestIndexETag(t *testing.T) {
	if !Built() {
		t.Skip("the console is not built (make console)")
	}
	h := Handler()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/console/", nil))
	etag := w.Result().Header.Get("ETag")
	if w.Code != http.StatusOK || etag == "" {
		t.Fatalf("GET /console/: %d, ETag %q", w.Code, etag)
	}
	req := httptest.NewRequest("GET", "/console/clusters/x", nil)
	req.Header.Set("If-None-Match", etag)
	w = httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusNotModified || w.Body.Len() != 0 {
		t.Errorf("GET with If-None-Match %s: %d, %d bytes, want 304", etag, w.Code, w.Body.Len())
	}
}

// TestDocs: /docs is the API reference page, its initializer points the
// renderer at /openapi.yaml, and the renderer's files come with the
// console's; without a build, the page says how to build it.
func TestDocs(t *testing.T) {
	docs, ui := DocsHandler(), Handler()
	get := func(h http.Handler, path string) (*http.Response, string) {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		b, _ := io.ReadAll(w.Result().Body)
		return w.Result(), string(b)
	}
	if !DocsBuilt() {
		if r, b := get(docs, "/docs"); r.StatusCode != http.StatusOK || !strings.Contains(b, "not built") {
			t.Fatalf("/docs without a build: %d %.80s", r.StatusCode, b)
		}
		t.Skip("the console is not built (make console)")
	}
	if r, b := get(docs, "/docs"); r.StatusCode != http.StatusOK || !strings.Contains(b, "/console/docs/swagger-ui-bundle.js") || r.Header.Get("Content-Security-Policy") == "" {
		t.Errorf("/docs: %d %q %.200s", r.StatusCode, r.Header.Get("Content-Security-Policy"), b)
	}
	if r, b := get(docs, "/docs/init.js"); r.StatusCode != http.StatusOK || !strings.Contains(b, `url: "/openapi.yaml"`) {
		t.Errorf("/docs/init.js: %d %.200s", r.StatusCode, b)
	}
	if r, _ := get(docs, "/docs/nothing"); r.StatusCode != http.StatusNotFound {
		t.Errorf("/docs/nothing: %d", r.StatusCode)
	}
	for _, p := range []string{"/console/docs/swagger-ui-bundle.js", "/console/docs/swagger-ui.css"} {
		if r, b := get(ui, p); r.StatusCode != http.StatusOK || len(b) < 10000 || strings.Contains(b, "<title>Eddy console</title>") {
			t.Errorf("%s: %d, %d bytes", p, r.StatusCode, len(b))
		}
	}
}
