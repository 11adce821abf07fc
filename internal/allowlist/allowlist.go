// Package allowlist is a virtual cluster's IP allow-list: the CIDR blocks
// its clients may connect from. One rule for every door: the brokers
// check it when a Kafka client authenticates, the REST API on the
// cluster's sub-resources, and REST and Terraform validate it with Parse.
package allowlist

import (
	"fmt"
	"net/netip"
	"slices"
)

// MaxEntries bounds an allow-list; a tenant needing more uses wider blocks.
const MaxEntries = 100

// Parse checks entries (CIDR blocks, or single addresses meaning /32 or
// /128) and returns them in canonical form: network addresses, sorted,
// without repeats. Nil or empty means no restriction.
func Parse(entries []string) ([]string, error) {
	if len(entries) > MaxEntries {
		return nil, fmt.Errorf("at most %d entries, got %d", MaxEntries, len(entries))
	}
	out := make([]string, 0, len(entries))
	for _, e := range entries {
		p, err := parseOne(e)
		if err != nil {
			return nil, fmt.Errorf("%q is neither a CIDR block (10.0.0.0/8) nor an IP address", e)
		}
		out = append(out, p.String())
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

func parseOne(e string) (netip.Prefix, error) {
	if a, err := netip.ParseAddr(e); err == nil && a.Zone() == "" {
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(e)
	if err != nil {
		return p, err
	}
	if p.Addr().Is4In6() {
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}

// Allows reports whether host (an IP address) may connect under list (as
// Parse returns it). An empty list allows everyone; an address that does
// not parse is allowed by nothing else.
func Allows(list []string, host string) bool {
	if len(list) == 0 {
		return true
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	a = a.WithZone("").Unmap()
	for _, e := range list {
		if p, err := netip.ParsePrefix(e); err == nil && p.Contains(a) {
			return true
		}
	}
	return false
}
