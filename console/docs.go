package console

import (
	"io/fs"
	"net/http"
)

// DocsPrefix is the path of the rendered API reference.
const DocsPrefix = "/docs"

// The reference is Swagger UI (swagger-ui-dist, copied into the build's
// docs/ by the console's npm build and served under /console/docs/) over
// the API's own /openapi.yaml: what it shows is the spec the handlers are
// tested against. Its initializer is a file, not an inline script, so the
// page runs under the same Content-Security-Policy as the console.
const docsPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Eddy REST API reference</title>
<link rel="stylesheet" href="` + Prefix + `/docs/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="` + Prefix + `/docs/swagger-ui-bundle.js"></script>
<script src="` + DocsPrefix + `/init.js"></script></body></html>
`

const docsInit = `window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({ url: "/openapi.yaml", dom_id: "#swagger-ui", deepLinking: true });
});
`

// DocsBuilt reports whether the reference's files are in the build.
func DocsBuilt() bool {
	_, err := fs.Stat(dist, "dist/docs/swagger-ui-bundle.js")
	return err == nil
}

// DocsHandler serves the API reference at DocsPrefix (its page and
// initializer; the renderer's files come with the console's).
func DocsHandler() http.Handler {
	built := DocsBuilt()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !readOnly(w, r) {
			return
		}
		h := w.Header()
		h.Set("Cache-Control", "no-cache")
		switch {
		case r.URL.Path == DocsPrefix+"/init.js" && built:
			h.Set("Content-Type", "text/javascript; charset=utf-8")
			w.Write([]byte(docsInit))
		case r.URL.Path == DocsPrefix || r.URL.Path == DocsPrefix+"/":
			h.Set("Content-Type", "text/html; charset=utf-8")
			if !built {
				w.Write([]byte(notBuilt))
				return
			}
			w.Write([]byte(docsPage))
		default:
			http.NotFound(w, r)
		}
	})
}
