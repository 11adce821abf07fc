package client

import (
	"context"
	"net/http"
)

// GetQuotaUsage returns how close a cluster is to its limits.
func (c *Client) GetQuotaUsage(ctx context.Context, cluster string) (QuotaUsage, error) {
	var out QuotaUsage
	_, err := c.do(ctx, http.MethodGet, "/v1/clusters/"+esc(cluster)+"/quota-usage", nil, &out)
	return out, err
}
