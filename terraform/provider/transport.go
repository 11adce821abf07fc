package provider

import (
	"crypto/rand"
	"net/http"
	"strconv"
	"time"

	"github.com/eddy-streams/eddy/api/client"
)

// retrying retries a request that failed on the way (connection refused
// or reset: a control plane restarting behind a load balancer) or was
// answered 429, 502, 503 or 504. It retries only what is safe to repeat:
// GET, PATCH (the provider's PATCHes set absolute values), DELETE, and
// POSTs that carry an Idempotency-Key, which the API answers once.
type retrying struct {
	next http.RoundTripper
}

const maxAttempts = 5

func (t *retrying) RoundTrip(req *http.Request) (*http.Response, error) {
	safe := req.Method != http.MethodPost || req.Header.Get("Idempotency-Key") != ""
	backoff := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		resp, err := t.next.RoundTrip(req)
		retry := err != nil && req.Context().Err() == nil
		if err == nil {
			switch resp.StatusCode {
			case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
				retry = true
				if s, perr := strconv.Atoi(resp.Header.Get("Retry-After")); perr == nil && s > 0 {
					backoff = min(time.Duration(s)*time.Second, 30*time.Second)
				}
			}
		}
		if !retry || !safe || attempt == maxAttempts || (req.Body != nil && req.GetBody == nil) {
			return resp, err
		}
		if resp != nil {
			resp.Body.Close()
		}
		if req.GetBody != nil {
			body, gerr := req.GetBody()
			if gerr != nil {
				return nil, gerr
			}
			req = req.Clone(req.Context())
			req.Body = body
		}
		select {
		case <-req.Context().Done():
			return nil, req.Context().Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 4*time.Second)
	}
}

// idempotencyKey makes one Create's POST safe to retry.
func idempotencyKey() client.CallOption {
	return client.IdempotencyKey("tf-" + rand.Text())
}
