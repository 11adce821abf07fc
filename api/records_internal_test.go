package api

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

// TestKafkaErrorQuota: a broker's quota refusal is the tenant's to slow
// down for (429 with Retry-After), not an outage (503).
func TestKafkaErrorQuota(t *testing.T) {
	err := kafkaError(fmt.Errorf("init producer id: %w", kerr.ThrottlingQuotaExceeded), "orders")
	p, ok := err.(*problem)
	if !ok || p.Status != http.StatusTooManyRequests || p.header.Get("Retry-After") == "" {
		t.Fatalf("kafkaError(THROTTLING_QUOTA_EXCEEDED) = %#v, want 429 with Retry-After", err)
	}
}
