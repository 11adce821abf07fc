package provider

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/diag"

	"github.com/eddy-streams/eddy/api/client"
)

// addAPIError turns an API error into a diagnostic: a problem's title and
// detail, each invalid field on a line of its own, and the request id, so
// an operator can find the request in the control plane's logs. what is
// the action that failed ("create topic \"orders\"").
func addAPIError(diags *diag.Diagnostics, what string, err error) {
	addAPIErrorHint(diags, what, err, "")
}

// addAPIErrorHint is addAPIError with a paragraph of advice for a
// problem, put before the request id.
func addAPIErrorHint(diags *diag.Diagnostics, what string, err error, hint string) {
	var p *client.Problem
	if !errors.As(err, &p) {
		if errors.Is(err, context.DeadlineExceeded) {
			diags.AddError("Could not "+what, "Timed out: "+err.Error())
			return
		}
		diags.AddError("Could not "+what, err.Error())
		return
	}
	var b strings.Builder
	b.WriteString(p.Detail)
	if b.Len() == 0 {
		b.WriteString(p.Title)
	}
	for _, fe := range p.Errors {
		fmt.Fprintf(&b, "\n  - %s: %s", fe.Field, fe.Message)
	}
	switch p.Type {
	case client.ProblemUnauthorized:
		b.WriteString("\n\nCheck the provider's api_key and api_secret (or EDDY_API_KEY and EDDY_API_SECRET).")
	case client.ProblemForbidden:
		b.WriteString("\n\nThe provider needs an API key of an organisation admin service account, valid for the whole organisation.")
	case client.ProblemLimitExceeded:
		b.WriteString("\n\nRaise the cluster's limits (eddy_cluster max_partitions, ...) or ask for fewer resources.")
	}
	if hint != "" {
		b.WriteString("\n\n" + hint)
	}
	if p.RequestID != "" {
		fmt.Fprintf(&b, "\n\n(HTTP %d, request id %s)", p.Status, p.RequestID)
	} else {
		fmt.Fprintf(&b, "\n\n(HTTP %d)", p.Status)
	}
	diags.AddError(fmt.Sprintf("Could not %s: %s", what, p.Title), b.String())
}

// Default create timeout: how long resources wait for their cluster to
// become ready.
const defaultReadyTimeout = 10 * time.Minute

// waitReady waits until the cluster is ready, within ctx. A cluster that
// never gets there is reported with its last status and how to wait
// longer.
func waitReady(ctx context.Context, c *client.Client, clusterID string, timeout time.Duration, diags *diag.Diagnostics) (client.Cluster, bool) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cl, err := c.WaitClusterReady(ctx, clusterID, nil)
	if err == nil {
		return cl, true
	}
	if ctx.Err() != nil && cl.ID != "" {
		diags.AddError("Cluster not ready",
			fmt.Sprintf("Cluster %s was still %q after %s. Wait longer with a timeouts { create = \"...\" } block.", clusterID, cl.Status, timeout))
		return cl, false
	}
	addAPIError(diags, "read cluster "+clusterID, err)
	return cl, false
}
