package broker

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

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
