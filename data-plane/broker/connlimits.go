package broker

import (
	"errors"
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
	// (Kafka's max.connections.per.ip); PerIPOverrides sets it for named
	// addresses (max.connections.per.ip.overrides).
	MaxConnectionsPerIP int
	PerIPOverrides      map[string]int
	// MaxConnections caps the broker's open connections (Kafka's
	// max.connections).
	MaxConnections int
	// MaxConnectionCreationRate caps new connections per second, with a
	// burst of one second's worth (Kafka's max.connection.creation.rate).
	MaxConnectionCreationRate int
}

// The defaults, written once: flags and tests take them from here.
const (
	DefaultMaxPreAuthRequestBytes          = 512 << 10
	DefaultAuthTimeout                     = 10 * time.Second
	DefaultQueuedMaxRequestBytes     int64 = 256 << 20
	DefaultMaxIdle                         = 10 * time.Minute
	DefaultMaxConnectionsPerIP             = 1000
	DefaultMaxConnections                  = 50_000
	DefaultMaxConnectionCreationRate       = 1000
)

// RegisterFlags registers the connection limits with their defaults.
func (l *ConnLimits) RegisterFlags(fs *pflag.FlagSet) {
	fs.IntVar(&l.MaxPreAuthRequestBytes, "max-preauth-request-bytes", DefaultMaxPreAuthRequestBytes, "largest request frame accepted before authentication (Kafka's sasl.server.max.receive.size)")
	fs.DurationVar(&l.AuthTimeout, "auth-timeout", DefaultAuthTimeout, "how long a new connection may take to authenticate before it is closed")
	fs.Int64Var(&l.QueuedMaxRequestBytes, "queued-max-request-bytes", DefaultQueuedMaxRequestBytes, "request bytes held in memory at once across connections; reading waits beyond it (Kafka's queued.max.request.bytes)")
	fs.DurationVar(&l.MaxIdle, "connections-max-idle", DefaultMaxIdle, "close connections that sent no request for this long (Kafka's connections.max.idle.ms)")
	fs.IntVar(&l.MaxConnectionsPerIP, "max-connections-per-ip", DefaultMaxConnectionsPerIP, "open connections allowed from one address (Kafka's max.connections.per.ip)")
	fs.StringToIntVar(&l.PerIPOverrides, "max-connections-per-ip-overrides", nil, "per-address exceptions to --max-connections-per-ip, e.g. 10.0.0.7=5000 (Kafka's max.connections.per.ip.overrides)")
	fs.IntVar(&l.MaxConnections, "max-connections", DefaultMaxConnections, "open connections allowed on this broker (Kafka's max.connections)")
	fs.IntVar(&l.MaxConnectionCreationRate, "max-connection-creation-rate", DefaultMaxConnectionCreationRate, "new connections accepted per second on this broker (Kafka's max.connection.creation.rate)")
}

// Validate fills the defaults of unset (zero) limits, refuses negative
// ones and normalises the override addresses to the form connections are
// counted under.
func (l *ConnLimits) Validate() error {
	if err := errors.Join(
		orDefault("max-preauth-request-bytes", &l.MaxPreAuthRequestBytes, DefaultMaxPreAuthRequestBytes),
		orDefault("auth-timeout", &l.AuthTimeout, DefaultAuthTimeout),
		orDefault("queued-max-request-bytes", &l.QueuedMaxRequestBytes, DefaultQueuedMaxRequestBytes),
		orDefault("connections-max-idle", &l.MaxIdle, DefaultMaxIdle),
		orDefault("max-connections-per-ip", &l.MaxConnectionsPerIP, DefaultMaxConnectionsPerIP),
		orDefault("max-connections", &l.MaxConnections, DefaultMaxConnections),
		orDefault("max-connection-creation-rate", &l.MaxConnectionCreationRate, DefaultMaxConnectionCreationRate),
	); err != nil {
		return err
	}
	if l.MaxPreAuthRequestBytes < 8 {
		return fmt.Errorf("broker: --max-preauth-request-bytes must be at least 8 (a request header), got %d", l.MaxPreAuthRequestBytes)
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
		norm[ip.Unmap().String()] = n
	}
	l.PerIPOverrides = norm
	return nil
}

func orDefault[T int | int64 | time.Duration](flag string, v *T, def T) error {
	if *v < 0 {
		return fmt.Errorf("broker: --%s must not be negative", flag)
	}
	if *v == 0 {
		*v = def
	}
	return nil
}
