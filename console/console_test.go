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
