package broker

import (
	"strings"

	"github.com/eddy-streams/eddy/internal/store"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Zone-aware traffic (issue 22). A broker's zone is its --rack. A client
// says its zone in one of two ways:
//
//   - Fetch v11+ carries the consumer's client.rack (KIP-392's RackID);
//   - any request's client.id may carry a hint, eddy_az=<zone> or
//     WarpStream's ws_az=<zone>, as one of its comma- or
//     semicolon-separated key=value fields ("orders-app,eddy_az=eu-west-1a").
//
// The connection remembers both (conn.idZone, conn.rackZone); the zone a
// request is served for is the client.rack when the client sent one, else
// the client.id hint. A client that says neither has no zone: it is served
// as before zones existed (every request to the partition leader), and its
// bytes are metered as "unknown".

// Fetch from the same zone (KIP-392, 01_fetch.go). When the leader of a
// partition gets a Fetch (v11+) from a client whose zone is known and
// differs from the leader's own, and a serving broker of the client's
// zone exists, it answers with no records and PreferredReadReplica naming
// one: the zone's serving brokers by id, picked by partition id modulo
// their number, so that the reads of a partition in a zone go to one
// broker and its read cache. Any broker with a --rack serves a Fetch of a
// partition it does not lead to a client with a zone, as a read replica
// (leader/replica.go): committed data only, up to the high watermark (or,
// read_committed, the last stable offset) committed in Postgres, which
// lags the leader's by at most --replica-read-interval; the leader epoch
// the client names is checked against the routing view's. A client
// without a zone, or a broker without a --rack, is served as before: by
// the leader only, NOT_LEADER_OR_FOLLOWER elsewhere.

// maxZoneLen bounds a zone name; AWS's, GCP's and Azure's are far shorter.
const maxZoneLen = 64

// zoneFromClientID returns the zone hinted in a client.id, or "" if it
// names none or names one that is not a plausible zone (too long, or a
// byte outside [A-Za-z0-9._-]). eddy_az wins over ws_az when both are
// given. Keys are matched exactly (case-sensitive), after trimming
// spaces around a field.
func zoneFromClientID(id string) string {
	if !strings.Contains(id, "_az=") {
		return "" // the common case: no hint, no allocation
	}
	var eddy, ws string
	for len(id) > 0 {
		i := strings.IndexAny(id, ",;")
		field := id
		if i >= 0 {
			field, id = id[:i], id[i+1:]
		} else {
			id = ""
		}
		key, value, ok := strings.Cut(strings.TrimSpace(field), "=")
		if !ok {
			continue
		}
		switch key {
		case "eddy_az":
			if eddy == "" {
				eddy = validZone(value)
			}
		case "ws_az":
			if ws == "" {
				ws = validZone(value)
			}
		}
	}
	if eddy != "" {
		return eddy
	}
	return ws
}

// validZone returns z if it is a plausible zone name, else "".
func validZone(z string) string {
	if len(z) == 0 || len(z) > maxZoneLen {
		return ""
	}
	for i := 0; i < len(z); i++ {
		switch c := z[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return ""
		}
	}
	return z
}

// setClientID records a request's client.id and the zone it hints; the
// hint is parsed only when the client.id changes (clients send the same
// one on every request).
func (c *conn) setClientID(id string) {
	if id == c.clientID && c.idZoneParsed {
		return
	}
	c.clientID, c.idZone, c.idZoneParsed = id, zoneFromClientID(id), true
}

// setRack records the client.rack a Fetch carried; an empty or implausible
// one leaves the zone to the client.id hint.
func (c *conn) setRack(rack string) {
	c.rackZone = validZone(rack)
}

// zone is the client's zone as last said on this connection, "" if
// unknown.
func (c *conn) zone() string {
	if c.rackZone != "" {
		return c.rackZone
	}
	return c.idZone
}

// servesReplicas reports whether this broker serves c's fetches of
// partitions it does not lead (as a KIP-392 read replica).
func (s *Server) servesReplicas(c *conn) bool {
	return s.cfg.Rack != "" && c.zone() != ""
}

// preferredReplica is the broker a client in zone should fetch pm from
// instead of this broker, its leader; -1 to read here.
func (s *Server) preferredReplica(v *view, pm *store.Partition, zone string) int32 {
	if zone == "" || s.cfg.Rack == "" || zone == s.cfg.Rack {
		return -1
	}
	ids := v.servingIn[zone]
	if len(ids) == 0 {
		return -1
	}
	return ids[pm.ID%int64(len(ids))]
}

// replicaEpochCheck checks, on a broker serving pm as a read replica, the
// leader epoch a fetch names against the routing view's (KIP-320): 0 when
// it matches or is not given.
func replicaEpochCheck(pm *store.Partition, clientEpoch int32) int16 {
	switch {
	case clientEpoch < 0 || clientEpoch == pm.LeaderEpoch:
		return 0
	case clientEpoch < pm.LeaderEpoch:
		return kerr.FencedLeaderEpoch.Code
	default:
		return kerr.UnknownLeaderEpoch.Code
	}
}

// Metering (eddy_broker_zone_bytes_total): the record bytes of every
// Produce appended here and every Fetch answered here, by whether the
// client's zone is this broker's. Cross-zone bytes are what a cloud
// charges for between zones; the share of them is what zone hints are for.
const (
	sameZone  = "same_zone"
	crossZone = "cross_zone"
	zoneUnkn  = "unknown"
)

// locality says where a client in zone is from this broker's point of view.
func (s *Server) locality(zone string) string {
	switch {
	case zone == "" || s.cfg.Rack == "":
		return zoneUnkn
	case zone == s.cfg.Rack:
		return sameZone
	default:
		return crossZone
	}
}

// meterZone counts n record bytes of direction ("produce", "fetch") for c.
func (s *Server) meterZone(c *conn, direction string, n int) {
	if n > 0 {
		s.met.zoneBytes.WithLabelValues(c.cluster, direction, s.locality(c.zone())).Add(float64(n))
	}
}
