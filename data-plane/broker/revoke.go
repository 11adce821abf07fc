package broker

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/eddy-streams/eddy/data-plane/sasl"
	"github.com/eddy-streams/eddy/internal/allowlist"
	"github.com/eddy-streams/eddy/internal/store"
	"github.com/prometheus/client_golang/prometheus"
)

// Revocation. A connection keeps the principal it authenticated as until
// it closes or re-authenticates; deleting its credential must still end
// it within seconds. Postgres announces deletions on eddy_revoke
// (migrations/0011_revocation.sql): "key:<id>" for an API key,
// "account:<id>" for a service account. The broker then forgets the
// credential in its login caches, so the next login looks it up again, and
// closes the connections that rest on it:
//
//	mechanism            closed when deleted
//	PLAIN, SCRAM-*       its API key, or the key's service account
//	OAUTHBEARER          the token's subject (service account)
//
// New OAUTHBEARER logins check that the subject exists (sasl.AccountCache)
// since a token is verified offline and would outlive its account until it
// expires. Every revocationRecheck (and after the listener reconnects, when
// notifications may have been lost) the credentials of all open
// connections are checked against Postgres in one query. Role bindings and
// ACLs are not credentials: their removal reaches open connections through
// the authorizer (authz.go). A cluster's narrowed IP allow-list closes the
// connections it no longer allows when the broker reads it
// (closeDisallowed, from reload).

// revocationRecheck is how often open connections' credentials are
// re-checked, in case a notification was lost in a way the listener could
// not notice.
const revocationRecheck = 30 * time.Second

// revoker holds the login caches revocation empties.
type revoker struct {
	keys     *sasl.KeyCache     // nil without PLAIN or SCRAM
	accounts *sasl.AccountCache // nil without OAUTHBEARER
	closed   *prometheus.CounterVec
}

func newRevoker(reg prometheus.Registerer) *revoker {
	r := &revoker{closed: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "eddy_broker_revoked_connections_total",
		Help: "Connections closed because their credential was deleted, by what was deleted (api_key, service_account), or because their address left their cluster's IP allow-list (allow_list)."},
		[]string{"deleted"})}
	if reg != nil {
		reg.MustRegister(r.closed)
	}
	return r
}

// accountExists adapts the store to the account cache.
func accountExists(st *store.Store) func(ctx context.Context, id string) (bool, error) {
	return func(ctx context.Context, id string) (bool, error) {
		_, gone, err := st.CredentialsGone(ctx, nil, []string{id})
		return len(gone) == 0, err
	}
}

// revocationLoop follows eddy_revoke. After (re)connecting it empties the
// caches and re-checks every connection, since deletions announced while
// it was away are lost.
func (s *Server) revocationLoop(ctx context.Context) {
	for ctx.Err() == nil {
		err := s.store.Listen(ctx, "eddy_revoke", func(wait func(context.Context) (string, error)) error {
			s.forgetCredentials("", "")
			if err := s.recheckCredentials(ctx); err != nil {
				return err
			}
			for {
				payload, err := wait(ctx)
				if err != nil {
					return err
				}
				kind, id, _ := strings.Cut(payload, ":")
				switch kind {
				case "key":
					s.forgetCredentials(id, "")
					s.closeRevoked(map[string]bool{id: true}, nil)
				case "account":
					s.forgetCredentials("", id)
					s.closeRevoked(nil, map[string]bool{id: true})
				}
			}
		})
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("revocation listener failed; retrying", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// recheckLoop re-checks the open connections' credentials every
// revocationRecheck.
func (s *Server) recheckLoop(ctx context.Context) {
	t := time.NewTicker(revocationRecheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := s.recheckCredentials(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("re-checking credentials failed", "err", err)
		}
	}
}

// forgetCredentials drops a key or an account from the login caches; both
// empty drops everything.
func (s *Server) forgetCredentials(key, account string) {
	r := s.revoke
	switch {
	case key == "" && account == "":
		if r.keys != nil {
			r.keys.ForgetAll()
		}
		if r.accounts != nil {
			r.accounts.ForgetAll()
		}
	case key != "":
		if r.keys != nil {
			r.keys.Forget(key)
		}
	default:
		if r.accounts != nil {
			r.accounts.Forget(account)
		}
		// The account's keys announce their own deletion (they cascade),
		// but a key cached as valid must not outlive its account if that
		// announcement is the one lost.
		if r.keys != nil {
			r.keys.ForgetAll()
		}
	}
}

// recheckCredentials closes the connections whose API key or service
// account no longer exists.
func (s *Server) recheckCredentials(ctx context.Context) error {
	keys, accounts := map[string]bool{}, map[string]bool{}
	s.mu.Lock()
	for c := range s.conns {
		if p := c.cred.Load(); p != nil {
			if usesKey(p) {
				keys[p.Via] = true
			}
			accounts[p.ServiceAccount] = true
		}
	}
	s.mu.Unlock()
	if len(keys) == 0 && len(accounts) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	goneKeys, goneAccounts, err := s.store.CredentialsGone(ctx, setKeys(keys), setKeys(accounts))
	if err != nil {
		return err
	}
	if len(goneKeys)+len(goneAccounts) == 0 {
		return nil
	}
	gk, ga := map[string]bool{}, map[string]bool{}
	for _, k := range goneKeys {
		gk[k] = true
		s.forgetCredentials(k, "")
	}
	for _, a := range goneAccounts {
		ga[a] = true
		s.forgetCredentials("", a)
	}
	s.closeRevoked(gk, ga)
	return nil
}

// closeRevoked closes the connections authenticated with one of keys or as
// one of accounts. Closing the socket (rather than refusing requests one
// by one) ends long polls and parked group joins at once, and is what a
// client sees when Kafka's session expires (KIP-368).
func (s *Server) closeRevoked(keys, accounts map[string]bool) {
	s.closeWhere("its credential was deleted", func(p *sasl.Principal, _ string) string {
		switch {
		case usesKey(p) && keys[p.Via]:
			return "api_key"
		case accounts[p.ServiceAccount]:
			return "service_account"
		}
		return ""
	})
}

// closeWhere closes every authenticated connection for which reason
// returns a non-empty reason (the label of eddy_connections_revoked_total),
// logging why. Victims are collected under s.mu and closed after it is
// released: closing a socket wakes its goroutine, which takes s.mu to
// forget the connection.
func (s *Server) closeWhere(why string, reason func(p *sasl.Principal, host string) string) {
	type victim struct {
		c      *conn
		reason string
	}
	var victims []victim
	s.mu.Lock()
	for c := range s.conns {
		p := c.cred.Load()
		if p == nil {
			continue
		}
		if r := reason(p, c.host); r != "" {
			victims = append(victims, victim{c, r})
		}
	}
	s.mu.Unlock()
	for _, v := range victims {
		p := v.c.cred.Load()
		s.revoke.closed.WithLabelValues(v.reason).Inc()
		s.log.Info("closing connection: "+why, "remote", v.c.host, "cluster", p.Cluster,
			"principal", p.ServiceAccount, "mechanism", p.Mechanism, "reason", v.reason)
		v.c.cancel()
		v.c.nc.Close()
	}
}

// usesKey reports whether p authenticated with an API key (Via is then the
// key's id; for tokens it is the token's id).
func usesKey(p *sasl.Principal) bool {
	return p.Mechanism != sasl.OAuthBearer
}

func setKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// closeDisallowed closes the connections of the clusters whose allow-list
// changed from old to now whose address the new list no longer allows,
// whatever their mechanism: an API key's connection does not expire, and
// an OAUTHBEARER session's token may outlive the change by an hour. The
// records API's proxied connections are the control plane's, which checks
// the caller's address itself (checkAllowList).
func (s *Server) closeDisallowed(old, now *view) {
	if old == nil {
		return
	}
	changed := map[string][]string{}
	for id, cl := range now.clusters {
		if prev, ok := old.clusters[id]; ok && len(cl.AllowedCIDRs) > 0 && !slices.Equal(prev.AllowedCIDRs, cl.AllowedCIDRs) {
			changed[id] = cl.AllowedCIDRs
		}
	}
	if len(changed) == 0 {
		return
	}
	s.closeWhere("its address left the cluster's allow-list", func(p *sasl.Principal, host string) string {
		if list, ok := changed[p.Cluster]; ok && !p.Proxied && !allowlist.Allows(list, host) {
			return "allow_list"
		}
		return ""
	})
}
