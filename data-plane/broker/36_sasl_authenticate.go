package broker

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// SaslAuthenticate (API key 36).
// Versions: 0-2.
//
// Carries the SASL messages after a SaslHandshake v1; the exchange, its
// failures and the back-off after them are in sasl.go. v1+ reports the
// session lifetime (KIP-368): a token's remaining validity; the connection
// is closed when it passes unless the client re-authenticated.
//
// No authorization (nothing of the tenant's).

func handleSASLAuthenticate(s *Server, c *conn, req *kmsg.SASLAuthenticateRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
	if c.mechanism == "" || c.rawSASL {
		resp.ErrorCode = kerr.IllegalSaslState.Code
		resp.ErrorMessage = strp("SaslAuthenticate must follow a SaslHandshake v1")
		c.closeAfter = true
		return resp
	}
	reply, done, err := c.authenticate(req.SASLAuthBytes)
	if err != nil {
		resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
		resp.ErrorMessage = strp(err.Error())
		c.closeAfter = true
		return resp
	}
	resp.SASLAuthBytes = reply
	if done && !c.expires.IsZero() {
		resp.SessionLifetimeMillis = max(time.Until(c.expires).Milliseconds(), 1)
	}
	return resp
}
