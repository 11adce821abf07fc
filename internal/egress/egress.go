// Package egress guards the connections Eddy opens to addresses a tenant
// chose, such as budget-alert webhooks. A tenant must not be able to make
// the control plane talk to itself, to the pool's private network or to a
// cloud metadata service (server-side request forgery), so by default
// every such connection to a loopback, private, link-local, shared
// (carrier-grade NAT), multicast or unspecified address is refused.
//
// The address is checked where it matters, when the connection is made:
// Policy.Client's dialer checks the IP it is about to connect to, after
// name resolution, so a name that resolves to a public address at
// registration and to 127.0.0.1 later (DNS rebinding), or a redirect to a
// private address, is refused too. CheckURL is the early check for
// registration, to give the tenant a clear error at once; it is not
// sufficient on its own.
//
// A Policy is a value; its methods are safe for concurrent use.
package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"
)

// ErrForbidden is returned (wrapped) for a connection to an address the
// policy does not allow.
var ErrForbidden = errors.New("egress: address not allowed")

// Policy decides which addresses tenant-chosen URLs may reach.
type Policy struct {
	// AllowPrivate lets connections reach every address, private ones
	// included: for development, or a deployment whose webhooks are
	// meant to reach an internal network.
	AllowPrivate bool
	// Allow lists address ranges that are allowed although they are not
	// public: an internal receiver the operator trusts.
	Allow []netip.Prefix
}

// RegisterFlags registers the policy's flags for webhooks.
func (p *Policy) RegisterFlags(fs *pflag.FlagSet) { p.RegisterFlagsFor(fs, "webhook", "webhook URLs") }

// RegisterFlagsFor registers the policy's flags as --<name>-allow-private-addresses
// and --<name>-allow-cidrs, for the URLs what describes. The CIDR blocks
// are parsed as the flag (or its variable) is set, so a bad one is an
// error naming the flag.
func (p *Policy) RegisterFlagsFor(fs *pflag.FlagSet, name, what string) {
	fs.BoolVar(&p.AllowPrivate, name+"-allow-private-addresses", false,
		"let tenant-chosen "+what+" reach loopback, private, link-local and cloud-metadata addresses (development only)")
	fs.Var(prefixList{&p.Allow}, name+"-allow-cidrs",
		"address ranges tenant-chosen "+what+" may reach although they are not public, e.g. 10.20.0.0/16")
}

// prefixList is a flag of comma-separated CIDR blocks, appended to *p.
type prefixList struct{ p *[]netip.Prefix }

func (l prefixList) String() string {
	if l.p == nil {
		return ""
	}
	var out []string
	for _, pfx := range *l.p {
		out = append(out, pfx.String())
	}
	return strings.Join(out, ",")
}

func (l prefixList) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		pfx, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil {
			return err
		}
		*l.p = append(*l.p, pfx.Masked())
	}
	return nil
}

func (l prefixList) Type() string { return "cidrs" }

// shared is RFC 6598's carrier-grade NAT range, which netip does not
// count as private but which is as internal as 10.0.0.0/8 in clouds.
var shared = netip.MustParsePrefix("100.64.0.0/10")

// Allowed reports whether ip may be connected to.
func (p Policy) Allowed(ip netip.Addr) bool {
	if p.AllowPrivate {
		return true
	}
	ip = ip.Unmap() // ::ffff:127.0.0.1 is 127.0.0.1
	for _, pfx := range p.Allow {
		if pfx.Contains(ip) {
			return true
		}
	}
	switch {
	case !ip.IsValid(), ip.IsUnspecified(), ip.IsLoopback(), ip.IsPrivate(),
		ip.IsLinkLocalUnicast(), ip.IsLinkLocalMulticast(), ip.IsInterfaceLocalMulticast(),
		ip.IsMulticast(), shared.Contains(ip):
		return false
	case ip.Is4() && ip.As4()[0] == 0: // 0.0.0.0/8 reaches this host on Linux
		return false
	}
	return true
}

// CheckURL is the registration-time check of a webhook URL: an absolute
// http(s) URL whose host is not a forbidden address, nor a name that
// resolves to one now. A name that does not resolve is accepted (it may
// later); the dialer checks again at every connection.
func (p Policy) CheckURL(ctx context.Context, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return errors.New("must be an absolute http(s) URL")
	}
	if u.User != nil {
		return errors.New("must not carry credentials")
	}
	if p.AllowPrivate {
		return nil
	}
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	if ip, err := netip.ParseAddr(host); err == nil {
		if !p.Allowed(ip) {
			return fmt.Errorf("%w: %s", ErrForbidden, ip)
		}
		return nil
	}
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return fmt.Errorf("%w: %s", ErrForbidden, host)
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil
	}
	for _, ip := range addrs {
		if !p.Allowed(ip) {
			return fmt.Errorf("%w: %s resolves to %s", ErrForbidden, host, ip)
		}
	}
	return nil
}

// Client returns an HTTP client for tenant-chosen URLs: every connection,
// redirects included, is checked against the policy after resolution;
// environment proxies are not used (a proxy would make the check moot);
// at most 3 redirects are followed; a request takes at most timeout.
func (p Policy) Client(timeout time.Duration) *http.Client {
	dialer := &net.Dialer{
		Timeout: min(timeout, 10*time.Second),
		Control: func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("%w: %s", ErrForbidden, address)
			}
			if !p.Allowed(ap.Addr()) {
				return fmt.Errorf("%w: %s", ErrForbidden, ap.Addr())
			}
			return nil
		},
	}
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           dialer.DialContext,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: timeout,
			MaxIdleConns:          16,
			IdleConnTimeout:       30 * time.Second,
		},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 3 {
				return errors.New("egress: too many redirects")
			}
			if req.URL.Scheme != "https" && req.URL.Scheme != "http" {
				return fmt.Errorf("egress: redirect to %s refused", req.URL.Scheme)
			}
			return nil
		},
	}
}
