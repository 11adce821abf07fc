package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// SaslHandshake (API key 17).
// Versions: 0-1.
//
// After SaslHandshake v0 the client sends the SASL message as a raw,
// size-prefixed frame (no Kafka header) and gets a raw frame back, as older
// librdkafka does (conn.handleRawSASL); after v1 it uses SaslAuthenticate.
// The exchange itself is in sasl.go.
//
// No authorization (nothing of the tenant's).

func handleSASLHandshake(s *Server, c *conn, req *kmsg.SASLHandshakeRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.SASLHandshakeResponse)
	resp.SupportedMechanisms = s.auth.Mechanisms()
	if !s.auth.Supports(req.Mechanism) {
		resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
		return resp
	}
	c.mechanism = req.Mechanism
	c.rawSASL = req.Version == 0
	c.exchange = nil
	return resp
}
