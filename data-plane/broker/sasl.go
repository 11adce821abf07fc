package broker

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/eddy-streams/eddy/data-plane/sasl"
	"github.com/eddy-streams/eddy/internal/allowlist"
	"github.com/eddy-streams/eddy/internal/scram"
	"github.com/eddy-streams/eddy/internal/store"
)

// The SASL exchange shared by SaslAuthenticate and SaslHandshake v0's raw
// frames (17_sasl_handshake.go, 36_sasl_authenticate.go). PLAIN and
// OAUTHBEARER finish in one round trip, SCRAM in two (the exchange lives on
// the connection between them). A failed authentication is answered
// with SASL_AUTHENTICATION_FAILED and a message that helps without leaking
// (unknown key and wrong secret read the same), then the connection is
// closed, and the next failures from the same address are answered ever
// more slowly.

// authenticate takes one SASL message of the exchange under way (starting
// one if none is) and returns the server's reply; done reports that the
// exchange finished. On success the connection is bound to the principal's
// cluster; on failure the caller answers with the error and closes.
func (c *conn) authenticate(msg []byte) (reply []byte, done bool, err error) {
	s := c.s
	host := remoteHost(c.nc)
	if c.exchange == nil {
		s.loginDelay(c.ctx, host)
		if c.exchange, err = s.auth.Begin(c.mechanism); err != nil {
			return nil, true, err
		}
	}
	ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
	defer cancel()
	reply, p, done, err := c.exchange.Next(ctx, msg)
	if err == nil && !done {
		return reply, false, nil
	}
	c.exchange = nil
	reason := failureReason(err)
	if err == nil {
		if err = s.checkCluster(ctx, p); err != nil {
			reason = "cluster"
		} else if err = s.checkAllowList(p, host); err != nil {
			reason = "allow-list"
		}
	}
	if err == nil && c.principal != nil && c.principal.Cluster != p.Cluster {
		err, reason = errors.New("re-authentication must keep the same cluster"), "cluster"
	}
	if err != nil {
		s.loginFailed(host)
		s.met.authFailures.WithLabelValues(c.mechanism, reason).Inc()
		// The error never holds a secret (see data-plane/sasl).
		s.log.Info("authentication failed", "remote", host, "mechanism", c.mechanism, "reason", reason, "err", err)
		if reason == "internal" {
			return nil, true, errors.New("authentication could not be completed; try again")
		}
		return nil, true, err
	}
	c.principal, c.cluster, c.expires = &p, p.Cluster, p.Expires
	c.cred.Store(&p)
	// A narrowed allow-list published between the check above and the
	// Store was not applied to this connection by closeDisallowed (it
	// scanned before the credential was there): check against it again.
	if err := s.checkAllowList(p, host); err != nil {
		s.met.authFailures.WithLabelValues(c.mechanism, "allow-list").Inc()
		return nil, true, err
	}
	c.authenticated = true
	s.log.Debug("authenticated", "remote", host, "mechanism", p.Mechanism, "org", p.Org, "cluster", p.Cluster, "principal", p.ServiceAccount)
	return reply, true, nil
}

// failureReason labels a failed authentication for the metric.
func failureReason(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, sasl.ErrMechanism):
		return "mechanism"
	case errors.Is(err, sasl.ErrMalformed):
		return "malformed"
	case errors.Is(err, sasl.ErrAuthentication):
		return "credentials"
	}
	return "internal"
}

// checkAllowList: a client outside its cluster's IP allow-list is refused
// as an authentication failure, the answer Kafka gives a refused client.
// Checked at every authentication (re-authentication too); a list
// narrowed later closes the open connections it no longer allows
// (closeDisallowed).
func (s *Server) checkAllowList(p sasl.Principal, host string) error {
	if p.Proxied {
		return nil
	}
	if list := s.view.Load().clusters[p.Cluster].AllowedCIDRs; !allowlist.Allows(list, host) {
		return errors.Join(sasl.ErrAuthentication, fmt.Errorf("the client's address %s is not in the cluster's allow-list", host))
	}
	return nil
}

// checkCluster: the cluster a credential acts in must exist and belong to
// the credential's organisation (an organisation-wide key names it freely,
// so this is where another tenant's cluster is refused).
func (s *Server) checkCluster(ctx context.Context, p sasl.Principal) error {
	cl, ok := s.view.Load().clusters[p.Cluster]
	if !ok {
		// Perhaps created since the last read (clusters are made over
		// REST): look once more.
		if err := s.refreshNow(ctx); err == nil {
			cl, ok = s.view.Load().clusters[p.Cluster]
		}
	}
	if !ok || cl.OrgID != p.Org {
		return errors.Join(sasl.ErrAuthentication, errors.New("the cluster named does not exist in the credential's organisation"))
	}
	return nil
}

// handleRawSASL answers a raw (SaslHandshake v0) SASL message: an empty
// frame on success; on failure the connection is closed, which is all a v0
// client understands.
func (c *conn) handleRawSASL(msg []byte) ([]byte, error) {
	reply, done, err := c.authenticate(msg)
	if err != nil {
		return nil, err
	}
	c.rawSASL = !done
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(reply))), reply...), nil
}

// apiKeyLookup adapts the store to the key cache.
func apiKeyLookup(st *store.Store) func(ctx context.Context, id string) (sasl.StoredKey, error) {
	return func(ctx context.Context, id string) (sasl.StoredKey, error) {
		k, err := st.KeyForAuth(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return sasl.StoredKey{}, sasl.ErrNoKey
		}
		if err != nil {
			return sasl.StoredKey{}, err
		}
		creds, err := scram.ParseCredentials(k.SCRAM)
		if err != nil {
			return sasl.StoredKey{}, err
		}
		return sasl.StoredKey{Org: k.OrgID, Cluster: k.ClusterID, ServiceAccount: k.ServiceAccountID, SecretHash: k.SecretHash, SCRAM: creds}, nil
	}
}

// failedLogins slows down addresses that keep failing: each recent failure
// doubles the delay before the next attempt is answered (up to 5 s).
// Entries decay after a minute without failures.
type failedLogins struct {
	mu sync.Mutex
	by map[string]failure
}

type failure struct {
	n    int
	last time.Time
}

func (s *Server) loginFailed(host string) {
	s.failed.mu.Lock()
	defer s.failed.mu.Unlock()
	if s.failed.by == nil || len(s.failed.by) > 100_000 {
		s.failed.by = map[string]failure{}
	}
	f := s.failed.by[host]
	if time.Since(f.last) > time.Minute {
		f.n = 0
	}
	s.failed.by[host] = failure{n: f.n + 1, last: time.Now()}
}

// loginBackoff is how long the next login from host waits: nothing for the
// first three recent failures, then 50 ms doubling per failure up to 5 s.
func (s *Server) loginBackoff(host string) time.Duration {
	s.failed.mu.Lock()
	f := s.failed.by[host]
	s.failed.mu.Unlock()
	if f.n < 3 || time.Since(f.last) > time.Minute {
		return 0
	}
	return min(50*time.Millisecond<<min(f.n-3, 7), 5*time.Second)
}

func (s *Server) loginDelay(ctx context.Context, host string) {
	d := s.loginBackoff(host)
	if d == 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

func remoteHost(nc net.Conn) string {
	host, _, err := net.SplitHostPort(nc.RemoteAddr().String())
	if err != nil {
		return nc.RemoteAddr().String()
	}
	return host
}
