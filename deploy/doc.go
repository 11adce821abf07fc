// Package deploy is what an operator deploys Eddy with: the image builder
// (image/), the Helm chart (helm/), Grafana dashboards (grafana/) and
// Prometheus alert rules (prometheus/). It is a module of its own so that
// go-containerregistry and the Kubernetes types stay out of Eddy's go.mod.
// Its tests keep the dashboards and alerts honest: every metric they name
// is one Eddy exports, every alert has a runbook in docs/operations.md.
package deploy
