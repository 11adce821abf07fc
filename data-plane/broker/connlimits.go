package broker

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/spf13/pflag"
)

// ConnLimits bound what a connection may cost the broker before and after
// it authenticates (guard.go enforces them). Each is named after the
// Apache Kafka setting it mirrors; docs/security.md lists them with their
// defaults and the threat each answers.
type ConnLimits struct {
	// MaxPreAuthRequestBytes caps a request frame before authentication
	// (Kafka's sasl.server.max.receive.size). A larger announced size
	// closes the connection before anything is allocated for it.
	MaxPreAuthRequestBytes int
	// AuthTimeout is how long a connection may take to authenticate;
	// connections of the anonymous cluster count as authenticated at once.
	AuthTimeout time.Duration
	// QueuedMaxRequestBytes bounds the request bytes the broker holds at
	// once across its authenticated connections (Kafka's
	// queued.max.request.bytes): a connection about to read a frame waits
	// until the frame fits. A frame larger than the whole bound waits
	// until it is the only one held.
	QueuedMaxRequestBytes int64
	// MaxIdle closes connections that sent no request for this long
	// (Kafka's connections.max.idle.ms).
	MaxIdle time.Duration
	// MaxConnectionsPerIP caps the open connections from one address
	// (Kafka's max.connections.per.ip), where an IPv6 address counts as
	// its /64 (ipKey); PerIPOverrides sets it for named addresses
	// (max.connections.per.ip.overrides), an IPv6 one for its /64.
	MaxConnectionsPerIP int
	PerIPOverrides      map[string]int
	// MaxConnections caps the broker's open connections (Kafka's
	// max.connections).
	MaxConnections int
	// MaxConnectionCreationRate caps new connections per second, with a
	// burst of one second's worth (Kafka's max.connection.creation.rate).
	MaxConnectionCreationRate int
}

// DefaultConnLimits returns the limits' defaults, the one place they are
// written: the flags start from them.
func DefaultConnLimits() ConnLimits {
	return ConnLimits{
		MaxPreAuthRequestBytes:    512 << 10,
		AuthTimeout:               10 * time.Second,
		QueuedMaxRequestBytes:     256 << 20,
		MaxIdle:                   10 * time.Minute,
		MaxConnectionsPerIP:       1000,
		MaxConnections:            50_000,
		MaxConnectionCreationRate: 1000,
	}
}

// RegisterFlags registers the connection limits with their defaults.
func (l *ConnLimits) RegisterFlags(fs *pflag.FlagSet) {
	d := DefaultConnLimits()
	fs.IntVar(&l.MaxPreAuthRequestBytes, "max-preauth-request-bytes", d.MaxPreAuthRequestBytes, "largest request frame accepted before authentication (Kafka's sasl.server.max.receive.size)")
	fs.DurationVar(&l.AuthTimeout, "auth-timeout", d.AuthTimeout, "how long a new connection may take to authenticate before it is closed")
	fs.Int64Var(&l.QueuedMaxRequestBytes, "queued-max-request-bytes", d.QueuedMaxRequestBytes, "request bytes held in memory at once across connections; reading waits beyond it (Kafka's queued.max.request.bytes)")
	fs.DurationVar(&l.MaxIdle, "connections-max-idle", d.MaxIdle, "close connections that sent no request for this long (Kafka's connections.max.idle.ms)")
	fs.IntVar(&l.MaxConnectionsPerIP, "max-connections-per-ip", d.MaxConnectionsPerIP, "open connections allowed from one address (Kafka's max.connections.per.ip)")
	fs.StringToIntVar(&l.PerIPOverrides, "max-connections-per-ip-overrides", d.PerIPOverrides, "per-address exceptions to --max-connections-per-ip, e.g. 10.0.0.7=5000 (Kafka's max.connections.per.ip.overrides)")
	fs.IntVar(&l.MaxConnections, "max-connections", d.MaxConnections, "open connections allowed on this broker (Kafka's max.connections)")
	fs.IntVar(&l.MaxConnectionCreationRate, "max-connection-creation-rate", d.MaxConnectionCreationRate, "new connections accepted per second on this broker (Kafka's max.connection.creation.rate)")
}

// Validate checks the limits, naming the flag of a bad one, and normalises
// the override addresses to the form connections are counted under.
func (l *ConnLimits) Validate() error {
	for _, c := range []struct {
		flag string
		ok   bool
		want string
	}{
		{"max-preauth-request-bytes", l.MaxPreAuthRequestBytes >= 8, "at least 8 (a request header)"},
		{"auth-timeout", l.AuthTimeout > 0, "positive"},
		{"queued-max-request-bytes", l.QueuedMaxRequestBytes > 0, "positive"},
		{"connections-max-idle", l.MaxIdle > 0, "positive"},
		{"max-connections-per-ip", l.MaxConnectionsPerIP > 0, "positive"},
		{"max-connections", l.MaxConnections > 0, "positive"},
		{"max-connection-creation-rate", l.MaxConnectionCreationRate > 0, "positive"},
	} {
		if !c.ok {
			return fmt.Errorf("broker: --%s must be %s", c.flag, c.want)
		}
	}
	norm := make(map[string]int, len(l.PerIPOverrides))
	for addr, n := range l.PerIPOverrides {
		ip, err := netip.ParseAddr(addr)
		if err != nil {
			return fmt.Errorf("broker: --max-connections-per-ip-overrides: %q is not an IP address", addr)
		}
		if n < 0 {
			return fmt.Errorf("broker: --max-connections-per-ip-overrides: %s=%d is negative", addr, n)
		}
		norm[ipKey(ip.String())] = n
	}
	l.PerIPOverrides = norm
	return nil
}
