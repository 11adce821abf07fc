package broker

import "strings"

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
