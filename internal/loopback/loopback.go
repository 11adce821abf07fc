// Package loopback holds the one rule for "is this a loopback address",
// which decides where Kafka may go without TLS: the broker refuses a
// plaintext listener elsewhere, and the CLI connects with TLS unless the
// bootstrap address is one. Both must agree, so both use Is.
package loopback

import "net"

// Is reports whether addr, "host:port" or a bare host, names a loopback
// address: localhost or a loopback IP. An empty host (":9092", every
// interface) is not one.
func Is(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
