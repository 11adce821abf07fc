// Package helm holds Eddy's Helm chart (eddy/) and its example values
// (examples/); its test lints the chart and renders it with helm, then
// decodes every rendered object strictly into the typed Kubernetes (and
// Prometheus Operator) structs, so that a misspelt or misplaced field
// fails `make test` rather than an install. Helm is `go run` at a pinned
// version (or $HELM), so the check runs offline once the module cache
// holds it.
package helm
